"""Conservative Q-Learning (Kumar et al., 2020): SAC whose critics are pushed down on actions
away from the data, so the policy cannot exploit over-estimated values it has never seen.

Read top to bottom: ``Config`` and presets, the conservative penalty (``cql_penalty``),
``make_train`` (the critic, actor and temperature updates of one gradient step), ``main``.
``make_train(config, env, env_params)`` returns the usual pure ``Train``::

    env, env_params = jaxrl_suite.make("gymnax/Pendulum-v1")
    train = make_train(preset_config("gymnax/Pendulum-v1", dataset="pendulum-medium-v0"),
                       env, env_params)

This is CQL(H) with importance sampling, the continuous-control version of the paper's
D4RL experiments (the official code's ``min_q_version=3``). Each critic's loss is the squared
TD error plus ``cql_alpha`` times the penalty ``logsumexp_a Q(s, a) - Q(s, a_data)``, the
log-sum-exp estimated from ``cql_num_actions`` uniformly random actions and as many actions
of the current policy at ``s`` and at ``s'`` (all scored at ``s``), each divided by the density
it was drawn from. With ``lagrange_threshold`` set, the weight is tuned by dual gradient
ascent so that the penalty stays near the threshold (CQL-Lagrange). The actor is SAC's
tanh-Gaussian with automatic entropy tuning; its first ``bc_steps`` steps maximise the
likelihood of the dataset's actions instead of Q (the official code's warm start).

Actions are seen by the networks in ``[-1, 1]`` (the dataset's are rescaled from the env's
bounds once per batch), where the published densities hold; the policy is scaled back to the
bounds to act. Terminals stop bootstrapping, timeouts (truncation) do not.
"""

from __future__ import annotations

import dataclasses
import math
import sys
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import struct

from jaxrl_suite.algos.sac import soft_td_target
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
    QEnsemble,
    TanhGaussianActor,
    activation_by_name,
    scale_to_bounds,
    tanh_gaussian_sample,
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

__all__ = ["Config", "Hyperparams", "LearnerState", "PRESETS", "make_train", "preset_config",
           "cql_penalty", "tanh_gaussian_log_prob", "main", "write_outputs"]


# --- configuration ------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Config(OfflineConfig):
    """CQL settings (and the shared offline ones: dataset, total_updates, batch_size, ...).

    Defaults: the official code's Gym-MuJoCo settings (its README and ``cql_mujoco_new.py``):
    conservative weight 5 without the Lagrange form, 10 sampled actions of each kind,
    temperature 1, policy (and entropy) rate 1e-4, critic rate 3e-4, a 40k-step BC warm start,
    no entropy in the target, three 256-unit layers, batch 256. CORL's CQL differs in weight 10,
    policy rate 3e-5 and no warm start (``bc_steps=0``); its standardised observations are
    kept (``normalize_observations``). Floats marked *traceable* are also ``Hyperparams`` and
    can be swept under ``vmap``.
    """

    actor_learning_rate: float = 1e-4
    """Adam step size of the policy (traceable)."""
    critic_learning_rate: float = 3e-4
    """Adam step size of the critics (traceable)."""
    alpha_learning_rate: float = 1e-4
    """Adam step size of log(entropy temperature); the official code uses the policy's
    (traceable)."""
    gamma: float = 0.99
    """Discount (traceable)."""
    tau: float = 0.005
    """Polyak rate of the target critics, updated after every step (traceable)."""
    cql_alpha: float = 5.0
    """Weight of the conservative penalty (with lagrange_threshold: the scale of the tuned
    multiplier) (traceable)."""
    cql_num_actions: int = 10
    """Actions of each kind (uniform, policy at s, policy at s') in the log-sum-exp."""
    cql_temperature: float = 1.0
    """Temperature of the log-sum-exp (traceable)."""
    lagrange_threshold: float | None = None
    """CQL-Lagrange: tune the penalty's weight so the penalty approaches this value (the
    paper's tau; 5 or 10 in the official code); None keeps the weight fixed at cql_alpha."""
    lagrange_learning_rate: float = 3e-4
    """Adam step size of the log Lagrange multiplier; the official code uses the critics'
    (traceable)."""
    bc_steps: int = 40_000
    """Initial gradient steps whose policy loss is the negative log-likelihood of the dataset's
    actions (plus the entropy term) instead of -Q; 0 for none."""
    backup_entropy: bool = False
    """Subtract alpha * log pi(a'|s') in the TD target, as SAC does; the official code and CORL
    leave it out (the paper's equation 3)."""
    initial_alpha: float = 1.0
    """Entropy temperature at the start (traceable)."""
    autotune_alpha: bool = True
    """Tune the entropy temperature towards -target_entropy_scale * action_dim."""
    target_entropy_scale: float = 1.0
    """Target entropy is -scale * action_dim (traceable)."""
    num_critics: int = 2
    """Q-networks in the ensemble; the TD target and the actor use their minimum."""
    hidden_sizes: tuple[int, ...] = (256, 256, 256)
    """Hidden layer widths of the actor and of each critic."""
    activation: str = "relu"
    """relu, tanh, gelu, silu or elu."""
    log_std_min: float = -5.0
    """Lower bound of the policy's log standard deviation."""
    log_std_max: float = 2.0
    """Upper bound of the policy's log standard deviation."""


