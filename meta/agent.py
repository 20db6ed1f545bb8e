"""The agent a learned objective trains (LPG, Oh et al. 2020), and its two update rules.

An agent is a policy ``pi(a|s)`` and a prediction network, each with its own optimiser, living on
one level (or one env) with ``num_envs`` parallel copies of it. It learns from on-policy
rollouts of ``rollout_steps`` steps of those envs, one update per rollout, by one of two rules:

* ``learned_update``, the rule of a learned objective (LPG): the prediction network outputs a
  categorical vector ``y(s)`` of ``prediction_width`` (8) whose meaning the objective decides;
  an objective network reads the rollout and returns per step a policy target ``pi_hat`` and a
  prediction target ``y_hat``; the agent descends
  ``mean_t [pi_hat_t * log pi(a_t|s_t)] + alpha_y * mean_t KL(y(s_t) || y_hat_t)``
  (the sign of ``pi_hat`` is learned: a negative ``pi_hat`` raises the action's probability).
* ``a2c_update``, the hand-designed rule on the same rollouts: the prediction network is a
  value ``V(s)`` (width 1); GAE(gamma, lambda) advantages, standardised, with an entropy bonus.
  It is the baseline of meta-testing and GROOVE's antagonist (algorithmic regret).

Networks: ``tabular`` (LPG's tabular grid worlds): one linear layer without bias on the (one-hot)
observation, zero-initialised (a uniform policy and prediction), trained by SGD with global-norm
clipping (on a grid world, the table leaves out the observation's time fraction); ``mlp``: a
small MLP trained by Adam. Observations of any shape are flattened.

Truncation is bootstrapped: each rollout step stores the prediction of the observation that
followed it (``info["final_observation"]`` where the episode ended), computed with the
parameters of that rollout, so the learned objective sees ``y(s_{t+1})`` of a truncated step and
A2C bootstraps ``V(s_{t+1})``; only ``terminated`` stops the bootstrap.

Shapes: ``T = rollout_steps``, ``N = num_envs``, ``A`` actions, ``W = prediction_width``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from flax import struct

from jaxrl_suite.env import spaces
from jaxrl_suite.env.levels import AutoReplay, LevelEnvironment, is_level_env
from jaxrl_suite.env.wrappers import EpisodeStats, auto_reset_env, has_wrapper
from jaxrl_suite.learn import optim
from jaxrl_suite.learn.advantages import generalized_advantages, standardize
from jaxrl_suite.learn.networks import MLP
from jaxrl_suite.run.configs import require_finite_numbers

__all__ = [
    "AGENT_PRESETS",
    "Agent",
    "AgentConfig",
    "AgentState",
    "CriticState",
    "ObjectiveInputs",
    "Rollout",
    "make_agent",
    "validate_agent_config",
]

NETWORKS = ("tabular", "mlp")


def default_float() -> Any:
    """JAX's default float dtype: float32, or float64 under ``jax.enable_x64`` (the
    finite-difference checks of the meta-gradient run in float64)."""
    return jnp.result_type(float)
RULES = ("learned", "a2c")


# --- config -------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class AgentConfig:
    """An agent's static settings (shapes, rates).

    Attributes:
      network: ``tabular`` (linear, no bias, zero init, SGD) or ``mlp`` (``hidden_sizes``, Adam).
      hidden_sizes: the MLP's hidden widths.
      prediction_width: ``W``, the width of the learned rule's prediction vector ``y``.
      num_envs: ``N``, parallel envs of the agent's level.
      rollout_steps: ``T``, steps of each rollout (one update each).
      policy_learning_rate, prediction_learning_rate: the two optimisers' rates (the tabular
        defaults are GROOVE's, 40 and 4: each table entry's gradient is an average over the
        ``T * N`` steps, most of which never visit it).
      max_grad_norm: global-norm clip of each network's gradient (0: none).
      prediction_coefficient: ``alpha_y``, the weight of the prediction's KL term.
      gamma: the discount the rules and the objective network are given.
      gae_lambda, entropy_coefficient, value_coefficient: A2C's.
      eval_steps: steps of an evaluation (``Agent.evaluate``); an env's first episode within
        them is what counts, so keep it at least the longest episode.
      objective_input_gradients: whether an outer gradient (the meta-gradient) flows through
        the agent's ``pi(a|s)`` and ``y(s)`` that the objective reads (True: the exact
        derivative given the rollouts); False stops it there, as the published LPG code does.
    """

    network: str = "tabular"
    hidden_sizes: tuple[int, ...] = (32, 32)
    prediction_width: int = 8
    num_envs: int = 64
    rollout_steps: int = 20
    policy_learning_rate: float = 40.0
    prediction_learning_rate: float = 4.0
    max_grad_norm: float = 0.5
    prediction_coefficient: float = 0.5
    gamma: float = 0.99
    gae_lambda: float = 0.95
    entropy_coefficient: float = 0.01
    value_coefficient: float = 0.5
    eval_steps: int = 750
    objective_input_gradients: bool = True


AGENT_PRESETS: dict[str, dict[str, Any]] = {
    # GROOVE's tabular agents (linear, SGD, actor 40, prediction 4, clip 0.5).
    "tabular": {},
    # Non-tabular grid worlds and MinAtar: a small MLP with Adam.
    "mlp": {"network": "mlp", "hidden_sizes": (64, 64), "policy_learning_rate": 1e-3,
            "prediction_learning_rate": 1e-3},
}


def validate_agent_config(config: AgentConfig, owner: str = "agent") -> None:
    """Refuse settings no agent can run with, in plain words, before anything compiles."""
    require_finite_numbers(config)
    if config.network not in NETWORKS:
        raise ValueError(f"{owner}: network must be one of {NETWORKS}; got {config.network!r}.")
    for name in ("prediction_width", "num_envs", "rollout_steps", "eval_steps"):
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{owner}: {name} must be an integer >= 1; got {value!r}.")
    if config.prediction_width < 2:
        raise ValueError(f"{owner}: prediction_width must be >= 2 (a categorical vector); got "
                         f"{config.prediction_width!r}.")
    if config.network == "mlp" and (not config.hidden_sizes
                                    or any(int(w) < 1 for w in config.hidden_sizes)):
        raise ValueError(f"{owner}: hidden_sizes must be positive widths; got "
                         f"{config.hidden_sizes!r}.")
    for name in ("policy_learning_rate", "prediction_learning_rate"):
        if getattr(config, name) <= 0:
            raise ValueError(f"{owner}: {name} must be > 0; got {getattr(config, name)!r}.")
    for name in ("max_grad_norm", "prediction_coefficient", "entropy_coefficient",
                 "value_coefficient"):
        if getattr(config, name) < 0:
            raise ValueError(f"{owner}: {name} must be >= 0; got {getattr(config, name)!r}.")
    for name in ("gamma", "gae_lambda"):
        if not 0.0 <= getattr(config, name) <= 1.0:
            raise ValueError(f"{owner}: {name} must be in [0, 1]; got {getattr(config, name)!r}.")


# --- networks -----------------------------------------------------------------------------------
class AgentNetwork(nn.Module):
    """``(..., *observation_shape) -> (..., output_size)``: linear without bias (``tabular``,
    zero-initialised) or an MLP, on the flattened observation; ``drop_last`` leaves out the
    flattened observation's last entry (a tabular agent's time fraction, see ``make_agent``)."""

    network: str
    hidden_sizes: tuple[int, ...]
    output_size: int
    observation_ndim: int
    output_scale: float = 1.0
    drop_last: bool = False

    @nn.compact
    def __call__(self, observation: jax.Array) -> jax.Array:
        batch = observation.shape[:observation.ndim - self.observation_ndim]
        x = observation.reshape(*batch, -1).astype(default_float())
        if self.drop_last:
            x = x[..., :-1]
        if self.network == "tabular":
            return nn.Dense(self.output_size, use_bias=False,
                            kernel_init=nn.initializers.zeros)(x)
        return MLP(tuple(self.hidden_sizes), self.output_size, activation="relu",
                   output_scale=self.output_scale)(x)


# --- records ------------------------------------------------------------------------------------
@struct.dataclass
class AgentState:
    """One agent: its networks, optimiser states, its envs, and its age.

    ``age`` counts the updates done, ``lifetime`` the updates it lives for (int32 ``()``);
    ``env_state`` / ``observation`` are its ``N`` envs'."""

    policy_params: Any
    prediction_params: Any
    policy_opt_state: Any
    prediction_opt_state: Any
    env_state: Any
    observation: jax.Array
    age: jax.Array
    lifetime: jax.Array


