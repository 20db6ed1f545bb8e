"""Deep Q-Network (Mnih et al., 2015) with its standard extensions, as one jitted program.

Read top to bottom: ``Config`` and presets, ``make_train`` (epsilon-greedy collection, the
n-step double-Q target, the update step), ``main``. ``make_train(config, env, env_params)``
returns a pure ``train(key, hparams=None)``::

    env, env_params = jaxrl_suite.make("gymnax/CartPole-v1")
    train = make_train(preset_config("gymnax/CartPole-v1"), env, env_params)
    result = jax.jit(jax.vmap(train))(jax.random.split(jax.random.key(0), 4))   # 4 seeds

Options: double Q-learning (the online network picks the next action, the target network values
it; van Hasselt et al., 2016), a dueling head, n-step returns, proportional prioritised replay
(Schaul et al., 2016) with importance weights annealed to 1, hard (``tau = 1``) or Polyak target
updates every ``target_update_interval`` updates, and a linear epsilon schedule. Discrete
action spaces only.

One update is ``train_frequency`` steps of all envs into the replay buffer, then
``gradient_steps`` gradient steps; ``learning_starts`` env steps of uniformly random actions
fill the buffer inside ``init``. A truncated step bootstraps from the stored
``next_observation`` (``info["final_observation"]``); a terminated one does not; an n-step
return stops at the first step that ended the episode either way.
"""

from __future__ import annotations

import dataclasses
import sys
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import struct

from jaxrl_suite.env import spaces
from jaxrl_suite.env.environment import Environment
from jaxrl_suite.env.wrappers import auto_reset_env, finished_episode_metrics, reward_shape
from jaxrl_suite.learn import optim
from jaxrl_suite.learn.advantages import n_step_returns
from jaxrl_suite.learn.buffers import PrioritizedReplayBuffer, ReplayBuffer
from jaxrl_suite.learn.experience import (
    Experience,
    ExperienceCollector,
    validate_replay_schedule,
)
from jaxrl_suite.learn.networks import QNetwork, activation_by_name, array_encoder
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

__all__ = ["Config", "Hyperparams", "DQNState", "PRESETS", "linear_schedule", "make_train",
           "periodic_target_update", "preset_config", "q_learning_target", "main"]


# --- configuration ------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Config:
    """DQN settings. Defaults follow CleanRL's classic-control DQN.

    Shapes and counts are static; the floats marked *traceable* are also fields of
    ``Hyperparams`` and can be swept under ``vmap``.
    """

    total_steps: int = 500_000
    """Env steps in the whole run over all parallel envs, learning_starts included."""
    num_envs: int = 1
    """Parallel envs (vmapped)."""
    buffer_size: int = 10_000
    """Replay capacity in transitions."""
    learning_starts: int = 10_000
    """Env steps of uniformly random actions that fill the buffer before learning."""
    batch_size: int = 128
    """Transitions per gradient step."""
    train_frequency: int = 10
    """Vectorised env steps per update (each is num_envs transitions)."""
    gradient_steps: int = 1
    """Gradient steps per update."""
    learning_rate: float = 2.5e-4
    """Adam step size (traceable)."""
    anneal_lr: bool = False
    """Decay the learning rate linearly to 0 over the run (steadies the final policy)."""
    gamma: float = 0.99
    """Discount (traceable)."""
    tau: float = 1.0
    """Target update rate: 1 copies the online network (hard update), less is Polyak
    averaging (traceable)."""
    target_update_interval: int = 50
    """Updates between target updates."""
    epsilon_start: float = 1.0
    """Exploration rate at the start of learning (traceable)."""
    epsilon_end: float = 0.05
    """Exploration rate after the decay (traceable)."""
    exploration_fraction: float = 0.5
    """Fraction of total_steps over which epsilon decays linearly (traceable)."""
    double_q: bool = True
    """Double Q-learning target."""
    dueling: bool = False
    """Dueling value/advantage head."""
    n_step: int = 1
    """Steps of the return before bootstrapping."""
    huber_loss: bool = False
    """Huber (smooth L1) TD loss instead of the squared error. (On CartPole the squared error
    learned far better: greedy return 431 against 170, 4 seeds at 1e5 steps, dueling head.)"""
    max_grad_norm: float = 10.0
    """Global gradient-norm clip; 0 turns it off."""
    adam_eps_root: float = 0.0
    """Added to Adam's second moment inside the square root. Set it positive (1e-8) when
    differentiating through training (hypergradients, meta-gradients): with 0 the outer
    gradient is NaN where a second moment is zero."""
    prioritized: bool = False
    """Proportional prioritised replay."""
    priority_alpha: float = 0.6
    """Priority exponent: priority = (|TD error| + priority_epsilon)^alpha (traceable)."""
    priority_beta_start: float = 0.4
    """Importance-weight exponent at the start, annealed linearly to 1 (traceable)."""
    priority_epsilon: float = 1e-6
    """Added to |TD error| so no transition gets zero priority."""
    hidden_sizes: tuple[int, ...] = (120, 84)
    """Hidden layer widths of the Q-network."""
    activation: str = "relu"
    """relu, tanh, gelu, silu or elu."""
    encoder: str = "none"
    """none: the Q-network is an MLP on the observation (flattened if it has several axes);
    minatar: the MinAtar paper's 3x3 convolution over an (H, W, C) image before the MLP."""
    conv_features: int = 16
    """Convolution channels of the minatar encoder."""


