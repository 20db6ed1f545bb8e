"""Levels (DESIGN.md section 4): environments whose episodes start from a chosen level.

A *level* is a fixed-shape pytree that says everything an episode starts from (a maze's walls,
goal and start; a pendulum's mass and length). A ``LevelEnvironment`` separates generating a
level from starting an episode on it::

    level = env.sample_level(key, params)               # the procedural generator (DR)
    obs, state = env.reset_to_level(key, level, params)  # start an episode on that level
    child = env.mutate_level(key, level, num_edits, params)  # ACCEL's edits

and ``env.reset(key, params)`` is ``reset_to_level(key, sample_level(key, params), params)``.
Since levels have fixed shapes, a batch of levels is a stacked pytree and a level buffer is a
fixed-size array, so UED stays inside ``jit``.

Two ways to continue after an episode ends, and the difference matters for UED:

* ``AutoReset(env)``: a *new* level from the generator every episode (domain randomisation).
* ``AutoReplay(env)``: the *same* level again (PLR, ACCEL and PAIRED train a level for a whole
  rollout, several episodes, and score it on all of them).

``ParamLevels(env, ranges)`` makes any env whose params are a pytree (gymnax classic control,
Brax physics scales) a level env: its levels are params, sampled uniformly in ``ranges`` and
mutated by small perturbations.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from jaxrl_suite.env.environment import Environment, StepOutput
from jaxrl_suite.env.wrappers import Wrapper, auto_reset_info, tree_select

__all__ = ["LevelEnvironment", "AutoReplay", "ParamLevels", "ParamLevelsState", "is_level_env"]


class LevelEnvironment(Environment):
    """An environment whose episodes start from a level (DESIGN.md section 4).

    Subclasses implement ``sample_level``, ``reset_to_level`` (which does not check its inputs:
    call it with resolved params), ``mutate_level`` and ``level_of``. ``reset_env`` is defined
    from the first two, so the generator is what ``reset`` and ``AutoReset`` use.
    """

    def sample_level(self, key: jax.Array, params: Any) -> Any:
        """A new level from the environment's procedural generator."""
        raise NotImplementedError

    def reset_to_level(self, key: jax.Array, level: Any, params: Any = None) -> tuple[Any, Any]:
        """``(obs, state)`` of an episode starting on ``level``."""
        raise NotImplementedError

    def mutate_level(self, key: jax.Array, level: Any, num_edits: Any, params: Any) -> Any:
        """``level`` changed by ``num_edits`` small random edits (ACCEL)."""
        raise NotImplementedError

    def level_of(self, state: Any) -> Any:
        """The level the episode of ``state`` started from (kept in the state)."""
        raise NotImplementedError

    def reset_env(self, key: jax.Array, params: Any) -> tuple[Any, Any]:
        return self.reset_to_level(key, self.sample_level(key, params), params)


def is_level_env(env: Environment) -> bool:
    """Whether ``env`` is a ``LevelEnvironment`` or wraps one."""
    while not isinstance(env, LevelEnvironment):
        if not isinstance(env, Wrapper):
            return False
        env = env._env
    return True


# --- auto-replay --------------------------------------------------------------------------------
class AutoReplay(Wrapper):
    """Resets to the *same* level when an episode ends (UED's replay).

    The level replayed is ``env.level_of(state)``, the one the episode started from: set by
    ``reset_to_level(key, level)``, or drawn from the generator by a plain ``reset(key)``. On
    ``terminated | truncated`` the observation and state returned are those of a new episode on
    that level, and the replaced observation is ``info["final_observation"]``, as with
    ``AutoReset``. The state is the wrapped env's own, so ``env.level_of(state)`` is the level
    being played, for a level sampler to score.

    When the wrapped env has ``observe(state, params)`` (the maze does), the observation is
    computed once, from the state chosen between the next and the reset one, instead of
    computing both and choosing: the observation is most of a maze step's cost.
    """

    auto_resets = True

    def __init__(self, env: Environment):
        super().__init__(env)
        if not is_level_env(env):
            raise TypeError(
                f"AutoReplay needs a level environment (a LevelEnvironment such as the maze or "
                f"ParamLevels(env, ranges)); got {env.name}. Use AutoReset for an env without "
                f"levels."
            )
        has_observe = callable(getattr(type(env), "observe", None))
        self._observe = env.observe if has_observe and not isinstance(env, Wrapper) else None

    def reset_env(self, key: jax.Array, params: Any) -> tuple[Any, Any]:
        return self._env.reset_to_level(key, self._env.sample_level(key, params), params)

    def step_env(self, key: jax.Array, state: Any, action: Any, params: Any) -> StepOutput:
        step_key, reset_key = jax.random.split(key)
        obs, next_state, reward, terminated, truncated, info = self._env.step_env(
            step_key, state, action, params
        )
        level = self._env.level_of(state)
        reset_obs, reset_state = self._env.reset_to_level(reset_key, level, params)
        done = jnp.logical_or(terminated, truncated)
        info = auto_reset_info(info, obs, terminated, truncated)
        # The level leaves of both states are the same arrays, so XLA drops their select.
        new_state = tree_select(done, reset_state, next_state)
        if self._observe is not None:
            new_obs = self._observe(new_state, params)
        else:
            new_obs = tree_select(done, reset_obs, obs)
        return new_obs, new_state, reward, terminated, truncated, info


