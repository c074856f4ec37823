"""The component registry: register / get / build / available / defaults / build_spec and their errors."""

from __future__ import annotations

import ast
import dataclasses
import graphlib
import importlib.util
import inspect
from pathlib import Path
from typing import Literal

import pytest
from checks import one_line, restored_registry
from torch import nn

import attnkit
from attnkit import ConfigError, RegistryError, registry
from attnkit.nn import Attention, SoftmaxAttention, ViT


@pytest.fixture
def scratch():
    """Let a test register freely: every table is restored afterwards (new names and new kinds removed)."""
    with restored_registry():
        yield


RELU = nn.ReLU()


class Widget:
    """A test component."""

    def __init__(
        self,
        dim: int,
        size: int = 3,
        scale: float = 1.0,
        flag: bool = False,
        label: str | None = None,
        mode: Literal["a", "b"] = "a",
        shape: tuple[int, int] = (2, 2),
        act: nn.Module = RELU,
    ) -> None:
        self.dim, self.size, self.scale, self.flag, self.label = dim, size, scale, flag, label
        self.mode, self.shape, self.act = mode, shape, act


# --- register / get / build / available ---------------------------------------------------------------------


def test_builtin_kinds_and_components() -> None:
    kinds = registry.kinds()
    for kind in registry.KINDS:
        assert kind in kinds
    assert {"softmax", "eager"} <= set(attnkit.available("attention"))
    assert {"sinusoidal", "learned"} <= set(attnkit.available("pos_enc"))
    assert "vit" in attnkit.available("model")
    for kind in registry.KINDS:
        names = attnkit.available(kind)
        assert names == sorted(names)
        assert [e.name for e in registry.entries(kind)] == names


def test_register_get_build_available(scratch) -> None:
    attnkit.register("widget", "gadget")(Widget)
    assert attnkit.available("widget") == ["gadget"]
    assert attnkit.get("widget", "gadget") is Widget
    built = attnkit.build("widget", "gadget", dim=4, size=5)
    assert isinstance(built, Widget) and (built.dim, built.size) == (4, 5)
    entry = registry.entry("widget", "gadget")
    assert entry.description == "A test component."
    assert entry.source.endswith("Widget")


def test_register_returns_object_and_defaults_to_lowercase_name(scratch) -> None:
    @attnkit.register("norm")
    class MyNorm(nn.Identity):
        pass

    assert attnkit.get("norm", "mynorm") is MyNorm
    assert "mynorm" in attnkit.available("norm")


def test_register_factory_function(scratch) -> None:
    @attnkit.register("ffn", "plain_linear")
    def plain_linear(dim: int, bias: bool = True) -> nn.Module:
        return nn.Linear(dim, dim, bias=bias)

    layer = attnkit.build("ffn", "plain_linear", dim=3, bias=False)
    assert isinstance(layer, nn.Linear) and layer.bias is None


def test_register_rejects_bad_name(scratch) -> None:
    with pytest.raises(RegistryError) as exc:
        attnkit.register("attention", "not a name")(Widget)
    assert "identifier" in one_line(exc)


def test_unknown_name_did_you_mean() -> None:
    with pytest.raises(RegistryError) as exc:
        attnkit.get("attention", "sofmax")
    message = one_line(exc)
    assert "attention" in message
    assert "did you mean 'softmax'" in message
    for name in attnkit.available("attention"):
        assert name in message
    assert isinstance(exc.value, KeyError)  # callers may catch a KeyError
    assert not message.startswith(("'", '"'))  # not quoted like a plain KeyError


@pytest.mark.parametrize("call", [attnkit.get, attnkit.build])
def test_unknown_name_from_get_and_build(call) -> None:
    with pytest.raises(RegistryError, match="did you mean 'learned'"):
        call("pos_enc", "learnd")


def test_unknown_name_without_close_match_lists_choices() -> None:
    with pytest.raises(RegistryError) as exc:
        attnkit.get("pos_enc", "zzzzzz")
    message = one_line(exc)
    assert "did you mean" not in message
    assert all(name in message for name in attnkit.available("pos_enc"))


