"""UED (algos/ued.py): replay replays, ACCEL's mutants enter the buffer, PAIRED's regret, a small
learning test, vmap over seeds, truncation bootstrapping, the CLI and errors.

Everything runs on 7x7 mazes with tiny networks; the compiled rounds are shared through
module-level caches so the file stays within CI's time budget.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl_suite.algos import ued
from jaxrl_suite.env.levels import ParamLevels
from jaxrl_suite.envs.maze import (
    Maze,
    is_valid_level,
    level_from_text,
    stack_levels,
)
from jaxrl_suite.learn import level_scores

MAZE = Maze(size=7)
MAZE_PARAMS = MAZE.default_params.replace(num_walls=5, max_steps_in_episode=50)
# An open room, the goal out of the agent's first view: a random policy solves it about 6% of
# the time within 50 steps (measured over 1000 episodes).
HELD_OUT = level_from_text(".......\n.G.....\n.......\n.......\n.......\n....<..\n.......")
TINY = dict(num_envs=8, num_steps=32, eval_interval=1, buffer_capacity=32, gru_hidden_size=16,
            hidden_sizes=(16,), conv_features=4, heldout_episodes=2, update_epochs=1,
            adversary_num_walls=3, adversary_hidden_sizes=(16,))


def tiny_config(**overrides) -> ued.Config:
    settings = {**TINY, **overrides}
    settings.setdefault("total_steps", settings["num_envs"] * settings["num_steps"] * 2)
    return ued.Config(**settings)


@functools.cache
def tiny_train(method: str, **overrides) -> ued.UEDTrain:
    return ued.make_train(tiny_config(method=method, **overrides), MAZE, MAZE_PARAMS,
                          eval_levels=stack_levels([HELD_OUT]), eval_level_names=["room"])


@functools.cache
def jitted_round(method: str, **overrides):
    return jax.jit(tiny_train(method, **overrides).ued["student_round"])


def initial_state(train: ued.UEDTrain, seed: int = 0) -> ued.UEDState:
    return jax.jit(train.init)(jax.random.key(seed), train.default_hparams)


def prefilled(train: ued.UEDTrain, state: ued.UEDState, count: int) -> ued.UEDState:
    """The state with ``count`` distinct generated levels in its buffer, scored 1..count."""
    sampler = train.ued["sampler"]
    levels = jax.vmap(MAZE.sample_level, in_axes=(0, None))(
        jax.random.split(jax.random.key(7), count), MAZE_PARAMS)
    buffer, _ = sampler.insert_batch(state.buffer, levels, jnp.arange(1.0, count + 1.0))
    return state.replace(buffer=buffer)


def take(tree, index: int):
    """Entry ``index`` of every leaf's leading axis."""
    return jax.tree.map(lambda x: x[index], tree)


def levels_equal(a, b) -> np.ndarray:
    """Per level of two stacked level pytrees: every leaf equal."""
    same = [np.asarray(x == y).reshape(x.shape[0], -1).all(axis=1)
            for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b))]
    return np.all(same, axis=0)


def played_levels(train: ued.UEDTrain, state: ued.UEDState):
    """The levels the student envs were playing at the end of the last round."""
    return jax.vmap(train.ued["learner"].env.level_of)(state.env_state)


@pytest.mark.slow
# --- the level sampler inside the algorithm ------------------------------------------------------
def test_replay_trains_on_the_levels_the_sampler_drew():
    train = tiny_train("robust_plr", replay_probability=1.0, minimum_fill=0.25)
    state = prefilled(train, initial_state(train), 16)
    before = state.params
    state, metrics = jitted_round("robust_plr", replay_probability=1.0, minimum_fill=0.25)(state)
    assert int(state.last_kind) == ued.REPLAY
    indices = np.asarray(state.last_indices)
    assert (indices >= 0).all() and (indices < 16).all()
    sampled = jax.tree.map(lambda x: x[indices], state.buffer.levels)
    assert levels_equal(state.last_levels, sampled).all()
    # The envs really played them (the level is kept in the env state, replayed on episode end).
    assert levels_equal(played_levels(train, state), sampled).all()
    # Their scores were refreshed by this round, and the student learned (robust PLR: replay).
    stamps = np.asarray(state.buffer.timestamps)[indices]
    assert (stamps == int(state.buffer.clock)).all()
    changed = jax.tree.map(lambda a, b: bool(jnp.any(a != b)), before, state.params)
    assert any(jax.tree.leaves(changed))
    assert float(metrics["replay_fraction"]) == 1.0