@struct.dataclass
class Hyperparams:
    """The continuous hyperparameters, traceable: pass a batch of them to ``vmap(train)``."""

    learning_rate: jax.Array
    gamma: jax.Array
    tau: jax.Array
    epsilon_start: jax.Array
    epsilon_end: jax.Array
    exploration_fraction: jax.Array
    priority_alpha: jax.Array
    priority_beta_start: jax.Array
    meta: Any = None
    """Meta-parameters, any pytree of arrays, traced: handed to the optimiser factory (e.g. a
    learned optimiser's params); None by default."""

    @classmethod
    def from_config(cls, config: Config) -> Hyperparams:
        return hyperparams_from_config(cls, config)


# Tuned settings per env over the defaults. CartPole is tested to reach 450 within 1e5 env
# steps (tests/test_offpolicy.py): with 3-step returns and the dueling head 23 of 24 seeds
# (three key sets) evaluate at 500; one-step targets left more seeds collapsing late. Acrobot
# is a published-style setting, unverified here. MinAtar's network is the MinAtar paper's (one
# 3x3 convolution of 16 channels, a dense layer of 128); on Breakout with total_steps=5e5
# (benchmarks/minatar_breakout.py, 1 seed) the final training return was 14.52, greedy 19.25.
PRESETS: dict[str, dict[str, Any]] = {
    "cartpole": dict(
        total_steps=100_000, num_envs=10, buffer_size=50_000, learning_starts=5_000,
        batch_size=100, train_frequency=1, gradient_steps=5, learning_rate=1e-3, gamma=0.99,
        tau=0.02, target_update_interval=1, epsilon_start=1.0, epsilon_end=0.05,
        exploration_fraction=0.5, double_q=True, dueling=True, n_step=3, max_grad_norm=10.0,
        hidden_sizes=(64, 64), activation="silu",
    ),
    "acrobot": dict(
        total_steps=100_000, num_envs=10, buffer_size=50_000, learning_starts=5_000,
        batch_size=100, train_frequency=1, gradient_steps=5, learning_rate=1e-3, gamma=0.99,
        tau=0.02, target_update_interval=1, exploration_fraction=0.3,
        hidden_sizes=(64, 64), activation="silu",
    ),
    "minatar": dict(
        total_steps=3_000_000, num_envs=16, buffer_size=100_000, learning_starts=10_000,
        batch_size=64, train_frequency=1, gradient_steps=2, learning_rate=2.5e-4, gamma=0.99,
        tau=1.0, target_update_interval=63, epsilon_end=0.01, exploration_fraction=0.1,
        encoder="minatar", conv_features=16, hidden_sizes=(128,),
    ),
}
_PRESET_BY_ENV = {
    "gymnax/CartPole-v1": "cartpole",
    "gymnax/Acrobot-v1": "acrobot",
    **{f"gymnax/{name}-MinAtar": "minatar"
       for name in ("Asterix", "Breakout", "Freeway", "SpaceInvaders")},
}


