"""Multi-objective Mountain Car, discrete (3 objectives) and continuous (2 objectives).

The classic car in a valley of Moore, "Efficient Memory-based Learning for Robot Control", PhD
thesis, University of Cambridge (1990), with the dynamics of Gymnasium's ``MountainCar-v0``
and ``MountainCarContinuous-v0``, and the vector rewards MO-Gymnasium gives them
(``mo-mountaincar-v0``, ``mo_gymnasium/envs/mountain_car/mountain_car.py``, after Vamplew et
al., "Empirical evaluation methods for multiobjective reinforcement learning algorithms",
Machine Learning 84 (2011); ``mo-mountaincarcontinuous-v0``,
``mo_gymnasium/envs/continuous_mountain_car/continuous_mountain_car.py``).

State ``[position, velocity]`` (also the float32 observation), reset to position ~ U[-0.6,
-0.4] and velocity 0. Per step (units: position and velocity per step)::

    velocity += push - gravity * cos(3 * position);  clip to [-max_speed, max_speed]
    position += velocity;                             clip to [min_position, max_position]
    velocity = 0 if position == min_position and velocity < 0

terminated when ``position >= goal_position and velocity >= goal_velocity``.

* ``MOMountainCar``: actions 0 push left, 1 no push, 2 push right; ``push = (action - 1) *
  force``, goal 0.5. Reward ``[time, reverse, forward]``: -1 every step except the one that
  reaches the goal (0), -1 when the action is 0, -1 when it is 2. ``TimeLimit`` 200 steps.
* ``MOMountainCarContinuous``: action ``a`` in [-1, 1] (float32 ``(1,)``); ``push = power *
  clip(a, -1, 1)``, goal 0.45. Reward ``[time, fuel]``: -1 every step except the one that
  reaches the goal (0), and ``-a**2`` of the action as given (MO-Gymnasium does not clip it
  there). ``TimeLimit`` 999 steps.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from jaxrl_suite.env import spaces
from jaxrl_suite.env.environment import EnvState, StepOutput
from jaxrl_suite.envs.mo.common import MOEnvironment, truncate_at_limit

__all__ = [
    "MOMountainCar",
    "MOMountainCarContinuous",
    "MountainCarContinuousParams",
    "MountainCarParams",
    "MountainCarState",
]


@struct.dataclass
class MountainCarParams:
    """Gymnasium's ``MountainCar-v0`` constants; ``max_steps_in_episode`` its ``TimeLimit``."""

    min_position: float = -1.2
    max_position: float = 0.6
    max_speed: float = 0.07
    goal_position: float = 0.5
    goal_velocity: float = 0.0
    force: float = 0.001
    gravity: float = 0.0025
    max_steps_in_episode: int = 200


@struct.dataclass
class MountainCarContinuousParams:
    """Gymnasium's ``MountainCarContinuous-v0`` constants; ``max_steps_in_episode`` its
    ``TimeLimit``."""

    min_position: float = -1.2
    max_position: float = 0.6
    max_speed: float = 0.07
    goal_position: float = 0.45
    goal_velocity: float = 0.0
    power: float = 0.0015
    gravity: float = 0.0025
    min_action: float = -1.0
    max_action: float = 1.0
    max_steps_in_episode: int = 999


@struct.dataclass
class MountainCarState(EnvState):
    position: jax.Array  # float32 ()
    velocity: jax.Array  # float32 ()


def _reset(key: jax.Array) -> MountainCarState:
    position = jax.random.uniform(key, (), jnp.float32, minval=-0.6, maxval=-0.4)
    return MountainCarState(time=jnp.zeros((), jnp.int32), position=position,
                            velocity=jnp.zeros((), jnp.float32))


def _physics(state: MountainCarState, push: jax.Array, params: Any
             ) -> tuple[MountainCarState, jax.Array]:
    """One step of the shared dynamics (module docstring); returns the next state and whether
    the car reached the goal."""
    velocity = state.velocity + push - params.gravity * jnp.cos(3.0 * state.position)
    velocity = jnp.clip(velocity, -params.max_speed, params.max_speed)
    position = jnp.clip(state.position + velocity, params.min_position, params.max_position)
    # The left wall is inelastic.
    velocity = jnp.where((position == params.min_position) & (velocity < 0), 0.0, velocity)
    reached = (position >= params.goal_position) & (velocity >= params.goal_velocity)
    next_state = MountainCarState(time=state.time + 1, position=position.astype(jnp.float32),
                                  velocity=velocity.astype(jnp.float32))
    return next_state, reached


