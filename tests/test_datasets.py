"""Offline datasets: the D4RL and Minari layouts written by hand and read back, our writers
round-tripped, the checks on bad input, the samplers and the normalised score."""

from __future__ import annotations

import dataclasses
import json
import re
import warnings

import gymnasium
import h5py
import jax
import numpy as np
import pytest

from jaxrl_suite import make
from jaxrl_suite.data import datasets as D

FIELDS = ("observations", "actions", "rewards", "next_observations", "terminals", "timeouts",
          "episode_ids")


def episodes(lengths=(5, 6, 7), ends=("timeout", "terminal", "timeout"), seed=0):
    """Per-episode arrays: observations (T+1, 3), actions (T, 1), rewards (T,), flags (T,)."""
    rng = np.random.default_rng(seed)
    out = []
    for length, end in zip(lengths, ends):
        terminal = np.zeros(length, bool)
        timeout = np.zeros(length, bool)
        (terminal if end == "terminal" else timeout)[-1] = True
        out.append(dict(
            observations=rng.normal(size=(length + 1, 3)).astype(np.float32),
            actions=rng.uniform(-2, 2, size=(length, 1)).astype(np.float32),
            rewards=rng.normal(size=length),
            terminals=terminal, timeouts=timeout,
        ))
    return out


def flat(eps):
    """The flat (D4RL-with-next_observations) arrays of ``episodes``."""
    cat = np.concatenate
    return dict(
        observations=cat([e["observations"][:-1] for e in eps]),
        actions=cat([e["actions"] for e in eps]),
        rewards=cat([e["rewards"] for e in eps]),
        next_observations=cat([e["observations"][1:] for e in eps]),
        terminals=cat([e["terminals"] for e in eps]),
        timeouts=cat([e["timeouts"] for e in eps]),
    )


INFO = D.DatasetInfo(name="toy-medium-v0", env_id="gymnax/Pendulum-v1", kind="medium",
                     ref_min_score=-1200.0, ref_max_score=-150.0, algorithm="sac")


def assert_same_arrays(a: D.Dataset, b: D.Dataset):
    for field in FIELDS:
        np.testing.assert_array_equal(np.asarray(getattr(a, field)),
                                      np.asarray(getattr(b, field)), err_msg=field)


# --- readers on files written by hand in the published layouts ----------------------------------
def test_reads_a_minari_folder_written_to_the_published_layout(tmp_path):
    eps = episodes()
    folder = tmp_path / "pendulum-medium-v0"
    (folder / "data").mkdir(parents=True)
    with h5py.File(folder / "data" / "main_data.hdf5", "w") as file:
        for k, episode in enumerate(eps):
            group = file.create_group(f"episode_{k}")
            group.attrs["id"] = k
            group.attrs["total_steps"] = len(episode["rewards"])
            group["observations"] = episode["observations"]
            group["actions"] = episode["actions"]
            group["rewards"] = episode["rewards"]
            group["terminations"] = episode["terminals"]
            group["truncations"] = episode["timeouts"]
    # Minari 0.5 keeps metadata.json beside the HDF5 file; older folders have it on top.
    (folder / "metadata.json").write_text(json.dumps(
        {"dataset_id": "pendulum-medium-v0", "total_episodes": 3, "total_steps": 18,
         "ref_min_score": -1200.0, "ref_max_score": -150.0, "algorithm_name": "sac"}))
    dataset = D.load_minari(folder)
    expected = flat(eps)
    for field, values in expected.items():
        np.testing.assert_allclose(np.asarray(getattr(dataset, field)), values, err_msg=field)
    np.testing.assert_array_equal(dataset.episode_ids, [0] * 5 + [1] * 6 + [2] * 7)
    assert dataset.size == 18 and dataset.num_episodes == 3
    assert dataset.info.ref_min_score == -1200.0 and dataset.info.ref_max_score == -150.0
    assert dataset.info.name == "pendulum-medium-v0"
    # Episode groups are ordered by number, not by name (episode_10 after episode_9).
    np.testing.assert_allclose(dataset.rewards[:5], eps[0]["rewards"])


