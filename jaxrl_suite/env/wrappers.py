"""Wrappers (DESIGN.md section 3): environments around an environment.

Each wrapper is itself an ``Environment`` over the same ``params`` as the env it wraps, so
wrappers compose and ``params`` never change shape. A wrapper that keeps state of its own puts it
in a ``flax.struct.dataclass`` holding the wrapped env's state as ``env_state``.

Order matters for wrappers with persistent statistics: ``NormalizeObservation`` and
``NormalizeReward`` keep running statistics across episodes, so they go *outside* ``AutoReset``
(an auto-reset re-creates everything inside it). ``make()`` returns
``EpisodeStats(AutoReset(env))``; add normalisers around that.

The auto-resetting wrappers fill ``info`` as gymnax 1.x's own resetting ``step`` does
(``auto_reset_info``), so gymnax's wrappers (``LogWrapper``, ``FlattenObservationWrapper``,
``LegacyStepAPIWrapper``) and loops written for gymnax run unchanged on ``make(id)``.

Batching is ``jax.vmap`` by the caller. The normalisers take an optional ``axis_name``: when the
caller vmaps with that axis name, statistics are pooled over the whole batch of envs (every env
then normalises with the same statistics, as a vectorised-env normaliser does).
"""

from __future__ import annotations

import warnings
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from jaxrl_suite.env import spaces
from jaxrl_suite.env.environment import Environment, StepOutput

__all__ = [
    "Wrapper",
    "AutoReset",
    "auto_reset_info",
    "EpisodeEndCheck",
    "FinishedEpisodeWarning",
    "CachedAutoReset",
    "EpisodeStats",
    "TimeLimit",
    "NormalizeObservation",
    "NormalizeReward",
    "ClipAction",
    "FlattenObservation",
    "Scalarize",
    "ScalarizeParams",
    "ScalarizeState",
    "check_preference_weights",
    "flatten_image_observation",
    "RunningMeanStd",
    "has_wrapper",
    "find_state",
    "auto_reset_env",
    "resets_automatically",
    "without_auto_reset",
    "finished_episode_metrics",
]


class Wrapper(Environment):
    """Delegates everything to the wrapped env; subclasses override what they change."""

    def __init__(self, env: Environment):
        if not isinstance(env, Environment):
            raise TypeError(
                f"{type(self).__name__} wraps a jaxrl_suite Environment; got "
                f"{type(env).__name__}. Adapt gymnax envs with jaxrl_suite.make('gymnax/<id>')."
            )
        self._env = env

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name == "_env":
            raise AttributeError(name)
        return getattr(self._env, name)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._env!r})"

    @property
    def default_params(self) -> Any:
        return self._env.default_params

    @property
    def name(self) -> str:
        return self._env.name

    @property
    def unwrapped(self) -> Environment:
        return self._env.unwrapped

    def observation_space(self, params: Any = None) -> spaces.Space:
        return self._env.observation_space(params)

    def action_space(self, params: Any = None) -> spaces.Space:
        return self._env.action_space(params)

    def check_params(self, params: Any) -> None:
        self._env.check_params(params)

    def state_space(self, params: Any = None) -> spaces.Space:
        """The wrapped env's state space (not this wrapper's own state), as gymnax's wrappers
        report it."""
        return self._env.state_space(params)

    def reset_env(self, key: jax.Array, params: Any) -> tuple[Any, Any]:
        return self.wrap_reset(*self._env.reset_env(key, params), params)

    def reset_to_level(self, key: jax.Array, level: Any, params: Any = None) -> tuple[Any, Any]:
        """Reset the wrapped level env to ``level`` (DESIGN.md section 4), through this wrapper.

        Every wrapper builds its state from the wrapped env's reset in ``wrap_reset``, so a
        level reset passes through a whole stack of wrappers the same way a random reset does.
        """
        params = self.resolve_params(params)
        if not hasattr(self._env, "reset_to_level"):
            raise TypeError(
                f"{self.name} is not a level environment: reset_to_level needs a "
                f"LevelEnvironment (such as the maze or ParamLevels(env, ranges)) inside."
            )
        return self.wrap_reset(*self._env.reset_to_level(key, level, params), params)

    def wrap_reset(self, obs: Any, state: Any, params: Any) -> tuple[Any, Any]:
        """This wrapper's ``(obs, state)`` from the wrapped env's reset output."""
        return obs, state

    # True for wrappers whose state is their own dataclass holding the wrapped env's state as
    # ``env_state``; False for wrappers that pass the wrapped env's state through.
    owns_state = False

    def level_of(self, state: Any) -> Any:
        """The level the episode of ``state`` started from, for a level env inside."""
        return self._env.level_of(state.env_state if self.owns_state else state)

    def step_env(self, key: jax.Array, state: Any, action: Any, params: Any) -> StepOutput:
        return self._env.step_env(key, state, action, params)


