"""TensorRT's plugin library for the fake (added for issue 15; the rest of the fake is untouched).

Real TensorRT keeps plugin creators (EfficientNMS_TRT, BatchedNMS_TRT, ...) in a registry that is empty until
`initLibNvInferPlugins(logger, namespace)` runs (NvInferPlugin.h; Python `trt.init_libnvinfer_plugins(logger,
"")`, which Polygraphy's engine loaders call before deserializing). Deserializing an engine that holds a plugin
layer before that logs "getPluginCreator could not find plugin: EfficientNMS_TRT version: 1" and
`deserialize_cuda_engine` returns None. `with_plugins(trt)` gives the fake that rule; `plugin_engine` writes a
fake engine whose header lists the plugin, around an ONNX that computes the plugin's outputs with plain ops
(so the fake can run it through onnxruntime, as it runs every engine).
"""
import json
import struct

from .fake_trt import MAGIC


def with_plugins(trt):
    """Add `init_libnvinfer_plugins` and the plugin rule to a fake tensorrt module (in place); returns it."""
    state = {"registered": False}
    deserialize = trt.Runtime.deserialize_cuda_engine

    builtin = getattr(trt, "init_libnvinfer_plugins", None)  # the version-split fake has the rule built in

    def init_libnvinfer_plugins(logger, namespace):
        state["registered"] = True
        if builtin is not None:
            return builtin(logger, namespace)
        trt.CALLS.append(("init_libnvinfer_plugins", namespace))
        return True

    def deserialize_cuda_engine(self, blob):
        data = bytes(blob)
        if data.startswith(MAGIC):
            (n,) = struct.unpack("<I", data[len(MAGIC):len(MAGIC) + 4])
            header = json.loads(data[len(MAGIC) + 4:len(MAGIC) + 4 + n])
            missing = [p for p in header.get("plugins", []) if not state["registered"]]
            if missing:
                self._logger.log(trt.Logger.ERROR, f"getPluginCreator could not find plugin: {missing[0]} version: 1")
                return None
        return deserialize(self, blob)

    trt.init_libnvinfer_plugins = init_libnvinfer_plugins
    trt.Runtime.deserialize_cuda_engine = deserialize_cuda_engine
    return trt


def plugin_engine(trt, onnx_path, out, plugins=("EfficientNMS_TRT",)):
    """A fake serialized engine (this fake's format and version) for `onnx_path`, declaring `plugins`."""
    layers = [{"Name": p, "LayerType": "PluginV2", "Inputs": [], "Outputs": []} for p in plugins]
    header = {"version": trt.__version__, "layers": layers, "verbosity": "LAYER_NAMES_ONLY", "device": "GPU",
              "flags": [], "plugins": list(plugins), "dla_core": -1, "profiles": []}
    h = json.dumps(header).encode()
    with open(onnx_path, "rb") as f:
        body = f.read()
    with open(out, "wb") as f:
        f.write(MAGIC + struct.pack("<I", len(h)) + h + body)
    return out
