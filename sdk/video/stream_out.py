"""Streams out: `--output rtsp://HOST:PORT/NAME` (an RTSP server) and `--output rtp://HOST:PORT` (H.264 over UDP).

rtsp:// runs GStreamer's rtsp-server (`appsrc ! videoconvert ! <H.264 encoder> ! rtph264pay`, the encoder probed
best first: nvv4l2h264enc on a Jetson, x264enc, openh264enc; avenc_h264_omx is left out on purpose, see
stream_out_gst.ENCODERS) in a helper process,
sdk/video/stream_out_gst.py, run by path by an interpreter that has GStreamer's Python bindings: $SDK_GSTREAMER_PYTHON
when set, else this one, else /usr/bin/python3 (Debian and JetPack ship `gi` for the system python only). Always a
process, even where this interpreter has `gi`: one path that is tested everywhere, GLib's main loop and any
GStreamer crash kept out of the detector, encoding on its own core with no GIL in common. Frames go down a pipe
as packed BGR behind a small header. Outputs on the same address and port share one server (one mount each:
`rtsp://@:8554/cam{stream}` serves /cam0, /cam1, ...). Where the address is bound follows the live view's rules
(sdk/web/bind.py): no host or 127.0.0.1 is this machine only, `@` (or 0.0.0.0) every interface. RTSP here has no
authentication, so with `require_token` (--http-require-token, always on in the systemd unit) anything but a
loopback address is refused. A mount's frames go down the pipe only while it has a client (after its first frame,
which publishes it): 1080p30 is ~187 MB/s of pipe traffic that nobody would decode.

rtp:// encodes in this process with FFmpeg's libx264 through PyAV (the `video` extra that saved videos use) and
sends RTP packets with FFmpeg's rtp muxer: no server and no state to share, so no process is needed, and it
works wherever PyAV does (GStreamer not required). Readers need an SDP file, written at open (`?sdp=PATH`, else in
a private per-user temp folder) and printed. SPS/PPS travel in-band with every keyframe (one a second), so a reader
may join at any time. On a Jetson this is a CPU encoder: rtsp:// is the output that uses the hardware encoder.

Back-pressure: `write` only puts the frame in a one-frame slot; a feeder thread per output sends the newest frame
when the previous one is gone, so a slow network, a stalled helper or no client at all never holds the pipeline
up: a frame replaced in the slot is a drop, counted per output (`outputs` in the final stats).
"""
from __future__ import annotations

import functools
import importlib.util
import ipaddress
import json
import os
import queue
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from collections import deque
from fractions import Fraction
from typing import Callable, Optional

import cv2
import numpy as np

from ..errors import SDKError
from ..fileio import write_text_atomic
from ..web.bind import EVERYWHERE, LOOPBACK, resolve_bind
from . import stream_out_gst as gst_protocol
from .sinks import Sink, writable_path
from .uri import parse_uri

RTSP_PORT = 8554
DEFAULT_KBPS = 4000
GST_PYTHON_ENV = "SDK_GSTREAMER_PYTHON"
SYSTEM_PYTHON = "/usr/bin/python3"
HELPER = os.path.abspath(gst_protocol.__file__)
# Debian/Ubuntu/JetPack: appsrc + videoconvert, rtph264pay, x264enc, the rtsp-server typelib (pulls the library), gi
APT_PACKAGES = ("gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-ugly "
                "gir1.2-gst-rtsp-server-1.0 python3-gi")
READY_TIMEOUT_S = 20.0
CLOSE_TIMEOUT_S = 5.0


