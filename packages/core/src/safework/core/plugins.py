"""The plugin host: one pluggy manager, fed by the ``safework`` entry-point group.

Loading order: core's own built-ins first (always), then every entry point in the group, filtered by the
allow-list in ``$SAFEWORK_PLUGINS`` (comma-separated entry-point names; empty means "no entry-point
plugins"; unset means "all"). The built-in packages verifiers/rl/watermark are entry points too, so the
allow-list governs them exactly as it governs third parties.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from types import ModuleType
from typing import Any

import pluggy

from safework.core import hookspecs
from safework.core.errors import ConfigError, PluginError

ALLOW_ENV = "SAFEWORK_PLUGINS"
ENTRY_POINT_GROUP = hookspecs.PROJECT
CORE_BUILTINS = "safework.core.builtins"


@dataclass(frozen=True)
class PluginInfo:
    """What ``safework plugins`` shows for one loaded plugin."""

    name: str
    version: str
    source: str  # distribution and object reference, or "builtin"
    hooks: tuple[str, ...]


_manager: pluggy.PluginManager | None = None
_infos: dict[str, PluginInfo] = {}


def allow_list() -> set[str] | None:
    """The names ``$SAFEWORK_PLUGINS`` admits, or None when every plugin may load."""
    raw = os.environ.get(ALLOW_ENV)
    if raw is None:
        return None
    names = {part.strip() for part in raw.split(",") if part.strip()}
    for name in names:
        if not name.replace("-", "").replace("_", "").replace(".", "").isalnum():
            raise ConfigError(
                f"{ALLOW_ENV} contains {name!r}, which is not a plugin name; "
                "set it to a comma-separated list of entry-point names such as 'watermark,verifiers'."
            )
    return names


def _hooks_of(manager: pluggy.PluginManager, plugin: object) -> tuple[str, ...]:
    return tuple(sorted(caller.name for caller in manager.get_hookcallers(plugin) or []))


def _load_entry_point(manager: pluggy.PluginManager, ep: EntryPoint) -> None:
    try:
        plugin = ep.load()
    except Exception as exc:  # a broken third-party plugin must not take the CLI down silently
        raise PluginError(
            f"plugin {ep.name!r} ({ep.value}) failed to import: {exc!r}. "
            f"Fix or uninstall it, or leave it out with {ALLOW_ENV}=<names of the plugins to keep>."
        ) from exc
    if manager.has_plugin(ep.name):
        raise PluginError(f"two entry points are both named {ep.name!r}; uninstall one of them.")
    manager.register(plugin, name=ep.name)
    dist = ep.dist
    _infos[ep.name] = PluginInfo(
        name=ep.name,
        version=dist.version if dist is not None else "unknown",
        source=f"{dist.name if dist is not None else '?'}: {ep.value}",
        hooks=_hooks_of(manager, plugin),
    )


def get_plugin_manager() -> pluggy.PluginManager:
    """The process-wide manager, created and loaded on first use."""
    global _manager
    if _manager is None:
        manager = pluggy.PluginManager(hookspecs.PROJECT)
        manager.add_hookspecs(hookspecs)
        builtins: ModuleType = importlib.import_module(CORE_BUILTINS)
        manager.register(builtins, name="core")
        from safework.core import __version__

        _infos.clear()
        _infos["core"] = PluginInfo("core", __version__, "builtin", _hooks_of(manager, builtins))
        allowed = allow_list()
        for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            if allowed is None or ep.name in allowed:
                _load_entry_point(manager, ep)
        _manager = manager
    return _manager


def reset_plugin_manager() -> None:
    """Forget the loaded plugins so the next call re-reads entry points and the allow-list (tests use it)."""
    global _manager
    _manager = None
    _infos.clear()


def loaded_plugins() -> list[PluginInfo]:
    """Every loaded plugin with its version and where it came from, core first."""
    get_plugin_manager()
    return sorted(_infos.values(), key=lambda info: (info.name != "core", info.name))


def collect(hook_name: str) -> dict[str, Any]:
    """Call a ``register_*`` hook on every plugin and return ``{name: component}``.

    A name registered twice is an error naming both plugins, never a silent override.
    """
    manager = get_plugin_manager()
    hook = getattr(manager.hook, hook_name, None)
    if hook is None or not hook_name.startswith("register_") or hook_name == "register_commands":
        raise PluginError(f"{hook_name!r} is not a component hook; see safework.core.hookspecs for the list.")
    found: dict[str, Any] = {}
    owners: dict[str, str] = {}
    for impl in hook.get_hookimpls():  # registration order: core first, then entry points by name

        def register(name: str, component: Any, _owner: str = impl.plugin_name) -> None:
            if not isinstance(name, str) or not name:
                raise PluginError(
                    f"plugin {_owner!r} registered a component under an empty or non-string name."
                )
            if name in found:
                raise PluginError(
                    f"{hook_name}: {name!r} is registered by both {owners[name]!r} and {_owner!r}; "
                    f"uninstall one, or exclude one with {ALLOW_ENV}."
                )
            found[name] = component
            owners[name] = _owner

        impl.function(register=register)
    return found
