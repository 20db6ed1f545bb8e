"""Implicit Q-Learning (Kostrikov et al., 2021): expectile values, advantage-weighted policy.

Q-learning in sample: no value is ever queried at an action the dataset lacks.

Read top to bottom: ``Config`` and presets, the pure losses (``expectile_loss``,
``advantage_weights``, ``q_target``), ``make_train`` (one gradient step updates the value, the
policy, the critics and the target critics in that order, as the paper's code does), ``main``.
``make_train(config, env, env_params)`` returns the usual pure ``Train``::

    env, env_params = jaxrl_suite.make("gymnax/Pendulum-v1")
    train = make_train(preset_config("gymnax/Pendulum-v1", dataset="pendulum-medium-v0"),
                       env, env_params)

Three networks learn from dataset transitions only:

- the state value ``V(s)``: expectile regression (``expectile`` tau) on the target critics'
  ``min_i Q'_i(s, a)``, an upper expectile of Q over the dataset's actions, so ``V`` approaches
  the best in-support action's value without evaluating any other action;
- the twin critics ``Q_i(s, a)`` (one ``QEnsemble``): regression on ``r + gamma (1 - terminal)
  V(s')``; a timeout (truncation) still bootstraps;
- the policy: a Gaussian with a state-independent log-std whose mean is ``tanh`` of an MLP (in
  ``[-1, 1]`` action units, scaled to the env's bounds), fitted by advantage-weighted regression:
  maximise ``exp(temperature (min_i Q'_i(s, a) - V(s)))`` (clipped at ``max_weight``) times
  ``log pi(a | s)`` of the dataset's action. The evaluated policy is its mean (deterministic).

The actor's learning rate follows a cosine decay to 0 over ``total_updates`` (the paper's);
rewards are scaled by ``1000 / (max - min episode return)`` of the dataset
(``normalize_rewards``, the paper's locomotion setting).
"""

from __future__ import annotations

import dataclasses
import sys
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from jaxrl_suite.data.datasets import Dataset, episode_returns
from jaxrl_suite.data.offline import (
    OFFLINE_ALGORITHM,
    OfflineConfig,
    make_offline_train,
    prepare_offline,
    validate_offline_config,
    write_outputs,
)
from jaxrl_suite.env.environment import Environment
from jaxrl_suite.learn import optim
from jaxrl_suite.learn.buffers import Transition
from jaxrl_suite.learn.networks import (
    MLP,
    GaussianActor,
    QEnsemble,
    activation_by_name,
    scale_to_bounds,
    unit_from_bounds,
)
from jaxrl_suite.run.algorithms import AlgorithmSpec
from jaxrl_suite.run.configs import (
    hyperparams_from_config,
    require_finite_numbers,
    require_hidden_sizes,
    require_in_unit_interval,
    require_non_negative,
    require_positive,
    require_positive_ints,
)
from jaxrl_suite.run.training import Train

__all__ = ["Config", "Hyperparams", "PRESETS", "make_train", "preset_config", "expectile_loss",
           "advantage_weights", "q_target", "reward_scale", "main", "write_outputs"]


# --- configuration ------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Config(OfflineConfig):
    """IQL settings (and the shared offline ones: dataset, total_updates, batch_size, ...).
    Defaults: the paper's D4RL locomotion settings (1M steps of batch 256)."""

    actor_learning_rate: float = 3e-4
    """Adam step size of the policy at the start of the cosine decay (traceable)."""
    critic_learning_rate: float = 3e-4
    """Adam step size of the twin critics (traceable)."""
    value_learning_rate: float = 3e-4
    """Adam step size of the state value (traceable)."""
    gamma: float = 0.99
    """Discount (traceable)."""
    tau: float = 0.005
    """Polyak rate of the target critics, updated after every gradient step (traceable)."""
    expectile: float = 0.7
    """Expectile of the value regression, in (0, 1): 0.5 is the mean (SARSA-like), near 1 the
    maximum over the dataset's actions (traceable)."""
    temperature: float = 3.0
    """Inverse temperature beta of the advantage weights exp(beta A); 0 is behaviour cloning
    (traceable)."""
    max_weight: float = 100.0
    """Clip of the advantage weights exp(beta A) (traceable)."""
    actor_cosine_decay: bool = True
    """Decay the actor's learning rate to 0 over total_updates with a cosine."""
    normalize_rewards: bool = True
    """Scale rewards by 1000 / (max - min episode return) of the dataset."""
    num_critics: int = 2
    """Q-networks in the ensemble; the value and the policy use their minimum."""
    hidden_sizes: tuple[int, ...] = (256, 256)
    """Hidden layer widths of the policy, the value and each critic."""
    activation: str = "relu"
    """relu, tanh, gelu, silu or elu."""
    log_std_min: float = -5.0
    """Lower clip of the policy's (state-independent) log standard deviation."""
    log_std_max: float = 2.0
    """Upper clip of the policy's log standard deviation."""