@pytest.mark.slow
def test_robust_plr_only_scores_new_levels_without_learning():
    # The replay test's config (its compiled round is shared): from an empty buffer, below
    # minimum_fill, the round plays new levels.
    overrides = dict(replay_probability=1.0, minimum_fill=0.25)
    train = tiny_train("robust_plr", **overrides)
    state = initial_state(train)
    assert int(state.buffer.size) == 0
    new_state, metrics = jitted_round("robust_plr", **overrides)(state)
    assert int(new_state.last_kind) == ued.NEW
    assert int(new_state.buffer.size) == TINY["num_envs"]  # every new level scored and buffered
    sampler = train.ued["sampler"]
    for index in range(TINY["num_envs"]):
        level = take(new_state.last_levels, index)
        found, _ = sampler.find(new_state.buffer, level)
        assert bool(found)
    same = jax.tree.map(lambda a, b: bool(jnp.all(a == b)), state.params, new_state.params)
    assert all(jax.tree.leaves(same))  # no gradient step on new levels
    assert np.isnan(float(metrics["policy_loss"]))


@pytest.mark.slow
def test_plr_learns_from_new_levels_too():
    train = tiny_train("plr", replay_probability=0.0)
    state = initial_state(train)
    new_state, _ = jitted_round("plr", replay_probability=0.0)(state)
    assert int(new_state.last_kind) == ued.NEW
    changed = jax.tree.map(lambda a, b: bool(jnp.any(a != b)), state.params, new_state.params)
    assert any(jax.tree.leaves(changed))


@pytest.mark.slow
def test_accel_mutates_the_replayed_levels_into_the_buffer():
    overrides = dict(replay_probability=1.0, minimum_fill=0.25, num_edits=2)
    train = tiny_train("accel", **overrides)
    run_round = jitted_round("accel", **overrides)
    state, _ = run_round(prefilled(train, initial_state(train), 16))
    assert int(state.last_kind) == ued.REPLAY
    replayed = state.last_levels
    size_before = int(state.buffer.size)
    state, metrics = run_round(state)
    assert int(state.last_kind) == ued.MUTATE  # the round after a replay plays the mutants
    assert float(metrics["mutate_fraction"]) == 1.0
    mutants = state.last_levels
    assert np.asarray(jax.vmap(is_valid_level)(mutants)).all()
    # Each mutant is its parent changed by at most num_edits edits (a wall, the goal or the agent
    # each) and was played by the student envs.
    wall_changes = np.asarray(mutants.wall_map != replayed.wall_map).sum(axis=(1, 2))
    moved = (np.asarray(mutants.goal_position != replayed.goal_position).any(axis=1)
             + np.asarray(mutants.agent_position != replayed.agent_position).any(axis=1))
    assert (wall_changes + moved <= 2).all() and (wall_changes + moved > 0).any()
    assert levels_equal(played_levels(train, state), mutants).all()
    # ... and every mutant is now in the buffer (it had room for all of them).
    sampler = train.ued["sampler"]
    for index in range(TINY["num_envs"]):
        found, _ = sampler.find(state.buffer, take(mutants, index))
        assert bool(found)
    assert int(state.buffer.size) > size_before


