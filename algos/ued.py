"""Unsupervised Environment Design: DR, PLR, robust PLR, ACCEL and PAIRED, one jitted program.

Read top to bottom: ``Config``, the held-out evaluation, ``make_train`` (level choice, the
student's PPO round, the level sampler's bookkeeping, PAIRED's adversary), the run outputs
(plots, level grid, GIF), ``main``. The method is a setting::

    env, env_params = jaxrl_suite.make("maze")
    train = make_train(Config(method="accel", total_steps=10_000_000), env, env_params)
    result = jax.jit(jax.vmap(train))(jax.random.split(jax.random.key(0), 4))   # 4 seeds

* ``dr``: every rollout on new levels from the env's generator (domain randomisation).
* ``plr``: prioritised level replay (Jiang et al. 2021): with probability
  ``replay_probability`` (once the buffer is ``minimum_fill`` full) the rollout replays levels
  drawn from the ``LevelSampler``, otherwise it plays new levels, which are scored and inserted.
  The student learns from both.
* ``robust_plr`` (PLR-perp, Jiang et al. 2021b): the same, but gradient updates only on replayed
  levels; new levels are only played to be scored.
* ``accel`` (Parker-Holder et al. 2022): robust PLR, and after each replay round the levels just
  replayed are mutated (``num_edits`` edits each); the next round plays the mutants without
  learning, scores them and inserts them.
* ``paired`` (Dennis et al. 2020): an adversary PPO agent builds the levels in the editor env
  (``make_editor``); a protagonist and an antagonist (two students, vmapped together) train on
  them; the adversary's reward, at its last edit, is the regret estimate
  ``max antagonist return - mean protagonist return``, which the antagonist also maximises.

The student is PPO (``algos/ppo.py``'s ``make_learner``, not a copy): by default JaxUED's maze
student, a convolution over the 5x5 view plus a direction embedding, a GRU of 256 and small
heads. Each student round resets ``num_envs`` envs to the chosen levels and rolls out
``num_steps`` steps, replaying a level when its episode ends (``AutoReplay``), so a level's score
covers several episodes. Any ``LevelEnvironment`` works: the maze, or ``ParamLevels`` over
classic control or Brax (with ``encoder="none"``; PAIRED needs the maze's editor).

One logged update is ``eval_interval`` student rounds followed by an evaluation on the held-out
levels (the named 13x13 mazes by default): ``heldout_episodes`` episodes per level with the current
policy, logging the solve rate (fraction of episodes with a positive return) and the return per
level and their means, ``heldout/solve_rate`` and ``heldout/return``. Evaluating every logged
update keeps the jitted program free of a ``cond`` that ``vmap`` over seeds would turn into
running the evaluation every round.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from jaxrl_suite.env.environment import Environment
from jaxrl_suite.env.levels import AutoReplay, LevelEnvironment
from jaxrl_suite.env.wrappers import Wrapper, tree_select
from jaxrl_suite.learn import level_scores
from jaxrl_suite.learn.level_sampler import LevelBufferState, LevelSampler
from jaxrl_suite.run.algorithms import AlgorithmSpec
from jaxrl_suite.run.configs import (
    require_finite_numbers,
    require_non_negative,
    require_positive,
    require_positive_ints,
)
from jaxrl_suite.run.evaluation import Policy
from jaxrl_suite.run.training import Train

from . import ppo

__all__ = ["Config", "Hyperparams", "UEDState", "METHODS", "make_train", "preset_config",
           "held_out_levels", "write_outputs", "main", "ALGORITHM"]

METHODS = ("dr", "plr", "robust_plr", "accel", "paired")
# What a student round played: codes of UEDState.last_kind and the "kind" of a round.
NEW, REPLAY, MUTATE = 0, 1, 2


# --- configuration ------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Config:
    """UED settings. Defaults are JaxUED's maze settings (the DCD papers' 13x13, 25-wall mazes).

    The student's PPO settings are flat fields here (so they are command-line flags) and become a
    ``ppo.Config``; the floats marked *traceable* are fields of ``Hyperparams``.
    """

    method: str = "robust_plr"
    """dr, plr, robust_plr, accel or paired."""
    total_steps: int = 20_000_000
    """Student env steps over the whole run (PAIRED: the protagonist's; the antagonist takes as
    many). Rounded down to whole logged updates."""
    # --- the student (PPO)
    num_envs: int = 32
    """Levels played at once in a student round (one env per level)."""
    num_steps: int = 256
    """Steps per env in a round; a level is replayed when its episode ends."""
    update_epochs: int = 5
    """PPO passes over each round's rollout."""
    num_minibatches: int = 1
    """PPO minibatches per epoch (split over envs: the student is recurrent)."""
    learning_rate: float = 1e-4
    """Student Adam step size (traceable)."""
    anneal_lr: bool = False
    """Decay the student's learning rate linearly to 0 over the run."""
    gamma: float = 0.995
    """Discount (traceable)."""
    gae_lambda: float = 0.98
    """GAE lambda, also used by the level scores (traceable)."""
    clip_epsilon: float = 0.2
    """PPO ratio clip (traceable)."""
    entropy_coef: float = 1e-3
    """Entropy bonus weight (traceable)."""
    value_coef: float = 0.5
    """Value loss weight (traceable)."""
    max_grad_norm: float = 0.5
    """Gradient-norm clip (traceable)."""
    encoder: str = "grid"
    """grid: convolution over the maze's view ("image") plus direction embedding; none: the
    observation itself (array observations, e.g. ParamLevels over classic control)."""
    conv_features: int = 16
    """Convolution channels of the grid encoder."""
    recurrent: bool = True
    """A GRU between the encoder and the policy/value heads (the maze is partially observed)."""
    gru_hidden_size: int = 256
    """GRU width."""
    hidden_sizes: tuple[int, ...] = (32,)
    """Hidden widths of the policy and value heads."""
    activation: str = "relu"
    """Activation of the heads."""
    # --- the level sampler (plr, robust_plr, accel)
    objective: str = "clipped_surrogate"
    """The student's policy objective (``ppo.Config.objective``: clipped_surrogate, dpo, lpo,
    ta_lpo, ...); PAIRED's adversary keeps PPO's."""
    objective_params: str = ""
    """For lpo / ta_lpo: the student's drift network (a ``jaxrl meta lpo`` run folder or an .npz
    file); empty: one initialised at PPO."""
    optimizer_params: str = ""
    """The student's learned optimiser instead of Adam (``ppo.Config.optimizer_params``: a
    ``jaxrl meta open`` run folder or an .npz file); empty: Adam. The adversary keeps Adam."""
    score_function: str = "max_mc"
    """Level score: max_mc, positive_value_loss or mean_absolute_gae."""
    buffer_capacity: int = 4000
    """Levels the sampler keeps."""
    prioritization: str = "rank"
    """rank, topk or proportional."""
    temperature: float = 0.3
    """Temperature of the score prioritisation."""
    topk: int = 4
    """k of topk prioritisation."""
    staleness_coef: float = 0.3
    """Weight of staleness in the replay distribution."""
    replay_probability: float = 0.8
    """Chance a round replays buffered levels (once the buffer is minimum_fill full)."""
    minimum_fill: float = 0.5
    """Fraction of the buffer filled before replay starts."""
    duplicate_check: bool = True
    """A level already buffered updates its slot instead of taking a new one."""
    # --- accel
    num_edits: int = 5
    """Edits per mutation (ACCEL)."""
    # --- paired
    adversary_num_walls: int = 25
    """Walls the PAIRED adversary places (its episode is this + 2 steps: goal, agent)."""
    adversary_learning_rate: float = 1e-4
    """Adversary Adam step size (traceable)."""
    adversary_entropy_coef: float = 1e-3
    """Adversary entropy bonus (traceable)."""
    adversary_hidden_sizes: tuple[int, ...] = (64,)
    """Hidden widths of the adversary's (feed-forward) policy and value heads."""
    # --- held-out evaluation
    eval_interval: int = 25
    """Student rounds per logged update; each logged update ends with a held-out evaluation."""
    heldout_levels: tuple[str, ...] = ()
    """Named held-out levels (default: every named maze level of the env's size)."""
    heldout_episodes: int = 10
    """Episodes per held-out level per evaluation."""
    heldout_deterministic: bool = False
    """Greedy actions in the held-out evaluation (default: sampled, as the DCD papers)."""