def tree_select(predicate: jax.Array, on_true: Any, on_false: Any) -> Any:
    """Leafwise ``where(predicate, on_true, on_false)`` for a scalar boolean ``predicate``."""
    return jax.tree.map(lambda a, b: jnp.where(predicate, a, b), on_true, on_false)


# --- auto-reset ---------------------------------------------------------------------------------
def auto_reset_info(
    info: dict[str, Any], final_observation: Any, terminated: jax.Array, truncated: jax.Array
) -> dict[str, Any]:
    """``info`` of an auto-resetting step, with the keys gymnax 1.x's resetting ``step`` adds.

    ``final_observation`` (the observation the reset replaced), ``terminated`` and ``truncated``
    (bool scalars, the step's own flags: gymnax code reads them from ``info``, e.g.
    ``1 - info["terminated"]``), and ``discount`` (float32 scalar, 0 where the MDP terminated,
    else 1), which gymnax's envs put in ``info``: an env's own ``discount`` is kept, the
    others get it here. The wrapped env's other keys are kept.
    """
    discount = info.get("discount", 1.0 - jnp.asarray(terminated, jnp.float32))
    return {
        **info,
        "terminated": terminated,
        "truncated": truncated,
        "discount": discount,
        "final_observation": final_observation,
    }


class AutoReset(Wrapper):
    """Resets when an episode ends, with a fresh random reset each time.

    On ``terminated | truncated`` the returned observation and state are those of a new episode;
    the observation they replaced is ``info["final_observation"]`` (gymnax 1.0's key), which is
    what an algorithm bootstraps a truncated step from; ``info`` also holds gymnax's
    ``terminated``, ``truncated`` and ``discount`` (``auto_reset_info``). The key is split as
    gymnax does (``step_key, reset_key = split(key)``), so results match gymnax's auto-resetting
    ``step``.

    Under ``vmap`` both branches are computed for every env, so this costs one ``reset`` per
    step. ``CachedAutoReset`` avoids that where resets are expensive.
    """

    auto_resets = True

    def step_env(self, key: jax.Array, state: Any, action: Any, params: Any) -> StepOutput:
        step_key, reset_key = jax.random.split(key)
        obs, next_state, reward, terminated, truncated, info = self._env.step_env(
            step_key, state, action, params
        )
        reset_obs, reset_state = self._env.reset_env(reset_key, params)
        done = jnp.logical_or(terminated, truncated)
        info = auto_reset_info(info, obs, terminated, truncated)
        return (
            tree_select(done, reset_obs, obs),
            tree_select(done, reset_state, next_state),
            reward,
            terminated,
            truncated,
            info,
        )


@struct.dataclass
class CachedAutoResetState:
    env_state: Any
    initial_observation: Any
    initial_state: Any


class CachedAutoReset(Wrapper):
    """Auto-reset that reuses the first reset of each env instead of computing a new one.

    ``reset`` is computed once, when the wrapper is reset, and kept in the state; every later
    episode in that env slot starts from that same initial state (Brax's auto-reset behaviour).
    Cheaper than ``AutoReset`` when ``reset`` is costly (physics initialisation, level
    generation); the price is less diversity of initial states, which comes only from the batch.
    """

    auto_resets = True

    owns_state = True

    def wrap_reset(self, obs: Any, state: Any, params: Any) -> tuple[Any, CachedAutoResetState]:
        return obs, CachedAutoResetState(state, obs, state)

    def step_env(
        self, key: jax.Array, state: CachedAutoResetState, action: Any, params: Any
    ) -> StepOutput:
        obs, next_state, reward, terminated, truncated, info = self._env.step_env(
            key, state.env_state, action, params
        )
        done = jnp.logical_or(terminated, truncated)
        info = auto_reset_info(info, obs, terminated, truncated)
        new_state = state.replace(
            env_state=tree_select(done, state.initial_state, next_state)
        )
        return (
            tree_select(done, state.initial_observation, obs),
            new_state,
            reward,
            terminated,
            truncated,
            info,
        )