@struct.dataclass
class Rollout:
    """``T`` steps of the agent's ``N`` envs, time first.

    Attributes:
      observation: ``(T, N, *obs)`` the observations acted on.
      action: int32 ``(T, N)``.
      reward: float32 ``(T, N)``.
      terminated, truncated: bool ``(T, N)``.
      next_prediction: ``(T, N, P)`` the prediction network's output (logits, or the value for
        A2C) of the observation after the step (the final one where the episode ended), with the
        rollout's parameters and no gradient: the bootstrap.
      next_value: ``(T, N)`` a separate critic's value of that same observation (the critic
        given to ``rollout``; zeros without one).
      episode_return: ``(T, N)`` the return of the episode that ended at the step.
      returned_episode: bool ``(T, N)``, an episode ended at the step.
    """

    observation: jax.Array
    action: jax.Array
    reward: jax.Array
    terminated: jax.Array
    truncated: jax.Array
    next_prediction: jax.Array
    next_value: jax.Array
    episode_return: jax.Array
    returned_episode: jax.Array


@struct.dataclass
class CriticState:
    """A value network ``V(s)`` beside an agent (LPG's meta-critic), and its optimiser."""

    params: Any
    opt_state: Any


@struct.dataclass
class ObjectiveInputs:
    """What a learned objective network reads of one rollout (the LPG inputs), time first.

    Attributes:
      reward, terminated, done: ``(T, N)``; ``done`` = terminated or truncated (an episode
        boundary, where a recurrence over time restarts).
      gamma: ``()`` the agent's discount.
      action_probability: ``(T, N)`` ``pi(a_t|s_t)``, no gradient.
      prediction, next_prediction: ``(T, N, W)`` the categorical ``y(s_t)`` and ``y(s_{t+1})``
        (the latter of the final observation on a truncated step), no gradient.
      age_fraction: ``()`` the agent's age / lifetime (updates), for lifetime-aware objectives.
      log_lifetime: ``()`` log of the lifetime in updates.
    """

    reward: jax.Array
    terminated: jax.Array
    done: jax.Array
    gamma: jax.Array
    action_probability: jax.Array
    prediction: jax.Array
    next_prediction: jax.Array
    age_fraction: jax.Array
    log_lifetime: jax.Array


