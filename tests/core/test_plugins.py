"""The plugin host: discovery through entry points, the allow-list, every hook, clashes and listing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import click
import pytest
import torch
from click.testing import CliRunner

from safework.core import hookspecs, plugins
from safework.core.cli import cli, main
from safework.core.errors import ConfigError, PluginError
from safework.core.hookspecs import hookimpl


@pytest.fixture
def fresh_manager(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    plugins.reset_plugin_manager()
    yield
    plugins.reset_plugin_manager()


@pytest.fixture
def with_sample(sample_site: Path, monkeypatch: pytest.MonkeyPatch, fresh_manager: None) -> Path:
    monkeypatch.syspath_prepend(str(sample_site))
    monkeypatch.delenv(plugins.ALLOW_ENV, raising=False)
    return sample_site


def _names() -> set[str]:
    return {info.name for info in plugins.loaded_plugins()}


def test_builtin_packages_are_entry_point_plugins(
    fresh_manager: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(plugins.ALLOW_ENV, raising=False)
    infos = {info.name: info for info in plugins.loaded_plugins()}
    assert {"core", "verifiers", "rl", "watermark"} <= set(infos)
    assert infos["core"].source == "builtin"
    assert infos["watermark"].source == "safework-watermark: safework.watermark.plugin"
    assert infos["verifiers"].version == "0.1.0"
    assert "register_commands" in infos["rl"].hooks


def test_sample_plugin_discovered_through_entry_point(with_sample: Path) -> None:
    infos = {info.name: info for info in plugins.loaded_plugins()}
    assert infos["sample"].version == "0.3.1"
    assert infos["sample"].source == "safework-sample-plugin: safework_sample_plugin"
    assert set(infos["sample"].hooks) == {
        "register_commands",
        "register_datasets",
        "register_verifiers",
        "register_watermark_schemes",
        "register_attacks",
        "register_advantage_estimators",
    }


def test_register_verifiers_hook(with_sample: Path) -> None:
    verifiers = plugins.collect("register_verifiers")
    assert verifiers["sample-length"]().score_one("x" * 100) == 1.0


def test_register_watermark_schemes_hook(with_sample: Path) -> None:
    assert plugins.collect("register_watermark_schemes")["sample-null"].name == "sample-null"


def test_register_attacks_hook(with_sample: Path) -> None:
    attack = plugins.collect("register_attacks")["sample-shout"]
    assert attack("a b c d", 0.5, None) == "A B c d"


def test_register_advantage_estimators_hook(with_sample: Path) -> None:
    estimator = plugins.collect("register_advantage_estimators")["sample-mean-centred"]
    batch = SimpleNamespace(rewards=torch.tensor([1.0, 3.0, 5.0]), groups=torch.tensor([0, 0, 1]))
    assert estimator(batch) == [-1.0, 1.0, 0.0]


def test_register_datasets_hook_carries_core_builtins(fresh_manager: None) -> None:
    datasets = plugins.collect("register_datasets")
    assert datasets, "core registers its catalogue through register_datasets"
    assert all(name == ds.name for name, ds in datasets.items())


def test_register_datasets_hook_from_a_third_party(with_sample: Path) -> None:
    from safework.core.data import get_dataset

    proverbs = get_dataset("sample-proverbs").load()
    assert [r["text"] for r in proverbs][1] == "Many hands make light work."


def test_register_commands_hook_in_a_real_process(sample_site: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(sample_site)}
    env.pop(plugins.ALLOW_ENV, None)
    run = subprocess.run(
        [sys.executable, "-m", "safework.core.cli", "sample-hello", "plugin-author"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    assert run.stdout.strip() == "hello plugin-author from the sample plugin"
    listing = subprocess.run(
        [sys.executable, "-m", "safework.core.cli", "plugins", "--json"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    rows = {row["name"]: row for row in json.loads(listing.stdout)}
    assert rows["sample"]["version"] == "0.3.1"
    assert rows["sample"]["source"].startswith("safework-sample-plugin")


def test_allow_list_limits_entry_point_plugins(with_sample: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(plugins.ALLOW_ENV, "watermark, sample")
    assert _names() == {"core", "watermark", "sample"}
    plugins.reset_plugin_manager()
    monkeypatch.setenv(plugins.ALLOW_ENV, "")
    assert _names() == {"core"}


def test_allow_list_rejects_garbage(fresh_manager: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(plugins.ALLOW_ENV, "watermark,rm -rf /")
    with pytest.raises(ConfigError, match="not a plugin name"):
        plugins.get_plugin_manager()


class _Clash:
    @hookimpl
    def register_attacks(self, register: hookspecs.Register) -> None:
        register("sample-shout", lambda text, strength, rng: text)


def test_duplicate_names_are_an_error_naming_both(with_sample: Path) -> None:
    plugins.get_plugin_manager().register(_Clash(), name="clash")
    with pytest.raises(PluginError, match="'sample-shout' is registered by both 'sample' and 'clash'"):
        plugins.collect("register_attacks")


def test_collect_refuses_non_component_hooks(fresh_manager: None) -> None:
    with pytest.raises(PluginError, match="not a component hook"):
        plugins.collect("register_commands")


def test_broken_plugin_import_names_the_plugin(
    tmp_path: Path, fresh_manager: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    dist = tmp_path / "broken_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[safework]\nbroken = broken_plugin_mod\n")
    (tmp_path / "broken_plugin_mod.py").write_text("raise RuntimeError('boom at import')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv(plugins.ALLOW_ENV, raising=False)
    with pytest.raises(PluginError, match=r"plugin 'broken' .* failed to import: .*boom at import"):
        plugins.get_plugin_manager()


def test_every_hookspec_is_documented() -> None:
    specs = [name for name in dir(hookspecs) if name.startswith("register_")]
    assert set(specs) == {
        "register_commands",
        "register_datasets",
        "register_verifiers",
        "register_watermark_schemes",
        "register_attacks",
        "register_advantage_estimators",
    }
    for name in specs:
        doc = getattr(hookspecs, name).__doc__ or ""
        assert len(doc.split()) >= 8, f"hook {name} needs a docstring that says what it is for"


def test_plugins_command_table_and_version(fresh_manager: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(plugins.ALLOW_ENV, raising=False)
    runner = CliRunner()
    result = runner.invoke(cli, ["plugins", "--json"])
    assert result.exit_code == 0, result.output
    assert {row["name"] for row in json.loads(result.output)} >= {"core", "watermark"}
    version = runner.invoke(cli, ["--version"])
    assert "safework-core 0.1.0" in version.output and "safework-watermark 0.1.0" in version.output


def test_safework_errors_become_one_line_and_exit_code(
    fresh_manager: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(plugins.ALLOW_ENV, "bad name!")
    with pytest.raises(SystemExit) as exit_info:
        main(["plugins"])
    assert exit_info.value.code == ConfigError.exit_code
    assert "not a plugin name" in capsys.readouterr().err


def test_package_groups_list_registrations(with_sample: Path) -> None:
    from safework.core.cli import build_cli

    group = build_cli()
    assert isinstance(group, click.Group)
    result = CliRunner().invoke(group, ["watermark", "attacks", "--json"])
    assert result.exit_code == 0, result.output
    assert "sample-shout" in {row["name"] for row in json.loads(result.output)}


def test_cli_startup_imports_no_torch() -> None:
    """`safework --help` must stay instant: torch/transformers load inside the commands that need them."""
    code = (
        "import sys; from safework.core.cli import build_cli; build_cli(); "
        "heavy = sorted(m for m in ('torch', 'transformers', 'grpc') if m in sys.modules); print(heavy)"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stdout.strip() == "[]"