# ---- the feeder: a one-frame slot and a thread, so that no output can stall the pipeline ------------------------
class LatestFrameFeeder:
    """Hands the newest frame to `send` on its own thread; a frame replaced before it was sent is a drop."""

    def __init__(self, name: str, send: Callable[[np.ndarray], None]):
        self.send = send
        self.sent = self.dropped = 0
        self.error: Optional[BaseException] = None
        self._frame = None
        self._stopping = False
        self._cv = threading.Condition()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def offer(self, frame: np.ndarray) -> None:
        with self._cv:
            if self._frame is not None:
                self.dropped += 1
            self._frame = frame
            self._cv.notify()

    def _run(self):
        while True:
            with self._cv:
                while self._frame is None and not self._stopping:
                    self._cv.wait()
                if self._frame is None:  # stopping, and nothing left to send
                    return
                frame, self._frame = self._frame, None
            try:
                self.send(frame)
            except BaseException as e:  # the sink reports it at its next write
                self.error = e
                return
            self.sent += 1

    def close(self, timeout: float = CLOSE_TIMEOUT_S) -> bool:
        """Send what is waiting, then stop; False when `send` is still blocked after `timeout` seconds."""
        with self._cv:
            self._stopping = True
            self._cv.notify()
        self._thread.join(timeout)
        return not self._thread.is_alive()


class StreamSink(Sink):
    """What rtsp:// and rtp:// share: the feeder, a fixed frame size (the first frame's), the stats."""

    what = "the stream"

    def __init__(self, uri):
        self.uri = uri
        self.size = None
        self.feeder: Optional[LatestFrameFeeder] = None

    def write(self, frame_bgr_annotated, detections, stats):
        if self.feeder.error is not None:
            raise SDKError(f"output {self.uri}: got '{self._failure(self.feeder.error)}' while streaming, "
                           f"expected {self.what} to keep running")
        self.feeder.offer(frame_bgr_annotated)

    def _send(self, frame):
        if self.size is None:
            self.size = self.stream_size(frame)
        if frame.shape[1::-1] != self.size:  # e.g. a mosaic that changes shape: the stream's size is fixed
            frame = cv2.resize(frame, self.size)
        self.send_frame(np.ascontiguousarray(frame))

    def stream_size(self, frame):
        """(width, height) of the stream, from its first frame."""
        return frame.shape[1::-1]

    def send_frame(self, frame):
        raise NotImplementedError

    def _failure(self, error):
        return f"{type(error).__name__}: {error}"

    def output_stats(self) -> dict:
        """Per-output counters for the final stats: frames sent and dropped (replaced while the output was busy)."""
        feeder = self.feeder
        return {"output": self.uri, "frames_sent": feeder.sent if feeder else 0,
                "frames_dropped": feeder.dropped if feeder else 0}


def refuse_unauthenticated(uri, scope, what):
    """The --http-require-token rule for outputs that have no authentication: loopback only."""
    raise SDKError(f"output {uri}: got an address reachable from other machines ({scope}) and {what} without "
                   f"authentication, expected a loopback address such as 127.0.0.1 (--http-require-token is set)")


# ---- rtsp:// ----------------------------------------------------------------------------------------------------
def parse_rtsp_output(uri):
    """`rtsp://HOST:PORT/NAME?bitrate=KBIT&encoder=NAME` -> (BindAddress, "/NAME", kbit/s, encoder or None).
    No host: 127.0.0.1; `@`: every interface."""
    text = str(uri)
    base, _, _ = text.partition("?")
    after = base.split("://", 1)[1]
    path = "/" + after.split("/", 1)[1] if "/" in after else ""
    if path.strip("/") == "" or any(c in path for c in " #%\\"):
        raise SDKError(f"output {text}: got mount path '{path or '(none)'}', expected rtsp://HOST:PORT/NAME such "
                       f"as rtsp://@:{RTSP_PORT}/cam (NAME: letters, digits, - _ . /)")
    bind = resolve_bind(base, default_port=RTSP_PORT)
    options = parse_uri(text, "output").options
    encoder = options.get("encoder")
    names = [name for name, _ in gst_protocol.ENCODERS]
    if encoder is not None and encoder not in names:
        raise SDKError(f"output {text}: got encoder={encoder}, expected one of {', '.join(names)}")
    return bind, path.rstrip("/"), _kbps(text, options), encoder


