"""The live-view HTTP server (standard library only): one page, an MJPEG stream, a snapshot and JSON stats.

Routes: `/` the page, `/stream.mjpg` multipart/x-mixed-replace JPEGs, `/snapshot.jpg`, `/stats` (the fields of
the camera sample's final JSON line, live), `/detections` (the newest frame's boxes). An optional token guards
every route; it is accepted as `?token=` (so `<img src>` works) or as an `Authorization: Bearer` header.
Each connection has its own thread (ThreadingHTTPServer); all of them end on `close()`.
"""
import errno
import hmac
import json
import socket
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from ..errors import SDKError

PAGE = Path(__file__).with_name("index.html")
BOUNDARY = "frame"
ALL_INTERFACES = ("@", "0.0.0.0", "*")
DEFAULT_PORT = 8080
STREAM_POLL_S = 0.5  # how often an idle stream re-checks for shutdown
SOCKET_TIMEOUT_S = 10.0  # a viewer that stops reading for this long is dropped
INFO_KEYS = ("model", "backend", "precision", "imgsz", "source")


def parse_bind(uri):
    """`http://HOST:PORT` -> (host, port, all_interfaces). No host means 127.0.0.1; `@`/`0.0.0.0` all."""
    scheme, sep, rest = str(uri).partition("://")
    if not sep or scheme.lower() not in ("http", "https", "webrtc"):
        raise SDKError(f"--output {uri}: got no http:// address, expected http://HOST:PORT such as "
                       f"http://127.0.0.1:8080 or http://@:8080")
    if scheme.lower() == "https":
        raise SDKError(f"--output {uri}: got https://, expected http:// (the live view serves plain HTTP; put a "
                       f"TLS reverse proxy in front of it for HTTPS)")
    netloc = rest.split("/", 1)[0].split("?", 1)[0]
    host, colon, port_text = netloc.rpartition(":")
    if not colon or "]" in port_text:  # no port given (a bare host or an IPv6 literal)
        host, port_text = netloc, ""
    host = host.strip("[]")
    try:
        port = int(port_text) if port_text else DEFAULT_PORT
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise SDKError(f"--output {uri}: got port '{port_text}', expected a number from 0 to 65535")
    if host in ALL_INTERFACES or host == "::":
        return ("::" if host == "::" else "0.0.0.0"), port, True
    return host or "127.0.0.1", port, False


class LiveViewServer:
    """Serves a FrameHub. Binds on construction (one-line SDKError on failure); `start()` runs the accept loop."""

    def __init__(self, hub, host, port, token=None, uri=None):
        self.hub = hub
        self.info = {}
        self.token = token
        self.page = PAGE.read_bytes()
        self._thread = None
        try:  # bind now, so a taken port or a foreign address fails before any model or camera is opened
            self._httpd = _Server((host, port), _Handler, live_view=self)
        except OSError as e:
            raise bind_error(uri or f"http://{host}:{port}", host, port, e) from None

    def start(self, info=None):
        """Start answering requests; `info` is the run's model/backend/precision/imgsz/source/names/size."""
        self.info = dict(info or {})
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="http-live-view", daemon=True)
        self._thread.start()
        return self

    @property
    def address(self):
        return self._httpd.server_address[:2]

    @property
    def viewers(self):
        return self._httpd.viewers if self._httpd else 0

    def close(self):
        """Stop accepting, end every stream and connection, and join all server threads."""
        if self._httpd is None:
            return
        httpd, self._httpd = self._httpd, None
        httpd.closing = True
        self.hub.close()
        if self._thread is not None:
            httpd.shutdown()  # ends serve_forever
        httpd.drop_connections()  # wakes handlers blocked on a socket (a viewer that stopped reading)
        httpd.server_close()  # joins the handler threads (ThreadingMixIn.block_on_close)
        if self._thread is not None:
            self._thread.join()

    def authorized(self, headers, query):
        if not self.token:
            return True
        given = query.get("token", [""])[0]
        auth = headers.get("Authorization", "")
        if auth.lower().startswith("bearer "):
            given = given or auth[7:].strip()
        return hmac.compare_digest(given.encode(), self.token.encode())

    def stats(self):
        _, _, stats = self.hub.latest()
        out = {k: v for k, v in stats.items() if k not in ("counts", "frame_index", "timestamp")}
        out.update({k: self.info.get(k) for k in INFO_KEYS})
        out.update(counts=stats.get("counts", {}), frame_index=stats.get("frame_index"),
                   timestamp=stats.get("timestamp"), names=self.info.get("names", []),
                   size=self.info.get("size"), viewers=self.viewers)
        return out

    def detections(self):
        _, dets, stats = self.hub.latest()
        return {"frame_index": stats.get("frame_index"), "timestamp": stats.get("timestamp"),
                "counts": dets.counts() if dets is not None else {},
                "detections": dets.to_list() if dets is not None else []}


