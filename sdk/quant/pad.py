"""Pad convolution channel counts to what onnxruntime's fast INT8 conv kernels accept: exact, no retraining.

onnxruntime runs a u8s8 QLinearConv on MLAS's symmetric "indirect" conv kernel only when the weights are symmetric
and the group-1 conv has input channels % 4 == 0, output channels % A == 0 and at least 16 output channels (A = 4
with AVX-512 VNNI / AVX-512BW, 8 with AVX-VNNI / AVX2: MlasConvSymPackWSize and the MLAS_CONV_SYM_DISPATCH tables
in onnxruntime/core/mlas/lib/convsym.cpp). Every other conv falls back to im2col + the generic QGEMM with a
per-call requantize pass. Measured here (scripts/bench_int8.py --profile): the first conv (3 input channels) took 10-25 %
of the INT8 time for 1-2 % of the FLOPs, the three 18-channel detection convs another 10 %, and a pruned model
with odd channel counts (22, 45, 179, ...) ran INT8 no faster than FP32.

The rewrite, on the float graph before quantization:
* a conv whose output channel count misses the kernel's rule gets zero filters (zero weights, zero bias) up to the
  next valid count; its padded outputs are exactly 0 and stay 0 through LeakyRelu/Relu;
* each consumer that works per channel (LeakyRelu, Relu, MaxPool, scale-only Resize, channel Concat) passes the
  channel layout on; a consuming Conv gets zero weight columns at the padded positions, so the result is exact;
* any other consumer (the float decode's Reshape, a graph output) gets the original channels back by a Slice /
  Gather, so the model's outputs are unchanged;
* a graph input with 3 channels feeding convs only (an RGB image) is padded to 4 by a Pad node (one copy of the
  input, far cheaper than the generic kernel on the first, largest feature map).
"""
from dataclasses import dataclass

import numpy as np

PER_CHANNEL_OPS = ("LeakyRelu", "Relu", "MaxPool", "Sigmoid", "Clip")