# --- stepping past an episode's end (debug mode) ------------------------------------------------
class FinishedEpisodeWarning(RuntimeWarning):
    """A finished episode was stepped again: the env does not reset, and the loop did not."""


def _warn_if_finished(finished: np.ndarray) -> np.ndarray:
    # Host side of EpisodeEndCheck; finished has the shape of the vmapped batch (or ()). The
    # message is constant so that Python's default filter shows it once, not once per count.
    if np.any(finished):
        warnings.warn(
            "An env stepped a state whose episode had already ended. The env does not reset "
            "(make(id, wrappers=False) gives the raw env); a loop written for gymnax's "
            "auto-resetting step needs make(id), or wrappers.AutoReset(env), or a reset of its "
            "own when terminated | truncated.",
            FinishedEpisodeWarning,
            stacklevel=1,  # this function: one location, so the default filter shows it once
        )
    return finished


@struct.dataclass
class EpisodeEndCheckState:
    env_state: Any
    finished: jax.Array  # bool: the episode has ended (and no reset came since)


class EpisodeEndCheck(Wrapper):
    """Warns (``FinishedEpisodeWarning``) when a state whose episode has ended is stepped.

    A debug aid for raw envs (``make(id, wrappers=False)``), which do not reset: a loop written
    for gymnax's auto-resetting ``step`` keeps stepping the ended episode and gets plausible
    numbers (PureJaxRL's loop reported ~200k "episodes" of return 0), no error. ``make(id,
    wrappers=False, debug=True)`` (or ``JAXRL_DEBUG=1``) adds this wrapper. The state holds the
    env's as ``env_state``; a reset clears the flag, so under ``AutoReset`` it never warns.

    Why this way: the check must run inside the user's compiled loop as written, so neither a
    Python check (the state is traced) nor ``checkify`` (the loop would have to be wrapped in
    ``checkify.checkify``) fits. ``jax.debug.callback`` would, but under ``vmap`` it is unrolled
    into one callback per env, which for thousands of envs makes compilation crawl. So one
    ``jax.pure_callback`` with ``vmap_method="broadcast_all"`` sees the whole batch's flags: one
    host call per step, whatever the batch; its result is the flag carried on (an ended episode
    stays ended until a reset), so the call is never dropped as unused. That host call per step
    is why it is opt-in. Python's warning filters apply: shown once by default;
    ``warnings.simplefilter("error", FinishedEpisodeWarning)`` makes the compiled program raise.
    """

    owns_state = True

    def wrap_reset(self, obs: Any, state: Any, params: Any) -> tuple[Any, EpisodeEndCheckState]:
        return obs, EpisodeEndCheckState(state, jnp.zeros((), jnp.bool_))

    def step_env(
        self, key: jax.Array, state: EpisodeEndCheckState, action: Any, params: Any
    ) -> StepOutput:
        finished = jax.pure_callback(
            _warn_if_finished, jax.ShapeDtypeStruct((), jnp.bool_), state.finished,
            vmap_method="broadcast_all",
        )
        obs, env_state, reward, terminated, truncated, info = self._env.step_env(
            key, state.env_state, action, params
        )
        ended = jnp.logical_or(finished, jnp.logical_or(terminated, truncated))
        return obs, EpisodeEndCheckState(env_state, ended), reward, terminated, truncated, info


# --- episode statistics -------------------------------------------------------------------------
def reward_shape(env: Environment, params: Any = None) -> tuple[int, ...]:
    """``()`` for a scalar reward, ``(num_objectives,)`` for an env with a ``reward_space``
    (multi-objective); looked up through the wrapper stack."""
    reward_space = getattr(env, "reward_space", None)
    return tuple(reward_space(params).shape) if callable(reward_space) else ()


@struct.dataclass
class EpisodeStatsState:
    env_state: Any
    episode_return: jax.Array  # running undiscounted return of the current episode
    episode_length: jax.Array  # steps taken in the current episode, int32