def validate(config: Config, env: Environment, env_params: Any) -> None:
    """Raise a ``ValueError`` naming the bad setting, before anything compiles."""
    if not isinstance(config, Config):
        raise TypeError(f"config must be a dqn.Config; got {type(config).__name__}.")
    require_finite_numbers(config)
    require_positive_ints(config, "total_steps", "num_envs", "buffer_size", "batch_size",
                          "train_frequency", "gradient_steps", "target_update_interval",
                          "n_step")
    validate_replay_schedule(config)
    require_in_unit_interval(config, "gamma", "tau", "epsilon_start", "epsilon_end",
                             "exploration_fraction", "priority_alpha", "priority_beta_start")
    if config.tau == 0:
        raise ValueError("tau must be positive (1 for hard target updates); got 0.")
    if config.exploration_fraction == 0:
        raise ValueError("exploration_fraction must be positive; got 0.")
    require_positive(config, "learning_rate", "priority_epsilon")
    if not config.max_grad_norm >= 0:
        raise ValueError(f"max_grad_norm must be >= 0 (0 = no clipping); got "
                         f"{config.max_grad_norm!r}.")
    require_non_negative(config, "adam_eps_root")
    require_hidden_sizes(config.hidden_sizes)
    activation_by_name(config.activation)
    action_space = env.action_space(env_params)
    if not isinstance(action_space, spaces.Discrete):
        raise ValueError(f"DQN handles Discrete action spaces; {env.name} has {action_space}. "
                         f"Use SAC or TD3 for continuous actions.")
    require_box_observation("DQN", env, env_params)
    require_positive_ints(config, "conv_features")
    array_encoder(config.encoder, env.observation_space(env_params).shape, config.conv_features)
    if reward_shape(env, env_params):
        # A Q-network per objective has no greedy action without a preference: SAC and PPO
        # take vector rewards with Hyperparams.preference.
        raise ValueError(f"DQN handles scalar rewards; {env.name} has a reward vector of shape "
                         f"{reward_shape(env, env_params)}. Use SAC or PPO (which take a "
                         f"preference over objectives), or scalarise the env's reward first.")


# --- training state -----------------------------------------------------------------------------
@struct.dataclass
class DQNState:
    """Everything a run needs to continue: what a checkpoint saves."""

    params: Any
    target_params: Any
    opt_state: Any
    experience: Experience  # env state, observation, replay buffer (with priorities if any)
    key: jax.Array
    update_step: jax.Array  # int32
    hparams: Hyperparams


def q_learning_target(
    returns: jax.Array,
    bootstrap_discount: jax.Array,
    next_online_q: jax.Array,
    next_target_q: jax.Array,
    double_q: bool,
) -> jax.Array:
    """``returns + bootstrap_discount * Q_target(s_n, a*)`` with ``a*`` the argmax of the
    online network (double Q) or of the target network (plain DQN).

    ``next_*_q`` ``(batch, num_actions)`` at the bootstrap observation; the rest ``(batch,)``.
    ``bootstrap_discount`` is 0 after a terminated step (see ``n_step_returns``).
    """
    chooser = next_online_q if double_q else next_target_q
    best = jnp.argmax(chooser, axis=-1)
    next_value = jnp.take_along_axis(next_target_q, best[:, None], axis=-1)[:, 0]
    return returns + bootstrap_discount * next_value


def linear_schedule(start: jax.Array, end: jax.Array, fraction: jax.Array,
                    env_steps: jax.Array, total_steps: int) -> jax.Array:
    """``start`` moved linearly to ``end`` over the first ``fraction * total_steps`` env steps,
    then held at ``end`` (scalars, traceable): DQN's epsilon (falling) and Envelope
    Q-learning's homotopy weight (rising)."""
    progress = env_steps / (fraction * total_steps)
    value = start + (end - start) * progress
    # Clamp on the side of `end` it approaches (a select: both sides are cheap scalars).
    return jnp.where(end < start, jnp.maximum(value, end), jnp.minimum(value, end))


def periodic_target_update(params: Any, target_params: Any, tau: jax.Array,
                           update_step: jax.Array, interval: int) -> Any:
    """The target network after update ``update_step`` (counted from 1): moved towards
    ``params`` by ``tau`` (1: copied) when ``update_step`` is a multiple of ``interval``, else
    unchanged. A select, not a branch, so it costs nothing under ``vmap``."""
    due = update_step % interval == 0
    moved = optax.incremental_update(params, target_params, tau)
    return jax.tree.map(lambda new, old: jnp.where(due, new, old), moved, target_params)


