"""Multi-objective learning: C-MORL's front on Deep Sea Treasure (concave) through the harness,
and a PPO preference set's hypervolume on MO-MountainCar."""

from __future__ import annotations

import json

import jax
import numpy as np
import pytest

import jaxrl_suite
from jaxrl_suite.algos import ppo
from jaxrl_suite.algos.morl import cmorl, preference_set
from jaxrl_suite.envs.mo import pareto_front
from jaxrl_suite.run import pareto
from jaxrl_suite.run.harness import run_training
from jaxrl_suite.run.options import RunOptions


@pytest.mark.slow
def test_cmorl_finds_nine_of_the_ten_pareto_points_of_concave_deep_sea_treasure(tmp_path):
    # The preset: 24 preferences, 8 extension rounds, 4.3M env steps in about 35 s. Measured
    # with keys 0-3 (train.init's key): 10, 10, 9 and 10 of the 10 points. Linear scalarisation
    # alone supports only the two extremes of this front; a learner that does not explore
    # finds the first treasure (1, -1) only.
    env_id = "mo/deep-sea-treasure-concave"
    config = cmorl.preset_config(env_id)
    options = RunOptions(env=env_id, seeds=1, run_dir=str(tmp_path / "run"), no_progress=True,
                         tensorboard=False, eval_episodes=2)
    result, run_dir = run_training(cmorl, config, options)
    true_front = pareto_front(env_id)
    state = jax.tree.map(lambda x: x[0], result.state)
    found = cmorl.archive_front(state)
    hits = sum(bool(np.any(np.all(np.isclose(found, point), axis=1))) for point in true_front)
    assert hits >= 9, found
    assert len(found) <= 10  # every point of the archive's front is a true Pareto point
    saved = json.loads((run_dir / "front.json").read_text())
    np.testing.assert_allclose(np.asarray(saved["points"]), found)
    metrics = saved["metadata"]["metrics"]
    assert metrics["cardinality"] == len(found) and metrics["igd"] < 1.0
    assert metrics["hypervolume"] >= 0.95 * pareto.hypervolume(true_front, [0.0, -25.0])
    assert (run_dir / "front.png").stat().st_size > 0 and (run_dir / "front.csv").exists()
    # The same policies' discounted returns (gamma 0.99) against the shipped discounted front.
    discounted = json.loads((run_dir / "front_discounted.json").read_text())
    assert discounted["metadata"]["discount"] == 0.99
    assert discounted["metadata"]["metrics"]["cardinality"] >= 9
    assert discounted["metadata"]["metrics"]["igd"] < 1.0
    curve = result.metrics["hypervolume"][:, 0]
    assert curve[-1] >= curve[result.metrics["hypervolume"].shape[0] // 3]  # never lost


@pytest.mark.slow
def test_a_ppo_preference_set_reaches_the_goal_of_mo_mountaincar():
    # 6 preferences (Riesz directions, the three single-objective ones first), 500k env steps
    # each: measured hypervolume 1.50M, 1.50M and 1.49M (keys 0, 1, 2) at the env's reference
    # point (-201, -201, -201): the equal-weights policy reaches the goal in about 124 steps.
    # Without reaching it every return is at most (-200, 0, 0), a hypervolume of 40,401.
    env, env_params = jaxrl_suite.make("mo/mountaincar")
    learner = ppo.Config(total_steps=500_000, num_envs=16, num_steps=128, learning_rate=3e-3,
                         entropy_coef=0.01, normalize_rewards=True)
    train = preference_set.make_train(preference_set.Config(num_preferences=6), env,
                                      env_params, learner_config=learner)
    result = jax.jit(train)(jax.random.key(0))
    returns = np.asarray(preference_set.evaluate_front(train, result.state, jax.random.key(1)))
    hypervolume = pareto.hypervolume(pareto.pareto_front(returns), env.unwrapped.reference_point)
    assert hypervolume > 1.0e6, returns
