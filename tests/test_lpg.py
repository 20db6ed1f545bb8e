"""LPG (meta/lpg.py), its agent (meta/agent.py) and GROOVE's curricula (meta/groove.py).

The meta-gradient against finite differences (float64), a hand-set objective against a policy
gradient step computed by hand, vmap over agents against separate agents, bit-exact resume, the
errors; the learning tests (meta-training improves fresh agents; algorithmic regret by hand) are
in the grid-world section below.
"""

from __future__ import annotations

import dataclasses
import json
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

import jaxrl_suite
from jaxrl_suite.env.levels import ParamLevels
from jaxrl_suite.meta import groove, lpg
from jaxrl_suite.meta.agent import AgentConfig, CriticState, ObjectiveInputs, make_agent
from jaxrl_suite.run.harness import RunOptions, run_training
from tests.states import assert_states_equal

# A tiny meta-run on CartPole levels (pole length varied): linear ("tabular") agents, an
# 8-unit objective GRU, two inner updates. Enough for every check that needs no learning.
TINY = lpg.Config(population_size=2, num_envs=4, rollout_steps=8, lifetime=6, inner_updates=2,
                  gru_width=8, embedding_width=4, policy_learning_rate=0.5,
                  prediction_learning_rate=0.5, eval_steps=10, meta_steps=4, buffer_size=4,
                  meta_learning_rate=1e-3)


def cartpole_levels():
    raw, _ = jaxrl_suite.make("gymnax/CartPole-v1", wrappers=False)
    return ParamLevels(raw, {"length": (0.3, 0.7)})


def one(tree, index=0):
    return jax.tree.map(lambda x: x[index], tree)


def to_float64(tree):
    return jax.tree.map(lambda x: x.astype(jnp.float64) if x.dtype == jnp.float32 else x, tree)


@pytest.fixture(scope="module")
def tiny():
    env = cartpole_levels()
    learner = lpg.make_learner(TINY, env, env.default_params)
    hparams = lpg.default_hyperparams(TINY)
    state = jax.jit(learner.init)(jax.random.key(0), hparams)
    return env, learner, hparams, state


def test_meta_gradient_matches_central_finite_differences():
    """The meta-gradient of one agent's K inner updates is the exact derivative of its meta-loss
    given the rollouts (rollouts are data): checked along random directions in float64."""
    with jax.enable_x64(True):
        env = cartpole_levels()
        learner = lpg.make_learner(TINY, env, env.default_params)
        hparams = to_float64(lpg.default_hyperparams(TINY))
        state = to_float64(learner.init(jax.random.key(0), hparams))
        agent = one(state.agents)
        critic = CriticState(one(state.critic_params), one(state.critic_opt_state))
        key = jax.random.key(3)

        def meta_loss(params, recorded=None, keep=False):
            return learner.agent_meta_loss(params, hparams, agent, critic, key,
                                           recorded=recorded, keep_rollouts=keep)

        gradient, aux = jax.jit(jax.grad(lambda p: meta_loss(p, keep=True), has_aux=True))(
            state.params)
        recorded = aux[3]
        replayed = jax.jit(lambda p: meta_loss(p, recorded)[0])
        flat, unravel = ravel_pytree(state.params)
        gradient = np.asarray(ravel_pytree(gradient)[0])
        assert flat.dtype == jnp.float64 and np.abs(gradient).max() > 1e-6
        # Replaying the recorded rollouts is the same function: the same gradient (to the last
        # bits, which XLA may order differently in the two programs).
        np.testing.assert_allclose(np.asarray(ravel_pytree(jax.grad(replayed)(
            state.params))[0]), gradient, rtol=1e-12, atol=1e-18)
        rng = np.random.default_rng(0)
        epsilon = 1e-6
        for _ in range(3):
            direction = rng.normal(size=flat.shape)
            direction /= np.linalg.norm(direction)
            difference = (replayed(unravel(flat + epsilon * direction))
                          - replayed(unravel(flat - epsilon * direction))) / (2 * epsilon)
            np.testing.assert_allclose(float(difference), float(gradient @ direction),
                                       rtol=1e-5, atol=1e-10)


