"""Sources and sinks named by URI, as jetson-inference does: `csi://0`, `/dev/video0`, `v4l2:///dev/video1`,
`rtsp://host/stream`, `file.mp4`, `image.jpg`, `folder/`, `'frames/*.png'`, `display://`, `http://@:8080`.

Options ride in the query string (`csi://0?width=1920&height=1080&framerate=30&flip=2`,
`/dev/video0?format=yuyv&width=640`) so one string is enough on the command line.
"""
import glob
import os
import re
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlencode

from ..data.images import is_image
from ..errors import SDKError

LIVE_PROTOCOLS = ("csi", "v4l2", "rtsp", "rtmp", "udp", "http")
# query options the SDK reads itself (everything else in a network URL belongs to the server)
SDK_OPTIONS = {"width", "height", "framerate", "flip", "format", "latency", "codec", "timeout", "live", "start"}
_V4L2_DEVICE = re.compile(r"^/dev/video(\d+)$")
_URL = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://(.*)$")


@dataclass
class URI:
    """A parsed source/sink name. `location` is the device, host/path or file; `options` the query string."""

    text: str
    protocol: str  # csi, v4l2, rtsp, http, display, file, image, folder, glob, or another URL scheme
    location: str
    options: dict = field(default_factory=dict)
    what: str = field(default="uri", compare=False)  # the parameter (CLI: the flag) the text came from, for errors

    @property
    def live(self):
        """Live sources produce frames whether or not we keep up, so stale frames are dropped."""
        return self.protocol in LIVE_PROTOCOLS

    def option(self, name, default=None, kind=str):
        if name not in self.options:
            return default
        raw = self.options[name]
        try:
            return kind(raw)
        except ValueError:
            raise SDKError(f"{self.text}: option {name}={raw!r} is not a valid {kind.__name__}") from None

    @property
    def device_index(self):
        """The N of csi://N or /dev/videoN."""
        m = _V4L2_DEVICE.match(self.location)
        return int(m.group(1)) if m else int(self.location)


def parse_uri(text: str, what: str = "uri") -> URI:
    """Parse a source or sink name; errors name `what` (the parameter, or the CLI's flag) and list the accepted
    forms, and so do the errors of what later opens the URI (`URI.what`)."""
    uri = _parse_uri(str(text).strip(), what)
    uri.what = what
    return uri


def _parse_uri(text, what):
    if not text:
        raise SDKError(f"{what}: got an empty string, expected a URI such as csi://0, /dev/video0, "
                       f"rtsp://host/stream, a video/image file, a folder or a glob")
    base, options = _split_options(text)
    m = _URL.match(base)
    if m:
        scheme, rest = m.group(1).lower(), m.group(2)
        if scheme == "csi":
            if not rest.isdigit():
                raise SDKError(f"{what} {text}: got CSI sensor '{rest}', expected csi://N with N a sensor number")
            return URI(text, "csi", rest, options)
        if scheme == "v4l2":
            device = rest if rest.startswith("/") else "/" + rest
            if not _V4L2_DEVICE.match(device):
                raise SDKError(f"{what} {text}: got device '{device}', expected v4l2:///dev/videoN")
            return URI(text, "v4l2", device, options)
        if scheme == "file":
            return _path_uri(text, rest, options)
        if scheme == "display":
            return URI(text, "display", rest, options)
        if scheme in LIVE_PROTOCOLS:  # the stream's own query (channel=1&subtype=0) stays in the address
            return URI(text, scheme, _network_location(text), options)
        return URI(text, scheme, rest, options)
    if _V4L2_DEVICE.match(base):
        return URI(text, "v4l2", base, options)
    return _path_uri(text, base, options)


def _path_uri(text, path, options):
    """A path names a glob, a folder, an image or (anything else) a video file; existence is checked on open."""
    if any(c in path for c in "*?["):
        return URI(text, "glob", path, options)
    if os.path.isdir(path):
        return URI(text, "folder", path, options)
    return URI(text, "image" if is_image(path) else "file", path, options)


def _network_location(text):
    """A network URL without the SDK's own options (timeout, latency, codec, ...), which the server must not see."""
    if "?" not in text:
        return text
    base, query = text.split("?", 1)
    keep = [(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if k.lower() not in SDK_OPTIONS]
    return base + ("?" + urlencode(keep) if keep else "")


def _split_options(text):
    """`path?key=value&...` -> (path, {key: value}); a '?' in a glob pattern is kept when no '=' follows."""
    if "?" not in text:
        return text, {}
    base, query = text.split("?", 1)
    if "=" not in query:
        return text, {}
    return base, {k.lower(): v for k, v in parse_qsl(query, keep_blank_values=True)}


def find_default_camera():
    """csi://0 when a CSI camera is present, else the first /dev/videoN; None when there is no camera.

    Returns (uri or None, list of what was looked for) so the caller can explain a failure.
    """
    looked = ["CSI camera (/dev/video* with an nvarguscamerasrc sensor, /proc/device-tree tegra-camera-platform)",
              "USB/V4L2 camera (/dev/video*)"]
    devices = sorted(glob.glob("/dev/video*"), key=lambda d: int(re.sub(r"\D", "", d) or 0))
    if devices and _csi_camera_present():
        return "csi://0", looked
    if devices:
        return devices[0], looked
    return None, looked


def _csi_camera_present():
    # Jetson device trees list CSI sensors under tegra-camera-platform; Argus needs its daemon socket.
    return os.path.isdir("/proc/device-tree/tegra-camera-platform") and os.path.exists("/etc/nv_tegra_release")