class EpisodeStats(Wrapper):
    """Tracks episode return and length so metrics need no host code.

    Adds to ``info``: ``episode_return`` and ``episode_length`` (of the episode this step belongs
    to, this step included), and ``returned_episode`` (bool: the episode ended at this step).
    The return of finished episodes is therefore ``info["episode_return"]`` where
    ``info["returned_episode"]``. Multi-objective rewards give a vector ``episode_return``.
    """

    owns_state = True

    def wrap_reset(self, obs: Any, state: Any, params: Any) -> tuple[Any, EpisodeStatsState]:
        # The default float (float32; float64 under enable_x64, so the return's dtype stays
        # that of a float64 env's rewards through the episode).
        zero_return = jnp.zeros(reward_shape(self._env, params), jnp.result_type(float))
        return obs, EpisodeStatsState(state, zero_return, jnp.zeros((), jnp.int32))

    def step_env(
        self, key: jax.Array, state: EpisodeStatsState, action: Any, params: Any
    ) -> StepOutput:
        obs, env_state, reward, terminated, truncated, info = self._env.step_env(
            key, state.env_state, action, params
        )
        done = jnp.logical_or(terminated, truncated)
        episode_return = state.episode_return + reward
        episode_length = state.episode_length + 1
        info = {
            **info,
            "episode_return": episode_return,
            "episode_length": episode_length,
            "returned_episode": done,
        }
        new_state = EpisodeStatsState(
            env_state,
            jnp.where(done, jnp.zeros_like(episode_return), episode_return),
            jnp.where(done, 0, episode_length),
        )
        return obs, new_state, reward, terminated, truncated, info


# --- time limit ---------------------------------------------------------------------------------
@struct.dataclass
class TimeLimitState:
    env_state: Any
    time: jax.Array


class TimeLimit(Wrapper):
    """Truncates episodes after ``max_episode_steps`` steps (``truncated=True``, not terminated).

    For envs without an episode length of their own. The adapters (``gymnax/``, ``brax/``) keep
    the episode length in params (``max_steps_in_episode``) so it can change without recompiling;
    prefer that where it exists.
    """

    owns_state = True

    def __init__(self, env: Environment, max_episode_steps: int):
        super().__init__(env)
        if isinstance(max_episode_steps, bool) or not isinstance(max_episode_steps, int) or (
            max_episode_steps <= 0
        ):
            raise ValueError(
                f"TimeLimit needs a positive integer max_episode_steps; got {max_episode_steps!r}."
            )
        self.max_episode_steps = max_episode_steps

    def wrap_reset(self, obs: Any, state: Any, params: Any) -> tuple[Any, TimeLimitState]:
        return obs, TimeLimitState(state, jnp.zeros((), jnp.int32))

    def step_env(
        self, key: jax.Array, state: TimeLimitState, action: Any, params: Any
    ) -> StepOutput:
        obs, env_state, reward, terminated, truncated, info = self._env.step_env(
            key, state.env_state, action, params
        )
        time = state.time + 1
        out_of_time = time >= self.max_episode_steps
        truncated = jnp.logical_and(jnp.logical_or(truncated, out_of_time), ~terminated)
        return obs, TimeLimitState(env_state, time), reward, terminated, truncated, info


# --- normalisation ------------------------------------------------------------------------------
@struct.dataclass
class RunningMeanStd:
    """Running mean and variance, merged batch by batch (Chan et al.'s parallel algorithm)."""

    mean: jax.Array
    var: jax.Array
    count: jax.Array  # float32; starts at a small epsilon so the first update is well defined

    @classmethod
    def create(cls, shape: tuple[int, ...]) -> RunningMeanStd:
        return cls(jnp.zeros(shape), jnp.ones(shape), jnp.asarray(1e-4, jnp.float32))

    def normalize(self, x: jax.Array, clip: float = 10.0, epsilon: float = 1e-8) -> jax.Array:
        """``clip((x - mean) / sqrt(var + epsilon), -clip, clip)`` as float32."""
        scaled = (x - self.mean) / jnp.sqrt(self.var + epsilon)
        return jnp.clip(scaled, -clip, clip).astype(jnp.float32)

    def update(self, x: jax.Array, axis_name: str | None) -> RunningMeanStd:
        """Merge one sample ``x`` (per env), pooled over ``axis_name`` when given."""
        if axis_name is None:
            batch_mean, batch_var, batch_count = x, jnp.zeros_like(x), jnp.asarray(1.0)
        else:
            batch_mean = jax.lax.pmean(x, axis_name)
            batch_var = jax.lax.pmean(jnp.square(x - batch_mean), axis_name)
            batch_count = jax.lax.psum(jnp.asarray(1.0), axis_name)
        delta = batch_mean - self.mean
        total = self.count + batch_count
        mean = self.mean + delta * batch_count / total
        m2 = self.var * self.count + batch_var * batch_count
        m2 = m2 + jnp.square(delta) * self.count * batch_count / total
        return RunningMeanStd(mean, m2 / total, total)


@struct.dataclass
class NormalizeObservationState:
    env_state: Any
    obs_stats: RunningMeanStd


