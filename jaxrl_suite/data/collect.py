"""The D4RL dataset family made from the project's own agents: ``jaxrl collect``.

    datasets = collect_datasets("sac", "gymnax/Pendulum-v1", ["medium", "expert"],
                                num_transitions=100_000, out_dir="datasets/")
    datasets["medium"].info.ref_min_score               # R_random, the 0 of the normalised score

The procedure follows D4RL's (Fu et al., 2020) with the algorithm's own preset for the env:

1. ``train_agent``: train SAC or TD3 in 100 chunks, evaluating the stochastic policy after each
   chunk (100 episodes, the same evaluation key for every snapshot) and keeping a ``Snapshot``
   (the policy's params, env steps so far, that return). The last snapshot is the expert.
2. ``reference_returns``: ``R_random``, the mean return of uniformly random actions, and
   ``R_expert``, the final policy's (stochastic) mean return, each over 100 episodes. The medium
   policy is the snapshot whose evaluation return is nearest to a third of the way from
   ``R_random`` to ``R_expert`` (D4RL's "about a third of the expert"); its return is measured
   again over 100 episodes.
3. ``datasets_from_agent``: the datasets, each a ``datasets.Dataset`` with
   ``ref_min_score = R_random`` and ``ref_max_score = R_expert``:

   - ``random``, ``medium``, ``expert``: whole episodes of uniformly random actions, or of the
     policy's sampled (stochastic) actions, from parallel envs (``rollout_dataset``);
   - ``medium-replay``: the agent's replay buffer from its first transition (the random
     prefill) up to the medium snapshot, in order (``replay_dataset``);
   - ``medium-expert``: ``medium`` followed by ``expert`` (``concatenate_datasets``).

Everything is determined by the seed, and a kind's dataset does not depend on which other kinds
are asked for. ``write_datasets`` saves them as Minari folders named ``dataset_name(env_id,
kind)``, e.g. ``pendulum-medium-v0``.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import math
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxrl_suite.data.datasets import Dataset, DatasetInfo, make_dataset, save_minari
from jaxrl_suite.env import spaces
from jaxrl_suite.env.environment import Environment
from jaxrl_suite.env.registry import make
from jaxrl_suite.env.wrappers import auto_reset_env
from jaxrl_suite.run.evaluation import Policy, evaluate
from jaxrl_suite.run.training import Train

__all__ = [
    "KINDS",
    "COLLECT_ALGORITHMS",
    "Snapshot",
    "AgentRun",
    "References",
    "collect_datasets",
    "train_agent",
    "reference_returns",
    "check_references",
    "datasets_from_agent",
    "rollout_dataset",
    "replay_dataset",
    "concatenate_datasets",
    "random_policy",
    "write_datasets",
    "dataset_name",
    "resolve_kinds",
]

KINDS = ("random", "medium", "expert", "medium-replay", "medium-expert")
"""The dataset kinds, in D4RL's names."""

COLLECT_ALGORITHMS = ("sac", "td3")
"""Algorithms whose agents ``collect_datasets`` trains (off-policy: their replay buffer is the
``medium-replay`` dataset)."""

MEDIUM_FRACTION = 1.0 / 3.0
"""Where the medium policy sits between the random (0) and the expert (1) return."""

REFERENCE_EPISODES = 100
"""Episodes of each reference return (random, expert) and of the medium policy's return."""

EVAL_EPISODES = REFERENCE_EPISODES
"""Evaluation episodes per training snapshot: as many as a reference (one compiled evaluation
serves both, and the medium choice is less noisy than with 20; 100 episodes of Pendulum take
about 10 ms)."""

# Fixed sub-keys of the seed: a kind's data does not depend on which other kinds are collected.
_TRAIN, _SNAPSHOT_EVAL, _REFERENCES, _DATA = range(4)


# --- what a training run leaves ------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Snapshot:
    """The policy at one point of training.

    ``policy``: the acting policy (its params are the actor's at that point); ``env_steps``:
    env steps taken so far over all parallel envs, the random prefill included (so the replay
    buffer's first ``env_steps`` rows are the data it had seen); ``eval_return``: mean return of
    the stochastic policy over ``EVAL_EPISODES`` episodes.
    """

    policy: Policy
    env_steps: int
    eval_return: float