# --- make_train ---------------------------------------------------------------------------------
def default_optimizer(config: Config, num_updates: int) -> optim.OptimizerFactory:
    """DQN's optimiser as a factory of the traced ``Hyperparams``: global-norm clipping at
    ``max_grad_norm`` (none at 0), Adam, and the rate ``learning_rate``, decayed with
    ``anneal_lr`` to ``learning_rate * (1 - update / num_updates)``, constant over an update's
    ``gradient_steps`` optimiser steps."""

    def factory(hparams: Hyperparams):
        rate = hparams.learning_rate
        if config.anneal_lr:
            rate = optim.linear_decay(rate, config.gradient_steps, num_updates)
        clip = config.max_grad_norm if config.max_grad_norm > 0 else None
        return optim.adam(rate, max_grad_norm=clip, eps_root=config.adam_eps_root)

    return factory


def make_train(config: Config, env: Environment, env_params: Any, optimizer: Any = None) -> Train:
    """Build DQN's pure training run for ``env`` (checked first; see ``Config``).

    ``optimizer`` follows ``jaxrl_suite.learn.optim``: None for the default chain (clipping at
    ``max_grad_norm``, Adam, ``learning_rate`` with ``anneal_lr``); an optax optimiser, used as
    it is (its own rate and clipping: those three settings then do not apply); or a factory
    ``hparams -> optimiser``, built inside the compiled run from the traced ``Hyperparams``.
    Each update makes ``gradient_steps`` optimiser steps.
    """
    validate(config, env, env_params)
    env = auto_reset_env(env)
    num_actions = env.action_space(env_params).n
    encoder = array_encoder(config.encoder, env.observation_space(env_params).shape,
                            config.conv_features)
    network = QNetwork(config.hidden_sizes, num_actions, config.activation, config.dueling,
                       encoder)
    buffer_type = PrioritizedReplayBuffer if config.prioritized else ReplayBuffer
    buffer = buffer_type(config.buffer_size, config.num_envs)
    collector = ExperienceCollector(env, env_params, buffer)
    prefill_steps = -(-config.learning_starts // config.num_envs)
    steps_per_update = config.num_envs * config.train_frequency
    num_updates = (config.total_steps - prefill_steps * config.num_envs) // steps_per_update
    default_hparams = Hyperparams.from_config(config)
    make_optimizer = optim.resolve_optimizer(
        optimizer, default_optimizer(config, num_updates), default_hparams, "DQN")

    def init(key: jax.Array, hparams: Hyperparams) -> DQNState:
        network_key, env_key, prefill_key, key = jax.random.split(key, 4)
        experience = collector.init(env_key)
        experience = collector.prefill(experience, prefill_key, prefill_steps)
        params = network.init(network_key, experience.observation[0])
        return DQNState(
            params=params,
            target_params=params,
            opt_state=make_optimizer(hparams).init(params),
            experience=experience,
            key=key,
            update_step=jnp.int32(0),
            hparams=hparams,
        )

    def epsilon(state: DQNState) -> jax.Array:
        """Linear decay over the first exploration_fraction of the run's env steps (the random
        prefill counts, as it does in CleanRL and rejax)."""
        hparams = state.hparams
        env_steps = prefill_steps * config.num_envs + state.update_step * steps_per_update
        return linear_schedule(hparams.epsilon_start, hparams.epsilon_end,
                               hparams.exploration_fraction, env_steps, config.total_steps)

    def sample_batch(state: DQNState, key: jax.Array):
        """A minibatch with n-step returns: ``(observation, action, returns, bootstrap_discount,
        bootstrap_observation, rows, importance_weights)``."""
        buffer_state = state.experience.buffer
        if config.prioritized:
            beta = state.hparams.priority_beta_start + (
                1.0 - state.hparams.priority_beta_start) * state.update_step / num_updates
            drawn = buffer.sample_prioritized(buffer_state, key, config.batch_size, beta)
            rows, weights = drawn.indices, drawn.weights
        else:
            rows = buffer.sample_indices(buffer_state, key, (config.batch_size,))
            weights = jnp.ones(config.batch_size, jnp.float32)
        sequence_rows, available = buffer.sequence_indices(buffer_state, rows, config.n_step)
        sequence = buffer.gather(buffer_state, sequence_rows)  # leaves (batch, n_step, ...)
        returns, bootstrap_discount, last = n_step_returns(
            sequence.reward, sequence.terminated, sequence.truncated, available,
            state.hparams.gamma,
        )
        # The observation after the return's last step: index (batch, 1, 1, ...) broadcast over
        # the observation's axes, however many it has (one, or an image's three).
        next_observation = sequence.next_observation  # (batch, n_step, *obs_shape)
        index = last.reshape(-1, *([1] * (next_observation.ndim - 1)))
        bootstrap_observation = jnp.take_along_axis(next_observation, index, axis=1)[:, 0]
        return (sequence.observation[:, 0], sequence.action[:, 0], returns, bootstrap_discount,
                bootstrap_observation, rows, weights)

    def loss_fn(params, target_params, batch):
        observation, action, returns, discount, next_observation, _, weights = batch
        next_target_q = network.apply(target_params, next_observation)
        next_online_q = network.apply(params, next_observation) if config.double_q else None
        target = jax.lax.stop_gradient(
            q_learning_target(returns, discount, next_online_q, next_target_q, config.double_q)
        )
        q = jnp.take_along_axis(network.apply(params, observation), action[:, None], -1)[:, 0]
        error = q - target
        per_sample = optax.huber_loss(error) if config.huber_loss else 0.5 * jnp.square(error)
        return jnp.mean(weights * per_sample), (error, q.mean())

    def gradient_step(state: DQNState, key: jax.Array):
        batch = sample_batch(state, key)
        (loss, (td_error, q_mean)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
            state.params, state.target_params, batch
        )
        grad_norm = optax.tree.norm(grads)  # before clipping (the clip is in the chain)
        params, opt_state = optim.apply_gradient(
            make_optimizer(state.hparams), state.params, state.opt_state, grads)
        experience = state.experience
        if config.prioritized:
            priorities = (jnp.abs(td_error) + config.priority_epsilon) ** (
                state.hparams.priority_alpha)
            experience = experience.replace(buffer=buffer.update_priorities(
                experience.buffer, batch[5], priorities))
        state = state.replace(params=params, opt_state=opt_state, experience=experience)
        return state, {"td_loss": loss, "q_value": q_mean, "grad_norm": grad_norm}

    def update(state: DQNState) -> tuple[DQNState, dict[str, jax.Array]]:
        key, collect_key, learn_key = jax.random.split(state.key, 3)
        exploration = epsilon(state)

        def collect(experience, step_key):
            explore_key, random_key, env_key = jax.random.split(step_key, 3)
            greedy = jnp.argmax(network.apply(state.params, experience.observation), axis=-1)
            explore = jax.random.uniform(explore_key, (config.num_envs,)) < exploration
            action = jnp.where(explore, collector.random_actions(random_key), greedy)
            return collector.step(experience, env_key, action)

        experience, episode_info = jax.lax.scan(
            collect, state.experience, jax.random.split(collect_key, config.train_frequency)
        )
        state = state.replace(experience=experience)
        state, losses = jax.lax.scan(
            gradient_step, state, jax.random.split(learn_key, config.gradient_steps)
        )
        update_step = state.update_step + 1
        target_params = periodic_target_update(state.params, state.target_params,
                                               state.hparams.tau, update_step,
                                               config.target_update_interval)
        metrics = {
            "env_steps": prefill_steps * config.num_envs + update_step * steps_per_update,
            **finished_episode_metrics(episode_info),
            **jax.tree.map(jnp.mean, losses),
            "epsilon": exploration,
        }
        return state.replace(target_params=target_params, key=key,
                             update_step=update_step), metrics

    # --- the trained policy, for evaluation (greedy, or epsilon-greedy at epsilon_end)
    def act(policy_params, key, observation, carry, episode_start, deterministic):
        params, exploration = policy_params
        greedy = jnp.argmax(network.apply(params, jnp.asarray(observation, jnp.float32)), -1)
        if deterministic:
            return greedy, carry
        explore_key, random_key = jax.random.split(key)
        random_action = jax.random.randint(random_key, greedy.shape, 0, num_actions)
        explore = jax.random.uniform(explore_key, greedy.shape) < exploration
        return jnp.where(explore, random_action, greedy), carry

    def make_policy(state: DQNState) -> Policy:
        return Policy(act, (state.params, state.hparams.epsilon_end), None)

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
    name="dqn", display_name="DQN", config=Config, hyperparams=Hyperparams,
    make_train=make_train, presets=PRESETS, preset_by_env=_PRESET_BY_ENV,
    description=__doc__.strip().splitlines()[0],
    measured_presets={
        "cartpole": "tests/test_offpolicy.py",
        "minatar": "benchmarks/minatar_breakout.py, on Breakout",
    },
)
preset_config = ALGORITHM.preset_config  # (env_id_or_preset, **overrides) -> Config
main = ALGORITHM.main  # `python algos/dqn.py --env gymnax/CartPole-v1 --seeds 4`


if __name__ == "__main__":
    sys.exit(main())