def test_minari_episode_order_is_numeric(tmp_path):
    eps = episodes(lengths=(2,) * 11, ends=("timeout",) * 11)
    folder = tmp_path / "many"
    (folder / "data").mkdir(parents=True)
    with h5py.File(folder / "data" / "main_data.hdf5", "w") as file:
        for k, episode in enumerate(eps):
            group = file.create_group(f"episode_{k}")
            group["observations"] = episode["observations"]
            group["actions"] = episode["actions"]
            group["rewards"] = np.full(2, float(k))
            group["terminations"] = episode["terminals"]
            group["truncations"] = episode["timeouts"]
    (folder / "data" / "metadata.json").write_text("{}")
    dataset = D.load_minari(folder)
    np.testing.assert_array_equal(dataset.rewards, np.repeat(np.arange(11.0), 2))


def test_reads_a_d4rl_file_with_and_without_next_observations(tmp_path):
    eps = episodes()
    arrays = flat(eps)
    with_next = tmp_path / "with_next.hdf5"
    with h5py.File(with_next, "w") as file:
        for name, values in arrays.items():
            file[name] = values
    dataset = D.load_d4rl(with_next, ref_min_score=-1.0, ref_max_score=1.0)
    for field, values in arrays.items():
        np.testing.assert_allclose(np.asarray(getattr(dataset, field)), values, err_msg=field)
    np.testing.assert_array_equal(dataset.episode_ids, [0] * 5 + [1] * 6 + [2] * 7)
    assert dataset.info.ref_max_score == 1.0

    # Old D4RL files: no next_observations. D4RL stores an episode's last observation on its
    # timeout row, so the next row is the next observation within an episode and timeout rows
    # are dropped; a terminal row keeps its row (its next observation is never bootstrapped).
    observations = np.arange(10, dtype=np.float32)[:, None].repeat(3, 1)
    terminals = np.zeros(10, bool)
    timeouts = np.zeros(10, bool)
    timeouts[3] = True  # episode 0: rows 0..3, row 3 is its last observation only
    terminals[6] = True  # episode 1: rows 4..6, ends in a terminal
    timeouts[9] = True  # episode 2: rows 7..9
    without_next = tmp_path / "without_next.hdf5"
    with h5py.File(without_next, "w") as file:
        file["observations"] = observations
        file["actions"] = np.zeros((10, 1), np.float32)
        file["rewards"] = np.arange(10.0)
        file["terminals"] = terminals
        file["timeouts"] = timeouts
    dataset = D.load_d4rl(without_next)
    np.testing.assert_array_equal(dataset.rewards, [0, 1, 2, 4, 5, 6, 7, 8])
    np.testing.assert_array_equal(np.asarray(dataset.next_observations)[:, 0],
                                  [1, 2, 3, 5, 6, 7, 8, 9])
    np.testing.assert_array_equal(dataset.terminals, [0, 0, 0, 0, 0, 1, 0, 0])
    # The row before a dropped timeout now ends its episode as a truncation.
    np.testing.assert_array_equal(dataset.timeouts, [0, 0, 1, 0, 0, 0, 0, 1])
    np.testing.assert_array_equal(dataset.episode_ids, [0, 0, 0, 1, 1, 1, 2, 2])


# --- our writers --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def toy_dataset():
    return D.make_dataset(**flat(episodes()), info=INFO)


def test_minari_writer_round_trips_and_writes_minari_metadata(toy_dataset, tmp_path):
    env, params = make("gymnax/Pendulum-v1", wrappers=False)
    folder = D.save_minari(toy_dataset, tmp_path / "toy", env.observation_space(params),
                           env.action_space(params))
    back = D.load_minari(folder)
    assert_same_arrays(toy_dataset, back)
    assert back.info.env_id == INFO.env_id and back.info.kind == INFO.kind
    assert (back.info.ref_min_score, back.info.ref_max_score) == (-1200.0, -150.0)
    metadata = json.loads((folder / "data" / "metadata.json").read_text())
    assert metadata["total_episodes"] == 3 and metadata["total_steps"] == 18
    assert json.loads(metadata["action_space"]) == {
        "type": "Box", "dtype": "float32", "shape": [1], "low": [-2.0], "high": [2.0]}
    with h5py.File(folder / "data" / "main_data.hdf5") as file:
        assert sorted(file) == ["episode_0", "episode_1", "episode_2"]
        assert file["episode_1/observations"].shape == (7, 3)  # T + 1 rows
        assert file["episode_1/terminations"][-1] and file["episode_1"].attrs["total_steps"] == 6


def test_minari_writer_refuses_non_contiguous_episodes(toy_dataset, tmp_path):
    shuffled = toy_dataset.replace(next_observations=toy_dataset.next_observations[::-1])
    with pytest.raises(ValueError, match="not contiguous"):
        D.save_minari(shuffled, tmp_path / "bad")