@struct.dataclass
class Hyperparams:
    """Traceable hyperparameters: the student's and (PAIRED) the adversary's PPO settings."""

    student: ppo.Hyperparams
    adversary: ppo.Hyperparams


PRESETS: dict[str, dict[str, Any]] = {"maze": {}}  # the defaults are the maze's settings


def student_config(config: Config, *, adversary: bool = False,
                   num_steps: int | None = None) -> ppo.Config:
    """The ``ppo.Config`` of the student (or, ``adversary=True``, of PAIRED's adversary)."""
    common = dict(
        num_envs=config.num_envs, update_epochs=config.update_epochs,
        num_minibatches=config.num_minibatches, gamma=config.gamma,
        gae_lambda=config.gae_lambda, clip_epsilon=config.clip_epsilon,
        value_coef=config.value_coef, max_grad_norm=config.max_grad_norm,
        encoder=config.encoder, conv_features=config.conv_features, activation=config.activation,
    )
    if adversary:
        steps = num_steps or 1
        return ppo.Config(total_steps=config.num_envs * steps, num_steps=steps, anneal_lr=False,
                          learning_rate=config.adversary_learning_rate,
                          entropy_coef=config.adversary_entropy_coef, recurrent=False,
                          hidden_sizes=config.adversary_hidden_sizes, **common)
    # The student's run is the UED run's student rounds, so that with anneal_lr its optimiser
    # decays the rate to 0 over them (counted in gradient steps: robust PLR's and ACCEL's
    # rounds that only score levels do not advance it).
    round_steps = config.num_envs * config.num_steps
    total_rounds = config.total_steps // (config.eval_interval * round_steps) * config.eval_interval
    return ppo.Config(
        objective=config.objective, objective_params=config.objective_params,
        optimizer_params=config.optimizer_params,
        total_steps=max(total_rounds, 1) * round_steps, anneal_lr=config.anneal_lr,
        num_steps=config.num_steps, learning_rate=config.learning_rate,
        entropy_coef=config.entropy_coef, recurrent=config.recurrent,
        gru_hidden_size=config.gru_hidden_size, hidden_sizes=config.hidden_sizes, **common,
    )