# --- params as levels ---------------------------------------------------------------------------
@struct.dataclass
class ParamLevelsState:
    env_state: Any
    level: Any  # the params this episode runs under


class ParamLevels(Wrapper, LevelEnvironment):
    """Any env with a params pytree as a level env whose levels are params.

    ``ranges`` maps params field names to ``(low, high)``: a level is the given params with those
    fields drawn uniformly in their ranges (domain randomisation over dynamics), and
    ``mutate_level`` moves each ranged field by a uniform step of at most
    ``mutation_scale * (high - low)`` per edit, clipped to its range. Integer fields are rounded.
    The episode runs under its level's params whatever ``params`` the caller passes to ``step``
    (the level is kept in the state), so a batch of envs can each run different physics.

    Example::

        env, params = jaxrl_suite.make("gymnax/Pendulum-v1", wrappers=False)
        levels = ParamLevels(env, {"max_torque": (1.0, 3.0), "m": (0.5, 1.5)})
    """

    def __init__(
        self,
        env: Environment,
        ranges: Mapping[str, tuple[float, float]],
        mutation_scale: float = 0.05,
    ):
        Wrapper.__init__(self, env)
        params = env.default_params
        if not dataclasses.is_dataclass(params):
            raise TypeError(
                f"ParamLevels needs an env whose params are a dataclass pytree; {env.name} has "
                f"{type(params).__name__}."
            )
        fields = {f.name for f in dataclasses.fields(params)}
        if not isinstance(ranges, Mapping) or not ranges:
            raise ValueError(
                f"ParamLevels needs a non-empty mapping of params field -> (low, high); got "
                f"{ranges!r}. {env.name}'s params fields: {', '.join(sorted(fields))}."
            )
        checked = {}
        for name, bounds in ranges.items():
            if name not in fields:
                raise ValueError(
                    f"ParamLevels: {env.name}'s params have no field {name!r}; they have: "
                    f"{', '.join(sorted(fields))}."
                )
            try:
                low, high = (float(b) for b in bounds)
            except (TypeError, ValueError):
                raise ValueError(
                    f"ParamLevels: the range of {name!r} must be a pair (low, high) of numbers; "
                    f"got {bounds!r}."
                ) from None
            if not (np.isfinite(low) and np.isfinite(high) and low <= high):
                raise ValueError(
                    f"ParamLevels: the range of {name!r} must have finite low <= high; got "
                    f"({low}, {high})."
                )
            if np.ndim(getattr(params, name)) != 0:
                raise ValueError(
                    f"ParamLevels ranges scalar params fields; {name!r} has shape "
                    f"{np.shape(getattr(params, name))}."
                )
            checked[name] = (low, high)
        if not (isinstance(mutation_scale, (int, float)) and mutation_scale > 0):
            raise ValueError(f"ParamLevels needs mutation_scale > 0; got {mutation_scale!r}.")
        self.ranges = checked
        self.mutation_scale = float(mutation_scale)

    @staticmethod
    def _cast(value: jax.Array, like: Any) -> jax.Array:
        """``value`` in the dtype of the params field it replaces (integers rounded)."""
        dtype = jnp.result_type(like)
        if jnp.issubdtype(dtype, jnp.integer):
            value = jnp.round(value)
        return value.astype(dtype)

    def sample_level(self, key: jax.Array, params: Any = None) -> Any:
        params = self.resolve_params(params)
        keys = jax.random.split(key, len(self.ranges))
        values = {
            name: self._cast(jax.random.uniform(k, (), jnp.float32, low, high),
                             getattr(params, name))
            for k, (name, (low, high)) in zip(keys, self.ranges.items())
        }
        return params.replace(**values)

    def mutate_level(self, key: jax.Array, level: Any, num_edits: Any, params: Any = None) -> Any:
        def edit(i, current):
            keys = jax.random.split(jax.random.fold_in(key, i), len(self.ranges))
            values = {}
            for k, (name, (low, high)) in zip(keys, self.ranges.items()):
                width = self.mutation_scale * (high - low)
                step = jax.random.uniform(k, (), jnp.float32, -width, width)
                moved = jnp.clip(jnp.asarray(getattr(current, name), jnp.float32) + step, low, high)
                values[name] = self._cast(moved, getattr(current, name))
            return current.replace(**values)

        # The loop's carry must keep one type: give the ranged fields the dtype an edit returns
        # (a level built by hand may hold Python numbers there).
        level = level.replace(**{
            name: self._cast(jnp.asarray(getattr(level, name)), getattr(level, name))
            for name in self.ranges
        })
        return jax.lax.fori_loop(0, num_edits, edit, level)

    def reset_to_level(
        self, key: jax.Array, level: Any, params: Any = None
    ) -> tuple[Any, ParamLevelsState]:
        obs, state = self._env.reset_env(key, level)
        return obs, ParamLevelsState(state, level)

    def reset_env(self, key: jax.Array, params: Any) -> tuple[Any, ParamLevelsState]:
        return self.reset_to_level(key, self.sample_level(key, params), params)

    def level_of(self, state: ParamLevelsState) -> Any:
        return state.level

    def step_env(
        self, key: jax.Array, state: ParamLevelsState, action: Any, params: Any
    ) -> StepOutput:
        obs, env_state, reward, terminated, truncated, info = self._env.step_env(
            key, state.env_state, action, state.level
        )
        return obs, state.replace(env_state=env_state), reward, terminated, truncated, info
