"""Tiny deterministic envs whose transitions are easy to compute by hand."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from jaxrl_suite.env import spaces
from jaxrl_suite.env.environment import Environment, EnvState


@struct.dataclass
class CounterParams:
    max_steps_in_episode: int = 10
    terminal_at: int = 4  # the count at which the MDP terminates
    reward_scale: float = 1.0


@struct.dataclass
class CounterState(EnvState):
    count: jax.Array


class CounterEnv(Environment):
    """obs = [count, start]; action (Discrete(2)) adds 1 or 2 to count; reward = action + 1
    times reward_scale; terminated once count >= terminal_at; truncated at the step limit.
    ``start`` is drawn uniformly from {0, 1} at reset (so resets differ by key)."""

    @property
    def default_params(self) -> CounterParams:
        return CounterParams()

    def observation_space(self, params=None) -> spaces.Box:
        return spaces.Box(0.0, 100.0, (2,), jnp.float32)

    def action_space(self, params=None) -> spaces.Discrete:
        return spaces.Discrete(2)

    def reset_env(self, key, params):
        start = jax.random.randint(key, (), 0, 2)
        state = CounterState(time=jnp.zeros((), jnp.int32), count=start)
        return self._obs(state, start), state

    def _obs(self, state, start):
        return jnp.stack([state.count, start]).astype(jnp.float32)

    def step_env(self, key, state, action, params):
        count = state.count + action + 1
        new_state = CounterState(time=state.time + 1, count=count)
        reward = ((action + 1) * params.reward_scale).astype(jnp.float32)
        terminated = count >= params.terminal_at
        truncated = jnp.logical_and(new_state.time >= params.max_steps_in_episode, ~terminated)
        obs = self._obs(new_state, jnp.zeros((), jnp.int32))
        return obs, new_state, reward, terminated, truncated, {}


class VectorRewardCounterEnv(CounterEnv):
    """CounterEnv with a two-objective reward ``[action + 1, 1]``."""

    def reward_space(self, params=None) -> spaces.Box:
        return spaces.Box(0.0, 2.0, (2,), jnp.float32)

    def step_env(self, key, state, action, params):
        obs, new_state, reward, terminated, truncated, info = super().step_env(
            key, state, action, params
        )
        return obs, new_state, jnp.stack([reward, 1.0]), terminated, truncated, info


@struct.dataclass
class DictObsState(EnvState):
    pass


class DictObsEnv(Environment):
    """Dict observations ``{"position": Box(3), "room": Discrete(5)}``, constant."""

    def observation_space(self, params=None) -> spaces.Dict:
        return spaces.Dict(
            {"room": spaces.Discrete(5), "position": spaces.Box(-1.0, 1.0, (3,), jnp.float32)}
        )

    def action_space(self, params=None) -> spaces.Box:
        return spaces.Box(-2.0, 2.0, (2,), jnp.float32)

    def _obs(self):
        return {"room": jnp.asarray(3, jnp.int32), "position": jnp.array([0.5, -0.5, 0.25])}

    def reset_env(self, key, params):
        return self._obs(), DictObsState(time=jnp.zeros((), jnp.int32))

    def step_env(self, key, state, action, params):
        # reward = first action component, so tests can see what action arrived
        new_state = DictObsState(time=state.time + 1)
        return self._obs(), new_state, action[0], jnp.asarray(False), jnp.asarray(False), {}


@struct.dataclass
class ConstantRewardParams:
    max_steps_in_episode: int = 5


class ConstantRewardEnv(Environment):
    """Observation always [1.0]; reward 1 per step whatever the action (Discrete(2)); never
    terminates, truncated at ``max_steps_in_episode``. With discount gamma the true value of
    every state is 1 / (1 - gamma): an agent that treats the truncation as a termination learns
    a much smaller value (the mean discounted sum of the steps left before the limit)."""

    @property
    def default_params(self) -> ConstantRewardParams:
        return ConstantRewardParams()

    def observation_space(self, params=None) -> spaces.Box:
        return spaces.Box(0.0, 1.0, (1,), jnp.float32)

    def action_space(self, params=None) -> spaces.Discrete:
        return spaces.Discrete(2)

    def reset_env(self, key, params):
        return jnp.ones(1, jnp.float32), EnvState(time=jnp.zeros((), jnp.int32))

    def step_env(self, key, state, action, params):
        state = EnvState(time=state.time + 1)
        truncated = state.time >= params.max_steps_in_episode
        return (jnp.ones(1, jnp.float32), state, jnp.float32(1.0), jnp.bool_(False), truncated,
                {})


class ContinuousConstantRewardEnv(ConstantRewardEnv):
    """``ConstantRewardEnv`` with a continuous action ``Box(-1, 1, (1,))`` (ignored): the same
    true value 1 / (1 - gamma) for every state and action."""

    def action_space(self, params=None) -> spaces.Box:
        return spaces.Box(-1.0, 1.0, (1,), jnp.float32)


@struct.dataclass
class PointMassParams:
    max_steps_in_episode: int = 8
    step_size: float = 0.2


@struct.dataclass
class PointMassState(EnvState):
    position: jax.Array


class PointMassEnv(Environment):
    """A point on a line, pushed by a continuous action: ``x' = x + step_size * a`` with
    ``a`` in ``Box(-5, 5, (1,))``, reward ``-x'^2``, start ``x ~ U[-1, 1]``, truncated at the step
    limit. Every quantity is a smooth function of the actions (no ``stop_gradient``, unlike
    gymnax's envs), so the return of a rollout with reparameterised actions is differentiable
    in the policy's params: the env of the meta-gradient tests."""

    @property
    def default_params(self) -> PointMassParams:
        return PointMassParams()

    # The default float (float32, float64 under enable_x64): ClipAction casts actions to the
    # space's dtype, which must not round a float64 gradient check's actions to float32.
    def observation_space(self, params=None) -> spaces.Box:
        return spaces.Box(-10.0, 10.0, (1,), jnp.result_type(float))

    def action_space(self, params=None) -> spaces.Box:
        return spaces.Box(-5.0, 5.0, (1,), jnp.result_type(float))

    def reset_env(self, key, params):
        # The default float: float32, or float64 under enable_x64 (the gradient check).
        position = jax.random.uniform(key, (1,), minval=-1.0, maxval=1.0)
        return position, PointMassState(time=jnp.zeros((), jnp.int32), position=position)

    def step_env(self, key, state, action, params):
        position = state.position + params.step_size * action
        new_state = PointMassState(time=state.time + 1, position=position)
        truncated = new_state.time >= params.max_steps_in_episode
        return position, new_state, -jnp.sum(position ** 2), jnp.bool_(False), truncated, {}


@struct.dataclass
class TwoArmParams:
    max_steps_in_episode: int = 5


class TwoArmEnv(Environment):
    """A two-objective bandit over ``max_steps_in_episode`` steps: action 0 pays ``[1, 0]``,
    action 1 pays ``[0, 1]``; observation ``[1.0]``; truncated at the step limit. The best
    policy under preference weights ``w`` picks the arm of the larger weight, so a set of
    preferences trained at once must give a set of different policies."""

    num_objectives = 2

    @property
    def default_params(self) -> TwoArmParams:
        return TwoArmParams()

    def observation_space(self, params=None) -> spaces.Box:
        return spaces.Box(0.0, 1.0, (1,), jnp.float32)

    def action_space(self, params=None) -> spaces.Discrete:
        return spaces.Discrete(2)

    def reward_space(self, params=None) -> spaces.Box:
        return spaces.Box(0.0, 1.0, (2,), jnp.float32)

    def reset_env(self, key, params):
        return jnp.ones(1, jnp.float32), EnvState(time=jnp.zeros((), jnp.int32))

    def step_env(self, key, state, action, params):
        state = EnvState(time=state.time + 1)
        reward = jnp.stack([action == 0, action == 1]).astype(jnp.float32)
        truncated = state.time >= params.max_steps_in_episode
        return jnp.ones(1, jnp.float32), state, reward, jnp.bool_(False), truncated, {}


class ContinuousTwoArmEnv(TwoArmEnv):
    """``TwoArmEnv`` with a continuous action ``Box(-1, 1, (1,))``: the reward is
    ``[(1 + a) / 2, (1 - a) / 2]`` (``a`` clipped to the bounds), summing to 1 every step. Under
    preference ``w`` the best action is ``+1`` when ``w_0 > w_1`` and ``-1`` when ``w_1 > w_0``,
    so the per-objective returns of an episode (``max_steps_in_episode`` steps) order as the
    weights do."""

    def action_space(self, params=None) -> spaces.Box:
        return spaces.Box(-1.0, 1.0, (1,), jnp.float32)

    def step_env(self, key, state, action, params):
        state = EnvState(time=state.time + 1)
        a = jnp.clip(jnp.asarray(action, jnp.float32).reshape(()), -1.0, 1.0)
        reward = jnp.stack([(1.0 + a) / 2.0, (1.0 - a) / 2.0])
        truncated = state.time >= params.max_steps_in_episode
        return jnp.ones(1, jnp.float32), state, reward, jnp.bool_(False), truncated, {}
