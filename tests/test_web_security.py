"""Issue 13, security 2-5, each built from its attack with real sockets on loopback.

2. connection cap, slow headers (slowloris), descriptor reserve (the 64-descriptor flood runs in
   test_web_security_fds.py, in a subprocess);
3. bind spellings that listen everywhere (`0`, `0x0`, `0000`, `[::0]`, ...) are reported and guarded as such;
4. the shipped systemd unit: loopback by default, the token from a file, LimitNOFILE;
5. the Host check against DNS rebinding when no token is set.
"""
import ipaddress
import re
import shlex
import socket
import time

import pytest

from sdk.errors import SDKError
from sdk.video.http_sink import HttpSink
from sdk.web.bind import EVERYWHERE, LOOPBACK, resolve_bind
from sdk.web.limits import descriptor_limit

from .conftest import REPO, assert_one_line_error, run_cli


def ipv6_loopback():
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


needs_ipv6 = pytest.mark.skipif(not ipv6_loopback(), reason="this machine has no IPv6 loopback")


def request(port, path="/stats", host="127.0.0.1", extra=b"", timeout=5, address="127.0.0.1"):
    """Raw HTTP/1.1 GET with a chosen Host header (None: none); returns (status, body)."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family) as sock:
        sock.settimeout(timeout)
        sock.connect((address, port))
        head = f"GET {path} HTTP/1.1\r\n".encode()
        if host is not None:
            head += f"Host: {host}\r\n".encode()
        sock.sendall(head + extra + b"Connection: close\r\n\r\n")
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = re.search(rb"Content-Length: (\d+)", head)
        while length and len(body) < int(length.group(1)):  # a stream has none: its head is enough
            chunk = sock.recv(65536)
            if not chunk:
                break
            body += chunk
    return int(head.split()[1]), body


def read_until_closed(sock, limit_s):
    """Bytes the server sends until it closes the connection; fails if it is still open after `limit_s`."""
    sock.settimeout(limit_s)
    data = b""
    while True:
        chunk = sock.recv(4096)
        if not chunk:
            return data
        data += chunk


@pytest.fixture
def sinks():
    made = []

    def make(uri="http://127.0.0.1:0", **kw):
        sink = HttpSink(uri, **kw)
        made.append(sink)
        sink.open({"model": "m", "backend": "onnxruntime", "names": ["person"]})
        return sink

    yield make
    for sink in made:
        sink.close()


# ---- 2. connections: cap, header deadline, descriptor reserve -----------------------------------------------

def hold_idle(sink, n):
    """`n` connections that never send a byte, once the server counts them all."""
    idle = [socket.create_connection(("127.0.0.1", sink.port)) for _ in range(n)]
    deadline = time.monotonic() + 5
    while sink.server.connections < n and time.monotonic() < deadline:
        time.sleep(0.02)
    assert sink.server.connections == n
    return idle


def test_connection_cap_answers_503_at_once_and_frees_slots(sinks):
    sink = sinks(max_connections=4, max_per_client=4, header_timeout_s=30)
    idle = hold_idle(sink, 4)
    try:
        started = time.monotonic()
        status, body = request(sink.port)
        assert status == 503 and b"too many connections" in body
        assert time.monotonic() - started < 2  # refused in the accept loop, not after a timeout
        assert sink.server.connections == 4  # the refused client held no slot
    finally:
        for s in idle:
            s.close()
    deadline = time.monotonic() + 5
    while sink.server.connections and time.monotonic() < deadline:
        time.sleep(0.02)
    assert request(sink.port)[0] == 200  # the slots came back


def test_one_address_cannot_take_every_slot(sinks):
    """A flood from one client address hits its own cap (503 at once) while a client from another address
    (127.0.0.2: the whole 127/8 is loopback on Linux) still gets in under the global cap."""
    sink = sinks(max_connections=6, max_per_client=3, header_timeout_s=30)
    idle = hold_idle(sink, 3)
    try:
        status, body = request(sink.port)
        assert status == 503 and b"too many connections from this address" in body
        assert sink.server.refused["per_client"] == 1 and sink.server.refused["connections"] == 0
        with socket.socket() as other:  # another client address
            other.settimeout(5)
            other.bind(("127.0.0.2", 0))
            other.connect(("127.0.0.1", sink.port))
            other.sendall(b"GET /stats HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            assert re.match(rb"HTTP/1\.[01] 200 ", other.recv(64))
    finally:
        for s in idle:
            s.close()
    with pytest.raises(SDKError, match="max_per_client: got 0"):
        sinks(max_per_client=0)
    # the default leaves 32 slots to other addresses (the 200-viewer load test from one machine still fits)
    assert sinks().server.limits.per_client() == 256 - 32 and sinks(max_connections=40).server.limits.per_client() == 20


def test_slow_headers_are_cut_off_at_the_header_deadline(sinks):
    sink = sinks(header_timeout_s=0.6)
    slow = socket.create_connection(("127.0.0.1", sink.port))
    slow.sendall(b"GET /stats HTTP/1.1\r\n")
    started = time.monotonic()
    closed = False
    try:
        for _ in range(60):  # slowloris: one header byte every 0.1 s, far inside the 10 s socket timeout
            try:
                slow.sendall(b"X")
            except OSError:
                closed = True
                break
            time.sleep(0.1)
            slow.setblocking(False)
            try:
                closed = slow.recv(4096) == b""
            except BlockingIOError:
                pass
            except OSError:
                closed = True
            slow.setblocking(True)
            if closed:
                break
        elapsed = time.monotonic() - started
    finally:
        slow.close()
    assert closed, "a client trickling its headers kept its connection for 6 s"
    assert 0.5 <= elapsed < 2.5, elapsed
    assert sink.server.refused["header_timeout"] == 1
    assert request(sink.port)[0] == 200  # a client that sends its request at once is unaffected


def test_idle_connection_without_a_request_is_dropped_at_the_deadline(sinks):
    sink = sinks(header_timeout_s=0.5)
    with socket.create_connection(("127.0.0.1", sink.port)) as idle:
        started = time.monotonic()
        assert read_until_closed(idle, limit_s=5) == b""
        assert 0.4 <= time.monotonic() - started < 2.5


def test_descriptor_reserve_refuses_clients_before_the_limit():
    limit = descriptor_limit()
    if limit is None:
        pytest.skip("no RLIMIT_NOFILE here")
    sink = HttpSink("http://127.0.0.1:0", fd_reserve=limit)  # nothing left for clients
    sink.open({})
    try:
        status, body = request(sink.port)
        assert status == 503 and b"out of descriptors" in body
        assert sink.server.refused["descriptors"] == 1 and sink.server.connections == 0
    finally:
        sink.close()


# ---- 3. bind spellings ---------------------------------------------------------------------------------------

EVERYWHERE_SPELLINGS = ["0", "0x0", "0000", "0.0", "0.0.0.0", "@", "*", "000.000.000.000"]
EVERYWHERE_V6 = ["[::0]", "[0:0:0:0:0:0:0:0]", "[::]", "[0000::0000]"]
LOOPBACK_SPELLINGS = ["", "127.0.0.1", "127.1", "0x7f000001", "2130706433", "localhost", "127.0.0.2"]


@pytest.mark.parametrize("host", EVERYWHERE_SPELLINGS + [pytest.param(h, marks=needs_ipv6) for h in EVERYWHERE_V6])
def test_every_spelling_of_all_interfaces_is_reported_and_guarded(host, sinks, capsys):
    bind = resolve_bind(f"http://{host}:0")
    assert bind.scope == EVERYWHERE and ipaddress.ip_address(bind.address).is_unspecified
    sink = sinks(f"http://{host}:0")
    listening = sink.server.address[0]
    assert ipaddress.ip_address(listening).is_unspecified, listening  # what the socket really does
    err = capsys.readouterr().err
    assert "all interfaces" in err and "this machine only" not in err
    assert "warning: http: no token" in err
    # and the Host check applies to the resolved scope: a rebinding name is refused, an IP literal served
    address = "::1" if ":" in listening else "127.0.0.1"
    assert request(sink.port, host="rebind.attacker.example", address=address)[0] == 403
    assert request(sink.port, host=f"192.0.2.7:{sink.port}", address=address)[0] == 200


@pytest.mark.parametrize("host", LOOPBACK_SPELLINGS + [pytest.param("[::1]", marks=needs_ipv6)])
def test_loopback_spellings_stay_on_loopback(host, sinks, capsys):
    sink = sinks(f"http://{host}:0")
    assert ipaddress.ip_address(sink.server.address[0]).is_loopback
    err = capsys.readouterr().err
    assert "this machine only" in err and "warning" not in err


def test_require_token_refuses_any_spelling_of_all_interfaces(tmp_path):
    for host in ("@", "0", "0x0", "0000"):
        with pytest.raises(SDKError, match="reachable from other machines") as e:
            HttpSink(f"http://{host}:0", require_token=True)
        assert "\n" not in str(e.value)
    token = tmp_path / "token"
    token.write_text("s3cret\n")
    token.chmod(0o600)
    HttpSink("http://0x0:0", require_token=True, token_file=str(token)).close()  # with a token it starts
    HttpSink("http://127.1:0", require_token=True).close()  # loopback needs none


@pytest.mark.parametrize("uri, needle", [("http://::1:8080", "without brackets"),
                                         ("http://[::1:8080", "expected [ADDRESS] or [ADDRESS]:PORT"),
                                         ("http://[::1]8080", "expected [ADDRESS] or [ADDRESS]:PORT")])
def test_malformed_ipv6_binds_are_one_line_errors(uri, needle):
    with pytest.raises(SDKError, match=re.escape(needle)) as e:
        HttpSink(uri)
    assert "\n" not in str(e.value)


# ---- 5. Host check (DNS rebinding) ----------------------------------------------------------------------------

ROUTES = ["/", "/stream.mjpg", "/snapshot.jpg", "/stats", "/detections", "/nope"]


def test_rebinding_host_is_refused_on_every_route_without_a_token(sinks):
    sink = sinks()
    port = sink.port
    for route in ROUTES:  # what a browser sends once rebind.attacker.example resolves to 127.0.0.1
        status, body = request(port, route, host=f"rebind.attacker.example:{port}")
        assert status == 403, route
        assert len(body) < 300 and b"not this server's address" in body
    for host in (f"127.0.0.1:{port}", "127.0.0.1", f"localhost:{port}", "LocalHost.", "127.0.0.5"):
        assert request(port, host=host)[0] == 200, host
    if ipv6_loopback():
        assert request(port, host=f"[::1]:{port}")[0] == 200
    for host in ("127.0.0.1.nip.io", "localhost.attacker.example", "evil.example@127.0.0.1", "192.0.2.1",
                 "[::ffff:192.0.2.1]", ""):
        assert request(port, host=host)[0] == 403, host
    assert request(port, host=None)[0] == 200  # HTTP/1.0 tools may omit it; browsers never do
    assert request(port, extra=b"Host: rebind.attacker.example\r\n")[0] == 400  # two Host headers


def test_allowed_hosts_extend_the_check(sinks):
    sink = sinks(allowed_hosts=["cam.example", ".lan.example"])
    for host in ("cam.example", "CAM.EXAMPLE:8080", "lan.example", "door.lan.example", "localhost"):
        assert request(sink.port, host=host)[0] == 200, host
    for host in ("cam.example.attacker.example", "evil-lan.example", "example"):
        assert request(sink.port, host=host)[0] == 403, host
    anything = sinks(allowed_hosts=["*"])
    assert request(anything.port, host="rebind.attacker.example")[0] == 200


def test_all_interfaces_accepts_ip_literals_and_this_machines_name_only(sinks):
    sink = sinks("http://@:0")
    name = socket.gethostname()
    for host in (f"192.0.2.7:{sink.port}", "127.0.0.1", name, f"{name.split('.')[0]}.local", "localhost"):
        assert request(sink.port, host=host)[0] == 200, host
    assert request(sink.port, host="rebind.attacker.example")[0] == 403


def test_with_a_token_the_token_guards_and_the_host_may_be_any(sinks, tmp_path):
    token = tmp_path / "token"
    token.write_text("s3cret\n")
    token.chmod(0o600)
    sink = sinks(token_file=str(token))
    assert sink.token == "s3cret"
    assert request(sink.port, host="proxy.example")[0] == 401
    assert request(sink.port, "/stats?token=s3cret", host="proxy.example")[0] == 200
    assert request(sink.port, host="proxy.example", extra=b"Authorization: Bearer s3cret\r\n")[0] == 200
    assert request(sink.port, "/stats?token=s3cre", host="127.0.0.1")[0] == 401


# ---- token file ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("content, needle", [(b"", "empty file"), (b"  \n", "empty file"),
                                             (b"two words\n", "spaces"), (b"\xff\xfe", "not UTF-8"),
                                             (b"a" * 5000, "more than 4096 bytes")])
def test_bad_token_files_are_one_line_errors(tmp_path, content, needle):
    path = tmp_path / "token"
    path.write_bytes(content)
    with pytest.raises(SDKError, match=re.escape(needle)) as e:
        HttpSink("http://127.0.0.1:0", token_file=str(path))
    assert "\n" not in str(e.value) and str(path) in str(e.value)


def test_token_file_cli_errors_and_world_readable_note(tmp_path, onnx_model, person_video):
    args = ["camera", "--model", onnx_model, "--source", person_video, "--headless", "--max-frames", "1",
            "--output", "http://127.0.0.1:0"]
    proc = run_cli(*args, "--http-token-file", tmp_path / "missing", timeout=120)
    assert_one_line_error(proc, "--http-token-file", "cannot read it")
    token = tmp_path / "token"
    token.write_text("s3cret\n")
    proc = run_cli(*args, "--http-token-file", token, "--http-token", "x", timeout=120)
    assert_one_line_error(proc, "--http-token-file", "expected one of them")
    token.chmod(0o644)
    proc = run_cli(*args, "--http-token-file", token, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "(token required)" in proc.stderr and "readable by every user" in proc.stderr
    proc = run_cli(*args[:-1], "http://0x0:0", "--http-require-token", timeout=120)
    assert_one_line_error(proc, "http://0x0:0", "reachable from other machines")


# ---- 4. the shipped systemd unit -----------------------------------------------------------------------------

UNIT = REPO / "deploy" / "systemd" / "edge-camera.service"
ENV = REPO / "deploy" / "systemd" / "edge-camera.env"


def unit_settings(path):
    """key -> value of a unit or EnvironmentFile (continuation lines joined, comments dropped)."""
    text = re.sub(r"\\\n\s*", " ", path.read_text())
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line and not line.lstrip().startswith("#"))


def exec_argv(exec_start, env):
    """systemd's ExecStart expansion: ${VAR} is one word, a lone $VAR is split at whitespace (none when empty)."""
    argv = []
    for word in shlex.split(exec_start):
        m = re.fullmatch(r"\$(\w+)", word)
        if m:
            argv += env.get(m.group(1), "").split()
        else:
            argv.append(re.sub(r"\$\{(\w+)\}", lambda v: env.get(v.group(1), ""), word))
    return argv