def test_hand_set_objective_gives_the_policy_gradient_step_computed_by_hand():
    """``pi_hat = -A`` with A the one-step advantage of a fixed critic V = c: the agent's update
    is SGD ascent on ``mean(A log pi(a|s))``, the policy gradient, computed here with NumPy."""
    env = cartpole_levels()
    config = AgentConfig(num_envs=4, rollout_steps=8, policy_learning_rate=0.5,
                         max_grad_norm=0.005, gamma=0.9)
    agent = make_agent(config, env, env.default_params)
    baseline = 0.5

    def objective(_, inputs: ObjectiveInputs):
        advantage = (inputs.reward + inputs.gamma * (1.0 - inputs.terminated) * baseline
                     - baseline)
        return -advantage, jnp.full(inputs.prediction.shape, 1.0 / inputs.prediction.shape[-1])

    state = agent.init(jax.random.key(1), env.sample_level(jax.random.key(2), None), 10)
    # Non-zero weights, so pi is not uniform and the check sees the softmax's derivative.
    weights = jax.random.normal(jax.random.key(4), state.policy_params["params"]["Dense_0"][
        "kernel"].shape) * 0.3
    state = state.replace(policy_params={"params": {"Dense_0": {"kernel": weights}}})
    state, record = agent.rollout(state, jax.random.key(5))
    updated, _ = agent.learned_update(state, record, objective, None)

    x = np.asarray(record.observation, np.float64).reshape(-1, weights.shape[0])
    actions = np.asarray(record.action).reshape(-1)
    reward = np.asarray(record.reward, np.float64).reshape(-1)
    continues = 1.0 - np.asarray(record.terminated, np.float64).reshape(-1)
    advantage = reward + 0.9 * continues * baseline - baseline
    logits = x @ np.asarray(weights, np.float64)
    pi = np.exp(logits - logits.max(1, keepdims=True))
    pi /= pi.sum(1, keepdims=True)
    indicator = np.eye(weights.shape[1])[actions]
    # d/dW mean(-A log pi(a|x)) = -mean(A x (e_a - pi)^T); SGD with the global-norm clip.
    gradient = -(advantage[:, None, None] * x[:, :, None] * (indicator - pi)[:, None, :]).mean(0)
    norm = np.sqrt((gradient ** 2).sum())
    expected = np.asarray(weights, np.float64) - 0.5 * gradient * min(1.0, 0.005 / (norm + 1e-12))
    assert norm > 0.005  # the clip is exercised
    np.testing.assert_allclose(np.asarray(updated.policy_params["params"]["Dense_0"]["kernel"]),
                               expected, rtol=2e-5, atol=1e-6)
    assert int(updated.age) == int(state.age) + 1


def test_vmap_over_agents_equals_separate_agents(tiny):
    _, learner, hparams, state = tiny
    critics = CriticState(state.critic_params, state.critic_opt_state)
    keys = jax.random.split(jax.random.key(7), TINY.population_size)
    mean_gradient, agents, _, metrics = jax.jit(learner.population_gradient)(
        state.params, hparams, state.agents, critics, keys)
    separate = jax.jit(jax.grad(learner.agent_meta_loss, has_aux=True))
    gradients = []
    for i in range(TINY.population_size):
        gradient, (agent, _, agent_metrics) = separate(state.params, hparams, one(state.agents, i),
                                                       one(critics, i), keys[i])
        gradients.append(gradient)
        for a, b in zip(jax.tree.leaves(agent), jax.tree.leaves(one(agents, i)), strict=True):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(agent_metrics["meta_loss"], metrics["meta_loss"][i],
                                   rtol=1e-5, atol=1e-7)
    average = jax.tree.map(lambda *g: sum(g) / len(g), *gradients)
    for a, b in zip(jax.tree.leaves(average), jax.tree.leaves(mean_gradient), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-7)


