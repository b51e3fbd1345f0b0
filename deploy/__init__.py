"""Deployment recipes and on-device checks (Jetson doctor and self-test, systemd unit, container)."""
