"""Soft Actor-Critic (Haarnoja et al., 2018), the whole run as one jitted program.

Read top to bottom: ``Config`` and presets, the networks, ``make_train`` (collect, the soft TD
target, the critic/actor/temperature updates), ``main``. As with every algorithm here,
``make_train(config, env, env_params)`` returns a pure ``train(key, hparams=None)``::

    env, env_params = jaxrl_suite.make("gymnax/Pendulum-v1")
    train = make_train(preset_config("gymnax/Pendulum-v1"), env, env_params)
    result = jax.jit(jax.vmap(train))(jax.random.split(jax.random.key(0), 4))   # 4 seeds

Continuous (``Box``) actions get a tanh-squashed Gaussian policy scaled to the action bounds;
discrete actions get the discrete SAC of Christodoulou (2019) (expectations over the action
distribution instead of samples). The critics are an ensemble of ``num_critics`` Q-networks
evaluated as one ``vmap`` (``QEnsemble``); the target takes their minimum. The temperature
``alpha`` is tuned towards a target entropy (``autotune_alpha``).

Multi-objective envs (reward ``(k,)``, DESIGN.md s5): each critic has ``k`` outputs per action
and the soft TD target runs per objective, ``r + gamma (1 - terminated) (Q_j(s', a') - alpha log
pi(a'|s'))``, with ``Q_j`` the vector of the member ``j`` whose ``w . Q`` is lowest and the
entropy bonus on every component: with weights summing to 1, ``w . target`` is exactly the
scalar algorithm's target of the reward ``w . r``. The actor maximises ``min_i w . Q_i - alpha
log pi``; ``w`` is ``Hyperparams.preference`` (traced; default ``1 / k`` each).

One update is ``train_frequency`` steps of all ``num_envs`` envs into the replay buffer, then
``gradient_steps`` gradient steps on minibatches drawn from it; ``learning_starts`` env steps of
uniformly random actions fill the buffer first (inside ``init``, so the update loop has no
branch). Truncation is not termination: the TD target bootstraps from the stored
``next_observation`` (``info["final_observation"]``) unless the step terminated.
"""

from __future__ import annotations

import dataclasses
import math
import sys
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from jaxrl_suite.env import spaces
from jaxrl_suite.env.environment import Environment
from jaxrl_suite.env.wrappers import (
    auto_reset_env,
    finished_episode_metrics,
    flatten_image_observation,
)
from jaxrl_suite.learn import optim
from jaxrl_suite.learn.buffers import ReplayBuffer, Transition
from jaxrl_suite.learn.experience import (
    Experience,
    ExperienceCollector,
    validate_replay_schedule,
)
from jaxrl_suite.learn.networks import (
    MLP,
    QEnsemble,
    TanhGaussianActor,
    activation_by_name,
    flatten_observation,
    scale_to_bounds,
    tanh_gaussian_sample,
)
from jaxrl_suite.learn.preferences import (
    check_preference,
    default_preference,
    min_by_preference,
    num_objectives_of,
    scalarize,
)
from jaxrl_suite.run.algorithms import AlgorithmSpec
from jaxrl_suite.run.configs import (
    hyperparams_from_config,
    hyperparams_validator,
    require_box_observation,
    require_finite_numbers,
    require_hidden_sizes,
    require_in_unit_interval,
    require_non_negative,
    require_positive,
    require_positive_ints,
)
from jaxrl_suite.run.evaluation import Policy
from jaxrl_suite.run.training import Train

__all__ = ["Config", "Hyperparams", "SACState", "PRESETS", "make_train", "preset_config",
           "soft_td_target", "main"]


