"""Where the live view listens: `http://HOST:PORT` resolved to the numeric address the socket really binds.

Whether the server is reachable from other machines is decided from the resolved address, never from how the
host was spelled: `0`, `0x0`, `0000`, `0.0`, `[::0]` and `[0:0:0:0:0:0:0:0]` all listen on every interface
(the C resolver reads `0x0` as 0.0.0.0), while `127.1` or `0x7f000001` stay on loopback.
"""
import ipaddress
import socket
from dataclasses import dataclass

from ..errors import SDKError

ALL_INTERFACES = ("@", "*")  # shorthands for "every interface" (0.0.0.0 and :: resolve to it anyway)
DEFAULT_PORT = 8080
LOOPBACK, INTERFACE, EVERYWHERE = "loopback", "interface", "all interfaces"


@dataclass(frozen=True)
class BindAddress:
    """A resolved listening address. `host` is as the user wrote it, `address` the numeric IP bound."""

    host: str
    address: str
    port: int

    @property
    def ip(self):
        return ipaddress.ip_address(self.address)

    @property
    def family(self):
        return socket.AF_INET6 if self.ip.version == 6 else socket.AF_INET

    @property
    def scope(self):
        """LOOPBACK (this machine only), EVERYWHERE (0.0.0.0 / ::) or INTERFACE (one address of this machine)."""
        ip = self.ip
        if ip.version == 6 and ip.ipv4_mapped:  # ::ffff:127.0.0.1 is loopback, ::ffff:0.0.0.0 everywhere
            ip = ip.ipv4_mapped
        if ip.is_unspecified:
            return EVERYWHERE
        return LOOPBACK if ip.is_loopback else INTERFACE

    @property
    def local_only(self):
        return self.scope == LOOPBACK


def parse_bind(uri, default_port=DEFAULT_PORT):
    """`http://HOST:PORT` -> (host as written, port). No host means 127.0.0.1, no port 8080; `[v6]` brackets go.
    rtsp:// outputs (sdk/video/stream_out.py) follow the same rules with their own default port."""
    scheme, sep, rest = str(uri).partition("://")
    known = scheme.lower() if sep and scheme.lower() in ("http", "https", "webrtc", "rtsp") else None
    path, example = ("/NAME", "/cam") if known == "rtsp" else ("", "")  # rtsp:// outputs name a mount
    if known is None:
        raise SDKError(f"output {uri}: got no http:// address, expected http://HOST:PORT such as "
                       f"http://127.0.0.1:8080 or http://@:8080")
    if scheme.lower() == "https":
        raise SDKError(f"output {uri}: got https://, expected http:// (the live view serves plain HTTP; put a "
                       f"TLS reverse proxy in front of it for HTTPS)")
    netloc = rest.split("/", 1)[0].split("?", 1)[0]
    if netloc.count(":") > 1 and not netloc.startswith("["):
        raise SDKError(f"output {uri}: got an IPv6 address without brackets, expected {known}://[ADDRESS]:PORT"
                       f"{path} such as {known}://[::1]:{default_port}{example}")
    if netloc.startswith("["):  # [IPv6] or [IPv6]:PORT
        host, bracket, after = netloc[1:].partition("]")
        if not bracket or (after and not after.startswith(":")):
            raise SDKError(f"output {uri}: got '{netloc}', expected [ADDRESS] or [ADDRESS]:PORT for IPv6 "
                           f"such as {known}://[::1]:{default_port}{example}")
        port_text = after[1:]
    else:
        host, colon, port_text = netloc.rpartition(":")
        if not colon:  # no port given
            host, port_text = netloc, ""
    try:
        port = int(port_text) if port_text else default_port
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise SDKError(f"output {uri}: got port '{port_text}', expected a number from 0 to 65535")
    return host or "127.0.0.1", port


def resolve_bind(uri, default_port=DEFAULT_PORT):
    """Parse and resolve an http:// output to the BindAddress its socket will bind (one-line SDKError if none)."""
    host, port = parse_bind(uri, default_port)
    if host in ALL_INTERFACES:
        return BindAddress(host, "0.0.0.0", port)
    try:  # the same resolver bind() would use; numeric results only, so bind() cannot reinterpret them
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError) as e:
        raise SDKError(f"output {uri}: address '{host}' is not an address of this machine "
                       f"({getattr(e, 'strerror', None) or e}), expected 127.0.0.1, @ / 0.0.0.0 (all interfaces) "
                       f"or one of this machine's IP addresses") from None
    addresses = [info[4][0] for info in infos if info[0] in (socket.AF_INET, socket.AF_INET6)]
    if not addresses:
        raise SDKError(f"output {uri}: address '{host}' has no IPv4 or IPv6 address, expected an IP address "
                       f"or a host name of this machine")
    # IPv4 first (what binding the name used to pick); an IPv6 zone suffix (fe80::1%eth0) is kept for bind()
    address = next((a for a in addresses if ":" not in a), addresses[0])
    return BindAddress(host, address, port)
