"""Triton Inference Server backend: `triton://host:port/model[?protocol=http|grpc&timeout=S&reconnect=N]`.

The server runs the network; pre- and post-processing stay on the client (the Detector), and the model's SDK
metadata (class names, input size, letterbox, layout) comes from the server's model config `parameters`
(written by `python -m sdk export-triton`). A batch of frames (several streams) is one request.

Errors name the URL on one line: server down, model not ready, wrong input shape, timeout. A connection lost
after a successful load (server restarted, network blip) is retried with back-off (0.5 s doubling to 8 s,
`reconnect` attempts, default 5) before `TritonUnavailable` is raised; pipelines may catch that type, or call
`reconnect()` themselves.

tritonclient is imported on first use: `pip install -e ".[triton]"`.
"""
import threading
import time
import urllib.parse
from dataclasses import dataclass
from typing import Dict, Iterator, Optional

import numpy as np

from ..errors import MissingDependency, SDKError
from ..triton.config import TRITON_TO_NUMPY, metadata_from_parameters
from .base import Runner, TensorSpec

SCHEME = "triton://"
DEFAULT_PORTS = {"http": 8000, "grpc": 8001}
DEFAULT_TIMEOUT_S = 30.0
DEFAULT_RECONNECTS = 5


class TritonUnavailable(SDKError):
    """The server cannot be reached (down, restarting, network): the case a live pipeline reconnects from."""

    def __init__(self, message, cause=""):
        super().__init__(message)
        self.cause = cause or message


def is_triton_url(model) -> bool:
    return isinstance(model, str) and model.lower().startswith(SCHEME)


@dataclass(frozen=True)
class TritonURL:
    host: str
    port: int
    model: str
    protocol: str = "grpc"
    timeout_s: float = DEFAULT_TIMEOUT_S
    reconnect: int = DEFAULT_RECONNECTS
    version: str = ""

    @classmethod
    def parse(cls, url: str) -> "TritonURL":
        expected = "triton://HOST:PORT/MODEL[?protocol=http|grpc&timeout=S&reconnect=N]"
        if not is_triton_url(url):
            raise SDKError(f"model {url}: got no triton:// scheme, expected {expected}")
        parts = urllib.parse.urlsplit(url)
        try:
            port = parts.port
        except ValueError:
            raise SDKError(f"model {url}: got port '{parts.netloc.rsplit(':', 1)[-1]}', expected a number in "
                           f"[1, 65535] ({expected})") from None
        model = parts.path.strip("/")
        if not parts.hostname or not model or "/" in model:
            raise SDKError(f"model {url}: got host '{parts.hostname or ''}' and model '{model}', expected {expected}")
        query = dict(urllib.parse.parse_qsl(parts.query, keep_blank_values=True))
        unknown = set(query) - {"protocol", "timeout", "reconnect", "version"}
        if unknown:
            raise SDKError(f"model {url}: got option '{sorted(unknown)[0]}', expected protocol, timeout, reconnect "
                           f"or version")
        # Without ?protocol=, Triton's default ports say which API it is (8000 HTTP, 8001 gRPC); else gRPC.
        protocol = query.get("protocol") or ("http" if port == DEFAULT_PORTS["http"] else "grpc")
        if protocol not in DEFAULT_PORTS:
            raise SDKError(f"model {url}: got protocol={protocol}, expected protocol=http or protocol=grpc")
        timeout = _number(url, "timeout", query.get("timeout"), DEFAULT_TIMEOUT_S, 0.001, 3600.0)
        reconnect = int(_number(url, "reconnect", query.get("reconnect"), DEFAULT_RECONNECTS, 0, 100, integer=True))
        return cls(parts.hostname, port or DEFAULT_PORTS[protocol], model, protocol, timeout, reconnect,
                   query.get("version", ""))

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def __str__(self):
        return f"triton://{self.address}/{self.model}?protocol={self.protocol}"


def _number(url, key, raw, default, lo, hi, integer=False):
    if raw is None:
        return default
    try:
        value = int(raw) if integer else float(raw)
    except ValueError:
        value = None
    if value is None or not lo <= value <= hi:
        raise SDKError(f"model {url}: got {key}={raw}, expected {'an integer' if integer else 'a number'} in "
                       f"[{lo}, {hi}]")
    return value


def backoff_delays(attempts, first_s=0.5, max_s=8.0) -> Iterator[float]:
    """0.5 s doubling to 8 s, as the camera sources reconnect."""
    d = first_s
    for _ in range(attempts):
        yield d
        d = min(d * 2, max_s)