# --- configuration ------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Config:
    """SAC settings. Defaults follow the original paper's (and CleanRL's) MuJoCo settings.

    Shapes (``num_envs``, ``batch_size``, network sizes, step counts) are static; the floats
    marked *traceable* are also fields of ``Hyperparams`` and can be swept under ``vmap``.
    """

    total_steps: int = 1_000_000
    """Env steps in the whole run over all parallel envs, learning_starts included."""
    num_envs: int = 1
    """Parallel envs (vmapped)."""
    buffer_size: int = 1_000_000
    """Replay capacity in transitions."""
    learning_starts: int = 5_000
    """Env steps of uniformly random actions that fill the buffer before learning."""
    batch_size: int = 256
    """Transitions per gradient step."""
    train_frequency: int = 1
    """Vectorised env steps per update (each is num_envs transitions)."""
    gradient_steps: int = 1
    """Gradient steps per update. Updates-per-data = gradient_steps / (train_frequency *
    num_envs)."""
    actor_learning_rate: float = 3e-4
    """Adam step size of the policy (traceable)."""
    critic_learning_rate: float = 1e-3
    """Adam step size of the critics (traceable)."""
    alpha_learning_rate: float = 1e-3
    """Adam step size of log(alpha) (traceable)."""
    adam_eps_root: float = 0.0
    """Added to Adam's second moment inside the square root. Set it positive (1e-8) when
    differentiating through training (hypergradients, meta-gradients): with 0 the outer
    gradient is NaN where a second moment is zero."""
    gamma: float = 0.99
    """Discount (traceable)."""
    tau: float = 0.005
    """Polyak rate of the target critics, updated after every gradient step (traceable)."""
    initial_alpha: float = 1.0
    """Entropy temperature at the start (traceable)."""
    autotune_alpha: bool = True
    """Tune alpha towards the target entropy; False keeps initial_alpha."""
    target_entropy_scale: float = 1.0
    """Target entropy: -scale * action_dim (continuous), scale * log(num_actions) (discrete)
    (traceable)."""
    num_critics: int = 2
    """Q-networks in the ensemble; the target uses their minimum."""
    hidden_sizes: tuple[int, ...] = (256, 256)
    """Hidden layer widths of the actor and of each critic."""
    activation: str = "relu"
    """relu, tanh, gelu, silu or elu."""
    log_std_min: float = -5.0
    """Lower bound of the policy's log standard deviation (continuous)."""
    log_std_max: float = 2.0
    """Upper bound of the policy's log standard deviation (continuous)."""


@struct.dataclass
class Hyperparams:
    """The continuous hyperparameters, traceable: pass a batch of them to ``vmap(train)``.

    ``preference``: the preference weights ``(num_objectives,)`` of a multi-objective env
    (default equal weights ``1 / k``; None for a scalar reward), traced, so a ``vmap`` over
    them trains a set of preferences in one program.
    """

    actor_learning_rate: jax.Array
    critic_learning_rate: jax.Array
    alpha_learning_rate: jax.Array
    gamma: jax.Array
    tau: jax.Array
    initial_alpha: jax.Array
    target_entropy_scale: jax.Array
    preference: Any = None
    meta: Any = None
    """Meta-parameters, any pytree of arrays, traced: handed to the optimiser factory (e.g. a
    learned optimiser's params); None by default."""

    @classmethod
    def from_config(cls, config: Config) -> Hyperparams:
        return hyperparams_from_config(cls, config)


