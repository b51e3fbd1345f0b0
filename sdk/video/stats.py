"""Run statistics of the camera pipeline: per stream and overall, bounded so a long run stays flat in memory."""
import collections
import itertools
import time

import numpy as np

LIVE_WINDOW = 120  # frames behind the live FPS/latency shown on the overlay and handed to sinks
FINAL_WINDOW = 10_000  # frames behind the final percentiles (bounded, so a long run does not grow)
CAPTURE_KEYS = ("frames_read", "frames_dropped", "frames_corrupt", "reconnects")


class RunStats:
    """Counters and timings of one stream (or of all of them); `snapshot()` is what sinks and the final line get."""

    def __init__(self):
        self.frames_processed = 0
        self.infer_ms = collections.deque(maxlen=FINAL_WINDOW)  # one entry per inference (a batch)
        self.batch_frames = collections.deque(maxlen=FINAL_WINDOW)  # frames in that inference
        self.pre_ms = collections.deque(maxlen=FINAL_WINDOW)
        self.post_ms = collections.deque(maxlen=FINAL_WINDOW)
        self.latency_ms = collections.deque(maxlen=FINAL_WINDOW)
        self.done_t = collections.deque(maxlen=FINAL_WINDOW)
        self.detections = {}  # class name -> boxes over the run
        self.frames_with_detections = 0
        self.frames_dropped_prepared = 0  # live: a letterboxed frame replaced by a newer one before inference
        self.t_start = time.perf_counter()

    def batch_done(self, frames, infer_ms):
        self.infer_ms.append(infer_ms)
        self.batch_frames.append(frames)

    def frame_done(self, latency_ms, post_ms, counts):
        for name, n in counts.items():
            self.detections[name] = self.detections.get(name, 0) + n
        self.frames_with_detections += bool(counts)
        self.frames_processed += 1
        self.latency_ms.append(latency_ms)
        self.post_ms.append(post_ms)
        self.done_t.append(time.perf_counter())

    def snapshot(self, capture_stats, window=None, model=None):
        """Current stats; `window` limits FPS/percentiles to the last N frames (live view); `model` is the
        RunStats whose inference timings to report (the overall one, for a stream)."""
        model = model or self
        lat, done = self.latency_ms, self.done_t
        inf, nb = model.infer_ms, model.batch_frames
        if window:  # the newest `window` items, oldest first, without copying the whole deque
            lat, done, inf, nb = (_newest(d, window) for d in (lat, done, inf, nb))
        total_infer_s = float(np.sum(inf)) / 1e3 if len(inf) else 0.0
        snap = {"frames_read": capture_stats["frames_read"], "frames_processed": self.frames_processed,
                "frames_dropped": capture_stats["frames_dropped"] + self.frames_dropped_prepared,
                "frames_corrupt": capture_stats["frames_corrupt"], "reconnects": capture_stats["reconnects"],
                # frames the model gets through per second of inference (a batch of 4 counts 4 frames)
                "model_fps": float(np.sum(nb)) / total_infer_s if total_infer_s > 0 else 0.0,
                # steady-state throughput: frames finished per second after the first one (start-up excluded)
                "e2e_fps": (len(done) - 1) / (done[-1] - done[0]) if len(done) > 1 and done[-1] > done[0] else 0.0,
                "p50_ms": float(np.percentile(lat, 50)) if len(lat) else 0.0,
                "p95_ms": float(np.percentile(lat, 95)) if len(lat) else 0.0,
                "infer_ms": float(np.median(inf)) if len(inf) else 0.0,
                "pre_ms": float(np.median(self.pre_ms)) if self.pre_ms else 0.0,
                "post_draw_ms": float(np.median(self.post_ms)) if self.post_ms else 0.0,
                "elapsed_s": time.perf_counter() - self.t_start,
                "frames_with_detections": self.frames_with_detections, "detections": dict(self.detections)}
        return {k: round(v, 2) if isinstance(v, float) else v for k, v in snap.items()}


def _newest(d, n):
    return list(itertools.islice(reversed(d), n))[::-1]


def sum_capture_stats(stats_list):
    return {k: sum(s[k] for s in stats_list) for k in CAPTURE_KEYS}