@struct.dataclass
class Hyperparams:
    """The continuous hyperparameters, traceable: pass a batch of them to ``vmap(train)``."""

    actor_learning_rate: jax.Array
    critic_learning_rate: jax.Array
    value_learning_rate: jax.Array
    gamma: jax.Array
    tau: jax.Array
    expectile: jax.Array
    temperature: jax.Array
    max_weight: jax.Array
    meta: Any = None
    """Meta-parameters, any pytree of arrays, traced: handed to the optimiser factory (e.g. a
    learned optimiser's params); None by default."""


# The Pendulum preset keeps the published settings and shortens the run: Pendulum's datasets
# are small (1e5 transitions) and the policies converge within 3e4 steps.
PRESETS: dict[str, dict[str, Any]] = {
    "pendulum": dict(total_updates=30_000, eval_interval=1_000, evaluation_episodes=10),
}
_PRESET_BY_ENV = {"gymnax/Pendulum-v1": "pendulum"}


def validate(config: Config, env: Environment, env_params: Any) -> None:
    """Raise a ``ValueError`` naming a bad IQL setting (the shared ones are checked by
    ``prepare_offline``)."""
    if not isinstance(config, Config):
        raise TypeError(f"config must be an iql.Config; got {type(config).__name__}.")
    require_finite_numbers(config)
    validate_offline_config(config, "IQL")
    require_positive(config, "actor_learning_rate", "critic_learning_rate",
                     "value_learning_rate", "max_weight")
    require_in_unit_interval(config, "gamma")
    if not 0.0 < config.tau <= 1.0:
        raise ValueError(f"tau must be in (0, 1]; got {config.tau!r}.")
    if not 0.0 < config.expectile < 1.0:
        raise ValueError(f"expectile must be in (0, 1); got {config.expectile!r}.")
    require_non_negative(config, "temperature")
    require_positive_ints(config, "num_critics")
    if not config.log_std_min < config.log_std_max:
        raise ValueError(f"log_std_min ({config.log_std_min}) must be below log_std_max "
                         f"({config.log_std_max}).")
    require_hidden_sizes(config.hidden_sizes)
    activation_by_name(config.activation)


# --- the losses, pure ---------------------------------------------------------------------------
def expectile_loss(diff: jax.Array, expectile: jax.Array | float) -> jax.Array:
    """The asymmetric squared loss ``|expectile - 1(diff < 0)| diff^2``, elementwise.

    ``diff`` is ``Q(s, a) - V(s)`` (any shape): a positive difference (V below Q) weighs
    ``expectile``, a negative one ``1 - expectile``, so for ``expectile > 0.5`` the minimising
    ``V`` is an upper expectile of Q over the dataset's actions.
    """
    weight = jnp.where(diff < 0, 1.0 - expectile, expectile)
    return weight * jnp.square(diff)


def advantage_weights(advantage: jax.Array, temperature: jax.Array | float,
                      max_weight: jax.Array | float) -> jax.Array:
    """Advantage-weighted regression's weights ``min(exp(temperature * advantage),
    max_weight)``, elementwise (the clip keeps a few large advantages from dominating)."""
    return jnp.minimum(jnp.exp(temperature * advantage), max_weight)


def q_target(reward: jax.Array, terminal: jax.Array, next_value: jax.Array,
             gamma: jax.Array | float) -> jax.Array:
    """The critics' target ``r + gamma (1 - terminal) V(s')``, each ``(batch,)``.

    Only a true end (``terminal``) stops bootstrapping; a timeout (truncation) is not terminal,
    so its target includes ``gamma V(s')`` of the stored next observation.
    """
    return reward + gamma * (1.0 - terminal.astype(reward.dtype)) * next_value