Objective = Callable[[Any, ObjectiveInputs], tuple[jax.Array, jax.Array]]
"""``(meta_params, inputs) -> (pi_hat (T, N), y_hat (T, N, W))``: a learned objective."""


# --- the agent ----------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True, eq=False)
class Agent:
    """The pure functions of one agent on one env (``make_agent``); all jittable and vmappable
    over agents.

    Attributes:
      config: the ``AgentConfig``.
      env: the env the agent steps (auto-resetting; on a level env it replays its level).
      env_params: its params.
      num_actions: ``A``.
      init: ``(key, level=None, lifetime=1, rule="learned") -> AgentState``: fresh networks and
        optimisers, ``N`` envs reset on ``level`` (a level env) or by the env's own reset.
      rollout: ``(state, key, critic=None) -> (state, Rollout)``; with a ``CriticState`` its
        values of the following observations are in ``Rollout.next_value``.
      learned_update: ``(state, rollout, objective, meta_params) -> (state, diagnostics)``.
      a2c_update: ``(state, rollout) -> (state, diagnostics)``.
      policy_logits: ``(policy_params, observation (..., *obs)) -> (..., A)``.
      prediction: ``(prediction_params, observation) -> (..., P)``.
      init_critic: ``key -> CriticState``: a fresh value network of the agent's architecture,
        with the prediction network's optimiser.
      critic_update: ``(critic, rollout) -> (critic, advantages (T, N), values (T, N),
        value_loss)``: one regression step of ``V`` on its GAE(gamma, lambda) targets; the
        advantages and values are those of the critic before the step (the rollout's
        ``next_value`` must be this critic's).
      evaluate: ``(state, key) -> float32 ()``: the mean return of a fresh first episode in each
        of the ``N`` envs, sampling from the policy, within ``eval_steps`` steps (an episode
        still running then counts with its return so far).
      train: ``(state, key, num_updates, rule, objective=None, meta_params=None) -> (state,
        metrics)``: ``num_updates`` rollouts and updates by ``rule`` (``"learned"`` or
        ``"a2c"``) in one ``lax.scan``, those past the agent's ``lifetime`` left out (its
        params and age stay); metrics per update.
    """

    config: AgentConfig
    env: Any
    env_params: Any
    num_actions: int
    init: Callable[..., AgentState]
    rollout: Callable[..., tuple[AgentState, Rollout]]
    learned_update: Callable[..., tuple[AgentState, dict[str, jax.Array]]]
    a2c_update: Callable[[AgentState, Rollout], tuple[AgentState, dict[str, jax.Array]]]
    policy_logits: Callable[[Any, jax.Array], jax.Array]
    prediction: Callable[[Any, jax.Array], jax.Array]
    init_critic: Callable[[jax.Array], CriticState]
    critic_update: Callable[[CriticState, Rollout], tuple[CriticState, jax.Array, jax.Array,
                                                           jax.Array]]
    evaluate: Callable[[AgentState, jax.Array], jax.Array]
    train: Callable[..., tuple[AgentState, dict[str, jax.Array]]]