def _kbps(text, options):
    raw = options.get("bitrate", DEFAULT_KBPS)
    try:
        kbps = int(raw)
    except ValueError:
        kbps = -1
    if not 100 <= kbps <= 100_000:
        raise SDKError(f"output {text}: got bitrate={raw}, expected kbit/s from 100 to 100000 "
                       f"(default {DEFAULT_KBPS})")
    return kbps


@functools.lru_cache(maxsize=None)
def find_gstreamer_python(preferred: Optional[str] = None):
    """(interpreter, probe) of the first Python whose GStreamer has rtsp-server and an H.264 encoder; SDKError-ready
    (None, reasons) when none has. Looked for lazily (the first rtsp:// output), once per process."""
    candidates = [preferred] if preferred else [sys.executable, SYSTEM_PYTHON]
    reasons, seen = [], set()
    for python in candidates:
        real = os.path.realpath(shutil.which(python) or python)
        if real in seen:
            continue
        seen.add(real)
        if not os.access(real, os.X_OK) or os.path.isdir(real):
            reasons.append(f"{python}: not found")
            continue
        if real == os.path.realpath(sys.executable) and importlib.util.find_spec("gi") is None:
            reasons.append(f"{python}: no module gi")  # no need to start a process to learn that
            continue
        try:
            p = subprocess.run([python, HELPER, "--probe"], capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired) as e:
            reasons.append(f"{python}: {type(e).__name__}")
            continue
        event = _last_json(p.stdout)
        if event.get("event") == "probe":
            return python, event
        reasons.append(f"{python}: {event.get('message') or (p.stderr.strip().splitlines() or ['failed'])[-1]}")
    return None, reasons


def _last_json(text):
    for line in reversed(text.strip().splitlines()):
        try:
            return json.loads(line)
        except ValueError:
            continue
    return {}