@dataclasses.dataclass(frozen=True, eq=False)
class AgentRun:
    """A trained agent and its snapshots (``snapshots[0]`` before the first update, the last
    one the final, expert policy). ``env`` resets automatically (``make(env_id)``); ``raw_env``
    does not (``make(env_id, wrappers=False)``); both share ``env_params``."""

    algorithm: str
    env_id: str
    seed: int
    env: Environment
    raw_env: Environment
    env_params: Any
    train: Train
    state: Any
    snapshots: tuple[Snapshot, ...]

    @property
    def expert(self) -> Snapshot:
        return self.snapshots[-1]

    @functools.cached_property
    def random_policy(self) -> Policy:
        """Uniformly random actions; one object per run, so its rollouts compile once."""
        return random_policy(self.env.action_space(self.env_params))


@dataclasses.dataclass(frozen=True)
class References:
    """The reference returns (undiscounted, per episode) and the medium policy chosen from them.

    ``random_return`` and ``expert_return``: ``R_random`` and ``R_expert``, the 0 and 100 of
    the normalised score; ``medium_snapshot``: index into ``AgentRun.snapshots``;
    ``medium_return``: its mean return re-measured over ``REFERENCE_EPISODES`` episodes.
    """

    random_return: float
    expert_return: float
    medium_snapshot: int
    medium_env_steps: int
    medium_return: float

    @property
    def medium_target(self) -> float:
        """The return the medium policy was chosen to be nearest to."""
        return self.random_return + MEDIUM_FRACTION * (self.expert_return - self.random_return)


# --- checks --------------------------------------------------------------------------------------
def resolve_kinds(kinds: str | Sequence[str]) -> tuple[str, ...]:
    """The requested kinds in ``KINDS`` order, duplicates dropped; ``"all"`` is every kind.
    An unknown kind raises a ``ValueError`` naming it and the accepted ones."""
    requested = [kinds] if isinstance(kinds, str) else list(kinds)
    if not requested:
        raise ValueError(f"No dataset kind given; accepted: {', '.join(KINDS)} or all.")
    for kind in requested:
        if kind != "all" and kind not in KINDS:
            raise ValueError(f"Unknown dataset kind {kind!r}; accepted: {', '.join(KINDS)} "
                             f"or all.")
    if "all" in requested:
        return KINDS
    return tuple(kind for kind in KINDS if kind in requested)


def _episode_limit(env: Environment, env_params: Any) -> int:
    limit = getattr(env_params, "max_steps_in_episode", None)
    if limit is None:
        raise ValueError(f"{env.name}'s params have no max_steps_in_episode, so its episodes "
                         f"have no known length to collect whole episodes of.")
    return int(limit)


def _check_positive_int(name: str, value: Any) -> None:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"{name} must be a positive integer; got {value!r}.")


def _load_collect_algorithm(algo: str):
    if algo not in COLLECT_ALGORITHMS:
        raise ValueError(f"Cannot collect datasets with algorithm {algo!r}; accepted: "
                         f"{', '.join(COLLECT_ALGORITHMS)} (off-policy agents, whose replay "
                         f"buffer is the medium-replay dataset).")
    from jaxrl_suite.run.algorithms import load_algorithm

    return load_algorithm(algo)


def _check_action_space(algo: str, env_id: str, env: Environment, env_params: Any) -> None:
    action_space = env.action_space(env_params)
    if algo == "td3" and not isinstance(action_space, spaces.Box):
        raise ValueError(f"td3 needs a Box (continuous) action space; {env_id} has "
                         f"{action_space}. Use --algo sac, which also handles discrete actions.")


def dataset_name(env_id: str, kind: str) -> str:
    """``<env>-<kind>-v0``: the env's name without its family prefix and ``-vN``, lowercased,
    e.g. ``dataset_name("gymnax/Pendulum-v1", "medium") == "pendulum-medium-v0"``."""
    base = re.sub(r"-v\d+$", "", env_id.rsplit("/", 1)[-1]).lower()
    return f"{base}-{kind}-v0"


# --- training ------------------------------------------------------------------------------------
def _prepare(algo: str, env_id: str, total_steps: int | None
             ) -> tuple[Environment, Environment, Any, Train]:
    """``(env, raw_env, env_params, train)``, everything checked; nothing compiled yet."""
    module = _load_collect_algorithm(algo)
    env, env_params = make(env_id)
    raw_env, _ = make(env_id, wrappers=False)
    _check_action_space(algo, env_id, env, env_params)
    _episode_limit(raw_env, env_params)
    config = module.preset_config(env_id)
    if total_steps is not None:
        _check_positive_int("total_steps", total_steps)
        config = dataclasses.replace(config, total_steps=int(total_steps))
    if config.buffer_size < config.total_steps:  # keep the whole run: medium-replay reads it
        config = dataclasses.replace(config, buffer_size=config.total_steps)
    return env, raw_env, env_params, module.make_train(config, env, env_params)


