"""The live-view HTTP server (standard library only): one page, an MJPEG stream per camera stream, snapshots and
JSON stats.

Routes: `/` the page, `/stream/N.mjpg` multipart/x-mixed-replace JPEGs of stream N (`/stream.mjpg`: stream 0),
`/snapshot/N.jpg` (`/snapshot.jpg`: stream 0), `/stats` (the fields of the camera sample's final JSON line, live,
with one entry per stream in `streams`), `/detections` (the newest frame's boxes with track ids, per stream in
`streams`). An optional token guards every route; it is accepted as `?token=` (so `<img src>` works) or as an
`Authorization: Bearer` header. Without a token only Host headers naming this server are answered
(sdk/web/auth.py: DNS rebinding). Every route, per-stream ones included, passes the same check before routing.

Each connection has its own thread (ThreadingHTTPServer), so clients are bounded before a thread exists: at most
`max_connections` at once, `max_per_client` of them from one address, and none while fewer than `fd_reserve`
descriptors are left for the pipeline (sdk/web/limits.py); a refused client gets a 503 at once. A client must
send its request line and headers within `header_timeout_s` in total (slowloris), checked by the accept loop.
All threads end on `close()`.
"""
import errno
import json
import re
import socket
import threading
import time
from dataclasses import dataclass
from functools import partial
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Optional
from urllib.parse import parse_qs, urlsplit

from ..errors import SDKError
from ..records import detection_list
from .auth import HostCheck, token_matches
from .limits import default_reserve, descriptor_limit, descriptors_left, raise_descriptor_limit

PAGE = Path(__file__).with_name("index.html")
BOUNDARY = "frame"
STREAM_POLL_S = 0.5  # how often an idle stream re-checks for shutdown
SOCKET_TIMEOUT_S = 10.0  # a viewer that stops reading (or a client that stops sending) for this long is dropped
ACCEPT_BACKOFF_S = 0.05  # out of descriptors at accept(): wait instead of spinning on the readable listener
OTHERS_RESERVE = 32  # connection slots one client address leaves to the others by default (ConnectionLimits)
INFO_KEYS = ("model", "backend", "precision", "imgsz", "source")
STREAM_ROUTE = re.compile(r"/(?:stream/(?P<stream>\d{1,4})\.mjpg|snapshot/(?P<snapshot>\d{1,4})\.jpg)")
SUMMED = ("frames_read", "frames_processed", "frames_dropped", "frames_corrupt", "reconnects", "frames_with_detections")
WORST = ("p50_ms", "p95_ms", "pre_ms", "post_draw_ms", "elapsed_s")  # per-stream values; the top shows the largest
SHARED_KEYS = ("model_fps", "infer_ms")  # one model serves every stream: any stream's latest value is the run's
PER_FRAME = ("streams", "batch", "events", "stream_name", "video_time")  # not part of a stream's /stats entry


