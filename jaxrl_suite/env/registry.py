"""Environment registry: ids -> constructors, looked up lazily.

The core imports nothing from ``jaxrl_suite.envs`` at import time (DESIGN.md section 1): the
built-in ids are registered the first time the registry is read, by importing
``jaxrl_suite.envs``. Entry points are ``"module:attribute"`` strings, so registering an id
imports nothing heavy (Brax, MuJoCo) until that env is made.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import inspect
import os
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from jaxrl_suite.env.environment import Environment

__all__ = ["EnvSpec", "RenderRequest", "register", "registered_envs", "renderable_envs", "make",
           "env_spec", "debug_mode"]


@dataclasses.dataclass(frozen=True)
class RenderRequest:
    """What ``jaxrl render ENV OUTPUT`` asks of an env's render hook. The hook writes
    ``output`` (a ``.png`` picture, or a ``.gif`` rollout when ``rollout_steps`` is set) and
    returns a one-line description of what it drew.

    Attributes:
      env_id: the registered id being drawn.
      output: the file to write.
      level: a named level to draw (``None``: generated ones).
      generator: the level generator to sample with (the env's own names).
      size: the grid size of generated levels (``None``: the env's default).
      seed: seed of sampled levels and rollouts.
      num_levels: more than 1 draws a grid of generated levels.
      rollout_steps: steps of a random-policy rollout (a GIF), or ``None``.
      tile_size: pixels per cell (``None``: the hook's default).
    """

    env_id: str
    output: str
    level: str | None = None
    generator: str | None = None
    size: int | None = None
    seed: int = 0
    num_levels: int = 1
    rollout_steps: int | None = None
    tile_size: int | None = None


@dataclasses.dataclass(frozen=True)
class EnvSpec:
    """How to build one registered env: ``entry_point(**kwargs)`` returns an ``Environment``."""

    id: str
    entry_point: str | Callable[..., Environment]
    kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)
    description: str = ""
    render: str | Callable[[RenderRequest], str] | None = None
    """The env's render hook for ``jaxrl render`` (``"module:function"`` or a callable
    ``RenderRequest -> description``), or None: the CLI dispatches through it, knowing no env."""

    def load(self) -> Callable[..., Environment]:
        return _resolve(self.entry_point)

    def load_render(self) -> Callable[[RenderRequest], str] | None:
        return None if self.render is None else _resolve(self.render)


def _resolve(entry_point: str | Callable[..., Any]) -> Callable[..., Any]:
    if callable(entry_point):
        return entry_point
    module_name, _, attribute = entry_point.partition(":")
    return getattr(importlib.import_module(module_name), attribute)


_REGISTRY: dict[str, EnvSpec] = {}
_BUILTINS_LOADED = False


def _load_builtin_envs() -> None:
    global _BUILTINS_LOADED
    if not _BUILTINS_LOADED:
        _BUILTINS_LOADED = True
        importlib.import_module("jaxrl_suite.envs")


def register(
    env_id: str,
    entry_point: str | Callable[..., Environment],
    *,
    kwargs: dict[str, Any] | None = None,
    description: str = "",
    overwrite: bool = False,
    render: str | Callable[[RenderRequest], str] | None = None,
) -> None:
    """Register ``env_id`` so ``make(env_id)`` builds ``entry_point(**kwargs)``.

    ``entry_point`` (and ``render``, the optional hook ``jaxrl render`` calls with a
    ``RenderRequest``) is a callable or a ``"package.module:attribute"`` string (imported
    lazily). Re-registering an id raises unless ``overwrite=True``.
    """
    if not isinstance(env_id, str) or not env_id.strip():
        raise ValueError(f"An env id must be a non-empty string; got {env_id!r}.")
    if not (callable(entry_point) or (isinstance(entry_point, str) and ":" in entry_point)):
        raise TypeError(
            f"entry_point for {env_id!r} must be a callable or a 'module:attribute' string; "
            f"got {entry_point!r}."
        )
    if env_id in _REGISTRY and not overwrite:
        raise ValueError(f"Env id {env_id!r} is already registered; pass overwrite=True.")
    if render is not None and not (callable(render) or (isinstance(render, str)
                                                         and ":" in render)):
        raise TypeError(f"render for {env_id!r} must be a callable or a 'module:attribute' "
                        f"string; got {render!r}.")
    _REGISTRY[env_id] = EnvSpec(env_id, entry_point, dict(kwargs or {}), description, render)


def registered_envs() -> list[str]:
    """All registered env ids, sorted."""
    _load_builtin_envs()
    return sorted(_REGISTRY)


def renderable_envs() -> list[str]:
    """The registered env ids with a render hook (``jaxrl render`` draws them), sorted."""
    _load_builtin_envs()
    return sorted(env_id for env_id, spec in _REGISTRY.items() if spec.render is not None)


def env_spec(env_id: str) -> EnvSpec:
    """The ``EnvSpec`` of ``env_id``; an unknown id raises a ``ValueError`` naming close matches."""
    _load_builtin_envs()
    if not isinstance(env_id, str):
        raise TypeError(f"An env id is a string such as 'gymnax/CartPole-v1'; got {env_id!r}.")
    if env_id in _REGISTRY:
        return _REGISTRY[env_id]
    by_lower = {known.lower(): known for known in _REGISTRY}
    close = difflib.get_close_matches(env_id.lower(), list(by_lower), n=5, cutoff=0.5)
    # Also match a bare name against prefixed ids ('CartPole-v1' -> 'gymnax/CartPole-v1').
    close += [k for k in by_lower if k.split("/")[-1] == env_id.lower() and k not in close]
    hint = (
        "Did you mean: " + ", ".join(repr(by_lower[c]) for c in close) + "?"
        if close
        else "See jaxrl_suite.registered_envs() or `jaxrl envs` for the list."
    )
    raise ValueError(f"Unknown env id {env_id!r}. {hint}")


def _check_constructor_options(env_id: str, constructor: Callable[..., Any],
                               env_kwargs: dict[str, Any]) -> None:
    """Refuse constructor options the env does not take, listing those it does (a constructor
    with ``**kwargs`` takes anything and is not checked)."""
    if not env_kwargs:
        return
    try:
        signature = inspect.signature(constructor)
    except (TypeError, ValueError):  # a builtin or an extension: let it check for itself
        return
    parameters = signature.parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return
    accepted = [p.name for p in parameters
                if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD,
                              inspect.Parameter.KEYWORD_ONLY) and p.name != "self"]
    unknown = sorted(set(env_kwargs) - set(accepted))
    if unknown:
        raise ValueError(f"{env_id} takes no constructor option(s) "
                         f"{', '.join(map(repr, unknown))}; accepted: "
                         f"{', '.join(accepted) or 'none'}. Params fields go as keywords of "
                         f"make() itself (make(id, max_steps_in_episode=...)).")


def _check_param_override(env_id: str, name: str, default: Any, value: Any) -> None:
    """An env params override has the kind and shape of the default it replaces, is finite, and
    is positive where the default is a positive integer (a step limit, a count)."""
    if isinstance(value, jax.core.Tracer):
        return  # traced: the caller's program decides
    default_array = np.asarray(default)
    try:
        array = np.asarray(value)
    except Exception:  # noqa: BLE001 - not array-like at all
        array = np.asarray(None, dtype=object)
    kind = default_array.dtype.kind
    numeric = array.dtype.kind in "biuf" and (array.dtype.kind != "b" or kind == "b")
    what = ("an integer" if kind in "iu" else "a boolean" if kind == "b" else "a number")
    if not numeric or (kind in "iu" and array.dtype.kind == "f"
                       and not np.all(np.mod(array, 1) == 0)):
        raise ValueError(f"{env_id}: {name} must be {what} like its default {default!r}; "
                         f"got {value!r}.")
    if array.shape != default_array.shape:
        raise ValueError(f"{env_id}: {name} must have the shape of its default "
                         f"{default_array.shape}; got {value!r} (shape {array.shape}).")
    if array.dtype.kind == "f" and not np.all(np.isfinite(array)):
        raise ValueError(f"{env_id}: {name} must be finite; got {value!r}.")
    if kind in "iu" and np.all(default_array > 0) and not np.all(array > 0):
        raise ValueError(f"{env_id}: {name} must be a positive integer (its default is "
                         f"{default!r}); got {value!r}.")


def debug_mode() -> bool:
    """Whether the environment variable ``JAXRL_DEBUG`` asks for the debug checks (anything but
    unset, ``""`` or ``"0"``): the raw env's episode-end check, traced hyperparameters."""
    return os.environ.get("JAXRL_DEBUG", "") not in ("", "0")


def make(
    env_id: str,
    *,
    wrappers: bool = True,
    env_kwargs: dict[str, Any] | None = None,
    debug: bool | None = None,
    **overrides: Any,
) -> tuple[Environment, Any]:
    """Build a registered env. Returns ``(env, params)``.

    Args:
      env_id: a registered id, e.g. ``"gymnax/CartPole-v1"`` or ``"brax/ant"``.
      wrappers: if True (default) the env is wrapped as ``EpisodeStats(AutoReset(env))``, so a
        gymnax-style script that calls ``env.step`` gets auto-reset,
        ``info["final_observation"]`` and episode statistics; ``False`` gives the raw env,
        which does not reset (for code that resets itself, or wraps it its own way).
      env_kwargs: constructor options (static: changing them recompiles), e.g.
        ``{"backend": "positional"}`` for a Brax env.
      debug: with ``wrappers=False``, wrap the raw env in ``EpisodeEndCheck``, which warns when
        a loop steps an episode that has ended (a loop that expected auto-reset); one host
        callback per step, so off by default. ``None`` (default): on when the environment
        variable ``JAXRL_DEBUG`` is set to anything but ``""`` or ``"0"``. The wrapped stack
        never steps an ended episode, so it gets no check.
      **overrides: values for fields of the env's params (no recompile), e.g.
        ``max_steps_in_episode=200``.
    """
    spec = env_spec(env_id)
    try:
        constructor = spec.load()
    except (ImportError, AttributeError) as error:
        raise ValueError(f"Env {env_id!r} is registered with the entry point "
                         f"{spec.entry_point!r}, which could not be loaded: {error}") from None
    if env_kwargs is not None and not isinstance(env_kwargs, dict):
        raise TypeError(f"env_kwargs must be a dict of constructor options; got {env_kwargs!r}.")
    _check_constructor_options(env_id, constructor, env_kwargs or {})
    constructor_kwargs = {**spec.kwargs, **(env_kwargs or {})}
    try:
        env = constructor(**constructor_kwargs)
    except TypeError as error:
        if env_kwargs and "unexpected keyword argument" in str(error):
            raise ValueError(
                f"{env_id} does not take the constructor option(s) "
                f"{', '.join(map(repr, sorted(env_kwargs)))} ({error}); its registered options "
                f"are {', '.join(sorted(spec.kwargs)) or 'none'}, and params fields go as "
                f"keywords of make() itself (make(id, max_steps_in_episode=...)).") from None
        raise
    params = env.default_params
    if overrides:
        fields = [f.name for f in dataclasses.fields(params)]
        unknown = sorted(set(overrides) - set(fields))
        if unknown:
            raise ValueError(
                f"{env_id} has no params field(s) {', '.join(map(repr, unknown))}; its params "
                f"({type(params).__name__}) accept: {', '.join(fields)}. Constructor options go "
                f"in env_kwargs=..."
            )
        for name, value in overrides.items():
            _check_param_override(env_id, name, getattr(params, name), value)
        params = params.replace(**overrides)
        env.check_params(params)
    if debug is None:
        debug = debug_mode()
    if wrappers:
        from jaxrl_suite.env.wrappers import AutoReset, EpisodeStats

        env = EpisodeStats(AutoReset(env))
    elif debug:
        from jaxrl_suite.env.wrappers import EpisodeEndCheck

        env = EpisodeEndCheck(env)
    return env, params