def _optimizer(config: AgentConfig, learning_rate: float) -> optax.GradientTransformation:
    if config.network == "tabular":
        parts = [optax.sgd(learning_rate)]
    else:
        # eps_root > 0: gradients flow through these updates (the meta-gradient), and sqrt's
        # derivative at a zero second moment is infinite (DESIGN.md section 6.2).
        parts = [optim.adam(learning_rate, eps_root=1e-8)]
    if config.max_grad_norm > 0:
        parts.insert(0, optim.clip_by_global_norm(config.max_grad_norm))
    return optax.chain(*parts)


def agent_env(env: Any) -> Any:
    """The env an agent steps, with ``EpisodeStats`` outermost (for episode returns): a level
    env's raw env replaying its level (``AutoReplay``: an agent lives on one level, whatever
    wrappers ``make`` put around it); any other env as ``make`` wraps it (auto-reset)."""
    if is_level_env(env):
        while not isinstance(env, LevelEnvironment):  # past make()'s AutoReset, EpisodeStats
            env = env._env
        return EpisodeStats(AutoReplay(env))
    if has_wrapper(env, EpisodeStats):
        return env
    return EpisodeStats(auto_reset_env(env))


def _is_grid_world(env: Any) -> bool:
    from jaxrl_suite.envs.gridworld import GridWorld

    return isinstance(env.unwrapped, GridWorld)


