"""Who may watch: the access token (constant-time check, read from a file) and, without a token, the Host check.

Without a token, a web page on any site could read the stream through DNS rebinding: its host name is made to
resolve to this machine, and the browser then sends `Host: rebind.attacker.example`. A request is therefore only
answered when its Host header names the bound address: an IP literal (loopback ones for a loopback bind, the
bound one for one interface, any for all interfaces: a rebinding page cannot use an IP literal as its origin),
`localhost` on loopback or all interfaces, the host name the output was given with, this machine's host name
(and `NAME.local`) when reachable from the network, or a name the user allowed (`.example.com` allows its
subdomains too, `*` anything). Names are compared lower-case without the port and a trailing dot.
"""
import hmac
import ipaddress
import os
import socket

from ..errors import SDKError
from .bind import EVERYWHERE, LOOPBACK

MAX_TOKEN_FILE_BYTES = 4096


def read_token_file(path, flag="--http-token-file"):
    """The secret in `path` (surrounding whitespace dropped); one-line SDKError when missing, empty or not text."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_TOKEN_FILE_BYTES + 1)
    except OSError as e:
        raise SDKError(f"{flag} {path}: cannot read it ({e.strerror or e}), expected a readable file holding "
                       f"the token") from None
    if len(data) > MAX_TOKEN_FILE_BYTES:
        raise SDKError(f"{flag} {path}: got more than {MAX_TOKEN_FILE_BYTES} bytes, expected a file holding "
                       f"one token")
    try:
        token = data.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise SDKError(f"{flag} {path}: got bytes that are not UTF-8 text, expected a file holding one token "
                       f"(e.g. from `openssl rand -hex 16`)") from None
    if not token or any(c.isspace() or not c.isprintable() for c in token):
        got = "an empty file" if not token else "a token with spaces or control characters"
        raise SDKError(f"{flag} {path}: got {got}, expected one token on one line (e.g. from "
                       f"`openssl rand -hex 16`)")
    return token


def token_file_readable_by_others(path):
    try:
        return bool(os.stat(path).st_mode & 0o004)
    except OSError:
        return False


def token_matches(token, headers, query):
    """`query` as from urllib.parse.parse_qs. True when `?token=` or `Authorization: Bearer` carries `token`; compared in constant time."""
    given = query.get("token", [""])[0]
    auth = headers.get("Authorization", "")
    if auth.lower().startswith("bearer "):
        given = given or auth[7:].strip()
    return hmac.compare_digest(given.encode(), token.encode())


def host_name(header):
    """`Host` header value -> lower-case name or IP literal without port, brackets or trailing dot."""
    value = header.strip().lower()
    if value.startswith("["):  # [v6]:port
        return value[1:].split("]", 1)[0]
    return value.rsplit(":", 1)[0].rstrip(".") if value.count(":") <= 1 else value


class HostCheck:
    """Decides whether a Host header names this server (see the module docstring)."""

    def __init__(self, bind, allowed_hosts=()):
        self.bind = bind
        self.allowed = {str(h).strip().lower().rstrip(".") for h in allowed_hosts if str(h).strip()}
        names = set()
        if bind.scope in (LOOPBACK, EVERYWHERE):
            names.add("localhost")
        try:
            ipaddress.ip_address(bind.host)
        except ValueError:  # given as a name (localhost, jetson.local, ...): that name reaches it
            names.add(bind.host.lower().rstrip("."))
        if bind.scope != LOOPBACK:
            hostname = socket.gethostname().lower().rstrip(".")
            if hostname:
                short = hostname.split(".", 1)[0]
                names.update({hostname, short, f"{short}.local"})
        self.names = names - {"", "@", "*"}

    def allows(self, header):
        if header is None:  # HTTP/1.0 clients may omit it; every browser sends it
            return True
        name = host_name(header)
        if "*" in self.allowed or name in self.names or name in self.allowed:
            return True
        if any(a.startswith(".") and (name.endswith(a) or name == a[1:]) for a in self.allowed):
            return True
        try:
            ip = ipaddress.ip_address(name)
        except ValueError:
            return False
        if self.bind.scope == EVERYWHERE:
            return True
        if self.bind.scope == LOOPBACK:
            return ip.is_loopback or (ip.version == 6 and bool(ip.ipv4_mapped) and ip.ipv4_mapped.is_loopback)
        return ip == self.bind.ip