# --- PAIRED ------------------------------------------------------------------------------------
def test_completed_episode_returns_and_paired_regret_by_hand():
    # Two levels, four steps. Level 0: episodes ending with returns 0.5 then 0.9; level 1: none.
    episode_return = jnp.array([[0.0, 0.0], [0.5, 0.0], [0.0, 0.0], [0.9, 0.0]])
    returned = jnp.array([[False, False], [True, False], [False, False], [True, False]])
    mean, best, count = level_scores.completed_episode_returns(episode_return, returned)
    np.testing.assert_allclose(mean, [0.7, 0.0], rtol=1e-6)
    np.testing.assert_allclose(best, [0.9, 0.0], rtol=1e-6)
    np.testing.assert_array_equal(count, [2, 0])
    # Antagonist's best minus protagonist's mean.
    regret = level_scores.paired_regret(jnp.array([0.7, 0.0]), jnp.array([0.95, 0.3]))
    np.testing.assert_allclose(regret, [0.25, 0.3], rtol=1e-6)


@pytest.mark.slow
def test_paired_round_builds_valid_levels_and_rewards_the_adversary_with_regret():
    overrides = dict(num_steps=50)  # at least the 50-step episode limit
    train = tiny_train("paired", **overrides)
    state = initial_state(train)
    new_state, metrics = jitted_round("paired", **overrides)(state)
    levels = new_state.last_levels
    assert np.asarray(jax.vmap(is_valid_level)(levels)).all()
    assert np.asarray(levels.wall_map.sum(axis=(1, 2)) <= 3).all()
    # Both students play the adversary's levels.
    for agent in range(2):
        env_state = take(new_state.env_state, agent)
        played = jax.vmap(train.ued["learner"].env.level_of)(env_state)
        assert levels_equal(played, levels).all()
    # The adversary and both students learned.
    for before, after in ((state.adversary_params, new_state.adversary_params),
                          (take(state.params, 0),
                           take(new_state.params, 0)),
                          (take(state.params, 1),
                           take(new_state.params, 1))):
        changed = jax.tree.map(lambda a, b: bool(jnp.any(a != b)), before, after)
        assert any(jax.tree.leaves(changed))
    assert np.isfinite(float(metrics["regret"]))
    assert float(metrics["level_score"]) == pytest.approx(float(metrics["regret"]))


# --- learning ----------------------------------------------------------------------------------
LEARNING = dict(method="robust_plr", num_envs=16, num_steps=64, eval_interval=10,
                buffer_capacity=128, gru_hidden_size=32, hidden_sizes=(32,), conv_features=8,
                heldout_episodes=32, learning_rate=1e-3, entropy_coef=0.01, update_epochs=4,
                num_minibatches=2, total_steps=16 * 64 * 10 * 16)


@pytest.mark.slow
def test_robust_plr_learns_to_solve_a_held_out_7x7_level():
    """robust PLR on 7x7 mazes with 5 random walls, 164k student steps in 16 logged updates
    (13 to 18 s on 2 CPU cores once compiled; compiling takes longer): the held-out solve rate
    (32 sampled episodes per evaluation) averaged over the last 4 evaluations reaches 0.5.

    Measured: the untrained student solves the room 0.09 of the time (4 initial seeds, 8
    evaluations each: means 0.086 to 0.094, single evaluations 0 to 0.19). Trained with this
    test's key 0: 0.09 at the first evaluation, 1.0 from the third on but for three 0.97s; the
    last 4 average 0.98. Keys 1, 2, 3: 0.65, 1.0 and 0.98 (key 1's student collapses to 0 in
    mid-run and recovers to 0.94 by the end: the small student is unstable at this rate)."""
    train = ued.make_train(ued.Config(**LEARNING), MAZE, MAZE_PARAMS,
                           eval_levels=stack_levels([HELD_OUT]), eval_level_names=["room"])
    result = jax.jit(train)(jax.random.key(0))
    solve_rate = np.asarray(result.metrics["heldout/solve_rate"])
    print("held-out solve rate per logged update:", np.round(solve_rate, 2))
    assert solve_rate[0] < 0.5
    assert solve_rate[-4:].mean() >= 0.5, solve_rate
    np.testing.assert_array_equal(solve_rate, result.metrics["heldout/solve_rate/room"])