def _client_module(protocol):
    try:
        if protocol == "http":
            import tritonclient.http as client  # noqa: PLC0415 - optional: the triton extra
        else:
            import tritonclient.grpc as client  # noqa: PLC0415
    except ImportError:
        raise MissingDependency("tritonclient", "triton:// models", "pip install -e '.[triton]'") from None
    return client


def _short(text, n=40):
    text = str(text or "")
    return text if len(text) <= n else text[: n - 3] + "..."


class TritonRunner(Runner):
    backend = "triton"

    def __init__(self, url, timeout_s: Optional[float] = None, reconnect: Optional[int] = None, sleep=time.sleep):
        super().__init__(url)
        parsed = TritonURL.parse(url)
        self.url = parsed
        self.timeout_s = float(timeout_s if timeout_s is not None else parsed.timeout_s)
        self.reconnect_attempts = int(reconnect if reconnect is not None else parsed.reconnect)
        self.max_batch_size = 0
        self.reconnects = 0  # successful reconnections over the runner's life
        self._clients = {}  # thread id -> client: tritonclient.http's gevent client works only in its own thread
        self._sleep = sleep
        self._mod = None

    # -- connection -----------------------------------------------------------------------------------------
    def _load(self):
        self._mod = _client_module(self.url.protocol)
        self._connect()
        self._read_config()

    def _new_client(self):
        mod, u = self._mod, self.url
        if u.protocol == "http":
            return mod.InferenceServerClient(u.address, connection_timeout=self.timeout_s,
                                             network_timeout=self.timeout_s)
        return mod.InferenceServerClient(u.address)

    @property
    def client(self):
        """This thread's client (a pipeline calls from its inference thread, not the one that connected). gRPC
        clients are thread-safe and shared; HTTP ones (gevent) get one per thread."""
        if not self._clients:
            return None
        tid = threading.get_ident()
        if tid not in self._clients:
            if self.url.protocol != "http":
                return next(iter(self._clients.values()))
            try:
                self._clients[tid] = self._new_client()
            except Exception as e:  # noqa: BLE001 - mapped to one line naming the URL
                raise self._unavailable(e) from None
        return self._clients[tid]

    def _connect(self):
        u = self.url
        try:
            self._clients = {threading.get_ident(): self._new_client()}
            live = self._call(self.client.is_server_live)
        except TritonUnavailable:
            raise
        except Exception as e:  # the client libraries raise socket, gevent and gRPC errors alike
            raise self._unavailable(e) from None
        if not live:
            raise TritonUnavailable(f"{u}: server at {u.address} is not live, expected a running Triton server",
                                    "server not live")
        ready = self._call(self.client.is_model_ready, u.model, u.version)
        if not ready:
            names = self._model_names()
            raise SDKError(f"{u}: model '{u.model}' is not ready on the server, expected one of the ready models "
                           f"({', '.join(names) or 'none'})")

    def _model_names(self):
        try:
            index = self._call(self.client.get_model_repository_index)
        except SDKError:
            return []
        if not isinstance(index, (list, dict)):  # gRPC returns a protobuf message
            index = [{"name": m.name, "state": m.state} for m in index.models]
        return sorted(m.get("name", "?") for m in index if m.get("state") == "READY")

    def _read_config(self):
        u = self.url
        if u.protocol == "http":
            config = self._call(self.client.get_model_config, u.model, u.version)
        else:
            config = self._call(self.client.get_model_config, u.model, u.version, as_json=True,
                                client_timeout=self.timeout_s)["config"]
        self.max_batch_size = int(config.get("max_batch_size") or 0)
        batch = (None,) if self.max_batch_size > 0 else ()

        def specs(key):
            out = []
            for t in config.get(key) or []:
                wire = str(t.get("data_type", "TYPE_FP32")).replace("TYPE_", "")
                if wire not in TRITON_TO_NUMPY:
                    raise SDKError(f"{u}: tensor '{t.get('name')}' has data type {wire}, expected one of "
                                   f"{', '.join(TRITON_TO_NUMPY)}")
                dims = tuple(None if int(d) < 0 else int(d) for d in t.get("dims") or [])
                out.append(TensorSpec(t["name"], batch + dims, np.dtype(TRITON_TO_NUMPY[wire])))
            return out

        self.inputs, self.outputs = specs("input"), specs("output")
        if not self.inputs or not self.outputs:
            raise SDKError(f"{u}: the model config has {len(self.inputs)} inputs and {len(self.outputs)} outputs, "
                           f"expected at least one of each")
        params = {k: (v or {}).get("string_value", "") for k, v in (config.get("parameters") or {}).items()}
        self.metadata = metadata_from_parameters(params)

    def reconnect(self, attempts: Optional[int] = None):
        """Re-open the connection with back-off; returns self, or raises TritonUnavailable after `attempts`."""
        attempts = self.reconnect_attempts if attempts is None else attempts
        last = None
        for delay in backoff_delays(attempts):
            self._sleep(delay)
            self._drop_client()
            try:
                self._connect()
            except SDKError as e:  # down, or up but the model not loaded yet: both pass once it has restarted
                last = getattr(e, "cause", None) or "model not ready"
                continue
            self.reconnects += 1
            return self
        raise TritonUnavailable(f"{self.url}: server unreachable after {attempts} reconnect attempts "
                                f"(last: {_short(last) or 'no attempt made'}), expected the server back",
                                last or "")

    def _drop_client(self):
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            try:
                client.close()
            except Exception:  # closing a dead connection: nothing to report
                pass

    def _close(self):
        self._drop_client()

    # -- inference ------------------------------------------------------------------------------------------
    def validate(self, feed):
        try:
            super().validate(feed)
        except SDKError as e:
            raise SDKError(f"{self.url}: {str(e).replace(f'{self.backend} runner ', '')}") from None
        if self.max_batch_size > 0:
            for spec in self.inputs:
                n = feed[spec.name].shape[0]
                if not 1 <= n <= self.max_batch_size:
                    raise SDKError(f"{self.url}: input '{spec.name}' got batch {n}, expected 1 to "
                                   f"{self.max_batch_size} (the model's max_batch_size)")

    def _infer(self, feed: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        try:
            return self._request(feed)
        except TritonUnavailable:
            if self.reconnect_attempts <= 0:
                raise
        self.reconnect()
        return self._request(feed)

    def _request(self, feed):
        mod, u = self._mod, self.url
        inputs = []
        for spec in self.inputs:
            arr = np.ascontiguousarray(feed[spec.name])
            t = mod.InferInput(spec.name, list(arr.shape), _wire(arr.dtype))
            t.set_data_from_numpy(arr, binary_data=True) if u.protocol == "http" else t.set_data_from_numpy(arr)
            inputs.append(t)
        if u.protocol == "http":
            outputs = [mod.InferRequestedOutput(o.name, binary_data=True) for o in self.outputs]
            result = self._call(self.client.infer, u.model, inputs, u.version, outputs)
        else:
            outputs = [mod.InferRequestedOutput(o.name) for o in self.outputs]
            result = self._call(self.client.infer, u.model, inputs, u.version, outputs,
                                client_timeout=self.timeout_s)
        return {o.name: result.as_numpy(o.name) for o in self.outputs}

    def _call(self, fn, *args, **kw):
        """Run one client call; every failure becomes one line naming the URL."""
        if self.client is None:
            raise TritonUnavailable(f"{self.url}: not connected, expected a connection (reconnect failed)")
        try:
            return fn(*args, **kw)
        except Exception as e:  # noqa: BLE001 - tritonclient, gevent, socket and gRPC errors are all mapped
            raise self._classify(e) from None

    def _classify(self, e) -> SDKError:
        msg = _message(e)
        low = msg.lower()
        if "deadline" in low or "timed out" in low or "timeout" in type(e).__name__.lower():
            return SDKError(f"{self.url}: no answer within {self.timeout_s:g} s (timeout), expected a reply; "
                            f"raise it with ?timeout=SECONDS")
        if isinstance(e, (ConnectionError, OSError, EOFError)) or any(
                k in low for k in ("unavailable", "connection refused", "failed to connect", "connection reset",
                                   "broken pipe", "socket closed", "connection aborted", "remotedisconnected",
                                   "eof", "not live", "no route", "failed to establish")):
            return self._unavailable(e)
        return SDKError(f"{self.url}: the server refused the request ({msg}), expected the model to accept it")

    def _unavailable(self, e) -> TritonUnavailable:
        cause = _message(e)
        # shortened: the error line must keep its 'expected' part
        return TritonUnavailable(f"{self.url}: server unreachable ({_short(cause)}), expected a running Triton server",
                                 cause)

    def describe(self):
        return f"triton ({self.url.protocol} {self.url.address}, model {self.url.model}, max batch " \
               f"{self.max_batch_size})"


def _wire(dtype) -> str:
    for wire, name in TRITON_TO_NUMPY.items():
        if np.dtype(name) == np.dtype(dtype):
            return wire
    raise SDKError(f"triton input dtype: got {np.dtype(dtype)}, expected one of {', '.join(TRITON_TO_NUMPY.values())}")


def _message(e) -> str:
    text = getattr(e, "message", None)
    text = text() if callable(text) else text
    text = str(text or e or type(e).__name__).strip().splitlines()
    return (text[0] if text else type(e).__name__)[:200]
