"""What every offline algorithm shares: the common settings, the dataset a run learns from,
evaluation in the env inside the jitted run, and the normalised score.

An offline algorithm file (``algos/offline/*.py``) defines its ``Config`` (a subclass of
``OfflineConfig``), its networks and one ``gradient_step``; ``make_offline_train`` turns them
into the usual ``Train``, so the harness gives offline runs seeds as ``vmap``, progress, run
folders, checkpoints and resume unchanged. One update is ``eval_interval`` gradient steps on
minibatches drawn from the dataset, then ``evaluation_episodes`` episodes of the deterministic
policy in the env; it logs ``episode_return`` (their mean), ``normalized_score`` (when the
dataset has reference returns) and the mean losses.

The dataset is ``Train.data``: an argument of the compiled program shared by every seed, never
copied into the training state or its checkpoints.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from jaxrl_suite.data.datasets import (
    Dataset,
    TransitionSampler,
    check_matches_env,
    episode_returns,
    load_dataset,
    normalized_score,
    observation_statistics,
    recorded_env_id,
)
from jaxrl_suite.env import spaces
from jaxrl_suite.env.environment import Environment
from jaxrl_suite.learn.buffers import Transition
from jaxrl_suite.run.configs import (
    hyperparams_validator,
    require_box_observation,
    require_non_negative,
    require_positive_ints,
)
from jaxrl_suite.run.evaluation import Policy, evaluate
from jaxrl_suite.run.training import Train

__all__ = [
    "OfflineConfig",
    "OfflineState",
    "OfflineSetup",
    "SAMPLING",
    "prepare_offline",
    "make_offline_train",
    "reference_returns",
    "write_outputs",
    "OFFLINE_ALGORITHM",
]

SAMPLING = ("uniform", "return_weighted")


@dataclasses.dataclass(frozen=True)
class OfflineConfig:
    """The settings every offline algorithm has (its own ``Config`` adds the rest)."""

    dataset: str = ""
    """A dataset name (in $JAXRL_DATASETS, made by `jaxrl collect`) or a path: a Minari folder
    or a D4RL .hdf5 file."""
    total_updates: int = 1_000_000
    """Gradient steps in the whole run."""
    batch_size: int = 256
    """Transitions per gradient step."""
    eval_interval: int = 5_000
    """Gradient steps between evaluations (one logged update)."""
    evaluation_episodes: int = 10
    """Episodes of the deterministic policy per evaluation."""
    sampling: str = "uniform"
    """uniform (over transitions) or return_weighted (up-weights high-return episodes)."""
    sampling_temperature: float = 0.1
    """Temperature of return_weighted sampling: smaller leans harder on the best episodes."""
    normalize_observations: bool = True
    """Standardise observations with the dataset's mean and std (the policy does the same in
    the env)."""
    clip_dataset_actions: bool = False
    """Clip the dataset's actions into the env's action bounds. Off: a dataset with actions
    outside them (beyond float round-off) is refused, naming how many and their range."""
    ref_min_score: float | None = None
    """Random-policy return for the normalised score (default: the dataset's)."""
    ref_max_score: float | None = None
    """Expert return for the normalised score (default: the dataset's)."""
    adam_eps_root: float = 0.0
    """Added to Adam's second moment inside the square root. Set it positive (1e-8) when
    differentiating through training (hypergradients, meta-gradients): with 0 the outer
    gradient is NaN where a second moment is zero."""


@struct.dataclass
class OfflineState:
    """What an offline run carries between updates (and checkpoints): the algorithm's own
    ``learner`` state (parameters, optimiser states), the RNG, the update count and the
    traceable hyperparameters."""

    learner: Any
    key: jax.Array
    update_step: jax.Array  # int32, logged updates done
    hparams: Any


@dataclasses.dataclass(frozen=True)
class OfflineSetup:
    """The dataset prepared for one env: what ``prepare_offline`` returns.

    ``sampler`` draws (normalised) transitions; ``observation_mean``/``observation_std``
    ``(*obs_shape,)`` NumPy, the normalisation the policy applies in the env; ``action_low``,
    ``action_high`` the env's bounds (NumPy, Box actions); ``reference`` the
    ``(ref_min_score, ref_max_score)`` pair or None.
    """

    dataset: Dataset
    sampler: TransitionSampler
    observation_mean: np.ndarray
    observation_std: np.ndarray
    action_low: np.ndarray | None
    action_high: np.ndarray | None
    reference: tuple[float, float] | None

    @property
    def action_dim(self) -> int:
        return int(math.prod(self.dataset.actions.shape[1:]))

    def normalize(self, observation: jax.Array) -> jax.Array:
        return (jnp.asarray(observation, jnp.float32) - self.observation_mean) / (
            self.observation_std)

    def score(self, episode_return: Any) -> Any:
        """Normalised score of ``episode_return`` (NaN without reference returns)."""
        if self.reference is None:
            return jnp.full_like(jnp.asarray(episode_return, jnp.float32), jnp.nan)
        return normalized_score(episode_return, *self.reference)


def validate_offline_config(config: OfflineConfig, algorithm: str) -> None:
    """Raise a ``ValueError`` naming a bad common setting."""
    if not config.dataset:
        raise ValueError(f"{algorithm} learns from a dataset: pass --dataset NAME|PATH (a name "
                         f"made by `jaxrl collect`, a Minari folder or a D4RL .hdf5 file).")
    require_positive_ints(config, "total_updates", "batch_size", "eval_interval",
                          "evaluation_episodes")
    if config.total_updates < config.eval_interval:
        raise ValueError(f"total_updates ({config.total_updates}) must be at least one "
                         f"eval_interval ({config.eval_interval}).")
    if config.sampling not in SAMPLING:
        raise ValueError(f"sampling must be one of {', '.join(SAMPLING)}; got "
                         f"{config.sampling!r}.")
    if not config.sampling_temperature > 0:
        raise ValueError(f"sampling_temperature must be positive; got "
                         f"{config.sampling_temperature!r}.")
    require_non_negative(config, "adam_eps_root")
    if (config.ref_min_score is None) != (config.ref_max_score is None):
        raise ValueError("ref_min_score and ref_max_score go together: give both or neither.")
    if config.ref_min_score is not None and not config.ref_max_score > config.ref_min_score:
        raise ValueError(f"ref_max_score ({config.ref_max_score}) must exceed ref_min_score "
                         f"({config.ref_min_score}).")


def prepare_offline(
    config: OfflineConfig, env: Environment, env_params: Any, algorithm: str,
    dataset: Dataset | None = None,
) -> OfflineSetup:
    """Load ``config.dataset`` (or take ``dataset``), check it against the env's spaces, and
    normalise its observations. Continuous (Box) actions only: the offline algorithms here are
    actor-critic methods for continuous control."""
    validate_offline_config(config, algorithm)
    require_box_observation(algorithm, env, env_params)
    action_space = env.action_space(env_params)
    if not isinstance(action_space, spaces.Box):
        raise ValueError(f"{algorithm} needs continuous (Box) actions; {env.name} has "
                         f"{action_space}.")
    if dataset is None:
        dataset = load_dataset(config.dataset)
    check_matches_env(dataset, env, env_params)
    dataset = _actions_within_bounds(dataset, action_space, config.clip_dataset_actions,
                                     algorithm)
    if config.normalize_observations:
        mean, std = (np.asarray(x) for x in observation_statistics(dataset))
        dataset = dataset.replace(
            observations=(dataset.observations - mean) / std,
            next_observations=(dataset.next_observations - mean) / std,
        )
    else:
        shape = dataset.observations.shape[1:]
        mean, std = np.zeros(shape, np.float32), np.ones(shape, np.float32)
    if config.sampling == "uniform":
        sampler = TransitionSampler.uniform(dataset)
    else:
        sampler = TransitionSampler.return_weighted(dataset, config.sampling_temperature)
    reference = reference_returns(config, dataset)
    return OfflineSetup(
        dataset=dataset,
        sampler=sampler,
        observation_mean=mean.astype(np.float32),
        observation_std=std.astype(np.float32),
        action_low=np.asarray(action_space.low, np.float32),
        action_high=np.asarray(action_space.high, np.float32),
        reference=reference,
    )


def _actions_within_bounds(dataset: Dataset, action_space: spaces.Box, clip: bool,
                           algorithm: str) -> Dataset:
    """The dataset with its actions checked against the env's bounds: refused when some lie
    outside (beyond 1e-5 of the range: float round-off of a recorder), or clipped when asked."""
    low = np.asarray(action_space.low, np.float64)
    high = np.asarray(action_space.high, np.float64)
    actions = np.asarray(dataset.actions, np.float64)
    tolerance = 1e-5 * np.maximum(high - low, 1.0)
    outside = np.any((actions < low - tolerance) | (actions > high + tolerance),
                     axis=tuple(range(1, actions.ndim)))
    if clip:
        clipped = np.clip(actions, low, high).astype(np.asarray(dataset.actions).dtype)
        return dataset.replace(actions=clipped)
    if outside.any():
        raise ValueError(
            f"{algorithm}: {int(outside.sum()):,} of the dataset's {len(outside):,} actions lie "
            f"outside the env's action bounds [{low.min():g}, {high.max():g}] (they range over "
            f"[{actions.min():g}, {actions.max():g}]): the dataset was recorded for other "
            f"bounds or in other units. Pass --clip-dataset-actions to clip them.")
    return dataset


def make_offline_train(
    config: OfflineConfig,
    env: Environment,
    env_params: Any,
    setup: OfflineSetup,
    *,
    init_learner: Callable[[jax.Array, Any], Any],
    gradient_step: Callable[[Any, Transition, jax.Array, Any], tuple[Any, dict]],
    greedy_action: Callable[[Any, jax.Array], jax.Array],
    default_hparams: Any,
    steps_per_call: int | None = None,
    validate: Callable[[Any], None] | None = None,
) -> Train:
    """The ``Train`` of an offline algorithm.

    Args:
      init_learner: ``(key, hparams) -> learner`` (parameters, optimiser states).
      gradient_step: ``(learner, batch, key, hparams) -> (learner, losses)``: one gradient
        step on ``batch``, a ``Transition`` with leaves ``(batch_size, ...)`` (observations
        normalised); ``losses`` a dict of scalars. With ``steps_per_call = k`` (an int, 1
        included) it makes ``k`` gradient steps from leaves ``(k, batch_size, ...)``: a static
        schedule such as TD3's delayed actor update (an actor step every ``k``-th critic step)
        then costs no branch, which under ``vmap`` over seeds would compute both sides.
      greedy_action: ``(learner, normalised observation (..., obs)) -> action (..., act)`` in
        env units: the deterministic policy evaluated in the env.
      default_hparams: the config's traceable hyperparameters.
      validate: ``config -> None``, the algorithm's checks; given, hyperparameters passed to
        ``train`` are checked against them (``configs.hyperparams_validator``).
    """
    steps_per_update = config.eval_interval
    num_updates = config.total_updates // steps_per_update
    if steps_per_call is None:
        calls_per_update, batch_shape = steps_per_update, (config.batch_size,)
    else:
        if steps_per_update % steps_per_call:
            raise ValueError(f"eval_interval ({steps_per_update}) must be a multiple of "
                             f"{steps_per_call} (the gradient steps of one call: the actor "
                             f"update period).")
        calls_per_update = steps_per_update // steps_per_call
        batch_shape = (steps_per_call, config.batch_size)

    def init(key: jax.Array, hparams: Any) -> OfflineState:
        learner_key, key = jax.random.split(key)
        return OfflineState(init_learner(learner_key, hparams), key, jnp.int32(0), hparams)

    def act(learner, key, observation, carry, episode_start, deterministic):
        # Offline policies are evaluated deterministically; sampled mode takes the same action.
        return greedy_action(learner, setup.normalize(observation)), carry

    def make_policy(state: OfflineState) -> Policy:
        return Policy(act, state.learner, None)

    def update(state: OfflineState, sampler: TransitionSampler):
        key, learn_key, eval_key = jax.random.split(state.key, 3)
        first_step = state.update_step * steps_per_update

        def one_call(learner, call_key):
            batch_key, gradient_key = jax.random.split(call_key)
            batch = sampler.dataset.transitions(sampler.sample_indices(batch_key, batch_shape))
            return gradient_step(learner, batch, gradient_key, state.hparams)

        learner, losses = jax.lax.scan(
            one_call, state.learner, jax.random.split(learn_key, calls_per_update)
        )
        returns = evaluate(make_policy(state.replace(learner=learner)), env, env_params,
                           eval_key, config.evaluation_episodes)["episode_return"]
        episode_return = returns.mean()
        metrics = {
            "env_steps": jnp.int32(0),  # offline: no env step is learned from
            "gradient_steps": first_step + steps_per_update,
            "episode_return": episode_return,
            "normalized_score": setup.score(episode_return),
            **jax.tree.map(jnp.mean, losses),
        }
        state = state.replace(learner=learner, key=key, update_step=state.update_step + 1)
        return state, metrics

    return Train(
        init=init,
        update=update,
        num_updates=num_updates,
        env_steps_per_update=0,
        default_hparams=default_hparams,
        make_policy=make_policy,
        config=config,
        data=setup.sampler,
        check_hparams=(None if validate is None
                       else hyperparams_validator(config, validate)),
    )


def reference_returns(config: OfflineConfig, dataset: Dataset) -> tuple[float, float] | None:
    """``(ref_min_score, ref_max_score)``: the config's when set, else the dataset's, else None."""
    if config.ref_min_score is not None:
        return float(config.ref_min_score), float(config.ref_max_score)
    if dataset.info.ref_min_score is not None and dataset.info.ref_max_score is not None:
        return dataset.info.ref_min_score, dataset.info.ref_max_score
    return None


def write_outputs(run_dir: Path, train: Train, states: Any) -> None:
    """The harness's hook for offline runs: ``dataset.json`` in the run folder (which data, its
    size, its behaviour return and normalised score, the reference returns)."""
    dataset = train.data.dataset
    reference = reference_returns(train.config, dataset)
    behaviour = float(episode_returns(dataset).mean())
    info = dataset.info
    summary = {
        "name": info.name, "source": info.source, "env_id": info.env_id, "kind": info.kind,
        "transitions": dataset.size, "episodes": dataset.num_episodes,
        "behaviour_return": behaviour,
        "behaviour_normalized_score": (float(normalized_score(behaviour, *reference))
                                       if reference else None),
        "ref_min_score": reference[0] if reference else None,
        "ref_max_score": reference[1] if reference else None,
    }
    (Path(run_dir) / "dataset.json").write_text(json.dumps(summary, indent=2))


OFFLINE_ALGORITHM: dict[str, Any] = dict(
    default_env="gymnax/Pendulum-v1", x_axis="gradient_steps", dataset_env=recorded_env_id,
    write_outputs=write_outputs,
)
"""What every offline algorithm's ``AlgorithmSpec`` shares: ``AlgorithmSpec(...,
**OFFLINE_ALGORITHM)``. Runs are measured in gradient steps, ``--dataset`` names the data
(and, by default, the env), and the run folder gets ``dataset.json``."""
