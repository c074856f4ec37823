"""Load plugins: Python files, importable modules, and installed packages' `attnkit.plugins` entry points.

A plugin is ordinary Python that calls `attnkit.register(...)` when imported.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
import traceback
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType

from attnkit.errors import PluginError

ENTRY_POINT_GROUP = "attnkit.plugins"
_loaded: dict[str, ModuleType] = {}


def load_plugins(*specs: str | Path, base: str | Path | None = None) -> list[ModuleType]:
    """Import each spec: a path to a .py file (relative to `base`, default the working directory) or a module name."""
    return [_load_one(spec, Path(base) if base else Path.cwd()) for spec in specs]


def _load_one(spec: str | Path, base: Path) -> ModuleType:
    text = str(spec).strip()
    if not text:
        raise PluginError(
            "empty plugin name; give a .py file or an importable module, e.g. plugins=[./my_attention.py]"
        )
    looks_like_file = text.endswith(".py") or "/" in text or "\\" in text or (base / text).is_file()
    if looks_like_file:
        return _load_file((base / Path(text).expanduser()).resolve())
    return _import_module(text)


def _load_file(path: Path) -> ModuleType:
    key = str(path)
    if key in _loaded:
        return _loaded[key]
    if not path.is_file():
        raise PluginError(f"plugin file {str(path)!r} does not exist; check the path in plugins=[...]")
    if path.suffix != ".py":
        raise PluginError(f"plugin file {str(path)!r} is not a .py file; give a Python file or a module name")
    digest = hashlib.sha1(key.encode()).hexdigest()[:8]
    module_name = f"attnkit_plugin_{path.stem}_{digest}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except (Exception, SystemExit) as exc:
        sys.modules.pop(module_name, None)
        raise PluginError(f"plugin {str(path)!r} failed to import: {raised(exc, str(path))}") from exc
    _loaded[key] = module
    return module


def _import_module(name: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name and name.startswith(exc.name):
            raise PluginError(
                f"plugin module {name!r} is not installed; pip install it, or give a file path such as ./{name}.py"
            ) from exc
        raise PluginError(f"plugin module {name!r} failed to import: ModuleNotFoundError: {exc}") from exc
    except (Exception, SystemExit) as exc:
        raise PluginError(f"plugin module {name!r} failed to import: {raised(exc)}") from exc


def load_entry_points() -> list[str]:
    """Import every installed package that declares the `attnkit.plugins` entry-point group; return their names."""
    names = []
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            ep.load()
        except (Exception, SystemExit) as exc:
            raise PluginError(
                f"installed plugin {ep.name!r} ({ep.value}) failed to import: {raised(exc)}; fix or uninstall that "
                f"package"
            ) from exc
        names.append(ep.name)
    return names


def raised(exc: BaseException, path: str | None = None) -> str:
    """What an import raised, on one line, with where: `RuntimeError: broken (at broken.py:3)`. `path`: the file
    imported (its last frame in the traceback is the line; else the innermost frame's); a `SystemExit` is said as
    the `sys.exit` call it was, which a plugin must not make."""
    frames = traceback.extract_tb(exc.__traceback__)
    if isinstance(exc, SyntaxError) and exc.filename and exc.lineno:
        at = f"{Path(exc.filename).name}:{exc.lineno}"
    else:
        mine = [f for f in frames if path is not None and f.filename == path] or frames[-1:]
        at = f"{Path(mine[-1].filename).name}:{mine[-1].lineno}" if mine else ""
    where = f" (at {at})" if at else ""
    if isinstance(exc, SystemExit):
        return f"it called sys.exit({exc.code!r}){where}; a plugin must only define and register, never exit"
    message = " ".join(str(exc.msg if isinstance(exc, SyntaxError) else exc).split())
    message = message if len(message) <= 300 else message[:297] + "..."
    return f"{type(exc).__name__}: {message}{where}" if message else f"{type(exc).__name__}{where}"