def test_minari_writer_records_the_gymnasium_env_spec_and_the_target_name(toy_dataset, tmp_path):
    # toy_dataset is of gymnax/Pendulum-v1, whose Gymnasium counterpart is Pendulum-v1.
    folder = D.save_minari(toy_dataset, tmp_path / "pendulum-copy-v0")
    metadata = json.loads((folder / "data" / "metadata.json").read_text())
    assert metadata["dataset_id"] == "pendulum-copy-v0"  # not the dataset's old name
    assert D.load_minari(folder).info.name == "pendulum-copy-v0"
    spec = gymnasium.envs.registration.EnvSpec.from_json(metadata["env_spec"])
    assert spec.id == "Pendulum-v1" and spec.max_episode_steps == 200
    assert metadata["env_spec"] == gymnasium.spec("Pendulum-v1").to_json()
    # An env without a Gymnasium counterpart gets no env_spec.
    maze_data = toy_dataset.replace(info=dataclasses.replace(INFO, env_id="maze"))
    metadata = json.loads((D.save_minari(maze_data, tmp_path / "maze-v0") / "data" /
                           "metadata.json").read_text())
    assert "env_spec" not in metadata


def test_a_minari_folder_with_only_an_env_spec_picks_the_project_env(tmp_path):
    """A folder as Minari writes it (no jaxrl_suite entry): the env comes from its env_spec,
    as ``jaxrl train iql --dataset ...`` without ``--env`` takes it."""
    folder = tmp_path / "cartpole-random-v0"
    (folder / "data").mkdir(parents=True)
    eps = episodes(lengths=(3, 4), ends=("terminal", "timeout"))
    with h5py.File(folder / "data" / "main_data.hdf5", "w") as file:
        for k, e in enumerate(eps):
            group = file.create_group(f"episode_{k}")
            group["observations"] = np.concatenate([e["observations"], e["observations"][:, :1]],
                                                   axis=1)  # CartPole: 4 numbers
            group["actions"] = np.zeros(len(e["rewards"]), np.int64)
            group["rewards"], group["terminations"] = e["rewards"], e["terminals"]
            group["truncations"] = e["timeouts"]
    (folder / "data" / "metadata.json").write_text(json.dumps({
        "dataset_id": "cartpole-random-v0", "total_episodes": 2, "total_steps": 7,
        "data_format": "hdf5", "env_spec": gymnasium.spec("CartPole-v1").to_json()}))
    assert D.recorded_env_id(folder) == "gymnax/CartPole-v1"
    assert D.load_minari(folder).info.env_id == "gymnax/CartPole-v1"
    # The project's own record wins; an env_spec without a counterpart gives none.
    metadata = json.loads((folder / "data" / "metadata.json").read_text())
    metadata["env_spec"] = metadata["env_spec"].replace('"CartPole-v1"', '"Hopper-v5"')
    (folder / "data" / "metadata.json").write_text(json.dumps(metadata))
    assert D.recorded_env_id(folder) is None
    metadata["jaxrl_suite"] = {"env_id": "gymnax/CartPole-v1", "kind": "random"}
    (folder / "data" / "metadata.json").write_text(json.dumps(metadata))
    assert D.recorded_env_id(folder) == "gymnax/CartPole-v1"


def test_minari_itself_recovers_the_env_and_lists_a_resaved_copy_apart(toy_dataset, tmp_path,
                                                                       monkeypatch):
    minari = pytest.importorskip("minari")  # not a dependency; the tests above need no Minari
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path))
    D.save_minari(toy_dataset, tmp_path / "jaxrl" / "pendulum-medium-v0")
    dataset = minari.load_dataset("jaxrl/pendulum-medium-v0")
    assert dataset.total_episodes == 3 and dataset.total_steps == 18
    env = dataset.recover_environment()
    assert env.spec.id == "Pendulum-v1"
    env.close()
    D.save_minari(D.load_minari(tmp_path / "jaxrl" / "pendulum-medium-v0"),
                  tmp_path / "jaxrl" / "pendulum-copy-v0")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Minari warns about a dataset_id that is not its path
        listed = minari.list_local_datasets()
    assert set(listed) == {"jaxrl/pendulum-medium-v0", "jaxrl/pendulum-copy-v0"}