def reward_scale(dataset: Dataset) -> float:
    """``1000 / (max - min episode return)`` of ``dataset``, the paper's reward scale for
    locomotion (1 when every episode has the same return)."""
    returns = episode_returns(dataset)
    spread = float(returns.max() - returns.min())
    return 1000.0 / spread if spread > 0 else 1.0


# --- make_train ---------------------------------------------------------------------------------
@struct.dataclass
class LearnerState:
    actor_params: Any
    critic_params: Any  # leaves with a leading num_critics axis
    target_critic_params: Any
    value_params: Any
    actor_opt_state: Any
    critic_opt_state: Any
    value_opt_state: Any
    step: jax.Array  # int32, gradient steps done (the actor schedule reads its own optimiser count)


def actor_optimizer(config: Config) -> optim.OptimizerFactory:
    """The policy's default optimiser factory: Adam at ``actor_learning_rate``, times a cosine
    decay to 0 over ``total_updates`` optimiser steps with ``actor_cosine_decay``."""
    decay = optax.cosine_decay_schedule(1.0, config.total_updates)

    def factory(hparams: Hyperparams):
        rate = hparams.actor_learning_rate
        if config.actor_cosine_decay:
            rate = lambda count: hparams.actor_learning_rate * decay(count)
        return optim.adam(rate, eps_root=config.adam_eps_root)

    return factory


