"""``jaxrl collect``: the D4RL family from a SAC agent on Pendulum, its files, the CLI, errors.

The family is collected once (``tests/offline_data.py``, shared with the offline-RL tests) with
the SAC Pendulum preset and 10,000 transitions per rolled-out dataset.
"""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxrl_suite
from jaxrl_suite import cli
from jaxrl_suite.data import collect
from jaxrl_suite.data.collect import (
    KINDS,
    concatenate_datasets,
    dataset_name,
    datasets_from_agent,
    random_policy,
    replay_dataset,
    resolve_kinds,
    rollout_dataset,
    write_datasets,
)
from jaxrl_suite.data.datasets import episode_returns, load_minari, normalized_score
from jaxrl_suite.learn.buffers import ReplayBuffer, Transition
from tests.offline_data import pendulum_agent, pendulum_family

N = 10_000  # pendulum_family's default: the offline-RL tests share these rollouts
EPISODE = 200  # Pendulum's max_steps_in_episode
ROLLED = ("random", "medium", "expert")
FIELDS = ("observations", "actions", "rewards", "next_observations", "terminals", "timeouts",
          "episode_ids")


@pytest.fixture(scope="module")
def family(tmp_path_factory):
    run, references = pendulum_agent()
    datasets = pendulum_family(N)
    folder = tmp_path_factory.mktemp("datasets")
    paths = write_datasets(datasets, folder, run.env, run.env_params)
    return run, references, datasets, paths


def _mean_return(dataset) -> float:
    return float(episode_returns(dataset).mean())


def test_names_and_kinds():
    assert dataset_name("gymnax/Pendulum-v1", "medium") == "pendulum-medium-v0"
    assert dataset_name("brax/halfcheetah", "medium-replay") == "halfcheetah-medium-replay-v0"
    assert dataset_name("maze", "expert") == "maze-expert-v0"
    assert resolve_kinds(["expert", "random", "expert"]) == ("random", "expert")
    assert resolve_kinds("all") == KINDS == resolve_kinds(["medium", "all"])