@dataclass(frozen=True)
class ConnectionLimits:
    """How many clients the server takes, how long they may take to ask, and what it leaves to the pipeline."""

    max_connections: int = 256  # above the 200 simultaneous viewers the server was load-tested with
    # one address may not take every slot: by default it leaves OTHERS_RESERVE of them to other addresses, so a
    # flood from one client never locks out the operator, while many viewers behind one NAT (or a load test from
    # one machine, 200 viewers) still fit
    max_per_client: Optional[int] = None
    header_timeout_s: float = 5.0  # request line + headers, in total (a browser sends them in one packet)
    fd_reserve: Optional[int] = None  # descriptors kept free; None: limits.default_reserve(soft limit)

    def __post_init__(self):
        if not 1 <= int(self.max_connections) <= 65536:
            raise SDKError(f"max_connections: got {self.max_connections}, expected a value in [1, 65536]")
        if self.max_per_client is not None and not 1 <= int(self.max_per_client) <= 65536:
            raise SDKError(f"max_per_client: got {self.max_per_client}, expected a value in [1, 65536]")
        if not 0 < float(self.header_timeout_s) <= 3600:
            raise SDKError(f"header_timeout_s: got {self.header_timeout_s}, expected seconds in (0, 3600]")
        if self.fd_reserve is not None and not 0 <= int(self.fd_reserve) <= 65536:
            raise SDKError(f"fd_reserve: got {self.fd_reserve}, expected a value in [0, 65536]")

    def reserve(self):
        return default_reserve(descriptor_limit()) if self.fd_reserve is None else int(self.fd_reserve)

    def per_client(self):
        if self.max_per_client is not None:
            return int(self.max_per_client)
        return max(self.max_connections // 2, self.max_connections - OTHERS_RESERVE, 1)


class LiveViewServer:
    """Serves a FrameHub on a resolved BindAddress (sdk/web/bind.py). Binds on construction (one-line SDKError on
    failure); `start()` runs the accept loop."""

    def __init__(self, hub, bind, token=None, uri=None, allowed_hosts=(), limits=ConnectionLimits()):
        self.hub = hub  # stream 0's; `start()` adds one per further stream of the run
        self.hubs = [hub]
        self.info = {}
        self.stream_infos = [{}]
        self.token = token
        self.bind = bind
        self.host_check = HostCheck(bind, allowed_hosts)
        self.page = PAGE.read_bytes()
        self._thread = None
        self.descriptor_limits = raise_descriptor_limit()  # (before, after): viewers are capped, not the run
        self.limits = limits
        try:  # bind now, so a taken port or a foreign address fails before any model or camera is opened
            self._httpd = _Server(bind, _Handler, live_view=self, limits=limits)
        except OSError as e:
            raise bind_error(uri or f"http://{bind.host}:{bind.port}", bind.host, bind.port, e) from None
        self.refused = self._httpd.refused  # counters, kept readable after close()

    def start(self, info=None, streams=1):
        """Start answering requests; `info` is the run's model/backend/precision/imgsz/source/names/size and, for
        a run of several streams, `streams`: one {"source", "size", "fps", "stream_name"} per stream."""
        self.info = dict(info or {})
        given = list(self.info.pop("streams", None) or ())
        self.stream_infos = [self.info] if streams == 1 else [given[i] if i < len(given) else {}
                                                               for i in range(streams)]
        self.hubs = [self.hub] + [type(self.hub)(self.hub.jpeg_quality) for _ in range(streams - 1)]
        self._httpd.stream_viewers = [0] * streams
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

    @property
    def connections(self):
        return self._httpd.connection_count() if self._httpd else 0

    def close(self):
        """Stop accepting, end every stream and connection, and join all server threads."""
        if self._httpd is None:
            return
        httpd, self._httpd = self._httpd, None
        httpd.closing = True
        for hub in self.hubs:
            hub.close()
        if self._thread is not None:
            httpd.shutdown()  # ends serve_forever
        httpd.drop_connections()  # wakes handlers blocked on a socket (a viewer that stopped reading)
        httpd.server_close()  # joins the handler threads (ThreadingMixIn.block_on_close)
        if self._thread is not None:
            self._thread.join()

    def refusal(self, headers, query):
        """None when the request may be served, else (status, message, extra headers)."""
        if self.token:
            if token_matches(self.token, headers, query):
                return None
            return (HTTPStatus.UNAUTHORIZED, "token required: ?token=... or Authorization: Bearer ...",
                    {"WWW-Authenticate": 'Bearer realm="live view"'})
        hosts = headers.get_all("Host") or []
        if len(hosts) > 1:
            return HTTPStatus.BAD_REQUEST, "more than one Host header", {}
        if self.host_check.allows(hosts[0] if hosts else None):
            return None
        return (HTTPStatus.FORBIDDEN, f"host {hosts[0].strip()[:100]!r} is not this server's address; without a "
                f"token only its own names are answered (--http-allow-host NAME adds one)", {})

    def stream_hub(self, index):
        """The FrameHub of stream `index`, or None when the run has no such stream."""
        return self.hubs[index] if 0 <= index < len(self.hubs) else None

    def stats(self):
        """The live stats: the run's at the top (a single stream's own, or summed over several), one entry per
        stream in `streams`."""
        entries = [self._stream_stats(i) for i in range(len(self.hubs))]
        if len(self.hubs) == 1:
            _, _, stats = self.hub.latest()
            out = {k: v for k, v in stats.items() if k not in ("counts", "frame_index", "timestamp")}
        else:
            out = self._overall(entries)
        out.update({k: self.info.get(k) for k in INFO_KEYS})
        top = entries[0] if len(entries) == 1 else {}
        out.update(counts=top.get("counts", out.get("counts", {})), frame_index=top.get("frame_index"),
                   timestamp=top.get("timestamp", out.get("timestamp")), names=self.info.get("names", []),
                   size=self.info.get("size"), viewers=self.viewers, streams=entries)
        return out

    def _stream_stats(self, index):
        _, _, stats = self.hubs[index].latest()
        info = self.stream_infos[index]
        entry = {k: v for k, v in stats.items() if k not in PER_FRAME}
        entry.update(stream=index, name=self._stream_name(index, stats),
                     source=stats.get("source", info.get("source")), size=info.get("size"), fps=info.get("fps"),
                     counts=stats.get("counts", {}), viewers=self._httpd.stream_viewers[index] if self._httpd else 0,
                     mjpeg=f"stream/{index}.mjpg", snapshot=f"snapshot/{index}.jpg")
        return entry

    def _stream_name(self, index, stats):
        """The name a frame's stats give the stream, else the run's info, else its number."""
        return stats.get("stream_name", self.stream_infos[index].get("stream_name", str(index)))

    def _overall(self, entries):
        """Several streams at the top of /stats: counters and FPS summed (aggregate throughput, as in the final
        JSON line), the worst stream's latency, the shared model's speed, lines and zones listed per stream."""
        started = [e for e in entries if "frames_processed" in e]
        out = {k: sum(e.get(k, 0) for e in started) for k in SUMMED}
        out["e2e_fps"] = round(sum(e.get("e2e_fps", 0.0) for e in started), 2)
        out.update({k: max((e.get(k, 0.0) for e in started), default=0.0) for k in WORST})
        newest = max(started, key=lambda e: e.get("timestamp") or 0, default={})
        out.update({k: newest.get(k, 0.0) for k in SHARED_KEYS})
        _, _, newest_stats = self.hubs[newest["stream"]].latest() if newest else (0, None, {})
        out["batch"] = newest_stats.get("batch")
        out["timestamp"] = newest.get("timestamp")
        for key in ("detections", "counts"):
            out[key] = _sum_dicts(e.get(key) or {} for e in started)
        if any("tracks_total" in e for e in started):
            out["tracks_total"] = sum(e.get("tracks_total", 0) for e in started)
        out["lines"] = [{"stream": e["stream"], "line": name, **totals} for e in started
                        for name, totals in (e.get("lines") or {}).items()]
        out["zones"] = [{"stream": e["stream"], "zone": name, "inside": z.get("inside"), "entries": z.get("entries")}
                        for e in started for name, z in (e.get("zones") or {}).items()]
        return out

    def detections(self):
        """The newest frame's boxes (any stream) at the top, as before streams existed; each stream's in `streams`."""
        per = []
        for i, hub in enumerate(self.hubs):
            _, dets, stats = hub.latest()
            per.append({"stream": i, "name": self._stream_name(i, stats),
                        "frame_index": stats.get("frame_index"), "timestamp": stats.get("timestamp"),
                        "counts": dets.counts() if dets is not None else {},
                        "detections": detection_list(dets) if dets is not None else [],
                        "events": stats.get("events") or []})
        newest = max(per, key=lambda d: d["timestamp"] or 0)
        return {**{k: newest[k] for k in ("stream", "frame_index", "timestamp", "counts", "detections")},
                "streams": per}


def _sum_dicts(dicts):
    out = {}
    for d in dicts:
        for k, v in d.items():
            out[k] = out.get(k, 0) + v
    return out


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
    return SDKError(f"output {uri}: {why}")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # many viewers may connect at once (waiting in the kernel costs no descriptor)

    def __init__(self, bind, handler, live_view, limits):
        self.live_view = live_view
        self.limits = limits
        self.closing = False
        self.viewers = 0
        self.stream_viewers = [0]
        self.refused = {"connections": 0, "per_client": 0, "descriptors": 0, "header_timeout": 0}
        self._connections = {}  # socket -> client address (host only: a client's ports are all the same client)
        self._header_deadlines = {}  # socket -> monotonic time its headers must have arrived by
        self._lock = threading.Lock()
        self.address_family = bind.family
        super().__init__((bind.address, bind.port), handler)

    def get_request(self):
        try:
            return super().get_request()
        except OSError as e:
            if e.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                time.sleep(ACCEPT_BACKOFF_S)
            raise  # socketserver drops this accept attempt and goes on

    def verify_request(self, request, client_address):
        """Runs in the accept loop before any thread exists: refuse over the cap or near the descriptor limit."""
        host = client_address[0] if client_address else None
        with self._lock:
            full = len(self._connections) >= self.limits.max_connections
            mine = sum(1 for h in self._connections.values() if h == host)
        if full:
            return self._refuse(request, "connections", "too many connections")
        if mine >= self.limits.per_client():
            return self._refuse(request, "per_client", "too many connections from this address")
        left = descriptors_left(self.limits.reserve())  # this accepted socket is already counted
        if left is not None and left < 0:
            return self._refuse(request, "descriptors", "out of descriptors for clients")
        return True

    def _refuse(self, request, counter, why):
        self.refused[counter] += 1
        body = json.dumps({"error": f"{why}, try again later"}).encode()
        head = (f"HTTP/1.0 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: {len(body)}"
                f"\r\nRetry-After: 5\r\nConnection: close\r\n\r\n").encode()
        try:
            request.setblocking(False)
            try:  # drop what the client already sent, so closing sends FIN (the 503 arrives), not RST
                request.recv(65536)
            except BlockingIOError:
                pass
            request.send(head + body)  # a fresh socket's send buffer takes it whole, never blocks
        except OSError:
            pass
        return False  # socketserver then closes it (shutdown_request)

    def process_request(self, request, client_address):
        with self._lock:
            self._connections[request] = client_address[0] if client_address else None
            self._header_deadlines[request] = time.monotonic() + self.limits.header_timeout_s
        super().process_request(request, client_address)

    def headers_received(self, request):
        with self._lock:
            self._header_deadlines.pop(request, None)

    def service_actions(self):
        """Called by serve_forever at least every poll interval: drop clients whose headers are late."""
        now = time.monotonic()
        with self._lock:
            late = [s for s, deadline in self._header_deadlines.items() if deadline <= now]
            for sock in late:
                del self._header_deadlines[sock]
        for sock in late:
            self.refused["header_timeout"] += 1
            _wake(sock)  # the handler's read returns at once and its thread ends

    def shutdown_request(self, request):
        with self._lock:
            self._connections.pop(request, None)
            self._header_deadlines.pop(request, None)
        super().shutdown_request(request)

    def connection_count(self):
        with self._lock:
            return len(self._connections)

    def drop_connections(self):
        with self._lock:
            connections = list(self._connections)
        for sock in connections:
            _wake(sock)

    def count_viewer(self, delta, stream=0):
        with self._lock:
            self.viewers += delta
            self.stream_viewers[stream] += delta

    def handle_error(self, request, client_address):
        pass  # a viewer that vanished mid-response is normal, not worth a traceback


def _wake(sock):
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:  # already closed by its handler
        pass


class _Handler(BaseHTTPRequestHandler):
    server_version = "sdk-live-view"
    timeout = SOCKET_TIMEOUT_S

    def log_message(self, format, *args):  # noqa: A002  (keep the detector's stdout/stderr clean)
        pass

    def parse_request(self):
        ok = super().parse_request()
        self.server.headers_received(self.request)  # in time: the header deadline no longer applies
        return ok

    def do_GET(self):  # noqa: N802  (http.server naming)
        view = self.server.live_view
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        refusal = view.refusal(self.headers, query)
        if refusal is not None:
            status, message, headers = refusal
            self._send(status, json.dumps({"error": message}).encode(), "application/json", headers)
            return
        route = {"/": self._page, "/index.html": self._page, "/stream.mjpg": lambda: self._stream(0),
                 "/snapshot.jpg": lambda: self._snapshot(0), "/stats": lambda: self._json(view.stats()),
                 "/detections": lambda: self._json(view.detections())}.get(url.path)
        per_stream = STREAM_ROUTE.fullmatch(url.path)  # /stream/1.mjpg, /snapshot/1.jpg
        if per_stream:
            kind = "stream" if per_stream["stream"] is not None else "snapshot"
            index = int(per_stream[kind])
            if view.stream_hub(index) is not None:
                route = partial(self._stream if kind == "stream" else self._snapshot, index)
        if route is None:
            n = len(view.hubs)
            self._json({"error": f"no route {url.path}", "streams": n,
                        "routes": ["/", "/stream.mjpg", "/snapshot.jpg", "/stats", "/detections",
                                   f"/stream/N.mjpg (N = 0..{n - 1})", f"/snapshot/N.jpg (N = 0..{n - 1})"]},
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
        self.send_header("X-Content-Type-Options", "nosniff")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _json(self, obj, status=HTTPStatus.OK):
        self._send(status, json.dumps(obj).encode(), "application/json")

    def _page(self):
        self._send(HTTPStatus.OK, self.server.live_view.page, "text/html; charset=utf-8")

    def _snapshot(self, stream):
        _, jpeg = self.server.live_view.hubs[stream].jpeg()
        if jpeg is None:
            self._json({"error": "no frame yet"}, HTTPStatus.SERVICE_UNAVAILABLE)
        else:
            self._send(HTTPStatus.OK, jpeg, "image/jpeg")

    def _stream(self, stream):
        hub, server = self.server.live_view.hubs[stream], self.server
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        server.count_viewer(+1, stream)
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
            server.count_viewer(-1, stream)
