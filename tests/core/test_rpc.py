"""Real gRPC servers on 127.0.0.1: health, verifier contract, deadlines, limits, retries, TLS, shutdown."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from safework.core import plugins
from safework.core.errors import ConfigError, RpcError
from safework.core.rpc import (
    ClientTls,
    DeadlinePolicy,
    RunningServer,
    TlsConfig,
    build_server,
    check_deadline,
    check_health,
    connect,
    parse_address,
    service_name,
    wait_ready,
)
from safework.core.rpc.gen.verifier.v1 import verifier_pb2 as pb
from safework.core.rpc.gen.verifier.v1 import verifier_pb2_grpc as pb_grpc

SERVICE = "safework.verifier.v1.VerifierService"
NO_VERIFIER_MESSAGE = (
    "no verifier is installed on this server; install safework-verifiers or a verifier plugin "
    "(see `safework plugins`)"
)


def _status(code: int, message: str = "", retryable: bool = False) -> pb.ResultStatus:
    return pb.ResultStatus(code=code, message=message, retryable=retryable)  # type: ignore[arg-type]


class RegistryVerifierService(pb_grpc.VerifierServiceServicer):
    """A real servicer over the plugin registry; it reports what it cannot score, never an invented score."""

    def __init__(self, delay_s: float = 0.0, fail_first: int = 0) -> None:
        self.verifiers = plugins.collect("register_verifiers")
        self.delay_s = delay_s
        self.fail_first = fail_first
        self.list_calls = 0
        self.started = threading.Event()
        self.finished_at: float | None = None

    def ListVerifiers(self, request: pb.ListVerifiersRequest, context: grpc.ServicerContext) -> Any:
        self.list_calls += 1
        if self.list_calls <= self.fail_first:
            context.abort(grpc.StatusCode.UNAVAILABLE, "warming up; retry")
        return pb.ListVerifiersResponse(
            verifiers=[pb.VerifierInfo(name=name) for name in sorted(self.verifiers)]
        )

    def _verifier_results(self, requested: list[str]) -> list[pb.VerifierResult]:
        return [
            pb.VerifierResult(
                verifier=name,
                status=_status(pb.RESULT_CODE_VERIFIER_NOT_FOUND, f"verifier {name!r} is not installed"),
            )
            for name in requested
            if name not in self.verifiers
        ]

    def Score(self, request: pb.ScoreRequest, context: grpc.ServicerContext) -> Any:
        self.started.set()
        items = []
        for index, item in enumerate(request.items):
            if self.delay_s:
                time.sleep(self.delay_s)
            check_deadline(context, f"scoring item {index}")
            results = self._verifier_results(list(request.verifiers))
            items.append(
                pb.ItemResult(
                    item_id=item.item_id,
                    index=index,
                    results=results,
                    status=_status(pb.RESULT_CODE_NO_VERIFIER, NO_VERIFIER_MESSAGE),
                )
            )
        self.finished_at = time.monotonic()
        return pb.ScoreResponse(items=items, request_id=request.request_id)

    def ScoreSteps(
        self, request_iterator: Iterator[pb.ScoreStepsRequest], context: grpc.ServicerContext
    ) -> Any:
        open_traces: set[str] = set()
        for message in request_iterator:
            kind = message.WhichOneof("kind")
            if kind == "open":
                open_traces.add(message.open.trace_id)
            elif kind == "close":
                open_traces.discard(message.close.trace_id)
            elif kind == "step":
                step = message.step
                status = (
                    _status(pb.RESULT_CODE_NO_VERIFIER, NO_VERIFIER_MESSAGE)
                    if step.trace_id in open_traces
                    else _status(
                        pb.RESULT_CODE_INVALID_ITEM, f"trace {step.trace_id!r} is not open; open it first"
                    )
                )
                yield pb.ScoreStepsResponse(trace_id=step.trace_id, step_index=step.step_index, status=status)


@pytest.fixture(autouse=True)
def core_plugins_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Load core's built-ins only, so the verifier registry is known (empty) whatever else is installed."""
    monkeypatch.setenv(plugins.ALLOW_ENV, "")
    plugins.reset_plugin_manager()
    yield
    plugins.reset_plugin_manager()