@struct.dataclass
class Hyperparams:
    """The continuous hyperparameters, traceable: pass a batch of them to ``vmap(train)``."""

    actor_learning_rate: jax.Array
    critic_learning_rate: jax.Array
    alpha_learning_rate: jax.Array
    gamma: jax.Array
    tau: jax.Array
    cql_alpha: jax.Array
    cql_temperature: jax.Array
    lagrange_learning_rate: jax.Array
    initial_alpha: jax.Array
    target_entropy_scale: jax.Array
    meta: Any = None
    """Meta-parameters, any pytree of arrays, traced: handed to the optimiser factory (e.g. a
    learned optimiser's params); None by default."""


# The Pendulum preset keeps the published settings and shortens the run to Pendulum's scale
# (1e5 transitions, 200-step episodes), the warm start with it. It is slow on a CPU: each step
# scores 31 actions per state in each critic, about 3 steps/s on two cores at these sizes.
# Pendulum's values (about -300) take the published rates and tau more than 8,000 steps to fit;
# tests/test_cql.py learns in 6,000 at test scale with rates 1e-3 and tau 0.02.
PRESETS: dict[str, dict[str, Any]] = {
    "pendulum": dict(total_updates=30_000, eval_interval=1_000, evaluation_episodes=10,
                     bc_steps=5_000),
}
_PRESET_BY_ENV = {"gymnax/Pendulum-v1": "pendulum"}


def validate(config: Config, env: Environment, env_params: Any) -> None:
    """Raise a ``ValueError`` naming the bad CQL setting (the shared ones are checked by
    ``prepare_offline``)."""
    if not isinstance(config, Config):
        raise TypeError(f"config must be a cql.Config; got {type(config).__name__}.")
    require_finite_numbers(config)
    validate_offline_config(config, "CQL")
    require_positive(config, "actor_learning_rate", "critic_learning_rate",
                     "alpha_learning_rate", "lagrange_learning_rate", "cql_temperature",
                     "initial_alpha")
    require_non_negative(config, "cql_alpha", "target_entropy_scale")
    require_in_unit_interval(config, "gamma")
    if not 0.0 < config.tau <= 1.0:
        raise ValueError(f"tau must be in (0, 1]; got {config.tau!r}.")
    require_positive_ints(config, "cql_num_actions", "num_critics")
    if not isinstance(config.bc_steps, int) or isinstance(config.bc_steps, bool) or (
            config.bc_steps < 0):
        raise ValueError(f"bc_steps must be a non-negative integer; got {config.bc_steps!r}.")
    if config.lagrange_threshold is not None and not math.isfinite(config.lagrange_threshold):
        raise ValueError(f"lagrange_threshold must be a finite number or None; got "
                         f"{config.lagrange_threshold!r}.")
    if not config.log_std_min < config.log_std_max:
        raise ValueError(f"log_std_min ({config.log_std_min}) must be below log_std_max "
                         f"({config.log_std_max}).")
    require_hidden_sizes(config.hidden_sizes)
    activation_by_name(config.activation)