def test_d4rl_writer_round_trips(toy_dataset, tmp_path):
    back = D.load_d4rl(D.save_d4rl(toy_dataset, tmp_path / "toy.hdf5"))
    assert_same_arrays(toy_dataset, back)
    assert back.info.env_id == INFO.env_id
    assert (back.info.ref_min_score, back.info.ref_max_score) == (-1200.0, -150.0)


def test_datasets_by_name_and_path(toy_dataset, tmp_path, monkeypatch):
    monkeypatch.setenv("JAXRL_DATASETS", str(tmp_path))
    D.save_minari(toy_dataset, tmp_path / "toy-medium-v0")
    D.save_d4rl(toy_dataset, tmp_path / "toy-d4rl.hdf5")
    assert_same_arrays(toy_dataset, D.load_dataset("toy-medium-v0"))
    assert_same_arrays(toy_dataset, D.load_dataset("toy-d4rl"))
    assert_same_arrays(toy_dataset, D.load_dataset(tmp_path / "toy-d4rl.hdf5"))
    with pytest.raises(ValueError, match="No dataset 'hopper-medium-v2'.*toy-medium-v0"):
        D.load_dataset("hopper-medium-v2")


# --- bad input ----------------------------------------------------------------------------------
def test_missing_field_is_named(tmp_path):
    path = tmp_path / "missing.hdf5"
    with h5py.File(path, "w") as file:
        for name, values in flat(episodes()).items():
            if name != "timeouts":
                file[name] = values
    with pytest.raises(ValueError, match="missing the field\\(s\\) 'timeouts'"):
        D.load_d4rl(path)


def test_minari_episode_missing_field_and_bad_lengths(tmp_path):
    folder = tmp_path / "bad"
    (folder / "data").mkdir(parents=True)
    (folder / "data" / "metadata.json").write_text("{}")
    episode = episodes()[0]
    with h5py.File(folder / "data" / "main_data.hdf5", "w") as file:
        group = file.create_group("episode_0")
        for name in ("observations", "actions", "rewards", "terminations"):
            group[name] = episode[{"terminations": "terminals"}.get(name, name)]
    with pytest.raises(ValueError, match="episode_0 is missing the field\\(s\\) 'truncations'"):
        D.load_minari(folder)
    with h5py.File(folder / "data" / "main_data.hdf5", "w") as file:
        group = file.create_group("episode_0")
        group["observations"] = episode["observations"][:-1]  # T rows: should be T + 1
        group["actions"] = episode["actions"]
        group["rewards"] = episode["rewards"]
        group["terminations"] = episode["terminals"]
        group["truncations"] = episode["timeouts"]
    with pytest.raises(ValueError, match="episode_0 has mismatched lengths: observations 5"):
        D.load_minari(folder)
    with pytest.raises(ValueError, match="no data/main_data.hdf5"):
        D.load_minari(tmp_path)


def test_mismatched_lengths_and_nans_are_named():
    arrays = flat(episodes())
    with pytest.raises(ValueError, match="'rewards' has 17 rows but 'observations' has 18"):
        D.make_dataset(**{**arrays, "rewards": arrays["rewards"][:-1]})
    bad = arrays["actions"].copy()
    bad[4, 0] = np.nan
    with pytest.raises(ValueError, match="'actions' has a NaN or infinite value \\(first at "
                                         "index \\(4, 0\\)"):
        D.make_dataset(**{**arrays, "actions": bad})
    with pytest.raises(ValueError, match="'next_observations' has shape"):
        D.make_dataset(**{**arrays, "next_observations": arrays["next_observations"][:, :2]})
    with pytest.raises(ValueError, match="'observations' is empty"):
        D.make_dataset(**{name: values[:0] for name, values in arrays.items()})


def test_dataset_of_another_env_is_refused(toy_dataset):
    env, params = make("gymnax/MountainCarContinuous-v0")
    with pytest.raises(ValueError, match="'observations' of toy-medium-v0 has shape \\(3,\\)"):
        D.check_matches_env(toy_dataset, env, params)
    env, params = make("gymnax/Pendulum-v1")
    D.check_matches_env(toy_dataset, env, params)  # fits
    two_dim = toy_dataset.replace(actions=np.zeros((toy_dataset.size, 2), np.float32))
    with pytest.raises(ValueError, match="'actions' of toy-medium-v0 has shape \\(2,\\)"):
        D.check_matches_env(two_dim, env, params)
    env, params = make("gymnax/CartPole-v1")
    with pytest.raises(ValueError, match="'observations'"):
        D.check_matches_env(toy_dataset, env, params)


