"""The child process of the self-test's clean-exit checks (issue 16, defect 3: pycuda aborts every process at exit
when the SDK leaves its context pushed).

    python -m deploy.jetson.exit_check --cuda pycuda|cuda-python --engine m.engine --onnx m.onnx --workdir DIR

With the requested CUDA backend only, it walks the paths that used to leave a context behind: a build that fails
after taking CUDA memory (INT8 without calibration data), then a runner that is loaded, runs once and is left
open on purpose (the SDK's atexit guard must pop what is left). It prints one JSON line and exits 0; the parent
(deploy/jetson/selftest.py) checks the exit status and that no "context stack" abort text was printed. Exit 3
means the backend is not installed here (the parent reports a skip).
"""
import argparse
import json
import os
import sys

SKIP = 3
BACKENDS = {"pycuda": "pycuda.driver", "cuda-python": "cuda.bindings.runtime or cuda.cudart"}


def main(argv=None):
    p = argparse.ArgumentParser(prog="deploy/jetson/exit_check", description=__doc__.splitlines()[0])
    p.add_argument("--cuda", choices=tuple(BACKENDS), required=True)
    p.add_argument("--engine", required=True)
    p.add_argument("--onnx", required=True)
    p.add_argument("--workdir", required=True)
    args = p.parse_args(argv)
    os.environ["SDK_CUDA_MEMORY"] = args.cuda  # the runner and the builder take the same backend

    import numpy as np

    from sdk.errors import SDKError
    from sdk.runners.tensorrt import TensorRTRunner
    from sdk.tensorrt import build_engine
    from sdk.tensorrt.memory import cuda_memory

    try:
        memory = cuda_memory(args.cuda)
    except SDKError:
        memory = None
    if memory is None or memory.name != args.cuda:  # cuda_memory falls back to the other backend
        print(f"skip: {args.cuda} is not installed here ({BACKENDS[args.cuda]} does not import)")
        return SKIP
    with memory:
        memory.device_free(memory.device_alloc(1 << 20))
    report = {"cuda": memory.name}
    try:  # the error path: CUDA memory taken for calibration, then the build fails
        build_engine(args.onnx, os.path.join(args.workdir, "exit-check-error.engine"), precision="int8",
                     progress=False)
        report["error_path"] = "no error (expected one: INT8 without calibration data)"
    except SDKError as e:
        report["error_path"] = str(e)[:80]
    runner = TensorRTRunner(args.engine).load()  # left open: the atexit guard must release the context
    spec = runner.inputs[0]
    shape = tuple(1 if d is None else d for d in spec.shape)
    outputs = runner.infer(np.zeros(shape, spec.dtype))
    report["outputs"] = {k: list(v.shape) for k, v in outputs.items()}
    print(json.dumps(report))
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
