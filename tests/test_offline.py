"""The offline harness: BC learning on the Pendulum family, return-weighted sampling, the CLI
(`jaxrl train bc --dataset NAME`, env taken from the dataset), resume, the dataset kept out of
the training state, and errors. Algorithm-specific checks live in tests/test_<algo>.py."""

from __future__ import annotations

import csv
import json
import shutil

import jax
import numpy as np
import pytest

from jaxrl_suite import make
from jaxrl_suite.algos.offline import bc
from jaxrl_suite.cli import main as cli_main
from jaxrl_suite.data.datasets import behaviour_score, normalized_score, save_minari
from jaxrl_suite.run.checkpoints import Checkpointer
from tests.offline_data import pendulum_family

ENV_ID = "gymnax/Pendulum-v1"


@pytest.fixture(scope="module")
def family():
    return pendulum_family()


@pytest.fixture(scope="module")
def env():
    return make(ENV_ID)


def small_bc(**overrides) -> bc.Config:
    return bc.preset_config(ENV_ID, **{"dataset": "in-memory", "hidden_sizes": (64, 64),
                                       "total_updates": 3_000, "eval_interval": 1_000,
                                       "evaluation_episodes": 32, **overrides})


@pytest.fixture(scope="module")
def bc_medium(family, env):
    train = bc.make_train(small_bc(), *env, dataset=family["medium"])
    return train, jax.jit(jax.vmap(train))(jax.random.split(jax.random.key(0), 2))


@pytest.mark.slow
def test_bc_clones_the_behaviour_policy_on_medium(family, bc_medium):
    """BC imitates: on medium its deterministic policy scores what the data's stochastic one
    does. Measured (3 seeds, 32 episodes, 4e3 steps): 30-36 against the data's 34.9; it does
    not beat the behaviour policy, which the offline RL algorithms do (tests/test_<algo>.py)."""
    _, result = bc_medium
    behaviour = behaviour_score(family["medium"])
    final = np.asarray(result.metrics["normalized_score"])[:, -2:].mean()
    assert abs(final - behaviour) < 8, (final, behaviour)


@pytest.mark.slow
def test_logged_score_is_the_normalised_episode_return(family, bc_medium):
    _, result = bc_medium
    info = family["medium"].info
    np.testing.assert_allclose(
        result.metrics["normalized_score"],
        normalized_score(np.asarray(result.metrics["episode_return"]), info.ref_min_score,
                         info.ref_max_score), rtol=1e-5)
    np.testing.assert_array_equal(result.metrics["gradient_steps"][0], [1000, 2000, 3000])


@pytest.mark.slow
def test_the_dataset_is_not_in_the_training_state(family, bc_medium):
    """The dataset is the compiled program's argument (Train.data), shared by the seeds: no
    leaf of the state (what checkpoints save) is dataset-sized."""
    train, result = bc_medium
    size = family["medium"].size
    assert train.data.dataset.size == size
    for leaf in jax.tree.leaves(result.state):
        assert size not in np.shape(leaf)


@pytest.mark.slow
def test_return_weighted_sampling_clones_the_better_half_of_a_mixed_dataset(family, env):
    """Trajectory weighting: on medium-expert, BC drawing high-return episodes more often
    scores closer to the expert than BC drawing uniformly. Measured (3 seeds, 4e3 steps):
    uniform 47-62, return-weighted (temperature 0.1) 90-98 after 2e3 steps; the data's 68.7."""
    dataset = family["medium-expert"]
    scores = {}
    for sampling in ("uniform", "return_weighted"):
        train = bc.make_train(small_bc(sampling=sampling, sampling_temperature=0.1), *env,
                              dataset=dataset)
        result = jax.jit(jax.vmap(train))(jax.random.split(jax.random.key(1), 2))
        scores[sampling] = float(np.asarray(result.metrics["normalized_score"])[:, -1].mean())
    assert scores["return_weighted"] > scores["uniform"] + 15, scores
    assert scores["return_weighted"] > behaviour_score(dataset), scores


