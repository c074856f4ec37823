"""One registry for every kind of component: attention, pos_enc, norm, ffn, model, task, data, ...

A component is a class or a factory function. Its config node (what `attention=<name>` selects on the
command line) is read from its signature: every keyword with a plain default (int, float, bool, str, None,
list, tuple; for a dataclass, also a field whose default_factory gives a dataclass of such values, which becomes a
nested mapping) becomes a key, plus `name`. Arguments without a default are context the caller supplies
(`dim`, `num_classes`, ...).
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import re
import sys
import traceback
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from attnkit.errors import AttnkitError, ConfigError, RegistryError
from attnkit.plugins import load_entry_points
from attnkit.ranges import check_value

T = TypeVar("T")

KINDS: tuple[str, ...] = (
    "attention",
    "mixer",
    "pos_enc",
    "norm",
    "ffn",
    "copy",
    "seg_decoder",
    "model",
    "task",
    "data",
)

_PLAIN = (int, float, bool, str, type(None))


@dataclass(frozen=True)
class Entry:
    """A registered component."""

    kind: str
    name: str
    obj: Callable[..., Any]
    source: str = ""
    description: str = field(default="")


_registry: dict[str, dict[str, Entry]] = {kind: {} for kind in KINDS}
_builtins_loaded = False
# (kind, name) -> (replaced source, replacing source): `override=True` replacements, said once and recorded in runs
replaced: dict[tuple[str, str], tuple[str, str]] = {}


def register(kind: str, name: str | None = None, *, override: bool = False) -> Callable[[T], T]:
    """Decorator: register a class or factory under `kind`/`name` (default: the object's name, lower-case)."""

    def decorator(obj: T) -> T:
        key = name or getattr(obj, "__name__", "").lower()
        if not key.isidentifier():
            raise RegistryError(f"cannot register {kind} {key!r}: a name must be a Python identifier")
        table = _registry.setdefault(kind, {})
        if key in table and table[key].obj is not obj:
            if not override:
                raise RegistryError(
                    f"{kind} {key!r} is already registered by {table[key].source}; "
                    f"pass override=True to replace it, or choose another name"
                )
            replaced[(kind, key)] = (table[key].source, _source(obj))
            print(
                f"note: {kind} {key!r} of {table[key].source} is replaced by {_source(obj)} (override=True)",
                file=sys.stderr,
                flush=True,
            )
        table[key] = Entry(kind, key, obj, _source(obj), _first_line(obj))
        return obj

    return decorator


def _source(obj: Any) -> str:
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', '?')}"


def _first_line(obj: Any) -> str:
    doc = inspect.getdoc(obj) or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


def _ensure_builtins() -> None:
    """Import the installed plugins, the built-in tasks among them, once, on first look-up. (The built-in components
    register when `attnkit.nn` is imported, which `import attnkit` does.)"""
    global _builtins_loaded
    if _builtins_loaded:
        return
    _builtins_loaded = True
    load_entry_points()


def kinds() -> list[str]:
    """Every kind with a table, built-in kinds first."""
    _ensure_builtins()
    return list(_registry)


def entries(kind: str) -> list[Entry]:
    """Registered entries of `kind`, sorted by name."""
    return [_table(kind)[n] for n in available(kind)]


def _table(kind: str) -> dict[str, Entry]:
    _ensure_builtins()
    if kind not in _registry:
        raise RegistryError(f"unknown kind {kind!r}{did_you_mean(kind, _registry)}; kinds: {', '.join(_registry)}")
    return _registry[kind]


def available(kind: str) -> list[str]:
    """Sorted names registered under `kind`."""
    return sorted(_table(kind))


def get(kind: str, name: str) -> Callable[..., Any]:
    """The registered class or factory."""
    return entry(kind, name).obj


def entry(kind: str, name: str) -> Entry:
    table = _table(kind)
    if name not in table:
        choices = ", ".join(sorted(table)) or "(none registered)"
        raise RegistryError(
            f"unknown {kind} {name!r}{did_you_mean(name, table)}; choices: {choices} "
            f"(a plugin's components need plugins=[path/to/plugin.py])"
        )
    return table[name]


def did_you_mean(name: str, options: Mapping[str, Any] | list[str]) -> str:
    close = difflib.get_close_matches(str(name), list(options), n=3, cutoff=0.6)
    return f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""


def build(kind: str, name: str, /, **kwargs: Any) -> Any:
    """An instance of the registered component, with keyword arguments checked against its signature."""
    obj = get(kind, name)
    _check_kwargs(kind, name, obj, kwargs)
    return construct(kind, name, obj, kwargs)


def build_spec(kind: str, spec: Any, /, **context: Any) -> Any:
    """Build from a spec: a name, a mapping with `name` and arguments, or a built object (returned as is).

    `context` holds arguments the caller knows (`dim`, `heads`, ...); each is passed only if the component's
    signature accepts it, so a component takes just the context it needs.
    """
    if spec is None:
        return None
    if isinstance(spec, str):
        name, args = spec, {}
    elif isinstance(spec, Mapping):
        args = dict(spec)
        if "name" not in args:
            raise ConfigError(f"{kind} spec {dict(spec)} has no 'name'; give one of: {', '.join(available(kind))}")
        name = args.pop("name")
    else:
        return spec
    obj = get(kind, name)
    accepted = _parameters(obj)
    takes_any = any(p.kind is p.VAR_KEYWORD for p in accepted.values())
    for key, value in context.items():
        if args.get(key) is None and (takes_any or key in accepted):  # None: let the caller decide
            args[key] = value
    _check_kwargs(kind, name, obj, args)
    return construct(kind, name, obj, args, context=tuple(context))


def construct(
    kind: str, name: str, obj: Callable[..., Any], args: Mapping[str, Any], context: tuple[str, ...] = ()
) -> Any:
    """`obj(**args)`, its failure said in one line: the component, where it is defined (file:line) and the problem.

    A required argument that nothing gives, an argument the constructor does not take, or any exception it raises
    (an `AttnkitError` is already such a line, and passes as it is) — built-ins and plugins alike. `context`: the
    arguments the model offers (`dim`, `heads`, ...), named in the advice.
    """
    params = _parameters(obj)
    missing = [n for n, p in params.items() if p.default is p.empty and p.kind is not p.VAR_KEYWORD and n not in args]
    if missing:
        keys = ", ".join(f"{key}=" for key in missing)
        raise ConfigError(
            f"{kind} {name!r} ({location(obj)}) needs {keys} but nothing gives it; give each a default in its "
            f"__init__ (it becomes the option {kind}.{missing[0]}=...)"
        )
    try:
        return obj(**args)
    except AttnkitError:
        raise
    except Exception as exc:
        unexpected = re.search(r"unexpected keyword argument '(\w+)'", str(exc)) if isinstance(exc, TypeError) else None
        if unexpected and unexpected.group(1) in args:
            key = unexpected.group(1)
            offered = f" (the model offers {', '.join(f'{c}=' for c in context)}; it passes those __init__ names)"
            raise ConfigError(
                f"{kind} {name!r} ({location(obj)}) does not accept {key}={args[key]!r}; its __init__ must name each "
                f"argument it takes{offered if context else ''}, or take none"
            ) from exc
        message = " ".join(str(exc).split()) or "(no message)"
        message = message if len(message) <= 300 else message[:297] + "..."
        raise ConfigError(
            f"{kind} {name!r} ({location(obj, exc)}) failed when built: {type(exc).__name__}: {message}"
        ) from exc


def location(obj: Any, exc: BaseException | None = None) -> str:
    """Where `obj` is defined, as `file.py:line` (a class: its own `__init__`, or its `class` line); with `exc`, the
    line of that file where it raised (when it did)."""
    target = inspect.unwrap(obj)
    if inspect.isclass(target) and inspect.isfunction(vars(target).get("__init__")):
        target = vars(target)["__init__"]
    try:
        path = inspect.getsourcefile(target) or ""
        lines, line = inspect.getsourcelines(target)
    except (OSError, TypeError):
        return getattr(obj, "__module__", "?")
    line += next((i for i, text in enumerate(lines) if text.lstrip().startswith(("class ", "def "))), 0)
    if exc is not None:
        frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == path]
        line = frames[-1].lineno if frames else line
    return f"{path.rsplit('/', 1)[-1]}:{line}"


