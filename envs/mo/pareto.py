"""Known Pareto fronts of the MO envs, shipped as data (``fronts/*.json``).

One file per env id (``mo/deep-sea-treasure`` -> ``fronts/deep-sea-treasure.json``) holding the
objective vectors of the front: ``undiscounted`` (the sum of an episode's rewards) and
``discounted`` per gamma (``sum_t gamma**t r_{t+1}``, the first reward undiscounted: what an
agent with that discount maximises from the start state), with ``source`` saying how the points
were obtained and ``exact`` whether they are the true front (``tests/test_mo_envs.py`` checks the
exact ones by exhaustive search where the env is small enough).
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["FRONTS_DIR", "front_data", "has_front", "pareto_front", "reference_point"]

FRONTS_DIR = Path(__file__).parent / "fronts"
PREFIX = "mo/"


def _env_id(env_id_or_env: Any) -> str:
    """The registered id (``mo/<name>``) of an id or an env (wrapped or not)."""
    if isinstance(env_id_or_env, str):
        return env_id_or_env if env_id_or_env.startswith(PREFIX) else PREFIX + env_id_or_env
    env = getattr(env_id_or_env, "unwrapped", env_id_or_env)
    name = getattr(env, "name", None)
    if not isinstance(name, str) or not hasattr(env, "reward_space"):
        raise TypeError(f"pareto_front: expected an env id such as 'mo/deep-sea-treasure' or a "
                        f"multi-objective env of jaxrl_suite.envs.mo; got {env_id_or_env!r}.")
    return PREFIX + name


def _file(env_id: str) -> Path:
    return FRONTS_DIR / f"{env_id[len(PREFIX):]}.json"


def has_front(env_id_or_env: Any) -> bool:
    """Whether a front of this env ships with the package."""
    return _file(_env_id(env_id_or_env)).is_file()


@functools.cache
def _load(env_id: str) -> dict[str, Any]:
    path = _file(env_id)
    if not path.is_file():
        known = sorted(PREFIX + p.stem for p in FRONTS_DIR.glob("*.json"))
        raise ValueError(f"pareto_front: no known Pareto front for {env_id!r}; the envs with "
                         f"one: {known}.")
    return json.loads(path.read_text())


def front_data(env_id_or_env: Any) -> dict[str, Any]:
    """The whole record of an env's front (points, gammas, source, ``exact``)."""
    return json.loads(json.dumps(_load(_env_id(env_id_or_env))))  # a copy


def pareto_front(env_id_or_env: Any, gamma: float | None = None) -> np.ndarray:
    """The env's Pareto front, float64 ``(points, num_objectives)``.

    ``gamma=None`` (or 1): undiscounted returns; otherwise the discounted front for a gamma
    stored with the env (``front_data(env)["discounted"]``). An env without a shipped front, or a
    gamma not stored, raises ``ValueError`` naming what there is.
    """
    env_id = _env_id(env_id_or_env)
    data = _load(env_id)
    if gamma is None or float(gamma) == 1.0:
        return np.asarray(data["undiscounted"], np.float64)
    stored = data.get("discounted", {})
    for key, points in stored.items():
        if np.isclose(float(key), float(gamma), rtol=0.0, atol=1e-12):
            return np.asarray(points, np.float64)
    raise ValueError(f"pareto_front: {env_id}'s front is stored for gamma in "
                     f"{sorted(float(k) for k in stored)} (and undiscounted); got gamma={gamma}.")


def reference_point(env_id_or_env: Any) -> np.ndarray:
    """The env's hypervolume reference point, float64 ``(num_objectives,)``."""
    if isinstance(env_id_or_env, str):
        import jaxrl_suite

        env_id_or_env, _ = jaxrl_suite.make(_env_id(env_id_or_env), wrappers=False)
    env = getattr(env_id_or_env, "unwrapped", env_id_or_env)
    return np.asarray(env.reference_point, np.float64)
