"""Start a gRPC server the way every safework service needs it.

One call gives TLS/mTLS, the standard health service (``grpc.health.v1``) with per-service status, a
deadline policy, a message-size limit applied in both directions, and a stop that drains: health flips to
NOT_SERVING first (so load balancers stop sending), then in-flight calls get ``grace`` seconds to finish.
:func:`serve_forever` adds SIGTERM/SIGINT handling for ``safework ... serve`` commands.
"""

from __future__ import annotations

import importlib
import logging
import re
import signal
import threading
import time
from collections.abc import Callable, Sequence
from concurrent import futures
from dataclasses import dataclass, field
from types import FrameType, TracebackType
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from safework.core.errors import ConfigError, RpcError
from safework.core.rpc.address import Address, parse_address
from safework.core.rpc.deadlines import DeadlineInterceptor, DeadlinePolicy
from safework.core.rpc.parsing import StrictParsing
from safework.core.rpc.tls import TlsConfig

log = logging.getLogger("safework.rpc")

DEFAULT_MAX_MESSAGE_BYTES = 16 * 1024 * 1024
HEALTH_SERVICE = "grpc.health.v1.Health"

AddServicer = Callable[[Any, grpc.Server], None]
# (add_XServicer_to_server, servicer), or (add_fn, servicer, "pkg.Service") when the name cannot be derived.
ServicerSpec = tuple[AddServicer, object] | tuple[AddServicer, object, str]


def service_name(add_fn: AddServicer) -> str:
    """Full proto name of the service a generated ``add_<Service>Servicer_to_server`` registers."""
    match = re.fullmatch(r"add_(\w+)Servicer_to_server", getattr(add_fn, "__name__", ""))
    module_name = getattr(add_fn, "__module__", "") or ""
    if match and module_name.endswith("_pb2_grpc"):
        try:
            pb2 = importlib.import_module(module_name.removesuffix("_grpc"))
            return str(pb2.DESCRIPTOR.services_by_name[match[1]].full_name)
        except (ImportError, KeyError):
            pass
    raise ConfigError(
        f"cannot tell which service {add_fn!r} registers; pass (add_fn, servicer, 'package.ServiceName')."
    )