def camera_args(argv):
    """Parse argv[2:] (after python3 samples/camera_detect.py) with the sample's own parser."""
    import argparse  # noqa: PLC0415

    from sdk.commands import camera  # noqa: PLC0415

    assert argv[:2] == ["/usr/bin/python3", "samples/camera_detect.py"], argv[:2]
    parser = argparse.ArgumentParser()
    camera.add_arguments(parser)
    return parser.parse_args(argv[2:])


def test_systemd_unit_defaults_to_loopback_and_reads_the_token_from_a_file(tmp_path):
    unit, env = unit_settings(UNIT), unit_settings(ENV)
    assert int(unit["LimitNOFILE"]) >= 4096
    args = camera_args(exec_argv(unit["ExecStart"], env))
    assert args.http_token is None and args.http_token_file is None and args.http_require_token
    assert args.headless and args.backend == "trt" and "csi://0" in str(args.source)
    (output,) = args.output
    assert resolve_bind(output).scope == LOOPBACK  # as shipped: this machine only, no token needed

    # the documented way to open it to the network: the commented OUTPUT/HTTP_ARGS lines of the env file
    documented = dict(line.lstrip("#").split("=", 1) for line in ENV.read_text().splitlines()
                      if re.match(r"#(OUTPUT|HTTP_ARGS)=", line))
    args = camera_args(exec_argv(unit["ExecStart"], {**env, **documented}))
    assert resolve_bind(args.output[0]).scope == EVERYWHERE
    assert args.http_token is None and args.http_token_file == "/etc/edge-camera/http-token"
    assert "--http-token " not in ENV.read_text() and "--http-token=" not in ENV.read_text()

    # forgetting the token with an all-interfaces OUTPUT fails at start instead of serving everyone
    args = camera_args(exec_argv(unit["ExecStart"], {**env, "OUTPUT": "http://@:0"}))
    with pytest.raises(SDKError, match="reachable from other machines"):
        HttpSink(args.output[0], require_token=args.http_require_token)
    token = tmp_path / "http-token"
    token.write_text("0123456789abcdef\n")
    token.chmod(0o400)
    HttpSink(args.output[0], require_token=True, token_file=str(token)).close()
