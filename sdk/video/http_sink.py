"""`--output http://HOST:PORT`: watch the running detector from a browser (page, MJPEG, snapshot, JSON stats).

The sink only hands the newest annotated frame to a FrameHub; the server's own threads do the JPEG encoding
(only while someone watches) and the networking, so viewers never slow the pipeline.
"""
import sys

from ..errors import SDKError
from ..web.frames import FrameHub
from ..web.server import LiveViewServer, parse_bind
from .sinks import Sink


class HttpSink(Sink):
    def __init__(self, uri, token=None):
        self.uri = uri
        if token is not None and not str(token).strip():
            raise SDKError("--http-token: got an empty token, expected a non-empty secret (or no --http-token)")
        self.token = token
        self.host, self.port, self.all_interfaces = parse_bind(uri)
        self.hub = FrameHub()
        # bound here, served from open(): a taken port or a bad address fails before the run starts
        self.server = LiveViewServer(self.hub, self.host, self.port, token=token, uri=uri)
        self.port = self.server.address[1]  # the real port when 0 (any free port) was asked for

    def open(self, info):
        self.server.start(info)
        guard = " (token required)" if self.token else ""
        if self.all_interfaces:
            print(f"http: live view listening on all interfaces, port {self.port}{guard}: open "
                  f"http://<this machine's address>:{self.port}/ from another machine", file=sys.stderr)
        else:
            print(f"http: live view on {self.url}{guard} (this machine only; use http://@:{self.port} for all "
                  f"interfaces)", file=sys.stderr)

    @property
    def url(self):
        host = "127.0.0.1" if self.all_interfaces else self.host
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}/"

    def write(self, frame_bgr_annotated, detections, stats):
        self.hub.publish(frame_bgr_annotated, detections, stats)

    def close(self):
        if self.server is not None:
            self.server.close()
            self.server = None
