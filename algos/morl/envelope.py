"""Envelope Q-learning: one preference-conditioned vector Q-network for every linear preference.

Yang, Sun and Narasimhan, "A Generalized Algorithm for Multi-Objective Reinforcement Learning
and Policy Adaptation" (NeurIPS 2019), for discrete actions and a reward vector of ``k``
objectives, on the project's DQN pieces (replay buffer, experience collection, epsilon and
target schedules, optimiser: ``algos/dqn.py``, ``jaxrl_suite/learn``). Read top to bottom:
``Config`` and presets, the preference wrapper, the envelope target, ``make_train``, the front.

- **The network**: ``Q(s, w) -> (num_actions, k)``, an MLP over the observation with the
  preference ``w`` (on the simplex) appended. The greedy action at ``w`` is
  ``argmax_a w . Q(s, w)[a]``.
- **Experience**: each episode draws its preference uniformly on the simplex
  (``Scalarize(condition=True, sample_weights=True)``'s logic: the preference is appended to the
  observation and redrawn at every reset, here with the reward left a vector), acts
  epsilon-greedily at it, and stores ``(s + w, a, r (k,), s' + w, terminated, truncated)``.
- **The target**: each sampled transition is paired with ``num_weight_samples`` preferences, its
  own episode's and ``num_weight_samples - 1`` fresh uniform draws (the paper's hindsight pairing:
  dynamics and rewards do not depend on ``w``, so any transition teaches any preference). For a
  pair ``(s, a, r, s', w)`` and that transition's set ``W``,
  ``y = r + gamma (1 - terminated) Q'(s', a*, w'*)`` with
  ``(a*, w'*) = argmax_{a, w' in W} w . Q(s', a, w')`` (the envelope: the best return vector any
  preference's policy reaches, judged by ``w``). ``Q'`` is the target network; with ``double_q``
  the online network picks ``(a*, w'*)`` and the target network values it, else the target
  network does both. A truncated step bootstraps from ``info["final_observation"]``; only
  ``terminated`` stops the bootstrap.
- **The loss**: ``(1 - lambda) ||y - Q(s, a, w)||^2 + lambda |w . y - w . Q(s, a, w)|`` (the
  paper's losses A and B, averaged over the pairs), with the homotopy weight ``lambda`` moved
  linearly from ``homotopy_start`` (0) to ``homotopy_end`` (1) over the first
  ``homotopy_fraction`` of the run: loss A's dense vector signal first, then loss B's smoother
  landscape of the scalarised value. Adam, global-norm clipping, hard or Polyak target updates.

Outputs: ``evaluate_front(train, state, weights, key)`` runs one greedy episode at each
preference (the same reset key for all) and gives their undiscounted returns ``(n, k)``;
``write_outputs`` writes them for ``eval_weights`` equally spaced preferences as ``front.csv``
/ ``front.json`` (each preference's return, non-dominated ones flagged, and the front's metrics:
hypervolume at the env's reference point, expected utility, sparsity, cardinality) and
``front.png``. The harness's ``eval.json`` evaluates the policy at equal weights ``1 / k``.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from jaxrl_suite.algos.dqn import default_optimizer, linear_schedule, periodic_target_update
from jaxrl_suite.env import spaces
from jaxrl_suite.env.environment import Environment, StepOutput
from jaxrl_suite.env.wrappers import (
    AutoReset,
    CachedAutoReset,
    EpisodeStats,
    Scalarize,
    auto_reset_env,
    finished_episode_metrics,
)
from jaxrl_suite.learn import optim, preferences
from jaxrl_suite.learn.buffers import ReplayBuffer, Transition
from jaxrl_suite.learn.experience import Experience, ExperienceCollector, validate_replay_schedule
from jaxrl_suite.learn.networks import QNetwork, activation_by_name
from jaxrl_suite.run import pareto
from jaxrl_suite.run.algorithms import AlgorithmSpec
from jaxrl_suite.run.configs import (
    hyperparams_from_config,
    hyperparams_validator,
    require_finite_numbers,
    require_hidden_sizes,
    require_in_unit_interval,
    require_non_negative,
    require_positive,
    require_positive_ints,
)
from jaxrl_suite.run.evaluation import Policy, evaluate
from jaxrl_suite.run.training import Train

__all__ = ["ALGORITHM", "Config", "EnvelopeState", "EnvelopeTrain", "Hyperparams", "PRESETS",
           "PreferenceConditioned", "envelope_target", "evaluate_front", "make_train",
           "preference_sets", "preset_config", "td_targets", "validate", "with_preference",
           "write_outputs"]


# --- configuration ------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Config:
    """Envelope Q-learning settings. Defaults: morl-baselines' ``Envelope`` and its example
    ``examples/envelope_minecart.py`` (lr 3e-4, batch 64, epsilon 1 -> 0.05, homotopy 0 -> 1,
    4 weight samples, hard target updates), with a smaller network for this machine.

    Shapes and counts are static; the floats marked *traceable* are also fields of
    ``Hyperparams`` and can be swept under ``vmap``.
    """

    total_steps: int = 200_000
    """Env steps in the whole run over all parallel envs, learning_starts included."""
    num_envs: int = 4
    """Parallel envs (vmapped)."""
    buffer_size: int = 100_000
    """Replay capacity in transitions."""
    learning_starts: int = 1_000
    """Env steps of uniformly random actions that fill the buffer before learning."""
    batch_size: int = 64
    """Transitions per gradient step (each paired with num_weight_samples preferences)."""
    train_frequency: int = 1
    """Vectorised env steps per update (each is num_envs transitions)."""
    gradient_steps: int = 1
    """Gradient steps per update."""
    num_weight_samples: int = 4
    """Preferences per sampled transition: its episode's and num_weight_samples - 1 uniform
    draws. The envelope maximum runs over this set (1: no envelope, a conditioned DQN)."""
    learning_rate: float = 3e-4
    """Adam step size (traceable)."""
    anneal_lr: bool = False
    """Decay the learning rate linearly to 0 over the run."""
    gamma: float = 0.99
    """Discount (traceable)."""
    tau: float = 1.0
    """Target update rate: 1 copies the online network (hard update), less is Polyak
    averaging (traceable)."""
    target_update_interval: int = 250
    """Updates between target updates."""
    epsilon_start: float = 1.0
    """Exploration rate at the start (traceable)."""
    epsilon_end: float = 0.05
    """Exploration rate after the decay (traceable)."""
    exploration_fraction: float = 0.25
    """Fraction of total_steps over which epsilon decays linearly (traceable)."""
    homotopy_start: float = 0.0
    """Weight lambda of loss B (the scalarised error) at the start (traceable)."""
    homotopy_end: float = 1.0
    """Weight lambda of loss B after the annealing (traceable)."""
    homotopy_fraction: float = 0.5
    """Fraction of total_steps over which lambda moves linearly to homotopy_end (traceable)."""
    double_q: bool = True
    """The online network picks the envelope's (action, preference), the target network
    values it (morl-baselines' choice); False: the target network does both."""
    max_grad_norm: float = 10.0
    """Global gradient-norm clip; 0 turns it off."""
    adam_eps_root: float = 0.0
    """Added to Adam's second moment inside the square root (positive to differentiate
    through training)."""
    hidden_sizes: tuple[int, ...] = (256, 256)
    """Hidden layer widths of the Q-network."""
    activation: str = "relu"
    """relu, tanh, gelu, silu or elu."""
    scale_observations: bool = False
    """Map each observation entry with finite bounds in the env's Box linearly onto [-1, 1]
    before the network (entries with an infinite bound are left as they are), for envs whose
    entries differ in scale (Mountain Car's velocity spans +-0.07, its position 1.8). Off by
    default: the paper and morl-baselines feed the raw observation, and on Deep Sea Treasure
    scaling its 0-10 positions did not help (4.8 of 10 points found against 6.1 unscaled, 6
    and 9 seeds)."""
    eval_weights: int = 100
    """Preferences of the front written to the run folder (equally spaced on the simplex: the
    largest lattice of at most this many)."""
    reference_point: tuple[float, ...] = ()
    """Hypervolume reference point; empty: the env's own (env.reference_point)."""


@struct.dataclass
class Hyperparams:
    """The continuous hyperparameters, traceable: pass a batch of them to ``vmap(train)``."""

    learning_rate: jax.Array
    gamma: jax.Array
    tau: jax.Array
    epsilon_start: jax.Array
    epsilon_end: jax.Array
    exploration_fraction: jax.Array
    homotopy_start: jax.Array
    homotopy_end: jax.Array
    homotopy_fraction: jax.Array
    meta: Any = None
    """Meta-parameters, any pytree of arrays, traced: handed to the optimiser factory."""

    @classmethod
    def from_config(cls, config: Config) -> Hyperparams:
        return hyperparams_from_config(cls, config)


# Per-env settings over the defaults.
# - deep-sea-treasure (both maps): the paper's code for DST (RunzheYang/MORL,
#   synthetic/scripts/config_homotopy_dst.sh: Adam lr 1e-3, gamma 0.99, epsilon decaying,
#   target copied every 100 updates, 32 preferences per transition, homotopy) scaled to this
#   machine and tuned on the convex map at 30k env steps (tests/test_envelope.py's budget;
#   points of the 10-point front found by the greedy policies at 101 preferences, 2-3 seeds):
#   * the target copied every 100 updates diverged with 8 preferences and lambda held at 0
#     (loss A alone: the vector loss near 8000, values 5-10 times any return); every 500 it
#     stayed bounded.
#   * num_weight_samples 1 / 2 / 4 / 8 found 8.3 / 8.0 / 5.0 / 6.5 (a 2 x 64 network). With 8,
#     the greedy policies at treasure-heavy preferences looped against walls: a self-loop's
#     target is its own state's maximum over actions and preferences, so that maximum's
#     over-estimation compounds by 1 / (1 - gamma). Without the envelope's maximum (each pair
#     bootstrapping from its own preference only) 2 / 4 found 5.3 / 5.0 against 4.3 / 4.7
#     with it (scaled observations): at this budget the hindsight pairing and the maximum
#     both cost a little. 2 is the smallest set with an envelope.
#   * a 2 x 128 network found 6.9 of 10 over 9 seeds (3 to 9), against 6.1 for 2 x 64.
# - mountaincar: morl-baselines' examples/envelope_minecart.py (lr 3e-4, batch 64, epsilon
#   1 -> 0.05 over 50k steps, homotopy 0 -> 1 over 10k steps, target every 1000 steps, clip
#   0.1, 4 x 256 network) scaled: a 2 x 256 network, 500k steps, observations scaled to
#   [-1, 1]; gamma 0.99 (Gymnasium's MountainCar). Unverified here.
PRESETS: dict[str, dict[str, Any]] = {
    "deep-sea-treasure": dict(
        total_steps=30_000, num_envs=4, buffer_size=30_000, learning_starts=1_000,
        batch_size=32, train_frequency=1, gradient_steps=1, num_weight_samples=2,
        learning_rate=1e-3, gamma=0.99, target_update_interval=500, epsilon_start=1.0,
        epsilon_end=0.05, exploration_fraction=0.5, homotopy_fraction=0.5,
        hidden_sizes=(128, 128),
    ),
    "mountaincar": dict(
        total_steps=500_000, num_envs=4, buffer_size=200_000, learning_starts=1_000,
        batch_size=64, train_frequency=1, gradient_steps=1, num_weight_samples=4,
        learning_rate=3e-4, gamma=0.99, target_update_interval=250, epsilon_start=1.0,
        epsilon_end=0.05, exploration_fraction=0.1, homotopy_fraction=0.02,
        max_grad_norm=0.1, hidden_sizes=(256, 256), scale_observations=True,
    ),
}
PRESET_BY_ENV = {
    "mo/deep-sea-treasure": "deep-sea-treasure",
    "mo/deep-sea-treasure-concave": "deep-sea-treasure",
    "mo/mountaincar": "mountaincar",
}


def reference_point_of(config: Config, env: Environment, num_objectives: int) -> np.ndarray:
    """The hypervolume reference point ``(k,)``: the config's, else the env's; a ``ValueError``
    when neither gives one of the right length."""
    point = config.reference_point or getattr(env, "reference_point", None)
    if point is None or len(point) == 0:
        raise ValueError(f"Envelope: {env.name} states no hypervolume reference point; pass "
                         f"reference_point=({', '.join(['...'] * num_objectives)}), one value "
                         f"per objective.")
    point = np.asarray(point, np.float64)
    if point.shape != (num_objectives,):
        raise ValueError(f"Envelope: reference_point must have {num_objectives} values, one per "
                         f"objective of {env.name}; got {tuple(point.tolist())}.")
    return point


def validate(config: Config, env: Environment, env_params: Any) -> None:
    """Raise a ``ValueError`` naming the bad setting, before anything compiles."""
    if not isinstance(config, Config):
        raise TypeError(f"config must be an envelope.Config; got {type(config).__name__}.")
    require_finite_numbers(config)
    require_positive_ints(config, "total_steps", "num_envs", "buffer_size", "batch_size",
                          "train_frequency", "gradient_steps", "target_update_interval",
                          "num_weight_samples", "eval_weights")
    validate_replay_schedule(config)
    require_in_unit_interval(config, "gamma", "tau", "epsilon_start", "epsilon_end",
                             "exploration_fraction", "homotopy_start", "homotopy_end",
                             "homotopy_fraction")
    for name in ("tau", "exploration_fraction", "homotopy_fraction"):
        if getattr(config, name) == 0:
            raise ValueError(f"{name} must be positive; got 0.")
    require_positive(config, "learning_rate")
    if not config.max_grad_norm >= 0:
        raise ValueError(f"max_grad_norm must be >= 0 (0 = no clipping); got "
                         f"{config.max_grad_norm!r}.")
    require_non_negative(config, "adam_eps_root")
    require_hidden_sizes(config.hidden_sizes)
    activation_by_name(config.activation)
    k = preferences.num_objectives_of(env, env_params, "Envelope")
    if k < 2:
        raise ValueError(f"Envelope Q-learning needs a multi-objective env (a reward vector of 2 "
                         f"or more objectives); {env.name} has a scalar reward. Pick an mo/ env "
                         f"(`jaxrl envs`), or DQN for a scalar reward.")
    action_space = env.action_space(env_params)
    if not isinstance(action_space, spaces.Discrete):
        raise ValueError(f"Envelope Q-learning handles Discrete action spaces; {env.name} has "
                         f"{action_space}. Use C-MORL or a preference set of SAC for continuous "
                         f"actions.")
    space = env.observation_space(env_params)
    if not isinstance(space, spaces.Box) or len(space.shape) != 1:
        raise ValueError(f"Envelope Q-learning appends the preference to a flat Box observation; "
                         f"{env.name} has {space}. Wrap it in FlattenObservation first.")
    reference_point_of(config, env, k)


# --- the preference of each episode -------------------------------------------------------------
class PreferenceConditioned(Scalarize):
    """``Scalarize(env, condition=True, sample_weights=True)`` with the reward left a vector.

    Each reset draws the episode's preference uniformly on the simplex and every observation is
    ``concat(obs, w)`` ``(d + k,)`` (``final_observation`` too), so the replay buffer stores each
    transition's preference with it; the reward stays the env's ``(k,)`` vector (the envelope
    target needs the vector, not ``w . r``). ``params.replace(sample_weights=False, weights=w)``
    fixes the preference.
    """

    def __init__(self, env: Environment):
        super().__init__(env, condition=True, sample_weights=True)

    @property
    def num_objectives(self) -> int:
        return self.source_num_objectives

    def reward_space(self, params: Any = None) -> spaces.Box:
        return self._env.reward_space(self._inner(params))

    def step_env(self, key: jax.Array, state: Any, action: Any, params: Any) -> StepOutput:
        obs, state, _, terminated, truncated, info = super().step_env(key, state, action, params)
        return obs, state, info["objective_reward"], terminated, truncated, info


def _without_auto_reset(env: Environment) -> Environment:
    """``env`` without the auto-reset and episode-statistics wrappers ``make`` adds: the
    preference wrapper goes beneath them, so that every reset draws a new preference."""
    while isinstance(env, (EpisodeStats, AutoReset, CachedAutoReset)):
        env = env._env
    return env


# --- the envelope target ------------------------------------------------------------------------
def preference_sets(key: jax.Array, preference: jax.Array, num: int) -> jax.Array:
    """Each transition's preferences ``(batch, num, k)``: its own episode's ``preference``
    ``(batch, k)`` first, then ``num - 1`` draws uniform on the simplex (Dirichlet(1))."""
    batch, k = preference.shape
    drawn = jax.random.dirichlet(key, jnp.ones(k), (batch, num - 1))
    return jnp.concatenate([preference[:, None, :], drawn.astype(preference.dtype)], axis=1)


def with_preference(observation: jax.Array, preferences_: jax.Array) -> jax.Array:
    """Observations ``(batch, d + k)`` (their own preference in the last ``k`` entries) with each
    of ``preferences_`` ``(batch, n, k)`` put there instead: ``(batch, n, d + k)``."""
    batch, n, k = preferences_.shape
    state = jnp.broadcast_to(observation[:, None, :-k], (batch, n, observation.shape[-1] - k))
    return jnp.concatenate([state, preferences_], axis=-1)


def envelope_target(reward: jax.Array, terminated: jax.Array, gamma: jax.Array,
                    preferences_: jax.Array, next_choose: jax.Array,
                    next_value: jax.Array) -> jax.Array:
    """``y = r + gamma (1 - terminated) Q'(s', a*, w'*)`` for every pair of a transition and one
    of its preferences.

    Args:
      reward: ``(batch, k)``; terminated: ``(batch,)`` bool (truncation does not stop it);
      preferences_: ``(batch, n, k)``, the set ``W`` of each transition;
      next_choose: ``(batch, n, num_actions, k)``, ``Q(s', a, w')`` for each ``w'`` of ``W``,
        by the network that picks (online with double Q, else the target network);
      next_value: the same shape, by the target network, which values the pick.

    Returns ``(batch, n, k)``: for pair ``(i, j)``, ``(a*, w'*) = argmax over a and w' in W_i of
    w_ij . next_choose[i, w', a]``, and the target takes ``next_value[i, w'*, a*]``.
    """
    batch, n, num_actions, k = next_value.shape
    # scores[i, j, m, a] = w_ij . Q(s'_i, a, w_im): every preference of the set judges every
    # (preference, action) pair's return vector; the max over (m, a) is the envelope.
    scores = jnp.einsum("bjk,bmak->bjma", preferences_, next_choose).reshape(batch, n, -1)
    best = jnp.argmax(scores, axis=-1)  # (batch, n): flat index m * num_actions + a
    candidates = jnp.broadcast_to(next_value.reshape(batch, 1, n * num_actions, k),
                                  (batch, n, n * num_actions, k))
    chosen = jnp.take_along_axis(candidates, best[:, :, None, None], axis=2)[:, :, 0]
    bootstrap = gamma * (1.0 - terminated.astype(reward.dtype))
    return reward[:, None, :] + bootstrap[:, None, None] * chosen


def td_targets(q_values: Any, params: Any, target_params: Any, transitions: Transition,
               preferences_: jax.Array, gamma: jax.Array, double_q: bool) -> jax.Array:
    """The envelope targets ``(batch, n, k)`` of ``transitions`` (leaves ``(batch, ...)``) paired
    with ``preferences_`` ``(batch, n, k)``; ``q_values(params, obs (..., d + k)) -> (...,
    num_actions, k)``. The next observation is the stored one (a truncated step's final
    observation), so truncation bootstraps."""
    next_observation = with_preference(transitions.next_observation, preferences_)
    next_value = q_values(target_params, next_observation)
    next_choose = q_values(params, next_observation) if double_q else next_value
    return envelope_target(transitions.reward, transitions.terminated, gamma, preferences_,
                           next_choose, next_value)


def observation_scaling(space: spaces.Box) -> tuple[np.ndarray, np.ndarray]:
    """``(scale, shift)`` float32 ``(d,)`` with ``x * scale + shift`` mapping ``[low, high]`` onto
    ``[-1, 1]`` per entry; 1 and 0 where a bound is infinite (or the two are equal)."""
    low = np.broadcast_to(np.asarray(space.low, np.float64), space.shape)
    high = np.broadcast_to(np.asarray(space.high, np.float64), space.shape)
    bounded = np.isfinite(low) & np.isfinite(high) & (high > low)
    width = np.where(bounded, high - low, 2.0)
    scale = np.where(bounded, 2.0 / width, 1.0)
    shift = np.where(bounded, -1.0 - low * scale, 0.0)
    return scale.astype(np.float32), shift.astype(np.float32)


# --- training state -----------------------------------------------------------------------------
@struct.dataclass
class EnvelopeState:
    """Everything a run needs to continue: what a checkpoint saves."""

    params: Any
    target_params: Any
    opt_state: Any
    experience: Experience  # env state, observation (with its preference), replay buffer
    key: jax.Array
    update_step: jax.Array  # int32
    hparams: Hyperparams


@dataclasses.dataclass(frozen=True, eq=False)
class EnvelopeTrain(Train):
    """Envelope's ``Train`` with what its front needs: the objective count and names, the
    hypervolume reference point ``(k,)``, the env without wrappers (for ``pareto_front``), and
    ``front_returns(state, weights (n, k), key) -> (n, k)``, compiled once per run."""

    num_objectives: int = 0
    objective_names: tuple[str, ...] = ()
    reference_point: Any = None
    env: Any = None
    front_returns: Any = None


# --- make_train ---------------------------------------------------------------------------------
def make_train(config: Config, env: Environment, env_params: Any,
               optimizer: Any = None) -> EnvelopeTrain:
    """Build Envelope Q-learning's pure training run for the multi-objective ``env`` (checked
    first; see ``Config``). ``optimizer`` follows ``jaxrl_suite.learn.optim`` as DQN's does:
    None for clipping, Adam and ``learning_rate`` (with ``anneal_lr``), an optax optimiser, or a
    factory of the traced ``Hyperparams``."""
    validate(config, env, env_params)
    k = preferences.num_objectives_of(env, env_params, "Envelope")
    base_env = _without_auto_reset(env)
    conditioned = PreferenceConditioned(base_env)
    conditioned_params = conditioned.default_params.replace(env_params=env_params)
    collector = ExperienceCollector(auto_reset_env(conditioned), conditioned_params,
                                    ReplayBuffer(config.buffer_size, config.num_envs))
    buffer = collector.buffer
    num_actions = env.action_space(env_params).n
    network = QNetwork(config.hidden_sizes, num_actions * k, config.activation)
    obs_scale, obs_shift = observation_scaling(env.observation_space(env_params))
    prefill_steps = -(-config.learning_starts // config.num_envs)
    steps_per_update = config.num_envs * config.train_frequency
    num_updates = (config.total_steps - prefill_steps * config.num_envs) // steps_per_update
    default_hparams = Hyperparams.from_config(config)
    make_optimizer = optim.resolve_optimizer(
        optimizer, default_optimizer(config, num_updates), default_hparams, "Envelope")

    def q_values(params: Any, observation: jax.Array) -> jax.Array:
        """``(..., d + k) -> (..., num_actions, k)``."""
        if config.scale_observations:
            observation = jnp.concatenate(
                [observation[..., :-k] * obs_scale + obs_shift, observation[..., -k:]], axis=-1)
        flat = network.apply(params, observation)
        return flat.reshape(*flat.shape[:-1], num_actions, k)

    def greedy(params: Any, observation: jax.Array) -> jax.Array:
        """``argmax_a w . Q(s, w)[a]`` at the preference ``w`` in the observation's last ``k``
        entries: ``(..., d + k) -> (...)`` int."""
        scalarised = jnp.einsum("...ak,...k->...a", q_values(params, observation),
                                observation[..., -k:])
        return jnp.argmax(scalarised, axis=-1)

    def init(key: jax.Array, hparams: Hyperparams) -> EnvelopeState:
        network_key, env_key, prefill_key, key = jax.random.split(key, 4)
        experience = collector.init(env_key)
        experience = collector.prefill(experience, prefill_key, prefill_steps)
        params = network.init(network_key, experience.observation[0])
        return EnvelopeState(params=params, target_params=params,
                             opt_state=make_optimizer(hparams).init(params),
                             experience=experience, key=key, update_step=jnp.int32(0),
                             hparams=hparams)

    def loss_fn(params, target_params, transitions, preferences_, gamma, homotopy):
        targets = jax.lax.stop_gradient(td_targets(
            q_values, params, target_params, transitions, preferences_, gamma, config.double_q))
        q = q_values(params, with_preference(transitions.observation, preferences_))
        action = transitions.action[:, None, None, None]  # (batch, 1, 1, 1) over (n, A, k)
        q_taken = jnp.take_along_axis(q, action, axis=2)[:, :, 0]  # (batch, n, k)
        error = targets - q_taken
        loss_a = jnp.mean(jnp.sum(jnp.square(error), axis=-1))
        loss_b = jnp.mean(jnp.abs(jnp.sum(preferences_ * error, axis=-1)))
        loss = (1.0 - homotopy) * loss_a + homotopy * loss_b
        return loss, {"vector_loss": loss_a, "scalar_loss": loss_b,
                      "q_value": jnp.mean(jnp.sum(preferences_ * q_taken, axis=-1))}

    def gradient_step(carry, key):
        state, homotopy = carry
        rows_key, weights_key = jax.random.split(key)
        buffer_state = state.experience.buffer
        transitions = buffer.gather(
            buffer_state, buffer.sample_indices(buffer_state, rows_key, (config.batch_size,)))
        preferences_ = preference_sets(weights_key, transitions.observation[:, -k:],
                                       config.num_weight_samples)
        (loss, diagnostics), grads = jax.value_and_grad(loss_fn, has_aux=True)(
            state.params, state.target_params, transitions, preferences_, state.hparams.gamma,
            homotopy)
        grad_norm = optax.tree.norm(grads)  # before clipping (the clip is in the chain)
        params, opt_state = optim.apply_gradient(
            make_optimizer(state.hparams), state.params, state.opt_state, grads)
        state = state.replace(params=params, opt_state=opt_state)
        return (state, homotopy), {"td_loss": loss, "grad_norm": grad_norm, **diagnostics}

    def update(state: EnvelopeState) -> tuple[EnvelopeState, dict[str, jax.Array]]:
        key, collect_key, learn_key = jax.random.split(state.key, 3)
        hparams = state.hparams
        env_steps = prefill_steps * config.num_envs + state.update_step * steps_per_update
        exploration = linear_schedule(hparams.epsilon_start, hparams.epsilon_end,
                                      hparams.exploration_fraction, env_steps,
                                      config.total_steps)
        homotopy = linear_schedule(hparams.homotopy_start, hparams.homotopy_end,
                                   hparams.homotopy_fraction, env_steps, config.total_steps)

        def collect(experience, step_key):
            explore_key, random_key, env_key = jax.random.split(step_key, 3)
            explore = jax.random.uniform(explore_key, (config.num_envs,)) < exploration
            action = jnp.where(explore, collector.random_actions(random_key),
                               greedy(state.params, experience.observation))
            return collector.step(experience, env_key, action)

        experience, episode_info = jax.lax.scan(
            collect, state.experience, jax.random.split(collect_key, config.train_frequency))
        (state, _), losses = jax.lax.scan(
            gradient_step, (state.replace(experience=experience), homotopy),
            jax.random.split(learn_key, config.gradient_steps))
        update_step = state.update_step + 1
        target_params = periodic_target_update(state.params, state.target_params, hparams.tau,
                                               update_step, config.target_update_interval)
        metrics = {
            "env_steps": prefill_steps * config.num_envs + update_step * steps_per_update,
            **finished_episode_metrics(episode_info),  # episode_return: (k,), one per objective
            **jax.tree.map(jnp.mean, losses),
            "epsilon": exploration,
            "homotopy": homotopy,
        }
        return state.replace(target_params=target_params, key=key,
                             update_step=update_step), metrics

    # --- the trained policy at a preference (the raw env's observation, w appended here)
    def act(policy_params, key, observation, carry, episode_start, deterministic):
        params, preference, exploration = policy_params
        observation = jnp.asarray(observation, jnp.float32)
        weights = jnp.broadcast_to(preference, (*observation.shape[:-1], k))
        action = greedy(params, jnp.concatenate([observation, weights], axis=-1))
        if deterministic:
            return action, carry
        explore_key, random_key = jax.random.split(key)
        random_action = jax.random.randint(random_key, action.shape, 0, num_actions)
        explore = jax.random.uniform(explore_key, action.shape) < exploration
        return jnp.where(explore, random_action, action), carry

    def policy_at(state: EnvelopeState, preference: jax.Array) -> Policy:
        return Policy(act, (state.params, jnp.asarray(preference, jnp.float32),
                            state.hparams.epsilon_end), None)

    def make_policy(state: EnvelopeState) -> Policy:
        """The policy at equal preference weights ``1 / k`` (what ``eval.json`` evaluates)."""
        return policy_at(state, jnp.full(k, 1.0 / k))

    # The evaluation's episode limit: the env's own (every mo/ env has one).
    limit = int(getattr(env_params, "max_steps_in_episode", 1000))

    @jax.jit
    def front_returns(state: EnvelopeState, weights: jax.Array, key: jax.Array) -> jax.Array:
        def one(preference):
            result = evaluate(policy_at(state, preference), base_env, env_params, key, 1,
                              deterministic=True, max_steps=limit)
            return result["episode_return"][0]

        return jax.vmap(one)(weights)

    return EnvelopeTrain(
        init=init, update=update, num_updates=num_updates, env_steps_per_update=steps_per_update,
        default_hparams=default_hparams, make_policy=make_policy, config=config,
        check_hparams=hyperparams_validator(config, lambda c: validate(c, env, env_params)),
        env_steps_before_updates=prefill_steps * config.num_envs,
        num_objectives=k, objective_names=tuple(getattr(base_env, "objective_names", ())),
        reference_point=reference_point_of(config, env, k), env=base_env,
        front_returns=front_returns,
    )


# --- the front ----------------------------------------------------------------------------------
def evaluate_front(train: EnvelopeTrain, state: EnvelopeState, weights: Any,
                   key: jax.Array) -> jax.Array:
    """Undiscounted returns ``(n, k)`` of one deterministic (greedy) episode at each preference of
    ``weights`` ``(n, k)``, all from the same reset key, for one (unbatched) ``state``."""
    weights = jnp.asarray(weights, jnp.float32)
    if weights.ndim != 2 or weights.shape[1] != train.num_objectives:
        raise ValueError(f"evaluate_front: weights must be (n, {train.num_objectives}); got "
                         f"{weights.shape}.")
    return train.front_returns(state, weights, key)


def _true_front(env: Environment) -> np.ndarray | None:
    """The env's shipped Pareto front (undiscounted), or None where it ships none."""
    try:
        from jaxrl_suite.envs.mo import has_front, pareto_front

        return pareto_front(env) if has_front(env) else None
    except (ImportError, TypeError, ValueError):
        return None


def write_outputs(run_dir: Path, train: EnvelopeTrain, states: EnvelopeState) -> dict[str, Any]:
    """``front.csv``, ``front.json`` (``front_seed{i}`` for several seeds) and ``front.png``: the
    greedy return at each of ``config.eval_weights`` equally spaced preferences, non-dominated
    ones flagged, and the front's metrics (hypervolume at the reference point, expected utility
    over the same weights, sparsity, cardinality; MUL and IGD where the env ships its front)."""
    run_dir = Path(run_dir)
    k = train.num_objectives
    weights = pareto.equally_spaced_weights(k, train.config.eval_weights)
    num_seeds = jax.tree.leaves(states)[0].shape[0]
    true_front = _true_front(train.env)
    names = train.objective_names or None
    seeds, fronts = [], []
    for seed in range(num_seeds):
        state = jax.tree.map(lambda x, s=seed: x[s], states)
        returns = np.asarray(evaluate_front(train, state, weights, jax.random.key(seed)),
                             np.float64)
        metrics = pareto.front_metrics(returns, train.reference_point, weights, true_front)
        pareto.write_front(run_dir / (f"front_seed{seed}" if num_seeds > 1 else "front"),
                           returns, names=names,
                           extra={"weights": weights, "metrics": metrics, "env": train.env.name,
                                  "reference_point": train.reference_point})
        seeds.append({"front": pareto.pareto_front(returns).tolist(), "metrics": metrics})
        fronts.append(returns)
    pareto.plot_front(np.concatenate(fronts), run_dir / "front.png", true_front=true_front,
                      reference_point=train.reference_point, objective_names=names)
    return {"seeds": seeds}


# --- the algorithm's description: presets and the command line come from it -------------------
ALGORITHM = AlgorithmSpec(
    name="envelope", display_name="Envelope", config=Config, hyperparams=Hyperparams,
    make_train=make_train, presets=PRESETS, preset_by_env=PRESET_BY_ENV,
    default_env="mo/deep-sea-treasure-concave", write_outputs=write_outputs,
    description=__doc__.strip().splitlines()[0],
    measured_presets={"deep-sea-treasure": "tests/test_envelope.py, on mo/deep-sea-treasure"},
)
preset_config = ALGORITHM.preset_config  # (env_id_or_preset, **overrides) -> Config
main = ALGORITHM.main  # `python algos/morl/envelope.py --env mo/deep-sea-treasure --seeds 2`


if __name__ == "__main__":
    sys.exit(main())
