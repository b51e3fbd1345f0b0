"""The real-time pipeline: N sources -> one batched model -> tracks, counts, drawing and sinks, overlapped.

    from sdk import Detector
    from sdk.video import Pipeline, open_source, create_sinks

    pipeline = Pipeline(Detector("m.onnx"), [open_source("cam0.mp4"), open_source("rtsp://cam1/live")],
                        create_sinks(["runs/cam{stream}.mp4"], streams=2), track=True)
    for result in pipeline:           # one StreamResult per processed frame, any stream
        print(result.stream, len(result.detections), result.events)
    print(pipeline.final_stats)       # or simply: stats = pipeline.run()

Threads, so that only inference sits on the critical path: one capture thread per source (latest-frame for
live sources, every frame for files: sdk/video/sources.py), one prepare thread per source that letterboxes
into the stream's slot, an inference thread that builds each batch from the newest frame of every stream that
has one (as DeepStream's nvstreammux does, with a short wait for the others), and the calling thread, which
post-processes, tracks, counts, draws and feeds the sinks. A stream that stalls or ends only leaves its slot
out of the batch (a fixed-batch model gets it padded), so it never blocks the others. Memory stays flat: slots
and queues are bounded. SIGINT/SIGTERM stop it cleanly: sinks are closed (saved videos are playable) and the
stats are still returned.
"""
from __future__ import annotations

import collections
import queue
import signal
import threading
import time
from dataclasses import dataclass, field
from typing import Iterator, Optional, Sequence, Union

import numpy as np

from ..detections import Detections
from ..errors import SDKError
from ..runners.onnxruntime import IN_RUN
from ..visualize import draw_detections, draw_overlay
from .sources import Frame, FrameSource, ReconnectPolicy, ThreadedCapture
from .stats import LIVE_WINDOW, RunStats, sum_capture_stats

FILE_SLOTS = 1  # prepared frames a file stream may have waiting (files never drop; more would only add latency)
RECENT_S = 1.0  # a stream that produced a frame this recently is waited for when a batch is assembled
BATCH_TIMEOUT_S = 0.04  # longest wait for the other streams once one frame is ready (DeepStream: ~1/fps)
# onnxruntime's intra-op threads spin in a run, never after it: capture, prepare and render threads get the cores
# between inferences, and a run keeps the cheap hand-over between its ops (scripts/bench_spin.py measured on, off
# and in runs only; the table is in docs/camera.md, "Benchmarks")
PIPELINE_SPIN = IN_RUN

__all__ = ["Pipeline", "StreamResult", "LIVE_WINDOW", "PIPELINE_SPIN", "RunStats", "batch_plan"]


@dataclass
class StreamResult:
    """One processed frame of one stream, as the pipeline's loop yields it."""

    stream: int
    name: str
    frame: Frame  # index, original BGR image, read time
    image: np.ndarray  # the annotated frame the sinks received (the original when nothing is drawn)
    detections: Detections  # original-frame pixels; `track_ids` set when tracking
    events: list = field(default_factory=list)  # line crossings and zone entries/exits in this frame
    stats: dict = field(default_factory=dict)  # the live stats the sinks received


class _Stream:
    """Per-source state: capture, prepared slot, tracker, counters, sinks, stats."""

    def __init__(self, index, capture, name, tracker=None, lines=(), zones=()):
        self.index, self.capture, self.name = index, capture, name
        self.live = capture.live
        self.source_text = getattr(getattr(capture.source, "uri", None), "text", None) or name
        self.slot = collections.deque()
        self.prepared_done = False
        self.finished = False
        self.inferred = 0
        self.last_t = None
        self.end_reason = None
        self.tracker, self.lines, self.zones = tracker, list(lines), list(zones)
        self.sinks = []
        self.stats = RunStats()

    def recent(self, now):
        return self.last_t is not None and now - self.last_t < RECENT_S

    def counters(self):
        out = {}
        if self.lines:
            out["lines"] = {c.name: c.totals() for c in self.lines}
        if self.zones:
            out["zones"] = {z.name: z.occupancy() for z in self.zones}
        if self.tracker is not None:
            out["tracks_total"] = self.tracker._next_id - 1
        return out


