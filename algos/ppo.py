"""Proximal Policy Optimisation (Schulman et al., 2017), the whole run as one jitted program.

Read top to bottom: ``Config`` and presets, the networks, ``make_train`` (rollout, GAE, the
update step), ``main``. ``make_train(config, env, env_params)`` returns a pure
``train(key, hparams=None) -> TrainResult``::

    env, env_params = jaxrl_suite.make("gymnax/CartPole-v1")
    train = make_train(preset_config("gymnax/CartPole-v1"), env, env_params)
    result = jax.jit(jax.vmap(train))(jax.random.split(jax.random.key(0), 8))   # 8 seeds
    sweep = jax.jit(jax.vmap(train))(keys, train.default_hparams.replace(
        learning_rate=jnp.array([1e-4, 3e-4])))                                # a 2-point sweep

Discrete action spaces get a categorical policy, ``Box`` spaces a diagonal Gaussian (actions
clipped to the bounds by the env wrapper; log-probabilities are of the unclipped sample). With
``recurrent=True`` the policy and value share a GRU whose hidden state is zeroed at every
episode start, both while acting and when the update replays the rollout.

Truncation is not termination: a step cut off by the time limit bootstraps from
``V(info["final_observation"])``; a terminated step does not bootstrap. The policy objective and
the optimiser are arguments of ``make_train`` so that meta-learning can swap in a learned
objective (LPO's drift) or a learned optimiser without editing this file.
"""

from __future__ import annotations

import dataclasses
import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import distrax
import jax
import jax.numpy as jnp
import optax
from flax import struct

