"""Source/sink URIs and GStreamer pipeline strings (the camera hardware is absent here, the strings are not)."""
import re

import cv2
import pytest

from sdk.errors import SDKError
from sdk.video import gstreamer
from sdk.video.uri import parse_uri


@pytest.mark.parametrize("text, protocol, location", [
    ("csi://0", "csi", "0"),
    ("csi://1?width=1920&height=1080&framerate=30&flip=2", "csi", "1"),
    ("/dev/video2", "v4l2", "/dev/video2"),
    ("v4l2:///dev/video1?format=yuyv&width=640", "v4l2", "/dev/video1"),
    ("rtsp://user:pw@10.0.0.5:554/stream1", "rtsp", "rtsp://user:pw@10.0.0.5:554/stream1"),
    ("http://@:8080", "http", "http://@:8080"),
    ("http://127.0.0.1:8080", "http", "http://127.0.0.1:8080"),
    ("display://", "display", ""),
    ("out.mp4", "file", "out.mp4"),
    ("file:///tmp/x.mp4", "file", "/tmp/x.mp4"),
    ("frames/*.jpg", "glob", "frames/*.jpg"),
    ("frames/img?.jpg", "glob", "frames/img?.jpg"),
    ("photo.png", "image", "photo.png"),
])
def test_parse_uri(text, protocol, location):
    uri = parse_uri(text)
    assert (uri.protocol, uri.location) == (protocol, location)
    assert uri.live == (protocol in ("csi", "v4l2", "rtsp", "http"))


def test_uri_options_and_folder(tmp_path):
    uri = parse_uri("csi://1?width=1920&height=1080&framerate=60&flip=2")
    assert uri.device_index == 1
    assert (uri.option("width", 0, int), uri.option("framerate", 0, float), uri.option("flip", 0, int)) == \
           (1920, 60.0, 2)
    assert uri.option("missing", "dflt") == "dflt"
    assert parse_uri("/dev/video3").device_index == 3
    assert parse_uri(str(tmp_path)).protocol == "folder"
    assert parse_uri(f"{tmp_path}/clip.mp4?start=240&live=1").options == {"start": "240", "live": "1"}
    with pytest.raises(SDKError, match="width='wide' is not a valid int"):
        parse_uri("csi://0?width=wide").option("width", 0, int)


@pytest.mark.parametrize("text, needle", [("csi://front", "expected csi://N"), ("v4l2://cam", "v4l2:///dev/videoN"),
                                          ("", "expected a URI")])
def test_bad_uris_are_one_line_errors(text, needle):
    with pytest.raises(SDKError, match=needle) as e:
        parse_uri(text)
    assert "\n" not in str(e.value)


def test_csi_pipeline_string():
    s = gstreamer.csi_pipeline(sensor_id=1, width=1920, height=1080, framerate=30, flip_method=2)
    assert s.startswith("nvarguscamerasrc sensor-id=1 ! video/x-raw(memory:NVMM), width=1920, height=1080, "
                        "framerate=30/1, format=NV12 ! nvvidconv flip-method=2")
    assert s.endswith("video/x-raw, format=BGR ! appsink drop=true max-buffers=1 sync=false")


@pytest.mark.parametrize("fmt, jetson, caps, decode", [
    ("mjpg", False, "image/jpeg, width=1280, height=720, framerate=30/1", "jpegdec ! "),
    ("mjpg", True, "image/jpeg, width=1280, height=720, framerate=30/1", "nvjpegdec ! video/x-raw ! "),
    ("yuyv", False, "video/x-raw, format=YUY2, width=1280, height=720, framerate=30/1", ""),
])
def test_v4l2_pipeline_string(fmt, jetson, caps, decode):
    s = gstreamer.v4l2_pipeline("/dev/video1", fmt, 1280, 720, 30, jetson=jetson)
    assert s == (f"v4l2src device=/dev/video1 ! {caps} ! {decode}videoconvert ! video/x-raw, format=BGR ! "
                 f"appsink drop=true max-buffers=1 sync=false")
    with pytest.raises(SDKError, match="expected one of mjpg, yuyv"):
        gstreamer.v4l2_pipeline("/dev/video0", "h264")


def test_rtsp_and_encoder_pipeline_strings():
    jetson = gstreamer.rtsp_pipeline("rtsp://cam/s", latency=100, codec="h265", jetson=True)
    assert jetson.startswith("rtspsrc location=rtsp://cam/s latency=100 ! rtph265depay ! h265parse ! "
                             "nvv4l2decoder ! nvvidconv")
    assert "avdec_h264 ! videoconvert" in gstreamer.rtsp_pipeline("rtsp://cam/s", jetson=False)
    enc = gstreamer.h264_save_pipeline("/tmp/o.mp4", bitrate=4_000_000)
    assert "nvv4l2h264enc bitrate=4000000" in enc and enc.endswith("qtmux ! filesink location=/tmp/o.mp4")
    assert gstreamer.display_pipeline().endswith("nveglglessink sync=false")


def test_capture_targets_without_gstreamer():
    # This machine's pip OpenCV has no GStreamer: CSI must say so; V4L2 and RTSP fall back to V4L2/FFmpeg.
    has_gst = gstreamer.opencv_has_gstreamer()
    assert has_gst == bool(re.search(r"GStreamer:\s+YES", cv2.getBuildInformation()))
    if has_gst:
        pytest.skip("this OpenCV has GStreamer; the fallback paths are not taken")
    with pytest.raises(SDKError) as e:
        gstreamer.capture_target(parse_uri("csi://0"))
    assert "needs OpenCV built with GStreamer" in str(e.value) and "GStreamer: NO" in str(e.value)
    assert gstreamer.capture_target(parse_uri("/dev/video4"))[:2] == (4, "CAP_V4L2")
    assert gstreamer.capture_target(parse_uri("rtsp://h/s"))[1:] == ("CAP_FFMPEG", "FFmpeg")


def test_network_urls_keep_their_own_query_but_not_sdk_options():
    uri = parse_uri("rtsp://cam/live?channel=1&subtype=0&latency=100&timeout=3")
    assert uri.location == "rtsp://cam/live?channel=1&subtype=0"
    assert (uri.option("latency", 0, int), uri.option("timeout", 0, float)) == (100, 3.0)
    assert parse_uri("rtsp://cam/live?timeout=3").location == "rtsp://cam/live"
