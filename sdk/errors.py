"""Errors the SDK reports to users as one line (the CLI prints them and exits 1)."""


class SDKError(Exception):
    """An error caused by the user's input or environment, not by a bug in the SDK."""


def bad_input(what, received, expected):
    """Build the standard one-line message: what input, what we got, what we wanted."""
    return SDKError(f"{what}: got {received}, expected {expected}")


class MissingDependency(SDKError):
    """An optional dependency (torch, TensorRT, ...) is needed for this job but not installed."""

    def __init__(self, package, purpose, hint):
        super().__init__(f"{package} is not installed here; it is needed for {purpose}. {hint}")
        self.package = package