# --- the conservative penalty -------------------------------------------------------------------
def cql_penalty(
    q_dataset: jax.Array,
    q_sampled: jax.Array,
    log_weights: jax.Array,
    temperature: jax.Array | float = 1.0,
) -> jax.Array:
    """CQL(H)'s penalty ``T logsumexp_k((Q(s, a_k) - log mu(a_k)) / T) - Q(s, a_data)``.

    ``q_sampled`` ``(..., num_samples)``: Q at actions ``a_k`` drawn from proposals ``mu``;
    ``log_weights`` (broadcast to it) their log-densities ``log mu(a_k)``, the importance
    correction (zero for none); ``q_dataset`` ``(...)``: Q at the dataset's action. Returns
    ``(...)``. Minimising it lowers Q where it is high away from the data (each sampled value
    by its softmax weight) and raises Q at the dataset's action; it is positive when the
    sampled values exceed the dataset's. As in the published code the estimate omits
    ``-log(num_samples)`` (a constant: it changes no gradient, only the Lagrange threshold's
    meaning).
    """
    scaled = (q_sampled - log_weights) / temperature
    return temperature * jax.nn.logsumexp(scaled, axis=-1) - q_dataset


def tanh_gaussian_log_prob(mean: jax.Array, log_std: jax.Array, unit_action: jax.Array,
                           epsilon: float = 1e-6) -> jax.Array:
    """Log-density ``(...)`` of ``unit_action`` ``(..., d)`` in ``(-1, 1)`` under the tanh
    Gaussian of ``(mean, log_std)``; actions at the bounds are moved ``epsilon`` inside."""
    pre_tanh = jnp.arctanh(jnp.clip(unit_action, -1.0 + epsilon, 1.0 - epsilon))
    noise = (pre_tanh - mean) * jnp.exp(-log_std)
    return tanh_gaussian_sample(mean, log_std, noise)[1]


# --- make_train ---------------------------------------------------------------------------------
@struct.dataclass
class LearnerState:
    actor_params: Any
    critic_params: Any  # leaves with a leading num_critics axis
    target_critic_params: Any
    log_alpha: jax.Array  # entropy temperature
    log_alpha_prime: jax.Array  # Lagrange multiplier of the penalty (unused without Lagrange)
    actor_opt_state: Any
    critic_opt_state: Any
    alpha_opt_state: Any
    alpha_prime_opt_state: Any
    step: jax.Array  # int32 gradient steps done (ends the BC warm start)


