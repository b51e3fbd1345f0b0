"""Live view of a running detector over HTTP: a stdlib server, the latest-frame hub and one static page."""
