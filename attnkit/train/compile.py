"""`compile=`: `torch.compile` for the model of every task, applied in one place (`Task.make_module`).

The config key takes `false` (the default), `true` (torch.compile's defaults) or a mapping of torch.compile's keyword
arguments, e.g. `compile={mode:max-autotune-no-cudagraphs,dynamic:false}`.

The model is compiled in place with `nn.Module.compile`: its `state_dict` keys do not change, so checkpoints, the
moving average of the weights, `resume=` and `mode=test` read and write the same files with or without it. The moving
average (a copy of the model, made before compiling) is compiled too, since validation and test run it. Only the
model's `forward` is compiled; its other methods (cached decoding and beam search, attention maps) run eagerly.

An attention kernel that cannot be compiled says so with the class-level capability flag `supports_compile = False`
(True on the base class); the option refuses a model that uses one, in one line, before anything trains.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from attnkit.errors import ConfigError
from attnkit.nn.attention.base import Attention
from attnkit.nn.capabilities import component_name

EXAMPLE = "compile=true, compile=false or compile={mode:max-autotune-no-cudagraphs,dynamic:false}"


def compile_kwargs(value: Any) -> dict[str, Any] | None:
    """The keyword arguments of `torch.compile` that `compile=<value>` asks for; None when it is off. A value that
    torch.compile would refuse (or misread) is refused here, in one line naming the fix."""
    if value is None or value is False:
        return None
    if value is True:
        return {}
    if isinstance(value, str):
        modes = ", ".join(torch._inductor.list_mode_options())
        raise ConfigError(
            f"compile={value!r} is not a choice; give {EXAMPLE} (a mode goes inside the mapping: {modes})"
        )
    if not isinstance(value, Mapping):
        raise ConfigError(f"compile={value!r} is not a choice; give {EXAMPLE}")
    kwargs = dict(value)
    accepted = [name for name in inspect.signature(torch.compile).parameters if name != "model"]
    for key in kwargs:
        if key not in accepted:
            raise ConfigError(
                f"compile.{key} is not an argument of torch.compile; its arguments: {', '.join(accepted)}"
            )
    mode = kwargs.get("mode")
    if mode is not None and mode not in torch._inductor.list_mode_options():
        modes = ", ".join(torch._inductor.list_mode_options())
        raise ConfigError(f"compile.mode={mode!r} is not a torch.compile mode; choose one of {modes}")
    if mode is not None and kwargs.get("options") is not None:
        raise ConfigError("compile.mode and compile.options cannot both be set (torch.compile takes one); drop one")
    for key in ("fullgraph", "disable"):
        if key in kwargs and not isinstance(kwargs[key], bool):
            raise ConfigError(f"compile.{key}={kwargs[key]!r} must be true or false")
    if kwargs.get("dynamic") not in (None, True, False):
        raise ConfigError(f"compile.dynamic={kwargs['dynamic']!r} must be true, false or null (automatic)")
    backend = kwargs.get("backend")
    if backend is not None:
        backends = torch._dynamo.list_backends(exclude_tags=())
        if backend not in backends:
            raise ConfigError(f"compile.backend={backend!r} is not a torch.compile backend; choose one of {backends}")
    if kwargs.get("options") is not None and not isinstance(kwargs["options"], Mapping):
        raise ConfigError(f"compile.options={kwargs['options']!r} must be a mapping of inductor options")
    if "options" in kwargs and kwargs["options"] is not None:
        kwargs["options"] = dict(kwargs["options"])
    return kwargs


def check_compilable(model: nn.Module) -> None:
    """Refuse a model with an attention kernel whose class sets `supports_compile = False`."""
    for name, module in model.named_modules():
        if isinstance(module, Attention) and not module.supports_compile:
            kernel = component_name(module, "attention")
            raise ConfigError(
                f"compile=true cannot compile attention={kernel} (its class sets supports_compile=False: "
                f"torch.compile cannot trace it; used at {name or 'the model'}); set compile=false or choose "
                f"another attention"
            )


def compile_module(module: Any, value: Any) -> None:
    """Compile `module.model` (and the moving average `module.ema.module`, when there is one) in place, as
    `compile=<value>` asks; nothing when it is off."""
    kwargs = compile_kwargs(value)
    if kwargs is None:
        return
    check_compilable(module.model)
    # a CUDA build of torch on a machine without GPU says "No CUDA runtime is found" when inductor first compiles
    logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
    module.model.compile(**kwargs)
    ema = getattr(module, "ema", None)
    if ema is not None:
        ema.module.compile(**kwargs)