def make_train(config: Config, env: Environment, env_params: Any,
               dataset: Dataset | None = None, optimizer: Any = None) -> Train:
    """CQL's pure training run on ``config.dataset`` (or ``dataset``), evaluated in ``env``.

    ``optimizer`` follows ``jaxrl_suite.learn.optim``: one optimiser for all four of ``"actor"``,
    ``"critic"``, ``"alpha"`` (log alpha, with ``autotune_alpha``) and ``"lagrange"`` (the log
    multiplier, with ``lagrange_threshold``), or a dict naming some. Each is None for Adam at
    that one's ``*_learning_rate``, an optax optimiser used as it is (its own rate: the
    config's then does not apply), or a factory ``hparams -> optimiser`` (traced hparams).
    """
    validate(config, env, env_params)
    setup = prepare_offline(config, env, env_params, "CQL", dataset)
    action_dim = setup.action_dim
    low, high = setup.action_low, setup.action_high
    actor = TanhGaussianActor(config.hidden_sizes, action_dim, config.activation,
                              config.log_std_min, config.log_std_max)
    critic = QEnsemble(config.hidden_sizes, config.num_critics, config.activation)
    default_hparams = hyperparams_from_config(Hyperparams, config)
    optimizers = optim.resolve_optimizers(optimizer, {
        "actor": optim.default_adam(config, "actor_learning_rate"),
        "critic": optim.default_adam(config, "critic_learning_rate"),
        "alpha": optim.default_adam(config, "alpha_learning_rate"),
        "lagrange": optim.default_adam(config, "lagrange_learning_rate"),
    }, default_hparams, "CQL")
    num_samples = config.cql_num_actions
    uniform_log_density = -action_dim * math.log(2.0)  # uniform on [-1, 1]^d
    lagrange = config.lagrange_threshold is not None

    def to_unit(action):  # env units -> [-1, 1]
        return unit_from_bounds(action, low, high)

    def sample(actor_params, observation, key, shape=()):
        """Policy actions in [-1, 1] ``(*shape, ..., d)`` and their log-densities."""
        mean, log_std = actor.apply(actor_params, observation)
        noise = jax.random.normal(key, (*shape, *mean.shape))
        return tanh_gaussian_sample(mean, log_std, noise)

    def init_learner(key: jax.Array, hparams: Hyperparams) -> LearnerState:
        actor_key, critic_key = jax.random.split(key)
        observation = setup.dataset.observations[0]
        actor_params = actor.init(actor_key, observation)
        critic_params = critic.init(critic_key, observation, jnp.zeros(action_dim))
        log_alpha = jnp.log(hparams.initial_alpha).astype(jnp.float32)
        log_alpha_prime = jnp.float32(0.0)
        return LearnerState(actor_params, critic_params, critic_params, log_alpha, log_alpha_prime,
                       optimizers["actor"](hparams).init(actor_params),
                       optimizers["critic"](hparams).init(critic_params),
                       optimizers["alpha"](hparams).init(log_alpha),
                       optimizers["lagrange"](hparams).init(log_alpha_prime),
                       jnp.int32(0))

    # --- losses (batch leaves are (batch_size, ...); actions in [-1, 1])
    def critic_loss(critic_params, learner: LearnerState, batch: Transition, action, alpha,
                    cql_weight, key, hparams: Hyperparams):
        target_key, uniform_key, current_key, next_key = jax.random.split(key, 4)
        next_action, next_log_prob = sample(learner.actor_params, batch.next_observation,
                                            target_key)
        next_q = critic.apply(learner.target_critic_params, batch.next_observation, next_action)
        target = jax.lax.stop_gradient(soft_td_target(
            batch.reward, batch.terminated, next_q, next_log_prob,
            alpha if config.backup_entropy else 0.0, hparams.gamma))
        q = critic.apply(critic_params, batch.observation, action)  # (members, batch)
        td_loss = jnp.square(q - target).mean(axis=1)

        # The log-sum-exp's samples, all scored at s: (kinds * num_samples, batch, d).
        batch_size = action.shape[0]
        uniform = jax.random.uniform(uniform_key, (num_samples, batch_size, action_dim),
                                     minval=-1.0, maxval=1.0)
        current, current_log_prob = sample(learner.actor_params, batch.observation,
                                           current_key, (num_samples,))
        at_next, at_next_log_prob = sample(learner.actor_params, batch.next_observation,
                                           next_key, (num_samples,))
        sampled = jax.lax.stop_gradient(jnp.concatenate([uniform, current, at_next]))
        log_weights = jax.lax.stop_gradient(jnp.concatenate([
            jnp.full((num_samples, batch_size), uniform_log_density), current_log_prob,
            at_next_log_prob]))
        observations = jnp.broadcast_to(batch.observation,
                                        (sampled.shape[0], *batch.observation.shape))
        q_sampled = critic.apply(critic_params, observations, sampled)  # (members, K, batch)
        penalty = cql_penalty(q, jnp.swapaxes(q_sampled, -1, -2), log_weights.T,
                              hparams.cql_temperature).mean(axis=1)  # (members,)
        threshold = config.lagrange_threshold if lagrange else 0.0
        loss = (td_loss + cql_weight * (penalty - threshold)).sum()
        return loss, {"td_loss": td_loss.mean(), "cql_penalty": penalty.mean(),
                      "q_value": q.mean(), "q_sampled": q_sampled.mean()}

    def actor_loss(actor_params, critic_params, observation, action, alpha, in_warm_start, key):
        mean, log_std = actor.apply(actor_params, observation)
        new_action, log_prob = tanh_gaussian_sample(mean, log_std,
                                                    jax.random.normal(key, mean.shape))
        q = critic.apply(critic_params, observation, new_action).min(axis=0)
        # Both objectives are computed; jnp.where picks one without a branch under vmap.
        value = jnp.where(in_warm_start, tanh_gaussian_log_prob(mean, log_std, action), q)
        loss = (alpha * log_prob - value).mean()
        return loss, -log_prob.mean()

    def gradient_step(learner: LearnerState, batch: Transition, key: jax.Array,
                      hparams: Hyperparams):
        critic_key, actor_key = jax.random.split(key)
        action = to_unit(batch.action)
        alpha = jnp.exp(learner.log_alpha)
        alpha_prime = jnp.clip(jnp.exp(learner.log_alpha_prime), 0.0, 1e6)
        cql_weight = hparams.cql_alpha * (alpha_prime if lagrange else 1.0)
        # As in the published code, the critics, the actor and the temperatures all step from
        # the same parameters.
        (critic_loss_value, info), critic_grads = jax.value_and_grad(critic_loss, has_aux=True)(
            learner.critic_params, learner, batch, action, alpha, cql_weight, critic_key,
            hparams)
        (actor_loss_value, entropy), actor_grads = jax.value_and_grad(actor_loss, has_aux=True)(
            learner.actor_params, learner.critic_params, batch.observation, action, alpha,
            learner.step < config.bc_steps, actor_key)
        critic_params, critic_opt_state = optim.apply_gradient(
            optimizers["critic"](hparams), learner.critic_params, learner.critic_opt_state,
            critic_grads)
        actor_params, actor_opt_state = optim.apply_gradient(
            optimizers["actor"](hparams), learner.actor_params, learner.actor_opt_state,
            actor_grads)
        log_alpha, alpha_opt_state = learner.log_alpha, learner.alpha_opt_state
        if config.autotune_alpha:
            # Gradient of -log_alpha * (target_entropy - entropy), as in SAC.
            target_entropy = -hparams.target_entropy_scale * action_dim
            log_alpha, alpha_opt_state = optim.apply_gradient(
                optimizers["alpha"](hparams), log_alpha, alpha_opt_state,
                -(target_entropy - jax.lax.stop_gradient(entropy)))
        log_alpha_prime, alpha_prime_opt_state = (learner.log_alpha_prime,
                                                  learner.alpha_prime_opt_state)
        if lagrange:
            # Dual ascent: the multiplier grows while the penalty is above the threshold.
            gap = jax.lax.stop_gradient(info["cql_penalty"]) - config.lagrange_threshold
            log_alpha_prime, alpha_prime_opt_state = optim.apply_gradient(
                optimizers["lagrange"](hparams), log_alpha_prime, alpha_prime_opt_state,
                -alpha_prime * hparams.cql_alpha * gap)
        learner = LearnerState(
            actor_params=actor_params,
            critic_params=critic_params,
            target_critic_params=optax.incremental_update(
                critic_params, learner.target_critic_params, hparams.tau),
            log_alpha=log_alpha,
            log_alpha_prime=log_alpha_prime,
            actor_opt_state=actor_opt_state,
            critic_opt_state=critic_opt_state,
            alpha_opt_state=alpha_opt_state,
            alpha_prime_opt_state=alpha_prime_opt_state,
            step=learner.step + 1,
        )
        return learner, {"critic_loss": critic_loss_value, "actor_loss": actor_loss_value,
                         "entropy": entropy, "alpha": alpha, "cql_weight": cql_weight, **info}

    def greedy_action(learner: LearnerState, observation: jax.Array) -> jax.Array:
        mean, _ = actor.apply(learner.actor_params, observation)
        return scale_to_bounds(jnp.tanh(mean), low, high)

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
    name="cql", display_name="CQL", config=Config, hyperparams=Hyperparams,
    make_train=make_train, presets=PRESETS, preset_by_env=_PRESET_BY_ENV,
    description=__doc__.strip().splitlines()[0], **OFFLINE_ALGORITHM,
    measured_presets={"pendulum": "benchmarks/offline.py"},
)
preset_config = ALGORITHM.preset_config  # (env_id_or_preset, **overrides) -> Config
main = ALGORITHM.main  # `python algos/offline/cql.py --dataset pendulum-medium-v0`


if __name__ == "__main__":
    sys.exit(main())