@dataclass
class Served:
    running: RunningServer
    servicer: RegistryVerifierService
    channel: grpc.Channel

    @property
    def stub(self) -> pb_grpc.VerifierServiceStub:
        return pb_grpc.VerifierServiceStub(self.channel)


def _serve(servicer: RegistryVerifierService | None = None, **server_kwargs: Any) -> Served:
    servicer = servicer or RegistryVerifierService()
    running = build_server(
        "127.0.0.1:0", [(pb_grpc.add_VerifierServiceServicer_to_server, servicer)], **server_kwargs
    )
    return Served(running, servicer, connect(running.target, retries=0, default_timeout=5.0))


@pytest.fixture
def served() -> Iterator[Served]:
    s = _serve()
    yield s
    s.channel.close()
    s.running.stop(grace=0.5)


def test_health_reports_every_service_serving(served: Served) -> None:
    wait_ready(served.channel, timeout=5)
    assert served.running.services == (SERVICE,)
    assert check_health(served.channel) == "SERVING"
    assert check_health(served.channel, SERVICE) == "SERVING"
    assert check_health(served.channel, "no.such.Service") == "SERVICE_UNKNOWN"
    served.running.set_serving(SERVICE, False)
    assert check_health(served.channel, SERVICE) == "NOT_SERVING"


def test_list_verifiers_comes_from_the_plugin_registry(served: Served) -> None:
    registered = sorted(plugins.collect("register_verifiers"))
    reply = served.stub.ListVerifiers(pb.ListVerifiersRequest())
    assert [v.name for v in reply.verifiers] == registered == []


def test_score_reports_missing_verifiers_per_item(served: Served) -> None:
    request = pb.ScoreRequest(
        request_id="r1",
        verifiers=["safety", "no-such-verifier"],
        items=[
            pb.ScoreItem(
                item_id="a",
                prompt="How do I pick a lock?",
                response="<think>…</think>No.",
                task_label="safety",
            ),
            pb.ScoreItem(item_id="b", prompt="2+2?", response="4", reference="4", metadata={"src": "gsm8k"}),
        ],
    )
    reply = served.stub.Score(request)
    assert reply.request_id == "r1"
    assert [(i.item_id, i.index) for i in reply.items] == [("a", 0), ("b", 1)]
    for item in reply.items:
        assert item.status.code == pb.RESULT_CODE_NO_VERIFIER
        assert "no verifier is installed" in item.status.message
        assert [(r.verifier, r.status.code) for r in item.results] == [
            ("safety", pb.RESULT_CODE_VERIFIER_NOT_FOUND),
            ("no-such-verifier", pb.RESULT_CODE_VERIFIER_NOT_FOUND),
        ]
        assert all(r.score == 0.0 and not r.label for r in item.results)  # nothing was made up


def test_score_steps_bidirectional_stream(served: Served) -> None:
    def messages() -> Iterator[pb.ScoreStepsRequest]:
        yield pb.ScoreStepsRequest(open=pb.TraceOpen(trace_id="t", prompt="q"))
        yield pb.ScoreStepsRequest(step=pb.StepAppend(trace_id="t", step_index=0, text="first"))
        yield pb.ScoreStepsRequest(
            step=pb.StepAppend(trace_id="t", step_index=1, text="second", is_final=True)
        )
        yield pb.ScoreStepsRequest(close=pb.TraceClose(trace_id="t"))
        yield pb.ScoreStepsRequest(step=pb.StepAppend(trace_id="t", step_index=2, text="late"))

    replies = list(served.stub.ScoreSteps(messages(), timeout=5))
    assert [(r.trace_id, r.step_index, r.status.code) for r in replies] == [
        ("t", 0, pb.RESULT_CODE_NO_VERIFIER),
        ("t", 1, pb.RESULT_CODE_NO_VERIFIER),
        ("t", 2, pb.RESULT_CODE_INVALID_ITEM),
    ]


