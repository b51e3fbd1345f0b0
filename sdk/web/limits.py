"""File-descriptor budget of the process, so network clients can never take the descriptors the pipeline needs.

Every connection costs one descriptor; at the soft RLIMIT_NOFILE the next `open()` fails, and the looping video,
a reconnecting camera or the recording would then fail in the pipeline, not in the server. The server therefore
refuses connections while fewer than `reserve` descriptors are left, and raises the soft limit at start.
"""
import os

FD_RAISE_CAP = 1 << 16  # soft limit aimed for: high enough for any viewer count, low enough for code that
# loops over range(soft limit) (old close-fds fallbacks) to stay fast when the hard limit is 1M or unlimited
FD_DIRS = ("/proc/self/fd", "/dev/fd")


def _resource():
    try:
        import resource  # noqa: PLC0415  (POSIX only)
    except ImportError:
        return None
    return resource


def descriptor_limit():
    """The soft RLIMIT_NOFILE, or None where there is none (Windows)."""
    resource = _resource()
    if resource is None:
        return None
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return None if soft == resource.RLIM_INFINITY else soft


def raise_descriptor_limit(cap=FD_RAISE_CAP):
    """Raise the soft RLIMIT_NOFILE towards the hard limit (at most `cap`); returns (before, after) or None.

    Unprivileged processes may raise the soft limit up to the hard one; a failure leaves the limit as it was.
    """
    resource = _resource()
    if resource is None:
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = cap if hard == resource.RLIM_INFINITY else min(hard, cap)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):  # a sandbox may forbid it; the reserve still protects the pipeline
            return soft, soft
        return soft, target
    return soft, soft


def open_descriptors():
    """How many descriptors this process has open now, or None where that cannot be read."""
    for path in FD_DIRS:
        try:
            return len(os.listdir(path)) - 1  # listdir's own descriptor on the directory
        except OSError:
            continue
    return None


def default_reserve(limit):
    """Descriptors kept free for the pipeline: a quarter of the limit, at least 16 and at most 256."""
    return 16 if limit is None else min(256, max(16, limit // 4))


def descriptors_left(reserve):
    """How many more descriptors clients may take before `reserve` are left; None when unknown (no limit)."""
    limit, used = descriptor_limit(), open_descriptors()
    if limit is None or used is None:
        return None
    return limit - used - reserve