@pytest.mark.slow
# --- seeds, truncation ---------------------------------------------------------------------------
def test_vmap_over_seeds_matches_separate_runs():
    train = tiny_train("accel", minimum_fill=0.25)
    keys = jax.random.split(jax.random.key(3), 2)
    batched = jax.jit(jax.vmap(train))(keys)
    run = jax.jit(train)
    for seed in range(2):
        single = run(keys[seed])
        for name in ("heldout/solve_rate", "level_score", "episode_return", "buffer_size"):
            np.testing.assert_allclose(batched.metrics[name][seed], single.metrics[name],
                                       rtol=1e-5, atol=1e-6, equal_nan=True)
        for a, b in zip(jax.tree.leaves(take(batched.state.params, seed)),
                        jax.tree.leaves(single.state.params)):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_truncated_steps_bootstrap_from_the_final_observation():
    """With a 6-step episode limit, a rollout truncates; at a truncated step the GAE target is
    ``r + gamma V(final observation)`` (a terminated step's is ``r``)."""
    train = ued.make_train(tiny_config(method="dr", gamma=0.9, gae_lambda=0.95), MAZE,
                           MAZE_PARAMS.replace(max_steps_in_episode=6),
                           eval_levels=stack_levels([HELD_OUT]))
    learner, state = train.ued["learner"], initial_state(train)
    hparams = train.default_hparams.student

    @jax.jit
    def rollout(params):
        observation, env_state = jax.vmap(learner.env.reset_to_level, in_axes=(0, 0, None))(
            jax.random.split(jax.random.key(1), TINY["num_envs"]), state.last_levels,
            train.ued["env_params"])
        carry = learner.initial_carry(observation, env_state)
        _, trajectory = learner.rollout(params, carry, jax.random.key(2), jax.random.key(3))
        return trajectory, learner.assess(params, trajectory, hparams)

    trajectory, (values, advantages, targets) = rollout(state.params)
    truncated = np.asarray(trajectory.truncated & ~trajectory.terminated)
    assert truncated.any()
    expected = np.asarray(trajectory.reward + 0.9 * trajectory.next_value)
    np.testing.assert_allclose(np.asarray(targets)[truncated], expected[truncated], rtol=1e-5,
                               atol=1e-6)
    assert np.abs(np.asarray(trajectory.next_value)[truncated]).min() > 0  # really bootstrapped
    terminated = np.asarray(trajectory.terminated)
    if terminated.any():
        np.testing.assert_allclose(np.asarray(targets)[terminated],
                                   np.asarray(trajectory.reward)[terminated], rtol=1e-5)


@pytest.mark.slow
# --- any level env -------------------------------------------------------------------------------
def test_plr_runs_on_param_levels_over_cartpole():
    import jaxrl_suite

    cartpole, params = jaxrl_suite.make("gymnax/CartPole-v1", wrappers=False)
    env = ParamLevels(cartpole, {"length": (0.25, 1.0), "masspole": (0.05, 0.5)})
    config = ued.Config(method="plr", encoder="none", recurrent=False, hidden_sizes=(16,),
                        activation="tanh", num_envs=4, num_steps=16, eval_interval=2,
                        buffer_capacity=8, minimum_fill=0.5, total_steps=4 * 16 * 2)
    train = ued.make_train(config, env, params)
    assert train.ued["eval_level_names"] == ()
    result = jax.jit(train)(jax.random.key(0))
    buffer = result.state.buffer
    assert int(buffer.size) > 0
    lengths = np.asarray(buffer.levels.length)[np.asarray(buffer.filled)]
    assert ((lengths >= 0.25) & (lengths <= 1.0)).all()
    assert len(np.unique(lengths)) > 1
    assert np.isfinite(result.metrics["level_score"]).all()


# --- errors -------------------------------------------------------------------------------------
@pytest.mark.parametrize("overrides, message", [
    (dict(method="minimax"), "method must be one of"),
    (dict(score_function="regret"), "score_function must be one of"),
    (dict(prioritization="uniform"), "prioritization must be one of"),
    (dict(total_steps=100), "less than one logged update"),
    (dict(num_edits=0), "num_edits must be a positive integer"),
    (dict(replay_probability=1.5), "replay_probability must be in"),
    (dict(method="paired", num_steps=32), "must be at least the episode limit"),
    (dict(encoder="none"), "Box"),
])
def test_bad_config_is_refused_with_a_clear_message(overrides, message):
    with pytest.raises(ValueError, match=message):
        ued.make_train(tiny_config(**overrides), MAZE, MAZE_PARAMS)