# Tuned settings per env, over the defaults. The Pendulum preset is tested to reach -200 in
# 1e4 env steps and the CartPole one (discrete SAC) 400 in 5e4 (tests/test_offpolicy.py); the
# Brax one follows Brax's SAC settings. On Pendulum, tau 0.01 rather than 0.005 took 16-seed
# greedy means from -208 and -175 to -153 and -144, with no seed below -200.
PRESETS: dict[str, dict[str, Any]] = {
    "pendulum": dict(
        total_steps=10_000, num_envs=1, buffer_size=10_000, learning_starts=1_000,
        batch_size=256, train_frequency=1, gradient_steps=1, actor_learning_rate=1e-3,
        critic_learning_rate=1e-3, alpha_learning_rate=1e-3, gamma=0.99, tau=0.01,
        hidden_sizes=(64, 64), activation="relu",
    ),
    "cartpole": dict(
        total_steps=50_000, num_envs=4, buffer_size=50_000, learning_starts=1_000,
        batch_size=128, train_frequency=1, gradient_steps=2, actor_learning_rate=1e-3,
        critic_learning_rate=1e-3, alpha_learning_rate=1e-3, gamma=0.99, tau=0.01,
        target_entropy_scale=0.5, hidden_sizes=(64, 64),
    ),
    "brax-locomotion": dict(
        total_steps=5_000_000, num_envs=64, buffer_size=1_000_000, learning_starts=8_192,
        batch_size=256, train_frequency=1, gradient_steps=8, actor_learning_rate=6e-4,
        critic_learning_rate=6e-4, alpha_learning_rate=6e-4, gamma=0.99, tau=0.005,
        hidden_sizes=(256, 256),
    ),
}
_PRESET_BY_ENV = {
    "gymnax/Pendulum-v1": "pendulum",
    "gymnax/CartPole-v1": "cartpole",
    **{f"{backend}/{name}": "brax-locomotion"
       for backend in ("brax", "mjx")
       for name in ("ant", "halfcheetah", "hopper", "humanoid", "walker2d")},
}


def validate(config: Config, env: Environment, env_params: Any) -> None:
    """Raise a ``ValueError`` naming the bad setting, before anything compiles."""
    if not isinstance(config, Config):
        raise TypeError(f"config must be a sac.Config; got {type(config).__name__}.")
    require_finite_numbers(config)
    require_positive_ints(config, "total_steps", "num_envs", "buffer_size", "batch_size",
                          "train_frequency", "gradient_steps", "num_critics")
    validate_replay_schedule(config)
    require_in_unit_interval(config, "gamma")
    if not 0.0 < config.tau <= 1.0:
        raise ValueError(f"tau must be in (0, 1]; got {config.tau!r}.")
    require_positive(config, "actor_learning_rate", "critic_learning_rate",
                     "alpha_learning_rate", "initial_alpha")
    require_non_negative(config, "adam_eps_root")
    if not config.log_std_min < config.log_std_max:
        raise ValueError(f"log_std_min ({config.log_std_min}) must be below log_std_max "
                         f"({config.log_std_max}).")
    require_hidden_sizes(config.hidden_sizes)
    activation_by_name(config.activation)
    action_space = env.action_space(env_params)
    if isinstance(action_space, spaces.Box):
        if not (np.all(np.isfinite(action_space.low)) and np.all(np.isfinite(action_space.high))):
            raise ValueError(f"SAC squashes actions into the bounds, so they must be finite; "
                             f"{env.name} has {action_space}.")
    elif not isinstance(action_space, spaces.Discrete):
        raise ValueError(f"SAC handles Box and Discrete action spaces; {env.name} has "
                         f"{action_space}.")
    require_box_observation("SAC", env, env_params)
    num_objectives_of(env, env_params, "SAC")


