"""`--output http://HOST:PORT`: watch the running detector from a browser (page, MJPEG, snapshot, JSON stats).

One sink serves every stream of a run: the pipeline opens it with `info["streams"]` and hands it each stream's
frames with `stats["stream"]`; each stream has its own FrameHub, MJPEG endpoint and tile on the page.
The sink only hands the newest annotated frame to a FrameHub; the server's own threads do the JPEG encoding
(only while someone watches) and the networking, so viewers never slow the pipeline. Security defaults are in
docs/http.md: loopback unless asked otherwise, a token from a file, a connection cap, the Host check.
"""
import sys

from ..errors import SDKError
from ..web.auth import read_token_file, token_file_readable_by_others
from ..web.bind import EVERYWHERE, LOOPBACK, resolve_bind
from ..web.frames import FrameHub
from ..web.server import OTHERS_RESERVE, ConnectionLimits, LiveViewServer
from .sinks import Sink

DEFAULT_LIMITS = ConnectionLimits()


def add_http_arguments(p):
    """The http:// output's flags (shared by every command that takes --output)."""
    p.add_argument("--http-token", default=None, metavar="SECRET",
                   help="access token for http:// outputs (visible in `ps`: prefer --http-token-file)")
    p.add_argument("--http-token-file", default=None, metavar="PATH",
                   help="read the http:// access token from this file (one line, e.g. `openssl rand -hex 16`)")
    p.add_argument("--http-allow-host", action="append", default=None, metavar="NAME",
                   help="without a token, also answer requests for this Host name (repeatable; .example.com "
                        "allows subdomains, * disables the check)")
    p.add_argument("--http-require-token", action="store_true", default=None,
                   help="refuse to start an http:// output reachable from other machines without a token")
    p.add_argument("--http-max-connections", type=int, default=None, metavar="N",
                   help=f"at most N simultaneous http:// clients (default {DEFAULT_LIMITS.max_connections})")
    p.add_argument("--http-max-per-client", type=int, default=None, metavar="N",
                   help=f"at most N of them from one address (default: all but {OTHERS_RESERVE}, "
                        f"{DEFAULT_LIMITS.per_client()} of {DEFAULT_LIMITS.max_connections})")


def http_options(args):
    """The keyword arguments of HttpSink from the flags of add_http_arguments (None: not given)."""
    return {"token": getattr(args, "http_token", None), "token_file": getattr(args, "http_token_file", None),
            "allowed_hosts": getattr(args, "http_allow_host", None),
            "max_connections": getattr(args, "http_max_connections", None),
            "max_per_client": getattr(args, "http_max_per_client", None),
            "require_token": getattr(args, "http_require_token", None)}


class HttpSink(Sink):
    def __init__(self, uri, token=None, token_file=None, allowed_hosts=None, max_connections=None,
                 header_timeout_s=None, fd_reserve=None, require_token=False, max_per_client=None):
        self.uri = uri
        if token is not None and token_file is not None:
            raise SDKError("token/token_file: got both, expected one of them")
        if token is not None and not str(token).strip():
            raise SDKError("token: got an empty token, expected a non-empty secret (or no token)")
        self.notes = []
        if token_file is not None:
            token = read_token_file(token_file)
            if token_file_readable_by_others(token_file):
                self.notes.append(f"note: --http-token-file {token_file} is readable by every user of this "
                                  f"machine (chmod 600 or 640 it)")
        self.token = token
        self.bind = resolve_bind(uri)
        self.host, self.port = self.bind.address, self.bind.port
        self.all_interfaces = self.bind.scope == EVERYWHERE
        if require_token and not token and not self.bind.local_only:
            raise SDKError(f"output {uri}: got an address reachable from other machines ({self.bind.address}) "
                           f"and no token, expected --http-token-file PATH (--http-require-token is set) or "
                           f"http://127.0.0.1:{self.port}")
        defaults = DEFAULT_LIMITS
        limits = ConnectionLimits(
            max_connections=defaults.max_connections if max_connections is None else max_connections,
            max_per_client=defaults.max_per_client if max_per_client is None else max_per_client,
            header_timeout_s=defaults.header_timeout_s if header_timeout_s is None else header_timeout_s,
            fd_reserve=fd_reserve)
        self.hub = FrameHub()  # stream 0's; the server adds one per further stream at open()
        self.streams = 1
        # bound here, served from open(): a taken port or a bad address fails before the run starts
        self.server = LiveViewServer(self.hub, self.bind, token=token, uri=uri, allowed_hosts=allowed_hosts or (),
                                     limits=limits)
        self.port = self.server.address[1]  # the real port when 0 (any free port) was asked for

    def open(self, info):
        # several streams reach this sink only when it takes all of them (stream None); one made per stream
        # from a `{stream}` placeholder, or the inner sink of mosaic:, shows one
        self.streams = len(info.get("streams") or ()) if self.stream is None else 1
        self.streams = max(1, self.streams)
        self.server.start(info, streams=self.streams)
        guard = " (token required)" if self.token else ""
        scope = self.bind.scope
        if scope == EVERYWHERE:
            print(f"http: live view listening on all interfaces ({self.bind.address}), port {self.port}{guard}: open "
                  f"http://<this machine's address>:{self.port}/ from another machine", file=sys.stderr)
        elif scope == LOOPBACK:
            print(f"http: live view on {self.url}{guard} (this machine only; use http://@:{self.port} for all "
                  f"interfaces)", file=sys.stderr)
        else:
            print(f"http: live view on {self.url}{guard} (reachable by every machine that can reach "
                  f"{self.bind.address})", file=sys.stderr)
        if scope != LOOPBACK and not self.token:
            print("warning: http: no token, so anyone on the network can watch; protect it with "
                  "--http-token-file PATH (see docs/http.md)", file=sys.stderr)
        for note in self.notes:
            print(note, file=sys.stderr)

    @property
    def url(self):
        if self.all_interfaces:
            host = "::1" if self.bind.ip.version == 6 else "127.0.0.1"
        else:
            host = self.bind.address
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}/"

    def write(self, frame_bgr_annotated, detections, stats):
        index = int(stats.get("stream", 0)) if self.streams > 1 else 0
        self.server.hubs[index].publish(frame_bgr_annotated, detections, stats)

    def close(self):
        if self.server is not None:
            self.server.close()
            self.server = None
