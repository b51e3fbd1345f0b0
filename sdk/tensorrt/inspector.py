"""Which precision each layer got in a built engine, read from TensorRT's engine inspector (TRT >= 8.2).

With ProfilingVerbosity.DETAILED, `IEngineInspector.get_engine_information(LayerInformationFormat.JSON)` lists
the engine's layers with their input/output formats ("Row major linear FP32", "Channel major FP16 format ...",
"Int8 NC/32 ..."). Engine layers are fusions of network layers ("/model.0/conv/Conv + /model.0/act/LeakyRelu"),
so a network layer's precision is that of the engine layer whose name contains it; the kernel precision is
read from the engine layer's first input (an INT8 conv may write FP32 for the next layer).
"""
import json
import re

_FORMAT_PRECISIONS = (("int8", "int8"), ("fp16", "fp16"), ("half", "fp16"), ("fp32", "fp32"), ("float", "fp32"),
                      ("int32", "int32"))


def format_precision(text):
    t = str(text).lower()
    for needle, precision in _FORMAT_PRECISIONS:
        if needle in t:
            return precision
    return None


def engine_layers(info_json):
    """[(engine layer name, precision or None)] from the inspector's JSON (a string or parsed dict)."""
    info = json.loads(info_json) if isinstance(info_json, (str, bytes)) else info_json
    out = []
    for layer in info.get("Layers", []):
        if isinstance(layer, str):  # without DETAILED verbosity TensorRT lists names only
            out.append((layer, None))
            continue
        precision = None
        if layer.get("Precision"):
            precision = format_precision(layer["Precision"])
        for key in ("Inputs", "Outputs"):
            if precision is None:
                for t in layer.get(key) or []:
                    precision = format_precision(t.get("Format/Datatype", ""))
                    if precision:
                        break
        out.append((layer.get("Name", ""), precision))
    return out


def _tokens(engine_name):
    """Network layer names inside an engine layer name ('a + b', 'PWN(a, b)', 'Reformatting CopyNode ...')."""
    return {t.strip() for t in re.split(r"\s\+\s|PWN\(|\)|,\s|\[|\]", engine_name) if t.strip()}


def layer_precisions(info_json, network_names):
    """{network layer name: precision in the engine, or None when the layer is not found (fused away)}."""
    wanted = set(network_names)
    got = {name: None for name in wanted}
    for engine_name, precision in engine_layers(info_json):
        if engine_name.startswith("Reformatting CopyNode"):  # format conversions name the layer they feed
            continue
        for token in _tokens(engine_name) & wanted:
            if got[token] is None:
                got[token] = precision
    return got


def precision_report(requested, actual):
    """Rows per overridden layer: requested, got, applied? ('fused' layers count as not proven)."""
    rows = []
    for name, want in sorted(requested.items()):
        have = actual.get(name)
        rows.append({"layer": name, "requested": want, "engine": have or "not found", "applied": have == want})
    return rows


def precision_counts(actual):
    counts = {}
    for precision in actual.values():
        counts[precision or "not found"] = counts.get(precision or "not found", 0) + 1
    return counts


def read_engine_information(trt, engine):
    inspector = engine.create_engine_inspector()
    return inspector.get_engine_information(trt.LayerInformationFormat.JSON)
