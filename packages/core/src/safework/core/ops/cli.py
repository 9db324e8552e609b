"""``safework ops``: build the native ops ahead of time and see which implementation each op uses."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import click

from safework.core.errors import ConfigError
from safework.core.ops.mode import OpsMode, ops_mode

# The builder imports torch (~2 s); it is imported inside the commands so `safework --help` stays fast.


@dataclass(frozen=True)
class OpStatus:
    """One row of ``safework ops list``."""

    name: str
    description: str
    compiler: bool
    cuda: bool
    built: bool
    library: str
    in_use: str


def op_status(name: str) -> OpStatus:
    """What ``name`` would run right now, without building anything."""
    from safework.core.ops.builder import compiler_available, default_builder, op_spec

    spec = op_spec(name)
    builder = default_builder()
    built = builder.is_built(name)
    compiler = compiler_available()
    mode = ops_mode()
    failure = builder.failure(name)
    if mode is OpsMode.REFERENCE:
        in_use = "reference (SAFEWORK_OPS=reference)"
    elif failure is not None:
        in_use = "error: build failed" if mode is OpsMode.NATIVE else "reference (build failed)"
    elif built:
        in_use = "native"
    elif compiler:
        in_use = "native (built on first use)"
    else:
        in_use = "error: no compiler" if mode is OpsMode.NATIVE else "reference (no compiler)"
    return OpStatus(
        name=spec.name,
        description=spec.description,
        compiler=compiler,
        cuda=builder.with_cuda,
        built=built,
        library=str(builder.library_path(name)),
        in_use=in_use,
    )


@click.group("ops")
def ops_group() -> None:
    """Native C++/CUDA ops: build them ahead of time, list what runs (switch: $SAFEWORK_OPS)."""


@ops_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def list_command(as_json: bool) -> None:
    """Show each op, whether its native build is possible / done, and which path calls take."""
    from safework.core.console import print_json, print_table
    from safework.core.ops.builder import OPS

    rows = [op_status(name) for name in sorted(OPS)]
    if as_json:
        print_json({"mode": ops_mode().value, "ops": [asdict(row) for row in rows]})
        return
    print_table(
        f"safework native ops (SAFEWORK_OPS={ops_mode().value})",
        ["op", "compiler", "cuda", "built", "in use", "description"],
        [(r.name, r.compiler, r.cuda, r.built, r.in_use, r.description) for r in rows],
    )


@ops_group.command("build")
@click.argument("name", required=False)
@click.option("--all", "build_all", is_flag=True, help="Build every op.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
def build_command(name: str | None, build_all: bool, as_json: bool) -> None:
    """Compile NAME (or --all) into the shared cache so later just-in-time loads are instant."""
    from safework.core.console import print_json, print_table
    from safework.core.ops.builder import OPS, default_builder, op_spec

    if build_all == (name is not None):
        raise ConfigError(
            f"give either an op name or --all (known ops: {', '.join(sorted(OPS))}), "
            "e.g. `safework ops build --all`"
        )
    names = sorted(OPS) if build_all else [op_spec(str(name)).name]
    builder = default_builder()
    results = [builder.build(n) for n in names]  # NativeOpError carries the compiler output and the fix
    if as_json:
        print_json([{**asdict(r), "library": str(r.library)} for r in results])
        return
    print_table(
        "built native ops",
        ["op", "cuda", "seconds", "library"],
        [(r.name, r.with_cuda, f"{r.seconds:.1f}", r.library) for r in results],
    )
