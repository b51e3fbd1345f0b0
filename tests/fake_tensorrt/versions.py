"""What differs between the TensorRT versions the fake models, split as the real API is split. Each field names
the source that shows the real behaviour; fake_trt.py reads only these fields to decide what a flavour has."""
from dataclasses import dataclass


@dataclass(frozen=True)
class FakeVersion:
    flavour: str
    version: str  # tensorrt.__version__
    # NV_TENSORRT_VERSION (NvInferVersion.h): major*1000+minor*100+patch on 8.x (8502), major*10000+minor*100+patch
    # from 10.0 (100300). It is the number in the calibration cache header "TRT-<n>-EntropyCalibration2".
    nv_version: int
    # ICudaEngine.num_bindings / get_binding_* and IExecutionContext.execute_async_v2: removed in 10.0
    # (TensorRT 10 migration guide, "removed APIs").
    binding_api: bool
    # ICastLayer / LayerType.CAST: new in 8.6 (8.6 release notes; onnx-tensorrt imports ONNX Cast with addCast
    # from 8.6, with an IIdentityLayer before).
    cast_layer: bool
    # IProgressMonitor and IBuilderConfig.progress_monitor: new in 10.0 (NvInfer.h).
    progress_monitor: bool
    # BuilderFlag.STRICT_TYPES: deprecated in 8.2, removed in 10.0 (NvInfer.h BuilderFlag).
    strict_types: bool
    # ILayer.metadata, filled by onnx-tensorrt's processMetadata() as "[ONNX Layer: <node>]" and shown by the
    # engine inspector as "Metadata" (entries separated by \x1f): 10.0 (NvInfer.h ILayer::setMetadata).
    layer_metadata: bool
    # How the engine inspector names Myelin regions: "{ForeignNode[<first>...<last>]}" on 8.x (TensorRT issues
    # #2576, #1781 logs); TensorRT 10 lists Myelin's generated kernels as "__myl_<ops>_..." layers instead.
    myelin_style: str
    # DataType.INT64: 10.0 (8.x's onnx-tensorrt casts INT64 to INT32).
    int64: bool
    # DataType.UINT8 zero points: 8.x's QuantDequantLinearHelper rejects them; 10.x warns "Defaulting to INT8"
    # (onnx-tensorrt onnxOpImporters.cpp, QuantDequantLinearHelper).
    uint8_zero_point_warns: bool


VERSIONS = {
    "8.5": FakeVersion("8.5", "8.5.2.2", 8502, binding_api=True, cast_layer=False, progress_monitor=False,
                       strict_types=True, layer_metadata=False, myelin_style="foreign", int64=False,
                       uint8_zero_point_warns=False),
    "8.6": FakeVersion("8.6", "8.6.2.3", 8602, binding_api=True, cast_layer=True, progress_monitor=False,
                       strict_types=True, layer_metadata=False, myelin_style="foreign", int64=False,
                       uint8_zero_point_warns=False),
    "10.3": FakeVersion("10.3", "10.3.0.26", 100300, binding_api=False, cast_layer=True, progress_monitor=True,
                        strict_types=False, layer_metadata=True, myelin_style="myl", int64=True,
                        uint8_zero_point_warns=True),
}
FLAVOURS = tuple(VERSIONS)
