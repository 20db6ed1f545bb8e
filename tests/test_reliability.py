"""Reliability of a run: divergence is caught, damaged checkpoints are skipped, and a resumed run
leaves its folder as an uninterrupted one would (issue "reliability and compatibility", parts 1
and 2).

Most tests drive the harness with ``CountingTrain``, a tiny ``Train`` whose parameters count
updates and turn non-finite at a chosen update and seed, so each test compiles in about a
second and the harness logic is checked exactly; one test runs real PPO with a learning rate
that blows it up.
"""

from __future__ import annotations

import csv
import shutil
import warnings
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import struct

from jaxrl_suite.algos import ppo
from jaxrl_suite.cli import main as cli_main
from jaxrl_suite.run.checkpoints import Checkpointer, CheckpointError, CheckpointWarning
from jaxrl_suite.run.divergence import TrainingDiverged, learned_leaves
from jaxrl_suite.run.harness import RunOptions, run_training
from jaxrl_suite.run.sinks import read_scalars
from jaxrl_suite.run.training import Train

NUM_UPDATES = 10


@struct.dataclass
class CountingState:
    params: dict
    opt_state: jax.Array
    seed_index: jax.Array
    update_step: jax.Array
    buffer_scores: jax.Array  # -inf by design: never looked at by the finiteness check


def counting_train(bad_update: int = 0, bad_seed: int = 0, what: str = "loss") -> Train:
    """Params count updates; from update ``bad_update`` on (0: never), seed ``bad_seed``'s
    loss (``what="loss"``) or its ``params["w"]`` (``what="params"``) is NaN / infinite."""

    def init(key, hparams):
        del key  # nothing random: hparams carry the seed's index
        return CountingState({"w": jnp.zeros(3), "b": jnp.zeros(())}, jnp.zeros(2), hparams,
                             jnp.int32(0), jnp.full(4, -jnp.inf))

    def update(state):
        step = state.update_step + 1
        broken = (bad_update > 0) & (step >= bad_update) & (state.seed_index == bad_seed)
        w = state.params["w"] + 1.0
        if what == "params":
            w = jnp.where(broken, jnp.inf, w)
        loss = jnp.sum(w) * 0.5 if what == "loss" else step.astype(jnp.float32)
        if what == "loss":
            loss = jnp.where(broken, jnp.nan, loss)
        state = state.replace(params={"w": w, "b": state.params["b"] + 0.5},
                              opt_state=state.opt_state + 1.0, update_step=step)
        metrics = {"loss": loss, "episode_return": step.astype(jnp.float32),
                   "env_steps": step * 8}
        return state, metrics

    return Train(init=init, update=update, num_updates=NUM_UPDATES, env_steps_per_update=8,
                 default_hparams=jnp.int32(0), make_policy=None, config=None)


def run_options(run_dir: Path | None, **overrides) -> RunOptions:
    base = dict(env="gymnax/CartPole-v1", seeds=2, run_dir=None if run_dir is None else
                str(run_dir), checkpoint_every=2,
                progress_every=1, eval_episodes=0, tensorboard=True)
    return RunOptions(**{**base, **overrides})


def seed_hparams():
    return jnp.arange(2, dtype=jnp.int32)  # seed i carries its index


def saved_updates(run_dir: Path) -> list[int]:
    return sorted(int(p.name) for p in (run_dir / "checkpoints").iterdir() if p.name.isdigit())


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as file:
        return list(csv.DictReader(file))


# --- 1. divergence --------------------------------------------------------------------------
def test_a_nan_loss_stops_the_run_naming_update_seed_and_metric(tmp_path):
    run_dir = tmp_path / "run"
    with pytest.raises(TrainingDiverged) as caught:
        run_training("counting", options=run_options(run_dir, keep_checkpoints=5),
                     train=counting_train(bad_update=5, bad_seed=1), hparams=seed_hparams())
    message = str(caught.value)
    assert "update 5, seed 1: loss = nan" in message
    # Updates 5 and 6 ran in the chunk that diverged; its state is not saved.
    assert saved_updates(run_dir) == [2, 4]
    assert "newest finite checkpoint, update 4" in message and str(run_dir) in message
    rows = read_rows(run_dir / "metrics.csv")
    assert [float(r["finite"]) for r in rows if r["seed"] == "1"] == [1.0] * 4 + [0.0] * 2
    assert all(float(r["finite"]) == 1.0 for r in rows if r["seed"] == "0")


