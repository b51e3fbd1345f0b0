"""Model export (the `torch` and `tf` extras)."""