def validate(config: Config, env: Environment, env_params: Any) -> None:
    """Raise a ``ValueError`` naming the bad setting (the student's are checked by PPO)."""
    if not isinstance(config, Config):
        raise TypeError(f"config must be a ued.Config; got {type(config).__name__}.")
    require_finite_numbers(config)
    if config.method not in METHODS:
        raise ValueError(f"UED: method must be one of {', '.join(METHODS)}; got "
                         f"{config.method!r}.")
    if config.score_function not in level_scores.SCORE_FUNCTIONS:
        raise ValueError(f"UED: score_function must be one of "
                         f"{', '.join(level_scores.SCORE_FUNCTIONS)}; got "
                         f"{config.score_function!r}.")
    require_positive_ints(config, "total_steps", "num_envs", "num_steps", "buffer_capacity",
                          "eval_interval", "heldout_episodes", "num_edits", "topk")
    # The student's settings (epochs, minibatches, network sizes) by PPO's own checks, here
    # too, so that validate alone refuses what make_train would.
    ppo.validate(student_config(config), env, env_params)
    if not isinstance(config.adversary_num_walls, int) or config.adversary_num_walls < 0:
        raise ValueError(f"adversary_num_walls must be an integer >= 0; got "
                         f"{config.adversary_num_walls!r}.")
    require_positive(config, "adversary_learning_rate")
    level_sampler(config)  # the sampler checks its own settings (prioritization, temperature...)
    require_non_negative(config, "adversary_entropy_coef")
    round_steps = config.eval_interval * config.num_envs * config.num_steps
    if config.total_steps < round_steps:
        raise ValueError(
            f"total_steps ({config.total_steps}) is less than one logged update: eval_interval "
            f"* num_envs * num_steps = {config.eval_interval} * {config.num_envs} * "
            f"{config.num_steps} = {round_steps}. Raise total_steps or lower eval_interval."
        )


def level_sampler(config: Config) -> LevelSampler:
    """The ``LevelSampler`` of ``config``'s buffer settings (it raises on a bad one)."""
    return LevelSampler(
        capacity=config.buffer_capacity, prioritization=config.prioritization,
        temperature=config.temperature, topk=min(config.topk, config.buffer_capacity),
        staleness_coef=config.staleness_coef, replay_probability=config.replay_probability,
        minimum_fill=config.minimum_fill, duplicate_check=config.duplicate_check,
    )


def level_env_of(env: Environment) -> LevelEnvironment:
    """The ``LevelEnvironment`` inside ``env`` (``make(id)`` wraps it in auto-reset and stats)."""
    current = env
    while not isinstance(current, LevelEnvironment):
        if not isinstance(current, Wrapper):
            raise ValueError(
                f"UED needs a level environment (a LevelEnvironment such as the maze, or "
                f"ParamLevels(env, ranges)); {env.name} is not one and wraps none."
            )
        current = current._env
    return current


def held_out_levels(env: LevelEnvironment, names: Sequence[str] = ()) -> tuple[Any, tuple]:
    """``(levels, names)``: the named held-out maze levels (stacked), by default every named
    level of the maze's size; ``(None, ())`` for an env without named levels."""
    from jaxrl_suite.envs.maze import Maze, load_level, named_level_names, stack_levels

    if not isinstance(env, Maze):
        if names:
            raise ValueError(f"UED: heldout_levels names maze levels; {env.name} is not a maze. "
                             f"Pass eval_levels= (a stacked level pytree) to make_train.")
        return None, ()
    if not names:
        names = tuple(name for name in named_level_names()
                      if load_level(name).shape == (env.height, env.width))
        if not names:
            return None, ()
    levels = [load_level(name) for name in names]
    for name, level in zip(names, levels):
        if level.shape != (env.height, env.width):
            raise ValueError(f"UED: held-out level {name!r} is {level.shape[0]}x"
                             f"{level.shape[1]}; the maze is {env.height}x{env.width}.")
    return stack_levels(levels), tuple(names)


# --- training state -----------------------------------------------------------------------------
@struct.dataclass
class UEDState:
    """Everything a run needs to continue (what a checkpoint saves).

    ``params``/``opt_state``: the student's (PAIRED: protagonist and antagonist stacked on a
    leading axis of 2). ``buffer``: the level sampler's (``None`` for dr and paired).
    ``last_levels``/``last_kind``/``last_indices``: the levels of the last round, whether they
    were new, replayed or mutated, and their buffer slots (-1 when not replayed); ACCEL mutates
    ``last_levels`` after a replay round. ``env_state``: the student envs after the last round.
    """

    params: Any
    opt_state: Any
    buffer: LevelBufferState | None
    last_levels: Any
    last_kind: jax.Array
    last_indices: jax.Array
    env_state: Any
    adversary_params: Any
    adversary_opt_state: Any
    key: jax.Array
    update_step: jax.Array  # student rounds done
    hparams: Hyperparams


@dataclasses.dataclass(frozen=True, eq=False)
class UEDTrain(Train):
    """``Train`` plus ``ued``: the pieces the run's outputs and tests use (the level env and its
    params, the PPO learner, the sampler, the held-out levels and names, ``student_round``,
    ``evaluate_held_out(params, key)`` and ``protagonist_params(state)``)."""

    ued: dict[str, Any] = dataclasses.field(default_factory=dict)


