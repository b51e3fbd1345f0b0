"""Ask a network source's server before handing it to OpenCV: a refused port answers in milliseconds, while
cv2.VideoCapture waits out its whole open timeout (10 s) and then can only say 'did not open'."""
from __future__ import annotations

import socket
from urllib.parse import urlsplit

DEFAULT_PORTS = {"rtsp": 554, "rtsps": 322, "http": 80, "https": 443, "rtmp": 1935}


def tcp_problem(url: str, timeout_s: float = 0.7) -> str | None:
    """None when something accepts TCP at the URL's host and port (or the URL has no TCP server to ask, such as
    udp:// or a multicast address); else a few words: 'refused', 'timed out', 'unknown host', 'unreachable'."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname:
        return None
    try:
        port = parts.port or DEFAULT_PORTS[scheme]
    except ValueError:
        return "bad port"
    try:
        infos = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except socket.gaierror:
        return "unknown host"
    problem = "unreachable"
    for family, kind, proto, _, addr in infos:
        with socket.socket(family, kind, proto) as s:
            s.settimeout(timeout_s)
            try:
                s.connect(addr)
                return None
            except ConnectionRefusedError:
                problem = "refused"
            except (socket.timeout, TimeoutError):
                problem = "timed out"
            except OSError:
                pass
    return problem