@dataclass(frozen=True)
class ChannelRule:
    """Channel counts the target's fast INT8 conv kernel accepts (group-1 convs)."""
    input_multiple: int = 4
    output_multiple: int = 4
    min_output: int = 16

    def out_channels(self, c):
        c = max(c, self.min_output)
        return -(-c // self.output_multiple) * self.output_multiple

    def in_channels(self, c):
        return -(-c // self.input_multiple) * self.input_multiple

    def to_dict(self):
        return {"input_multiple": self.input_multiple, "output_multiple": self.output_multiple,
                "min_output": self.min_output}


def _resize_keeps_channels(node, constants):
    """A Resize by constant scales that leave batch and channels alone ('sizes' would name the channel count)."""
    ins = list(node.input)
    if node.op_type != "Resize" or len(ins) < 3 or (len(ins) > 3 and ins[3]):
        return False
    scales = constants.get(ins[2])
    return scales is not None and scales.size == 4 and scales[0] == 1 and scales[1] == 1


def pad_conv_channels(model, rule, skip=()):
    """Rewrite `model` (an onnx ModelProto, changed in place) so every group-1 Conv with constant weights meets
    `rule`, exactly. Convs named in `skip` are left as they are. Returns a report: {"convs": {conv name: (old out,
    new out)}, "inputs": {input: (old, new)}, "restored": [tensors given back their channels], "new_tensors":
    {new tensor: the original tensor whose value range it has}} (a padded copy holds the same values plus zeros, a
    restored one the same values): every tensor the rewrite adds, so each int8 node reading one finds a range."""
    import onnx
    from onnx import helper, numpy_helper

    from .flops import node_attr, tensor_shapes

    graph = model.graph
    init = {i.name: i for i in graph.initializer}
    shapes = tensor_shapes(model)
    consumers = {}
    for node in graph.node:
        for t in node.input:
            consumers.setdefault(t, []).append(node)
    graph_inputs = {i.name for i in graph.input if i.name not in init}
    constants = {n.output[0]: numpy_helper.to_array(n.attribute[0].t) for n in graph.node
                 if n.op_type == "Constant" and n.attribute and n.attribute[0].name == "value"}
    constants.update({name: numpy_helper.to_array(i) for name, i in init.items()})
    graph_outputs = {o.name for o in graph.output}
    layout = {}  # tensor -> int array over its padded channels: original channel index, or -1 for a zero pad
    report = {"convs": {}, "inputs": {}, "restored": [], "new_tensors": {}}
    before = {}  # node index -> nodes to insert before it (None: at the end of the graph)
    restored = {}

    def channels(t):
        s = shapes.get(t)
        return s[1] if s and len(s) == 4 else None

    def set_init(name, array):
        init[name].CopyFrom(numpy_helper.from_array(array.astype(numpy_helper.to_array(init[name]).dtype), name))

    def restore(t, at):
        """The original channels of padded tensor `t`, as a new tensor computed just before node number `at`
        (None: at the end of the graph)."""
        if t in restored:
            return restored[t]
        lay = layout[t]
        where = np.array([int(np.where(lay == c)[0][0]) for c in range(int((lay >= 0).sum()))], np.int64)
        out = f"{t}_unpadded"
        if np.array_equal(where, np.arange(len(where))):  # pads at the end only: a Slice
            consts = {f"{out}_starts": [0], f"{out}_ends": [len(where)], f"{out}_axes": [1]}
            new = helper.make_node("Slice", [t, *consts], [out], name=out)
        else:
            consts = {f"{out}_indices": where}
            new = helper.make_node("Gather", [t, f"{out}_indices"], [out], name=out, axis=1)
        for k, v in consts.items():
            graph.initializer.append(numpy_helper.from_array(np.asarray(v, np.int64), k))
        before.setdefault(at, []).append(new)
        restored[t] = out
        report["restored"].append(t)
        report["new_tensors"][out] = report["new_tensors"].get(t, t)  # the original channels: t's values
        return out

    order = list(graph.node)
    for at, node in enumerate(order):
        ins = list(node.input)
        if node.op_type == "Conv" and len(ins) > 1 and ins[1] in init and node_attr(node, "group", 1) == 1 \
                and node.name not in skip:
            w = numpy_helper.to_array(init[ins[1]])
            x = ins[0]
            if x in layout:  # the input was padded upstream: weight columns follow its layout, zeros at the pads
                lay = layout[x]
                cols = np.zeros((w.shape[0], len(lay), *w.shape[2:]), w.dtype)
                cols[:, lay >= 0] = w[:, lay[lay >= 0]]
                w = cols
            elif x in graph_inputs and w.shape[1] % rule.input_multiple \
                    and all(c.op_type == "Conv" for c in consumers[x]):
                c_in = w.shape[1]
                c_pad = rule.in_channels(c_in)
                padded = f"{x}_padded"
                if padded not in report["new_tensors"]:
                    pads = f"{padded}_pads"
                    graph.initializer.append(numpy_helper.from_array(
                        np.array([0, 0, 0, 0, 0, c_pad - c_in, 0, 0], np.int64), pads))
                    before.setdefault(at, []).append(
                        helper.make_node("Pad", [x, pads], [padded], name=padded, mode="constant"))
                    report["new_tensors"][padded] = x
                    report["inputs"][x] = (c_in, c_pad)
                    layout[padded] = np.r_[np.arange(c_in), -np.ones(c_pad - c_in, int)]
                node.input[0] = padded
                w = np.concatenate([w, np.zeros((w.shape[0], c_pad - c_in, *w.shape[2:]), w.dtype)], 1)
            c_out = w.shape[0]
            c_new = rule.out_channels(c_out)
            if c_new != c_out:
                w = np.concatenate([w, np.zeros((c_new - c_out, *w.shape[1:]), w.dtype)], 0)
                if len(ins) > 2 and ins[2] in init:
                    b = numpy_helper.to_array(init[ins[2]])
                    set_init(ins[2], np.r_[b, np.zeros(c_new - c_out, b.dtype)])
                layout[node.output[0]] = np.r_[np.arange(c_out), -np.ones(c_new - c_out, int)]
                report["convs"][node.name] = (c_out, c_new)
            if w.shape != tuple(init[ins[1]].dims):
                set_init(ins[1], w)
            continue
        mapped = [t for t in ins if t in layout]
        if not mapped:
            continue
        if node.op_type in PER_CHANNEL_OPS or _resize_keeps_channels(node, constants):
            if mapped == [ins[0]]:
                layout[node.output[0]] = layout[ins[0]]
                continue
        if node.op_type == "Concat" and node_attr(node, "axis") in (1, -3) and \
                all(t in layout or channels(t) for t in ins):
            parts, offset = [], 0
            for t in ins:
                lay = layout.get(t, np.arange(channels(t) or 0))
                parts.append(np.where(lay >= 0, lay + offset, -1))
                offset += int((lay >= 0).sum())
            layout[node.output[0]] = np.concatenate(parts)
            continue
        for i, t in enumerate(ins):
            if t in layout:
                node.input[i] = restore(t, at)
    # graph outputs keep their channels: the producer writes a padded twin, a Slice/Gather at the end of the graph
    # writes the output under its own name. The restores already queued in `before` read the output too: they
    # follow it to the twin (the output itself only exists at the end of the graph)
    for out in sorted(graph_outputs & set(layout)):
        twin = f"{out}_padded"
        for n in [*graph.node, *(n for queued in before.values() for n in queued)]:
            n.output[:] = [twin if o == out else o for o in n.output]
            n.input[:] = [twin if i == out else i for i in n.input]
        layout[twin] = layout.pop(out)
        report["new_tensors"][twin] = out
        restore(twin, None)
        before[None][-1].output[:] = [out]
        report["new_tensors"].pop(f"{twin}_unpadded")  # renamed back to `out`, which has its own range
    nodes = []
    for at, node in enumerate(order):
        nodes += before.get(at, [])
        nodes.append(node)
    nodes += before.get(None, [])
    del graph.node[:]
    graph.node.extend(nodes)
    # shapes changed: drop stale value_info so onnx / onnxruntime infer them again
    del graph.value_info[:]
    onnx.checker.check_model(model)
    return report