class NormalizeObservation(Wrapper):
    """Normalises observations by running mean and std: ``clip((obs - mean) / std, ±clip)``.

    Statistics are updated with every observation (reset and step) before it is normalised, and
    are frozen when ``update_stats=False`` (evaluation). ``info["final_observation"]`` is
    normalised with the same statistics, so bootstrapped values see what the agent sees.
    Needs an array (Box) observation; place outside ``AutoReset``.
    """

    owns_state = True

    def __init__(
        self,
        env: Environment,
        axis_name: str | None = None,
        clip: float = 10.0,
        epsilon: float = 1e-8,
        update_stats: bool = True,
    ):
        super().__init__(env)
        space = env.observation_space(env.default_params)
        if not isinstance(space, spaces.Box):
            raise TypeError(
                f"NormalizeObservation needs a Box observation space; {env.name} has {space}. "
                f"Apply FlattenObservation first for Dict observations."
            )
        self.axis_name, self.clip, self.epsilon = axis_name, clip, epsilon
        self.update_stats = update_stats

    def observation_space(self, params: Any = None) -> spaces.Box:
        shape = self._env.observation_space(params).shape
        return spaces.Box(-self.clip, self.clip, shape, jnp.float32)

    def _normalize(self, obs: jax.Array, stats: RunningMeanStd) -> jax.Array:
        return stats.normalize(obs, self.clip, self.epsilon)

    def _updated(self, stats: RunningMeanStd, obs: jax.Array) -> RunningMeanStd:
        if not self.update_stats:
            return stats
        return stats.update(obs.astype(jnp.float32), self.axis_name)

    def wrap_reset(
        self, obs: Any, state: Any, params: Any
    ) -> tuple[jax.Array, NormalizeObservationState]:
        stats = self._updated(RunningMeanStd.create(jnp.shape(obs)), obs)
        return self._normalize(obs, stats), NormalizeObservationState(state, stats)

    def step_env(
        self, key: jax.Array, state: NormalizeObservationState, action: Any, params: Any
    ) -> StepOutput:
        obs, env_state, reward, terminated, truncated, info = self._env.step_env(
            key, state.env_state, action, params
        )
        stats = self._updated(state.obs_stats, obs)
        if "final_observation" in info:
            info = {**info, "final_observation": self._normalize(info["final_observation"], stats)}
        new_state = NormalizeObservationState(env_state, stats)
        return self._normalize(obs, stats), new_state, reward, terminated, truncated, info


@struct.dataclass
class NormalizeRewardState:
    env_state: Any
    discounted_return: jax.Array
    return_stats: RunningMeanStd


class NormalizeReward(Wrapper):
    """Scales rewards by the running std of the discounted return: ``clip(r / std, ±clip)``.
    A vector reward (an env with ``reward_space``) is scaled per objective.

    ``gamma`` is the discount of that return (use the agent's). Rewards are scaled, not shifted,
    so their sign is kept. Place outside ``AutoReset`` and outside ``EpisodeStats`` (so reported
    episode returns stay in the env's units).
    """

    owns_state = True

    def __init__(
        self,
        env: Environment,
        gamma: float = 0.99,
        axis_name: str | None = None,
        clip: float = 10.0,
        epsilon: float = 1e-8,
    ):
        super().__init__(env)
        if not 0.0 <= gamma <= 1.0:
            raise ValueError(f"NormalizeReward needs 0 <= gamma <= 1; got gamma={gamma}.")
        self.gamma, self.axis_name, self.clip, self.epsilon = gamma, axis_name, clip, epsilon

    def wrap_reset(self, obs: Any, state: Any, params: Any) -> tuple[Any, NormalizeRewardState]:
        # One discounted return and one running std per objective of a vector reward.
        shape = reward_shape(self._env, params)
        zero = jnp.zeros(shape, jnp.float32)
        return obs, NormalizeRewardState(state, zero, RunningMeanStd.create(shape))

    def step_env(
        self, key: jax.Array, state: NormalizeRewardState, action: Any, params: Any
    ) -> StepOutput:
        obs, env_state, reward, terminated, truncated, info = self._env.step_env(
            key, state.env_state, action, params
        )
        discounted_return = state.discounted_return * self.gamma + reward
        stats = state.return_stats.update(discounted_return, self.axis_name)
        scaled = jnp.clip(reward / jnp.sqrt(stats.var + self.epsilon), -self.clip, self.clip)
        done = jnp.logical_or(terminated, truncated)
        new_state = NormalizeRewardState(
            env_state, jnp.where(done, 0.0, discounted_return), stats
        )
        return obs, new_state, scaled.astype(jnp.float32), terminated, truncated, info


