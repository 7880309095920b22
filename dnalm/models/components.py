"""Build the components a config names by ``_target_`` (head, pooling, optimiser, scheduler).

A component config is a Hydra ``_target_`` node, instantiated as a partial and then called with the runtime
arguments only the run knows (hidden size, number of outputs, parameters, total steps). Each component is
called with those of its runtime arguments that its signature names, so a pooling without weights needs no
``hidden_size`` parameter and a torch scheduler no ``num_warmup_steps``.

A short name in place of a node (``head.pooling=mean``, ``optim.scheduler=cosine``, a model config's
``pooling: max``) stands for the option file of that group: ``conf/<group>/<name>.yaml`` in the working
directory's ``conf/`` folder, else in dnalm's shipped tree.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch import nn

from dnalm.configs import config_dir
from dnalm.errors import ConfigError


def option_dirs(group: str) -> list[Path]:
    """Where the options of ``group`` live: the working directory's ``conf/<group>``, then the shipped one."""
    return [Path.cwd() / "conf" / group, config_dir() / group]


def group_option(group: str, name: str, key: str) -> dict[str, Any]:
    """The config ``<group>/<name>.yaml`` (without its defaults list), for a short name given as ``key=name``."""
    for folder in option_dirs(group):
        path = folder / f"{name}.yaml"
        if path.is_file():
            node = OmegaConf.load(path)
            container = OmegaConf.to_container(node, resolve=True)
            assert isinstance(container, dict)
            container.pop("defaults", None)
            return container
    names = sorted({p.stem for folder in option_dirs(group) if folder.is_dir() for p in folder.glob("*.yaml")})
    raise ConfigError(f"{key}={name!r} is unknown: there is no {group}/{name}.yaml; choose one of {names}, or "
                      f"add conf/{group}/{name}.yaml with a _target_ (docs/extending.md).")


def as_spec(spec: Any, group: str, key: str) -> dict[str, Any]:
    """A component config as a plain dict: a ``_target_`` node as it is, a short name as its group's option file."""
    if isinstance(spec, str):
        return group_option(group, spec, key)
    if isinstance(spec, DictConfig):
        spec = OmegaConf.to_container(spec, resolve=True)
    if not isinstance(spec, Mapping) or "_target_" not in spec:
        raise ConfigError(f"{key} must name an option of {group}/ (e.g. {key}=<name>) or be a config with a "
                          f"_target_; got {spec!r}.")
    return dict(spec)


def build(spec: Mapping[str, Any], key: str, ignore: tuple[str, ...] = (), **runtime: Any) -> Any:
    """Instantiate ``spec`` (less the dnalm keys in ``ignore``) as a partial, then call it with ``runtime``.

    Only the runtime arguments the callable's signature names are passed (all of them to one taking
    ``**kwargs``). An unimportable ``_target_`` or a wrong argument is a :class:`ConfigError` naming ``key``.
    """
    node = {k: v for k, v in spec.items() if k not in ignore}
    node.pop("_partial_", None)
    target = node.get("_target_")
    try:
        factory = instantiate(node, _partial_=True, _convert_="all")
    except InstantiationException as err:
        reason = str(err).strip().splitlines()[-1][:200]
        raise ConfigError(f"{key}._target_={target} cannot be built ({reason}); fix the class path or its "
                          f"arguments in the {key} config.") from err
    kwargs = accepted(factory, runtime)
    try:
        return factory(**kwargs)
    except TypeError as err:
        raise ConfigError(f"{key}._target_={target} rejected its arguments ({err}); it is called with "
                          f"{sorted(kwargs)} from the run and the other keys of its config.") from err


def accepted(factory: Callable[..., Any], runtime: Mapping[str, Any]) -> dict[str, Any]:
    """The entries of ``runtime`` that ``factory`` takes as keyword arguments."""
    target = getattr(factory, "func", factory)
    if isinstance(target, type) and issubclass(target, nn.Module) and target.__init__ is nn.Module.__init__:
        return {}  # a module without its own __init__: nn.Module's (*args, **kwargs) accepts nothing here
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):  # a builtin without a signature: give it everything
        return dict(runtime)
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return dict(runtime)
    return {k: v for k, v in runtime.items()
            if k in params and params[k].kind is not inspect.Parameter.POSITIONAL_ONLY}