# --- scores and sampling ------------------------------------------------------------------------
def test_normalized_score_and_episode_returns(toy_dataset):
    assert D.normalized_score(-1200.0, -1200.0, -150.0) == 0.0
    assert D.normalized_score(-150.0, -1200.0, -150.0) == 100.0
    assert D.normalized_score(-850.0, -1200.0, -150.0) == pytest.approx(100 * 350 / 1050)
    returns = D.episode_returns(toy_dataset)
    eps = episodes()
    np.testing.assert_allclose(returns, [e["rewards"].sum() for e in eps], rtol=1e-6)


def test_uniform_sampler_covers_every_transition(toy_dataset):
    sampler = D.TransitionSampler.uniform(toy_dataset)
    indices = np.asarray(jax.jit(sampler.sample_indices, static_argnums=1)(
        jax.random.key(0), 18_000))
    counts = np.bincount(indices, minlength=18)
    assert counts.min() > 800 and counts.max() < 1200  # 1000 expected each
    batch = sampler.sample(jax.random.key(1), 4)
    assert batch.observation.shape == (4, 3) and batch.action.shape == (4, 1)


def test_return_weighted_sampler_prefers_high_return_episodes():
    eps = episodes()
    for k, episode in enumerate(eps):
        episode["rewards"] = np.full(len(episode["rewards"]), [-1.0, 0.0, -0.5][k])
    dataset = D.make_dataset(**flat(eps))  # returns -5, 0, -3.5
    temperature = 0.5
    sampler = D.TransitionSampler.return_weighted(dataset, temperature)
    probabilities = np.asarray(sampler.probabilities())
    # Episode weights exp(g / T) with g the return rescaled to [0, 1]: 0, 1, 0.3.
    weights = np.exp(np.array([0.0, 1.0, 0.3]) / temperature)
    per_transition = np.repeat(weights, [5, 6, 7])
    np.testing.assert_allclose(probabilities, per_transition / per_transition.sum(), rtol=1e-5)
    draws = np.asarray(sampler.sample_indices(jax.random.key(0), 50_000))
    frequencies = np.bincount(draws, minlength=18) / 50_000
    np.testing.assert_allclose(frequencies, probabilities, atol=0.005)
    # A high temperature is uniform over transitions.
    flat_probabilities = D.TransitionSampler.return_weighted(dataset, 1e6).probabilities()
    np.testing.assert_allclose(flat_probabilities, 1 / 18, rtol=1e-4)
    with pytest.raises(ValueError, match="temperature > 0; got 0"):
        D.TransitionSampler.return_weighted(dataset, 0)


@pytest.mark.parametrize("damage", ["not hdf5", "truncated"])
def test_a_damaged_dataset_file_is_one_error_naming_it(tmp_path, damage):
    path = tmp_path / "data.hdf5"
    with h5py.File(path, "w") as file:
        for name, values in flat(episodes()).items():
            file[name] = values
    if damage == "not hdf5":
        path.write_text("observations,actions\n1,2\n")
    else:
        path.write_bytes(path.read_bytes()[:2000])
    with pytest.raises(ValueError, match=re.escape(str(path))):
        D.load_d4rl(path, ref_min_score=-1.0, ref_max_score=1.0)


def test_dataset_actions_outside_the_env_bounds_are_refused_or_clipped_on_request(toy_dataset):
    from jaxrl_suite.algos.offline import iql
    from jaxrl_suite.data.offline import prepare_offline

    env, params = make("gymnax/Pendulum-v1")
    config = iql.Config(dataset="toy")
    prepare_offline(config, env, params, "IQL", toy_dataset)  # within [-2, 2]: accepted
    far = toy_dataset.replace(actions=np.asarray(toy_dataset.actions) * 50.0 + 3.0)
    with pytest.raises(ValueError, match=r"IQL: \d+ of the dataset's 18 actions lie outside the "
                                         r"env's action bounds \[-2, 2\]"):
        prepare_offline(config, env, params, "IQL", far)
    clipped = prepare_offline(dataclasses.replace(config, clip_dataset_actions=True), env, params,
                              "IQL", far)
    actions = np.asarray(clipped.dataset.actions)
    assert actions.min() >= -2.0 and actions.max() <= 2.0 and (np.abs(actions) == 2.0).any()