class RtspServerProcess:
    """One helper process serving one address and port; RtspSinks on that port each have a mount in it."""

    def __init__(self, uri, bind, encoder=None):
        python, found = find_gstreamer_python(os.environ.get(GST_PYTHON_ENV) or None)
        if python is None:
            raise SDKError(f"output {uri}: got no GStreamer RTSP server ({'; '.join(found)}), expected GStreamer 1.x "
                           f"with gst-rtsp-server, an H.264 encoder and python3-gi (sudo apt install {APT_PACKAGES}; "
                           f"or {GST_PYTHON_ENV}=/path/to/python3 with gi)")
        self.uri, self.bind, self.python = uri, bind, python
        command = [python, HELPER, "--address", bind.address, "--port", str(bind.port)]
        # the encoder that find_gstreamer_python's probe saw encode: the helper then test-encodes that one only
        self.command = command + ["--encoder", encoder or found["encoder"]]
        self.proc = subprocess.Popen(self.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, close_fds=True)
        self.stderr_tail = deque(maxlen=20)
        self.clients = 0  # RTSP clients of the whole server (all its mounts)
        self.watched = set()  # mount ids that have a client now (their media exists)
        self.lock = threading.Lock()
        self.mount_paths = {}
        self._events = queue.Queue()
        self.readers = [threading.Thread(target=self._read_stderr, daemon=True),
                        threading.Thread(target=self._read_events, daemon=True)]
        # the helper also stops when our end of stdin closes, which the OS does if this process dies
        self._finalizer = weakref.finalize(self, _stop_process, self.proc, readers=self.readers)
        for thread in self.readers:
            thread.start()
        try:
            ready = self._events.get(timeout=READY_TIMEOUT_S)
        except queue.Empty:
            ready = {"event": "error", "message": f"no answer in {READY_TIMEOUT_S:.0f} s"}
        if ready.get("event") != "ready":
            self.stop()
            message = ready.get("message") or self._tail() or "the server process exited"
            raise SDKError(f"output {uri}: got '{message}' from the RTSP server, expected a free port on an "
                           f"address of this machine" + (f" and GStreamer's {encoder}" if encoder else ""))
        self.port, self.encoder, self.gstreamer = ready["port"], ready["encoder"], ready["gstreamer"]

    def _read_events(self):
        try:
            for line in self.proc.stdout:
                try:
                    event = json.loads(line)
                except ValueError:
                    continue
                kind = event.get("event")
                if kind == "clients":
                    self.clients = int(event.get("count", 0))
                elif kind == "watched":
                    (self.watched.add if event.get("watched") else self.watched.discard)(int(event.get("mount", -1)))
                else:
                    self._events.put(event)
        except (ValueError, OSError):  # the pipe closed under us at stop: nothing more to read
            pass
        self._events.put({"event": "exited"})

    def _read_stderr(self):
        try:
            for line in self.proc.stderr:
                self.stderr_tail.append(line.decode("utf-8", "replace").rstrip())
        except (ValueError, OSError):
            pass

    def _tail(self):
        lines = [line for line in self.stderr_tail if line.strip()]
        return lines[-1] if lines else ""

    def add_mount(self, path):
        if path in self.mount_paths.values():
            raise SDKError(f"output {self.uri}: got mount path {path} twice on port {self.port}, expected one "
                           f"output per path (a {{stream}} placeholder makes one per stream)")
        mount_id = len(self.mount_paths)
        self.mount_paths[mount_id] = path
        return mount_id

    def _send(self, header, payload):
        with self.lock:
            stdin = self.proc.stdin
            stdin.write(header)
            stdin.write(payload)
            stdin.flush()

    def announce(self, mount_id, fps, kbps):
        path = self.mount_paths[mount_id].encode("utf-8")
        self._send(gst_protocol.encode_message(gst_protocol.MOUNT, mount_id, int(round(fps * 1000)), kbps, path), path)

    def send_frame(self, mount_id, frame):
        h, w = frame.shape[:2]
        payload = memoryview(frame).cast("B")
        self._send(gst_protocol.encode_message(gst_protocol.FRAME, mount_id, w, h, payload), payload)

    def failure(self):
        code = self.proc.poll()
        tail = self._tail()
        return (f"the RTSP server process exited ({code})" if code is not None else "the pipe to the RTSP server "
                "broke") + (f": {tail}" if tail else "")

    def stop(self, timeout=CLOSE_TIMEOUT_S, kill=False):
        _stop_process(self.proc, timeout, kill, self.readers)


def _stop_process(proc, timeout=CLOSE_TIMEOUT_S, kill=False, readers=()):
    """Close its stdin (the helper's signal to stop), then wait; terminate, then kill, if it does not. `kill`: at
    once (a feeder thread blocked writing to it holds the pipe, which only the helper's death releases). The
    `readers` of its stdout/stderr see EOF once it is gone: they are joined before those pipes are closed."""
    if kill and proc.poll() is None:
        proc.kill()
        proc.wait()
    if proc.poll() is None:
        try:
            proc.stdin.close()
        except OSError:  # a broken pipe: it is gone or going
            pass
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.terminate()
            try:
                proc.wait(2.0)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    for thread in readers:
        if thread.is_alive() and thread is not threading.current_thread():
            thread.join(2.0)
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        try:
            stream.close()
        except OSError:
            pass