from jaxrl_suite.env import spaces
from jaxrl_suite.env.environment import Environment
from jaxrl_suite.env.wrappers import (
    ClipAction,
    NormalizeObservation,
    NormalizeObservationState,
    NormalizeReward,
    auto_reset_env,
    find_state,
    finished_episode_metrics,
)
from jaxrl_suite.learn import minibatches, optim, preferences
from jaxrl_suite.learn.action_heads import ActionHead
from jaxrl_suite.learn.advantages import (
    explained_variance,
    generalized_advantages,
    policy_advantages,
)
from jaxrl_suite.learn.networks import (
    MLP,
    GridEncoder,
    ResettableGRU,
    activation_by_name,
    array_encoder,
    unit_dormancy,
)
from jaxrl_suite.learn.objectives import (
    LEARNED_OBJECTIVES,
    LossAssembly,
    ObjectiveInputs,
    PolicyObjective,
    Scalarization,
    actor_critic_loss,
    clipped_surrogate,
    init_drift_params,
    linear_scalarization,
    load_drift_params,
    policy_objective_by_name,
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
from jaxrl_suite.run.training import Train, TrainResult

__all__ = [
    "Config",
    "Hyperparams",
    "PPOState",
    "PRESETS",
    "clipped_surrogate",
    "default_optimizer",
    "make_learner",
    "PPOLearner",
    "make_train",
    "preset_config",
    "main",
    "ALGORITHM",
]

ENCODERS = ("none", "grid", "minatar")
ENV_AXIS = "envs"  # vmap axis of the parallel envs: observation/reward normalisers pool over it


# --- configuration ------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Config:
    """PPO settings. The defaults are PureJaxRL's CartPole configuration.

    Shapes (``num_envs``, ``num_steps``, network sizes) are static: changing them recompiles.
    The floats marked *traceable* are also fields of ``Hyperparams``, so they can be swept under
    ``vmap`` without recompiling.
    """

    total_steps: int = 500_000
    """Env steps in the whole run, over all parallel envs (rounded down to whole updates)."""
    num_envs: int = 4
    """Parallel envs (vmapped)."""
    num_steps: int = 128
    """Steps per env in each rollout; one update uses num_envs * num_steps transitions."""
    update_epochs: int = 4
    """Passes over each rollout."""
    num_minibatches: int = 4
    """Minibatches per epoch (over envs, not time, when recurrent)."""
    learning_rate: float = 2.5e-4
    """Adam step size at the start of the run (traceable)."""
    anneal_lr: bool = True
    """Decay the learning rate linearly to 0 over the run."""
    gamma: float = 0.99
    """Discount (traceable)."""
    gae_lambda: float = 0.95
    """GAE lambda (traceable)."""
    clip_epsilon: float = 0.2
    """PPO ratio clip, also the value clip when clip_value (traceable)."""
    clip_value: bool = True
    """Clip the value update around the rollout's values."""
    entropy_coef: float = 0.01
    """Entropy bonus weight (traceable)."""
    value_coef: float = 0.5
    """Value loss weight (traceable)."""
    max_grad_norm: float = 0.5
    """Global gradient-norm clip (traceable)."""
    adam_epsilon: float = 1e-5
    """Adam's epsilon (used by the default optimiser)."""
    adam_eps_root: float = 0.0
    """Added to Adam's second moment inside the square root (default optimiser). Set it positive
    (1e-8) when differentiating through training (meta-gradients, hypergradients): with 0 the
    outer gradient is NaN wherever a parameter's gradient is exactly zero (ReLU networks)."""
    objective: str = "clipped_surrogate"
    """The policy objective: clipped_surrogate (PPO), policy_gradient (A2C), dpo (DPO's
    closed-form drift), lpo or ta_lpo (a learned drift network, read from
    ``hparams.meta["objective"]``). A callable passed as make_train's policy_objective replaces
    it."""
    objective_params: str = ""
    """For lpo / ta_lpo: the drift network to train with, a meta-run folder (``jaxrl meta lpo``;
    its ``objective.npz``) or an ``.npz`` file; empty: one initialised at PPO (the objective
    then equals the clipped surrogate)."""
    optimizer_params: str = ""
    """OPEN's learned optimiser to train with instead of Adam: a meta-run folder (``jaxrl meta
    open``; its ``optimizer.npz``, the network's sizes from its ``config.json``) or an ``.npz``
    file (OPEN's default sizes); empty: Adam (``learning_rate``, ``max_grad_norm``)."""
    normalize_advantages: bool = True
    """Standardise advantages per minibatch."""
    normalize_observations: bool = False
    """Running mean/std observation normalisation, pooled over the parallel envs."""
    normalize_rewards: bool = False
    """Scale rewards by the running std of the discounted return."""
    hidden_sizes: tuple[int, ...] = (64, 64)
    """Hidden layer widths of the policy and value MLPs (separate networks)."""
    activation: str = "tanh"
    """tanh, relu, gelu, silu or elu."""
    initial_log_std: float = 0.0
    """Initial log standard deviation of the Gaussian policy (continuous actions)."""
    recurrent: bool = False
    """Put a GRU between the observation and the policy/value MLPs."""
    gru_hidden_size: int = 128
    """Width of the GRU and of its input layer (recurrent only)."""
    cached_reset: bool = False
    """Auto-reset to a per-env cached start state (cheaper for physics envs; less reset noise)."""
    encoder: str = "none"
    """none: the (Box) observation is the networks' input (flattened if it has several axes);
    grid: a GridEncoder (convolution over "image" plus a direction embedding) for dict grid
    observations such as the maze's; minatar: the MinAtar paper's 3x3 convolution over an
    (H, W, C) Box image, shared by the policy and value MLPs."""
    conv_features: int = 16
    """Convolution channels of the grid or minatar encoder."""
    stop_rollout_gradients: bool = True
    """Stop gradients at the rollout data and at its values, advantages and targets, so an
    outer gradient through training (meta-learning) never flows through the old
    log-probabilities or a differentiable env's dynamics. Off: the full derivative."""
    remat_learn: bool = False
    """Rematerialise each update's epochs (``jax.checkpoint``) when differentiated: a
    meta-gradient through K updates keeps only their inputs in memory, recomputing the rest."""
    dtype: str = "float32"
    """Floating dtype of the network params, observations, rewards and GRU state. float64 needs
    ``jax.experimental.enable_x64()`` (checking gradients against finite differences)."""


@struct.dataclass
class Hyperparams:
    """The continuous hyperparameters, traceable: pass a batch of them to ``vmap(train)``.

    ``preference`` holds the preference weights ``(num_objectives,)`` of a multi-objective env
    (default equal weights; ``None`` for a scalar reward): the vector advantages are
    scalarised with them, and a ``vmap`` over them trains a set of preferences in one program.
    ``meta`` holds meta-parameters, any pytree of arrays (``None`` by default): the policy
    objective, the loss assembly and the optimiser factory receive it inside ``hparams``, so a
    learned objective's or optimiser's parameters are traced and a population is a ``vmap``
    over them (by convention a dict: ``{"objective": ..., "optimizer": ...}``).
    With ``normalize_rewards`` the reward normaliser's discount stays ``Config.gamma`` (it is
    part of the env stack, built once), whatever ``gamma`` is swept here.
    """

    learning_rate: jax.Array
    gamma: jax.Array
    gae_lambda: jax.Array
    clip_epsilon: jax.Array
    entropy_coef: jax.Array
    value_coef: jax.Array
    max_grad_norm: jax.Array
    preference: Any = None
    meta: Any = None

    @classmethod
    def from_config(cls, config: Config) -> Hyperparams:
        return hyperparams_from_config(cls, config)  # meta stays None


# Tuned settings per env, applied over the defaults. `preset_config(env_id)` picks the one for an
# env; the CLI uses it unless --preset none. The CartPole and Pendulum presets are tested to learn
# within the budgets in tests/test_ppo.py; the Brax ones follow Brax's published PPO
# settings scaled to these networks.
_BRAX_LOCOMOTION = dict(
    total_steps=50_000_000, num_envs=2048, num_steps=10, update_epochs=4, num_minibatches=32,
    learning_rate=3e-4, anneal_lr=False, gamma=0.99, gae_lambda=0.95, clip_epsilon=0.2,
    entropy_coef=0.0, value_coef=0.5, max_grad_norm=0.5, normalize_observations=True,
    normalize_rewards=True, hidden_sizes=(256, 256), activation="tanh", cached_reset=True,
)
# MinAtar: the MinAtar paper's network (one 3x3 convolution of 16 channels, shared, then a dense
# layer of 128 in the policy and in the value MLP). On Breakout at 1e6 steps (total_steps=1e6,
# benchmarks/minatar_breakout.py, 1 seed): final training return 6.96, greedy 7.00; an MLP on
# the flattened image reached 6.45 (issue 16), PureJaxRL's PPO 6.44-6.93.
_MINATAR = dict(
    total_steps=10_000_000, num_envs=64, num_steps=128, update_epochs=4, num_minibatches=8,
    learning_rate=5e-4, anneal_lr=True, gamma=0.99, gae_lambda=0.95, clip_epsilon=0.2,
    entropy_coef=0.01, value_coef=0.5, max_grad_norm=0.5, encoder="minatar", conv_features=16,
    hidden_sizes=(128,), activation="relu",
)
PRESETS: dict[str, dict[str, Any]] = {
    "cartpole": dict(
        total_steps=100_000, num_envs=16, num_steps=64, update_epochs=8, num_minibatches=4,
        learning_rate=2.5e-3, anneal_lr=True, gamma=0.99, gae_lambda=0.95, clip_epsilon=0.2,
        entropy_coef=0.0, value_coef=1.0, clip_value=False, max_grad_norm=0.5,
        activation="tanh",
    ),
    "acrobot": dict(
        total_steps=200_000, num_envs=16, num_steps=64, update_epochs=8, num_minibatches=4,
        learning_rate=2.5e-3, anneal_lr=True, gamma=0.99, gae_lambda=0.95, clip_epsilon=0.2,
        entropy_coef=0.0, value_coef=0.5, max_grad_norm=0.5, normalize_observations=True,
    ),
    "pendulum": dict(
        total_steps=150_000, num_envs=16, num_steps=128, update_epochs=10, num_minibatches=8,
        learning_rate=1e-3, anneal_lr=True, gamma=0.95, gae_lambda=0.95, clip_epsilon=0.2,
        entropy_coef=0.0, value_coef=0.5, max_grad_norm=0.5, normalize_observations=True,
        normalize_rewards=True, activation="tanh", initial_log_std=-0.5,
    ),
    # A2C (Mnih et al., 2016) as PPO's special case: one pass of one minibatch over short
    # rollouts, the vanilla policy gradient, no value clip, no advantage standardisation; the
    # on-policy baseline of the meta-learning issues. Adam instead of A2C's RMSProp.
    "a2c": dict(
        total_steps=200_000, num_envs=16, num_steps=8, update_epochs=1, num_minibatches=1,
        learning_rate=1e-3, anneal_lr=True, gamma=0.99, gae_lambda=1.0, clip_epsilon=0.2,
        entropy_coef=0.01, value_coef=0.5, clip_value=False, max_grad_norm=0.5,
        normalize_advantages=False, objective="policy_gradient",
    ),
    "minatar": _MINATAR,
    # The same settings with PureJaxRL's MLP actor-critic (two layers of 64, ReLU) on the
    # flattened image: the inner agent of the LPO paper's MinAtar meta-training (Lu et al. 2022
    # trained PureJaxRL's PPO), and about 4x cheaper per step than the convolution on CPU.
    "minatar-mlp": {**_MINATAR, "encoder": "none", "hidden_sizes": (64, 64)},
    "brax-locomotion": _BRAX_LOCOMOTION,
    # JaxUED's maze student (CNN + GRU); not yet trained to a threshold here.
    "maze": dict(
        total_steps=5_000_000, num_envs=32, num_steps=256, update_epochs=5, num_minibatches=1,
        learning_rate=1e-4, anneal_lr=False, gamma=0.995, gae_lambda=0.98, clip_epsilon=0.2,
        entropy_coef=1e-3, value_coef=0.5, max_grad_norm=0.5, encoder="grid", recurrent=True,
        gru_hidden_size=256, hidden_sizes=(32,), activation="relu", conv_features=16,
    ),
}
_PRESET_BY_ENV = {
    "gymnax/CartPole-v1": "cartpole",
    "gymnax/Acrobot-v1": "acrobot",
    "gymnax/Pendulum-v1": "pendulum",
    **{f"gymnax/{name}-MinAtar": "minatar"
       for name in ("Asterix", "Breakout", "Freeway", "SpaceInvaders")},
    **{f"{backend}/{name}": "brax-locomotion"
       for backend in ("brax", "mjx")
       for name in ("ant", "halfcheetah", "hopper", "humanoid", "walker2d")},
    **{maze_id: "maze" for maze_id in ("maze", "maze-full", "maze-rooms", "maze-perfect")},
}


def validate(config: Config, env: Environment, env_params: Any) -> None:
    """Raise a ``ValueError`` naming the bad setting; runs in Python before anything compiles."""
    if not isinstance(config, Config):
        raise TypeError(f"config must be a ppo.Config; got {type(config).__name__}.")
    require_finite_numbers(config)
    require_positive_ints(config, "total_steps", "num_envs", "num_steps", "update_epochs",
                          "num_minibatches", "gru_hidden_size", "conv_features")
    batch = config.num_envs * config.num_steps
    if config.recurrent and config.num_envs % config.num_minibatches:
        raise ValueError(
            f"With recurrent=True minibatches split the envs, so num_envs ({config.num_envs}) must "
            f"be divisible by num_minibatches ({config.num_minibatches})."
        )
    if batch >= 2**31 or config.total_steps >= 2**31:
        raise ValueError(
            f"A rollout batch of num_envs * num_steps = {batch:,} or a total_steps of "
            f"{config.total_steps:,} is beyond the int32 indices and step counters JAX uses "
            f"(at most {2**31 - 1:,}); use fewer envs or steps, or split the run.")
    if batch % config.num_minibatches:
        raise ValueError(
            f"The rollout batch num_envs * num_steps = {config.num_envs} * {config.num_steps} = "
            f"{batch} is not divisible by num_minibatches ({config.num_minibatches})."
        )
    if config.total_steps < batch:
        raise ValueError(
            f"total_steps ({config.total_steps}) is less than one update's batch "
            f"(num_envs * num_steps = {batch}); nothing would be trained."
        )
    require_in_unit_interval(config, "gamma", "gae_lambda")
    require_positive(config, "learning_rate", "clip_epsilon", "max_grad_norm", "adam_epsilon")
    require_non_negative(config, "entropy_coef", "value_coef", "adam_eps_root")
    policy_objective_by_name(config.objective, "PPO")
    if config.objective_params:
        if config.objective not in LEARNED_OBJECTIVES:
            raise ValueError(
                f"PPO: objective_params ({config.objective_params!r}) is for a learned "
                f"objective, one of {tuple(LEARNED_OBJECTIVES)}; objective is "
                f"{config.objective!r}.")
        objective_params_file(config.objective_params)
    if config.optimizer_params:
        optimizer_params_file(config.optimizer_params)
    require_hidden_sizes(config.hidden_sizes)
    activation_by_name(config.activation)
    action_space = env.action_space(env_params)
    if not isinstance(action_space, (spaces.Discrete, spaces.Box)):
        raise ValueError(
            f"PPO handles Discrete and Box action spaces; {env.name} has {action_space}."
        )
    if config.encoder not in ENCODERS:
        raise ValueError(f"PPO: encoder must be one of {ENCODERS}; got {config.encoder!r}.")
    if config.encoder == "grid":
        observation_space = env.observation_space(env_params)
        if not (isinstance(observation_space, spaces.Dict) and "image" in observation_space.spaces):
            raise ValueError(
                f"PPO's grid encoder needs a dict observation with an 'image' entry (such as the "
                f"maze's); {env.name} has {observation_space}. Use encoder='none' for arrays."
            )
        if config.normalize_observations:
            raise ValueError("PPO: normalize_observations applies to array observations; it "
                             "does not combine with encoder='grid'.")
    else:
        require_box_observation("PPO", env, env_params)
        require_positive_ints(config, "conv_features")
        array_encoder(config.encoder, env.observation_space(env_params).shape,
                      config.conv_features)


# --- networks -----------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Networks:
    """The policy and value functions as pure functions of ``params``.

    Feed-forward: ``params = {"actor", "critic"}``, separate MLPs on the observation.
    Recurrent: ``params = {"torso", "actor", "critic"}``; the GRU torso's features feed both.
    With ``encoder="grid"`` or ``"minatar"`` the observation first passes a shared
    ``GridEncoder`` or ``MinAtarEncoder`` (``params["encoder"]``); with ``"none"`` an
    observation of several axes ``observation_shape`` is flattened. The action head
    (categorical or diagonal Gaussian, from the action space) gives the actor and its
    distribution. With ``num_objectives`` > 0 (a multi-objective
    env) the critic has one output per objective and ``value`` is ``(..., num_objectives)``.
    """

    config: Config
    head: ActionHead
    num_objectives: int = 0  # 0: a scalar reward and a scalar value
    observation_shape: tuple[int, ...] = ()  # of one env's Box observation; () for a dict

    @property
    def actor(self):
        return self.head.actor(self.config.hidden_sizes, self.config.activation,
                               self.config.initial_log_std)

    @property
    def critic(self) -> MLP:
        return MLP(self.config.hidden_sizes, max(1, self.num_objectives), self.config.activation,
                   1.0)

    @property
    def torso(self) -> ResettableGRU:
        return ResettableGRU(self.config.gru_hidden_size, self.config.activation)

    @property
    def encoder(self):
        """The ``GridEncoder``, the ``MinAtarEncoder``, a ``Flatten`` or None (flat input)."""
        if self.config.encoder == "grid":
            return GridEncoder(conv_features=self.config.conv_features)
        return array_encoder(self.config.encoder, self.observation_shape,
                             self.config.conv_features)

    def encode(self, params: dict[str, Any], observation: Any) -> jax.Array:
        """The networks' input features of an observation (itself, flattened, or encoded)."""
        encoder = self.encoder
        if encoder is None:
            return observation
        return encoder.apply(params.get("encoder", {}), observation)

    def init(self, key: jax.Array, observation: Any) -> dict[str, Any]:
        actor_key, critic_key, torso_key, encoder_key = jax.random.split(key, 4)
        params = {}
        if self.config.encoder != "none":  # a learned encoder (Flatten has no parameters)
            params["encoder"] = self.encoder.init(encoder_key, observation)
        features = self.encode(params, observation)
        if self.config.recurrent:
            hidden = self.torso.initial_hidden()
            params["torso"] = self.torso.init(torso_key, hidden, (features, jnp.bool_(True)))
            features = hidden
        params["actor"] = self.actor.init(actor_key, features)
        params["critic"] = self.critic.init(critic_key, features)
        # The modules initialise in float32; a cast (a no-op for float32) gives Config.dtype.
        return jax.tree.map(lambda x: x.astype(self.config.dtype), params)

    def distribution(self, params: dict[str, Any], features: jax.Array) -> distrax.Distribution:
        return self.head.distribution(self.actor.apply(params["actor"], features))

    def value(self, params: dict[str, Any], features: jax.Array) -> jax.Array:
        values = self.critic.apply(params["critic"], features)
        return values if self.num_objectives else values[..., 0]

    def dormancy(self, params: dict[str, Any], features: jax.Array) -> dict[str, Any]:
        """Per-parameter dormancy of the actor's and critic's units on a batch of features
        (``unit_dormancy``; ones for the encoder, the GRU torso and a Gaussian's log std): the
        input a learned optimiser such as OPEN's reads, shaped like ``params``."""
        activation = activation_by_name(self.config.activation)
        scores = jax.tree.map(jnp.ones_like, params)
        scores["actor"] = unit_dormancy(self.actor, params["actor"], features, activation)
        scores["critic"] = unit_dormancy(self.critic, params["critic"], features, activation)
        return jax.lax.stop_gradient(scores)

    def recur(self, params, hidden, observation, episode_start):
        """One GRU step: ``(hidden, features)``; hidden is zeroed where ``episode_start``."""
        features = self.encode(params, observation)
        return self.torso.apply(params["torso"], hidden, (features, episode_start))


def network_input(observation: Any, dtype: Any = jnp.float32) -> Any:
    """An array observation as ``dtype`` (``Config.dtype``: what the MLPs take); a dict
    observation (grid encoder) as it is, kept compact (uint8 images) in the rollout: the encoder
    converts it."""
    if isinstance(observation, dict):
        return observation
    return jnp.asarray(observation, dtype)


# --- training state -----------------------------------------------------------------------------
@struct.dataclass
class RolloutStep:
    """One rollout step for all envs; stacked by the scan to ``(num_steps, num_envs, ...)``."""

    observation: jax.Array
    episode_start: jax.Array  # True where observation is an episode's first (GRU reset)
    action: jax.Array
    log_prob: jax.Array
    value: jax.Array | None  # recurrent only; feed-forward values are computed in one batch
    next_value: jax.Array | None  # V(final_observation); recurrent only, as above
    final_observation: jax.Array
    reward: jax.Array
    terminated: jax.Array
    truncated: jax.Array
    episode_return: jax.Array
    episode_length: jax.Array
    returned_episode: jax.Array


@struct.dataclass
class PPOState:
    """Everything a run needs to continue: what a checkpoint saves."""

    params: dict[str, Any]
    opt_state: Any
    env_state: Any  # batched over envs; holds the normaliser statistics when enabled
    observation: Any  # (num_envs, *obs_shape) (or a dict of such), the next observation to act on
    episode_start: jax.Array  # (num_envs,) bool
    hidden: jax.Array | None  # (num_envs, gru_hidden_size); None when feed-forward
    key: jax.Array
    update_step: jax.Array  # int32, updates done so far
    hparams: Hyperparams
    env_params: Any = None  # the traced env params given to train(); None: the closed-over ones


def _meta_run_file(path: str, field: str, file_name: str, command: str) -> Path:
    """The file a ``Config`` field (``objective_params``, ``optimizer_params``) names: the path
    itself, or the meta-run folder's ``file_name``. Raises ``ValueError`` when neither exists."""
    given = Path(path).expanduser()
    candidate = given / file_name if given.is_dir() else given
    if not candidate.is_file():
        raise ValueError(
            f"PPO: {field} {path!r} is neither an .npz file nor a folder holding "
            f"{file_name} (a `{command}` run folder).")
    return candidate


def objective_params_file(path: str) -> Path:
    """The drift-network file ``Config.objective_params`` names: the path itself, or a meta-run
    folder's ``objective.npz``. Raises ``ValueError`` when neither exists."""
    return _meta_run_file(path, "objective_params", "objective.npz", "jaxrl meta lpo")


def optimizer_params_file(path: str) -> Path:
    """The learned-optimiser file ``Config.optimizer_params`` names: the path itself, or a
    meta-run folder's ``optimizer.npz``. Raises ``ValueError`` when neither exists."""
    return _meta_run_file(path, "optimizer_params", "optimizer.npz", "jaxrl meta open")


def learned_optimizer(config: Config) -> optim.OptimizerFactory:
    """OPEN's optimiser ``Config.optimizer_params`` names, for a run of ``config``."""
    from jaxrl_suite.meta import open as open_lib  # meta/ builds on PPO, not the other way

    path = optimizer_params_file(config.optimizer_params)
    open_config = open_lib.Config()
    if (path.parent / "config.json").is_file() and path.name.startswith("optimizer"):
        from jaxrl_suite.run.folder import load_run

        _, run_config, _, _ = load_run(path.parent)
        if isinstance(run_config, open_lib.Config):
            open_config = run_config
    weights = open_lib.load_optimizer_params(path, open_config)
    return open_lib.OpenOptimizer.for_ppo(open_config, config, default_weights=weights)


def default_hyperparams(config: Config, num_objectives: int = 0) -> Hyperparams:
    """``Hyperparams.from_config``, with equal preference weights ``1 / k`` for a
    multi-objective env, and for a learned objective (lpo, ta_lpo) its drift network in
    ``meta["objective"]``: the file ``objective_params`` names, or one initialised at PPO."""
    hparams = Hyperparams.from_config(config).replace(
        preference=preferences.default_preference(num_objectives, config.dtype))
    if config.objective in LEARNED_OBJECTIVES:
        time_aware = LEARNED_OBJECTIVES[config.objective]
        drift = (load_drift_params(str(objective_params_file(config.objective_params)),
                                   time_aware)
                 if config.objective_params
                 else init_drift_params(jax.random.key(0), time_aware))
        hparams = hparams.replace(meta={"objective": drift})
    return hparams


def training_env(config: Config, env: Environment) -> Environment:
    """The env stack PPO trains on: auto-reset and episode stats if missing, action clipping for
    Box actions, then the optional normalisers (outside ``EpisodeStats``, so reported returns
    stay in the env's units)."""
    env = auto_reset_env(env, cached=config.cached_reset)
    if isinstance(env.action_space(env.default_params), spaces.Box):
        env = ClipAction(env)
    if config.normalize_observations:
        env = NormalizeObservation(env, axis_name=ENV_AXIS)
    if config.normalize_rewards:
        env = NormalizeReward(env, gamma=config.gamma, axis_name=ENV_AXIS)
    return env


# --- the learner: rollout, advantages, PPO epochs -----------------------------------------------
@dataclasses.dataclass(frozen=True)
class PPOLearner:
    """PPO's pieces as pure functions, for ``make_train`` and for algorithms that train a PPO
    student on envs they manage themselves (``algos/ued.py`` picks the levels).

    * ``rollout(params, carry, env_key, noise_key, env_params=None) -> (carry, trajectory)``:
      ``num_steps`` steps of the ``num_envs`` envs under the policy (``env_key`` for the env
      steps, ``noise_key`` for the action sampling; ``env_params`` default the learner's);
      ``carry = (env_state, observation, episode_start, hidden)`` with a leading env axis
      (``initial_carry`` builds one after a reset).
    * ``assess(params, trajectory, hparams) -> (values, advantages, targets)``, each
      ``(num_steps, num_envs)``: values and GAE, bootstrapping truncated steps from
      ``V(final_observation)``.
    * ``learn(params, opt_state, hparams, trajectory, values, advantages, targets,
      initial_hidden, key, progress) -> (params, opt_state, losses)``: ``update_epochs`` passes
      of minibatch steps; ``progress`` (update / updates, a scalar) is handed to the objective;
      ``losses`` are stacked ``(update_epochs, num_minibatches)``.
    * ``make_optimizer(hparams)``: the optax optimiser of these hyperparameters (called inside
      the compiled program; ``init_optimizer`` builds its state).
    """

    config: Config
    env: Environment  # the training env stack (auto-reset, episode stats, ...)
    env_params: Any
    networks: Networks
    make_optimizer: Callable[[Hyperparams], optax.GradientTransformation]
    rollout: Callable[..., Any]
    assess: Callable[..., Any]
    learn: Callable[..., Any]
    act: Callable[..., Any]

    @property
    def hidden_width(self) -> int:
        return self.config.gru_hidden_size if self.config.recurrent else 0

    def init_params(self, key: jax.Array, observation: Any) -> dict[str, Any]:
        """Network params from one env's observation (a leading env axis is dropped)."""
        observation = network_input(observation, self.config.dtype)
        return self.networks.init(key, jax.tree.map(lambda x: x[0], observation))

    def init_optimizer(self, params: Any, hparams: Hyperparams) -> Any:
        """The optimiser state for ``params`` under ``hparams``."""
        return self.make_optimizer(hparams).init(params)

    def initial_carry(self, observation: Any, env_state: Any) -> tuple[Any, ...]:
        """The rollout carry right after a (batched) reset: every env starts an episode."""
        num_envs = jax.tree.leaves(observation)[0].shape[0]
        hidden = (jnp.zeros((num_envs, self.hidden_width), self.config.dtype)
                  if self.config.recurrent else None)
        observation = network_input(observation, self.config.dtype)
        return env_state, observation, jnp.ones(num_envs, bool), hidden


def default_optimizer(config: Config) -> Callable[[Hyperparams], optax.GradientTransformation]:
    """PPO's own optimiser as a factory of the traced hyperparameters: gradients clipped to
    ``max_grad_norm``, Adam, the rate ``learning_rate`` decayed linearly to 0 over the run's
    updates when ``anneal_lr`` (constant within an update's minibatch steps)."""
    steps_per_update = config.update_epochs * config.num_minibatches
    num_updates = config.total_steps // (config.num_envs * config.num_steps)

    def make(hparams: Hyperparams) -> optax.GradientTransformation:
        rate = (optim.linear_decay(hparams.learning_rate, steps_per_update, num_updates)
                if config.anneal_lr else hparams.learning_rate)
        return optim.adam(rate, max_grad_norm=hparams.max_grad_norm, eps=config.adam_epsilon,
                          eps_root=config.adam_eps_root)

    return make


def make_learner(
    config: Config,
    env: Environment,
    env_params: Any,
    *,
    policy_objective: PolicyObjective | None = None,
    loss_assembly: LossAssembly | None = None,
    optimizer: optax.GradientTransformation | optim.OptimizerFactory | None = None,
    scalarize: Scalarization | None = None,
) -> PPOLearner:
    """PPO's rollout, advantages and update for ``env`` (see ``PPOLearner``).

    Args:
      config: static settings (see ``Config``); checked here, before anything is traced.
      env: the environment; ``make(id)``'s auto-resetting stack or a raw env (wrapped here).
      env_params: its params (may differ per run without recompiling).
      policy_objective: ``ObjectiveInputs -> scalar`` loss of a minibatch; default the one
        ``config.objective`` names (``clipped_surrogate``).
      loss_assembly: ``(inputs, policy_loss) -> (total, diagnostics)``; default
        ``actor_critic_loss`` (value loss, clipped when ``clip_value``, and entropy bonus).
      optimizer: a complete optax optimiser (``optax.adam(3e-4)``: its own rate and clipping,
        so ``learning_rate``, ``anneal_lr`` and ``max_grad_norm`` then do not apply) or a
        factory ``hparams -> optimiser`` called inside the compiled program (a learned
        optimiser reads ``hparams.meta``). Default ``default_optimizer(config)``. One whose
        update ascends the loss is refused.
      scalarize: for a multi-objective env (one with ``reward_space``): ``(advantages (...,
        k), hparams) -> (...)``, the one advantage the objective optimises; default
        ``linear_scalarization`` with ``hparams.preference``. The critic then has ``k`` outputs
        and GAE runs per objective.

    Returns:
      ``PPOLearner``.
    """
    validate(config, env, env_params)
    if policy_objective is None:
        policy_objective = policy_objective_by_name(config.objective, "PPO")
    if loss_assembly is None:
        loss_assembly = functools.partial(actor_critic_loss, clip_value=config.clip_value)
    if scalarize is None:
        scalarize = linear_scalarization
    if config.optimizer_params:
        if optimizer is not None:
            raise ValueError("PPO: give the optimiser either as make_train's optimizer argument "
                             f"or as Config.optimizer_params ({config.optimizer_params!r}), "
                             "not both.")
        optimizer = learned_optimizer(config)
    make_optimizer = optim.resolve_optimizer(
        optimizer, default_optimizer(config), Hyperparams.from_config(config), "PPO")
    uses_dormancy = bool(getattr(make_optimizer, "uses_dormancy", False))
    env = training_env(config, env)
    num_objectives = preferences.num_objectives_of(env, env_params, "PPO")
    networks = Networks(config, ActionHead.for_space(env.action_space(env_params), config.dtype),
                        num_objectives, tuple(env.observation_space(env_params).shape))
    batch_ndim = 2 if config.recurrent else 1  # (steps, envs) or (transitions,) minibatches
    vmapped_step = jax.vmap(env.step, in_axes=(0, 0, 0, None), axis_name=ENV_AXIS)
    stop_gradient = (jax.lax.stop_gradient if config.stop_rollout_gradients
                     else lambda tree: tree)

    # --- rollout: num_steps steps of all envs under the current policy
    def rollout_step(params, step_env_params, carry, step_randomness):
        env_state, observation, episode_start, hidden = carry
        env_keys, action_noise = step_randomness
        if config.recurrent:
            hidden, features = networks.recur(params, hidden, observation, episode_start)
        else:
            features = networks.encode(params, observation)
        distribution = networks.distribution(params, features)
        action = networks.head.sample_from_noise(distribution, action_noise)
        log_prob = distribution.log_prob(action)
        next_observation, env_state, reward, terminated, truncated, info = vmapped_step(
            env_keys, env_state, action, step_env_params
        )
        final_observation = network_input(info["final_observation"], config.dtype)
        if config.recurrent:
            # V of the observation after this step, through the GRU state it would be read with.
            _, final_features = networks.recur(
                params, hidden, final_observation, jnp.zeros_like(episode_start)
            )
            value, next_value = networks.value(params, features), networks.value(
                params, final_features
            )
        else:
            value = next_value = None  # computed for the whole rollout at once in update()
        done = jnp.logical_or(terminated, truncated)
        rollout_step = RolloutStep(
            observation, episode_start, action, log_prob, value, next_value, final_observation,
            reward.astype(config.dtype), terminated, truncated, info["episode_return"],
            info["episode_length"], info["returned_episode"],
        )
        carry = (env_state, network_input(next_observation, config.dtype), done, hidden)
        return carry, rollout_step

    # --- losses
    def minibatch_features(params, batch):
        """The actor's and critic's input on a minibatch: encoded observations, or for the
        recurrent policy the GRU's features replayed from the rollout's initial hidden."""
        if config.recurrent:
            def replay(hidden, inputs):
                return networks.recur(params, hidden, *inputs)

            return jax.lax.scan(replay, batch["initial_hidden"],
                                (batch["observation"], batch["episode_start"]))[1]
        return networks.encode(params, batch["observation"])

    def loss_fn(params, hparams: Hyperparams, batch: dict[str, jax.Array], progress,
                epoch_progress):
        """Loss on a minibatch: flat ``(minibatch_size, ...)`` arrays, or for the recurrent
        policy ``(num_steps, envs_per_minibatch, ...)`` plus the rollout's initial hidden."""
        features = minibatch_features(params, batch)
        distribution = networks.distribution(params, features)
        log_prob = distribution.log_prob(batch["action"])
        log_ratio = log_prob - batch["log_prob"]
        ratio = jnp.exp(log_ratio)
        advantages, objective_advantages = policy_advantages(
            batch["advantage"], hparams, normalize=config.normalize_advantages,
            num_objectives=num_objectives, scalarize=scalarize,
            batch_axes=tuple(range(batch_ndim)))

        def flat(x):  # the minibatch's leading axes as one (an objective axis stays)
            return None if x is None else x.reshape(-1, *x.shape[batch_ndim:])

        inputs = ObjectiveInputs(
            ratio=flat(ratio), log_ratio=flat(log_ratio), log_prob=flat(log_prob),
            old_log_prob=flat(batch["log_prob"]), advantages=flat(advantages),
            values=flat(networks.value(params, features)), old_values=flat(batch["value"]),
            targets=flat(batch["target"]), entropy=flat(distribution.entropy()),
            progress=progress, epoch_progress=epoch_progress, hparams=hparams,
            objective_advantages=flat(objective_advantages),
        )
        policy_loss = policy_objective(inputs)
        total, diagnostics = loss_assembly(inputs, policy_loss)
        return total, {
            "policy_loss": policy_loss,
            **diagnostics,
            "approx_kl": jnp.mean((ratio - 1.0) - log_ratio),
            "clip_fraction": jnp.mean(jnp.abs(ratio - 1.0) > hparams.clip_epsilon),
        }

    def split_minibatches(key, data: dict[str, jax.Array]) -> dict[str, jax.Array]:
        """Shuffle and cut into ``(num_minibatches, ...)``: over all transitions when
        feed-forward, over envs (keeping time order) when recurrent."""
        if config.recurrent:
            return minibatches.over_envs(key, data, config.num_minibatches,
                                         {"initial_hidden": 0})
        return minibatches.over_transitions(key, data, config.num_minibatches)

    def rollout(params, carry, env_key, noise_key, env_params_=None):
        # All the rollout's randomness is drawn here in two batched calls rather than inside the
        # loop: on CPU each random draw is itself a small loop (threefry), so this takes most of
        # the per-step overhead out of the rollout.
        step_env_params = env_params if env_params_ is None else env_params_
        randomness = (
            jax.random.split(env_key, (config.num_steps, config.num_envs)),
            networks.head.sampling_noise(noise_key, (config.num_steps, config.num_envs)),
        )
        carry, trajectory = jax.lax.scan(
            lambda c, r: rollout_step(params, step_env_params, c, r), carry, randomness)
        return carry, stop_gradient(trajectory)

    def assess(params, trajectory, hparams):
        if config.recurrent:
            values, next_values = trajectory.value, trajectory.next_value
        else:
            # One batched critic pass instead of one per step. Every step's next value is
            # V(final_observation): it is the next observation unless the episode ended.
            values = networks.value(params, networks.encode(params, trajectory.observation))
            next_values = networks.value(
                params, networks.encode(params, trajectory.final_observation)
            )
        advantages, targets = generalized_advantages(
            trajectory.reward, values, next_values, trajectory.terminated, trajectory.truncated,
            hparams.gamma, hparams.gae_lambda,
        )
        return stop_gradient((values, advantages, targets))

    def learn(params, opt_state, hparams, trajectory, values, advantages, targets,
              initial_hidden, key, progress):
        optimizer = make_optimizer(hparams)
        data = {
            "observation": trajectory.observation,
            "episode_start": trajectory.episode_start,
            "action": trajectory.action,
            "log_prob": trajectory.log_prob,
            "value": values,
            "advantage": advantages,
            "target": targets,
        }
        if config.recurrent:
            data["initial_hidden"] = initial_hidden

        def minibatch_step(carry, batch, epoch_progress):
            params, opt_state = carry
            (total, diagnostics), grads = jax.value_and_grad(loss_fn, has_aux=True)(
                params, hparams, batch, progress, epoch_progress
            )
            if uses_dormancy:  # a learned optimiser that reads its units' dormancy (OPEN)
                dormancy = networks.dormancy(params, minibatch_features(params, batch))
                updates, opt_state = optax.with_extra_args_support(optimizer).update(
                    grads, opt_state, params, dormancy=dormancy)
                params = optax.apply_updates(params, updates)
            else:
                params, opt_state = optim.apply_gradient(optimizer, params, opt_state, grads)
            return (params, opt_state), {
                "total_loss": total, "grad_norm": optax.tree.norm(grads), **diagnostics
            }

        (params, opt_state), losses = minibatches.epochs(
            minibatch_step, (params, opt_state), key, data, config.update_epochs,
            split_minibatches)
        return params, opt_state, losses

    if config.remat_learn:
        learn = jax.checkpoint(learn)

    # --- the trained policy, for evaluation
    def act(policy_params, key, observation, hidden, episode_start, deterministic):
        params, obs_stats = policy_params["network"], policy_params["observation_stats"]
        observation = network_input(observation, config.dtype)
        if obs_stats is not None:
            observation = obs_stats.normalize(observation)
        if config.recurrent:
            hidden, features = networks.recur(params, hidden, observation, episode_start)
        else:
            features = networks.encode(params, observation)
        distribution = networks.distribution(params, features)
        action = (networks.head.greedy(distribution) if deterministic
                  else distribution.sample(seed=key))
        return networks.head.clip(action), hidden

    return PPOLearner(config, env, env_params, networks, make_optimizer, rollout, assess, learn,
                      act)


# --- make_train ---------------------------------------------------------------------------------
def make_train(
    config: Config,
    env: Environment,
    env_params: Any,
    *,
    policy_objective: PolicyObjective | None = None,
    loss_assembly: LossAssembly | None = None,
    optimizer: optax.GradientTransformation | optim.OptimizerFactory | None = None,
) -> Train:
    """Build PPO's pure training run for ``env``: ``make_learner``'s pieces (same arguments)
    strung into ``init`` and ``update``.

    Returns:
      ``Train``: ``train(key, hparams=None, env_params=None) -> TrainResult`` with
      ``train.init``/``train.update``. ``env_params`` given to ``train`` are traced (a ``vmap``
      over them trains on several tasks at once); by default the run closes over
      ``env_params``.
    """
    learner = make_learner(config, env, env_params, policy_objective=policy_objective,
                           loss_assembly=loss_assembly, optimizer=optimizer)
    env = learner.env
    num_updates = config.total_steps // (config.num_envs * config.num_steps)
    batch_size = config.num_envs * config.num_steps
    vmapped_reset = jax.vmap(env.reset, in_axes=(0, None), axis_name=ENV_AXIS)

    def init(key: jax.Array, hparams: Hyperparams, run_env_params: Any = None) -> PPOState:
        # Shapes are static: a wrong-length preference fails here, while tracing, in plain words.
        preferences.check_preference(hparams.preference, learner.networks.num_objectives,
                                     "PPO")
        network_key, reset_key, key = jax.random.split(key, 3)
        observation, env_state = vmapped_reset(
            jax.random.split(reset_key, config.num_envs),
            env_params if run_env_params is None else run_env_params,
        )
        params = learner.init_params(network_key, observation)
        env_state, observation, episode_start, hidden = learner.initial_carry(
            observation, env_state
        )
        return PPOState(
            params=params,
            opt_state=learner.init_optimizer(params, hparams),
            env_state=env_state,
            observation=observation,
            episode_start=episode_start,
            hidden=hidden,
            key=key,
            update_step=jnp.int32(0),
            hparams=hparams,
            env_params=run_env_params,
        )

    # --- one update: rollout, advantages, epochs of minibatch steps
    def update(state: PPOState) -> tuple[PPOState, dict[str, jax.Array]]:
        hparams = state.hparams
        key, env_key, noise_key, learn_key = jax.random.split(state.key, 4)
        carry = (state.env_state, state.observation, state.episode_start, state.hidden)
        carry, trajectory = learner.rollout(state.params, carry, env_key, noise_key,
                                            state.env_params)
        env_state, observation, episode_start, hidden = carry
        values, advantages, targets = learner.assess(state.params, trajectory, hparams)
        progress = state.update_step / num_updates
        params, opt_state, losses = learner.learn(
            state.params, state.opt_state, hparams, trajectory, values, advantages, targets,
            state.hidden, learn_key, progress,
        )
        metrics = {
            "env_steps": (state.update_step + 1) * batch_size,
            **finished_episode_metrics({
                "episode_return": trajectory.episode_return,
                "episode_length": trajectory.episode_length,
                "returned_episode": trajectory.returned_episode,
            }),
            **jax.tree.map(jnp.mean, losses),
            "explained_variance": explained_variance(values, targets),
        }
        if optimizer is None:  # the default optimiser's rate; a given optimiser keeps its own
            metrics["learning_rate"] = hparams.learning_rate * (
                1.0 - progress if config.anneal_lr else 1.0)
        new_state = state.replace(
            params=params,
            opt_state=opt_state,
            env_state=env_state,
            observation=observation,
            episode_start=episode_start,
            hidden=hidden,
            key=key,
            update_step=state.update_step + 1,
        )
        return new_state, metrics

    def make_policy(state: PPOState) -> Policy:
        """The policy of a (single-seed) training state; observation statistics included."""
        stats_state = find_state(state.env_state, NormalizeObservationState)
        obs_stats = (None if stats_state is None
                     else jax.tree.map(lambda x: x[0], stats_state.obs_stats))  # pooled: equal
        carry = jnp.zeros(learner.hidden_width, config.dtype) if config.recurrent else None
        return Policy(learner.act, {"network": state.params, "observation_stats": obs_stats},
                      carry)

    return Train(
        init=init,
        update=update,
        num_updates=num_updates,
        env_steps_per_update=batch_size,
        default_hparams=default_hyperparams(config, learner.networks.num_objectives),
        make_policy=make_policy,
        config=config,
        check_hparams=hyperparams_validator(config, lambda c: validate(c, env, env_params)),
        takes_env_params=True,
    )


def final_return(result: TrainResult, last_fraction: float = 0.1) -> jax.Array:
    """Mean return of episodes finished in the last ``last_fraction`` of updates, per seed.

    ``result.metrics["episode_return"]`` is ``(..., num_updates)`` (seed axes first under
    ``vmap``); updates with no finished episode (NaN) are skipped.
    """
    returns = result.metrics["episode_return"]
    count = max(1, int(returns.shape[-1] * last_fraction))
    return jnp.nanmean(returns[..., -count:], axis=-1)


# --- the algorithm's description: presets and the command line come from it -------------------
ALGORITHM = AlgorithmSpec(
    name="ppo", display_name="PPO", config=Config, hyperparams=Hyperparams,
    make_train=make_train, presets=PRESETS, preset_by_env=_PRESET_BY_ENV,
    description=__doc__.strip().splitlines()[0],
    measured_presets={
        "cartpole": "tests/test_ppo.py", "pendulum": "tests/test_ppo.py",
        "a2c": "tests/test_contracts.py, on CartPole",
        "minatar": "benchmarks/minatar_breakout.py, on Breakout",
    },
)
preset_config = ALGORITHM.preset_config  # (env_id_or_preset, **overrides) -> Config
main = ALGORITHM.main  # `python algos/ppo.py --env gymnax/CartPole-v1 --seeds 4`


if __name__ == "__main__":
    sys.exit(main())
