"""GStreamer pipeline strings for OpenCV's CAP_GSTREAMER backend: CSI and USB cameras, RTSP, hardware encoding.

Only strings and capability checks live here (no GStreamer import), so the pipelines are unit-tested on any
machine; OpenCV runs them. JetPack's system OpenCV is built with GStreamer; the pip wheels are not.
"""
import functools
import os
import re
import shutil
import subprocess

from ..errors import SDKError

# appsink keeps only the newest buffer: a live camera must never queue stale frames inside GStreamer.
APPSINK = "appsink drop=true max-buffers=1 sync=false"
TO_BGR = "videoconvert ! video/x-raw, format=BGR"
RTSP_DEPAY = {"h264": "rtph264depay ! h264parse", "h265": "rtph265depay ! h265parse"}
V4L2_FORMATS = {"mjpg": "image/jpeg", "mjpeg": "image/jpeg", "yuyv": "video/x-raw, format=YUY2",
                "yuy2": "video/x-raw, format=YUY2"}


@functools.lru_cache(maxsize=1)
def opencv_has_gstreamer():
    import cv2  # noqa: PLC0415

    m = re.search(r"GStreamer:\s*(\w+)", cv2.getBuildInformation())
    return bool(m and m.group(1).upper() == "YES")


def on_jetson():
    return os.path.exists("/etc/nv_tegra_release")


@functools.lru_cache(maxsize=None)
def gst_element_available(name):
    """True when `gst-inspect-1.0 name` finds the element (e.g. nvv4l2decoder, nvv4l2h264enc)."""
    tool = shutil.which("gst-inspect-1.0")
    if not tool:
        return False
    try:
        return subprocess.run([tool, name], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def require_gstreamer(what):
    """A one-line error when OpenCV cannot run GStreamer pipelines (pip wheels are built without it)."""
    if not opencv_has_gstreamer():
        import cv2  # noqa: PLC0415

        raise SDKError(f"{what}: needs OpenCV built with GStreamer, got OpenCV {cv2.__version__} without it "
                       f"(cv2.getBuildInformation() says GStreamer: NO); on a Jetson use JetPack's system OpenCV "
                       f"(python3-opencv, not the pip opencv-python wheels)")


def _framerate(fps):
    return f"{int(round(float(fps)))}/1"


def csi_pipeline(sensor_id=0, width=1280, height=720, framerate=30, flip_method=0):
    """MIPI CSI camera via Argus (`nvarguscamerasrc`), NVMM NV12 -> BGR frames for OpenCV."""
    return (f"nvarguscamerasrc sensor-id={int(sensor_id)} ! "
            f"video/x-raw(memory:NVMM), width={int(width)}, height={int(height)}, "
            f"framerate={_framerate(framerate)}, format=NV12 ! "
            f"nvvidconv flip-method={int(flip_method)} ! video/x-raw, format=BGRx ! {TO_BGR} ! {APPSINK}")


def v4l2_pipeline(device="/dev/video0", pixel_format="mjpg", width=640, height=480, framerate=30, jetson=False):
    """USB/V4L2 camera: MJPG (decoded by nvjpegdec on Jetson, jpegdec elsewhere) or raw YUYV."""
    fmt = pixel_format.lower()
    if fmt not in V4L2_FORMATS:
        raise SDKError(f"v4l2 format: got '{pixel_format}', expected one of mjpg, yuyv")
    caps = f"{V4L2_FORMATS[fmt]}, width={int(width)}, height={int(height)}, framerate={_framerate(framerate)}"
    if V4L2_FORMATS[fmt] == "image/jpeg":
        decode = "nvjpegdec ! video/x-raw ! " if jetson else "jpegdec ! "
    else:
        decode = ""
    return f"v4l2src device={device} ! {caps} ! {decode}{TO_BGR} ! {APPSINK}"


def rtsp_pipeline(url, latency=200, codec="h264", jetson=True):
    """RTSP through `rtspsrc`: the hardware decoder `nvv4l2decoder` on Jetson, `avdec_*` (libav) elsewhere."""
    codec = codec.lower()
    if codec not in RTSP_DEPAY:
        raise SDKError(f"rtsp codec: got '{codec}', expected one of {', '.join(RTSP_DEPAY)}")
    decode = ("nvv4l2decoder ! nvvidconv ! video/x-raw, format=BGRx ! " if jetson else f"avdec_{codec} ! ")
    return (f"rtspsrc location={url} latency={int(latency)} ! {RTSP_DEPAY[codec]} ! {decode}{TO_BGR} ! {APPSINK}")


def h264_save_pipeline(path, bitrate=8_000_000):
    """appsrc -> Jetson hardware H.264 encoder (`nvv4l2h264enc`) -> mp4, for cv2.VideoWriter(CAP_GSTREAMER)."""
    return ("appsrc ! video/x-raw, format=BGR ! videoconvert ! video/x-raw, format=BGRx ! nvvidconv ! "
            f"video/x-raw(memory:NVMM), format=NV12 ! nvv4l2h264enc bitrate={int(bitrate)} insert-sps-pps=true ! "
            f"h264parse ! qtmux ! filesink location={path}")


def display_pipeline():
    """appsrc -> `nveglglessink`, the Jetson display sink (zero-copy to the screen)."""
    return "appsrc ! videoconvert ! nvvidconv ! video/x-raw(memory:NVMM) ! nvegltransform ! nveglglessink sync=false"


def jetson_encoder_available():
    return on_jetson() and opencv_has_gstreamer() and gst_element_available("nvv4l2h264enc")


def capture_target(uri):
    """What to hand cv2.VideoCapture for a live URI: (target, api preference name, description).

    CSI needs GStreamer; V4L2 uses a GStreamer pipeline when OpenCV has it (format/size honoured), else the V4L2
    backend by device index; RTSP uses the Jetson hardware decoder when present, else FFmpeg.
    """
    if uri.protocol == "csi":
        require_gstreamer(f"{uri.what} {uri.text} (CSI camera)")
        return (csi_pipeline(uri.device_index, uri.option("width", 1280, int), uri.option("height", 720, int),
                             uri.option("framerate", 30, float), uri.option("flip", 0, int)),
                "CAP_GSTREAMER", "nvarguscamerasrc")
    if uri.protocol == "v4l2":
        if opencv_has_gstreamer():
            return (v4l2_pipeline(uri.location, uri.option("format", "mjpg"), uri.option("width", 640, int),
                                  uri.option("height", 480, int), uri.option("framerate", 30, float), on_jetson()),
                    "CAP_GSTREAMER", "v4l2src")
        return uri.device_index, "CAP_V4L2", "OpenCV V4L2"
    if uri.protocol == "rtsp":
        if on_jetson() and opencv_has_gstreamer() and gst_element_available("nvv4l2decoder"):
            return (rtsp_pipeline(uri.location, uri.option("latency", 200, int), uri.option("codec", "h264")),
                    "CAP_GSTREAMER", "rtspsrc + nvv4l2decoder")
        return uri.location, "CAP_FFMPEG", "FFmpeg"
    return uri.location, "CAP_FFMPEG", "FFmpeg"