def test_agent_chunks_and_remat_give_the_same_meta_gradient(tiny):
    env, learner, hparams, state = tiny
    critics = CriticState(state.critic_params, state.critic_opt_state)
    keys = jax.random.split(jax.random.key(7), TINY.population_size)
    reference = jax.jit(learner.population_gradient)(state.params, hparams, state.agents,
                                                     critics, keys)[0]
    other = lpg.make_learner(dataclasses.replace(TINY, agent_chunks=2, remat=True), env,
                             env.default_params)
    chunked = jax.jit(other.population_gradient)(state.params, hparams, state.agents, critics,
                                                 keys)[0]
    for a, b in zip(jax.tree.leaves(reference), jax.tree.leaves(chunked), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-7)


def test_meta_step_staggers_ages_and_replaces_dead_agents(tiny):
    _, learner, _, state = tiny
    ages = np.asarray(state.agents.age)
    assert ages.tolist() == [0, 2]  # agent i starts i/P through a 6-update life, in meta-steps
    update = jax.jit(learner.update)
    replaced = []
    for _ in range(3):
        state, metrics = update(state)
        replaced.append(int(metrics["agents_replaced"]))
        assert np.isfinite(float(metrics["meta_loss"]))
    # Agent 1 (age 2) dies after two meta-steps (age 6), agent 0 after three.
    assert replaced == [0, 1, 1]
    assert np.asarray(state.agents.age).tolist() == [0, 2]


def test_resume_continues_bit_exactly(tmp_path):
    config = dataclasses.replace(TINY, meta_steps=4)
    options = RunOptions(env="gridworld-small", run_dir=str(tmp_path / "run"),
                         checkpoint_every=2, no_progress=True)
    straight, run_dir = run_training(lpg, config, options)
    assert not (run_dir / "eval.json").exists()  # a meta-run has no policy to evaluate
    # As if killed after the checkpoint of meta-step 2: the last one is gone.
    shutil.rmtree(run_dir / "checkpoints" / "4")
    resumed, _ = run_training(lpg, config, dataclasses.replace(options, resume=str(run_dir)))

    assert_states_equal(straight.state, resumed.state)
    rows = (run_dir / "metrics.csv").read_text().splitlines()
    assert len(rows) == 1 + 4  # header and one row per meta-step, none repeated
    assert (run_dir / "learning_curve.png").exists()

    # `jaxrl meta eval` on the finished run: fresh agents by its objective and by A2C.
    from jaxrl_suite import cli

    assert cli.main(["meta", "eval", str(run_dir), "--on", "heldout", "gridworld/sparse",
                     "--seeds", "2", "--levels", "2", "--named-updates", "3"]) == 0
    results = json.loads((run_dir / "meta_eval" / "results.json").read_text())
    assert results["meta_step"] == 4 and set(results["targets"]) == {
        "heldout-gridworld-small", "gridworld/sparse"}
    sparse = results["targets"]["gridworld/sparse"]
    assert sparse["updates"] == 3 and sparse["optimal"] == pytest.approx(1.0)
    assert -1.0 <= sparse["lpg"]["mean"] <= 1.0 and len(sparse["a2c_curve"]) == 3
    assert (run_dir / "meta_eval" / "results.md").read_text().count("| gridworld/sparse |") == 1
    assert (run_dir / "meta_eval" / "heldout-gridworld-small.png").is_file()


def test_meta_eval_refuses_a_run_folder_of_another_kind(tmp_path, capsys):
    from jaxrl_suite import cli

    (tmp_path / "config.json").write_text(json.dumps({"run": {"algo": "ppo"}}))
    assert cli.main(["meta", "eval", str(tmp_path)]) == 2
    assert ("is a run of 'ppo'; accepted: a run folder of lpg, lpo or open"
            in capsys.readouterr().err)
    assert cli.main(["meta", "eval", str(tmp_path / "missing")]) == 2
    assert "not a run folder" in capsys.readouterr().err
    assert cli.main(["meta", "bogus"]) == 2
    assert cli.main(["meta", "--help"]) == 0
    assert "jaxrl meta lpg" in capsys.readouterr().out


