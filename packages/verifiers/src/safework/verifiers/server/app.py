"""Start the reward server: load verifiers, wrap them in a VerifierService, bind with core's build_server."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, packages_distributions, version
from types import TracebackType

from safework.core.errors import ConfigError
from safework.core.rpc import DeadlinePolicy, RunningServer, TlsConfig, build_server
from safework.verifiers.base import Verifier
from safework.verifiers.recipe import Recipe
from safework.verifiers.registry import available_verifiers, get_verifier
from safework.verifiers.server.service import SERVICE, ServerConfig, VerifierService, add_to_server

log = logging.getLogger("safework.verifiers.server")


@dataclass
class RewardServer:
    """A running reward server: ``target`` is what clients connect to."""

    running: RunningServer
    service: VerifierService

    @property
    def target(self) -> str:
        return self.running.target

    @property
    def port(self) -> int:
        return self.running.port

    def stop(self, grace: float = 5.0) -> None:
        """Stop accepting calls, let in-flight ones finish within ``grace`` s, then stop the batchers."""
        self.running.stop(grace=grace)
        self.service.close()

    def __enter__(self) -> RewardServer:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop(grace=1.0)


def _source(verifier: Verifier) -> str:
    """``"<distribution> <version>"`` of the package that defines the verifier's class, for ListVerifiers."""
    top = type(verifier).__module__.split(".")[0]
    module = type(verifier).__module__
    candidates = packages_distributions().get(top, [])
    if top == "safework":  # namespace package: pick the part (safework.verifiers → safework-verifiers)
        part = module.split(".")[1] if "." in module else ""
        candidates = [f"safework-{part}"]
    for dist in candidates:
        try:
            return f"{dist} {version(dist)}"
        except PackageNotFoundError:
            continue
    return module


def load_verifiers(names: Sequence[str] | None = None, recipe: Recipe | None = None) -> dict[str, Verifier]:
    """Instantiate the named registered verifiers (all registered ones when ``names`` is empty/None).

    With a ``recipe``, its format verifiers are always added (the format reward is mandatory and they are
    cheap rules), and with no ``names`` its named instances (``[verifiers.*]`` aliases) too; a name may be
    such an alias."""
    chosen = list(names) if names else sorted(available_verifiers())
    if recipe is not None:
        extra = recipe.format_names() + ([] if names else list(recipe.verifiers))
        chosen += [n for n in extra if n not in chosen and recipe.is_loaded(n)]
    if not chosen:
        raise ConfigError(
            "no verifier is registered, so the reward server would have nothing to serve; install a "
            "verifier plugin (see `safework verifiers list`) or pass --verifier NAME"
        )
    make = recipe.make_verifier if recipe is not None else get_verifier
    return {name: make(name) for name in chosen}


def start_reward_server(
    verifiers: Mapping[str, Verifier],
    address: str = "127.0.0.1:0",
    *,
    config: ServerConfig | None = None,
    tls: TlsConfig | None = None,
    deadlines: DeadlinePolicy | None = None,
    rpc_threads: int = 64,
    recipe: Recipe | None = None,
) -> RewardServer:
    """Serve ``verifiers`` on ``address`` (port 0 picks a free one); health reports SERVING once bound.

    ``recipe`` (default: the package's default recipe) composes the reward of requests that name no
    verifiers; serve its format verifiers too (:func:`load_verifiers` with the recipe adds them).

    ``rpc_threads`` bounds concurrent calls: each waiting Score call holds one thread while its items sit in
    a batch, so it must exceed the number of concurrent clients for batching to help.
    """
    config = config or ServerConfig()
    service = VerifierService(
        verifiers, config, recipe=recipe, sources={n: _source(v) for n, v in verifiers.items()}
    )
    try:
        running = build_server(
            address,
            [(add_to_server, service, SERVICE)],
            tls=tls,
            max_workers=rpc_threads,
            max_message_bytes=config.limits.max_message_bytes,
            deadlines=deadlines,
        )
    except BaseException:
        service.close()
        raise
    log.info("reward server on %s serving %s", running.address, ", ".join(sorted(verifiers)))
    return RewardServer(running, service)