def test_unknown_kind_did_you_mean() -> None:
    with pytest.raises(RegistryError) as exc:
        attnkit.available("atention")
    message = one_line(exc)
    assert "did you mean 'attention'" in message


def test_register_twice_raises_unless_override(scratch, capsys) -> None:
    class First:
        pass

    class Second:
        pass

    attnkit.register("attention", "twice")(First)
    with pytest.raises(RegistryError) as exc:
        attnkit.register("attention", "twice")(Second)
    message = one_line(exc)
    assert "twice" in message and "override=True" in message
    assert attnkit.get("attention", "twice") is First
    attnkit.register("attention", "twice", override=True)(Second)
    assert attnkit.get("attention", "twice") is Second
    said = capsys.readouterr().err.strip().splitlines()
    assert said == [
        f"note: attention 'twice' of {__name__}.{First.__qualname__} is replaced by "
        f"{__name__}.{Second.__qualname__} (override=True)"
    ]  # said once, and recorded for the run
    assert registry.replaced[("attention", "twice")][1].endswith("Second")


def test_register_same_object_again_is_harmless(scratch) -> None:
    attnkit.register("attention", "again")(Widget)
    attnkit.register("attention", "again")(Widget)  # e.g. a module imported twice
    assert attnkit.get("attention", "again") is Widget


def test_cannot_shadow_builtin_without_override(scratch) -> None:
    with pytest.raises(RegistryError, match="already registered"):
        attnkit.register("attention", "softmax")(Widget)
    assert attnkit.get("attention", "softmax") is SoftmaxAttention


# --- build: option names and types --------------------------------------------------------------------------

VIT_ARGS = {
    "image_size": 8,
    "in_channels": 3,
    "num_classes": 2,
    "patch_size": 4,
    "dim": 8,
    "depth": 1,
    "heads": 2,
}


def test_build_unknown_option_did_you_mean() -> None:
    with pytest.raises(ConfigError) as exc:
        attnkit.build("model", "vit", **VIT_ARGS, dpeth=2)
    message = one_line(exc)
    assert "'dpeth'" in message and "did you mean 'depth'" in message and "vit" in message


@pytest.mark.parametrize(
    ("key", "value", "needle"),
    [
        ("depth", "x", "an int"),
        ("depth", 2.5, "an int"),
        ("depth", True, "an int"),
        ("dim", None, "an int"),
        ("dropout", "big", "a number"),
        ("pool", "max", "'cls', 'mean'"),
        ("kv_heads", "one", "an int >= 1 or null"),
    ],
)
def test_build_wrong_type(key, value, needle) -> None:
    with pytest.raises(ConfigError) as exc:
        attnkit.build("model", "vit", **{**VIT_ARGS, key: value})
    message = one_line(exc)
    assert key in message and needle in message


def test_build_accepts_compatible_types(scratch) -> None:
    attnkit.register("widget", "gadget")(Widget)
    w = attnkit.build("widget", "gadget", dim=2, scale=2, label=None, mode="b", shape=[3, 4], act=nn.GELU())
    assert (w.scale, w.mode, w.shape) == (2, "b", [3, 4])
    with pytest.raises(ConfigError, match="flag"):
        attnkit.build("widget", "gadget", dim=2, flag=1)
    with pytest.raises(ConfigError, match="shape"):
        attnkit.build("widget", "gadget", dim=2, shape=7)


def test_build_passes_anything_to_var_keyword(scratch) -> None:
    @attnkit.register("widget", "loose")
    def loose(**kwargs):
        return kwargs

    assert attnkit.build("widget", "loose", anything=1) == {"anything": 1}


def test_build_works_with_omegaconf_values() -> None:
    omegaconf = pytest.importorskip("omegaconf")
    cfg = omegaconf.OmegaConf.create({**VIT_ARGS, "image_size": [8, 8]})
    model = attnkit.build("model", "vit", **cfg)
    assert model.patch_embed.grid == (2, 2)