@pytest.mark.parametrize("overrides, message", [
    ({"population_size": 0}, "population_size must be an integer >= 1"),
    ({"lifetime": 1, "inner_updates": 5}, "lifetime .* must be at least inner_updates"),
    ({"min_lifetime": 1}, "min_lifetime"),
    ({"min_lifetime": 7}, "min_lifetime"),
    ({"population_size": 3, "agent_chunks": 2}, "divisible by agent_chunks"),
    ({"curriculum": "ued"}, "curriculum must be one of"),
    ({"score": "regret"}, "score must be one of"),
    ({"meta_optimizer": "sgd"}, "meta_optimizer must be one of"),
    ({"meta_optimizer": "es", "population_size": 3}, "antithetic pairs"),
    ({"meta_learning_rate": float("nan")}, "finite"),
    ({"agent_network": "cnn"}, "network must be one of"),
    ({"prediction_width": 1}, "prediction_width must be >= 2"),
])
def test_bad_settings_are_refused_in_plain_words(overrides, message):
    env = cartpole_levels()
    with pytest.raises(ValueError, match=message):
        lpg.validate(dataclasses.replace(TINY, **overrides), env, env.default_params)


def test_an_env_without_levels_is_refused():
    env, params = jaxrl_suite.make("gymnax/CartPole-v1")
    with pytest.raises(ValueError, match="not a level environment"):
        lpg.make_train(TINY, env, params)


def test_unknown_curriculum_names_the_accepted_ones():
    with pytest.raises(ValueError, match=r"curriculum must be one of \('random', 'frozen'"):
        groove.make_curriculum("ued", "pvl", lambda key: jnp.zeros(()))
    with pytest.raises(ValueError, match="score must be one of"):
        groove.make_curriculum("plr", "regret", lambda key: jnp.zeros(()))


def test_algorithmic_regret_is_reference_minus_agent():
    np.testing.assert_allclose(groove.algorithmic_regret(jnp.array([1.0, 0.5]),
                                                         jnp.array([0.25, 0.75])), [0.75, -0.25])


# --- on the grid world ---------------------------------------------------------------------------
def test_algorithmic_regret_by_hand_on_a_one_step_level():
    """A one-step episode with a reward to the right of the start, ending the episode. A2C
    trained for the agent's lifetime learns to step right: its reference return is 1. The LPG
    agent's objective is zero (pi_hat = 0: the policy never changes), so it stays uniform and
    steps right in a fifth of its envs: algorithmic regret 1 - 1/5 = 0.8, up to the sampling of
    its 64 evaluation envs (standard deviation 0.05)."""
    from jaxrl_suite.envs import gridworld as gw

    toy = gw.level_from_picture(["S0", "##"], [1.0], [1.0], [0.0], episode_length=1)
    env = gw.GridWorld(max_side=2, max_objects=1, max_types=1, fixed_level=toy, name="toy")
    config = dataclasses.replace(TINY, num_envs=64, rollout_steps=4, lifetime=20,
                                 inner_updates=20, curriculum="plr", score="alg_regret",
                                 policy_learning_rate=40.0, prediction_learning_rate=4.0,
                                 eval_steps=1)
    learner = lpg.make_learner(config, env, env.default_params)
    state = learner.init(jax.random.key(0), lpg.default_hyperparams(config))
    state = state.replace(params=jax.tree.map(jnp.zeros_like, state.params))
    state, metrics = jax.jit(learner.update)(state)
    assert int(metrics["agents_replaced"]) == 2  # both lived their 20 updates in one step
    assert float(metrics["reference_return"]) == 1.0
    agent_return = float(metrics["final_agent_return"])
    assert abs(agent_return - 0.2) < 0.15
    np.testing.assert_allclose(float(metrics["level_score"]), 1.0 - agent_return, rtol=1e-6)
    # The level went into the buffer with its reference, computed once per scoring.
    buffer = state.curriculum.buffer
    assert int(buffer.size) == 1
    assert float(buffer.extra["reference_count"][0]) == 2.0  # two agents scored it
    assert float(buffer.extra["reference_return"][0]) == 1.0


# The meta-training task of the learning test: a 4x4 tabular level, a reward (+1) in the far
# corner and a penalty (-1) on the way, both ending the episode; 16-step episodes.
TOY_LEVEL = ["S...", "..1.", "....", "...0"]