@pytest.mark.slow
def test_rolled_out_datasets_are_whole_episodes(family):
    _, _, datasets, _ = family
    for kind in ROLLED:
        dataset = datasets[kind]
        assert dataset.size == N and dataset.num_episodes == N // EPISODE, kind
        steps = np.arange(N)
        np.testing.assert_array_equal(dataset.episode_ids, steps // EPISODE)
        # Pendulum never terminates; each episode is truncated at its 200th step.
        np.testing.assert_array_equal(dataset.timeouts, steps % EPISODE == EPISODE - 1)
        assert not np.asarray(dataset.terminals).any()
    medium_expert = datasets["medium-expert"]
    assert medium_expert.size == 2 * N and medium_expert.num_episodes == 2 * N // EPISODE


@pytest.mark.slow
def test_episodes_are_contiguous(family):
    _, _, datasets, _ = family
    for kind, dataset in datasets.items():
        ids = np.asarray(dataset.episode_ids)
        same = ids[1:] == ids[:-1]
        np.testing.assert_array_equal(np.asarray(dataset.next_observations)[:-1][same],
                                      np.asarray(dataset.observations)[1:][same], err_msg=kind)
        ends = np.asarray(dataset.terminals | dataset.timeouts)
        np.testing.assert_array_equal(ends[:-1], ~same, err_msg=kind)  # ends exactly at a change
        assert ends[-1], kind


@pytest.mark.slow
def test_rewards_and_next_observations_follow_pendulum_dynamics(family):
    _, _, datasets, _ = family
    for kind, dataset in datasets.items():
        obs = np.asarray(dataset.observations, np.float64)
        next_obs = np.asarray(dataset.next_observations, np.float64)
        action = np.asarray(dataset.actions, np.float64)[:, 0]
        rewards = np.asarray(dataset.rewards)
        assert rewards.min() >= -16.3 and rewards.max() <= 0.0, kind
        theta, theta_dot = np.arctan2(obs[:, 1], obs[:, 0]), obs[:, 2]
        torque = np.clip(action, -2.0, 2.0)
        expected = -(theta**2 + 0.1 * theta_dot**2 + 0.001 * torque**2)
        np.testing.assert_allclose(rewards, expected, atol=2e-3, err_msg=kind)
        new_theta_dot = np.clip(theta_dot + (15.0 * np.sin(theta) + 3.0 * torque) * 0.05, -8, 8)
        new_theta = theta + new_theta_dot * 0.05
        np.testing.assert_allclose(next_obs[:, 2], new_theta_dot, atol=1e-3, err_msg=kind)
        np.testing.assert_allclose(next_obs[:, 0], np.cos(new_theta), atol=1e-3, err_msg=kind)
        np.testing.assert_allclose(next_obs[:, 1], np.sin(new_theta), atol=1e-3, err_msg=kind)


@pytest.mark.slow
def test_returns_rank_random_medium_expert(family):
    run, references, datasets, _ = family
    low, high = references.random_return, references.expert_return
    assert low < -900 and high > -250
    returns = {kind: _mean_return(datasets[kind]) for kind in ROLLED}
    assert returns["random"] < returns["medium"] < returns["expert"], returns
    scores = {kind: normalized_score(r, low, high) for kind, r in returns.items()}
    assert abs(scores["random"]) < 25 and scores["expert"] > 85, scores
    assert 15 < scores["medium"] < 60, scores
    assert 15 < normalized_score(references.medium_return, low, high) < 60
    # The medium snapshot is the one whose evaluation was nearest a third of the way up.
    distances = [abs(s.eval_return - references.medium_target) for s in run.snapshots]
    assert references.medium_snapshot == int(np.argmin(distances))
    assert run.snapshots[references.medium_snapshot].env_steps == references.medium_env_steps
    assert references.medium_target == pytest.approx(low + (high - low) / 3)


@pytest.mark.slow
def test_every_dataset_records_what_it_is(family):
    _, references, datasets, _ = family
    assert tuple(datasets) == KINDS
    for kind, dataset in datasets.items():
        info = dataset.info
        assert (info.name, info.kind) == (dataset_name("gymnax/Pendulum-v1", kind), kind)
        assert (info.env_id, info.algorithm) == ("gymnax/Pendulum-v1", "sac")
        assert info.ref_min_score == references.random_return
        assert info.ref_max_score == references.expert_return


@pytest.mark.slow
def test_written_minari_folders_round_trip(family):
    _, references, datasets, paths = family
    for kind, dataset in datasets.items():
        folder = paths[kind]
        assert folder.name == dataset.info.name
        metadata = json.loads((folder / "data" / "metadata.json").read_text())
        assert metadata["ref_min_score"] == references.random_return
        assert metadata["ref_max_score"] == references.expert_return
        assert metadata["total_steps"] == dataset.size
        assert json.loads(metadata["action_space"])["low"] == [-2.0]  # the env's, not the data's
        loaded = load_minari(folder)
        for field in FIELDS:
            np.testing.assert_array_equal(getattr(loaded, field), getattr(dataset, field),
                                          err_msg=f"{kind} {field}")
            assert getattr(loaded, field).dtype == getattr(dataset, field).dtype
        assert loaded.info.name == dataset.info.name and loaded.info.kind == kind
        assert loaded.info.env_id == dataset.info.env_id
        assert loaded.info.ref_min_score == references.random_return
        assert loaded.info.ref_max_score == references.expert_return


@pytest.mark.slow
def test_medium_replay_is_the_replay_buffer_up_to_the_medium_policy(family):
    run, references, datasets, _ = family
    dataset = datasets["medium-replay"]
    size = references.medium_env_steps
    assert dataset.size == size and run.train.config.num_envs == 1
    storage = run.state.experience.buffer.storage
    pairs = {"observations": "observation", "actions": "action", "rewards": "reward",
             "next_observations": "next_observation", "terminals": "terminated"}
    for field, name in pairs.items():
        np.testing.assert_array_equal(getattr(dataset, field), getattr(storage, name)[:size])
    # Its episodes end at the buffer's truncations, and the last, cut one ends in a timeout.
    truncated = np.asarray(storage.truncated[:size])
    np.testing.assert_array_equal(np.asarray(dataset.timeouts)[:-1], truncated[:-1])
    assert dataset.timeouts[-1]
    # The first transitions are the random prefill: uniform over [-2, 2], mean about 0.
    prefill = np.asarray(dataset.actions[: run.train.config.learning_starts, 0])
    assert prefill.min() < -1.9 and prefill.max() > 1.9
    assert abs(prefill.mean()) < 0.2 and abs(prefill.std() - 4 / np.sqrt(12)) < 0.1
    assert run.train.config.learning_starts < size < run.expert.env_steps


@pytest.mark.slow
def test_medium_expert_is_medium_then_expert(family):
    _, _, datasets, _ = family
    medium, expert, both = datasets["medium"], datasets["expert"], datasets["medium-expert"]
    for field in FIELDS[:-1]:
        np.testing.assert_array_equal(
            getattr(both, field), jnp.concatenate([getattr(medium, field), getattr(expert, field)]))
    np.testing.assert_array_equal(
        both.episode_ids,
        jnp.concatenate([medium.episode_ids, expert.episode_ids + medium.num_episodes]))


@pytest.mark.slow
def test_same_seed_same_data_whichever_kinds_are_asked(family):
    run, references, datasets, _ = family
    again = datasets_from_agent(run, ["medium", "random"], num_transitions=N,
                                references=references)
    for kind in ("random", "medium"):
        for field in FIELDS:
            np.testing.assert_array_equal(getattr(again[kind], field),
                                          getattr(datasets[kind], field))
    env, params, policy = run.env, run.env_params, run.random_policy
    first = rollout_dataset(policy, env, params, jax.random.key(3), N)  # N: compiled already
    second = rollout_dataset(policy, env, params, jax.random.key(3), N)
    other = rollout_dataset(policy, env, params, jax.random.key(4), N)
    for field in FIELDS:
        np.testing.assert_array_equal(getattr(first, field), getattr(second, field))
    assert not np.array_equal(first.actions, other.actions)


def test_rollout_keeps_whole_episodes_of_varying_length():
    env, params = jaxrl_suite.make("gymnax/CartPole-v1")
    policy = random_policy(env.action_space(params))
    dataset = rollout_dataset(policy, env, params, jax.random.key(0), 600)
    # Random CartPole episodes last about 20 steps: whole ones only, fitting in 600.
    assert 600 - 500 < dataset.size <= 600 and dataset.num_episodes > 10
    ends = np.asarray(dataset.terminals | dataset.timeouts)
    assert ends[-1] and ends.sum() == dataset.num_episodes
    assert np.asarray(dataset.terminals).sum() == dataset.num_episodes  # all fell over
    assert dataset.actions.dtype == jnp.int32
    ids = np.asarray(dataset.episode_ids)
    same = ids[1:] == ids[:-1]
    np.testing.assert_array_equal(np.asarray(dataset.next_observations)[:-1][same],
                                  np.asarray(dataset.observations)[1:][same])


def test_replay_dataset_regroups_parallel_envs():
    buffer = ReplayBuffer(capacity=12, num_envs=2)
    example = Transition(jnp.zeros(1), jnp.zeros(1), jnp.float32(0), jnp.zeros(1),
                         jnp.bool_(False), jnp.bool_(False))
    state = buffer.init(example)
    for step in range(4):  # env e at step t has observation 10 * e + t
        observation = jnp.array([[step], [10 + step]], jnp.float32)
        state = buffer.add(state, Transition(
            observation, jnp.zeros((2, 1)), jnp.full(2, step, jnp.float32), observation + 1,
            jnp.array([False, step == 1]), jnp.array([step == 2, False])))
    dataset = replay_dataset(state, 2, 8)
    np.testing.assert_array_equal(dataset.observations[:, 0], [0, 1, 2, 3, 10, 11, 12, 13])
    np.testing.assert_array_equal(dataset.terminals, [0, 0, 0, 0, 0, 1, 0, 0])
    # Env 0 truncated at step 2; each env's unfinished last episode ends in a timeout.
    np.testing.assert_array_equal(dataset.timeouts, [0, 0, 1, 1, 0, 0, 0, 1])
    np.testing.assert_array_equal(dataset.episode_ids, [0, 0, 0, 1, 2, 2, 3, 3])
    assert replay_dataset(state, 2, 4).size == 4
    with pytest.raises(ValueError, match="cannot take the first 10"):
        replay_dataset(state, 2, 10)
    both = concatenate_datasets(dataset, dataset)
    np.testing.assert_array_equal(both.episode_ids[8:], np.asarray(dataset.episode_ids) + 4)


@pytest.mark.slow
def test_cli_writes_the_datasets_it_reports(family, tmp_path, capsys, monkeypatch):
    # The fixture's agent stands in for training (seed 0, the preset: what the CLI would train).
    run, _, datasets, _ = family
    calls = []

    def trained_agent(algo, env_id, **kwargs):
        calls.append((algo, env_id, kwargs["seed"], kwargs["total_steps"]))
        return run

    monkeypatch.setattr(collect, "train_agent", trained_agent)
    assert cli.main(["collect", "--algo", "sac", "--env", "gymnax/Pendulum-v1", "--kind",
                     "random", "--kind", "medium-replay", "--transitions", str(N), "--out",
                     str(tmp_path)]) == 0
    assert calls == [("sac", "gymnax/Pendulum-v1", 0, None)]
    captured = capsys.readouterr()
    info = datasets["random"].info
    assert (f"reference returns: random {info.ref_min_score:.2f}, expert "
            f"{info.ref_max_score:.2f}") in captured.out
    returns = _mean_return(datasets["random"])
    score = normalized_score(returns, info.ref_min_score, info.ref_max_score)
    assert (f"wrote {tmp_path / 'pendulum-random-v0'}: {N:,} transitions, {N // EPISODE} "
            f"episodes, mean return {returns:.2f}, normalised score {score:.1f}") in captured.out
    assert "references: random" in captured.err  # progress goes to stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "pendulum-medium-replay-v0", "pendulum-random-v0"]
    for kind in ("random", "medium-replay"):  # the same seed gives the same data
        loaded = load_minari(tmp_path / dataset_name("gymnax/Pendulum-v1", kind))
        for field in FIELDS:
            np.testing.assert_array_equal(getattr(loaded, field), getattr(datasets[kind], field),
                                          err_msg=f"{kind} {field}")


def test_cli_bad_kind_is_one_clear_line(tmp_path, capsys):
    assert cli.main(["collect", "--kind", "medium", "--kind", "mediocre",
                     "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "Unknown dataset kind 'mediocre'; accepted: random, medium, expert" in err
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("kwargs, message", [
    (dict(kinds=["best"]), "Unknown dataset kind 'best'; accepted: random, medium, expert, "
                           "medium-replay, medium-expert or all"),
    (dict(kinds=[]), "No dataset kind given"),
    (dict(algo="ppo"), "Cannot collect datasets with algorithm 'ppo'; accepted: sac, td3"),
    (dict(algo="td3", env_id="gymnax/CartPole-v1"),
     r"td3 needs a Box \(continuous\) action space; gymnax/CartPole-v1 has Discrete"),
    (dict(env_id="gymnax/Pendulum"), "Unknown env id 'gymnax/Pendulum'"),
    (dict(num_transitions=150), r"num_transitions \(150\) is below one episode of "
                                r"gymnax/Pendulum-v1 \(200 steps\)"),
    (dict(num_transitions=0), "num_transitions must be a positive integer; got 0"),
    (dict(total_steps=-5), "total_steps must be a positive integer; got -5"),
    (dict(total_steps=500), r"total_steps \(500\) leaves no update after learning_starts"),
])
def test_bad_input_fails_before_training(monkeypatch, kwargs, message):
    trained = []
    monkeypatch.setattr(collect, "train_agent", lambda *a, **k: trained.append(1))
    arguments = dict(algo="sac", env_id="gymnax/Pendulum-v1", kinds=["medium"]) | kwargs
    with pytest.raises(ValueError, match=message):
        collect.collect_datasets(arguments.pop("algo"), arguments.pop("env_id"),
                                 arguments.pop("kinds"), **arguments)
    assert not trained