# --- defaults: the config node read from the signature ------------------------------------------------------


def test_defaults_node_from_signature(scratch) -> None:
    attnkit.register("widget", "gadget")(Widget)
    node = registry.defaults("widget", "gadget")
    # `dim` has no default (context); `act` is not a plain value; tuples become lists
    assert node == {
        "name": "gadget",
        "size": 3,
        "scale": 1.0,
        "flag": False,
        "label": None,
        "mode": "a",
        "shape": [2, 2],
    }


def test_defaults_of_builtins() -> None:
    assert registry.defaults("attention", "softmax") == {
        "name": "softmax",
        "dropout": 0.0,
        "scale": None,
        "cpu_eager_max_len": None,
    }
    node = registry.defaults("model", "vit")
    params = inspect.signature(ViT).parameters
    assert node["name"] == "vit"
    assert node["depth"] == params["depth"].default and node["pool"] == params["pool"].default
    assert "image_size" not in node and "num_classes" not in node  # context, no default


@pytest.mark.parametrize(("kind", "name"), [(k, n) for k in registry.KINDS for n in attnkit.available(k)])
def test_defaults_of_every_component_are_plain(kind, name) -> None:
    node = registry.defaults(kind, name)
    assert node["name"] == name

    def plain(value) -> bool:
        if isinstance(value, dict):  # nested options (a dataclass field with a dataclass default)
            return all(isinstance(k, str) and plain(v) for k, v in value.items())
        return value is None or isinstance(value, (int, float, bool, str, list))

    assert all(plain(value) for value in node.values()), node


def test_dataclass_components_give_nested_defaults() -> None:
    @dataclasses.dataclass
    class Options:
        size: int = 3
        kind: str = "a"

    @dataclasses.dataclass
    class Thing:
        rate: float = 0.5
        options: Options = dataclasses.field(default_factory=lambda: Options(size=7))
        tags: list = dataclasses.field(default_factory=list)

    with restored_registry():
        attnkit.register("ffn", "thing")(Thing)
        assert registry.defaults("ffn", "thing") == {
            "name": "thing",
            "rate": 0.5,
            "options": {"size": 7, "kind": "a"},
            "tags": [],
        }


# --- build_spec ---------------------------------------------------------------------------------------------


@pytest.fixture
def sized(scratch):
    @attnkit.register("widget", "sized")
    def sized(dim: int, scale: float = 1.0) -> tuple[int, float]:
        return dim, scale

    @attnkit.register("widget", "anything")
    def anything(scale: float = 1.0, **context) -> dict:
        return {"scale": scale, **context}


def test_build_spec_from_name(sized) -> None:
    assert attnkit.build_spec("widget", "sized", dim=4) == (4, 1.0)


def test_build_spec_from_mapping(sized) -> None:
    spec = {"name": "sized", "scale": 2.0}
    assert attnkit.build_spec("widget", spec, dim=4) == (4, 2.0)
    assert spec == {"name": "sized", "scale": 2.0}  # not modified


def test_build_spec_from_omegaconf(sized) -> None:
    omegaconf = pytest.importorskip("omegaconf")
    spec = omegaconf.OmegaConf.create({"name": "sized", "scale": 0.5})
    assert attnkit.build_spec("widget", spec, dim=2) == (2, 0.5)


def test_build_spec_instance_and_none_pass_through() -> None:
    module = nn.Identity()
    assert attnkit.build_spec("attention", module, dim=4) is module
    assert attnkit.build_spec("attention", None, dim=4) is None


def test_build_spec_context_only_where_accepted(sized) -> None:
    # `heads` and `max_len` are not parameters of `sized`: they are dropped, not an error
    assert attnkit.build_spec("widget", "sized", dim=3, heads=2, max_len=9) == (3, 1.0)
    # a **kwargs component receives all the context
    assert attnkit.build_spec("widget", "anything", dim=3, heads=2) == {"scale": 1.0, "dim": 3, "heads": 2}