# --- networks -----------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Networks:
    """Actor and critic ensemble as pure functions of their params.

    Continuous: the actor gives a tanh-Gaussian over ``[-1, 1]^d`` scaled to the bounds; the
    critics take ``(observation, action)`` in env units. Discrete: the actor gives logits and
    the critics all ``num_actions`` values at once. With ``num_objectives`` k > 0 every Q-value
    is a ``(k,)`` vector (``q_values``).
    """

    config: Config
    discrete: bool
    action_dim: int  # number of actions when discrete
    action_low: Any = None
    action_high: Any = None
    num_objectives: int = 0  # 0: a scalar reward

    @property
    def actor(self):
        if self.discrete:
            return MLP(self.config.hidden_sizes, self.action_dim, self.config.activation, 0.01)
        return TanhGaussianActor(self.config.hidden_sizes, self.action_dim,
                                 self.config.activation, self.config.log_std_min,
                                 self.config.log_std_max)

    @property
    def critic(self) -> QEnsemble:
        if self.discrete:
            output_size = self.action_dim * max(1, self.num_objectives)
        else:
            output_size = self.num_objectives or None
        return QEnsemble(self.config.hidden_sizes, self.config.num_critics,
                         self.config.activation, output_size)

    def q_values(self, critic_params, *inputs):
        """``(num_critics, batch)`` (continuous) or ``(num_critics, batch, num_actions)``
        (discrete), with a trailing ``(k,)`` axis for a multi-objective env."""
        q = self.critic.apply(critic_params, *inputs)
        if self.discrete and self.num_objectives:
            q = q.reshape(*q.shape[:-1], self.action_dim, self.num_objectives)
        return q

    def init(self, key: jax.Array, observation: jax.Array) -> tuple[Any, Any]:
        actor_key, critic_key = jax.random.split(key)
        actor_params = self.actor.init(actor_key, observation)
        if self.discrete:
            critic_params = self.critic.init(critic_key, observation)
        else:
            critic_params = self.critic.init(critic_key, observation,
                                             jnp.zeros(self.action_dim, jnp.float32))
        return actor_params, critic_params

    def sample(self, actor_params, observation, noise):
        """``(action, log_prob)`` from pre-drawn standard-normal ``noise`` ``(..., d)``
        (continuous; the action in env units)."""
        mean, log_std = self.actor.apply(actor_params, observation)
        unit_action, log_prob = tanh_gaussian_sample(mean, log_std, noise)
        return scale_to_bounds(unit_action, self.action_low, self.action_high), log_prob

    def greedy(self, actor_params, observation):
        if self.discrete:
            return jnp.argmax(self.actor.apply(actor_params, observation), axis=-1)
        mean, _ = self.actor.apply(actor_params, observation)
        return scale_to_bounds(jnp.tanh(mean), self.action_low, self.action_high)

    def noise(self, key: jax.Array, batch_shape: tuple[int, ...]) -> jax.Array:
        """Standard normal noise (continuous) or Gumbel noise (discrete sampling)."""
        shape = (*batch_shape, self.action_dim)
        return (jax.random.gumbel if self.discrete else jax.random.normal)(key, shape)

    def act(self, actor_params, observation, noise):
        """A sampled action for acting in the envs."""
        if self.discrete:
            return jnp.argmax(self.actor.apply(actor_params, observation) + noise, axis=-1)
        return self.sample(actor_params, observation, noise)[0]


# --- training state -----------------------------------------------------------------------------
@struct.dataclass
class SACState:
    """Everything a run needs to continue: what a checkpoint saves."""

    actor_params: Any
    critic_params: Any  # leaves with a leading num_critics axis
    target_critic_params: Any
    log_alpha: jax.Array
    actor_opt_state: Any
    critic_opt_state: Any
    alpha_opt_state: Any
    experience: Experience  # env state, observation, replay buffer
    key: jax.Array
    update_step: jax.Array  # int32
    hparams: Hyperparams


def soft_td_target(
    reward: jax.Array,
    terminated: jax.Array,
    next_q_values: jax.Array,
    next_log_prob: jax.Array,
    alpha: jax.Array,
    gamma: jax.Array,
    preference: jax.Array | None = None,
) -> jax.Array:
    """SAC's target ``r + gamma (1 - terminated) (min_i Q_i(s', a') - alpha log pi(a'|s'))``.

    ``next_q_values`` ``(num_critics, batch)``; the rest ``(batch,)`` (alpha, gamma scalars).
    A truncated step is not terminated, so it bootstraps (from the stored final observation).
    Vector rewards: ``reward`` ``(batch, k)``, ``next_q_values`` ``(num_critics, batch, k)``,
    ``preference`` ``(k,)``; the minimum is the member with the lowest ``w . Q`` (its whole
    vector, ``min_by_preference``), the entropy bonus is on every objective, and the target is
    ``(batch, k)``.
    """
    not_done = 1.0 - terminated.astype(reward.dtype)
    if preference is None:
        soft_value = next_q_values.min(axis=0) - alpha * next_log_prob
        return reward + gamma * not_done * soft_value
    soft_value = min_by_preference(next_q_values, preference) - alpha * next_log_prob[..., None]
    return reward + gamma * not_done[..., None] * soft_value