# --- actions and observations -------------------------------------------------------------------
class ClipAction(Wrapper):
    """Clips continuous actions into the ``Box`` action space's bounds before stepping."""

    def __init__(self, env: Environment):
        super().__init__(env)
        space = env.action_space(env.default_params)
        if not isinstance(space, spaces.Box):
            raise TypeError(f"ClipAction needs a Box action space; {env.name} has {space}.")

    def step_env(self, key: jax.Array, state: Any, action: Any, params: Any) -> StepOutput:
        space = self._env.action_space(params)
        clipped = jnp.clip(action, space.low, space.high).astype(space.dtype)
        return self._env.step_env(key, state, clipped, params)


def _flat_bounds(space: spaces.Space) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(space, spaces.Box):
        return space.low.ravel().astype(np.float64), space.high.ravel().astype(np.float64)
    if isinstance(space, spaces.Discrete):
        return np.zeros(1), np.full(1, space.n - 1.0)
    if isinstance(space, spaces.MultiDiscrete):
        return np.zeros(space.shape), space.nvec - 1.0
    if isinstance(space, spaces.Dict):
        parts = [_flat_bounds(space.spaces[name]) for name in sorted(space.spaces)]
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    raise TypeError(f"FlattenObservation cannot flatten a {type(space).__name__} space.")


class FlattenObservation(Wrapper):
    """Flattens observations into one float32 vector (``Dict`` entries in sorted key order)."""

    def __init__(self, env: Environment):
        super().__init__(env)
        _flat_bounds(env.observation_space(env.default_params))  # refuse unsupported spaces now

    def observation_space(self, params: Any = None) -> spaces.Box:
        low, high = _flat_bounds(self._env.observation_space(params))
        return spaces.Box(low, high, low.shape, jnp.float32)

    @staticmethod
    def _flatten(obs: Any) -> jax.Array:
        if isinstance(obs, dict):
            return jnp.concatenate([FlattenObservation._flatten(obs[k]) for k in sorted(obs)])
        return jnp.ravel(obs).astype(jnp.float32)

    def wrap_reset(self, obs: Any, state: Any, params: Any) -> tuple[jax.Array, Any]:
        return self._flatten(obs), state

    def step_env(self, key: jax.Array, state: Any, action: Any, params: Any) -> StepOutput:
        obs, state, reward, terminated, truncated, info = self._env.step_env(
            key, state, action, params
        )
        if "final_observation" in info:
            info = {**info, "final_observation": self._flatten(info["final_observation"])}
        return self._flatten(obs), state, reward, terminated, truncated, info


# --- multi-objective: scalarisation -------------------------------------------------------------
def check_preference_weights(weights: Any, num_objectives: int, where: str) -> np.ndarray:
    """``weights`` as a float32 ``(num_objectives,)`` array, or a ``ValueError`` naming the bad
    value: a wrong length, a negative or non-finite weight, or all zero."""
    array = np.asarray(weights, dtype=np.float64)
    if array.shape != (num_objectives,):
        raise ValueError(f"{where}: preference weights must have shape ({num_objectives},), one "
                         f"per objective of the env; got shape {array.shape} ({weights!r}).")
    if not np.all(np.isfinite(array)) or np.any(array < 0) or not np.any(array > 0):
        raise ValueError(f"{where}: preference weights must be finite, non-negative and not all "
                         f"zero; got {array.tolist()}.")
    return array.astype(np.float32)


@struct.dataclass
class ScalarizeParams:
    """``env_params`` of the wrapped env; ``weights`` ``(num_objectives,)``, traced, so a set of
    preferences is a ``vmap`` over them; ``sample_weights`` (bool, traced): draw new weights
    uniformly on the simplex at every reset instead (a preference-conditioned run), where
    ``weights`` is then unused."""

    env_params: Any
    weights: jax.Array
    sample_weights: jax.Array


@struct.dataclass
class ScalarizeState:
    env_state: Any
    weights: jax.Array  # (num_objectives,): this episode's preference