def test_non_finite_parameters_are_named_by_their_array(tmp_path):
    with pytest.raises(TrainingDiverged, match=r"update 3, seed 0: parameters.*\['w'\]"):
        run_training("counting", options=run_options(tmp_path / "run"),
                     train=counting_train(bad_update=3, bad_seed=0, what="params"),
                     hparams=seed_hparams())


def test_warn_trains_on_and_never_evicts_the_last_finite_checkpoint(tmp_path, capsys):
    run_dir = tmp_path / "run"
    result, _ = run_training(
        "counting", options=run_options(run_dir, keep_checkpoints=1, on_nonfinite="warn"),
        train=counting_train(bad_update=5, bad_seed=1), hparams=seed_hparams())
    assert "training diverged at update 5, seed 1" in capsys.readouterr().err
    assert result.metrics["finite"].shape == (NUM_UPDATES, 2)
    # keep 1: the newest (non-finite) and the newest finite one, update 4.
    assert saved_updates(run_dir) == [4, 10]
    checkpointer = Checkpointer(run_dir / "checkpoints", 1)
    try:
        assert checkpointer.newest_finite_update() == 4
        assert not checkpointer.is_finite(10)
    finally:
        checkpointer.close()


def test_the_finiteness_check_reads_learned_fields_only():
    state = counting_train().init(jax.random.key(0), jnp.int32(0))
    paths = sorted(path for path, _ in learned_leaves(state))
    assert paths == [".opt_state", ".params['b']", ".params['w']"]  # not buffer_scores (-inf)


@pytest.mark.parametrize("field, value", [
    ("learning_rate", float("inf")), ("learning_rate", float("nan")),
    ("max_grad_norm", float("inf")), ("entropy_coef", float("inf")),
    ("adam_eps_root", float("nan")), ("value_coef", -float("inf")),
])
def test_inf_is_refused_wherever_nan_is(field, value):
    import jaxrl_suite

    env, params = jaxrl_suite.make("gymnax/CartPole-v1")
    with pytest.raises(ValueError, match=rf"{field} must be .*finite.*; got {value!r}"):
        ppo.make_train(ppo.Config(**{field: value}), env, params)


@pytest.mark.slow
def test_ppo_with_an_exploding_learning_rate_exits_non_zero(tmp_path, capsys):
    run_dir = tmp_path / "exploding"
    code = cli_main(["train", "ppo", "--env", "gymnax/CartPole-v1", "--learning-rate", "1e30",
                     "--total-steps", "4096", "--num-envs", "4", "--num-steps", "64",
                     "--checkpoint-every", "2", "--run-dir", str(run_dir), "--no-tensorboard",
                     "--eval-episodes", "0"])
    err = capsys.readouterr().err
    assert code == 3, err
    assert "Training diverged" in err and "seed 0" in err
    assert err.count("\n") == 1  # one plain line
    for update in saved_updates(run_dir):  # whatever was kept holds finite values only
        checkpointer = Checkpointer(run_dir / "checkpoints")
        try:
            assert checkpointer.is_finite(update)
        finally:
            checkpointer.close()


