"""The GStreamer RTSP server behind `--output rtsp://HOST:PORT/NAME`, run as a helper process by path:

    <python with gi> .../sdk/video/stream_out_gst.py --address 127.0.0.1 --port 8554 [--encoder x264enc]
    <python with gi> .../sdk/video/stream_out_gst.py --probe                           (what is installed)

It imports only the standard library and PyGObject (`gi`), never the SDK: the interpreter that has GStreamer's
Python bindings is often not the SDK's (Debian/JetPack ship them for the system python3 only). The SDK side is
sdk/video/stream_out.py; both ends of the pipe protocol are defined here.

stdin carries messages, each a HEADER (magic, kind, mount id, a, b, payload length) and a payload:
  MOUNT  a = frame rate x 1000, b = kbit/s, payload = the mount path (utf-8) -> a media factory at that path
  FRAME  a = width, b = height, payload = the frame as packed BGR  -> pushed into that mount's appsrc
EOF on stdin (the SDK closed it, or died) stops the server. stdout carries JSON lines: {"event": "ready", "port",
"encoder", "gstreamer"}, {"event": "error", "message"}, {"event": "clients", "count"} (the whole server's),
{"event": "watched", "mount", "watched"} (a mount's media was made for a client / was let go: the SDK sends that
mount's frames only while it is watched).

Each mount is `appsrc ! queue (leaky, 2 buffers) ! videoconvert ! <H.264 encoder> ! rtph264pay`, shared by all
of its clients (one encoder per mount however many watch); it is encoded only while someone watches. The leaky
queue drops frames rather than ever stalling the reader when the encoder falls behind.
"""
import argparse
import json
import signal
import struct
import sys
import threading
import time

MAGIC = b"SDKV"
HEADER = struct.Struct("<4sBHIII")  # magic, kind, mount id, a, b, payload bytes
MOUNT, FRAME = 1, 2
NEEDED = ("appsrc", "queue", "videoconvert", "rtph264pay")
# H.264 encoders, best first: (element, chain from BGR frames to H.264). {gop}: frames between keyframes, so a
# client that joins late waits at most a second for a picture; {kbps}: bitrate.
ENCODERS = (
    ("nvv4l2h264enc", "videoconvert ! video/x-raw,format=BGRx ! nvvidconv ! video/x-raw(memory:NVMM),format=NV12 ! "
                      "nvv4l2h264enc bitrate={bps} insert-sps-pps=true iframeinterval={gop} idrinterval={gop} ! "
                      "h264parse"),
    ("x264enc", "videoconvert ! video/x-raw,format=I420 ! x264enc tune=zerolatency speed-preset=ultrafast "
                "bitrate={kbps} key-int-max={gop} ! video/x-h264,profile=constrained-baseline"),
    ("openh264enc", "videoconvert ! video/x-raw,format=I420 ! openh264enc bitrate={bps} gop-size={gop}"),
)
# Not listed: avenc_h264_omx (gstreamer1.0-libav registers it, but it needs an OpenMAX IL library that desktop Linux
# lacks, so the mount fails with 503). An encoder is only chosen after it encoded a test frame: a Jetson Orin Nano
# has the nvv4l2h264enc element and no hardware encoder behind it.
EXTRA_ELEMENTS = {"nvv4l2h264enc": ("nvvidconv", "h264parse")}


def encode_message(kind, mount, a=0, b=0, payload=b""):
    """One message of the stdin protocol (the header; the payload follows it on the pipe)."""
    return HEADER.pack(MAGIC, kind, mount, a, b, len(payload))


def launch_line(width, height, fps_milli, encoder_chain, kbps, gop=None):
    """The media factory's pipeline for one mount (a string, so the SDK's tests check it without GStreamer)."""
    fps = max(fps_milli, 1000) / 1000.0
    gop = gop or max(int(round(fps)), 1)
    chain = encoder_chain.format(bps=int(kbps) * 1000, kbps=int(kbps), gop=gop)
    return (f"( appsrc name=src is-live=true format=time do-timestamp=true "
            f"caps=video/x-raw,format=BGR,width={int(width)},height={int(height)},framerate={fps_milli}/1000 ! "
            f"queue max-size-buffers=2 max-size-bytes=0 max-size-time=0 leaky=downstream ! {chain} ! "
            f"rtph264pay name=pay0 pt=96 config-interval=1 )")