@pytest.mark.slow
def test_errors_name_the_bad_setting(family, env):
    with pytest.raises(ValueError, match="--dataset NAME\\|PATH"):
        bc.make_train(bc.Config(), *env)
    with pytest.raises(ValueError, match="sampling must be one of uniform, return_weighted"):
        bc.make_train(small_bc(sampling="prioritised"), *env, dataset=family["medium"])
    with pytest.raises(ValueError, match="total_updates \\(10\\) must be at least one "
                                         "eval_interval"):
        bc.make_train(small_bc(total_updates=10), *env, dataset=family["medium"])
    with pytest.raises(ValueError, match="ref_min_score and ref_max_score go together"):
        bc.make_train(small_bc(ref_min_score=-1.0), *env, dataset=family["medium"])
    with pytest.raises(ValueError, match="learning_rate must be positive"):
        bc.make_train(small_bc(learning_rate=0.0), *env, dataset=family["medium"])
    other_env = make("gymnax/MountainCarContinuous-v0")
    with pytest.raises(ValueError, match="'observations' of pendulum-medium-v0 has shape"):
        bc.make_train(small_bc(), *other_env, dataset=family["medium"])
    with pytest.raises(ValueError, match="continuous \\(Box\\) actions"):
        bc.make_train(small_bc(), *make("gymnax/CartPole-v1"), dataset=family["medium"])


def _final_state(run_dir):
    """The seed-batched state of a run folder's last checkpoint (keys as raw data) and its
    update."""
    from jaxrl_suite.run.folder import load_run

    algorithm, config, options, _ = load_run(run_dir)
    train = algorithm.make_train(config, *make(options.env))
    like = train.initial_states(jax.random.split(jax.random.key(options.seed), options.seeds))
    checkpointer = Checkpointer(run_dir / "checkpoints")
    try:
        fingerprint = json.loads((run_dir / "config.json").read_text())["fingerprint"]
        state, update = checkpointer.restore(like, fingerprint)
    finally:
        checkpointer.close()
    state = state.replace(key=jax.random.key_data(state.key))
    return update, state


@pytest.mark.slow
def test_cli_trains_from_a_dataset_name_and_resumes_exactly(family, tmp_path, monkeypatch,
                                                           capsys):
    monkeypatch.setenv("JAXRL_DATASETS", str(tmp_path / "datasets"))
    env, params = make(ENV_ID, wrappers=False)
    save_minari(family["medium"], tmp_path / "datasets" / "pendulum-medium-v0",
                env.observation_space(params), env.action_space(params))
    flags = ["--dataset", "pendulum-medium-v0", "--total-updates", "800", "--eval-interval",
             "200", "--hidden-sizes", "32", "32", "--evaluation-episodes", "4", "--seeds", "2",
             "--checkpoint-every", "2", "--no-tensorboard", "--eval-episodes", "2"]
    run_dir = tmp_path / "run"
    assert cli_main(["train", "bc", *flags, "--run-dir", str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert "800 gradient steps each" in out and "final normalised score" in out
    record = json.loads((run_dir / "config.json").read_text())["run"]
    assert record["env"] == ENV_ID  # taken from the dataset's metadata
    summary = json.loads((run_dir / "dataset.json").read_text())
    assert summary["name"] == "pendulum-medium-v0" and summary["transitions"] == (
        family["medium"].size)
    assert summary["behaviour_normalized_score"] == pytest.approx(
        behaviour_score(family["medium"]), rel=1e-5)
    with (run_dir / "metrics.csv").open() as file:
        rows = list(csv.DictReader(file))
    assert len(rows) == 4 * 2 and {"normalized_score", "gradient_steps", "bc_loss"} <= set(rows[0])
    assert (run_dir / "learning_curve.png").exists() and (run_dir / "eval.json").exists()

    # Kill-and-resume: without the last checkpoint, --resume ends at exactly the same state.
    update, uninterrupted = _final_state(run_dir)
    assert update == 4
    shutil.rmtree(run_dir / "checkpoints" / "4")
    assert cli_main(["train", "bc", "--resume", str(run_dir)]) == 0
    update, resumed = _final_state(run_dir)
    assert update == 4
    for a, b in zip(jax.tree.leaves(uninterrupted), jax.tree.leaves(resumed)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    with (run_dir / "metrics.csv").open() as file:
        assert len(list(csv.DictReader(file))) == 4 * 2


def test_cli_without_a_dataset_says_what_to_pass(capsys):
    assert cli_main(["train", "bc", "--no-tensorboard"]) == 2
    assert "--dataset NAME|PATH" in capsys.readouterr().err
    assert cli_main(["train", "iql", "--dataset", "no-such-dataset-v0"]) == 2
    assert "No dataset 'no-such-dataset-v0'" in capsys.readouterr().err