def test_too_short_client_deadline_gets_deadline_exceeded() -> None:
    s = _serve(RegistryVerifierService(delay_s=0.5))
    try:
        with pytest.raises(grpc.RpcError) as info:
            s.stub.Score(pb.ScoreRequest(items=[pb.ScoreItem(prompt="p")]), timeout=0.05)
        assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    finally:
        s.running.stop(grace=1.0)


def test_server_budget_caps_a_long_client_deadline() -> None:
    s = _serve(RegistryVerifierService(delay_s=0.1), deadlines=DeadlinePolicy(max_timeout_s=0.25))
    try:
        items = [pb.ScoreItem(item_id=str(i), prompt="p") for i in range(20)]
        started = time.monotonic()
        with pytest.raises(grpc.RpcError) as info:
            s.stub.Score(pb.ScoreRequest(items=items), timeout=30)
        assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        assert "while scoring item" in (info.value.details() or "")
        assert time.monotonic() - started < 5  # stopped by the server budget, far before the 2 s of work
    finally:
        s.running.stop(grace=1.0)


def test_require_deadline_rejects_calls_without_one() -> None:
    s = _serve(deadlines=DeadlinePolicy(require_deadline=True))
    bare = grpc.insecure_channel(s.running.target)  # no default timeout on this channel
    try:
        with pytest.raises(grpc.RpcError) as info:
            pb_grpc.VerifierServiceStub(bare).ListVerifiers(pb.ListVerifiersRequest())
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "requires a deadline" in (info.value.details() or "")
        assert (
            pb_grpc.VerifierServiceStub(bare).ListVerifiers(pb.ListVerifiersRequest(), timeout=5) is not None
        )
        assert s.stub.ListVerifiers(pb.ListVerifiersRequest()) is not None  # connect() adds the default
        assert check_health(bare) == "SERVING"  # health probes are exempt
    finally:
        bare.close()
        s.running.stop(grace=0.5)


def test_oversized_message_is_rejected_with_resource_exhausted() -> None:
    s = _serve(max_message_bytes=1024 * 1024)
    big = connect(s.running.target, retries=0, max_message_bytes=8 * 1024 * 1024)
    try:
        request = pb.ScoreRequest(items=[pb.ScoreItem(prompt="x" * (2 * 1024 * 1024))])
        with pytest.raises(grpc.RpcError) as info:
            pb_grpc.VerifierServiceStub(big).Score(request, timeout=5)
        assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        small = pb.ScoreRequest(items=[pb.ScoreItem(prompt="x" * 1000)])
        assert len(pb_grpc.VerifierServiceStub(big).Score(small, timeout=5).items) == 1
    finally:
        big.close()
        s.running.stop(grace=0.5)


def test_client_retries_unavailable_with_backoff() -> None:
    s = _serve(RegistryVerifierService(fail_first=2))
    try:
        retrying = connect(s.running.target, retries=3, initial_backoff_s=0.01, max_backoff_s=0.05)
        assert pb_grpc.VerifierServiceStub(retrying).ListVerifiers(pb.ListVerifiersRequest()) is not None
        assert s.servicer.list_calls == 3
        s.servicer.list_calls, s.servicer.fail_first = 0, 1
        with pytest.raises(grpc.RpcError) as info:
            s.stub.ListVerifiers(pb.ListVerifiersRequest())  # s.channel has retries=0
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE
        assert s.servicer.list_calls == 1
    finally:
        s.running.stop(grace=0.5)


def test_graceful_shutdown_drains_and_finishes_in_flight_calls() -> None:
    s = _serve(RegistryVerifierService(delay_s=1.0))
    wait_ready(s.channel, timeout=5)
    outcome: dict[str, Any] = {}

    def in_flight() -> None:
        outcome["reply"] = s.stub.Score(pb.ScoreRequest(items=[pb.ScoreItem(item_id="slow")]), timeout=10)

    caller = threading.Thread(target=in_flight)
    caller.start()
    assert s.servicer.started.wait(5)
    stopper = threading.Thread(target=lambda: s.running.stop(grace=5.0, drain=0.6))
    stopper.start()
    time.sleep(0.2)
    assert check_health(s.channel) == "NOT_SERVING"
    assert check_health(s.channel, SERVICE) == "NOT_SERVING"
    stopper.join(10)
    stopped_at = time.monotonic()
    caller.join(10)
    assert [i.item_id for i in outcome["reply"].items] == ["slow"]
    # The handler ran to completion before stop() returned (the client may read the reply a moment later).
    assert s.servicer.finished_at is not None and s.servicer.finished_at <= stopped_at
    with pytest.raises(RpcError, match="UNAVAILABLE"):
        check_health(s.channel, timeout=1)


