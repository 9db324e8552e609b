"""``safework verifiers serve``: run the reward server until SIGTERM/SIGINT, then drain and exit 0."""

from __future__ import annotations

from pathlib import Path

import click

from safework.core.errors import SafeworkError


@click.command("serve")
@click.option("--listen", default="127.0.0.1:50051", show_default=True, help="host:port (port 0: any free).")
@click.option(
    "--verifier", "verifiers", multiple=True, help="Verifier to serve (repeat); default: all registered."
)
@click.option(
    "--recipe",
    "recipe_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Reward recipe (TOML) for calls that name no verifiers; default: the package's default recipe.",
)
@click.option(
    "--max-batch", type=int, default=32, show_default=True, help="Items per forward pass; 1 = no batching."
)
@click.option(
    "--max-wait-ms", type=float, default=20.0, show_default=True, help="Longest wait to fill a batch."
)
@click.option("--max-items", type=int, default=256, show_default=True, help="Items allowed per Score call.")
@click.option(
    "--max-message-mb", type=float, default=16.0, show_default=True, help="Request/response size limit."
)
@click.option("--workers", type=int, default=1, show_default=True, help="Scoring threads per verifier.")
@click.option("--rpc-threads", type=int, default=64, show_default=True, help="Concurrent calls served.")
@click.option("--verifier-timeout", type=float, default=None, help="Seconds a verifier may take per call.")
@click.option("--max-timeout", type=float, default=None, help="Cap on any call's deadline, in seconds.")
@click.option(
    "--require-deadline/--no-require-deadline",
    default=False,
    show_default=True,
    help="Refuse calls without a client deadline.",
)
@click.option("--tls-cert", type=click.Path(path_type=Path), default=None, help="Server certificate (PEM).")
@click.option("--tls-key", type=click.Path(path_type=Path), default=None, help="Server private key (PEM).")
@click.option("--client-ca", type=click.Path(path_type=Path), default=None, help="CA of client certs (mTLS).")
@click.option(
    "--grace", type=float, default=10.0, show_default=True, help="Seconds in-flight calls get on stop."
)
def serve(
    listen: str,
    verifiers: tuple[str, ...],
    recipe_path: Path | None,
    max_batch: int,
    max_wait_ms: float,
    max_items: int,
    max_message_mb: float,
    workers: int,
    rpc_threads: int,
    verifier_timeout: float | None,
    max_timeout: float | None,
    require_deadline: bool,
    tls_cert: Path | None,
    tls_key: Path | None,
    client_ca: Path | None,
    grace: float,
) -> None:
    """Serve verifiers over gRPC (safework.verifier.v1.VerifierService) with dynamic batching."""
    from safework.core.rpc import DeadlinePolicy, TlsConfig, serve_forever
    from safework.verifiers.recipe import DEFAULT_RECIPE_PATH, Recipe
    from safework.verifiers.server.app import load_verifiers, start_reward_server
    from safework.verifiers.server.limits import RequestLimits
    from safework.verifiers.server.service import ServerConfig

    if (tls_cert is None) != (tls_key is None):
        raise click.UsageError("--tls-cert and --tls-key go together; give both for TLS, or neither.")
    if client_ca is not None and tls_cert is None:
        raise click.UsageError("--client-ca (mTLS) needs --tls-cert and --tls-key as well.")
    try:
        tls = None
        if tls_cert is not None and tls_key is not None:
            tls = TlsConfig(tls_cert, tls_key, client_ca, require_client_auth=client_ca is not None)
        limits = RequestLimits(max_items=max_items, max_message_bytes=int(max_message_mb * 1024 * 1024))
        config = ServerConfig(
            max_batch=max_batch,
            max_wait_ms=max_wait_ms,
            workers=workers,
            limits=limits,
            verifier_timeout_s=verifier_timeout,
        )
        deadlines = DeadlinePolicy(require_deadline=require_deadline, max_timeout_s=max_timeout)
        recipe = Recipe.load(recipe_path or DEFAULT_RECIPE_PATH)
        click.echo(f"loading verifiers: {', '.join(verifiers) or 'all registered'}", err=True)
        loaded = load_verifiers(list(verifiers), recipe)
        server = start_reward_server(
            loaded,
            listen,
            config=config,
            tls=tls,
            deadlines=deadlines,
            rpc_threads=rpc_threads,
            recipe=recipe,
        )
    except SafeworkError as exc:
        raise click.ClickException(str(exc)) from exc
    security = "mTLS" if client_ca else "TLS" if tls else "plaintext"
    click.echo(
        f"reward server listening on {server.running.address} ({security}); "
        f"verifiers: {', '.join(sorted(loaded))}; recipe {recipe.source}; max batch {max_batch}, "
        f"max wait {max_wait_ms:g} ms",
        err=True,
    )
    click.echo(f"listening {server.target}", err=False)
    try:
        serve_forever(server.running, grace=grace)
    finally:
        server.service.close()
    click.echo("reward server stopped", err=True)