def test_env_without_levels_is_refused():
    import jaxrl_suite

    env, params = jaxrl_suite.make("gymnax/CartPole-v1")
    with pytest.raises(ValueError, match="needs a level environment"):
        ued.make_train(tiny_config(encoder="none"), env, params)


def test_named_held_out_levels_default_to_the_mazes_size():
    levels, names = ued.held_out_levels(Maze())
    assert "SixteenRooms" in names and "Labyrinth" in names and len(names) == 10
    assert levels.wall_map.shape == (10, 13, 13)
    assert ued.held_out_levels(MAZE) == (None, ())  # no named 7x7 levels
    with pytest.raises(ValueError, match="is 13x13; the maze is 7x7"):
        ued.held_out_levels(MAZE, ("SixteenRooms",))


# --- the command line, the run folder, resume -----------------------------------------------------
CLI_FLAGS = ["--method", "accel", "--env", "maze", "--num-envs", "4", "--num-steps", "16",
             "--eval-interval", "2", "--total-steps", "256", "--buffer-capacity", "8",
             "--minimum-fill", "0.5", "--gru-hidden-size", "8", "--conv-features", "2",
             "--hidden-sizes", "8", "--heldout-episodes", "1", "--heldout-levels",
             "SixteenRooms", "Labyrinth", "--update-epochs", "1", "--no-progress",
             "--checkpoint-every", "1", "--eval-episodes", "2"]


def saved_state(run_dir):
    """The seed-batched UED state of a run folder's last checkpoint and its update."""
    import json

    from jaxrl_suite.env.registry import make
    from jaxrl_suite.run.checkpoints import Checkpointer
    from jaxrl_suite.run.folder import load_run

    algorithm, config, options, _ = load_run(run_dir)
    env, params = make(options.env)
    train = algorithm.make_train(config, env, params)
    like = train.initial_states(jax.random.split(jax.random.key(options.seed), options.seeds))
    checkpointer = Checkpointer(run_dir / "checkpoints")
    try:
        fingerprint = json.loads((run_dir / "config.json").read_text())["fingerprint"]
        return checkpointer.restore(like, fingerprint)
    finally:
        checkpointer.close()


def raw_arrays(tree):
    """NumPy leaves, PRNG keys as their raw data (so they compare with ==)."""
    def raw(x):
        return np.asarray(jax.random.key_data(x) if jnp.issubdtype(x.dtype, jax.dtypes.prng_key)
                          else x)

    return jax.tree.map(raw, tree)


@pytest.mark.slow
def test_cli_trains_writes_the_ued_pictures_and_resumes_exactly(tmp_path, monkeypatch):
    import shutil

    from jaxrl_suite.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(["train", "ued", *CLI_FLAGS, "--run-dir", "run"]) == 0
    run = tmp_path / "run"
    for name in ("metrics.csv", "heldout_solve_rate.png", "buffer_top_levels.png",
                 "heldout_rollout.gif", "eval.json"):
        assert (run / name).exists(), name
    header = (run / "metrics.csv").read_text().splitlines()[0]
    assert "heldout/solve_rate/Labyrinth" in header and "buffer_size" in header
    # Lose the last checkpoint, as a run killed after the first logged update would, and resume:
    # the state (student, level buffer, RNG) ends exactly where the uninterrupted run's did.
    reference, update = saved_state(run)
    assert update == 2
    shutil.rmtree(run / "checkpoints" / "2")
    assert main(["train", "ued", "--resume", str(run)]) == 0
    resumed, update = saved_state(run)
    assert update == 2
    for a, b in zip(jax.tree.leaves(raw_arrays(reference)), jax.tree.leaves(raw_arrays(resumed))):
        np.testing.assert_array_equal(a, b)
