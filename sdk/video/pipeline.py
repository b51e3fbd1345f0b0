"""The real-time pipeline: capture -> pre-process -> inference -> post-process, drawing and sinks, overlapped.

Four threads so that only inference sits on the critical path: the capture thread decodes, a prepare thread
letterboxes the newest frame, the calling thread runs the model, and a render thread does NMS, drawing and the
sinks. Queues between them are small and blocking, so memory stays flat; only the capture queue of a live source
drops (latest-frame policy). SIGINT/SIGTERM stop it cleanly: sinks are closed (the saved video is playable)
and the stats are still returned.
"""
import collections
import itertools
import queue
import signal
import threading
import time

import numpy as np

from ..errors import SDKError
from ..postprocess import postprocess
from ..visualize import draw_detections, draw_overlay

LIVE_WINDOW = 120  # frames behind the live FPS/latency shown on the overlay and handed to sinks
FINAL_WINDOW = 10_000  # frames behind the final percentiles (bounded, so a long run does not grow)


class RunStats:
    """Counters and timings; `snapshot()` is the dict that sinks receive and the final JSON line prints."""

    def __init__(self):
        self.frames_processed = 0
        self.infer_ms = collections.deque(maxlen=FINAL_WINDOW)
        self.pre_ms = collections.deque(maxlen=FINAL_WINDOW)
        self.post_ms = collections.deque(maxlen=FINAL_WINDOW)
        self.latency_ms = collections.deque(maxlen=FINAL_WINDOW)
        self.done_t = collections.deque(maxlen=FINAL_WINDOW)
        self.first_done = None
        self.detections = {}  # class name -> boxes over the run
        self.frames_with_detections = 0
        self.frames_dropped_prepared = 0  # live: a letterboxed frame replaced by a newer one before inference
        self.t_start = time.perf_counter()

    def frame_done(self, latency_ms, post_ms, counts):
        now = time.perf_counter()
        for name, n in counts.items():
            self.detections[name] = self.detections.get(name, 0) + n
        self.frames_with_detections += bool(counts)
        if self.first_done is None:
            self.first_done = now
        self.frames_processed += 1
        self.latency_ms.append(latency_ms)
        self.post_ms.append(post_ms)
        self.done_t.append(now)

    def snapshot(self, capture_stats, window=None):
        """Current stats; `window` limits FPS/percentiles to the last N frames (live view)."""
        lat, inf, done = self.latency_ms, self.infer_ms, self.done_t
        if window:  # the newest `window` items, oldest first, without copying the whole deque
            lat, inf, done = (list(itertools.islice(reversed(d), window))[::-1] for d in (lat, inf, done))
        snap = {"frames_read": capture_stats["frames_read"], "frames_processed": self.frames_processed,
                "frames_dropped": capture_stats["frames_dropped"] + self.frames_dropped_prepared,
                "frames_corrupt": capture_stats["frames_corrupt"], "reconnects": capture_stats["reconnects"],
                "model_fps": _fps(np.mean(inf)) if len(inf) else 0.0,
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


def _fps(mean_ms):
    return 1000.0 / mean_ms if mean_ms > 0 else 0.0


class Pipeline:
    """Run `detector` over frames from a ThreadedCapture into sinks. `run()` returns the final stats dict."""

    def __init__(self, detector, capture, sinks=(), info=None, max_frames=None, draw=None, overlay=True,
                 handle_signals=True):
        self.detector, self.capture, self.sinks = detector, capture, list(sinks)
        self.info = dict(info or {})
        self.max_frames = max_frames
        self.draw = bool(self.sinks) if draw is None else draw  # nothing to show: skip drawing
        self.overlay = overlay
        self.handle_signals = handle_signals
        self.stats = RunStats()
        self.stop_event = threading.Event()
        self.stop_reason = None
        self.error = None
        self._prepared = queue.Queue(maxsize=1)
        self._inferred = queue.Queue(maxsize=2)
        self._infer_done = False
        self._render_thread = None

    def stop(self, reason="stopped"):
        if self.stop_reason is None:
            self.stop_reason = reason
        self.stop_event.set()
        self.capture.stop()

    def run(self):
        restore = self._install_signal_handlers()
        self._render_thread = threading.Thread(target=self._guard, args=(self._render_loop,), name="render",
                                               daemon=True)
        threads = [threading.Thread(target=self._guard, args=(self._prepare_loop,), name="prepare", daemon=True),
                   self._render_thread]
        try:
            try:
                for sink in self.sinks:
                    sink.open(self.info)
            except BaseException as e:  # e.g. a port in use: the sinks already open discard their outputs
                self.error = e
                raise
            self._t_start = time.perf_counter()
            self.capture.start()
            for t in threads:
                t.start()
            self._guard(self._infer_loop)
            for t in threads:
                t.join()
        finally:
            self.capture.stop()
            self.capture.join()
            self._close_sinks()
            restore()
        if self.error is not None:
            raise self.error
        if self.capture.error is not None:  # SDKErrors print as one line; anything else is a bug to see
            raise self.capture.error
        final = self.stats.snapshot(self.capture.stats)
        final["stop_reason"] = self.stop_reason or self.capture.end_reason or "end of source"
        return final

    def _guard(self, fn):
        try:
            fn()
        except BaseException as e:  # any stage failing stops every stage; run() re-raises it
            if self.error is None:
                self.error = e
            self.stop("error")

    def _prepare_loop(self):
        pre = self.detector.pre
        try:
            for frame in self.capture:
                if self.stop_event.is_set():
                    break
                t = time.perf_counter()
                if not self.capture.live:  # a file waits in the queue by design: its latency starts here
                    frame = frame._replace(t_read=t)
                x, lb = pre(frame.image)
                self.stats.pre_ms.append((time.perf_counter() - t) * 1e3)
                if self.capture.live:
                    self._put_latest(self._prepared, (frame, x, lb))
                elif not self._put(self._prepared, (frame, x, lb)):
                    break
        finally:
            self._put_end(self._prepared, lambda: self._infer_done)

    def _infer_loop(self):
        inferred = 0
        try:
            while True:
                item = self._prepared.get()
                if item is None:
                    break
                frame, x, lb = item
                t = time.perf_counter()
                pred = self.detector.infer_raw(x)
                self.stats.infer_ms.append((time.perf_counter() - t) * 1e3)
                inferred += 1
                if not self._put(self._inferred, (frame, lb, pred)):
                    break
                if self.max_frames is not None and inferred >= self.max_frames:
                    self.stop("max frames")
                    break
        finally:
            self._infer_done = True
            self.capture.stop()
            self._drain(self._prepared)
            self._put_end(self._inferred, lambda: not self._render_thread.is_alive())

    def _render_loop(self):
        det = self.detector
        while True:
            item = self._inferred.get()
            if item is None:
                return
            frame, lb, pred = item
            t = time.perf_counter()
            dets = postprocess(pred[0], lb, det.names, det.conf, det.iou, det.max_det, det.classes)
            image, counts = frame.image, dets.counts()
            live = self.stats.snapshot(self.capture.stats, window=LIVE_WINDOW) if self.sinks else None
            if self.draw:
                image = draw_detections(image.copy(), dets)
                if self.overlay and live:
                    draw_overlay(image, overlay_lines(self.info, live))
            post_ms = (time.perf_counter() - t) * 1e3
            if live is not None:
                live.update(counts=counts, frame_index=frame.index, timestamp=round(time.time(), 3),
                            video_time=self._video_time(frame), source=self.info.get("source"))
                for sink in self.sinks:
                    try:
                        sink.write(image, dets, live)
                    except OSError as e:  # disk full, device gone: a user-facing error, not a bug
                        raise SDKError(f"--output {getattr(sink, 'uri', type(sink).__name__)}: writing failed "
                                       f"({e.strerror or e}), expected a writable output") from None
                    if getattr(sink, "stop_requested", False):
                        self.stop("window closed")
            self.stats.frame_done((time.perf_counter() - frame.t_read) * 1e3, post_ms, counts)

    def _video_time(self, frame):
        """Position in the file (s) for files, capture time since the start for live sources."""
        fps = getattr(self.capture.source, "fps", None)
        if not self.capture.live and fps:
            return frame.index / fps
        return frame.t_read - getattr(self, "_t_start", frame.t_read)

    def _put(self, q, item):
        """Blocking put that gives up (False) when the pipeline stops."""
        while True:
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                if self.stop_event.is_set():
                    return False

    def _put_latest(self, q, item):
        """Live sources: a newer frame replaces the one waiting for inference, so inference never sees a stale one.

        Only this thread puts into `q`, so after taking the waiting item out the put cannot block.
        """
        try:
            q.get_nowait()
            self.stats.frames_dropped_prepared += 1
        except queue.Empty:
            pass
        q.put(item)

    def _put_end(self, q, consumer_gone):
        """The end marker always goes in; waiting frames are discarded only when nobody will consume them."""
        while True:
            try:
                q.put(None, timeout=0.1)
                return
            except queue.Full:
                if consumer_gone():
                    self._drain(q)

    @staticmethod
    def _drain(q):
        try:
            while True:
                q.get_nowait()
        except queue.Empty:
            pass

    def _close_sinks(self):
        """Close every sink (a stopped or interrupted run keeps its outputs); after an error, sinks that can
        discard a partial output (`abort()`) do, so nothing half-written is left."""
        errors = []
        for sink in self.sinks:
            try:
                if self.error is not None and hasattr(sink, "abort"):
                    sink.abort()
                else:
                    sink.close()
            except Exception as e:  # close every sink even when one fails
                errors.append(e)
        if errors and self.error is None:
            self.error = errors[0] if isinstance(errors[0], SDKError) else SDKError(f"output: {errors[0]}")

    def _install_signal_handlers(self):
        if not self.handle_signals or threading.current_thread() is not threading.main_thread():
            return lambda: None
        stops = (signal.SIGINT, signal.SIGTERM) + ((signal.SIGHUP,) if hasattr(signal, "SIGHUP") else ())  # ssh closed
        previous = {s: signal.getsignal(s) for s in stops if signal.getsignal(s) is not signal.SIG_IGN}  # nohup

        def on_signal(signum, _frame):
            self.stop(f"interrupted ({signal.Signals(signum).name})")

        for s in previous:
            signal.signal(s, on_signal)
        return lambda: [signal.signal(s, h) for s, h in previous.items()]


def overlay_lines(info, live):
    return [f"{info.get('backend', '')} {info.get('precision', '')}  model {live['model_fps']:.1f} FPS",
            f"end-to-end {live['e2e_fps']:.1f} FPS  latency p50 {live['p50_ms']:.0f} ms"]