def policy_params(network_params: Any) -> dict[str, Any]:
    """The params ``ppo``'s ``act`` takes: the network's, and no observation statistics (the
    UED student does not normalise observations)."""
    return {"network": network_params, "observation_stats": None}


def _nan_like(tree: Any) -> Any:
    return jax.tree.map(lambda s: jnp.full(s.shape, jnp.nan, s.dtype), tree)


# --- make_train ---------------------------------------------------------------------------------
def make_train(
    config: Config,
    env: Environment,
    env_params: Any,
    *,
    eval_levels: Any = None,
    eval_level_names: Sequence[str] | None = None,
    policy_objective: ppo.PolicyObjective | None = None,
    loss_assembly: ppo.LossAssembly | None = None,
    optimizer: Any = None,
) -> Train:
    """Build the UED run for a level env. Returns ``Train``: ``train(key, hparams=None)``.

    Args:
      config: ``Config``; checked here, before anything is traced.
      env: a ``LevelEnvironment`` or a wrapper stack around one (``make("maze")``).
      env_params: its params.
      eval_levels: held-out levels, a stacked level pytree (default: ``config.heldout_levels``, or
        every named maze level of the env's size; none for other envs).
      eval_level_names: names for ``eval_levels`` in the metrics (default ``level0``, ...).
      policy_objective, loss_assembly, optimizer: the student's, as ``ppo.make_learner``
        takes them (a learned objective or optimiser trained inside the UED loop; its
        parameters in ``hparams.student.meta``). PAIRED's adversary keeps PPO's own.
    """
    validate(config, env, env_params)
    level_env = level_env_of(env)
    env_params = level_env.resolve_params(env_params)
    method = config.method
    if eval_levels is None:
        eval_levels, eval_level_names = held_out_levels(level_env, config.heldout_levels)
    elif eval_level_names is None:
        eval_level_names = tuple(f"level{i}"
                                 for i in range(jax.tree.leaves(eval_levels)[0].shape[0]))
    eval_level_names = tuple(eval_level_names or ())

    student_env = AutoReplay(level_env)
    learner = ppo.make_learner(student_config(config), student_env, env_params,
                               policy_objective=policy_objective, loss_assembly=loss_assembly,
                               optimizer=optimizer)
    student_env = learner.env
    num_envs, num_steps = config.num_envs, config.num_steps
    rounds = config.eval_interval
    num_updates = config.total_steps // (rounds * num_envs * num_steps)
    total_rounds = num_updates * rounds
    score_level = level_scores.SCORE_FUNCTIONS[config.score_function]
    sampler = level_sampler(config)
    uses_buffer = method in ("plr", "robust_plr", "accel")
    learns_only_on_replay = method in ("robust_plr", "accel")

    sample_levels = jax.vmap(level_env.sample_level, in_axes=(0, None))
    mutate_levels = jax.vmap(level_env.mutate_level, in_axes=(0, 0, None, None))
    reset_to_levels = jax.vmap(student_env.reset_to_level, in_axes=(0, 0, None))

    if method == "paired":
        from jaxrl_suite.envs.maze import Maze, make_editor

        if not isinstance(level_env, Maze):
            raise ValueError(f"UED: paired builds levels with the maze editor; {level_env.name} "
                             f"is not a maze. Use dr, plr, robust_plr or accel.")
        episode_limit = int(env_params.max_steps_in_episode)
        if config.num_steps < episode_limit:
            raise ValueError(
                f"UED: paired's regret compares the students' finished episodes, so num_steps "
                f"({config.num_steps}) must be at least the episode limit max_steps_in_episode "
                f"({episode_limit}); otherwise a level nobody solves gives no episode at all.")
        editor = make_editor(level_env, config.adversary_num_walls)
        editor_params = editor.default_params
        adversary = ppo.make_learner(
            student_config(config, adversary=True, num_steps=editor.num_steps), editor,
            editor_params)
    else:
        editor = adversary = None

    # --- one student round: reset to the levels, roll out, score, learn
    def play(params, levels, key, hparams):
        """Roll out ``params`` on ``levels`` (one per env). Returns the rollout, the values,
        advantages and targets, the initial carry and the final carry."""
        reset_key, env_key, noise_key = jax.random.split(key, 3)
        observation, env_state = reset_to_levels(
            jax.random.split(reset_key, num_envs), levels, env_params)
        carry = learner.initial_carry(observation, env_state)
        final_carry, trajectory = learner.rollout(params, carry, env_key, noise_key)
        values, advantages, targets = learner.assess(params, trajectory, hparams)
        return trajectory, values, advantages, targets, carry, final_carry

    def learn(params, opt_state, hparams, played, key, update_step):
        trajectory, values, advantages, targets, carry, _ = played
        return learner.learn(params, opt_state, hparams, trajectory, values, advantages, targets,
                             carry[3], key, update_step / total_rounds)

    def round_metrics(trajectory, scores, levels):
        """The round's training episodes (those finished in it; a level solved quickly counts
        many times, so this solve rate is far above a per-level one), scores and levels."""
        returned = trajectory.returned_episode
        finished = returned.sum()
        metrics = {
            "episode_return": jnp.where(finished > 0, (trajectory.episode_return * returned).sum()
                                        / jnp.maximum(finished, 1), jnp.nan),
            "solve_rate": jnp.where(finished > 0, ((trajectory.episode_return > 0) & returned)
                                    .sum() / jnp.maximum(finished, 1), jnp.nan),
            "level_score": scores.mean(),
        }
        if hasattr(levels, "wall_map"):
            metrics["level_num_walls"] = levels.wall_map.sum(axis=(-2, -1)).mean()
        return metrics

    def plr_round(state: UEDState):
        hparams = state.hparams.student
        key, level_key, replay_key, sample_key, mutate_key, play_key, learn_key = (
            jax.random.split(state.key, 7))
        new_levels = sample_levels(jax.random.split(level_key, num_envs), env_params)
        buffer, indices = state.buffer, jnp.full(num_envs, -1, jnp.int32)
        if uses_buffer:
            replay = sampler.should_replay(replay_key, buffer)
            # Sampled every round and kept only on replay: under vmap over seeds a cond would
            # compute both sides anyway, and sampling is cheap next to the rollout.
            sampled_buffer, sampled = sampler.sample_replay_indices(sample_key, buffer, num_envs)
            if method == "accel":
                kind = jnp.where(state.last_kind == REPLAY, MUTATE,
                                 jnp.where(replay, REPLAY, NEW))
                mutants = mutate_levels(jax.random.split(mutate_key, num_envs),
                                        state.last_levels, config.num_edits, env_params)
                new_levels = tree_select(kind == MUTATE, mutants, new_levels)
            else:
                kind = jnp.where(replay, REPLAY, NEW)
            replaying = kind == REPLAY
            levels = tree_select(replaying, sampler.get_levels(buffer, sampled), new_levels)
            buffer = tree_select(replaying, sampled_buffer, buffer)
            indices = jnp.where(replaying, sampled, indices)
        else:
            kind, levels = jnp.int32(NEW), new_levels
        played = play(state.params, levels, play_key, hparams)
        trajectory, values, advantages, _, _, final_carry = played
        dones = trajectory.terminated | trajectory.truncated
        # The highest return ever achieved on each level (robust PLR's MaxMC): this rollout's,
        # and on replay also the one its buffer slot remembers.
        max_returns = level_scores.episode_returns_max(trajectory.reward, dones)
        if uses_buffer:
            remembered = sampler.get_extra(buffer, jnp.maximum(indices, 0))["max_return"]
            max_returns = jnp.where(kind == REPLAY, jnp.maximum(max_returns, remembered),
                                    max_returns)
        scores = score_level(level_scores.LevelRollout(
            advantages, values, trajectory.reward, dones, max_returns))
        if uses_buffer:
            buffer = jax.lax.cond(
                kind == REPLAY,
                lambda b: sampler.update_extra(sampler.update_scores(b, indices, scores),
                                               indices, {"max_return": max_returns}, "max"),
                lambda b: sampler.insert_batch(b, levels, scores,
                                               {"max_return": max_returns})[0],
                buffer,
            )

        def do_learn(_):
            return learn(state.params, state.opt_state, hparams, played, learn_key,
                         state.update_step)

        def skip_learn(_):
            shapes = jax.eval_shape(do_learn, None)
            return state.params, state.opt_state, _nan_like(shapes[2])

        if learns_only_on_replay:
            params, opt_state, losses = jax.lax.cond(kind == REPLAY, do_learn, skip_learn, None)
        else:
            params, opt_state, losses = do_learn(None)
        metrics = {
            **round_metrics(trajectory, scores, levels),
            "replay_fraction": (kind == REPLAY).astype(jnp.float32),
            # 0 on the rounds that skip learning, whose losses are NaN (see run/divergence.py)
            "learned": ((kind == REPLAY) if learns_only_on_replay
                        else jnp.bool_(True)).astype(jnp.float32),
            "mutate_fraction": (kind == MUTATE).astype(jnp.float32),
            **jax.tree.map(jnp.mean, losses),
        }
        if uses_buffer:
            metrics["buffer_size"] = buffer.size.astype(jnp.float32)
            metrics["buffer_mean_score"] = (
                jnp.where(buffer.filled, buffer.scores, 0.0).sum() / jnp.maximum(buffer.size, 1))
        state = state.replace(
            params=params, opt_state=opt_state, buffer=buffer, last_levels=levels,
            last_kind=kind.astype(jnp.int32), last_indices=indices, env_state=final_carry[0],
            key=key, update_step=state.update_step + 1,
        )
        return state, metrics

    # --- PAIRED: the adversary builds levels, two students play them
    def adversary_input(observation):
        """The editor's observation for the adversary's network: the image plus a plane holding
        the step's fraction of the episode (the convolution sees how far the build is)."""
        image = observation["image"].astype(jnp.float32)
        time = observation["time"].astype(jnp.float32) / editor.num_steps
        plane = jnp.broadcast_to(time[..., None, None, None], (*image.shape[:-1], 1))
        return {"image": jnp.concatenate([image, plane], axis=-1)}

    def build_levels(adversary_params, key):
        """One editor episode per env: ``(levels, trajectory)``, the trajectory a
        ``ppo.RolloutStep`` stack ``(editor.num_steps, num_envs)`` with zero rewards."""
        reset_key, step_key, noise_key = jax.random.split(key, 3)
        observation, editor_state = jax.vmap(editor.reset_env, in_axes=(0, None))(
            jax.random.split(reset_key, num_envs), editor_params)
        steps = editor.num_steps
        randomness = (jax.random.split(step_key, (steps, num_envs)),
                      adversary.networks.head.sampling_noise(noise_key, (steps, num_envs)))

        def edit(carry, step):
            editor_state, observation = carry
            step_keys, noise = step
            features = adversary.networks.encode(adversary_params, adversary_input(observation))
            distribution = adversary.networks.distribution(adversary_params, features)
            action = adversary.networks.head.sample_from_noise(distribution, noise)
            next_observation, editor_state, _, terminated, _, _ = jax.vmap(
                editor.step_env, in_axes=(0, 0, 0, None))(step_keys, editor_state, action,
                                                          editor_params)
            zeros = jnp.zeros(num_envs, jnp.float32)
            rollout_step = ppo.RolloutStep(
                adversary_input(observation), observation["time"] == 0, action,
                distribution.log_prob(action), None, None, adversary_input(next_observation),
                zeros, terminated, jnp.zeros(num_envs, bool), zeros, zeros,
                jnp.zeros(num_envs, bool),
            )
            return (editor_state, next_observation), rollout_step

        (editor_state, _), trajectory = jax.lax.scan(edit, (editor_state, observation),
                                                     randomness)
        return jax.vmap(editor.level)(editor_state), trajectory

    def paired_round(state: UEDState):
        hparams = state.hparams
        key, build_key, play_key, learn_key, adversary_key = jax.random.split(state.key, 5)
        levels, adversary_trajectory = build_levels(state.adversary_params, build_key)
        play_keys = jax.random.split(play_key, 2)  # protagonist, antagonist
        played = jax.vmap(play, in_axes=(0, None, 0, None))(state.params, levels, play_keys,
                                                           hparams.student)
        trajectory = played[0]
        mean_return, max_return, _ = jax.vmap(level_scores.completed_episode_returns)(
            trajectory.episode_return, trajectory.returned_episode)
        regret = level_scores.paired_regret(mean_return[0], max_return[1])
        # The antagonist maximises the regret, the protagonist minimises it: each maximises its
        # own return, which is what PPO on the shared levels does.
        params, opt_state, losses = jax.vmap(learn, in_axes=(0, 0, None, 0, 0, None))(
            state.params, state.opt_state, hparams.student, played,
            jax.random.split(learn_key, 2), state.update_step)
        reward = jnp.zeros_like(adversary_trajectory.reward).at[-1].set(regret)
        adversary_trajectory = adversary_trajectory.replace(reward=reward)
        adv_values, adv_advantages, adv_targets = adversary.assess(
            state.adversary_params, adversary_trajectory, hparams.adversary)
        adversary_params, adversary_opt_state, adversary_losses = adversary.learn(
            state.adversary_params, state.adversary_opt_state, hparams.adversary,
            adversary_trajectory, adv_values, adv_advantages, adv_targets, None,
            adversary_key, state.update_step / total_rounds)
        protagonist = jax.tree.map(lambda x: x[0], trajectory)
        metrics = {
            **round_metrics(protagonist, regret, levels),
            "regret": regret.mean(),
            "antagonist_return": jnp.nanmean(jnp.where(
                trajectory.returned_episode[1], trajectory.episode_return[1], jnp.nan)),
            **jax.tree.map(lambda x: jnp.mean(x[0]), losses),
            "adversary_entropy": adversary_losses["entropy"].mean(),
            "adversary_value_loss": adversary_losses["value_loss"].mean(),
        }
        state = state.replace(
            params=params, opt_state=opt_state, last_levels=levels,
            env_state=played[5][0], adversary_params=adversary_params,
            adversary_opt_state=adversary_opt_state, key=key,
            update_step=state.update_step + 1,
        )
        return state, metrics

    student_round = paired_round if method == "paired" else plr_round

    # --- held-out evaluation
    def evaluate_held_out(params, key):
        """Solve rate and return per held-out level, ``heldout_episodes`` episodes each."""
        num_levels = len(eval_level_names)
        episodes = config.heldout_episodes
        levels = jax.tree.map(lambda x: jnp.repeat(x, episodes, axis=0), eval_levels)
        count = num_levels * episodes
        reset_key, steps_key = jax.random.split(key)
        observation, env_state = jax.vmap(level_env.reset_to_level, in_axes=(0, 0, None))(
            jax.random.split(reset_key, count), levels, env_params)
        hidden = jnp.zeros((count, learner.hidden_width), jnp.float32)
        step = jax.vmap(level_env.step_env, in_axes=(0, 0, 0, None))

        def one_step(carry, step_key):
            env_state, observation, hidden, episode_return, running, first = carry
            action_key, env_key = jax.random.split(step_key)
            action, hidden = learner.act(policy_params(params), action_key, observation, hidden,
                                         jnp.full(count, first), config.heldout_deterministic)
            observation, env_state, reward, terminated, truncated, _ = step(
                jax.random.split(env_key, count), env_state, action, env_params)
            episode_return = episode_return + jnp.where(running, reward, 0.0)
            running = running & ~(terminated | truncated)
            return (env_state, observation, hidden, episode_return, running, False), None

        limit = int(env_params.max_steps_in_episode)
        start = (env_state, observation, hidden, jnp.zeros(count), jnp.ones(count, bool), True)
        (_, _, _, episode_return, _, _), _ = jax.lax.scan(
            one_step, start, jax.random.split(steps_key, limit))
        episode_return = episode_return.reshape(num_levels, episodes)
        solve_rate = (episode_return > 0).mean(axis=1)
        mean_return = episode_return.mean(axis=1)
        metrics = {"heldout/solve_rate": solve_rate.mean(), "heldout/return": mean_return.mean()}
        for index, name in enumerate(eval_level_names):
            metrics[f"heldout/solve_rate/{name}"] = solve_rate[index]
            metrics[f"heldout/return/{name}"] = mean_return[index]
        return metrics

    if eval_level_names and getattr(env_params, "max_steps_in_episode", None) is None:
        raise ValueError(f"UED: held-out evaluation needs max_steps_in_episode in "
                         f"{level_env.name}'s params.")

    # --- init and the logged update
    def init(key: jax.Array, hparams: Hyperparams) -> UEDState:
        network_key, level_key, reset_key, adversary_key, key = jax.random.split(key, 5)
        levels = sample_levels(jax.random.split(level_key, num_envs), env_params)
        observation, env_state = reset_to_levels(jax.random.split(reset_key, num_envs), levels,
                                                 env_params)
        if method == "paired":
            params = jax.vmap(learner.init_params, in_axes=(0, None))(
                jax.random.split(network_key, 2), observation)
            opt_state = jax.vmap(learner.init_optimizer, in_axes=(0, None))(params,
                                                                            hparams.student)
            env_state = jax.tree.map(lambda x: jnp.stack([x, x]), env_state)
            editor_observation, _ = jax.vmap(editor.reset_env, in_axes=(0, None))(
                jax.random.split(adversary_key, num_envs), editor_params)
            adversary_params = adversary.init_params(adversary_key,
                                                     adversary_input(editor_observation))
            adversary_opt_state = adversary.init_optimizer(adversary_params, hparams.adversary)
        else:
            params = learner.init_params(network_key, observation)
            opt_state = learner.init_optimizer(params, hparams.student)
            adversary_params = adversary_opt_state = None
        example_level = jax.tree.map(lambda x: x[0], levels)
        return UEDState(
            params=params, opt_state=opt_state,
            buffer=(sampler.initialize(example_level, {"max_return": jnp.float32(-jnp.inf)})
                    if uses_buffer else None),
            last_levels=levels, last_kind=jnp.int32(NEW),
            last_indices=jnp.full(num_envs, -1, jnp.int32), env_state=env_state,
            adversary_params=adversary_params, adversary_opt_state=adversary_opt_state,
            key=key, update_step=jnp.int32(0), hparams=hparams,
        )

    def update(state: UEDState) -> tuple[UEDState, dict[str, jax.Array]]:
        state, round_metrics_ = jax.lax.scan(lambda s, _: student_round(s), state, None, rounds)
        metrics = {name: jnp.nanmean(values) for name, values in round_metrics_.items()}
        metrics["env_steps"] = state.update_step * (num_envs * num_steps)
        if eval_level_names:
            eval_key, key = jax.random.split(state.key)
            metrics.update(evaluate_held_out(protagonist_params(state), eval_key))
            state = state.replace(key=key)
        return state, metrics

    def protagonist_params(state: UEDState) -> Any:
        return jax.tree.map(lambda x: x[0], state.params) if method == "paired" else state.params

    def make_policy(state: UEDState) -> Policy:
        carry = jnp.zeros(learner.hidden_width, jnp.float32) if config.recurrent else None
        return Policy(learner.act, policy_params(protagonist_params(state)), carry)

    default_hparams = Hyperparams(
        student=ppo.default_hyperparams(student_config(config)),  # a learned objective's too
        adversary=ppo.Hyperparams.from_config(student_config(config, adversary=True)),
    )
    return UEDTrain(
        init=init,
        update=update,
        num_updates=num_updates,
        env_steps_per_update=rounds * num_envs * num_steps,
        default_hparams=default_hparams,
        make_policy=make_policy,
        config=config,
        ued=dict(
            level_env=level_env, env_params=env_params, learner=learner, sampler=sampler,
            eval_levels=eval_levels, eval_level_names=eval_level_names,
            protagonist_params=protagonist_params, evaluate_held_out=evaluate_held_out,
            student_round=student_round,
        ),
    )