def _gst():
    import gi  # noqa: PLC0415

    gi.require_version("Gst", "1.0")
    gi.require_version("GstRtspServer", "1.0")
    from gi.repository import GLib, Gst, GstRtspServer  # noqa: PLC0415

    Gst.init(None)
    return GLib, Gst, GstRtspServer


def probe(wanted=None):
    """What this interpreter's GStreamer offers: {"gstreamer", "encoder", "chain", "missing"}, the encoder `wanted`
    or the best one present; raises ImportError / ValueError when gi, Gst or GstRtspServer are missing."""
    _, Gst, _ = _gst()
    missing = [name for name in NEEDED if Gst.ElementFactory.find(name) is None]
    encoder = chain = None
    tried = []
    for name, text in ENCODERS:
        if wanted not in (None, name) or Gst.ElementFactory.find(name) is None or \
                any(Gst.ElementFactory.find(e) is None for e in EXTRA_ELEMENTS.get(name, ())):
            continue
        problem = encode_problem(Gst, text)
        if problem is None:
            encoder, chain = name, text
            break
        tried.append(f"{name} {problem}")
    if encoder is None:
        missing.append((wanted or "an H.264 encoder (" + ", ".join(n for n, _ in ENCODERS) + ")")
                       + (f"; {', '.join(tried)}" if tried else ""))
    return {"gstreamer": Gst.version_string(), "encoder": encoder, "chain": chain, "missing": missing}


def encode_problem(Gst, chain, timeout_s=10.0):
    """None when `chain` turns a test frame into H.264 here, else why not (the element may exist and still fail)."""
    w, h = 320, 240
    try:
        pipeline = Gst.parse_launch(f"appsrc name=src format=time caps=video/x-raw,format=BGR,width={w},height={h},"
                                    f"framerate=30/1 ! {chain.format(bps=1_000_000, kbps=1000, gop=30)} ! "
                                    f"appsink name=sink sync=false")
    except Exception as e:  # noqa: BLE001  (GLib.Error: a missing property or element)
        return f"cannot be built ({e})"
    src = pipeline.get_by_name("src")
    pipeline.set_state(Gst.State.PLAYING)
    buf = Gst.Buffer.new_wrapped(bytes(w * h * 3))
    buf.pts, buf.duration = 0, Gst.SECOND // 30
    src.emit("push-buffer", buf)
    src.emit("end-of-stream")
    sink, bus = pipeline.get_by_name("sink"), pipeline.get_bus()
    problem = "did not encode a test frame in time"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:  # appsink posts EOS only once its samples are pulled: pull, then look
        if sink.emit("try-pull-sample", 100 * Gst.MSECOND) is not None:
            problem = None
            break
        msg = bus.pop_filtered(Gst.MessageType.ERROR)
        if msg is not None:
            problem = f"failed to encode ({msg.parse_error()[0].message})"
            break
    pipeline.set_state(Gst.State.NULL)
    return problem


class Mount:
    def __init__(self, path, fps_milli, kbps):
        self.path, self.fps_milli, self.kbps = path, fps_milli, kbps
        self.appsrc = None
        self.factory = None
        self.lock = threading.Lock()