def _mean_return(policy: Policy, env: Environment, env_params: Any, key: jax.Array,
                 num_episodes: int) -> float:
    result = evaluate(policy, env, env_params, key, num_episodes, deterministic=False)
    return float(np.mean(np.asarray(result["episode_return"], np.float64)))


def train_agent(
    algo: str,
    env_id: str,
    *,
    seed: int = 0,
    total_steps: int | None = None,
    num_snapshots: int = 100,
    progress: Callable[[str], None] | None = None,
) -> AgentRun:
    """Train ``algo`` (sac or td3) on ``env_id`` with its preset, keeping snapshots.

    ``total_steps`` overrides the preset's env steps; the replay buffer is enlarged to hold them
    all so it never wraps (``medium-replay`` reads it from the start). The run is cut into
    ``num_snapshots`` chunks of updates (one compiled loop, whatever the chunk's length); after
    each the stochastic policy is evaluated on ``EVAL_EPISODES`` episodes. ``progress`` receives
    one line per snapshot.
    """
    _check_positive_int("num_snapshots", num_snapshots)
    env, raw_env, env_params, train = _prepare(algo, env_id, total_steps)
    root = jax.random.key(seed)
    train_key, eval_key = jax.random.fold_in(root, _TRAIN), jax.random.fold_in(root, _SNAPSHOT_EVAL)
    state = jax.jit(train.initial_state)(train_key)

    @jax.jit
    def run_updates(state, num_updates):  # a traced count: one compile for every chunk length
        return jax.lax.fori_loop(0, num_updates, lambda _, s: train.update(s)[0], state)

    def snapshot(state, updates_done: int) -> Snapshot:
        policy = train.make_policy(state)
        env_steps = train.env_steps_before_updates + updates_done * train.env_steps_per_update
        eval_return = _mean_return(policy, raw_env, env_params, eval_key, EVAL_EPISODES)
        if progress is not None:
            progress(f"{algo} on {env_id}: {env_steps:,} env steps, eval return "
                     f"{eval_return:.1f}")
        return Snapshot(policy, env_steps, eval_return)

    chunks = min(num_snapshots, train.num_updates)
    boundaries = [round(train.num_updates * (i + 1) / chunks) for i in range(chunks)]
    snapshots = [snapshot(state, 0)]
    done = 0
    for boundary in boundaries:
        state = run_updates(state, jnp.int32(boundary - done))
        done = boundary
        snapshots.append(snapshot(state, done))
    return AgentRun(algo, env_id, seed, env, raw_env, env_params, train, state,
                    tuple(snapshots))


def random_policy(action_space: spaces.Space) -> Policy:
    """A ``Policy`` drawing each action uniformly from ``action_space`` (no params)."""

    def act(params, key, observation, carry, episode_start, deterministic):
        return action_space.sample(key), carry

    return Policy(act, None, None)


def check_references(references: References, algo: str, env_id: str,
                     total_steps: int | None) -> None:
    """Refuse to make datasets whose "expert" is no better than random actions: their
    normalised scores (0 random, 100 expert) would be meaningless, hundreds for any policy."""
    if not references.expert_return > references.random_return:
        budget = "the preset's budget" if total_steps is None else f"{total_steps:,} env steps"
        raise ValueError(
            f"jaxrl collect: the {algo} agent trained on {env_id} for {budget} returns "
            f"{references.expert_return:.1f}, no better than random actions "
            f"({references.random_return:.1f}), so it is no expert and normalised scores "
            f"would mean nothing; nothing was written. Train longer (--total-steps).")