# --- run outputs: solve-rate plot, buffer levels, a GIF of the agent ---------------------------
def plot_solve_rate(run_dirs: dict[str, Path] | Path, out: Path) -> Path | None:
    """Held-out mean solve rate against student env steps (mean and range over seeds), one line
    per run: ``run_dirs`` maps a label (e.g. the method) to a run folder."""
    import csv

    from matplotlib.figure import Figure

    if isinstance(run_dirs, (str, Path)):
        run_dirs = {"": Path(run_dirs)}
    figure = Figure(figsize=(6, 4))
    axis = figure.subplots()
    drawn = False
    for label, run_dir in run_dirs.items():
        path = Path(run_dir) / "metrics.csv"
        if not path.exists():
            continue
        with path.open(newline="") as file:
            rows = [row for row in csv.DictReader(file) if "heldout/solve_rate" in row]
        if not rows:
            continue
        by_step: dict[float, list[float]] = {}
        for row in rows:
            by_step.setdefault(float(row["env_steps"]), []).append(
                float(row["heldout/solve_rate"]))
        steps = np.array(sorted(by_step))
        values = [np.asarray(by_step[s]) for s in steps]
        mean = np.array([v.mean() for v in values])
        axis.plot(steps, mean, label=label or None)
        axis.fill_between(steps, [v.min() for v in values], [v.max() for v in values], alpha=0.2)
        drawn = True
    if not drawn:
        return None
    axis.set_xlabel("student env steps")
    axis.set_ylabel("held-out solve rate (mean of levels)")
    axis.set_ylim(0, 1)
    axis.grid(alpha=0.3)
    if any(run_dirs):
        axis.legend(loc="upper left")
    figure.tight_layout()
    figure.savefig(out, dpi=100)
    return Path(out)