def _parameters(obj: Any) -> dict[str, inspect.Parameter]:
    """The keyword parameters of a component's constructor or factory. A class that defines no `__init__` below
    torch's `nn.Module` takes none (Module's `*args, **kwargs` accept nothing)."""
    init = getattr(obj, "__init__", None) if inspect.isclass(obj) else None
    if getattr(init, "__qualname__", "") == "Module.__init__" and getattr(init, "__module__", "").startswith("torch."):
        return {}
    try:
        params = inspect.signature(obj).parameters
    except (TypeError, ValueError):
        return {}
    return {n: p for n, p in params.items() if p.kind not in (p.POSITIONAL_ONLY, p.VAR_POSITIONAL)}


def _check_kwargs(kind: str, name: str, obj: Any, kwargs: Mapping[str, Any]) -> None:
    """Every keyword against the component's signature: unknown options, and values that do not fit the annotation
    (type, `Range`, `Literal`; see attnkit.ranges) are refused in one line."""
    params = _parameters(obj)
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return
    hints = type_hints(obj)
    for key, value in kwargs.items():
        if key not in params:
            options = ", ".join(params) or "(none)"
            raise ConfigError(
                f"{kind} {name!r} has no option {key!r}{did_you_mean(key, list(params))}; options: {options}"
            )
        if key in hints:
            check_value(f"{kind}.{key}", value, hints[key])