def reference_returns(run: AgentRun, num_episodes: int = REFERENCE_EPISODES) -> References:
    """``R_random`` and ``R_expert`` over ``num_episodes`` episodes each, the medium snapshot
    (eval return nearest to ``R_random + (R_expert - R_random) / 3``; the earliest on a tie) and
    its return re-measured over ``num_episodes`` episodes. Deterministic given ``run.seed``."""
    random_key, expert_key, medium_key = jax.random.split(
        jax.random.fold_in(jax.random.key(run.seed), _REFERENCES), 3)
    env, params = run.raw_env, run.env_params
    random_return = _mean_return(run.random_policy, env, params, random_key, num_episodes)
    expert_return = _mean_return(run.expert.policy, env, params, expert_key, num_episodes)
    target = random_return + MEDIUM_FRACTION * (expert_return - random_return)
    distances = [abs(s.eval_return - target) for s in run.snapshots]
    medium = int(np.argmin(distances))
    medium_return = _mean_return(run.snapshots[medium].policy, env, params, medium_key,
                                 num_episodes)
    return References(random_return, expert_return, medium,
                      run.snapshots[medium].env_steps, medium_return)


# --- datasets ------------------------------------------------------------------------------------
@functools.partial(jax.jit, static_argnums=(1, 4, 5))
def _rollout(policy: Policy, env: Environment, env_params: Any, key: jax.Array,
             num_envs: int, num_steps: int) -> dict[str, jax.Array]:
    """``num_steps`` steps of ``num_envs`` auto-resetting envs; leaves ``(num_envs, num_steps,
    ...)``, each env's steps in order."""
    reset_key, loop_key = jax.random.split(key)
    observation, state = jax.vmap(env.reset, in_axes=(0, None))(
        jax.random.split(reset_key, num_envs), env_params)
    policy_carry = jax.tree.map(
        lambda x: jnp.broadcast_to(x, (num_envs, *jnp.shape(x))), policy.initial_carry)

    def one_env(observation, state, policy_carry, episode_start, key):
        act_key, env_key = jax.random.split(key)
        action, policy_carry = policy.act(policy.params, act_key, observation, policy_carry,
                                          episode_start, False)
        next_observation, state, reward, terminated, truncated, info = env.step(
            env_key, state, action, env_params)
        record = {
            "observations": jnp.asarray(observation, jnp.float32),
            "actions": action,
            "rewards": jnp.asarray(reward, jnp.float32),
            "next_observations": jnp.asarray(info["final_observation"], jnp.float32),
            "terminals": terminated,
            "timeouts": truncated,
        }
        return next_observation, state, policy_carry, terminated | truncated, record

    def step(carry, step_key):
        observation, state, policy_carry, episode_start = carry
        *carry, record = jax.vmap(one_env)(observation, state, policy_carry, episode_start,
                                           jax.random.split(step_key, num_envs))
        return tuple(carry), record

    carry = (observation, state, policy_carry, jnp.ones(num_envs, bool))
    _, records = jax.lax.scan(step, carry, jax.random.split(loop_key, num_steps))
    return jax.tree.map(lambda x: jnp.swapaxes(x, 0, 1), records)


def rollout_dataset(
    policy: Policy,
    env: Environment,
    env_params: Any,
    key: jax.Array,
    num_transitions: int,
    *,
    info: DatasetInfo | None = None,
) -> Dataset:
    """Whole episodes of ``policy``'s sampled (stochastic) actions in ``env``.

    ``ceil(num_transitions / L)`` envs (``L = env_params.max_steps_in_episode``) run ``L`` steps
    each in one jitted, vmapped scan, repeated with new keys until enough episodes ended. Each
    env's episodes are kept contiguous and its unfinished last episode is dropped; the dataset
    is the first whole episodes (in env order) that fit in ``num_transitions``: exactly
    ``num_transitions`` when every episode lasts ``L`` steps and ``L`` divides it, else at most
    ``L - 1`` fewer. ``terminals`` are the env's ``terminated``, ``timeouts`` its ``truncated``
    and ``next_observations`` the true next observation (``info["final_observation"]``).
    ``env`` may be raw or auto-resetting; pass an auto-resetting one (``make(id)``) to compile
    the rollout once across calls.
    """
    env = auto_reset_env(env)
    limit = _episode_limit(env, env_params)
    _check_positive_int("num_transitions", num_transitions)
    if num_transitions < limit:
        raise ValueError(f"num_transitions ({num_transitions}) is below one episode of "
                         f"{env.name} ({limit} steps); ask for at least {limit}.")
    num_envs = math.ceil(num_transitions / limit)
    pieces: list[dict[str, np.ndarray]] = []
    lengths: list[np.ndarray] = []  # episode lengths, in order
    total = 0
    for round_index in itertools.count():
        records = jax.device_get(_rollout(policy, env, env_params,
                                          jax.random.fold_in(key, round_index), num_envs, limit))
        ends = records["terminals"] | records["timeouts"]  # (num_envs, limit)
        last_end = np.where(ends.any(axis=1), limit - 1 - np.argmax(ends[:, ::-1], axis=1), -1)
        whole = np.arange(limit)[None, :] <= last_end[:, None]  # steps of finished episodes
        pieces.append({name: value[whole] for name, value in records.items()})
        round_lengths = np.diff(np.r_[-1, np.flatnonzero(ends[whole])])
        if not round_lengths.size:
            raise ValueError(f"No episode of {env.name} ended within max_steps_in_episode "
                             f"({limit}) steps; it does not truncate at its limit.")
        lengths.append(round_lengths)
        total += int(round_lengths.sum())
        if total >= num_transitions:
            break
    episode_lengths = np.concatenate(lengths)
    keep_episodes = int(np.searchsorted(np.cumsum(episode_lengths), num_transitions,
                                        side="right"))
    size = int(episode_lengths[:keep_episodes].sum())
    arrays = {name: np.concatenate([piece[name] for piece in pieces])[:size]
              for name in pieces[0]}
    episode_ids = np.repeat(np.arange(keep_episodes, dtype=np.int32),
                            episode_lengths[:keep_episodes])
    return make_dataset(episode_ids=episode_ids, info=info, **arrays)


