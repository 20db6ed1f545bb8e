"""TD3+BC (Fujimoto & Gu, 2021): TD3 on a fixed dataset, plus behaviour cloning in the actor.

Read top to bottom: ``Config`` and presets, the pure pieces (``td_target``,
``td3_bc_actor_loss``), ``make_train`` (the critic steps, then the delayed actor step and target
updates), ``main``. ``make_train(config, env, env_params)`` returns the usual pure ``Train``::

    env, env_params = jaxrl_suite.make("gymnax/Pendulum-v1")
    train = make_train(preset_config("gymnax/Pendulum-v1", dataset="pendulum-medium-v0"),
                       env, env_params)

The critics are TD3's: twin Q-networks (one ``QEnsemble``) regressed on the clipped double-Q
target with target policy smoothing (noise ``policy_noise`` clipped at ``noise_clip``, both
times the action half-range); a timeout (truncation) still bootstraps. The deterministic actor
(a tanh MLP scaled to the bounds) maximises ``lambda Q_1(s, pi(s)) - (pi(s) - a)^2`` with
``lambda = alpha / mean|Q_1|`` (no gradient through lambda), which keeps the two terms on the
same scale whatever the size of the returns. The behaviour-cloning term measures actions in
``[-1, 1]`` units (the action half-range is 1), as in the paper's D4RL tasks, so ``alpha`` means
the same whatever the env's bounds. Observations are standardised with the dataset's mean and
std (``normalize_observations``, the paper's setting).

The actor is updated every ``policy_freq``-th critic step: each call of the gradient step draws
``policy_freq`` minibatches, makes one critic step on each, then an actor step on the last one
and the Polyak updates of the target actor and critics (a static schedule, no branch).
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

from jaxrl_suite.algos.td3 import td3_target
from jaxrl_suite.data.datasets import Dataset
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
    DeterministicActor,
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

__all__ = ["Config", "Hyperparams", "PRESETS", "make_train", "preset_config", "td_target",
           "td3_bc_actor_loss", "main", "write_outputs"]


# --- configuration ------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Config(OfflineConfig):
    """TD3+BC settings (and the shared offline ones: dataset, total_updates, batch_size, ...).
    Defaults: the paper's D4RL settings (1M steps of batch 256). Noise scales are fractions of
    the action half-range ``(high - low) / 2``."""

    actor_learning_rate: float = 3e-4
    """Adam step size of the actor (traceable)."""
    critic_learning_rate: float = 3e-4
    """Adam step size of the critics (traceable)."""
    gamma: float = 0.99
    """Discount (traceable)."""
    tau: float = 0.005
    """Polyak rate of the target actor and critics, updated with each actor step (traceable)."""
    alpha: float = 2.5
    """Weight of the Q term against behaviour cloning: lambda = alpha / mean|Q| (traceable)."""
    policy_noise: float = 0.2
    """Std of the target policy smoothing noise (traceable)."""
    noise_clip: float = 0.5
    """Clip of the target policy smoothing noise (traceable)."""
    policy_freq: int = 2
    """Critic steps per actor step and target update; eval_interval must be a multiple."""
    num_critics: int = 2
    """Q-networks in the ensemble; the target uses their minimum, the actor the first."""
    hidden_sizes: tuple[int, ...] = (256, 256)
    """Hidden layer widths of the actor and of each critic."""
    activation: str = "relu"
    """relu, tanh, gelu, silu or elu."""


@struct.dataclass
class Hyperparams:
    """The continuous hyperparameters, traceable: pass a batch of them to ``vmap(train)``."""

    actor_learning_rate: jax.Array
    critic_learning_rate: jax.Array
    gamma: jax.Array
    tau: jax.Array
    alpha: jax.Array
    policy_noise: jax.Array
    noise_clip: jax.Array
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
    """Raise a ``ValueError`` naming a bad TD3+BC setting (the shared ones are checked by
    ``prepare_offline``)."""
    if not isinstance(config, Config):
        raise TypeError(f"config must be a td3_bc.Config; got {type(config).__name__}.")
    require_finite_numbers(config)
    validate_offline_config(config, "TD3+BC")
    require_positive(config, "actor_learning_rate", "critic_learning_rate")
    require_in_unit_interval(config, "gamma")
    if not 0.0 < config.tau <= 1.0:
        raise ValueError(f"tau must be in (0, 1]; got {config.tau!r}.")
    require_non_negative(config, "alpha", "policy_noise", "noise_clip")
    require_positive_ints(config, "policy_freq", "num_critics")
    require_hidden_sizes(config.hidden_sizes)
    activation_by_name(config.activation)


# --- the pure pieces ----------------------------------------------------------------------------
td_target = td3_target
"""TD3's clipped double-Q target ``r + gamma (1 - terminated) min_i Q'_i(s', a~')``:
``next_q_values`` ``(num_critics, batch)``, the rest ``(batch,)``. A timeout (truncation) is not
terminal, so it bootstraps."""


def td3_bc_actor_loss(q: jax.Array, policy_action: jax.Array, dataset_action: jax.Array,
                      alpha: jax.Array | float) -> tuple[jax.Array, jax.Array]:
    """TD3+BC's actor loss ``-lambda mean(Q) + mean((pi - a)^2)`` and ``lambda``.

    ``q`` ``(batch,)`` is ``Q_1(s, pi(s))``; ``policy_action`` and ``dataset_action``
    ``(batch, action_dim)`` (the squared error is averaged over both axes, as PyTorch's
    ``mse_loss``). ``lambda = alpha / mean|Q|`` carries no gradient: it only rescales the Q term
    to the size of the behaviour-cloning term.
    """
    lam = jax.lax.stop_gradient(alpha / jnp.abs(q).mean())
    return -lam * q.mean() + jnp.square(policy_action - dataset_action).mean(), lam


# --- make_train ---------------------------------------------------------------------------------
@struct.dataclass
class LearnerState:
    actor_params: Any
    critic_params: Any  # leaves with a leading num_critics axis
    target_actor_params: Any
    target_critic_params: Any
    actor_opt_state: Any
    critic_opt_state: Any


def make_train(config: Config, env: Environment, env_params: Any,
               dataset: Dataset | None = None, optimizer: Any = None) -> Train:
    """TD3+BC's pure training run on ``config.dataset`` (or ``dataset``), evaluated in ``env``.

    ``optimizer`` follows ``jaxrl_suite.learn.optim``: None for Adam at the config's two rates; an
    optax optimiser used as it is for both the actor and the critics (its own rate: the config's
    then do not apply); a factory ``hparams -> optimiser``; or a dict of these keyed
    ``"actor"`` and ``"critic"``. The actor steps once per ``policy_freq`` gradient steps, so a
    schedule in its optimiser counts actor steps.
    """
    validate(config, env, env_params)
    setup = prepare_offline(config, env, env_params, "TD3+BC", dataset)
    if not (np.all(np.isfinite(setup.action_low)) and np.all(np.isfinite(setup.action_high))):
        raise ValueError(f"TD3+BC scales its tanh actor to the action bounds, so they must be "
                         f"finite; {env.name} has [{setup.action_low}, {setup.action_high}].")
    action_dim = setup.action_dim
    low, high = jnp.asarray(setup.action_low), jnp.asarray(setup.action_high)
    half_range = (high - low) / 2.0
    actor = DeterministicActor(config.hidden_sizes, action_dim, config.activation)
    critic = QEnsemble(config.hidden_sizes, config.num_critics, config.activation)
    default_hparams = hyperparams_from_config(Hyperparams, config)
    optimizers = optim.resolve_optimizers(optimizer, {
        "actor": optim.default_adam(config, "actor_learning_rate"),
        "critic": optim.default_adam(config, "critic_learning_rate"),
    }, default_hparams, "TD3+BC")

    def policy(actor_params, observation):
        return scale_to_bounds(actor.apply(actor_params, observation), low, high)

    def init_learner(key: jax.Array, hparams: Hyperparams) -> LearnerState:
        actor_key, critic_key = jax.random.split(key)
        observation = setup.dataset.observations[0]
        actor_params = actor.init(actor_key, observation)
        critic_params = critic.init(critic_key, observation, jnp.zeros(action_dim, jnp.float32))
        return LearnerState(
            actor_params=actor_params,
            critic_params=critic_params,
            target_actor_params=actor_params,
            target_critic_params=critic_params,
            actor_opt_state=optimizers["actor"](hparams).init(actor_params),
            critic_opt_state=optimizers["critic"](hparams).init(critic_params),
        )

    # --- losses (batch leaves are (batch_size, ...))
    def critic_loss(critic_params, learner: LearnerState, batch: Transition, noise, hparams):
        # Target policy smoothing: clipped noise on the target actor's action.
        smoothing = jnp.clip(noise * hparams.policy_noise, -hparams.noise_clip,
                             hparams.noise_clip) * half_range
        next_action = jnp.clip(policy(learner.target_actor_params, batch.next_observation)
                               + smoothing, low, high)
        next_q = critic.apply(learner.target_critic_params, batch.next_observation, next_action)
        target = jax.lax.stop_gradient(
            td_target(batch.reward, batch.terminated, next_q, hparams.gamma))
        q = critic.apply(critic_params, batch.observation, batch.action)
        return jnp.square(q - target).mean(axis=1).sum(), q.mean()  # summed over the ensemble

    def actor_loss(actor_params, critic_params, batch: Transition, alpha):
        unit_policy_action = actor.apply(actor_params, batch.observation)  # in [-1, 1]
        q = critic.apply(critic_params, batch.observation,
                         scale_to_bounds(unit_policy_action, low, high))[0]
        unit_dataset_action = unit_from_bounds(batch.action, low, high)
        return td3_bc_actor_loss(q, unit_policy_action, unit_dataset_action, alpha)

    def gradient_step(learner: LearnerState, batches: Transition, key: jax.Array,
                      hparams: Hyperparams):
        """``policy_freq`` critic steps (batch leaves ``(policy_freq, batch_size, ...)``), then
        one actor step on the last batch and the target updates."""

        def critic_step(learner: LearnerState, inputs):
            batch, noise_key = inputs
            noise = jax.random.normal(noise_key, batch.action.shape)
            (loss, q_mean), grads = jax.value_and_grad(critic_loss, has_aux=True)(
                learner.critic_params, learner, batch, noise, hparams)
            critic_params, critic_opt_state = optim.apply_gradient(
                optimizers["critic"](hparams), learner.critic_params,
                learner.critic_opt_state, grads)
            learner = learner.replace(critic_params=critic_params,
                                      critic_opt_state=critic_opt_state)
            return learner, (loss, q_mean)

        learner, (critic_losses, q_means) = jax.lax.scan(
            critic_step, learner, (batches, jax.random.split(key, config.policy_freq)))
        last_batch = jax.tree.map(lambda x: x[-1], batches)
        (a_loss, lam), grads = jax.value_and_grad(actor_loss, has_aux=True)(
            learner.actor_params, learner.critic_params, last_batch, hparams.alpha)
        actor_params, actor_opt_state = optim.apply_gradient(
            optimizers["actor"](hparams), learner.actor_params, learner.actor_opt_state, grads)
        learner = learner.replace(
            actor_params=actor_params,
            actor_opt_state=actor_opt_state,
            target_actor_params=optax.incremental_update(
                actor_params, learner.target_actor_params, hparams.tau),
            target_critic_params=optax.incremental_update(
                learner.critic_params, learner.target_critic_params, hparams.tau),
        )
        return learner, {"critic_loss": critic_losses.mean(), "q_value": q_means.mean(),
                         "actor_loss": a_loss, "lambda": lam}

    return make_offline_train(
        config, env, env_params, setup,
        init_learner=init_learner,
        gradient_step=gradient_step,
        greedy_action=lambda learner, obs: policy(learner.actor_params, obs),
        default_hparams=default_hparams,
        validate=lambda c: validate(c, env, env_params),
        steps_per_call=config.policy_freq,
    )


# --- the algorithm's description: presets and the command line come from it -------------------
ALGORITHM = AlgorithmSpec(
    name="td3_bc", display_name="TD3+BC", config=Config, hyperparams=Hyperparams,
    make_train=make_train, presets=PRESETS, preset_by_env=_PRESET_BY_ENV,
    description=__doc__.strip().splitlines()[0], **OFFLINE_ALGORITHM,
    measured_presets={"pendulum": "benchmarks/offline.py"},
)
preset_config = ALGORITHM.preset_config  # (env_id_or_preset, **overrides) -> Config
main = ALGORITHM.main  # `python algos/offline/td3_bc.py --dataset pendulum-medium-v0`


if __name__ == "__main__":
    sys.exit(main())
