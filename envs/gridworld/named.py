"""The named reference grid worlds (in the spirit of LPG's, Oh et al. 2020), shipped as data.

``levels/named_levels.json`` holds each level as a picture (``#`` wall, ``.`` free, ``S`` the
start, a digit an object of that type) with its types' rewards, ``p_terminate`` and
``p_respawn``, its episode length, whether objects respawn at random cells, a short description
of what it tests, and a recommended agent lifetime in updates (GROOVE's: 2,500 for the tabular
levels, 25,000 for the random ones). Sizes, object counts and types, rewards, probabilities,
episode lengths and wall layouts are LPG's / GROOVE's; where the papers leave the object
positions open, these are the project's choice. The ``longer`` level keeps GROOVE's reduction to
2 rewards and 3 penalties (LPG's has 2 and 5).
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import jax.numpy as jnp
import numpy as np

from jaxrl_suite.envs.gridworld.gridworld import GridLevel, GridWorld

__all__ = ["level_from_picture", "load_level", "named_level_env", "named_level_info",
           "named_level_names"]

LEVELS_FILE = Path(__file__).parent / "levels" / "named_levels.json"


@functools.cache
def _data() -> dict[str, dict[str, Any]]:
    return json.loads(LEVELS_FILE.read_text())


def named_level_names() -> list[str]:
    return list(_data())


def _entry(name: str) -> dict[str, Any]:
    data = _data()
    if name not in data:
        raise ValueError(f"gridworld: unknown named level {name!r}; named levels: "
                         f"{', '.join(data)}.")
    return data[name]


def named_level_info(name: str) -> dict[str, Any]:
    """``{"description", "lifetime", "episode_length", "random_respawn", "side",
    "num_objects", "num_types"}`` of a named level."""
    entry = _entry(name)
    grid = entry["grid"]
    objects = [ch for row in grid for ch in row if ch.isdigit()]
    return {"description": entry["description"], "lifetime": entry["lifetime"],
            "episode_length": entry["episode_length"],
            "random_respawn": entry["random_respawn"], "side": len(grid),
            "num_objects": len(objects), "num_types": len(entry["type_rewards"])}


def level_from_picture(grid: list[str], type_rewards, type_p_terminate, type_p_respawn,
                       episode_length: int, random_respawn: bool = False,
                       max_side: int | None = None, max_objects: int | None = None,
                       max_types: int | None = None) -> GridLevel:
    """A ``GridLevel`` from rows of ``#``/``.``/``S``/digits, padded to the maxima given
    (default: the picture's own sizes)."""
    side = len(grid)
    if side < 2 or any(len(row) != side for row in grid):
        raise ValueError(f"gridworld: a level picture is a square of at least 2x2; got rows of "
                         f"lengths {[len(row) for row in grid]}.")
    objects = [(r, c, int(ch)) for r, row in enumerate(grid) for c, ch in enumerate(row)
               if ch.isdigit()]
    starts = [(r, c) for r, row in enumerate(grid) for c, ch in enumerate(row) if ch == "S"]
    if len(starts) != 1:
        raise ValueError(f"gridworld: a level picture has exactly one S (the start); got "
                         f"{len(starts)}.")
    num_types = len(type_rewards)
    if any(t >= num_types for _, _, t in objects):
        raise ValueError(f"gridworld: object types must be below the {num_types} types given.")
    max_side = side if max_side is None else max_side
    max_objects = max(len(objects), 1) if max_objects is None else max_objects
    max_types = num_types if max_types is None else max_types
    if side > max_side or len(objects) > max_objects or num_types > max_types:
        raise ValueError(f"gridworld: the level ({side}x{side}, {len(objects)} objects, "
                         f"{num_types} types) exceeds the env's maxima ({max_side}, "
                         f"{max_objects}, {max_types}).")
    walls = np.ones((max_side, max_side), bool)
    walls[:side, :side] = np.array([[ch == "#" for ch in row] for row in grid])
    positions = np.zeros((max_objects, 2), np.int32)
    types = np.zeros(max_objects, np.int32)
    for i, (r, c, t) in enumerate(objects):
        positions[i], types[i] = (r, c), t

    def padded(values):
        out = np.zeros(max_types, np.float32)
        out[:num_types] = values
        return jnp.asarray(out)

    return GridLevel(
        walls=jnp.asarray(walls), side=jnp.int32(side), start=jnp.asarray(starts[0], jnp.int32),
        object_positions=jnp.asarray(positions), object_types=jnp.asarray(types),
        num_objects=jnp.int32(len(objects)), type_rewards=padded(type_rewards),
        type_p_terminate=padded(type_p_terminate), type_p_respawn=padded(type_p_respawn),
        random_respawn=jnp.asarray(bool(random_respawn)),
        episode_length=jnp.int32(episode_length))


def load_level(name: str, env: GridWorld | None = None) -> GridLevel:
    """The named level, padded to ``env``'s maxima (default: its own sizes)."""
    entry = _entry(name)
    sizes = {} if env is None else {"max_side": env.max_side, "max_objects": env.max_objects,
                                    "max_types": env.max_types}
    return level_from_picture(entry["grid"], entry["type_rewards"], entry["type_p_terminate"],
                              entry["type_p_respawn"], entry["episode_length"],
                              entry["random_respawn"], **sizes)


def named_level_env(name: str, observation: str | None = None) -> GridWorld:
    """The env of one named level (``gridworld/<name>``): its own sizes, ``sample_level``
    returning the level; tabular observations for a level whose objects stay put, maps for
    one with random respawn (unless ``observation`` says)."""
    info = named_level_info(name)
    if observation is None:
        observation = "maps" if info["random_respawn"] else "tabular"
    level = load_level(name)
    return GridWorld(max_side=info["side"], max_objects=max(info["num_objects"], 1),
                     max_types=info["num_types"], observation=observation, fixed_level=level,
                     name=f"gridworld/{name}")