def replay_dataset(
    buffer_state: Any,
    num_envs: int,
    num_transitions: int,
    *,
    info: DatasetInfo | None = None,
) -> Dataset:
    """The first ``num_transitions`` transitions of an off-policy agent's replay buffer.

    ``buffer_state`` is a ``buffers.ReplayBufferState`` that has not wrapped (its rows are in
    insertion order); rows are written one block of ``num_envs`` per vectorised step, so they
    are regrouped env by env, each env's steps in order (its episodes contiguous).
    ``num_transitions`` must be a multiple of ``num_envs``. Episodes end at ``terminated |
    truncated``; an env's last, unfinished episode ends in a ``timeout`` (the stored
    ``next_observation`` is the true next one, so it bootstraps like any truncation).
    """
    _check_positive_int("num_transitions", num_transitions)
    stored = int(buffer_state.size) * num_envs
    if num_transitions % num_envs or num_transitions > stored:
        raise ValueError(f"The replay buffer holds {stored} transitions in blocks of "
                         f"{num_envs}; cannot take the first {num_transitions}.")
    blocks = buffer_state.storage.reward.shape[0] // num_envs
    if int(buffer_state.size) == blocks and int(buffer_state.position) != 0:
        raise ValueError("The replay buffer has wrapped (its oldest rows were overwritten), so "
                         "its rows are no longer in insertion order; make it hold the whole run.")
    steps = num_transitions // num_envs

    def env_major(x):
        x = np.asarray(x[:num_transitions])
        return x.reshape(steps, num_envs, *x.shape[1:]).swapaxes(0, 1).reshape(x.shape)

    storage = jax.tree.map(env_major, jax.device_get(buffer_state.storage))
    timeouts = np.asarray(storage.truncated, bool).copy()
    timeouts[steps - 1::steps] |= ~np.asarray(storage.terminated, bool)[steps - 1::steps]
    return make_dataset(
        observations=storage.observation,
        actions=storage.action,
        rewards=storage.reward,
        next_observations=storage.next_observation,
        terminals=storage.terminated,
        timeouts=timeouts,
        info=info,
    )


def concatenate_datasets(first: Dataset, second: Dataset, *,
                         info: DatasetInfo | None = None) -> Dataset:
    """``first``'s transitions then ``second``'s, with ``second``'s episodes numbered after
    ``first``'s (D4RL's ``medium-expert``)."""
    fields = ("observations", "actions", "rewards", "next_observations", "terminals", "timeouts")
    arrays = {name: np.concatenate([np.asarray(getattr(first, name)),
                                    np.asarray(getattr(second, name))]) for name in fields}
    episode_ids = np.concatenate([np.asarray(first.episode_ids),
                                  np.asarray(second.episode_ids) + first.num_episodes])
    return make_dataset(episode_ids=episode_ids, info=info, **arrays)