class _Servers:
    """RTSP server processes by (address, port), shared by the outputs on them, stopped with the last one."""

    def __init__(self):
        self.lock = threading.Lock()
        self.by_key = {}  # (address, port) -> [server, users]

    def acquire(self, uri, bind, encoder=None):
        key = (bind.address, bind.port) if bind.port else None  # port 0: a new server on any free port
        with self.lock:
            entry = self.by_key.get(key) if key else None
            if entry is None:
                entry = [RtspServerProcess(uri, bind, encoder), 0]
                if key:
                    self.by_key[key] = entry
            server = entry[0]
            if encoder and encoder != server.encoder:
                raise SDKError(f"output {uri}: got encoder={encoder} on port {server.port}, whose server already "
                               f"runs {server.encoder}, expected one encoder per port (or another port)")
            entry[1] += 1
            return server

    def release(self, server, kill=False):
        with self.lock:
            for key, entry in list(self.by_key.items()):
                if entry[0] is server:
                    entry[1] -= 1
                    if entry[1] > 0 and not kill:
                        return
                    del self.by_key[key]
        server.stop(kill=kill)


SERVERS = _Servers()


class RtspSink(StreamSink):
    """`rtsp://HOST:PORT/NAME`: an RTSP server (GStreamer rtsp-server in a helper process) serving the annotated
    frames as H.264 at /NAME; `?bitrate=KBIT` (default 4000), `?encoder=x264enc` to choose the encoder (else the
    best found). The mount appears with the first frame; later frames go to the helper only while the mount has a
    client (`frames_unwatched` counts the others). `require_token` (--http-require-token): RTSP has no
    authentication here, so only a loopback address is accepted."""

    what = "the RTSP server"

    def __init__(self, uri, require_token: bool = False):
        super().__init__(uri)
        self.bind, self.path, self.kbps, encoder = parse_rtsp_output(uri)
        if require_token and not self.bind.local_only:
            refuse_unauthenticated(uri, self.bind.address, "RTSP")
        self.unwatched = 0
        # started here, before the model loads: no GStreamer, or a taken port, fails the run at once
        self.server = SERVERS.acquire(uri, self.bind, encoder)
        try:
            self.mount_id = self.server.add_mount(self.path)
        except SDKError:
            SERVERS.release(self.server)
            raise
        self._released = False

    @property
    def url(self):
        host = self.bind.address
        if self.bind.scope == EVERYWHERE:
            host = "::1" if self.bind.ip.version == 6 else "127.0.0.1"
        host = f"[{host}]" if ":" in host else host
        return f"rtsp://{host}:{self.server.port}{self.path}"

    def open(self, info):
        self.server.announce(self.mount_id, float(info.get("fps") or 30.0), self.kbps)
        self.feeder = LatestFrameFeeder(f"rtsp{self.path}", self._send)
        how = f"H.264 by {self.server.encoder}, {self.server.gstreamer} run by {self.server.python}"
        if self.bind.scope == EVERYWHERE:
            print(f"rtsp: serving on all interfaces, port {self.server.port}: rtsp://<this machine's address>:"
                  f"{self.server.port}{self.path} ({how})", file=sys.stderr)
            print("warning: rtsp: no authentication, so anyone on the network can watch", file=sys.stderr)
        else:
            where = (f"this machine only; rtsp://@:{self.server.port}{self.path} for all interfaces"
                     if self.bind.scope == LOOPBACK else
                     f"reachable by every machine that can reach {self.bind.address}")
            print(f"rtsp: serving {self.url} ({how}; {where})", file=sys.stderr)

    def write(self, frame_bgr_annotated, detections, stats):
        # published (its first frame went through) and nobody watching: nothing to send, but a dead helper still
        # stops the run
        if self.feeder is not None and self.feeder.sent and self.mount_id not in self.server.watched \
                and self.feeder.error is None:
            if self.server.proc.poll() is not None:
                raise SDKError(f"output {self.uri}: got '{self.server.failure()}' while streaming, expected "
                               f"{self.what} to keep running")
            self.unwatched += 1
            return
        super().write(frame_bgr_annotated, detections, stats)

    def send_frame(self, frame):
        self.server.send_frame(self.mount_id, frame)

    def _failure(self, error):
        return self.server.failure()

    def output_stats(self):
        """Also `frames_unwatched` (not sent: the mount had no client) and `clients` (RTSP clients connected to
        this output's server now, all of its mounts together)."""
        return {**super().output_stats(), "frames_unwatched": self.unwatched, "clients": self.server.clients}

    def close(self):
        if self._released:
            return
        self._released = True
        stuck = self.feeder is not None and not self.feeder.close()
        SERVERS.release(self.server, kill=stuck)  # a helper that stopped reading is killed, never waited for

    abort = close