def make_train(config: Config, env: Environment, env_params: Any,
               dataset: Dataset | None = None, optimizer: Any = None) -> Train:
    """IQL's pure training run on ``config.dataset`` (or ``dataset``), evaluated in ``env``.

    ``optimizer`` follows ``jaxrl_suite.learn.optim``. One serves the policy, the critics and the
    value (each with its own state), or a dict names some of ``"actor"``, ``"critic"`` and
    ``"value"``. Each is None for Adam at that network's ``*_learning_rate`` (the actor's
    cosine-decayed with ``actor_cosine_decay``), an optax optimiser used as it is (its own
    rate and schedule: the config's then do not apply), or a factory ``hparams -> optimiser``.
    """
    validate(config, env, env_params)
    setup = prepare_offline(config, env, env_params, "IQL", dataset)
    if not (np.all(np.isfinite(setup.action_low)) and np.all(np.isfinite(setup.action_high))):
        raise ValueError(f"IQL's policy mean is a tanh scaled to the action bounds, so they must "
                         f"be finite; {env.name} has [{setup.action_low}, {setup.action_high}].")
    action_dim = setup.action_dim
    low, high = jnp.asarray(setup.action_low), jnp.asarray(setup.action_high)
    scale = reward_scale(setup.dataset) if config.normalize_rewards else 1.0
    actor = GaussianActor(config.hidden_sizes, action_dim, config.activation)
    critic = QEnsemble(config.hidden_sizes, config.num_critics, config.activation)
    value = MLP(config.hidden_sizes, 1, config.activation)
    default_hparams = hyperparams_from_config(Hyperparams, config)
    optimizers = optim.resolve_optimizers(optimizer, {
        "actor": actor_optimizer(config),
        "critic": optim.default_adam(config, "critic_learning_rate"),
        "value": optim.default_adam(config, "value_learning_rate"),
    }, default_hparams, "IQL")

    def policy(actor_params, observation):
        """Mean (in ``[-1, 1]`` units) and clipped log-std of the Gaussian policy."""
        mean, log_std = actor.apply(actor_params, observation)
        return jnp.tanh(mean), jnp.clip(log_std, config.log_std_min, config.log_std_max)

    def state_value(value_params, observation):
        return value.apply(value_params, observation)[..., 0]

    def init_learner(key: jax.Array, hparams: Hyperparams) -> LearnerState:
        actor_key, critic_key, value_key = jax.random.split(key, 3)
        observation = setup.dataset.observations[0]
        actor_params = actor.init(actor_key, observation)
        critic_params = critic.init(critic_key, observation, jnp.zeros(action_dim, jnp.float32))
        value_params = value.init(value_key, observation)
        return LearnerState(
            actor_params=actor_params,
            critic_params=critic_params,
            target_critic_params=critic_params,
            value_params=value_params,
            actor_opt_state=optimizers["actor"](hparams).init(actor_params),
            critic_opt_state=optimizers["critic"](hparams).init(critic_params),
            value_opt_state=optimizers["value"](hparams).init(value_params),
            step=jnp.int32(0),
        )

    # --- losses (batch leaves are (batch_size, ...))
    def value_loss(value_params, target_q, observation, hparams):
        v = state_value(value_params, observation)
        return expectile_loss(target_q - v, hparams.expectile).mean(), v.mean()

    def actor_loss(actor_params, weights, observation, unit_action):
        mean, log_std = policy(actor_params, observation)
        z = (unit_action - mean) * jnp.exp(-log_std)
        log_prob = jnp.sum(-0.5 * (z**2 + jnp.log(2.0 * jnp.pi)) - log_std, axis=-1)
        return -(weights * log_prob).mean()

    def critic_loss(critic_params, target, batch):
        q = critic.apply(critic_params, batch.observation, batch.action)
        return jnp.square(q - target).mean(axis=1).sum(), q.mean()  # summed over the ensemble

    def gradient_step(learner: LearnerState, batch: Transition, key: jax.Array,
                      hparams: Hyperparams):
        # 1. The value: an expectile of the target critics' Q over the dataset's actions.
        target_q = critic.apply(learner.target_critic_params, batch.observation,
                                batch.action).min(axis=0)
        (v_loss, v_mean), grads = jax.value_and_grad(value_loss, has_aux=True)(
            learner.value_params, target_q, batch.observation, hparams)
        value_params, value_opt_state = optim.apply_gradient(
            optimizers["value"](hparams), learner.value_params, learner.value_opt_state, grads)
        # 2. The policy: advantage-weighted regression with the new value.
        advantage = target_q - state_value(value_params, batch.observation)
        weights = advantage_weights(advantage, hparams.temperature, hparams.max_weight)
        unit_action = unit_from_bounds(batch.action, low, high)
        a_loss, grads = jax.value_and_grad(actor_loss)(
            learner.actor_params, weights, batch.observation, unit_action)
        actor_params, actor_opt_state = optim.apply_gradient(
            optimizers["actor"](hparams), learner.actor_params, learner.actor_opt_state, grads)
        # 3. The critics: regression on r + gamma (1 - terminal) V(s') with the new value.
        target = q_target(batch.reward * scale, batch.terminated,
                          state_value(value_params, batch.next_observation), hparams.gamma)
        (c_loss, q_mean), grads = jax.value_and_grad(critic_loss, has_aux=True)(
            learner.critic_params, target, batch)
        critic_params, critic_opt_state = optim.apply_gradient(
            optimizers["critic"](hparams), learner.critic_params, learner.critic_opt_state,
            grads)
        learner = LearnerState(
            actor_params=actor_params,
            critic_params=critic_params,
            target_critic_params=optax.incremental_update(
                critic_params, learner.target_critic_params, hparams.tau),
            value_params=value_params,
            actor_opt_state=actor_opt_state,
            critic_opt_state=critic_opt_state,
            value_opt_state=value_opt_state,
            step=learner.step + 1,
        )
        return learner, {"value_loss": v_loss, "critic_loss": c_loss, "actor_loss": a_loss,
                         "value": v_mean, "q_value": q_mean, "advantage_weight": weights.mean()}

    def greedy_action(learner: LearnerState, observation):
        return scale_to_bounds(policy(learner.actor_params, observation)[0], low, high)

    return make_offline_train(
        config, env, env_params, setup,
        init_learner=init_learner,
        gradient_step=gradient_step,
        greedy_action=greedy_action,
        default_hparams=default_hparams,
        validate=lambda c: validate(c, env, env_params),
    )


# --- the algorithm's description: presets and the command line come from it -------------------
ALGORITHM = AlgorithmSpec(
    name="iql", display_name="IQL", config=Config, hyperparams=Hyperparams,
    make_train=make_train, presets=PRESETS, preset_by_env=_PRESET_BY_ENV,
    description=__doc__.strip().splitlines()[0], **OFFLINE_ALGORITHM,
    measured_presets={"pendulum": "benchmarks/offline.py"},
)
preset_config = ALGORITHM.preset_config  # (env_id_or_preset, **overrides) -> Config
main = ALGORITHM.main  # `python algos/offline/iql.py --dataset pendulum-medium-v0`


if __name__ == "__main__":
    sys.exit(main())
