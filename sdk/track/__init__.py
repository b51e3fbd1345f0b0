"""Tracking (ByteTrack) and counting (lines, zones) on top of per-frame detections."""
from .bytetrack import ByteTracker, Track, TrackerConfig, anchor_point
from .counting import LineCounter, LineSpec, ZoneCounter, ZoneSpec, parse_line, parse_zone

__all__ = ["ByteTracker", "Track", "TrackerConfig", "anchor_point", "LineCounter", "LineSpec", "ZoneCounter",
           "ZoneSpec", "parse_line", "parse_zone"]