def top_buffer_levels(buffer: LevelBufferState, count: int) -> tuple[Any, np.ndarray]:
    """The ``count`` highest-scoring filled levels of one (unbatched) buffer and their scores."""
    scores = np.where(np.asarray(buffer.filled), np.asarray(buffer.scores), -np.inf)
    order = np.argsort(-scores, kind="stable")[: min(count, int(np.asarray(buffer.filled).sum()))]
    return jax.tree.map(lambda x: np.asarray(x)[order], buffer.levels), scores[order]


def agent_frames(train: Train, state: UEDState, level: Any, key: jax.Array,
                 num_steps: int | None = None, tile_size: int = 16) -> jax.Array:
    """uint8 frames ``(T + 1, H, W, 3)`` of the (protagonist) student of one (unbatched) state
    playing a maze ``level``, the episode replayed when it ends."""
    from jaxrl_suite.envs.maze import render_state

    parts = train.ued
    level_env, env_params, learner = parts["level_env"], parts["env_params"], parts["learner"]
    config = train.config
    params = parts["protagonist_params"](state)
    num_steps = int(num_steps or env_params.max_steps_in_episode)
    replay = AutoReplay(level_env)

    @jax.jit
    def frames(params, level, key):
        reset_key, steps_key = jax.random.split(key)
        observation, env_state = replay.reset_to_level(reset_key, level, env_params)
        hidden = jnp.zeros(learner.hidden_width, jnp.float32)

        def one_step(carry, step_key):
            env_state, observation, hidden, start = carry
            action_key, env_key = jax.random.split(step_key)
            action, hidden = learner.act(policy_params(params), action_key, observation, hidden,
                                         start, config.heldout_deterministic)
            observation, env_state, _, terminated, truncated, _ = replay.step_env(
                env_key, env_state, action, env_params)
            frame = render_state(level_env, env_state, tile_size)
            return (env_state, observation, hidden, terminated | truncated), frame

        first = render_state(level_env, env_state, tile_size)
        _, rest = jax.lax.scan(one_step, (env_state, observation, hidden, jnp.bool_(True)),
                               jax.random.split(steps_key, num_steps))
        return jnp.concatenate([first[None], rest])

    return frames(params, level, key)


