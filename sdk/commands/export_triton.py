"""`python -m sdk export-triton`: an SDK model -> a Triton model repository.

    python -m sdk export-triton --model runs/yolov7-tiny.onnx --repo runs/triton --max-batch 8 --instances 2
    python -m sdk export-triton --model m.onnx --repo runs/triton --backend python     # CPU-only servers
    python -m sdk export-triton --model m.engine --repo runs/triton --backend tensorrt  # engine built on the server
"""
from ..triton.config import BACKENDS, describe
from ..triton.repository import DEFAULT_QUEUE_DELAY_US, export_repository
from .common import print_json_last


def add_arguments(p):
    p.add_argument("--model", required=True, help="ONNX model (onnxruntime, python) or TensorRT engine (tensorrt)")
    p.add_argument("--repo", required=True, help="model repository folder (created; the model goes to REPO/NAME)")
    p.add_argument("--backend", choices=BACKENDS, default="onnxruntime",
                   help="Triton backend: onnxruntime (default), tensorrt (an engine built for the server's GPU), "
                        "python (model.py running the ONNX with onnxruntime on the CPU)")
    p.add_argument("--name", default=None, help="model name on the server (default: the model file's stem)")
    p.add_argument("--max-batch", type=int, default=None,
                   help="max_batch_size (default 8 for a dynamic-batch model, the engine profile's maximum for "
                        "engines; 0 disables batching)")
    p.add_argument("--instances", type=int, default=1, help="model instances (instance_group count)")
    p.add_argument("--kind", choices=("auto", "cpu", "gpu"), default="auto",
                   help="instance kind (auto: GPU for onnxruntime/tensorrt, CPU for python)")
    p.add_argument("--queue-delay-us", type=int, default=DEFAULT_QUEUE_DELAY_US,
                   help="dynamic batching: how long the server waits to fill a batch (microseconds)")
    p.add_argument("--threads", type=int, default=None, help="onnxruntime intra-op threads per instance")
    p.add_argument("--no-spinning", action="store_true",
                   help="python backend: onnxruntime's idle threads yield instead of spinning (CPU hosts shared "
                        "with other work)")


def run(args):
    out = export_repository(args.model, args.repo, backend=args.backend, name=args.name, max_batch=args.max_batch,
                            instances=args.instances, kind=args.kind, queue_delay_us=args.queue_delay_us,
                            threads=args.threads, spinning=not args.no_spinning)
    c = out.config
    print(f"wrote {out.path}: backend {c.backend}, max_batch_size {c.max_batch_size}, {c.instances} x {c.kind}"
          f"{', dynamic batching' if c.queue_delay_us is not None else ''}")
    for note in out.notes:
        print(f"note: {note}")
    print(f"serve: tritonserver --model-repository {out.path.parent}   then use --model "
          f"triton://HOST:8001/{c.name}")
    print_json_last({"repository": str(out.path.parent), "model_dir": str(out.path), "config": describe(c)})
    return 0