# --- make_train ---------------------------------------------------------------------------------
def make_train(config: Config, env: Environment, env_params: Any, optimizer: Any = None) -> Train:
    """Build SAC's pure training run for ``env`` (checked first; see ``Config``).

    ``optimizer`` follows ``jaxrl_suite.learn.optim``. One serves all three networks, each with its
    own state, or a dict names some of ``"actor"``, ``"critic"`` and ``"alpha"`` (log alpha,
    stepped only with ``autotune_alpha``). Each is None for Adam at that network's
    ``*_learning_rate``, an optax optimiser used as it is (its own rate: the config's then
    does not apply), or a factory ``hparams -> optimiser`` of the traced ``Hyperparams``.
    """
    validate(config, env, env_params)
    # The networks are MLPs: an image observation (H, W, C) is trained on as H * W * C features
    # (the policy flattens what it is given in evaluation the same way).
    observation_ndim = len(env.observation_space(env_params).shape)
    env = flatten_image_observation(auto_reset_env(env), env_params)
    action_space = env.action_space(env_params)
    discrete = isinstance(action_space, spaces.Discrete)
    num_objectives = num_objectives_of(env, env_params, "SAC")
    networks = Networks(
        config,
        discrete,
        action_space.n if discrete else math.prod(action_space.shape),
        None if discrete else jnp.asarray(action_space.low, jnp.float32),
        None if discrete else jnp.asarray(action_space.high, jnp.float32),
        num_objectives,
    )
    buffer = ReplayBuffer(config.buffer_size, config.num_envs)
    collector = ExperienceCollector(env, env_params, buffer)
    default_hparams = Hyperparams.from_config(config).replace(
        preference=default_preference(num_objectives))
    optimizers = optim.resolve_optimizers(optimizer, {
        "actor": optim.default_adam(config, "actor_learning_rate"),
        "critic": optim.default_adam(config, "critic_learning_rate"),
        "alpha": optim.default_adam(config, "alpha_learning_rate"),
    }, default_hparams, "SAC")
    prefill_steps = -(-config.learning_starts // config.num_envs)
    steps_per_update = config.num_envs * config.train_frequency
    num_updates = (config.total_steps - prefill_steps * config.num_envs) // steps_per_update

    def target_entropy(hparams: Hyperparams) -> jax.Array:
        if discrete:
            return hparams.target_entropy_scale * jnp.log(float(networks.action_dim))
        return -hparams.target_entropy_scale * networks.action_dim

    def init(key: jax.Array, hparams: Hyperparams) -> SACState:
        check_preference(hparams.preference, num_objectives, "SAC")
        network_key, env_key, prefill_key, key = jax.random.split(key, 4)
        experience = collector.init(env_key)
        experience = collector.prefill(experience, prefill_key, prefill_steps)
        actor_params, critic_params = networks.init(network_key, experience.observation[0])
        log_alpha = jnp.log(hparams.initial_alpha).astype(jnp.float32)
        return SACState(
            actor_params=actor_params,
            critic_params=critic_params,
            target_critic_params=critic_params,
            log_alpha=log_alpha,
            actor_opt_state=optimizers["actor"](hparams).init(actor_params),
            critic_opt_state=optimizers["critic"](hparams).init(critic_params),
            alpha_opt_state=optimizers["alpha"](hparams).init(log_alpha),
            experience=experience,
            key=key,
            update_step=jnp.int32(0),
            hparams=hparams,
        )

    # --- losses (batch leaves are (batch_size, ...))
    def discrete_soft_target(next_q, next_log_probs, batch, alpha, hparams):
        """Exact expectation over the next action distribution: ``next_q`` ``(num_critics,
        batch, num_actions[, k])``, ``next_log_probs`` ``(batch, num_actions)``."""
        not_done = 1.0 - batch.terminated.astype(jnp.float32)
        if not num_objectives:
            soft = (jnp.exp(next_log_probs) * (next_q.min(axis=0) - alpha * next_log_probs))
            return batch.reward + hparams.gamma * not_done * soft.sum(-1)
        next_log_probs = next_log_probs[..., None]  # the bonus on every objective
        soft = jnp.exp(next_log_probs) * (min_by_preference(next_q, hparams.preference)
                                          - alpha * next_log_probs)
        return batch.reward + hparams.gamma * not_done[:, None] * soft.sum(-2)

    def critic_loss(critic_params, actor_params, target_params, alpha, batch, noise, hparams):
        if discrete:
            next_logits = networks.actor.apply(actor_params, batch.next_observation)
            next_q = networks.q_values(target_params, batch.next_observation)
            target = discrete_soft_target(next_q, jax.nn.log_softmax(next_logits), batch,
                                          alpha, hparams)
            q_all = networks.q_values(critic_params, batch.observation)
            if num_objectives:  # (num_critics, batch, num_actions, k) -> (num_critics, batch, k)
                q = jnp.take_along_axis(q_all, batch.action[None, :, None, None], axis=2)[:, :, 0]
            else:
                q = jnp.take_along_axis(q_all, batch.action[None, :, None], axis=-1)[..., 0]
        else:
            next_action, next_log_prob = networks.sample(actor_params, batch.next_observation,
                                                         noise)
            next_q = networks.q_values(target_params, batch.next_observation, next_action)
            target = soft_td_target(batch.reward, batch.terminated, next_q, next_log_prob,
                                    alpha, hparams.gamma, hparams.preference)
            q = networks.q_values(critic_params, batch.observation, batch.action)
        target = jax.lax.stop_gradient(target)
        # Summed over the ensemble (and over the objectives of a vector reward).
        loss = 0.5 * jnp.square(q - target).mean(axis=1).sum()
        return loss, q.mean()

    def actor_loss(actor_params, critic_params, alpha, observation, noise, preference):
        if discrete:
            log_probs = jax.nn.log_softmax(networks.actor.apply(actor_params, observation))
            q = scalarize(networks.q_values(critic_params, observation), preference).min(axis=0)
            probs = jnp.exp(log_probs)
            loss = (probs * (alpha * log_probs - q)).sum(-1).mean()
            entropy = -(probs * log_probs).sum(-1).mean()
        else:
            action, log_prob = networks.sample(actor_params, observation, noise)
            q = scalarize(networks.q_values(critic_params, observation, action),
                          preference).min(axis=0)
            loss = (alpha * log_prob - q).mean()
            entropy = -log_prob.mean()
        return loss, entropy

    def gradient_step(state: SACState, key: jax.Array):
        hparams = state.hparams
        sample_key, target_noise_key, actor_noise_key = jax.random.split(key, 3)
        batch: Transition = buffer.sample(state.experience.buffer, sample_key, config.batch_size)
        alpha = jnp.exp(state.log_alpha)

        def learning_noise(key):  # discrete SAC takes expectations and needs none
            return None if discrete else networks.noise(key, (config.batch_size,))

        (critic_loss_value, q_mean), critic_grads = jax.value_and_grad(critic_loss, has_aux=True)(
            state.critic_params, state.actor_params, state.target_critic_params, alpha, batch,
            learning_noise(target_noise_key), hparams,
        )
        critic_params, critic_opt_state = optim.apply_gradient(
            optimizers["critic"](hparams), state.critic_params, state.critic_opt_state,
            critic_grads,
        )
        (actor_loss_value, entropy), actor_grads = jax.value_and_grad(actor_loss, has_aux=True)(
            state.actor_params, critic_params, alpha, batch.observation,
            learning_noise(actor_noise_key), hparams.preference,
        )
        actor_params, actor_opt_state = optim.apply_gradient(
            optimizers["actor"](hparams), state.actor_params, state.actor_opt_state, actor_grads
        )
        log_alpha, alpha_opt_state = state.log_alpha, state.alpha_opt_state
        if config.autotune_alpha:
            # Gradient of the usual loss -log_alpha * (target_entropy - entropy): alpha falls
            # while the policy's entropy is above the target and rises while it is below.
            alpha_grad = -(target_entropy(hparams) - jax.lax.stop_gradient(entropy))
            log_alpha, alpha_opt_state = optim.apply_gradient(
                optimizers["alpha"](hparams), log_alpha, alpha_opt_state, alpha_grad
            )
        target_critic_params = optax.incremental_update(
            critic_params, state.target_critic_params, hparams.tau
        )
        state = state.replace(
            actor_params=actor_params, critic_params=critic_params,
            target_critic_params=target_critic_params, log_alpha=log_alpha,
            actor_opt_state=actor_opt_state, critic_opt_state=critic_opt_state,
            alpha_opt_state=alpha_opt_state,
        )
        return state, {"critic_loss": critic_loss_value, "actor_loss": actor_loss_value,
                       "q_value": q_mean, "entropy": entropy, "alpha": alpha}

    def update(state: SACState) -> tuple[SACState, dict[str, jax.Array]]:
        key, collect_key, learn_key = jax.random.split(state.key, 3)

        def collect(experience, step_key):
            noise_key, env_key = jax.random.split(step_key)
            action = networks.act(state.actor_params, experience.observation,
                                  networks.noise(noise_key, (config.num_envs,)))
            return collector.step(experience, env_key, action)

        experience, episode_info = jax.lax.scan(
            collect, state.experience, jax.random.split(collect_key, config.train_frequency)
        )
        state = state.replace(experience=experience)
        state, losses = jax.lax.scan(
            gradient_step, state, jax.random.split(learn_key, config.gradient_steps)
        )
        metrics = {
            "env_steps": prefill_steps * config.num_envs
            + (state.update_step + 1) * steps_per_update,
            **finished_episode_metrics(episode_info),
            **jax.tree.map(jnp.mean, losses),
        }
        return state.replace(key=key, update_step=state.update_step + 1), metrics

    # --- the trained policy, for evaluation
    def act(actor_params, key, observation, carry, episode_start, deterministic):
        observation = flatten_observation(jnp.asarray(observation, jnp.float32), observation_ndim)
        if deterministic:
            return networks.greedy(actor_params, observation), carry
        noise = networks.noise(key, observation.shape[:-1])
        return networks.act(actor_params, observation, noise), carry

    def make_policy(state: SACState) -> Policy:
        return Policy(act, state.actor_params, None)

    return Train(
        init=init,
        update=update,
        num_updates=num_updates,
        env_steps_per_update=steps_per_update,
        default_hparams=default_hparams,
        make_policy=make_policy,
        config=config,
        check_hparams=hyperparams_validator(config, lambda c: validate(c, env, env_params)),
        env_steps_before_updates=prefill_steps * config.num_envs,
    )


# --- the algorithm's description: presets and the command line come from it -------------------
ALGORITHM = AlgorithmSpec(
    name="sac", display_name="SAC", config=Config, hyperparams=Hyperparams,
    make_train=make_train, presets=PRESETS, preset_by_env=_PRESET_BY_ENV,
    default_env="gymnax/Pendulum-v1",
    description=__doc__.strip().splitlines()[0],
    measured_presets={"pendulum": "tests/test_offpolicy.py", "cartpole": "tests/test_offpolicy.py"},
)
preset_config = ALGORITHM.preset_config  # (env_id_or_preset, **overrides) -> Config
main = ALGORITHM.main  # `python algos/sac.py --env gymnax/Pendulum-v1 --seeds 4`


if __name__ == "__main__":
    sys.exit(main())