# ---- rtp:// -----------------------------------------------------------------------------------------------------
def parse_rtp_output(uri):
    """`rtp://HOST:PORT?sdp=PATH&bitrate=KBIT&ttl=N` -> (numeric address, port, options); HOST may be multicast."""
    text = str(uri)
    parsed = parse_uri(text, "output")
    netloc = parsed.location.split("?", 1)[0].split("/", 1)[0]
    host, _, port_text = netloc.rpartition(":")
    host = host.strip("[]")
    if not host or not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise SDKError(f"output {text}: got '{netloc}', expected rtp://HOST:PORT such as rtp://192.168.1.20:5004 "
                       f"(the receiver's address, or a multicast group such as 239.0.0.1)")
    try:
        infos = socket.getaddrinfo(host, int(port_text), type=socket.SOCK_DGRAM)
    except (socket.gaierror, UnicodeError) as e:
        raise SDKError(f"output {text}: address '{host}' cannot be resolved ({getattr(e, 'strerror', None) or e}), "
                       f"expected an IP address or a host name") from None
    address = next((i[4][0] for i in infos if i[0] == socket.AF_INET), infos[0][4][0])
    return address, int(port_text), parsed.options


def private_temp_dir(what: str) -> str:
    """`<temp>/edge-sdk-<uid>`, created 0700: a folder where other users can neither read nor plant files (or links).
    One that exists and is not ours, or that others may write to, is refused rather than trusted."""
    uid = os.getuid() if hasattr(os, "getuid") else None  # Windows: no uid, and a per-user temp folder already
    path = os.path.join(tempfile.gettempdir(), "edge-sdk" if uid is None else f"edge-sdk-{uid}")
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    except OSError as e:
        raise SDKError(f"{what}: cannot create {path} ({e.strerror}), expected a writable temp folder "
                       f"(or ?sdp=PATH)") from None
    st = os.lstat(path)
    problems = []
    if not stat.S_ISDIR(st.st_mode):
        problems.append("not a folder")
    if uid is not None and st.st_uid != uid:
        problems.append(f"owned by uid {st.st_uid}")
    if uid is not None and st.st_mode & 0o022:
        problems.append(f"writable by others (mode {stat.S_IMODE(st.st_mode):o})")
    if problems:
        raise SDKError(f"{what}: got {path} {', '.join(problems)}, expected a folder of uid {uid} that only it can "
                       f"write (remove it, or give ?sdp=PATH)")
    return path


def sdp_text(address, port, name="edge-sdk"):
    """The session description a reader (ffplay, VLC, GStreamer's sdpdemux) needs for an H.264 RTP stream."""
    family = "IP6" if ipaddress.ip_address(address).version == 6 else "IP4"
    ttl = "/16" if ipaddress.ip_address(address).is_multicast and family == "IP4" else ""
    return (f"v=0\r\no=- 0 0 IN {family} {address}\r\ns={name}\r\nc=IN {family} {address}{ttl}\r\nt=0 0\r\n"
            f"m=video {port} RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=fmtp:96 packetization-mode=1\r\n")