class Scalarize(Wrapper):
    """A multi-objective env as a single-objective one: ``reward = w . r`` (DESIGN.md s5).

    Args:
      env: an env with ``reward_space`` of shape ``(num_objectives,)``.
      weights: default preference ``(num_objectives,)`` (default ``1 / k`` each); non-negative,
        not necessarily summing to 1. It lives in the params, so ``vmap`` over
        ``params.replace(weights=w)`` runs many preferences in one program without recompiling.
      condition: append the episode's weights to the (flat ``Box``) observation, for a single
        preference-conditioned policy.
      sample_weights: default of ``params.sample_weights``: draw each episode's weights
        uniformly on the simplex (Dirichlet(1, ..., 1)) at reset. Training a conditioned policy
        samples; evaluating it at a given preference sets ``sample_weights=False, weights=w``.

    The wrapped env's vector reward stays in ``info["objective_reward"]`` ``(num_objectives,)``
    (and the episode's weights in ``info["preference"]``), so the objectives' returns can still
    be measured. Any single-objective algorithm then trains on it unchanged.
    """

    owns_state = True
    reward_space = None  # the reward is a scalar now: hides the wrapped env's reward_space

    def __init__(self, env: Environment, weights: Any = None, *, condition: bool = False,
                 sample_weights: bool = False):
        super().__init__(env)
        shape = reward_shape(env, env.default_params)
        if len(shape) != 1:
            raise ValueError(f"Scalarize needs a multi-objective env (reward_space of shape "
                             f"(num_objectives,)); {env.name}'s reward has shape {shape}.")
        self.source_num_objectives = shape[0]
        k = shape[0]
        self.default_weights = check_preference_weights(
            np.full(k, 1.0 / k) if weights is None else weights, k, f"Scalarize({env.name})")
        self.condition = bool(condition)
        self._sample_weights = bool(sample_weights)
        if self.condition:
            space = env.observation_space(env.default_params)
            if not isinstance(space, spaces.Box) or len(space.shape) != 1:
                raise ValueError(f"Scalarize(condition=True) appends the weights to a flat Box "
                                 f"observation; {env.name}'s observation space is {space!r}: "
                                 f"wrap it in FlattenObservation first.")

    @property
    def num_objectives(self) -> None:
        return None  # a scalar reward; the wrapped env's count is source_num_objectives

    @property
    def default_params(self) -> ScalarizeParams:
        return ScalarizeParams(self._env.default_params, jnp.asarray(self.default_weights),
                               jnp.asarray(self._sample_weights))

    def check_params(self, params: ScalarizeParams) -> None:
        self._env.check_params(params.env_params)
        if not isinstance(params.sample_weights, jax.core.Tracer) and not bool(
                params.sample_weights):
            check_preference_weights(params.weights, self.source_num_objectives,
                                     f"Scalarize({self._env.name})")

    def _inner(self, params: Any) -> Any:
        return None if params is None else params.env_params

    def observation_space(self, params: Any = None) -> spaces.Space:
        space = self._env.observation_space(self._inner(params))
        if not self.condition:
            return space
        k = self.source_num_objectives
        low = np.concatenate([np.broadcast_to(np.asarray(space.low, np.float64), space.shape),
                              np.zeros(k)])
        high = np.concatenate([np.broadcast_to(np.asarray(space.high, np.float64), space.shape),
                               np.ones(k) * np.inf])
        return spaces.Box(low, high, low.shape, jnp.float32)

    def action_space(self, params: Any = None) -> spaces.Space:
        return self._env.action_space(self._inner(params))

    def state_space(self, params: Any = None) -> spaces.Space:
        return self._env.state_space(self._inner(params))

    def _observe(self, obs: Any, weights: jax.Array) -> Any:
        if not self.condition:
            return obs
        return jnp.concatenate([obs.astype(jnp.float32), weights.astype(jnp.float32)])

    def _episode_weights(self, key: jax.Array, params: ScalarizeParams) -> jax.Array:
        drawn = jax.random.dirichlet(key, jnp.ones(self.source_num_objectives))
        return jnp.where(params.sample_weights, drawn, params.weights).astype(jnp.float32)

    def reset_env(self, key: jax.Array, params: ScalarizeParams) -> tuple[Any, ScalarizeState]:
        weights_key, reset_key = jax.random.split(key)
        obs, state = self._env.reset_env(reset_key, params.env_params)
        weights = self._episode_weights(weights_key, params)
        return self._observe(obs, weights), ScalarizeState(state, weights)

    def reset_to_level(self, key: jax.Array, level: Any, params: Any = None):
        params = self.resolve_params(params)
        weights_key, reset_key = jax.random.split(key)
        obs, state = self._env.reset_to_level(reset_key, level, params.env_params)
        weights = self._episode_weights(weights_key, params)
        return self._observe(obs, weights), ScalarizeState(state, weights)

    def step_env(self, key: jax.Array, state: ScalarizeState, action: Any,
                 params: ScalarizeParams) -> StepOutput:
        obs, env_state, reward, terminated, truncated, info = self._env.step_env(
            key, state.env_state, action, params.env_params)
        scalar = jnp.sum(reward * state.weights.astype(reward.dtype), axis=-1)
        info = {**info, "objective_reward": reward, "preference": state.weights}
        if "final_observation" in info:
            info["final_observation"] = self._observe(info["final_observation"], state.weights)
        return (self._observe(obs, state.weights), ScalarizeState(env_state, state.weights),
                scalar, terminated, truncated, info)