def type_hints(obj: Any) -> dict[str, Any]:
    """The annotations of a component's arguments (a class's `__init__`, a dataclass's fields), with `Annotated`
    ranges and descriptions kept."""
    # a dataclass's fields by class (each resolved in the module that declares it: a subclass elsewhere inherits)
    target = obj.__init__ if inspect.isclass(obj) and not dataclasses.is_dataclass(obj) else obj
    try:
        return typing.get_type_hints(target, include_extras=True)
    except Exception:  # unresolvable annotations: skip type checks rather than refuse the component
        return {}


def defaults(kind: str, name: str) -> dict[str, Any]:
    """The config node of a component: `name` plus every argument that has a plain default."""
    obj = get(kind, name)
    node: dict[str, Any] = {"name": name}
    factories = {f.name: f.default_factory for f in dataclasses.fields(obj)} if dataclasses.is_dataclass(obj) else {}
    for key, param in _parameters(obj).items():
        if param.kind is param.VAR_KEYWORD or param.default is inspect.Parameter.empty:
            continue
        value = param.default
        if factories.get(key, dataclasses.MISSING) is not dataclasses.MISSING:  # a dataclass field's default_factory
            value = factories[key]()
        if dataclasses.is_dataclass(value) and not isinstance(value, type):  # nested options: a mapping node
            value = dataclasses.asdict(value)
        if isinstance(value, tuple):
            value = list(value)
        if _is_plain(value):
            node[key] = value
    return node


def _is_plain(value: Any) -> bool:
    """A value a config node can hold: a plain scalar, or a list or mapping of plain values."""
    if isinstance(value, _PLAIN):
        return True
    if isinstance(value, list):
        return all(isinstance(v, _PLAIN) for v in value)
    if isinstance(value, Mapping):
        return all(isinstance(k, str) and _is_plain(v) for k, v in value.items())
    return False