class RtpSink(StreamSink):
    """`rtp://HOST:PORT`: H.264 (libx264 through PyAV) in RTP over UDP to HOST:PORT, and an SDP file for readers."""

    what = "the RTP sender"

    def __init__(self, uri, require_token: bool = False):
        super().__init__(uri)
        from .writer import h264_encoder  # noqa: PLC0415  (PyAV is optional)

        self.address, self.port, options = parse_rtp_output(uri)
        if require_token and ipaddress.ip_address(self.address.split("%")[0]).is_multicast:
            # unicast goes to the one receiver the user named; a multicast group is open to anyone who joins it
            refuse_unauthenticated(uri, f"multicast group {self.address}", "RTP")
        self.kbps = _kbps(uri, options)
        self.ttl = options.get("ttl")
        if self.ttl is not None and not (self.ttl.isdigit() and 1 <= int(self.ttl) <= 255):
            raise SDKError(f"output {uri}: got ttl={self.ttl}, expected a multicast TTL from 1 to 255")
        self.codec = h264_encoder()
        if self.codec is None:
            raise SDKError(f"output {uri}: got no H.264 encoder (PyAV is not installed), expected PyAV with libx264 "
                           f"(pip install -e '.[video]')")
        sdp = options.get("sdp") or os.path.join(private_temp_dir(f"output {uri}: sdp"),
                                                 f"rtp-{self.address.replace(':', '_')}-{self.port}.sdp")
        self.sdp_path = writable_path(sdp, f"output {uri}: sdp")
        self.container = self.stream = None
        self.fps = 30.0
        self._t0 = None
        self._last_pts = -1

    def open(self, info):
        self.fps = float(info.get("fps") or 30.0)
        write_text_atomic(self.sdp_path, sdp_text(self.address, self.port), f"output {self.uri}: sdp")
        self.feeder = LatestFrameFeeder(f"rtp:{self.port}", self._send)
        print(f"rtp: H.264 ({self.codec}, PyAV) to udp {self.address}:{self.port}; SDP for readers: {self.sdp_path} "
              f"(ffplay -protocol_whitelist file,udp,rtp {self.sdp_path})", file=sys.stderr)

    def _open_container(self, width, height):
        import av  # noqa: PLC0415

        query = "pkt_size=1200" + (f"&ttl={self.ttl}" if self.ttl else "")
        host = f"[{self.address}]" if ":" in self.address else self.address
        self.container = av.open(f"rtp://{host}:{self.port}?{query}", mode="w", format="rtp")
        self.stream = self.container.add_stream(self.codec, rate=Fraction(self.fps).limit_denominator(1001))
        self.stream.width, self.stream.height, self.stream.pix_fmt = width, height, "yuv420p"
        gop = str(max(int(round(self.fps)), 1))  # a keyframe (with SPS/PPS) every second: late readers can join
        self.stream.bit_rate = self.kbps * 1000
        self.stream.options = ({"preset": "ultrafast", "tune": "zerolatency", "g": gop, "bf": "0"}
                               if self.codec == "libx264" else {"g": gop})
        self.stream.codec_context.time_base = Fraction(1, 90000)

    def stream_size(self, frame):
        return frame.shape[1] - frame.shape[1] % 2, frame.shape[0] - frame.shape[0] % 2  # 4:2:0 needs even sides

    def send_frame(self, frame):
        import av  # noqa: PLC0415

        if self.container is None:
            self._open_container(*self.size)
            self._t0 = time.perf_counter()
        vf = av.VideoFrame.from_ndarray(frame, format="bgr24")
        # RTP timestamps from the wall clock: live frames come when they come (dropped ones leave a gap)
        pts = max(int((time.perf_counter() - self._t0) * 90000), self._last_pts + 1)
        self._last_pts = vf.pts = pts
        vf.time_base = Fraction(1, 90000)
        for packet in self.stream.encode(vf):
            self.container.mux(packet)

    def close(self):
        if self.feeder is not None and not self.feeder.close():
            return  # the encoder is stuck in a send: leave it to the process exit
        if self.container is not None:
            try:
                for packet in self.stream.encode(None):
                    self.container.mux(packet)
            finally:
                self.container.close()
                self.container = None

    abort = close