def batch_plan(batch_size: Optional[int], streams: int):
    """(frames per inference, pad to, sentence): how N streams share a model of this batch size."""
    if batch_size is None:
        return streams, None, f"batch: dynamic-batch model, up to {streams} stream(s) per inference"
    if batch_size == 1:
        text = "batch: the model takes 1 frame per inference"
        if streams > 1:
            text += f"; {streams} streams run in turn (export with --dynamic-batch to batch them)"
        return 1, None, text
    take = min(batch_size, streams)
    return take, batch_size, (f"batch: the model takes {batch_size} frames per inference; {streams} stream(s), "
                              f"up to {take} per batch" + (", padded" if take < batch_size or streams > 1 else ""))


class Pipeline:
    """Run `detector` over one or more sources into sinks; iterate for results, or `run()` for the final stats.

    sources: FrameSources (opened, see `open_source`) or ThreadedCaptures, or one of either.
    sinks: Sink objects; a sink whose `stream` attribute is an int gets that stream's frames only, one whose
        `stream` is None gets every stream's (with `stats["stream"]`).
    track: ByteTrack ids per stream (`tracker_config`: sdk.track.TrackerConfig); lines/zones: LineSpec/ZoneSpec
        (sdk.track.parse_line/parse_zone), each for one stream or all; they imply `track`.
    loop, reconnect, max_frames: applied to sources given as FrameSources; max_frames is per stream.
    spin: how the detector's onnxruntime session's threads wait (sdk.runners.onnxruntime.session_options):
        "run" by default (PIPELINE_SPIN: spinning in runs only, the other stages get the cores between them),
        False never, True onnxruntime's default, None to keep the session as it was opened. A session opened
        otherwise is reopened once, here (open it with `Detector(..., spin="run")` to avoid that); backends
        without a spinning pool ignore it.
    """

    def __init__(self, detector, sources, sinks: Sequence = (), info: Optional[dict] = None,
                 max_frames: Optional[int] = None, draw: Optional[bool] = None, overlay: bool = True,
                 handle_signals: bool = True, track: bool = False, tracker_config=None, lines: Sequence = (),
                 zones: Sequence = (), loop: bool = False, reconnect: ReconnectPolicy = ReconnectPolicy(),
                 batch_timeout_s: float = BATCH_TIMEOUT_S, names: Optional[Sequence[str]] = None,
                 spin: Union[bool, str, None] = PIPELINE_SPIN):
        if isinstance(sources, (FrameSource, ThreadedCapture)):
            sources = [sources]
        if not sources:
            raise SDKError("sources: got none, expected at least one source")
        if max_frames is not None and max_frames < 1:
            raise SDKError(f"max_frames: got {max_frames}, expected at least 1")
        self.detector, self.sinks = detector, list(sinks)
        self.info = dict(info or {})
        self.max_frames = max_frames
        self.draw = bool(self.sinks) if draw is None else draw  # nothing to show: skip drawing
        self.overlay = overlay
        self.handle_signals = handle_signals
        self.batch_timeout_s = float(batch_timeout_s)
        self.track = bool(track or lines or zones)
        self.tracker_config = tracker_config
        self.line_specs, self.zone_specs = list(lines), list(zones)
        captures = [s if isinstance(s, ThreadedCapture) else
                    ThreadedCapture(s, loop=loop, reconnect=reconnect, max_frames=None if s.live else max_frames)
                    for s in sources]
        self.streams = [_Stream(i, c, (names[i] if names else str(i))) for i, c in enumerate(captures)]
        for spec in self.line_specs + self.zone_specs:
            if spec.stream is not None and not 0 <= spec.stream < len(self.streams):
                raise SDKError(f"{type(spec).__name__.replace('Spec', '').lower()} {spec.name}: got stream "
                               f"{spec.stream}, expected 0..{len(self.streams) - 1}")
        for sink in self.sinks:
            target = getattr(sink, "stream", None)
            if target is not None and not 0 <= target < len(self.streams):
                raise SDKError(f"output {getattr(sink, 'uri', sink)}: got stream {target}, expected "
                               f"0..{len(self.streams) - 1}")
        self.overall = RunStats()
        self.stop_event = threading.Event()
        self.stop_reason = None
        self.error = None
        self.final_stats = None
        self.batch_size = self.pad_to = None
        self.batch_text = ""
        if detector is not None and spin is not None and hasattr(detector.runner, "set_spin"):
            detector.runner.set_spin(spin)
        if detector is not None:  # how the streams share the model, known before the run starts
            self.batch_size, self.pad_to, self.batch_text = batch_plan(detector.batch_size, len(self.streams))
        self._cv = threading.Condition()
        self._inferred = queue.Queue(maxsize=2 * len(self.streams) + 2)
        self._infer_done = False
        self._rr = 0
        self._threads = []
        self._started = False
        self._restore_signals = lambda: None
        self._t0 = time.perf_counter()

    # ---- control ---------------------------------------------------------------------------------------------
    def stop(self, reason: str = "stopped"):
        if self.stop_reason is None:
            self.stop_reason = reason
        self.stop_event.set()
        for s in self.streams:
            s.capture.stop()
        with self._cv:
            self._cv.notify_all()

    def run(self) -> dict:
        """Process until every source ends, `max_frames` per stream, `stop()` or a signal; the final stats."""
        for _ in self:
            pass
        return self.final_stats

    def __iter__(self) -> Iterator[StreamResult]:
        self._start()
        try:
            while True:
                item = self._inferred.get()
                if item is None:
                    break
                try:
                    result = self._render(*item)
                except BaseException as e:  # a failing sink or drawing stops every stage
                    self._fail(e)
                    break
                yield result
        finally:
            self._finish()

    # ---- set-up and tear-down --------------------------------------------------------------------------------
    def _start(self):
        if self._started:
            raise SDKError("pipeline: already run, expected a new Pipeline for another run")
        self._started = True
        self._restore_signals = self._install_signal_handlers()
        try:
            self._open_sinks()
            self._setup_streams()
        except BaseException as e:  # e.g. a port in use: the sinks already open discard their outputs
            self.error = e
            self._close_sinks()
            self._restore_signals()
            raise
        self._t0 = time.perf_counter()
        for s in self.streams:
            s.capture.start()
            self._threads.append(threading.Thread(target=self._guard, args=(self._prepare_loop, s),
                                                  name=f"prepare-{s.index}", daemon=True))
        self._threads.append(threading.Thread(target=self._guard, args=(self._infer_loop,), name="infer",
                                              daemon=True))
        for t in self._threads:
            t.start()

    def _open_sinks(self):
        single = len(self.streams) == 1
        for sink in self.sinks:
            target = getattr(sink, "stream", None)
            if single or target is None:
                sink.open(self.info if single else {**self.info, "streams": [self._stream_info(s)
                                                                             for s in self.streams]})
            else:
                sink.open(self._stream_info(self.streams[target]))
            for s in self.streams:
                if target is None or target == s.index:
                    s.sinks.append(sink)

    def _stream_info(self, s):
        if len(self.streams) == 1:
            return self.info
        src = s.capture.source
        return {**self.info, "source": s.source_text, "fps": src.fps, "size": src.size, "stream": s.index,
                "stream_name": s.name}

    def _setup_streams(self):
        if not self.track:
            return
        from ..track import ByteTracker, LineCounter, ZoneCounter  # noqa: PLC0415  (only when tracking)

        for s in self.streams:
            src = s.capture.source
            s.tracker = ByteTracker(self.tracker_config, frame_rate=src.fps or 30.0)
            s.lines = [LineCounter(spec, src.size) for spec in self.line_specs if spec.stream in (None, s.index)]
            s.zones = [ZoneCounter(spec, src.size) for spec in self.zone_specs if spec.stream in (None, s.index)]

    def _finish(self):
        self.stop_event.set()
        for s in self.streams:
            s.capture.stop()
        with self._cv:
            self._cv.notify_all()
        self._drain(self._inferred)
        for t in self._threads:
            while t.is_alive():
                t.join(0.1)
                self._drain(self._inferred)  # a producer blocked on a full queue gets its room
        for s in self.streams:
            s.capture.join()
        self._close_sinks()
        self._restore_signals()
        if self.error is not None:
            raise self.error
        for s in self.streams:
            if s.capture.error is not None:  # SDKErrors print as one line; anything else is a bug to see
                raise s.capture.error
        self.final_stats = self.snapshot()

    def _fail(self, e):
        if self.error is None:
            self.error = e
        self.stop("error")

    def _guard(self, fn, *args):
        try:
            fn(*args)
        except BaseException as e:  # any stage failing stops every stage; the loop re-raises it
            self._fail(e)

    # ---- stages ----------------------------------------------------------------------------------------------
    def _prepare_loop(self, s):
        pre = self.detector.pre
        try:
            for frame in s.capture:
                if self.stop_event.is_set() or s.finished:
                    break
                t = time.perf_counter()
                if not s.live:  # a file waits in the queue by design: its latency starts here
                    frame = frame._replace(t_read=t)
                x, lb = pre(frame.image)
                ms = (time.perf_counter() - t) * 1e3
                s.stats.pre_ms.append(ms)
                self.overall.pre_ms.append(ms)
                with self._cv:
                    if s.live:
                        if s.slot:  # latest-frame policy: a newer frame replaces the one waiting
                            s.slot.popleft()
                            s.stats.frames_dropped_prepared += 1
                            self.overall.frames_dropped_prepared += 1
                    else:
                        while len(s.slot) >= FILE_SLOTS and not (self.stop_event.is_set() or s.finished):
                            self._cv.wait(0.1)
                        if self.stop_event.is_set() or s.finished:
                            break
                    s.slot.append((frame, x, lb))
                    s.last_t = time.perf_counter()
                    self._cv.notify_all()
        finally:
            with self._cv:
                s.prepared_done = True
                self._cv.notify_all()

    def _gather(self):
        """The next batch: [(stream, frame, x, letterbox)], at most `batch_size`; None when every stream is done."""
        n = len(self.streams)
        with self._cv:
            deadline = None
            while not self.stop_event.is_set():
                now = time.perf_counter()
                for s in self.streams:
                    if not s.finished and s.prepared_done and not s.slot:
                        s.finished = True
                        s.end_reason = s.end_reason or s.capture.end_reason or "end of source"
                order = [self.streams[(self._rr + k) % n] for k in range(n)]
                active = [s for s in order if not s.finished]
                if not active:
                    return None
                ready = [s for s in active if s.slot]
                if ready:
                    expected = [s for s in active if not s.slot and s.recent(now)]
                    if len(ready) >= self.batch_size or not expected or (deadline is not None and now >= deadline):
                        take = ready[:self.batch_size]
                        self._rr = (take[-1].index + 1) % n
                        batch = [(s, *s.slot.popleft()) for s in take]
                        self._cv.notify_all()  # file streams waiting for room in their slot
                        return batch
                    if deadline is None:
                        deadline = now + self.batch_timeout_s
                    self._cv.wait(max(deadline - now, 0.0))
                else:
                    self._cv.wait(0.1)
        return None

    def _infer_loop(self):
        try:
            while True:
                batch = self._gather()
                if batch is None:
                    break
                x = np.concatenate([item[2] for item in batch]) if len(batch) > 1 else batch[0][2]
                if self.pad_to and len(batch) < self.pad_to:  # a fixed-batch model: fill the empty slots
                    x = np.concatenate([x, np.zeros((self.pad_to - len(batch), *x.shape[1:]), x.dtype)])
                t = time.perf_counter()
                pred = self.detector.infer_raw(x)
                self.overall.batch_done(len(batch), (time.perf_counter() - t) * 1e3)
                for i, (s, frame, _, lb) in enumerate(batch):
                    s.inferred += 1
                    if not self._put(self._inferred, (s, frame, lb, pred[i])):
                        return
                    if self.max_frames is not None and s.inferred >= self.max_frames and not s.finished:
                        with self._cv:
                            s.finished = True
                            s.end_reason = "max frames"
                            s.slot.clear()
                            self._cv.notify_all()
                        s.capture.stop()
        finally:
            self._infer_done = True
            if self.stop_reason is None and all(s.end_reason == "max frames" for s in self.streams):
                self.stop_reason = "max frames"
            for s in self.streams:
                s.capture.stop()
            self._put_end(self._inferred)

    def _render(self, s, frame, lb, pred):
        t = time.perf_counter()
        dets = self.detector.postprocess(pred, lb)
        events = self._track_and_count(s, frame, dets) if s.tracker is not None else []
        image, counts = frame.image, dets.counts()
        live = self._live_stats(s) if s.sinks else {}
        if self.draw:
            image = self._annotate(s, image.copy(), dets, live)
        post_ms = (time.perf_counter() - t) * 1e3
        if s.sinks:
            live.update(counts=counts, frame_index=frame.index, timestamp=round(time.time(), 3), events=events,
                        video_time=self._stream_time(s, frame),
                        source=s.source_text if len(self.streams) > 1 else self.info.get("source", s.source_text))
            if len(self.streams) > 1:
                live.update(stream=s.index, stream_name=s.name)
            for sink in s.sinks:
                try:
                    sink.write(image, dets, live)
                except OSError as e:  # disk full, device gone: a user-facing error, not a bug
                    raise SDKError(f"output {getattr(sink, 'uri', type(sink).__name__)}: writing failed "
                                   f"({e.strerror or e}), expected a writable output") from None
                if getattr(sink, "stop_requested", False):
                    self.stop("window closed")
        latency = (time.perf_counter() - frame.t_read) * 1e3
        s.stats.frame_done(latency, post_ms, counts)
        self.overall.frame_done(latency, post_ms, counts)
        return StreamResult(s.index, s.name, frame, image, dets, events, live)

    def _stream_time(self, s, frame):
        """Seconds into the stream: the frame's position for a file, time since the start for a live source."""
        fps = s.capture.source.fps
        if not s.live and fps:
            return frame.index / fps
        return frame.t_read - self._t0

    def _track_and_count(self, s, frame, dets):
        dets.track_ids = s.tracker.update(dets.boxes, dets.scores, dets.class_ids)
        if not (s.lines or s.zones):
            return []
        t = self._stream_time(s, frame)
        names = [dets.class_name(c) for c in dets.class_ids]
        base = {"time": round(time.time(), 3), "stream": s.index, "frame": frame.index, "video_time": round(t, 3)}
        events = []
        live_ids = {tr.track_id for tr in s.tracker.tracks}
        for line in s.lines:
            for tid, direction, cls in line.update(dets.track_ids, dets.boxes, names):
                events.append({**base, "event": "line", "track": tid, "line": line.name, "direction": direction,
                               "class": cls})
            line.forget(live_ids)
        for zone in s.zones:
            for tid, what, cls, dwell in zone.update(dets.track_ids, dets.boxes, names, t):
                events.append({**base, "event": "zone", "track": tid, "zone": zone.name, "direction": what,
                               "class": cls, "dwell_s": dwell})
        return events

    def _annotate(self, s, image, dets, live):
        image = draw_detections(image, dets)
        if s.tracker is not None:
            from ..track.draw import draw_lines, draw_tracks, draw_zones  # noqa: PLC0415

            draw_tracks(image, dets, s.tracker)
            draw_zones(image, s.zones)
            draw_lines(image, s.lines)
        if self.overlay and live:
            draw_overlay(image, self._overlay_lines(s, live))
        return image

    def _overlay_lines(self, s, live):
        info = self.info
        lines = [f"{info.get('backend', '')} {info.get('precision', '')}  model {live['model_fps']:.1f} FPS"
                 + (f" (batch {self.batch_size})" if self.batch_size and self.batch_size > 1 else ""),
                 (f"stream {s.name}: " if len(self.streams) > 1 else "")
                 + f"end-to-end {live['e2e_fps']:.1f} FPS  latency p50 {live['p50_ms']:.0f} ms"]
        if s.tracker is not None:
            lines.append(f"tracks {len(s.tracker.active())}")
        return lines

    # ---- stats -----------------------------------------------------------------------------------------------
    def _live_stats(self, s):
        """What sinks get with each frame: this stream's stats (last LIVE_WINDOW frames) and the run's."""
        live = s.stats.snapshot(s.capture.stats, window=LIVE_WINDOW, model=self.overall)
        live.update(self._extras(live_window=True))
        live.update(s.counters())
        return live

    def _extras(self, live_window=False):
        window = LIVE_WINDOW if live_window else None
        streams = []
        for s in self.streams:
            one = s.stats.snapshot(s.capture.stats, window=window, model=self.overall)
            one.update(stream=s.index, name=s.name, source=s.source_text, live=s.live,
                       stop_reason=s.end_reason or s.capture.end_reason)
            one.update(s.counters())
            streams.append(one)
        nb = self.overall.batch_frames
        extras = {"streams": streams,
                  "batch": {"size": self.batch_size, "padded_to": self.pad_to,
                            "mean_frames": round(float(np.mean(nb)), 2) if nb else 0.0,
                            "largest": int(max(nb)) if nb else 0, "plan": self.batch_text}}
        if self.track:
            extras["tracks_total"] = sum(s.tracker._next_id - 1 for s in self.streams if s.tracker is not None)
            extras["lines"] = [{"stream": s.index, "line": c.name, **c.totals()} for s in self.streams
                               for c in s.lines]
            extras["zones"] = [{"stream": s.index, "zone": z.name, "inside": len(z.now), "entries": z.entries}
                               for s in self.streams for z in s.zones]
        return extras

    def snapshot(self) -> dict:
        """The run's stats now (all frames, not a window): overall counters at the top, per stream in `streams`."""
        final = self.overall.snapshot(sum_capture_stats([s.capture.stats for s in self.streams]))
        final.update(self._extras())
        outputs = [sink.output_stats() for sink in (getattr(k, "inner", k) for k in self.sinks)  # mosaic:rtsp://
                   if hasattr(sink, "output_stats")]
        if outputs:  # network outputs: frames sent and dropped (a slow client costs its own frames only)
            final["outputs"] = outputs
        if self.stop_reason:
            final["stop_reason"] = self.stop_reason
        else:
            reasons = [s.end_reason or s.capture.end_reason or "end of source" for s in self.streams]
            lost = [r for r in reasons if r.startswith("stream lost")]
            final["stop_reason"] = lost[0] if lost else reasons[0] if len(set(reasons)) == 1 else "every stream ended"
        return final

    # ---- queues and signals ----------------------------------------------------------------------------------
    def _put(self, q, item):
        """Blocking put that gives up (False) when the pipeline stops."""
        while True:
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                if self.stop_event.is_set():
                    return False

    def _put_end(self, q):
        """The end marker always goes in; waiting frames are discarded only when the run is stopping."""
        while True:
            try:
                q.put(None, timeout=0.1)
                return
            except queue.Full:
                if self.stop_event.is_set():
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