# --- 2. damaged checkpoints -----------------------------------------------------------------
def _largest_file(folder: Path) -> Path:
    return max((p for p in folder.rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)


def truncate_array_file(step_dir: Path) -> None:
    path = _largest_file(step_dir / "state")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def empty_manifest(step_dir: Path) -> None:
    for path in (step_dir / "state").rglob("manifest.ocdbt"):
        path.write_bytes(b"")


def corrupt_record(step_dir: Path) -> None:
    for path in (step_dir / "record").rglob("*"):
        if path.is_file():
            path.write_text("{not json")


DAMAGE = {"truncated array file": truncate_array_file, "empty manifest": empty_manifest,
          "corrupt record": corrupt_record}


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("finished") / "run"
    result, _ = run_training("counting", options=run_options(run_dir, keep_checkpoints=5),
                             train=counting_train(), hparams=seed_hparams())
    return run_dir, result


def restore_latest(run_dir: Path, like) -> tuple:
    import json

    fingerprint = json.loads((run_dir / "config.json").read_text())["fingerprint"]
    checkpointer = Checkpointer(run_dir / "checkpoints")
    try:
        return checkpointer.restore(like, fingerprint)
    finally:
        checkpointer.close()


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_damaged_checkpoint_falls_back_to_the_previous_one(tmp_path, finished_run, damage):
    source, result = finished_run
    run_dir = tmp_path / "run"
    shutil.copytree(source, run_dir)
    assert saved_updates(run_dir) == [2, 4, 6, 8, 10]
    DAMAGE[damage](run_dir / "checkpoints" / "10")
    with pytest.warns(CheckpointWarning, match=r"update 10 \(.*checkpoints/10\)"):
        state, update = restore_latest(run_dir, result.state)
    assert update == 8
    np.testing.assert_array_equal(np.asarray(state.params["w"]), np.full((2, 3), 8.0))


def test_no_intact_checkpoint_is_one_plain_error(tmp_path, finished_run):
    source, result = finished_run
    run_dir = tmp_path / "run"
    shutil.copytree(source, run_dir)
    damages = list(DAMAGE.values())
    for i, update in enumerate(saved_updates(run_dir)):
        damages[i % len(damages)](run_dir / "checkpoints" / str(update))
    with warnings.catch_warnings(), pytest.raises(CheckpointError) as caught:
        warnings.simplefilter("ignore", CheckpointWarning)
        restore_latest(run_dir, result.state)
    message = str(caught.value)
    assert "\n" not in message and "could be read" in message
    assert all(f"update {u}" in message for u in (2, 4, 6, 8, 10))


def test_resume_past_a_damaged_checkpoint_finishes_the_run(tmp_path, finished_run):
    source, result = finished_run
    run_dir = tmp_path / "run"
    shutil.copytree(source, run_dir)
    DAMAGE["truncated array file"](run_dir / "checkpoints" / "10")
    with pytest.warns(CheckpointWarning):
        resumed, _ = run_training("counting", options=run_options(None, resume=str(run_dir),
                                                                  keep_checkpoints=5),
                                  train=counting_train(), hparams=seed_hparams())
    np.testing.assert_array_equal(np.asarray(resumed.state.params["w"]),
                                  np.asarray(result.state.params["w"]))


# --- 2. a resumed run's folder is an uninterrupted run's ---------------------------------------
def folder_contents(run_dir: Path) -> dict:
    """What must agree between a resumed and an uninterrupted run: the metrics rows, the progress
    rows without their wall times, the TensorBoard scalars without theirs, the checkpoints."""
    progress = [{k: v for k, v in row.items() if k != "wall_seconds"}
                for row in read_rows(run_dir / "progress.csv")]
    scalars = [(tag, step, value) for tag, step, value, _ in read_scalars(run_dir / "tensorboard")]
    return {
        "metrics": read_rows(run_dir / "metrics.csv"),
        "progress": progress,
        "tensorboard": sorted(scalars),
        "tensorboard_files": len(list((run_dir / "tensorboard").iterdir())),
        "checkpoints": saved_updates(run_dir),
    }


@pytest.mark.parametrize("killed_after", [0, 4])
def test_a_resumed_run_folder_matches_an_uninterrupted_one(tmp_path, finished_run, killed_after):
    """A run killed after the checkpoint of update ``killed_after`` (0: before its first one
    finished) wrote metrics, progress and TensorBoard scalars past it; resumed, the folder must
    hold each exactly once."""
    source, _ = finished_run
    run_dir = tmp_path / "run"
    shutil.copytree(source, run_dir)
    for update in saved_updates(run_dir):  # the later checkpoints never landed
        if update > killed_after:
            shutil.rmtree(run_dir / "checkpoints" / str(update))
    run_training("counting", options=run_options(None, resume=str(run_dir), keep_checkpoints=5),
                 train=counting_train(), hparams=seed_hparams())
    assert folder_contents(run_dir) == folder_contents(source)


def test_an_update_that_did_not_learn_may_report_nan_losses():
    from jaxrl_suite.run.divergence import finite_flag

    state = counting_train().init(jax.random.key(0), jnp.int32(0))
    nan_loss = {"policy_loss": jnp.float32(jnp.nan)}
    assert float(finite_flag(state, nan_loss)) == 0.0
    assert float(finite_flag(state, {**nan_loss, "learned": jnp.float32(0.0)})) == 1.0
    assert float(finite_flag(state, {**nan_loss, "learned": jnp.float32(1.0)})) == 0.0
    broken = state.replace(params={**state.params, "w": jnp.full(3, jnp.nan)})
    assert float(finite_flag(broken, {**nan_loss, "learned": jnp.float32(0.0)})) == 0.0


# --- 3. file-system and resource errors -------------------------------------------------------
def test_an_existing_run_folder_is_refused(tmp_path):
    (tmp_path / "run").mkdir()
    with pytest.raises(ValueError, match="exists already.*--resume"):
        run_training("counting", options=run_options(tmp_path / "run"), train=counting_train(),
                     hparams=seed_hparams())


def test_a_run_folder_that_cannot_be_made_is_one_error(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(ValueError, match=r"Cannot create the run folder .*file/run: "):
        run_training("counting", options=run_options(tmp_path / "file" / "run"),
                     train=counting_train(), hparams=seed_hparams())


def test_an_unwritable_run_folder_is_refused_before_restoring(tmp_path, finished_run,
                                                             monkeypatch):
    import os

    source, _ = finished_run
    run_dir = tmp_path / "run"
    shutil.copytree(source, run_dir)
    real_access = os.access
    # As root (CI) permission bits do not stop writes, so the check is shown a read-only folder.
    monkeypatch.setattr(os, "access", lambda path, mode: False if Path(path) == run_dir
                        else real_access(path, mode))
    with pytest.raises(ValueError, match="is not writable"):
        run_training("counting", options=run_options(None, resume=str(run_dir)),
                     train=counting_train(), hparams=seed_hparams())


def test_a_full_disk_is_one_error_naming_the_file(tmp_path, monkeypatch):
    import errno

    from jaxrl_suite.run import harness

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(harness, "append_csv", full)
    with pytest.raises(ValueError, match=r"Could not write .*metrics.csv: No space left"):
        run_training("counting", options=run_options(tmp_path / "run"), train=counting_train(),
                     hparams=seed_hparams())


def test_a_run_too_large_for_the_machine_is_refused_and_leaves_no_folder(tmp_path):
    from jaxrl_suite.run.resources import RunTooLarge

    run_dir = tmp_path / "huge"
    config = ppo.Config(hidden_sizes=(100_000, 100_000), total_steps=512)
    with pytest.raises(RunTooLarge, match=r"training state of 1 seed\(s\) needs about \d+\.\d GB"):
        run_training(ppo, config, RunOptions(env="gymnax/CartPole-v1", run_dir=str(run_dir),
                                             eval_episodes=0))
    assert not run_dir.exists()


def test_a_picture_too_large_is_refused_before_drawing(tmp_path, capsys):
    code = cli_main(["render", "maze", "--size", "5000", str(tmp_path / "big.png")])
    err = capsys.readouterr().err
    assert code == 2 and "GB" in err and "--size" in err, err
    assert not (tmp_path / "big.png").exists()


def test_a_budget_that_is_not_whole_updates_is_said_to_be_rounded(tmp_path):
    from jaxrl_suite.run.harness import BudgetRoundedWarning

    config = ppo.Config(total_steps=1000, num_envs=4, num_steps=64, num_minibatches=2)
    with pytest.warns(BudgetRoundedWarning, match=r"total_steps 1,000 is rounded down to 768 "
                                                  r"env steps.*256 env steps \(3 of them\)"):
        run_training(ppo, config, RunOptions(env="gymnax/CartPole-v1", eval_episodes=0,
                                             run_dir=str(tmp_path / "run"), no_progress=True))