def test_build_spec_spec_args_win_over_context(sized) -> None:
    assert attnkit.build_spec("widget", {"name": "sized", "dim": 7}, dim=3) == (7, 1.0)


def test_build_spec_errors(sized) -> None:
    with pytest.raises(ConfigError) as exc:
        attnkit.build_spec("widget", {"scale": 1.0}, dim=3)
    assert "name" in one_line(exc)
    with pytest.raises(ConfigError) as exc:
        attnkit.build_spec("widget", {"name": "sized", "scael": 1.0}, dim=3)
    assert "did you mean 'scale'" in one_line(exc)
    with pytest.raises(ConfigError) as exc:
        attnkit.build_spec("widget", {"name": "sized", "scale": "big"}, dim=3)
    assert "scale" in one_line(exc)
    with pytest.raises(RegistryError, match="did you mean 'sized'"):
        attnkit.build_spec("widget", "size", dim=3)


@pytest.mark.parametrize("name", attnkit.available("attention"))
def test_build_spec_every_attention_from_defaults(name) -> None:
    spec = registry.defaults("attention", name)
    kernel = attnkit.build_spec("attention", spec, dim=16, heads=2, head_dim=8, max_len=32)
    assert isinstance(kernel, Attention)


# --- the import graph -----------------------------------------------------------------------------------------


def _imported(path: Path, module: str, known: set[str]) -> set[str]:
    """attnkit's modules that `module` (the file `path`) imports anywhere, function bodies included and
    TYPE_CHECKING blocks left out; `from package import name` counts as package.name when that is a module."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue
            if isinstance(child, ast.Import):
                found.update(alias.name for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = importlib.util.resolve_name("." * child.level + (child.module or ""), package)
                found.update(f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in child.names)
            visit(child)

    visit(ast.parse(path.read_text()))
    return (found & known) - {module}


def test_attnkit_modules_import_one_another_without_a_cycle() -> None:
    """The registry imports no component (the components import it, and `import attnkit` imports them), so no
    circle of imports closes through it, nor anywhere else in the library."""
    root = Path(attnkit.__file__).parent
    files = {}
    for path in root.rglob("*.py"):
        parts = path.relative_to(root.parent).with_suffix("").parts
        if parts[1] in ("tasks", "conf"):  # the task and config folders, linked in: not the library
            continue
        files[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    graph = {module: _imported(path, module, set(files)) for module, path in files.items()}
    assert not {m for m in graph["attnkit.registry"] if m.startswith("attnkit.nn")}
    list(graphlib.TopologicalSorter(graph).static_order())  # CycleError names the modules of a circle


# --- a constructor that fails -------------------------------------------------------------------------------


def test_a_failing_constructor_is_one_line_naming_the_component_and_where(scratch) -> None:
    """The same for every component, built-in or plugin: an AttnkitError passes as it is (it is already one line),
    any other exception is said with the component's name, its file:line and what it raised."""

    def halves(dim: int, parts: int = 2):
        return dim // (parts - 2)

    attnkit.register("ffn", "halves")(halves)
    line = inspect.getsourcelines(halves)[1] + 1
    with pytest.raises(ConfigError) as exc:
        attnkit.build_spec("ffn", {"name": "halves", "parts": 2}, dim=8)
    assert one_line(exc) == (
        f"ffn 'halves' (test_registry.py:{line}) failed when built: ZeroDivisionError: integer division or modulo by "
        f"zero"
    )
    assert attnkit.build_spec("ffn", {"name": "halves", "parts": 4}, dim=8) == 4
    with pytest.raises(ConfigError) as exc:
        attnkit.build("ffn", "halves")
    assert one_line(exc).startswith(f"ffn 'halves' (test_registry.py:{line - 1}) needs dim= but nothing gives it")
    with pytest.raises(ConfigError, match=r"^heads=3 does not divide the width model.dim=16"):
        attnkit.build("model", "vit", image_size=8, in_channels=1, num_classes=2, dim=16, heads=3)