def datasets_from_agent(
    run: AgentRun,
    kinds: str | Sequence[str],
    *,
    num_transitions: int = 100_000,
    references: References | None = None,
) -> dict[str, Dataset]:
    """The requested ``kinds`` of dataset from a trained agent, by kind (``KINDS`` order).

    ``references`` default to ``reference_returns(run)``. ``random``, ``medium`` and ``expert``
    hold ``num_transitions`` transitions of whole episodes (``rollout_dataset``);
    ``medium-replay`` as many as the agent had seen at the medium snapshot; ``medium-expert``
    twice ``num_transitions``. Deterministic given ``run.seed``.
    """
    kinds = resolve_kinds(kinds)
    if references is None:
        references = reference_returns(run)
    if "medium-replay" in kinds and references.medium_env_steps == 0:
        raise ValueError("The medium policy is the untrained one, chosen before any env step "
                         "(learning_starts = 0), so medium-replay would be empty.")
    data_key = jax.random.fold_in(jax.random.key(run.seed), _DATA)

    def info(kind: str) -> DatasetInfo:
        return DatasetInfo(
            name=dataset_name(run.env_id, kind), env_id=run.env_id, kind=kind,
            ref_min_score=references.random_return, ref_max_score=references.expert_return,
            algorithm=run.algorithm,
        )

    policies = {
        "random": run.random_policy,
        "medium": run.snapshots[references.medium_snapshot].policy,
        "expert": run.expert.policy,
    }
    to_roll = set(kinds) | ({"medium", "expert"} if "medium-expert" in kinds else set())
    rolled = {
        kind: rollout_dataset(policy, run.env, run.env_params,
                              jax.random.fold_in(data_key, KINDS.index(kind)), num_transitions,
                              info=info(kind))
        for kind, policy in policies.items() if kind in to_roll
    }
    datasets: dict[str, Dataset] = {}
    for kind in kinds:
        if kind in rolled:
            datasets[kind] = rolled[kind]
        elif kind == "medium-replay":
            datasets[kind] = replay_dataset(run.state.experience.buffer,
                                            run.train.config.num_envs,
                                            references.medium_env_steps, info=info(kind))
        else:  # medium-expert
            datasets[kind] = concatenate_datasets(rolled["medium"], rolled["expert"],
                                                  info=info(kind))
    return datasets


def write_datasets(datasets: dict[str, Dataset], out_dir: str | Path, env: Environment,
                   env_params: Any) -> dict[str, Path]:
    """Save each dataset as a Minari folder ``out_dir / info.name`` (an existing one is
    overwritten) with ``env``'s spaces; returns the folders by kind."""
    out_dir = Path(out_dir)
    return {
        kind: save_minari(dataset, out_dir / dataset.info.name,
                          env.observation_space(env_params), env.action_space(env_params))
        for kind, dataset in datasets.items()
    }


def collect_datasets(
    algo: str,
    env_id: str,
    kinds: str | Sequence[str],
    *,
    num_transitions: int = 100_000,
    seed: int = 0,
    total_steps: int | None = None,
    out_dir: str | Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Dataset]:
    """Train ``algo`` on ``env_id`` and make the requested ``kinds`` of dataset (module
    docstring); by kind, in ``KINDS`` order. Written as Minari folders under ``out_dir`` when
    given (``datasets.datasets_dir()`` is where named datasets are looked up).

    Bad input (kind, algorithm, env, a td3 run on discrete actions, ``num_transitions`` below
    one episode, ``total_steps``) raises a ``ValueError`` before anything trains. ``progress``
    receives a line per training snapshot and one for the references.
    """
    kinds = resolve_kinds(kinds)
    env, _, env_params, _ = _prepare(algo, env_id, total_steps)  # checks; nothing trains
    _check_positive_int("num_transitions", num_transitions)
    limit = _episode_limit(env, env_params)
    if num_transitions < limit:
        raise ValueError(f"num_transitions ({num_transitions}) is below one episode of "
                         f"{env_id} ({limit} steps); ask for at least {limit}.")
    run = train_agent(algo, env_id, seed=seed, total_steps=total_steps, progress=progress)
    references = reference_returns(run)
    check_references(references, algo, env_id, total_steps)
    if progress is not None:
        progress(f"references: random {references.random_return:.1f}, expert "
                 f"{references.expert_return:.1f}; medium: the snapshot at "
                 f"{references.medium_env_steps:,} env steps, return "
                 f"{references.medium_return:.1f} (target {references.medium_target:.1f})")
    datasets = datasets_from_agent(run, kinds, num_transitions=num_transitions,
                                   references=references)
    if out_dir is not None:
        write_datasets(datasets, out_dir, env, env_params)
    return datasets
