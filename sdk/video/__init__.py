"""Video sources, sinks and the capture/inference pipeline."""