def _observe(state: MountainCarState) -> jax.Array:
    return jnp.stack([state.position, state.velocity]).astype(jnp.float32)


def _observation_space(params: Any) -> spaces.Box:
    low = np.array([params.min_position, -params.max_speed], np.float64)
    high = np.array([params.max_position, params.max_speed], np.float64)
    return spaces.Box(low, high, (2,), jnp.float32)


class MOMountainCar(MOEnvironment):
    """``mo-mountaincar-v0`` (module docstring)."""

    num_objectives = 3
    objective_names = ("time", "reverse", "forward")
    # No published standard (MO-Gymnasium and morl-baselines give none): each objective's lowest
    # return in an episode (-200) less a margin of 1, so points on that bound still count.
    reference_point_values = (-201.0, -201.0, -201.0)
    reference_point_source = "derived: the lowest return per objective less 1 (none published)"

    @property
    def name(self) -> str:
        return "mountaincar"

    @property
    def default_params(self) -> MountainCarParams:
        return MountainCarParams()

    def observation_space(self, params: Any = None) -> spaces.Box:
        # Bounds from the default params: a space is concrete, and params may be traced.
        return _observation_space(self.default_params)

    def action_space(self, params: Any = None) -> spaces.Discrete:
        return spaces.Discrete(3)

    def reward_space(self, params: Any = None) -> spaces.Box:
        return spaces.Box(-1.0, 0.0, (3,), jnp.float32)

    def reset_env(self, key: jax.Array, params: MountainCarParams
                  ) -> tuple[jax.Array, MountainCarState]:
        state = _reset(key)
        return _observe(state), state

    def step_env(self, key: jax.Array, state: MountainCarState, action: Any,
                 params: MountainCarParams) -> StepOutput:
        action = jnp.asarray(action, jnp.int32)
        push = (action - 1).astype(jnp.float32) * params.force
        next_state, terminated = _physics(state, push, params)
        reward = jnp.stack([jnp.where(terminated, 0.0, -1.0), jnp.where(action == 0, -1.0, 0.0),
                            jnp.where(action == 2, -1.0, 0.0)]).astype(jnp.float32)
        truncated = truncate_at_limit(next_state.time, terminated, params.max_steps_in_episode)
        return _observe(next_state), next_state, reward, terminated, truncated, {}


class MOMountainCarContinuous(MOEnvironment):
    """``mo-mountaincarcontinuous-v0`` (module docstring)."""

    num_objectives = 2
    objective_names = ("time", "fuel")
    # No published standard (morl-baselines' tests/test_algos.py uses [0, 0] in a smoke test,
    # which no return dominates): each objective's lowest return in an episode (-999, for actions
    # in the action space) less a margin of 1.
    reference_point_values = (-1000.0, -1000.0)
    reference_point_source = "derived: the lowest return per objective less 1 (none published)"

    @property
    def name(self) -> str:
        return "mountaincar-continuous"

    @property
    def default_params(self) -> MountainCarContinuousParams:
        return MountainCarContinuousParams()

    def observation_space(self, params: Any = None) -> spaces.Box:
        return _observation_space(self.default_params)

    def action_space(self, params: Any = None) -> spaces.Box:
        return spaces.Box(-1.0, 1.0, (1,), jnp.float32)

    def reward_space(self, params: Any = None) -> spaces.Box:
        """``[time, fuel]`` in [-1, 0] each (the fuel bound holds for actions in the action
        space; MO-Gymnasium's reward space states the same)."""
        return spaces.Box(-1.0, 0.0, (2,), jnp.float32)

    def reset_env(self, key: jax.Array, params: MountainCarContinuousParams
                  ) -> tuple[jax.Array, MountainCarState]:
        state = _reset(key)
        return _observe(state), state

    def step_env(self, key: jax.Array, state: MountainCarState, action: Any,
                 params: MountainCarContinuousParams) -> StepOutput:
        a = jnp.asarray(action, jnp.float32).reshape(())
        force = jnp.clip(a, params.min_action, params.max_action)
        next_state, terminated = _physics(state, force * params.power, params)
        reward = jnp.stack([jnp.where(terminated, 0.0, -1.0), -(a ** 2)]).astype(jnp.float32)
        truncated = truncate_at_limit(next_state.time, terminated, params.max_steps_in_episode)
        return _observe(next_state), next_state, reward, terminated, truncated, {}
