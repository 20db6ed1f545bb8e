"""LPG's grid worlds (Oh et al. 2020) as a ``LevelEnvironment``: the meta-training tasks.

A square grid of side ``side`` (at most the env's static ``max_side``; smaller levels are padded
with walls), walls, the agent's start, and up to ``max_objects`` objects of up to ``max_types``
types. Each type has a reward, a probability ``p_terminate`` that collecting an object of it
ends the episode, and a probability ``p_respawn`` that a collected object of it reappears, each
step. Five actions: 0 up, 1 down, 2 left, 3 right, 4 stay. A step, in order:

1. the agent moves (into a wall or off the grid: it stays);
2. a present object on the agent's cell is collected: its type's reward, and it is gone;
3. the episode terminates with the collected type's ``p_terminate``;
4. each object that was absent before this step reappears with its type's ``p_respawn`` (one
   collected at this step cannot reappear at it): at its own cell (``random_respawn`` False,
   the tabular levels) or at a random free cell (not a wall, the agent's or another present
   object's; ``random_respawn`` True, which also places the objects at random at reset);
5. the episode is truncated (``truncated``, never ``terminated``) when its ``episode_length``
   steps (or ``params.max_steps_in_episode``, whichever is less) are done.

Observations, flat float32 ending with the time fraction ``t / episode_length``:

* ``tabular``: one-hot over (agent cell, which objects are present), ``max_side**2 *
  2**max_objects`` entries: a linear agent on it is a table, as in LPG's tabular worlds;
* ``maps``: the agent's cell map and one presence map per object type, ``max_side**2 * (1 +
  max_types)`` entries.

Distributions (``DISTRIBUTIONS``, params presets, sampled and mutated inside ``jit``): ``all``
(GROOVE's meta-training distribution: side 4-10, 1-5 objects of 5 types, rewards U[-1, 1] with
the first type's U[0, 1], ``p_terminate`` log-U[1e-2, 1], ``p_respawn`` log-U[1e-3, 1e-1],
episode length log-U[20, 750], each cell a wall with probability 0.15), ``small`` and
``large``. ``optimal_return`` solves a level with in-place respawn exactly.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from jaxrl_suite.env import spaces
from jaxrl_suite.env.environment import StepOutput
from jaxrl_suite.env.levels import LevelEnvironment

__all__ = [
    "ACTIONS",
    "DISTRIBUTIONS",
    "OBSERVATIONS",
    "GridLevel",
    "GridWorld",
    "GridWorldParams",
    "GridWorldState",
    "optimal_return",
    "stack_levels",
]

OBSERVATIONS = ("tabular", "maps")
# (row, column) moves of the five actions: up, down, left, right, stay.
ACTIONS = np.array([[-1, 0], [1, 0], [0, -1], [0, 1], [0, 0]], np.int32)


@struct.dataclass
class GridLevel:
    """One grid world, fixed-shape given the env's ``max_side``, ``max_objects``, ``max_types``.

    Attributes:
      walls: bool ``(max_side, max_side)``; every cell outside the ``side x side`` grid is one.
      side: int32 ``()``, the grid's side.
      start: int32 ``(2,)``, the agent's starting (row, column).
      object_positions: int32 ``(max_objects, 2)``; object ``i`` is used when ``i <
        num_objects``.
      object_types: int32 ``(max_objects,)``, each in ``[0, max_types)``.
      num_objects: int32 ``()``.
      type_rewards, type_p_terminate, type_p_respawn: float32 ``(max_types,)``.
      random_respawn: bool ``()``: objects start and reappear at random free cells.
      episode_length: int32 ``()``, steps.
    """

    walls: jax.Array
    side: jax.Array
    start: jax.Array
    object_positions: jax.Array
    object_types: jax.Array
    num_objects: jax.Array
    type_rewards: jax.Array
    type_p_terminate: jax.Array
    type_p_respawn: jax.Array
    random_respawn: jax.Array
    episode_length: jax.Array


@struct.dataclass
class GridWorldParams:
    """The distribution levels are sampled from (traced: no recompiling to change it), and a
    cap on episode lengths.

    Attributes:
      min_side, max_side: the grid's side, uniform over the integers between (inclusive).
      min_objects, max_objects: how many objects, uniform between (inclusive).
      num_types: object types drawn from (uniformly, per object).
      min_episode_length, max_episode_length: log-uniform (rounded), steps.
      min_p_terminate, max_p_terminate, min_p_respawn, max_p_respawn: log-uniform ranges.
      wall_probability: each cell of the grid is a wall with this probability (cleared where
        the start and the objects are placed).
      random_respawn: whether sampled levels respawn objects at random cells.
      max_steps_in_episode: episodes are truncated at ``min(level.episode_length, this)``.
    """

    min_side: int = 4
    max_side: int = 10
    min_objects: int = 1
    max_objects: int = 5
    num_types: int = 5
    min_episode_length: int = 20
    max_episode_length: int = 750
    min_p_terminate: float = 1e-2
    max_p_terminate: float = 1.0
    min_p_respawn: float = 1e-3
    max_p_respawn: float = 1e-1
    wall_probability: float = 0.15
    random_respawn: bool = False
    max_steps_in_episode: int = 100_000


# Params presets of the named distributions: GROOVE's ``all`` and two of its sub-ranges.
DISTRIBUTIONS: dict[str, dict[str, Any]] = {
    "all": {},
    "small": {"min_side": 4, "max_side": 6, "min_objects": 1, "max_objects": 3, "num_types": 3,
              "max_episode_length": 100},
    "large": {"min_side": 8, "max_side": 10, "min_objects": 2, "max_objects": 5,
              "min_episode_length": 250, "max_episode_length": 750},
}
# The static maxima each distribution needs (the env's shapes).
DISTRIBUTION_SHAPES = {"all": (10, 5, 5), "small": (6, 3, 3), "large": (10, 5, 5)}


@struct.dataclass
class GridWorldState:
    """The level being played, the agent's cell, which objects are present and where, and the
    steps taken."""

    level: GridLevel
    position: jax.Array  # int32 (2,)
    present: jax.Array  # bool (max_objects,)
    object_positions: jax.Array  # int32 (max_objects, 2)
    time: jax.Array  # int32 ()


def stack_levels(levels: list[GridLevel]) -> GridLevel:
    """A batch (leading axis) of levels of the same shapes."""
    return jax.tree.map(lambda *leaves: jnp.stack(leaves), *levels)


def _check_int(owner: str, name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{owner}: {name} must be an integer >= {minimum}; got {value!r}.")
    return int(value)


def _log_uniform(key: jax.Array, shape: tuple[int, ...], low: Any, high: Any) -> jax.Array:
    low = jnp.asarray(low, jnp.float32)
    high = jnp.asarray(high, jnp.float32)
    return jnp.exp(jax.random.uniform(key, shape, minval=jnp.log(low), maxval=jnp.log(high)))


class GridWorld(LevelEnvironment):
    """LPG's grid world (module docstring). Constructor settings are static (shapes).

    Args:
      max_side: the largest grid side (levels are padded to it).
      max_objects: the most objects a level holds.
      max_types: the most object types.
      observation: ``"tabular"`` or ``"maps"``.
      distribution: the ``DISTRIBUTIONS`` preset of ``default_params``.
      fixed_level: a ``GridLevel`` that ``sample_level`` always returns (a named level's env).
      name: the env's name (default ``gridworld``).
    """

    def __init__(self, max_side: int | None = None, max_objects: int | None = None,
                 max_types: int | None = None, observation: str = "tabular",
                 distribution: str = "all", fixed_level: GridLevel | None = None,
                 name: str = "gridworld"):
        if distribution not in DISTRIBUTIONS:
            raise ValueError(f"GridWorld: distribution must be one of {tuple(DISTRIBUTIONS)}; "
                             f"got {distribution!r}.")
        if observation not in OBSERVATIONS:
            raise ValueError(f"GridWorld: observation must be one of {OBSERVATIONS}; got "
                             f"{observation!r}.")
        side, objects, types = DISTRIBUTION_SHAPES[distribution]
        self.max_side = _check_int("GridWorld", "max_side", side if max_side is None
                                   else max_side, 2)
        self.max_objects = _check_int("GridWorld", "max_objects", objects if max_objects is None
                                      else max_objects, 1)
        self.max_types = _check_int("GridWorld", "max_types", types if max_types is None
                                    else max_types, 1)
        if observation == "tabular" and self.max_objects > 12:
            raise ValueError(f"GridWorld: the tabular observation has max_side**2 * "
                             f"2**max_objects entries; max_objects {self.max_objects} is too "
                             f"many (at most 12; use observation='maps').")
        self.observation, self.distribution = observation, distribution
        self.fixed_level = fixed_level
        self._name = name
        defaults = {**DISTRIBUTIONS[distribution]}
        defaults["max_side"] = min(defaults.get("max_side", GridWorldParams.max_side),
                                   self.max_side)
        defaults["min_side"] = min(defaults.get("min_side", GridWorldParams.min_side),
                                   defaults["max_side"])
        defaults["max_objects"] = min(defaults.get("max_objects", GridWorldParams.max_objects),
                                      self.max_objects)
        defaults["min_objects"] = min(defaults.get("min_objects", GridWorldParams.min_objects),
                                      defaults["max_objects"])
        defaults["num_types"] = min(defaults.get("num_types", GridWorldParams.num_types),
                                    self.max_types)
        if observation == "maps" and fixed_level is None:
            defaults.setdefault("random_respawn", True)
        self._default_params = GridWorldParams(**defaults)

    # --- spaces ---------------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self._name

    @property
    def default_params(self) -> GridWorldParams:
        return self._default_params

    @property
    def observation_size(self) -> int:
        cells = self.max_side ** 2
        if self.observation == "tabular":
            return cells * 2 ** self.max_objects + 1
        return cells * (1 + self.max_types) + 1

    def observation_space(self, params: Any = None) -> spaces.Box:
        return spaces.Box(0.0, 1.0, (self.observation_size,), jnp.float32)

    def action_space(self, params: Any = None) -> spaces.Discrete:
        return spaces.Discrete(5)

    def state_space(self, params: Any = None) -> spaces.Dict:
        s, k = self.max_side, self.max_objects
        return spaces.Dict({
            "position": spaces.Box(0, s - 1, (2,), jnp.int32),
            "present": spaces.Box(0, 1, (k,), jnp.bool_),
            "object_positions": spaces.Box(0, s - 1, (k, 2), jnp.int32),
            "time": spaces.Discrete(2**31 - 1),
        })

    def check_params(self, params: GridWorldParams) -> None:
        """The distribution fits the env's shapes and its ranges are ordered."""
        def concrete(value):
            return np.asarray(value)

        for low, high, most in (("min_side", "max_side", self.max_side),
                                ("min_objects", "max_objects", self.max_objects),
                                ("min_episode_length", "max_episode_length", None),
                                ("min_p_terminate", "max_p_terminate", 1.0),
                                ("min_p_respawn", "max_p_respawn", 1.0)):
            a, b = concrete(getattr(params, low)), concrete(getattr(params, high))
            if np.any(a > b) or np.any(a <= 0) or (most is not None and np.any(b > most)):
                bound = "" if most is None else f" <= {most}"
                raise ValueError(f"gridworld: need 0 < {low} <= {high}{bound}; got {low}={a}, "
                                 f"{high}={b}.")
        if np.any(concrete(params.min_side) < 2):
            raise ValueError(f"gridworld: min_side must be >= 2; got {params.min_side}.")
        if np.any(concrete(params.num_types) < 1) or np.any(
                concrete(params.num_types) > self.max_types):
            raise ValueError(f"gridworld: num_types must be in [1, {self.max_types}]; got "
                             f"{params.num_types}.")
        wall = concrete(params.wall_probability)
        if np.any(wall < 0) or np.any(wall >= 1):
            raise ValueError(f"gridworld: wall_probability must be in [0, 1); got "
                             f"{params.wall_probability}.")

    # --- levels ---------------------------------------------------------------------------------
    def sample_level(self, key: jax.Array, params: GridWorldParams | None = None) -> GridLevel:
        """A level of the distribution in ``params`` (or the fixed level of a named env)."""
        if self.fixed_level is not None:
            return self.fixed_level
        params = self.resolve_params(params)
        keys = jax.random.split(key, 9)
        s, k, m = self.max_side, self.max_objects, self.max_types
        side = jax.random.randint(keys[0], (), params.min_side, params.max_side + 1)
        num_objects = jax.random.randint(keys[1], (), params.min_objects,
                                         params.max_objects + 1)
        rows, cols = np.indices((s, s))
        inside = (jnp.asarray(rows) < side) & (jnp.asarray(cols) < side)
        walls = (jax.random.uniform(keys[2], (s, s)) < params.wall_probability) | ~inside
        # The start and the objects on distinct cells inside the grid; those cells are cleared
        # of walls, so a grid as small as 2x2 still holds them (at most side**2 - 1 objects).
        num_objects = jnp.minimum(num_objects, side * side - 1)
        scores = jnp.where(inside.reshape(-1), jax.random.uniform(keys[3], (s * s,)), -1.0)
        cells = jax.lax.top_k(scores, k + 1)[1]
        positions = jnp.stack([cells // s, cells % s], axis=-1).astype(jnp.int32)
        used = jnp.arange(k + 1) <= num_objects
        walls = walls.at[positions[:, 0], positions[:, 1]].set(
            jnp.where(used, False, walls[positions[:, 0], positions[:, 1]]))
        rewards = jax.random.uniform(keys[4], (m,), minval=-1.0, maxval=1.0)
        rewards = rewards.at[0].set(jnp.abs(rewards[0]))  # the first type's reward positive
        types = jax.random.randint(keys[5], (k,), 0, params.num_types)
        types = types.at[0].set(0)  # so a reward worth collecting exists
        length = jnp.round(_log_uniform(keys[8], (), params.min_episode_length,
                                        params.max_episode_length)).astype(jnp.int32)
        return GridLevel(
            walls=walls, side=side.astype(jnp.int32), start=positions[0],
            object_positions=positions[1:], object_types=types.astype(jnp.int32),
            num_objects=num_objects.astype(jnp.int32), type_rewards=rewards,
            type_p_terminate=jnp.clip(_log_uniform(keys[6], (m,), params.min_p_terminate,
                                                   params.max_p_terminate), 0.0, 1.0),
            type_p_respawn=jnp.clip(_log_uniform(keys[7], (m,), params.min_p_respawn,
                                                 params.max_p_respawn), 0.0, 1.0),
            random_respawn=jnp.asarray(params.random_respawn, bool),
            episode_length=jnp.maximum(length, 1))

    def mutate_level(self, key: jax.Array, level: GridLevel, num_edits: Any,
                     params: GridWorldParams | None = None) -> GridLevel:
        """``num_edits`` edits, each one of: toggle a wall on a free cell inside the grid, move
        an object, move the start (to a free unoccupied cell), or redraw one type's reward.
        Every edit keeps the level valid."""
        s = self.max_side

        def free_cell(edit_key, level):
            occupied = self._occupied(level, level.object_positions, jnp.ones(
                self.max_objects, bool), level.start)
            free = ~level.walls & ~occupied
            cell = jax.random.categorical(edit_key, jnp.where(free.reshape(-1), 0.0, -jnp.inf))
            return jnp.stack([cell // s, cell % s]).astype(jnp.int32), free.any()

        def one_edit(i, level):
            edit_key = jax.random.fold_in(key, i)
            kind_key, cell_key, which_key, value_key = jax.random.split(edit_key, 4)
            kind = jax.random.randint(kind_key, (), 0, 4)
            cell, any_free = free_cell(cell_key, level)
            # Toggle a wall: a free cell becomes a wall, or a wall inside the grid a free cell.
            rows, cols = np.indices((s, s))
            inside = (jnp.asarray(rows) < level.side) & (jnp.asarray(cols) < level.side)
            wall_cells = level.walls & inside
            wall_pick = jax.random.categorical(which_key, jnp.where(wall_cells.reshape(-1), 0.0,
                                                                    -jnp.inf))
            add_wall = jax.random.bernoulli(value_key) | ~wall_cells.any()
            toggled = jnp.where(add_wall & any_free,
                                level.walls.at[cell[0], cell[1]].set(True),
                                level.walls.at[wall_pick // s, wall_pick % s].set(
                                    jnp.where(wall_cells.any(), False, True)))
            toggled = jnp.where(add_wall & ~any_free, level.walls, toggled)
            index = jax.random.randint(which_key, (), 0, jnp.maximum(level.num_objects, 1))
            moved_objects = level.object_positions.at[index].set(
                jnp.where(any_free, cell, level.object_positions[index]))
            moved_start = jnp.where(any_free, cell, level.start)
            type_index = jax.random.randint(which_key, (), 0, self.max_types)
            new_reward = jax.random.uniform(value_key, (), minval=-1.0, maxval=1.0)
            new_reward = jnp.where(type_index == 0, jnp.abs(new_reward), new_reward)
            rewards = level.type_rewards.at[type_index].set(new_reward)
            return level.replace(
                walls=jnp.where(kind == 0, toggled, level.walls),
                object_positions=jnp.where(kind == 1, moved_objects, level.object_positions),
                start=jnp.where(kind == 2, moved_start, level.start),
                type_rewards=jnp.where(kind == 3, rewards, level.type_rewards))

        return jax.lax.fori_loop(0, num_edits, one_edit, level)

    def level_of(self, state: GridWorldState) -> GridLevel:
        return state.level

    def _occupied(self, level, object_positions, present, position) -> jax.Array:
        """bool ``(max_side, max_side)``: the agent's cell and every present used object's."""
        s = self.max_side
        used = present & (jnp.arange(self.max_objects) < level.num_objects)
        grid = jnp.zeros((s, s), bool).at[position[0], position[1]].set(True)
        rows = jnp.where(used, object_positions[:, 0], s)  # out of range: dropped
        return grid.at[rows, object_positions[:, 1]].set(True, mode="drop")

    def _random_cells(self, key, level, object_positions, present, position, which):
        """Objects in ``which`` moved, one after another, to random free cells."""
        s = self.max_side

        def place(carry, item):
            object_positions, present = carry
            index, place_key = item
            occupied = self._occupied(level, object_positions, present, position)
            free = (~level.walls & ~occupied).reshape(-1)
            cell = jax.random.categorical(place_key, jnp.where(free, 0.0, -jnp.inf))
            new = jnp.stack([cell // s, cell % s]).astype(jnp.int32)
            moves = which[index] & free.any()
            object_positions = object_positions.at[index].set(
                jnp.where(moves, new, object_positions[index]))
            present = present.at[index].set(present[index] | which[index])
            return (object_positions, present), None

        items = (jnp.arange(self.max_objects), jax.random.split(key, self.max_objects))
        (object_positions, _), _ = jax.lax.scan(place, (object_positions, present), items)
        return object_positions

    def reset_to_level(self, key: jax.Array, level: GridLevel, params: Any = None
                       ) -> tuple[jax.Array, GridWorldState]:
        used = jnp.arange(self.max_objects) < level.num_objects
        placed = self._random_cells(key, level, level.object_positions,
                                    jnp.zeros(self.max_objects, bool), level.start, used)
        positions = jnp.where(level.random_respawn, placed, level.object_positions)
        state = GridWorldState(level, level.start, used, positions, jnp.zeros((), jnp.int32))
        return self.observe(state), state

    # --- dynamics -------------------------------------------------------------------------------
    def step_env(self, key: jax.Array, state: GridWorldState, action: Any,
                 params: GridWorldParams) -> StepOutput:
        level = state.level
        terminate_key, respawn_key, place_key = jax.random.split(key, 3)
        target = state.position + jnp.asarray(ACTIONS)[action]
        inside = jnp.all((target >= 0) & (target < level.side))
        clipped = jnp.clip(target, 0, self.max_side - 1)
        blocked = ~inside | level.walls[clipped[0], clipped[1]]
        position = jnp.where(blocked, state.position, clipped)
        used = jnp.arange(self.max_objects) < level.num_objects
        collected = (state.present & used
                     & jnp.all(state.object_positions == position[None], axis=-1))
        reward = jnp.sum(jnp.where(collected, level.type_rewards[level.object_types], 0.0))
        p_survive = jnp.prod(jnp.where(collected, 1.0 - level.type_p_terminate[
            level.object_types], 1.0))
        terminated = jax.random.uniform(terminate_key) >= p_survive
        absent = ~state.present & used
        respawned = absent & (jax.random.uniform(respawn_key, (self.max_objects,))
                              < level.type_p_respawn[level.object_types])
        present = (state.present & ~collected) | respawned
        positions = jnp.where(
            level.random_respawn,
            self._random_cells(place_key, level, state.object_positions,
                               state.present & ~collected, position, respawned),
            state.object_positions)
        time = state.time + 1
        limit = jnp.minimum(level.episode_length, params.max_steps_in_episode)
        truncated = (time >= limit) & ~terminated
        next_state = GridWorldState(level, position, present, positions, time)
        return (self.observe(next_state), next_state, reward.astype(jnp.float32), terminated,
                truncated, {})

    def observe(self, state: GridWorldState, params: Any = None) -> jax.Array:
        """The flat observation of ``state`` (module docstring)."""
        s = self.max_side
        cell = state.position[0] * s + state.position[1]
        fraction = (state.time / jnp.maximum(state.level.episode_length, 1)).astype(jnp.float32)
        used = jnp.arange(self.max_objects) < state.level.num_objects
        present = state.present & used
        if self.observation == "tabular":
            mask = jnp.sum(jnp.where(present, 2 ** jnp.arange(self.max_objects), 0))
            index = cell + s * s * mask
            table = jax.nn.one_hot(index, s * s * 2 ** self.max_objects, dtype=jnp.float32)
            return jnp.concatenate([table, fraction[None]])
        agent = jax.nn.one_hot(cell, s * s, dtype=jnp.float32)
        object_cells = state.object_positions[:, 0] * s + state.object_positions[:, 1]
        maps = jnp.zeros((self.max_types, s * s), jnp.float32).at[
            state.level.object_types, object_cells].max(present.astype(jnp.float32))
        return jnp.concatenate([agent, maps.reshape(-1), fraction[None]])


def optimal_return(env: GridWorld, level: GridLevel) -> jax.Array:
    """The expected undiscounted return of the optimal policy from the start of ``level``,
    float32 ``()``, by backward induction over (time, agent cell, present objects).

    Exact for a level whose objects respawn in place (``random_respawn`` False: a concrete
    level with random respawn raises ``ValueError``); the policy may depend on the time left,
    as an optimal finite-horizon policy does. Cost: ``episode_length`` steps of ``max_side**2 *
    2**max_objects`` states x 5 actions x ``2**max_objects`` successor masks (a dense
    ``(2**K, 2**K)`` respawn matrix per step): about 0.1 s for an ``all`` level on a CPU.
    """
    if not isinstance(level.random_respawn, jax.core.Tracer) and bool(
            np.asarray(level.random_respawn)):
        raise ValueError("optimal_return: this level respawns objects at random cells, so "
                         "(cell, present objects) is not its state; the exact solution applies "
                         "to levels with random_respawn False (the tabular ones).")
    s, k = env.max_side, env.max_objects
    num_masks = 2 ** k
    masks = np.arange(num_masks)
    bits = ((masks[:, None] >> np.arange(k)[None, :]) & 1).astype(bool)  # (2**K, K)
    used = jnp.arange(k) < level.num_objects
    # Moves: next cell of each (cell, action), walls and the border blocking.
    rows, cols = np.divmod(np.arange(s * s), s)
    target = np.stack([rows, cols], -1)[:, None, :] + ACTIONS[None]  # (cells, 5, 2)
    target_j = jnp.asarray(target)
    inside = jnp.all((target_j >= 0) & (target_j < level.side), -1)
    clipped = jnp.clip(target_j, 0, s - 1)
    blocked = ~inside | level.walls[clipped[..., 0], clipped[..., 1]]
    next_cell = jnp.where(blocked, jnp.arange(s * s)[:, None], clipped[..., 0] * s
                          + clipped[..., 1])  # (cells, 5)
    # Collection at the next cell: which objects sit there.
    object_cells = level.object_positions[:, 0] * s + level.object_positions[:, 1]
    at_cell = (object_cells[None, :] == jnp.arange(s * s)[:, None]) & used[None]  # (cells, K)
    present = jnp.asarray(bits) & used[None]  # (masks, K)
    collected = present[None, None] & at_cell[next_cell][:, :, None, :]  # (cells, 5, masks, K)
    rewards = level.type_rewards[level.object_types]
    p_terminate = level.type_p_terminate[level.object_types]
    p_respawn = level.type_p_respawn[level.object_types]
    reward = jnp.sum(jnp.where(collected, rewards, 0.0), -1)  # (cells, 5, masks)
    survive = jnp.prod(jnp.where(collected, 1.0 - p_terminate, 1.0), -1)
    after_collect = present[None, None] & ~collected  # (cells, 5, masks, K)
    absent = ~present & used[None]  # (masks, K): absent before the step, may respawn
    # P(next mask | mask before, collected): objects present and kept stay; absent ones respawn
    # independently; a collected one stays absent.
    next_bits = jnp.asarray(bits)[None, None, None]  # (1, 1, 1, masks', K)
    kept = after_collect[:, :, :, None, :]
    may_respawn = absent[None, None, :, None, :]
    probability = jnp.where(
        kept, next_bits.astype(jnp.float32),
        jnp.where(may_respawn, jnp.where(next_bits, p_respawn, 1.0 - p_respawn),
                  (~next_bits).astype(jnp.float32)))
    transition = jnp.prod(probability, -1)  # (cells, 5, masks, masks')

    def backward(value_next, _):
        # value_next: (cells, masks), the optimal value with one step fewer left.
        expected = jnp.einsum("camn,camn->cam", transition,
                              value_next[next_cell][:, :, None, :])
        q = reward + survive * expected
        value = jnp.max(q, axis=1)
        return value, None

    limit = level.episode_length
    horizon = int(np.asarray(limit)) if not isinstance(limit, jax.core.Tracer) else None
    if horizon is None:
        raise ValueError("optimal_return: the level's episode_length must be concrete (the "
                         "number of backward steps is static).")
    value, _ = jax.lax.scan(backward, jnp.zeros((s * s, num_masks), jnp.float32), None,
                            length=horizon)
    start_cell = level.start[0] * s + level.start[1]
    start_mask = jnp.sum(jnp.where(used, 2 ** jnp.arange(k), 0))
    return value[start_cell, start_mask]