def write_outputs(run_dir: Path, train: Train, states: UEDState) -> list[Path]:
    """A run's UED pictures, from its seed-batched final ``states``: ``heldout_solve_rate.png``,
    ``buffer_top_levels.png`` (seed 0's 16 highest-scoring buffered levels; PAIRED: the last
    levels its adversary built) and ``heldout_rollout.gif`` (seed 0 on the first held-out
    level). Mazes only for the pictures of levels."""
    from jaxrl_suite.envs.maze import Maze, render_level_grid, save_gif, save_png

    run_dir = Path(run_dir)
    written = []
    plotted = plot_solve_rate(run_dir, run_dir / "heldout_solve_rate.png")
    if plotted is not None:
        written.append(plotted)
    if not isinstance(train.ued["level_env"], Maze):
        return written
    state = jax.tree.map(lambda x: x[0], states)
    if state.buffer is not None and bool(np.asarray(state.buffer.filled).any()):
        levels, _ = top_buffer_levels(state.buffer, 16)
    else:
        levels = jax.tree.map(lambda x: np.asarray(x)[:16], state.last_levels)
    written.append(Path(save_png(render_level_grid(levels, columns=4),
                                 run_dir / "buffer_top_levels.png")))
    if train.ued["eval_level_names"]:
        level = jax.tree.map(lambda x: x[0], train.ued["eval_levels"])
        frames = agent_frames(train, state, level, jax.random.key(0))
        written.append(Path(save_gif(np.asarray(frames), run_dir / "heldout_rollout.gif")))
    return written


# --- the algorithm's description: presets and the command line come from it -------------------
# The defaults are the maze's (JaxUED's) settings; other level envs take the same defaults (set
# encoder="none" for array observations).
ALGORITHM = AlgorithmSpec(
    name="ued", display_name="UED", config=Config, hyperparams=Hyperparams,
    make_train=make_train, presets=PRESETS, default_env="maze", write_outputs=write_outputs,
    description=__doc__.strip().splitlines()[0],
    measured_presets={"maze": "benchmarks/ued_maze.py"},
)
preset_config = ALGORITHM.preset_config  # (env_id_or_preset, **overrides) -> Config
main = ALGORITHM.main  # `python algos/ued.py --method accel --env maze`


if __name__ == "__main__":
    sys.exit(main())