@pytest.mark.slow
def test_short_meta_training_improves_fresh_agents_over_the_initial_objective():
    """150 meta-steps of 8 tabular agents (30-update lives, K = 5) on the toy level: fresh
    agents (keys the meta-run never used) trained by the learned objective then score far more
    than those trained by the initial, random objective network. Measured (the same settings,
    seeds 0-3 of the meta-run): the initial objective's agents about 0 (they wander into the
    penalty as often as into the reward); after 150 meta-steps 0.86-1.0 (not monotone: one seed
    was at 0.13 at meta-step 75); A2C 1.0."""
    from jaxrl_suite.envs import gridworld as gw
    from jaxrl_suite.meta.evaluate import make_comparison, summarize_comparison

    level = gw.level_from_picture(TOY_LEVEL, [1.0, -1.0], [1.0, 1.0], [0.0, 0.0],
                                  episode_length=16)
    env = gw.GridWorld(max_side=4, max_objects=2, max_types=2, fixed_level=level, name="toy")
    config = lpg.Config(population_size=8, num_envs=16, rollout_steps=16, lifetime=30,
                        inner_updates=5, gru_width=32, eval_steps=16, meta_steps=150,
                        meta_learning_rate=1e-2)
    learner = lpg.make_learner(config, env, env.default_params)
    state = jax.jit(learner.init)(jax.random.key(0), lpg.default_hyperparams(config))
    compare = make_comparison(config, env, env.default_params, config.lifetime)
    levels = jax.tree.map(lambda x: x[None], level)
    keys = jax.random.split(jax.random.key(100), 8)
    before = summarize_comparison(compare(state.params, levels, keys))
    state, metrics = jax.jit(lambda s: jax.lax.scan(lambda c, _: learner.update(c), s, None,
                                                    config.meta_steps))(state)
    after = summarize_comparison(compare(state.params, levels, keys))
    assert np.isfinite(np.asarray(metrics["meta_loss"])).all()
    assert before["a2c"].mean() > 0.9  # the level is solvable in a lifetime
    assert after["lpg"].mean() > before["lpg"].mean() + 0.5, (before["lpg"], after["lpg"])
    assert after["lpg"].mean() > 0.6, after["lpg"]


def test_es_meta_step_trains_antithetic_pairs_with_lifetime_inputs():
    """TA-LPG's recipe: lifetime inputs, lifetimes log-uniform, ES over whole lifetimes. The
    objective's params move to the ES mean; the fitness of each pair comes from one level."""
    env, params = jaxrl_suite.make("gridworld-small")
    config = dataclasses.replace(TINY, meta_optimizer="es", population_size=4,
                                 lifetime_inputs=True, min_lifetime=2, lifetime=6,
                                 inner_updates=2, num_envs=16, eval_steps=60)
    train = lpg.make_train(config, env, params)
    state = jax.jit(train.init)(jax.random.key(0), train.default_hparams)
    assert train.env_steps_per_update == 4 * 6 * 16 * TINY.rollout_steps
    step = jax.jit(train.update)
    new_state, metrics = step(state)
    new_state, metrics = step(new_state)
    assert int(new_state.meta_step) == 2 and int(new_state.opt_state.generation) == 2
    assert np.isfinite(float(metrics["fitness_mean"]))
    assert float(metrics["fitness_min"]) <= float(metrics["fitness_mean"]) <= float(
        metrics["fitness_max"])
    moved = [float(jnp.abs(a - b).max()) for a, b in zip(
        jax.tree.leaves(state.params), jax.tree.leaves(new_state.params), strict=True)]
    # Pairwise ranks move the mean unless both pairs tie in both generations (16 envs of
    # 60-step evaluations: returns differ).
    assert max(moved) > 0
    # The GRU reads 8 features per step: the 6 of LPG and the 2 lifetime inputs.
    gru = new_state.params["params"]["Scan_ResetGRUCell_0"]["GRUCell_0"]
    assert gru["ir"]["kernel"].shape[0] == 8
