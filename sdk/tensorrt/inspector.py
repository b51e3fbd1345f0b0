"""Which precision each layer got in a built engine, read from TensorRT's engine inspector (TRT >= 8.2).

With ProfilingVerbosity.DETAILED, `IEngineInspector.get_engine_information(LayerInformationFormat.JSON)` lists
the engine's layers with their input/output formats ("Row major linear FP32", "Channel major FP16 format ...",
"Int8 NC/32 ..."). Engine layers are fusions of network layers ("/model.0/conv/Conv + /model.0/act/LeakyRelu"),
so a network layer's precision is that of the engine layer whose name contains it; the kernel precision is
read from the engine layer's first input (an INT8 conv may write FP32 for the next layer).

Fused regions do not list their members by name: TensorRT 8.x names a Myelin (or DLA) region
`{ForeignNode[<first layer>...<last layer>]}`, so its members are the network layers between first and last in
the network's topological order; TensorRT 10 lists Myelin's generated kernels as `__myl_*` layers and, like every
layer on 10, gives their ONNX nodes in "Metadata" (`[ONNX Layer: a]\x1f[ONNX Layer: b]`, onnx-tensorrt's
processMetadata). Layers inside a region take the region's precision and are reported with the region's name.
"""
import json
import re

_FOREIGN_RE = re.compile(r"^\{ForeignNode\[(.+?)\.\.\.(.+)\]\}$")
_METADATA_RE = re.compile(r"\[ONNX Layer: ([^\]|]+?)\s*(?:\|[^\]]*)?\]")

_FORMAT_PRECISIONS = (("int8", "int8"), ("fp16", "fp16"), ("half", "fp16"), ("fp32", "fp32"), ("float", "fp32"),
                      ("int32", "int32"))


def format_precision(text):
    t = str(text).lower()
    for needle, precision in _FORMAT_PRECISIONS:
        if needle in t:
            return precision
    return None


def _layer_entries(info_json):
    info = json.loads(info_json) if isinstance(info_json, (str, bytes)) else info_json
    return [{"Name": layer} if isinstance(layer, str) else layer for layer in info.get("Layers", [])]


def engine_layers(info_json):
    """[(engine layer name, precision or None)] from the inspector's JSON (a string or parsed dict)."""
    out = []
    for layer in _layer_entries(info_json):
        if set(layer) == {"Name"}:  # without DETAILED verbosity TensorRT lists names only
            out.append((layer["Name"], None))
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


def is_region(engine_name, layer_type=""):
    return bool(_FOREIGN_RE.match(engine_name)) or engine_name.startswith("__myl_") or layer_type == "Myelin"


def _members(layer, network_names, position):
    """Network layer names an engine layer covers (see the module docstring)."""
    name = layer.get("Name", "")
    if layer.get("Metadata"):
        return [m.strip() for m in _METADATA_RE.findall(layer["Metadata"])]
    m = _FOREIGN_RE.match(name)
    if m and m.group(1) in position and m.group(2) in position:
        lo, hi = position[m.group(1)], position[m.group(2)]
        return list(network_names[lo:hi + 1])
    return list(_tokens(name))


def _resolve(info_json, network_names):
    """{network layer: (precision, region name or None)} for the layers found in the engine."""
    position = {n: i for i, n in enumerate(network_names)}
    precisions = dict(engine_layers(info_json))
    got = {}
    for layer in _layer_entries(info_json):
        name = layer.get("Name", "")
        if name.startswith("Reformatting CopyNode"):  # format conversions name the layer they feed
            continue
        region = name if is_region(name, layer.get("LayerType", "")) else None
        for member in _members(layer, network_names, position):
            if member in position and member not in got:
                got[member] = (precisions.get(name), region)
    return got


def layer_precisions(info_json, network_names):
    """{network layer name: precision in the engine, or None when the layer is not found (fused away)}.

    `network_names` is every network layer in topological order (ForeignNode regions are resolved by it)."""
    got = _resolve(info_json, network_names)
    return {name: got[name][0] if name in got else None for name in network_names}


def layer_regions(info_json, network_names):
    """{network layer name: the fused region (ForeignNode / __myl_ layer) it ran in} for layers inside one."""
    return {name: region for name, (_, region) in _resolve(info_json, network_names).items() if region}


def precision_report(requested, actual, regions=None):
    """Rows per overridden layer: requested, got, applied?, and the fused region it ran in (layers not found in
    the engine count as not proven)."""
    rows = []
    for name, want in sorted(requested.items()):
        have = actual.get(name)
        row = {"layer": name, "requested": want, "engine": have or "not found", "applied": have == want}
        if (regions or {}).get(name):
            row["region"] = regions[name]
        rows.append(row)
    return rows


def precision_counts(actual):
    counts = {}
    for precision in actual.values():
        counts[precision or "not found"] = counts.get(precision or "not found", 0) + 1
    return counts


def read_engine_information(trt, engine):
    inspector = engine.create_engine_inspector()
    return inspector.get_engine_information(trt.LayerInformationFormat.JSON)