class RtspServer:
    """One GstRtspServer on one address and port; mounts are added as the SDK announces them."""

    def __init__(self, address, port, found):
        self.GLib, self.Gst, GstRtspServer = _gst()
        self._factory_cls = GstRtspServer.RTSPMediaFactory
        self.found = found
        self.server = GstRtspServer.RTSPServer()
        self.server.set_address(address)
        self.server.set_service(str(port))
        self.mounts = {}
        self.clients = 0
        self.server.connect("client-connected", self._on_client)
        self.source_id = self.server.attach(None)
        if not self.source_id:
            raise OSError(f"cannot listen on {address} port {port} (in use, or not an address of this machine)")
        self.port = self.server.get_bound_port()

    def _on_client(self, _server, client):
        self.clients += 1
        emit({"event": "clients", "count": self.clients})
        client.connect("closed", self._on_closed)

    def _on_closed(self, _client):
        self.clients -= 1
        emit({"event": "clients", "count": self.clients})

    def add_mount(self, mount_id, path, fps_milli, kbps):
        self.mounts[mount_id] = Mount(path, fps_milli, kbps or 4000)

    def push(self, mount_id, width, height, data):
        mount = self.mounts[mount_id]
        if mount.factory is None:  # the frame size is known now: publish the mount
            factory = self._factory_cls()
            factory.set_launch(launch_line(width, height, mount.fps_milli, self.found["chain"], mount.kbps))
            factory.set_shared(True)
            factory.connect("media-configure", lambda _f, media: self._on_media(mount_id, mount, media))
            self.server.get_mount_points().add_factory(mount.path, factory)
            mount.factory = factory
        with mount.lock:
            appsrc = mount.appsrc
        if appsrc is not None:  # nobody watching: nothing to encode
            appsrc.emit("push-buffer", self.Gst.Buffer.new_wrapped(data))

    def _on_media(self, mount_id, mount, media):
        appsrc = media.get_element().get_child_by_name("src")
        with mount.lock:
            mount.appsrc = appsrc
        emit({"event": "watched", "mount": mount_id, "watched": True})

        def unprepared(_media):
            with mount.lock:
                current = mount.appsrc is appsrc
                if current:
                    mount.appsrc = None
            if current:
                emit({"event": "watched", "mount": mount_id, "watched": False})

        media.connect("unprepared", unprepared)


_EMIT_LOCK = threading.Lock()


def emit(obj):
    """One JSON line to the SDK (from the main loop's thread and the reader's)."""
    with _EMIT_LOCK:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()


def read_messages(stream, server, loop):
    """stdin -> server, until EOF (the SDK closed the pipe or exited); then the main loop quits."""
    try:
        while True:
            head = stream.read(HEADER.size)
            if len(head) < HEADER.size:
                break
            magic, kind, mount, a, b, size = HEADER.unpack(head)
            if magic != MAGIC:
                emit({"event": "error", "message": "bad message on stdin (not from the SDK)"})
                break
            payload = stream.read(size) if size else b""
            if len(payload) < size:
                break
            if kind == MOUNT:
                server.add_mount(mount, payload.decode("utf-8"), a, b)
            elif kind == FRAME:
                server.push(mount, a, b, payload)
    finally:
        server.GLib.idle_add(loop.quit)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--probe", action="store_true")
    parser.add_argument("--address", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8554)
    parser.add_argument("--encoder", default=None, choices=[name for name, _ in ENCODERS])
    args = parser.parse_args(argv)
    try:
        found = probe(args.encoder)
    except (ImportError, ValueError) as e:  # gi missing, or Gst / GstRtspServer typelibs missing
        emit({"event": "error", "message": f"{type(e).__name__}: {e}"})
        return 2
    if found["missing"]:
        emit({"event": "error", **found, "message": "missing GStreamer elements: " + ", ".join(found["missing"])})
        return 2
    if args.probe:
        emit({"event": "probe", **found})
        return 0
    # Ctrl-C (or a closed ssh session), and `systemctl stop` (KillMode=control-group) or `kill -- -PGID` with
    # SIGTERM, reach the whole process group: the SDK, which stops cleanly on them, stops us by closing stdin after
    # its last frame, and so does the OS if the SDK dies (a helper stuck past that is killed by the SDK)
    for sig in (signal.SIGINT, getattr(signal, "SIGHUP", None), signal.SIGTERM):
        if sig is not None:
            signal.signal(sig, signal.SIG_IGN)
    try:
        server = RtspServer(args.address, args.port, found)
    except OSError as e:
        emit({"event": "error", "message": str(e)})
        return 2
    loop = server.GLib.MainLoop()
    threading.Thread(target=read_messages, args=(sys.stdin.buffer, server, loop), daemon=True).start()
    emit({"event": "ready", "port": server.port, "encoder": found["encoder"], "gstreamer": found["gstreamer"]})
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