@dataclass
class RunningServer:
    """A started server: where it listens, which services it serves, and how to stop it cleanly."""

    server: grpc.Server
    address: Address
    services: tuple[str, ...]
    health: health.HealthServicer | None
    _stopped: threading.Event = field(default_factory=threading.Event, repr=False)

    @property
    def port(self) -> int:
        return self.address.port

    @property
    def target(self) -> str:
        """What a client passes to connect (a wildcard bind is reached through 127.0.0.1)."""
        host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(
            self.address.host, self.address.host
        )
        return str(Address(host, self.port))

    def set_serving(self, service: str, serving: bool) -> None:
        """Report one service (or ``""``, the whole server) as SERVING / NOT_SERVING to health checks."""
        if self.health is None:
            raise RpcError(
                "this server was built with health=False; build it with health=True to report status."
            )
        status = (
            health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        self.health.set(service, status)

    def stop(self, grace: float = 5.0, drain: float = 0.0) -> None:
        """Flip health to NOT_SERVING, wait ``drain`` s (calls still accepted), then allow ``grace`` s."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        if self.health is not None:
            self.health.enter_graceful_shutdown()
        if drain > 0:
            time.sleep(drain)
        log.info("stopping gRPC server on %s (grace %.1fs)", self.address, grace)
        self.server.stop(grace).wait()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the server has terminated; True if it did within ``timeout``.

        (grpc's ``wait_for_termination`` answers the opposite question: True when the wait timed out.)"""
        return not self.server.wait_for_termination(timeout)

    def __enter__(self) -> RunningServer:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop(grace=1.0)


def _reflection(server: grpc.Server, names: Sequence[str]) -> None:
    try:
        from grpc_reflection.v1alpha import reflection  # type: ignore[import-not-found, unused-ignore]
    except ImportError as exc:
        raise RpcError(
            "reflection=True needs the grpcio-reflection package; `pip install -c constraints.txt "
            "grpcio-reflection`, or build the server with reflection=False."
        ) from exc
    reflection.enable_server_reflection([*names, reflection.SERVICE_NAME], server)


def build_server(
    address: str,
    servicers: Sequence[ServicerSpec],
    *,
    tls: TlsConfig | None = None,
    max_workers: int = 8,
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    max_concurrent_rpcs: int | None = None,
    health: bool = True,
    reflection: bool = False,
    deadlines: DeadlinePolicy | None = None,
    interceptors: Sequence[grpc.ServerInterceptor] = (),
    options: Sequence[tuple[str, Any]] = (),
) -> RunningServer:
    """Build, bind and start a server; ``address`` is ``host:port`` (port 0 picks a free one, see ``.port``).

    Oversized messages (either direction) fail with RESOURCE_EXHAUSTED; more than ``max_concurrent_rpcs``
    calls at once fail with RESOURCE_EXHAUSTED instead of queueing without bound.
    """
    parsed = parse_address(address, allow_port_zero=True)
    if max_workers < 1:
        raise ConfigError(f"max_workers must be at least 1, got {max_workers}.")
    if max_message_bytes < 1024:
        raise ConfigError(
            f"max_message_bytes={max_message_bytes} is too small for any real request; use >= 1024."
        )
    chain: list[grpc.ServerInterceptor] = [
        DeadlineInterceptor(deadlines or DeadlinePolicy()),
        StrictParsing(),  # bytes that do not parse: INVALID_ARGUMENT with a reason, not INTERNAL
        *interceptors,
    ]
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="safework-rpc"),
        interceptors=chain,
        options=[
            ("grpc.max_send_message_length", max_message_bytes),
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.so_reuseport", 0),  # a second server on a busy port must fail, not share it silently
            *options,
        ],
        maximum_concurrent_rpcs=max_concurrent_rpcs,
    )
    names: list[str] = []
    for spec in servicers:
        add_fn, servicer = spec[0], spec[1]
        names.append(spec[2] if len(spec) == 3 else service_name(add_fn))
        add_fn(servicer, server)
    health_servicer = None
    if health:
        health_servicer = _health_servicer()
        health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    if reflection:
        _reflection(server, [*names, *([HEALTH_SERVICE] if health else [])])
    port = _bind(server, parsed, tls)
    server.start()
    running = RunningServer(server, Address(parsed.host, port), tuple(names), health_servicer)
    if health_servicer is not None:
        for name in ["", *names, HEALTH_SERVICE]:
            running.set_serving(name, True)
    log.info("gRPC server on %s serving %s (%s)", running.address, ", ".join(names) or "-", _tls_kind(tls))
    return running


def _health_servicer() -> health.HealthServicer:
    return health.HealthServicer(
        experimental_non_blocking=True,
        experimental_thread_pool=futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="safework-health"
        ),
    )


def _tls_kind(tls: TlsConfig | None) -> str:
    if tls is None:
        return "plaintext"
    return "mTLS" if tls.require_client_auth else "TLS"


def _bind(server: grpc.Server, address: Address, tls: TlsConfig | None) -> int:
    credentials = tls.credentials() if tls is not None else None  # file errors surface before binding
    cause: RuntimeError | None = None
    try:
        if credentials is not None:
            port = server.add_secure_port(str(address), credentials)
        else:
            port = server.add_insecure_port(str(address))
    except RuntimeError as exc:  # grpcio raises instead of returning 0 since 1.5x
        port, cause = 0, exc
    if port == 0:
        raise RpcError(
            f"cannot listen on {address}: the port is in use or the host is not an address of this machine "
            f"({cause or 'bind failed'}); choose another port (0 picks a free one) or stop the other server."
        ) from cause
    return int(port)


def serve_forever(
    running: RunningServer,
    *,
    grace: float = 10.0,
    drain: float = 0.0,
    signals: Sequence[signal.Signals] = (signal.SIGTERM, signal.SIGINT),
) -> None:
    """Serve until SIGTERM/SIGINT (main thread only) or until the server stops, then stop gracefully."""
    requested = threading.Event()
    previous: dict[signal.Signals, Any] = {}

    def on_signal(signum: int, frame: FrameType | None) -> None:
        log.info("received %s; shutting down", signal.Signals(signum).name)
        requested.set()

    if threading.current_thread() is threading.main_thread():
        for sig in signals:
            previous[sig] = signal.signal(sig, on_signal)
    else:
        log.warning("serve_forever: not in the main thread, so SIGTERM/SIGINT are not handled here")
    try:
        while not requested.wait(0.2):
            if running.wait(timeout=0):
                return
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    running.stop(grace=grace, drain=drain)