def flatten_image_observation(env: Environment, params: Any = None) -> Environment:
    """``FlattenObservation(env)`` when ``env``'s observation is a ``Box`` of several axes (an
    image ``(H, W, C)``), else ``env`` itself: the stack for an algorithm whose networks are
    MLPs over ``(features,)`` (SAC, TD3). Flat, dict and other observations are left alone."""
    space = env.observation_space(env.default_params if params is None else params)
    if isinstance(space, spaces.Box) and len(space.shape) > 1:
        return FlattenObservation(env)
    return env


def has_wrapper(env: Environment, wrapper_type: type) -> bool:
    """Whether ``wrapper_type`` appears anywhere in ``env``'s wrapper stack."""
    while True:
        if isinstance(env, wrapper_type):
            return True
        if not isinstance(env, Wrapper):
            return False
        env = env._env


def find_state(state: Any, state_type: type) -> Any:
    """The first ``state_type`` in a chain of wrapper states linked by ``.env_state``, or None."""
    while state is not None:
        if isinstance(state, state_type):
            return state
        state = getattr(state, "env_state", None)
    return None


def resets_automatically(env: Environment) -> bool:
    """Whether a wrapper in ``env``'s stack starts a new episode when one ends (``AutoReset``,
    ``CachedAutoReset``, ``AutoReplay``: wrappers with ``auto_resets = True``)."""
    while True:
        if getattr(type(env), "auto_resets", False):
            return True
        if not isinstance(env, Wrapper):
            return False
        env = env._env


def without_auto_reset(env: Environment) -> Environment:
    """``env`` with the auto-reset and episode-statistics wrappers on top of it taken off (what
    ``make(id)`` adds), for code that steps whole episodes itself (``evaluation.evaluate``)."""
    while isinstance(env, (EpisodeStats, AutoReset, CachedAutoReset)):
        env = env._env
    return env


def auto_reset_env(env: Environment, cached: bool = False) -> Environment:
    """``env`` with auto-reset (``CachedAutoReset`` if ``cached``, else ``AutoReset``; kept as it
    is if it already resets automatically, e.g. ``AutoReplay``) and ``EpisodeStats``, adding
    whichever is missing: the stack an algorithm trains on."""
    if not resets_automatically(env):
        env = (CachedAutoReset if cached else AutoReset)(env)
    if not has_wrapper(env, EpisodeStats):
        env = EpisodeStats(env)
    return env


def finished_episode_metrics(info: dict[str, jax.Array]) -> dict[str, jax.Array]:
    """Mean return and length of the episodes that ended in ``EpisodeStats``' ``info`` (leaves
    of any shape of steps and envs), NaN when none did, and how many ended.

    A multi-objective ``episode_return`` (``returned_episode``'s shape plus ``(k,)``) gives a
    ``(k,)`` mean, one per objective: the flags are aligned on the leading axes, so a single
    env's ``(T, 1)`` flags never broadcast against the objective axis."""
    finished = info["returned_episode"]
    count = finished.sum()

    def mean_over_finished(x):
        if x.shape[:finished.ndim] != finished.shape:
            raise ValueError(f"finished_episode_metrics: a value of shape {x.shape} does not "
                             f"start with the episode flags' shape {finished.shape}.")
        flags = finished.reshape(finished.shape + (1,) * (x.ndim - finished.ndim))
        total = jnp.where(flags, x, 0).sum(axis=tuple(range(finished.ndim)))
        return jnp.where(count > 0, total / jnp.maximum(count, 1), jnp.nan)

    return {
        "episode_return": mean_over_finished(info["episode_return"]),
        "episode_length": mean_over_finished(info["episode_length"]),
        "episodes_finished": count,
    }
