"""The jaxrl command: env listing, random rollout, clear errors."""

from __future__ import annotations

import pytest

from jaxrl_suite import cli


def test_envs_lists_registered_ids(capsys):
    assert cli.main(["envs", "--prefix", "gymnax/"]) == 0
    lines = capsys.readouterr().out.split()
    assert "gymnax/CartPole-v1" in lines and all(line.startswith("gymnax/") for line in lines)


def test_rollout_prints_throughput_and_returns(capsys):
    assert cli.main(["rollout", "--env", "gymnax/CartPole-v1", "--num-envs", "8",
                     "--steps", "200"]) == 0
    out = capsys.readouterr().out
    assert "env steps/s" in out and "episodes finished: return mean" in out


def test_unknown_env_is_a_clear_error(capsys):
    assert cli.main(["rollout", "--env", "CartPole"]) == 2
    assert "Unknown env id 'CartPole'" in capsys.readouterr().err


def test_algos_lists_ppo(capsys):
    assert cli.main(["algos"]) == 0
    names = [line.split()[0] for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert "ppo" in names and names == sorted(names)


@pytest.mark.slow
def test_train_then_eval_a_run_folder(tmp_path, capsys):
    # '4e3' checks that integer flags accept scientific notation, as users write step counts.
    code = cli.main(["train", "ppo", "--env", "gymnax/CartPole-v1", "--seeds", "2",
                     "--total-steps", "4e3", "--num-envs", "4", "--num-steps", "64",
                     "--runs-root", str(tmp_path), "--eval-episodes", "2"])
    out = capsys.readouterr().out
    assert code == 0, out
    (run_dir,) = list(tmp_path.iterdir())
    assert run_dir.name.startswith("ppo-gymnax_CartPole-v1-")
    assert "final training return" in out and str(run_dir) in out
    import json

    config = json.loads((run_dir / "config.json").read_text())["run"]
    # The CartPole preset applies by default, then the flags override it.
    assert config["config"]["update_epochs"] == 8 and config["config"]["num_envs"] == 4
    assert config["config"]["total_steps"] == 4000 and config["seeds"] == 2
    assert cli.main(["eval", str(run_dir), "--episodes", "2"]) == 0
    out = capsys.readouterr().out
    assert "deterministic" in out and "per seed" in out


def test_train_errors_are_one_clear_line(capsys, tmp_path):
    assert cli.main(["train", "pp0"]) == 2
    assert "Unknown algorithm 'pp0'. Did you mean 'ppo'?" in capsys.readouterr().err
    assert cli.main(["train", "ppo", "--num-minibatches", "3", "--runs-root",
                     str(tmp_path)]) == 2
    assert "not divisible by num_minibatches (3)" in capsys.readouterr().err
    assert cli.main(["train", "ppo", "--env", "gymnax/CartPole", "--runs-root",
                     str(tmp_path)]) == 2
    assert "Unknown env id 'gymnax/CartPole'" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())  # nothing written for a run that never started


@pytest.mark.slow
def test_algorithm_file_runs_as_a_script():
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).parents[1]
    result = subprocess.run([sys.executable, str(root / "algos" / "ppo.py"), "--help"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "--learning-rate" in result.stdout and "--checkpoint-every" in result.stdout
