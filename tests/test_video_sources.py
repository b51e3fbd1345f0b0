"""Frame sources and the threaded capture: files, image folders, synthetic video, drop policy, reconnect."""
import shutil
import time

import cv2
import numpy as np
import pytest

from sdk.errors import SDKError
from sdk.video.sources import (CORRUPT, END, LOST, OK, FrameSource, ReconnectPolicy, ThreadedCapture,
                               open_source)


def write_synthetic_video(path, frames=30, size=(320, 120), fps=30.0):
    """Frame i is black with a white bar in column block i: the reader can tell which frame it got."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    assert writer.isOpened()
    for i in range(frames):
        img = np.zeros((size[1], size[0], 3), np.uint8)
        img[:, i * BAR:(i + 1) * BAR] = 255
        writer.write(img)
    writer.release()
    return path


BAR = 10  # px per frame number in the synthetic video


def frame_number(image):
    return int(np.argmax(image.reshape(image.shape[0], -1, BAR, 3).mean(axis=(0, 2, 3))))


class CountingSource(FrameSource):
    """A fast fake camera (or file, live=False): frame i is filled with i % 256."""

    description = "counting"

    def __init__(self, live, frames=200, period_s=0.002):
        self.live, self.frames, self.period_s, self.i = live, frames, period_s, 0

    def read(self):
        if self.i >= self.frames:
            return END, None
        time.sleep(self.period_s)
        self.i += 1
        return OK, np.full((8, 8, 3), self.i % 256, np.uint8)


class FlakySource(FrameSource):
    """A live stream that drops after `burst` frames; the first `failures` reconnects fail on purpose."""

    live = True
    description = "flaky"

    def __init__(self, burst=5, failures=1, total=10):
        self.burst, self.failures, self.total = burst, failures, total
        self.sent = self.since_open = self.reopen_calls = 0

    def read(self):
        if self.sent >= self.total:
            return END, None
        if self.since_open >= self.burst:
            return LOST, None
        self.sent += 1
        self.since_open += 1
        return OK, np.zeros((4, 4, 3), np.uint8)

    def reopen(self):
        self.reopen_calls += 1
        if self.reopen_calls <= self.failures:
            raise SDKError("flaky stream: refused on purpose")
        self.since_open = 0


def test_video_file_source_reads_every_frame_in_order(tmp_path):
    path = write_synthetic_video(tmp_path / "synthetic.mp4", frames=30)
    source = open_source(str(path))
    assert not source.live and source.size == (320, 120) and source.fps == pytest.approx(30.0)
    cap = ThreadedCapture(source).start()
    got = []
    for frame in cap:
        time.sleep(0.005)  # a consumer slower than the reader: a file must still never drop
        got.append(frame_number(frame.image))
    cap.join()
    assert got == list(range(30))
    assert cap.stats["frames_read"] == 30 and cap.stats["frames_dropped"] == 0
    assert cap.end_reason == "end of source"


def test_file_source_start_option_and_loop(tmp_path):
    path = write_synthetic_video(tmp_path / "synthetic.mp4", frames=10)
    cap = ThreadedCapture(open_source(f"{path}?start=6"), loop=True, max_frames=9).start()
    got = [frame_number(f.image) for f in cap]
    cap.join()
    assert got == [6, 7, 8, 9, 6, 7, 8, 9, 6]
    assert cap.stats["loops"] == 2


def test_image_folder_source_skips_and_counts_corrupt_files(tmp_path, val_images):
    images = sorted(val_images.glob("*.png"))[:3] or sorted(val_images.iterdir())[:3]
    for i, p in enumerate(images):
        shutil.copy(p, tmp_path / f"{i:02d}{p.suffix}")
    (tmp_path / "01b.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    source = open_source(str(tmp_path))
    cap = ThreadedCapture(source).start()
    shapes = [f.image.shape for f in cap]
    cap.join()
    assert shapes == [cv2.imread(str(p)).shape for p in images]
    assert cap.stats["frames_corrupt"] == 1 and cap.stats["frames_read"] == 3
    assert open_source(str(tmp_path / "*.png")).paths == sorted(str(p) for p in tmp_path.glob("*.png"))


def test_live_source_keeps_only_the_latest_frame():
    source = CountingSource(live=True, frames=150)
    cap = ThreadedCapture(source).start()
    got = []
    for frame in cap:
        got.append(int(frame.image[0, 0, 0]))
        newest = source.i
        assert newest - got[-1] <= 5, "a live consumer must get the newest frame, not a stale one"
        time.sleep(0.03)  # slow consumer: about 15 camera frames arrive per frame consumed
    cap.join()
    stats = cap.stats
    assert stats["frames_dropped"] > len(got)  # the camera is about 15 times faster than the consumer
    assert stats["frames_read"] == len(got) + stats["frames_dropped"]
    assert got == sorted(got)


def test_file_policy_never_drops_with_a_slow_consumer():
    cap = ThreadedCapture(CountingSource(live=False, frames=40)).start()
    got = []
    for frame in cap:
        got.append(int(frame.image[0, 0, 0]))
        time.sleep(0.01)
    cap.join()
    assert got == list(range(1, 41)) and cap.stats["frames_dropped"] == 0


def test_reconnect_with_back_off_then_resume():
    source = FlakySource(burst=5, failures=2, total=10)
    t = time.perf_counter()
    cap = ThreadedCapture(source, reconnect=ReconnectPolicy(attempts=4, first_delay_s=0.02)).start()
    frames = list(cap)
    cap.join()
    assert cap.stats["frames_read"] == 10 and cap.stats["reconnects"] == 1 and source.reopen_calls == 3
    assert frames[-1].index == 9  # the last frame always reaches the consumer
    assert time.perf_counter() - t >= 0.02 + 0.04 + 0.08  # back-off doubled between the failed attempts
    assert cap.end_reason == "end of source"


def test_reconnect_gives_up_cleanly():
    source = FlakySource(burst=3, failures=10**6, total=100)
    cap = ThreadedCapture(source, reconnect=ReconnectPolicy(attempts=3, first_delay_s=0.01)).start()
    frames = list(cap)
    cap.join()
    assert cap.stats["frames_read"] == 3 and frames[-1].index == 2 and source.reopen_calls == 3
    assert cap.end_reason == "stream lost, 3 reconnect attempts failed" and cap.error is None


def test_corrupt_frames_from_a_source_are_counted():
    class Glitchy(CountingSource):
        def read(self):
            status, frame = super().read()
            return (CORRUPT, None) if status == OK and self.i % 4 == 0 else (status, frame)

    cap = ThreadedCapture(Glitchy(live=False, frames=20)).start()
    assert len(list(cap)) == 15
    cap.join()
    assert cap.stats["frames_corrupt"] == 5


@pytest.mark.parametrize("text, needle", [
    ("/no/such/video.mp4", "file not found"),
    ("/dev/video97", "camera not found (no /dev/video97)"),
    ("rtsp://127.0.0.1:9/none?timeout=3", "connection refused"),
    ("/no/such/dir/*.jpg", "contains no images"),
])
def test_sources_that_cannot_open(text, needle):
    with pytest.raises(SDKError) as e:
        open_source(text)
    assert needle in str(e.value) and "\n" not in str(e.value)


def test_source_errors_name_the_parameter_the_cli_its_flag(tmp_path):
    # the library names its parameter; the CLI passes its flag (sdk.commands.camera, samples/camera_detect.py)
    for what, head in ((None, "source /no/such/video.mp4: file not found"),
                       ("--source", "--source /no/such/video.mp4: file not found")):
        with pytest.raises(SDKError) as e:
            open_source("/no/such/video.mp4", **({"what": what} if what else {}))
        assert str(e.value).startswith(head)
    with pytest.raises(SDKError) as e:
        open_source(str(tmp_path / "*.png"), "--source")
    assert str(e.value).startswith("--source ") and "contains no images" in str(e.value)


def test_unreadable_video_file(tmp_path):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00" * 4096)
    with pytest.raises(SDKError, match="OpenCV cannot open it"):
        open_source(str(bad))


@pytest.mark.jetson
def test_csi_camera_on_jetson():
    cap = ThreadedCapture(open_source("csi://0?width=1280&height=720&framerate=30")).start()
    frame = cap.get(timeout=10)
    cap.stop()
    cap.join()
    assert frame is not None and frame.image.shape == (720, 1280, 3)


def test_a_refused_rtsp_source_says_refused_without_waiting_out_the_open_timeout():
    import socket
    import time

    from sdk.errors import SDKError
    from sdk.video.probe import tcp_problem
    from sdk.video.sources import open_source

    with socket.socket() as s:  # a port that was just free: nothing listens there now
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert tcp_problem(f"rtsp://127.0.0.1:{port}/cam") == "refused"
    assert tcp_problem("udp://239.0.0.1:5000") is None  # nothing to ask over TCP
    t = time.perf_counter()
    with pytest.raises(SDKError, match="connection refused"):
        open_source(f"rtsp://127.0.0.1:{port}/cam")
    assert time.perf_counter() - t < 5  # the 10 s open timeout was not waited out

    with socket.socket() as srv:  # something listening: the probe lets OpenCV try
        srv.bind(("127.0.0.1", 0))
        srv.listen()
        assert tcp_problem(f"rtsp://127.0.0.1:{srv.getsockname()[1]}/cam") is None
