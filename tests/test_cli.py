"""The jaxrl command: env listing, random rollout, clear errors."""

from __future__ import annotations

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