def make_agent(config: AgentConfig, env: Any, env_params: Any) -> Agent:
    """An ``Agent`` for ``env`` (a level env, or any env with a ``Discrete`` action space).

    Raises ``ValueError`` for bad settings and for an env whose actions are not discrete.
    """
    validate_agent_config(config)
    action_space = env.action_space(env_params)
    if not isinstance(action_space, spaces.Discrete):
        raise ValueError(f"agent: LPG's agents act in a Discrete action space; {env.name} has "
                         f"{action_space}.")
    num_actions = int(action_space.n)
    env = agent_env(env)
    obs_shape = tuple(env.observation_space(env_params).shape)
    level_env = is_level_env(env)
    num_envs, num_steps, width = config.num_envs, config.rollout_steps, config.prediction_width
    hidden = tuple(int(w) for w in config.hidden_sizes)

    # A tabular agent on a grid world is a table over (cell, present objects): the
    # observation's last entry, the time fraction, is left out. Shared by every state, that
    # dense input takes the whole batch's gradient at the table's SGD rate of 40 and wrecks the
    # policy (measured: A2C solves a 3x3 level in 8 of 8 seeds without it, 1 of 8 with it).
    drop_time = config.network == "tabular" and _is_grid_world(env)

    def network(output_size, output_scale):
        return AgentNetwork(config.network, hidden, output_size, len(obs_shape), output_scale,
                            drop_time)

    policy_net = network(num_actions, 0.01)
    learned_prediction_net = network(width, 1.0)
    value_net = network(1, 1.0)
    policy_tx = _optimizer(config, config.policy_learning_rate)
    prediction_tx = _optimizer(config, config.prediction_learning_rate)
    dummy = jnp.zeros(obs_shape, default_float())

    def init(key, level=None, lifetime=1, rule="learned"):
        if rule not in RULES:
            raise ValueError(f"agent: rule must be one of {RULES}; got {rule!r}.")
        policy_key, prediction_key, env_key = jax.random.split(key, 3)
        prediction_net = learned_prediction_net if rule == "learned" else value_net
        policy_params = policy_net.init(policy_key, dummy)
        prediction_params = prediction_net.init(prediction_key, dummy)
        env_keys = jax.random.split(env_key, num_envs)
        if level_env and level is not None:
            observation, env_state = jax.vmap(env.reset_to_level, in_axes=(0, None, None))(
                env_keys, level, env_params)
        else:
            observation, env_state = jax.vmap(env.reset, in_axes=(0, None))(env_keys, env_params)
        return AgentState(
            policy_params, prediction_params, policy_tx.init(policy_params),
            prediction_tx.init(prediction_params), env_state, observation,
            jnp.zeros((), jnp.int32), jnp.asarray(lifetime, jnp.int32))

    def prediction(params, observation):
        # The learned rule's prediction (width W >= 2) and A2C's value (width 1) are told apart
        # by the static shape of the output kernel, so one function serves both rules.
        kernel = jax.tree.leaves(params)[-1]
        net = learned_prediction_net if kernel.shape[-1] == width else value_net
        return net.apply(params, observation)

    def policy_logits(params, observation):
        return policy_net.apply(params, observation)

    step_envs = jax.vmap(env.step, in_axes=(0, 0, 0, None))

    def rollout(state, key, critic=None):
        policy_params = jax.lax.stop_gradient(state.policy_params)
        prediction_params = jax.lax.stop_gradient(state.prediction_params)
        critic_params = None if critic is None else jax.lax.stop_gradient(critic.params)

        def one_step(carry, step_key):
            env_state, observation = carry
            action_key, env_key = jax.random.split(step_key)
            logits = policy_logits(policy_params, observation)
            action = jax.random.categorical(action_key, logits).astype(jnp.int32)
            next_observation, env_state, reward, terminated, truncated, info = step_envs(
                jax.random.split(env_key, num_envs), env_state, action, env_params)
            done = jnp.logical_or(terminated, truncated)
            after = jax.tree.map(
                lambda final, following: jnp.where(
                    done.reshape(done.shape + (1,) * (final.ndim - 1)), final, following),
                info["final_observation"], next_observation)
            next_value = (jnp.zeros(num_envs, default_float()) if critic_params is None
                          else value_net.apply(critic_params, after)[..., 0])
            record = Rollout(observation, action, reward.astype(default_float()), terminated,
                             truncated, prediction(prediction_params, after), next_value,
                             info["episode_return"].astype(default_float()),
                             info["returned_episode"])
            return (env_state, next_observation), record

        (env_state, observation), record = jax.lax.scan(
            one_step, (state.env_state, state.observation), jax.random.split(key, num_steps))
        return state.replace(env_state=env_state, observation=observation), record

    def apply_updates(state, policy_grads, prediction_grads):
        policy_params, policy_opt_state = optim.apply_gradient(
            policy_tx, state.policy_params, state.policy_opt_state, policy_grads)
        prediction_params, prediction_opt_state = optim.apply_gradient(
            prediction_tx, state.prediction_params, state.prediction_opt_state,
            prediction_grads)
        return state.replace(policy_params=policy_params, prediction_params=prediction_params,
                             policy_opt_state=policy_opt_state,
                             prediction_opt_state=prediction_opt_state, age=state.age + 1)

    def log_probabilities(policy_params, record):
        log_pi = jax.nn.log_softmax(policy_logits(policy_params, record.observation))
        taken = jnp.take_along_axis(log_pi, record.action[..., None], axis=-1)[..., 0]
        entropy = -(jnp.exp(log_pi) * log_pi).sum(-1)
        return taken, entropy

    def learned_update(state, record, objective, meta_params):
        gamma = jnp.asarray(config.gamma, default_float())
        done = jnp.logical_or(record.terminated, record.truncated)
        age_fraction = state.age.astype(default_float()) / jnp.maximum(state.lifetime, 1)
        log_lifetime = jnp.log(jnp.maximum(state.lifetime, 1).astype(default_float()))
        # The objective reads the agent's current pi(a|s) and y(s): fixed targets for the
        # agent's own gradient (computed outside its loss), but functions of the agent's
        # parameters for an outer gradient, which so is the exact derivative of the meta-loss
        # given the rollouts (the published code stops these gradients).
        log_pi_taken, _ = log_probabilities(state.policy_params, record)
        y = jax.nn.softmax(prediction(state.prediction_params, record.observation))
        if not config.objective_input_gradients:  # as the published code: inputs are data
            log_pi_taken, y = jax.lax.stop_gradient((log_pi_taken, y))
        inputs = ObjectiveInputs(
            record.reward, record.terminated, done, gamma, jnp.exp(log_pi_taken), y,
            jax.nn.softmax(jax.lax.stop_gradient(record.next_prediction)), age_fraction,
            log_lifetime)
        pi_hat, y_hat = objective(meta_params, inputs)

        def loss(policy_params, prediction_params):
            log_pi_taken, entropy = log_probabilities(policy_params, record)
            log_y = jax.nn.log_softmax(prediction(prediction_params, record.observation))
            y = jnp.exp(log_y)
            policy_loss = jnp.mean(pi_hat * log_pi_taken)
            kl = (y * (log_y - jnp.log(y_hat + 1e-8))).sum(-1)
            prediction_loss = jnp.mean(kl)
            total = policy_loss + config.prediction_coefficient * prediction_loss
            diagnostics = {
                "policy_loss": policy_loss, "prediction_loss": prediction_loss,
                "policy_entropy": jnp.mean(entropy),
                "prediction_entropy": jnp.mean(-(y * log_y).sum(-1)),
            }
            return total, diagnostics

        (policy_grads, prediction_grads), diagnostics = jax.grad(
            loss, argnums=(0, 1), has_aux=True)(state.policy_params, state.prediction_params)
        # The regularisers of the meta-loss read these (with their meta-gradient).
        diagnostics["pi_hat_l2"] = jnp.mean(jnp.square(pi_hat))
        diagnostics["y_hat_l2"] = jnp.mean(jnp.square(y_hat).sum(-1))
        return apply_updates(state, policy_grads, prediction_grads), diagnostics

    def a2c_update(state, record):
        next_values = jax.lax.stop_gradient(record.next_prediction[..., 0])

        def loss(policy_params, value_params):
            log_pi_taken, entropy = log_probabilities(policy_params, record)
            values = prediction(value_params, record.observation)[..., 0]
            advantages, targets = generalized_advantages(
                record.reward, jax.lax.stop_gradient(values), next_values, record.terminated,
                record.truncated, config.gamma, config.gae_lambda)
            advantages = standardize(advantages)
            policy_loss = -jnp.mean(log_pi_taken * advantages)
            value_loss = 0.5 * jnp.mean(jnp.square(values - targets))
            total = (policy_loss - config.entropy_coefficient * jnp.mean(entropy)
                     + config.value_coefficient * value_loss)
            return total, {"policy_loss": policy_loss, "value_loss": value_loss,
                           "policy_entropy": jnp.mean(entropy)}

        (policy_grads, value_grads), diagnostics = jax.grad(
            loss, argnums=(0, 1), has_aux=True)(state.policy_params, state.prediction_params)
        return apply_updates(state, policy_grads, value_grads), diagnostics

    def init_critic(key):
        params = value_net.init(key, dummy)
        return CriticState(params, prediction_tx.init(params))

    def critic_update(critic, record):
        def loss(params):
            values = value_net.apply(params, record.observation)[..., 0]
            advantages, targets = generalized_advantages(
                record.reward, jax.lax.stop_gradient(values),
                jax.lax.stop_gradient(record.next_value), record.terminated, record.truncated,
                config.gamma, config.gae_lambda)
            return 0.5 * jnp.mean(jnp.square(values - targets)), (advantages, values)

        (value_loss, (advantages, values)), grads = jax.value_and_grad(loss, has_aux=True)(
            critic.params)
        params, opt_state = optim.apply_gradient(prediction_tx, critic.params, critic.opt_state,
                                                 grads)
        return CriticState(params, opt_state), advantages, jax.lax.stop_gradient(values), \
            value_loss

    def evaluate(state, key):
        reset_key, run_key = jax.random.split(key)
        keys = jax.random.split(reset_key, num_envs)
        if level_env:
            level = jax.tree.map(lambda x: x[0], env.level_of(state.env_state))
            observation, env_state = jax.vmap(env.reset_to_level, in_axes=(0, None, None))(
                keys, level, env_params)
        else:
            observation, env_state = jax.vmap(env.reset, in_axes=(0, None))(keys, env_params)
        policy_params = state.policy_params

        def one_step(carry, step_key):
            env_state, observation, running, first_return, finished = carry
            action_key, env_key = jax.random.split(step_key)
            action = jax.random.categorical(action_key, policy_logits(policy_params, observation))
            observation, env_state, reward, terminated, truncated, _ = step_envs(
                jax.random.split(env_key, num_envs), env_state, action, env_params)
            running = running + jnp.where(finished, 0.0, reward)
            ended = jnp.logical_or(terminated, truncated) & ~finished
            first_return = jnp.where(ended, running, first_return)
            return (env_state, observation, running, first_return, finished | ended), None

        zeros = jnp.zeros(num_envs, default_float())
        carry = (env_state, observation, zeros, zeros, jnp.zeros(num_envs, bool))
        (_, _, running, first_return, finished), _ = jax.lax.scan(
            one_step, carry, jax.random.split(run_key, config.eval_steps))
        return jnp.where(finished, first_return, running).mean()

    def train(state, key, num_updates, rule, objective=None, meta_params=None):
        if rule not in RULES:
            raise ValueError(f"agent: rule must be one of {RULES}; got {rule!r}.")
        if rule == "learned" and objective is None:
            raise ValueError("agent: the learned rule needs an objective (and its params).")

        def one_update(state, update_key):
            state, record = rollout(state, update_key)
            if rule == "learned":
                updated, diagnostics = learned_update(state, record, objective, meta_params)
            else:
                updated, diagnostics = a2c_update(state, record)
            # Updates stop at the agent's lifetime (a batch of agents of different lifetimes
            # trains in one scan of the longest).
            alive = state.age < state.lifetime
            state = jax.tree.map(lambda a, b: jnp.where(alive, a, b), updated, state)
            ended = record.returned_episode
            count = ended.sum()
            diagnostics["episode_return"] = jnp.where(
                count > 0, jnp.where(ended, record.episode_return, 0.0).sum()
                / jnp.maximum(count, 1), jnp.nan)
            return state, diagnostics

        return jax.lax.scan(one_update, state, jax.random.split(key, num_updates))

    return Agent(config, env, env_params, num_actions, init, rollout, learned_update,
                 a2c_update, policy_logits, prediction, init_critic, critic_update, evaluate,
                 train)


def log_uniform_lifetimes(key: jax.Array, shape: tuple[int, ...], low: int, high: int
                          ) -> jax.Array:
    """int32 lifetimes log-uniform in ``[low, high]`` (updates); ``low == high`` gives
    ``high``."""
    value = jnp.exp(jax.random.uniform(key, shape, minval=math.log(low),
                                       maxval=math.log(high)))
    return jnp.clip(jnp.round(value), low, high).astype(jnp.int32)
