"""Checks and presets every algorithm's ``Config`` shares (DESIGN.md section 9).

Each check raises a ``ValueError`` naming the setting, its bad value and what is accepted, in
Python before anything is traced. The algorithm files call them from their ``validate``.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from jaxrl_suite.env import spaces

__all__ = [
    "hyperparams_from_config",
    "hyperparams_validator",
    "preset_config_from",
    "require_box_observation",
    "require_finite_numbers",
    "require_hidden_sizes",
    "require_in_unit_interval",
    "require_non_negative",
    "require_positive",
    "require_positive_ints",
]


def require_finite_numbers(config: Any) -> None:
    """Every float field of a config dataclass (and every float in a tuple field) is finite:
    NaN and infinity are refused wherever they appear, whatever else a field allows."""
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        values = value if isinstance(value, tuple) else (value,)
        for item in values:
            if isinstance(item, float) and not math.isfinite(item):
                raise ValueError(f"{field.name} must be a finite number; got {value!r}.")


def require_positive_ints(config: Any, *names: str) -> None:
    """Each named field is an ``int`` (not a bool) above 0."""
    for name in names:
        value = getattr(config, name)
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise ValueError(f"{name} must be a positive integer; got {value!r}.")


def require_in_unit_interval(config: Any, *names: str) -> None:
    """Each named field is in [0, 1]."""
    for name in names:
        value = getattr(config, name)
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} must be in [0, 1]; got {value!r}.")


def _finite_number(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    try:
        return math.isfinite(value)
    except TypeError:  # not a real number
        return False


def require_positive(config: Any, *names: str) -> None:
    """Each named field is a finite number above 0 (``inf`` is refused as ``nan`` is)."""
    for name in names:
        value = getattr(config, name)
        if not (_finite_number(value) and value > 0):
            raise ValueError(f"{name} must be positive and finite; got {value!r}.")


def require_non_negative(config: Any, *names: str) -> None:
    """Each named field is a finite number, 0 or more."""
    for name in names:
        value = getattr(config, name)
        if not (_finite_number(value) and value >= 0):
            raise ValueError(f"{name} must be non-negative and finite; got {value!r}.")


def require_hidden_sizes(hidden_sizes: Any) -> None:
    """One or more positive integer layer widths."""
    if not hidden_sizes or any(
        not isinstance(width, int) or isinstance(width, bool) or width <= 0
        for width in hidden_sizes
    ):
        raise ValueError(
            f"hidden_sizes must be one or more positive integers; got {hidden_sizes!r}."
        )


def preset_config_from(
    config_type: type,
    presets: dict[str, dict[str, Any]],
    preset_by_env: dict[str, str],
    algorithm: str,
    env_id_or_preset: str,
    overrides: dict[str, Any],
) -> Any:
    """``config_type`` from a preset, then ``overrides``.

    ``env_id_or_preset`` is a preset name, or an env id (``family/name``, or a registered id of
    the project's own envs such as ``maze``) whose preset is ``preset_by_env[env_id]``; an env
    without a preset gets the plain defaults. An unknown
    preset name raises, listing the presets of ``algorithm``.
    """
    if env_id_or_preset in presets:
        preset = presets[env_id_or_preset]
    elif env_id_or_preset in preset_by_env or _is_env_id(env_id_or_preset):
        preset = presets.get(preset_by_env.get(env_id_or_preset, ""), {})
    elif "/" in env_id_or_preset:  # meant as an env id: a typo must not give plain defaults
        from jaxrl_suite.env.registry import env_spec

        env_spec(env_id_or_preset)  # raises, naming the close matches
        preset = {}
    else:
        raise ValueError(
            f"Unknown {algorithm} preset {env_id_or_preset!r}; presets: {', '.join(presets)} "
            f"(or pass an env id to get its default preset)."
        )
    return config_type(**{**preset, **overrides})


def _is_env_id(name: str) -> bool:
    from jaxrl_suite.env.registry import registered_envs

    return name in registered_envs()


def require_box_observation(algorithm: str, env: Any, env_params: Any) -> None:
    """The algorithm's networks take flat arrays: the observation space must be a ``Box``."""
    space = env.observation_space(env_params)
    if not isinstance(space, spaces.Box):
        raise ValueError(f"{algorithm} needs a Box (array) observation; {env.name} has {space}. "
                         f"Wrap it in FlattenObservation first.")


def hyperparams_from_config(hyperparams_type: type, config: Any) -> Any:
    """``hyperparams_type`` (a ``flax.struct`` dataclass of traceable scalars) with each field
    that ``config`` also has taken from it as a float32 NumPy scalar; fields the config lacks
    keep their defaults.

    NumPy, not device arrays: a device array captured as a constant of the jitted run and also
    returned in its state has made later executions hang (jaxlib 0.10.2).
    """
    values = {
        field.name: np.asarray(getattr(config, field.name), np.float32)
        for field in dataclasses.fields(hyperparams_type)
        if hasattr(config, field.name)
    }
    return hyperparams_type(**values)



def hyperparams_validator(config: Any, validate: Any) -> Any:
    """A check of concrete traceable hyperparameters against the rules of the config they come
    from: ``check(hparams)`` substitutes every value of each field the config also has (every
    element of a sweep's batch) into ``config`` and runs ``validate(config)`` on it, so
    ``train.default_hparams.replace(gamma=5.0)`` is refused as ``Config(gamma=5.0)`` is, with
    the field named as ``hparams.gamma``. Fields the config lacks (``preference``, ``meta``)
    are not looked at. ``Train`` calls it on hyperparameters it sees as concrete values."""
    config_fields = {field.name: field for field in dataclasses.fields(config)}

    def check(hparams: Any) -> None:
        if not dataclasses.is_dataclass(hparams):
            return
        for field in dataclasses.fields(hparams):
            if field.name not in config_fields:
                continue
            value = getattr(hparams, field.name)
            if value is None:
                continue
            as_int = isinstance(getattr(config, field.name), int) and not isinstance(
                getattr(config, field.name), bool)
            for element in np.unique(np.asarray(value, np.float64).reshape(-1)):
                element = float(element)
                if as_int and element.is_integer():
                    element = int(element)
                try:
                    validate(dataclasses.replace(config, **{field.name: element}))
                except ValueError as error:
                    raise ValueError(f"hparams.{field.name} = {element!r} is refused: "
                                     f"{error}") from None

    return check
