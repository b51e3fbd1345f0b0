"""`python -m sdk triton-server setup|serve`: the local tritonserver from nvidia-pytriton in its own environment
(`sdk.triton.server`): create that environment, or serve a model repository on loopback until interrupted."""
import sys


def add_arguments(p):
    sub = p.add_subparsers(dest="action", required=True)
    s = sub.add_parser("setup", help="create the server environment (numpy < 2) and print where it is")
    s.add_argument("--env", default=None, help="virtual environment (default ~/.cache/edge-sdk/triton-venv or "
                                               "$EDGE_SDK_TRITON_ENV)")
    v = sub.add_parser("serve", help="serve a model repository on loopback until interrupted")
    v.add_argument("--repo", required=True)
    v.add_argument("--env", default=None)
    from .args import integer

    v.add_argument("--http-port", type=integer(1, 65535), default=8000)
    v.add_argument("--grpc-port", type=integer(1, 65535), default=8001)


def run(args):
    from ..triton.server import LOOPBACK, TritonServer, ensure_server_env

    install = ensure_server_env(args.env, quiet=False)
    if args.action == "setup":
        print(f"tritonserver: {install.binary}\nbackends: {install.backends}\nlibs (LD_LIBRARY_PATH): "
              f"{install.libs}\nenvironment: {install.env} (Python {install.python_version})")
        return 0
    server = TritonServer(args.repo, install, args.http_port, args.grpc_port).start()
    print(f"serving {args.repo}: HTTP {LOOPBACK}:{server.http_port}, gRPC {LOOPBACK}:{server.grpc_port} "
          f"(log {server.log_path}); Ctrl-C stops", file=sys.stderr)
    try:
        server.proc.wait()
    finally:
        server.stop()
    return 0