# --- TLS / mTLS --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    rogue_cert: Path  # a client certificate from a different CA
    rogue_key: Path


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _cert(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None,
    *,
    ca: bool = False,
    san: list[x509.GeneralName] | None = None,
    usage: x509.ObjectIdentifier | None = None,
) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    issuer_name, signing_key = issuer if issuer else (name, key)
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if san:
        builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
    if usage:
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    return builder.sign(signing_key, hashes.SHA256())


def _write(path: Path, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> tuple[Path, Path]:
    path.with_suffix(".crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path.with_suffix(".key").write_bytes(key_pem)
    return path.with_suffix(".crt"), path.with_suffix(".key")


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    root = tmp_path_factory.mktemp("pki")
    ca_key, rogue_ca_key = _key(), _key()
    ca = _cert("safework test CA", ca_key, None, ca=True)
    rogue_ca = _cert("rogue CA", rogue_ca_key, None, ca=True)
    ca_path, _ = _write(root / "ca", ca, ca_key)
    server_key, client_key, rogue_key = _key(), _key(), _key()
    san = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    server = _cert(
        "localhost", server_key, (ca.subject, ca_key), san=san, usage=ExtendedKeyUsageOID.SERVER_AUTH
    )
    client = _cert("vendor-a", client_key, (ca.subject, ca_key), usage=ExtendedKeyUsageOID.CLIENT_AUTH)
    rogue = _cert(
        "mallory", rogue_key, (rogue_ca.subject, rogue_ca_key), usage=ExtendedKeyUsageOID.CLIENT_AUTH
    )
    return Pki(
        ca_path,
        *_write(root / "server", server, server_key),
        *_write(root / "client", client, client_key),
        *_write(root / "rogue", rogue, rogue_key),
    )


def _list(channel: grpc.Channel) -> pb.ListVerifiersResponse:
    return pb_grpc.VerifierServiceStub(channel).ListVerifiers(pb.ListVerifiersRequest(), timeout=5)


def test_tls_round_trip(pki: Pki) -> None:
    s = _serve(tls=TlsConfig(pki.server_cert, pki.server_key))
    try:
        for host in ("127.0.0.1", "localhost"):
            channel = connect(f"{host}:{s.running.port}", tls=ClientTls(ca_file=pki.ca), retries=0)
            assert check_health(channel) == "SERVING"
            assert list(_list(channel).verifiers) == []
            channel.close()
        plaintext = connect(s.running.target, retries=0)
        with pytest.raises(RpcError, match="UNAVAILABLE"):
            check_health(plaintext, timeout=2)
        plaintext.close()
    finally:
        s.running.stop(grace=0.5)


def test_mtls_round_trip_and_refusals(pki: Pki) -> None:
    mtls = TlsConfig(pki.server_cert, pki.server_key, client_ca_file=pki.ca, require_client_auth=True)
    s = _serve(tls=mtls)
    address = s.running.target
    try:
        good = connect(address, tls=ClientTls(pki.ca, pki.client_cert, pki.client_key), retries=0)
        assert check_health(good) == "SERVING"
        assert list(_list(good).verifiers) == []
        for client in (ClientTls(pki.ca), ClientTls(pki.ca, pki.rogue_cert, pki.rogue_key)):
            refused = connect(address, tls=client, retries=0)
            with pytest.raises(grpc.RpcError) as info:
                _list(refused)
            assert info.value.code() == grpc.StatusCode.UNAVAILABLE
            refused.close()
        good.close()
    finally:
        s.running.stop(grace=0.5)


def test_tls_file_errors_are_clear(pki: Pki, tmp_path: Path) -> None:
    not_pem = tmp_path / "notes.txt"
    not_pem.write_text("hello")
    with pytest.raises(ConfigError, match=r"server certificate file .*missing.crt does not exist"):
        TlsConfig(tmp_path / "missing.crt", pki.server_key).credentials()
    with pytest.raises(ConfigError, match=r"server certificate file .*notes.txt does not contain a PEM cert"):
        TlsConfig(not_pem, pki.server_key).credentials()
    with pytest.raises(ConfigError, match=r"server key file .*notes.txt does not contain a PEM key"):
        TlsConfig(pki.server_cert, not_pem).credentials()
    with pytest.raises(ConfigError, match=r"does not match the certificate"):
        TlsConfig(pki.server_cert, pki.client_key).credentials()
    with pytest.raises(ConfigError, match=r"require_client_auth=True needs client_ca_file"):
        TlsConfig(pki.server_cert, pki.server_key, require_client_auth=True).credentials()
    with pytest.raises(ConfigError, match=r"needs both cert_file and key_file"):
        ClientTls(pki.ca, cert_file=pki.client_cert).credentials()
    truncated = tmp_path / "truncated.crt"
    truncated.write_text(pki.ca.read_text()[:200] + "\n-----END CERTIFICATE-----\n")
    with pytest.raises(ConfigError, match=r"CA file .*truncated.crt is not a valid PEM certificate"):
        ClientTls(truncated).credentials()
    with pytest.raises(ConfigError, match=r"does not exist"):  # the server is never started with bad files
        build_server("127.0.0.1:0", [], tls=TlsConfig(tmp_path / "missing.crt", pki.server_key))


# --- addresses, binding, connecting ------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty gRPC address"),
        ("localhost", "has no port"),
        ("http://localhost:50051", "URL scheme"),
        ("localhost:http", "non-numeric port"),
        ("localhost:70000", "outside 1..65535"),
        ("localhost:0", "a client needs the real port"),
        ("::1:50051", "needs brackets"),
        ("bad_host!:1", "invalid host"),
    ],
)
def test_bad_addresses_are_refused(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        connect(text)


def test_good_addresses_parse() -> None:
    assert str(parse_address("[::1]:50051")) == "[::1]:50051"
    assert parse_address("0.0.0.0:0", allow_port_zero=True).port == 0
    assert parse_address(" example.org:443 ").host == "example.org"


def test_service_name_comes_from_the_generated_module() -> None:
    assert service_name(pb_grpc.add_VerifierServiceServicer_to_server) == SERVICE
    with pytest.raises(ConfigError, match=r"pass \(add_fn, servicer, 'package\.ServiceName'\)"):
        service_name(lambda servicer, server: None)


def test_busy_port_is_a_clear_error(served: Served) -> None:
    with pytest.raises(RpcError, match=r"cannot listen on 127\.0\.0\.1:\d+: the port is in use"):
        build_server(served.running.target, [])


def test_wait_ready_times_out_with_a_clear_error() -> None:
    with socket.socket() as sock:  # a port that was free a moment ago and has no listener now
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    channel = connect(f"127.0.0.1:{port}", retries=0)
    with pytest.raises(RpcError, match=r"could not connect to 127\.0\.0\.1:\d+ within 0\.3s"):
        wait_ready(channel, timeout=0.3, address=f"127.0.0.1:{port}")
    channel.close()


SERVE_SCRIPT = """
import sys
from safework.core.rpc import build_server, serve_forever
running = build_server("127.0.0.1:0", [])
print(running.port, flush=True)
serve_forever(running, grace=1.0)
print("stopped", flush=True)
"""


def test_serve_forever_stops_cleanly_on_sigterm() -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-c", SERVE_SCRIPT], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        channel = connect(f"127.0.0.1:{port}", retries=0)
        assert check_health(channel) == "SERVING"
        channel.close()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
        assert proc.stdout.read().strip() == "stopped"
    finally:
        if proc.poll() is None:
            proc.kill()