def bind_error(uri, host, port, e):
    if e.errno == errno.EADDRINUSE:
        why = f"port {port} is already in use, expected a free port (pick another, e.g. http://{host}:{port + 1})"
    elif e.errno == errno.EACCES:
        why = f"no permission to listen on port {port}, expected a port above 1023 (lower ones need root)"
    elif isinstance(e, socket.gaierror) or e.errno in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT):
        why = (f"address '{host}' is not an address of this machine ({e.strerror or e}), expected 127.0.0.1, "
               f"@ / 0.0.0.0 (all interfaces) or one of this machine's IP addresses")
    else:
        why = f"cannot listen on {host}:{port} ({e.strerror or e}), expected a free local address and port"
    return SDKError(f"--output {uri}: {why}")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # many viewers may connect at once

    def __init__(self, address, handler, live_view):
        self.live_view = live_view
        self.closing = False
        self.viewers = 0
        self._connections = set()
        self._lock = threading.Lock()
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, handler)

    def process_request(self, request, client_address):
        with self._lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request):
        with self._lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def drop_connections(self):
        with self._lock:
            connections = list(self._connections)
        for sock in connections:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def count_viewer(self, delta):
        with self._lock:
            self.viewers += delta

    def handle_error(self, request, client_address):
        pass  # a viewer that vanished mid-response is normal, not worth a traceback


class _Handler(BaseHTTPRequestHandler):
    server_version = "sdk-live-view"
    timeout = SOCKET_TIMEOUT_S

    def log_message(self, format, *args):  # noqa: A002  (keep the detector's stdout/stderr clean)
        pass

    def do_GET(self):  # noqa: N802  (http.server naming)
        view = self.server.live_view
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        if not view.authorized(self.headers, query):
            self._send(HTTPStatus.UNAUTHORIZED, b'{"error": "token required: ?token=... or Authorization: '
                       b'Bearer ..."}', "application/json", {"WWW-Authenticate": 'Bearer realm="live view"'})
            return
        route = {"/": self._page, "/index.html": self._page, "/stream.mjpg": self._stream,
                 "/snapshot.jpg": self._snapshot, "/stats": lambda: self._json(view.stats()),
                 "/detections": lambda: self._json(view.detections())}.get(url.path)
        if route is None:
            self._json({"error": f"no route {url.path}", "routes": ["/", "/stream.mjpg", "/snapshot.jpg",
                                                                     "/stats", "/detections"]},
                       HTTPStatus.NOT_FOUND)
            return
        try:
            route()
        except OSError:
            self.close_connection = True  # the viewer left or stopped reading

    def _send(self, status, body, content_type, headers=None):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _json(self, obj, status=HTTPStatus.OK):
        self._send(status, json.dumps(obj).encode(), "application/json")

    def _page(self):
        self._send(HTTPStatus.OK, self.server.live_view.page, "text/html; charset=utf-8")

    def _snapshot(self):
        _, jpeg = self.server.live_view.hub.jpeg()
        if jpeg is None:
            self._json({"error": "no frame yet"}, HTTPStatus.SERVICE_UNAVAILABLE)
        else:
            self._send(HTTPStatus.OK, jpeg, "image/jpeg")

    def _stream(self):
        hub, server = self.server.live_view.hub, self.server
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        server.count_viewer(+1)
        try:
            sent = 0
            while not server.closing:
                if not hub.wait_newer(sent, STREAM_POLL_S):
                    continue
                sent, jpeg = hub.jpeg()  # the newest frame: a slow viewer skips the ones in between
                self.wfile.write(f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n"
                                 .encode() + jpeg + b"\r\n")
                self.wfile.flush()
        finally:
            server.count_viewer(-1)
