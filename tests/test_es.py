"""Evolution strategies over a params pytree (``meta/es.py``).

The toy problem: maximise ``-|x - target|^2`` over a pytree of a 3-vector and a 2x2 matrix
(7 numbers), starting at zeros, 1.24 from the target. Each strategy's 30-generation run is
compiled once per module (``runs``) and shared by the tests that read it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl_suite.meta.es import (
    ESConfig,
    centered_rank_fitness,
    make_es,
    pairwise_rank_fitness,
    shard_population,
)

TARGET = {"a": jnp.array([0.5, -0.3, 0.8]), "b": jnp.array([[0.2, -0.6], [0.4, 0.1]])}
START = jax.tree.map(jnp.zeros_like, TARGET)
GENERATIONS = 30
POPULATION = 16

# OpenAI-ES moves its mean by Adam steps of at most about the learning rate per generation, so
# it gets the rate that reaches the target in 30 generations (the TA-LPG default, 1e-2, is for
# runs of hundreds); SNES and CMA-ES adapt their step sizes and close in much further.
CONFIGS = {
    "open_es": ESConfig(population_size=POPULATION, learning_rate=5e-2),
    "snes": ESConfig(strategy="snes", population_size=POPULATION),
    "cma_es": ESConfig(strategy="cma_es", population_size=POPULATION),
}
# Measured final distance / initial: open_es 0.11, snes 0.005, cma_es 0.003. An ES stepping the
# wrong way moves away; one that ignores the fitness random-walks at about sigma * sqrt(gens).
SHRINK = {"open_es": 0.25, "snes": 0.05, "cma_es": 0.05}


def fitness_of(params):
    return -sum(jnp.sum((x - t) ** 2) for x, t in zip(jax.tree.leaves(params),
                                                      jax.tree.leaves(TARGET)))


def distance(params) -> float:
    return float(jnp.sqrt(-fitness_of(params)))


def make_run(es):
    """``key -> (final state, mean fitness per generation)``: init, then a scanned loop."""

    def generation(state, key):
        population, state = es.ask(key, state)
        fitness = jax.vmap(fitness_of)(population)
        return es.tell(state, population, fitness), fitness.mean()

    def run(key):
        init_key, loop_key = jax.random.split(key)
        state = es.init(init_key)
        return jax.lax.scan(generation, state, jax.random.split(loop_key, GENERATIONS))

    return run


@pytest.fixture(scope="module")
def runs():
    """Per strategy: the ES, its jitted run, and the run from key 0."""
    out = {}
    for name, config in CONFIGS.items():
        es = make_es(config, START)
        run = jax.jit(make_run(es))
        out[name] = (es, run, run(jax.random.key(0)))
    return out


@pytest.mark.parametrize("strategy", list(CONFIGS))
def test_each_strategy_closes_in_on_the_target(runs, strategy):
    es, _, (state, mean_fitness) = runs[strategy]
    before, after = distance(START), distance(es.mean(state))
    assert after < SHRINK[strategy] * before, (strategy, before, after)
    assert mean_fitness[-5:].mean() > mean_fitness[:5].mean()
    assert int(state.generation) == GENERATIONS
    assert jax.tree.structure(es.mean(state)) == jax.tree.structure(START)


@pytest.mark.parametrize("strategy", list(CONFIGS))
def test_antithetic_members_are_adjacent_mirror_images_around_the_mean(runs, strategy):
    es, _, (state, _) = runs[strategy]
    population, _ = es.ask(jax.random.key(5), state)
    mean = es.mean(state)
    for member, centre in zip(jax.tree.leaves(population), jax.tree.leaves(mean)):
        assert member.shape == (POPULATION, *centre.shape)
        plus, minus = member[0::2] - centre, member[1::2] - centre
        np.testing.assert_allclose(plus, -minus, atol=1e-6)
        assert np.abs(plus).min() > 0  # real perturbations, and pairs differ from each other
        assert np.abs(plus[0] - plus[1]).max() > 1e-3


def test_without_antithetic_members_are_independent():
    config = ESConfig(population_size=4, antithetic=False)
    assert config.shaping == "centered_rank"  # no pairs to compare
    es = make_es(config, START)
    population, _ = es.ask(jax.random.key(1), es.init(jax.random.key(0)))
    offsets = population["a"]
    assert np.abs(offsets[0] + offsets[1]).min() > 1e-4


def test_pairwise_rank_fitness_by_hand():
    fitness = jnp.array([3.0, 1.0, 0.0, 2.0, 5.0, 5.0, jnp.nan, -1.0])
    np.testing.assert_array_equal(pairwise_rank_fitness(fitness),
                                  [1, -1, -1, 1, 0, 0, -1, 1])
    # A leading batch axis (runs) is kept.
    np.testing.assert_array_equal(pairwise_rank_fitness(jnp.array([[1.0, 2.0], [2.0, 1.0]])),
                                  [[-1, 1], [1, -1]])
    with pytest.raises(ValueError, match="even number"):
        pairwise_rank_fitness(jnp.ones(3))


def test_centered_rank_fitness_by_hand():
    np.testing.assert_allclose(centered_rank_fitness(jnp.array([10.0, 30.0, 20.0])),
                               [-0.5, 0.5, 0.0])
    np.testing.assert_allclose(centered_rank_fitness(jnp.array([1.0, jnp.nan, 1.0, 4.0])),
                               [0.0, -0.5, 0.0, 0.5])  # the tied 1s share rank 1.5 of 0..3
    with pytest.raises(ValueError, match="at least 2"):
        centered_rank_fitness(jnp.ones(1))


def test_scanned_generations_match_a_python_loop(runs):
    es, _, _ = runs["open_es"]
    keys = jax.random.split(jax.random.key(2), 3)
    state = es.init(keys[0])
    scanned = state
    for key in keys[1:]:
        population, state = es.ask(key, state)
        state = es.tell(state, population, jax.vmap(fitness_of)(population))

    @jax.jit
    def loop(state):
        def body(state, key):
            population, state = es.ask(key, state)
            return es.tell(state, population, jax.vmap(fitness_of)(population)), None

        return jax.lax.scan(body, state, keys[1:])[0]

    scanned = loop(scanned)
    for a, b in zip(jax.tree.leaves(es.mean(state)), jax.tree.leaves(es.mean(scanned))):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_vmap_over_seeds_equals_separate_runs(runs):
    _, run, (state_0, _) = runs["open_es"]
    es = runs["open_es"][0]
    keys = jnp.stack([jax.random.key(0), jax.random.key(7)])
    batched, _ = jax.jit(jax.vmap(make_run(es)))(keys)
    state_7, _ = run(jax.random.key(7))
    means = jax.vmap(es.mean)(batched)  # leading axis: seeds
    for seed, alone in enumerate((state_0, state_7)):
        for a, b in zip(jax.tree.leaves(es.mean(alone)), jax.tree.leaves(means)):
            np.testing.assert_allclose(a, b[seed], rtol=1e-5, atol=1e-6)


def test_init_can_start_elsewhere(runs):
    es = runs["open_es"][0]
    start = jax.tree.map(lambda x: x + 1.0, START)
    np.testing.assert_array_equal(es.mean(es.init(jax.random.key(0), start))["b"],
                                  np.ones((2, 2)))


@pytest.mark.parametrize(("settings", "message"), [
    ({"population_size": 7}, "population_size must be even with antithetic"),
    ({"population_size": 1, "antithetic": False}, "at least 2"),
    ({"antithetic": False, "fitness_shaping": "pairwise_rank"},
     "'pairwise_rank' needs antithetic=True"),
    ({"sigma": 0.0}, "sigma must be positive"),
    ({"sigma": -0.1}, "sigma must be positive"),
    ({"learning_rate": 0.0}, "learning_rate must be positive"),
    ({"learning_rate": float("nan")}, "learning_rate must be a finite number"),
    ({"strategy": "pgpe"}, "strategy must be one of open_es, snes, cma_es; got 'pgpe'"),
    ({"fitness_shaping": "z_score"},
     "fitness_shaping must be one of pairwise_rank, centered_rank, raw"),
    ({"optimizer": "rmsprop"}, "optimizer must be one of adam, sgd"),
    ({"sigma_decay": 1.5}, "sigma_decay must be in"),
    ({"strategy": "cma_es", "fitness_shaping": "pairwise_rank"}, "'pairwise_rank' cannot"),
    ({"strategy": "cma_es", "learning_rate": 0.1}, "learning_rate must be None"),
    ({"strategy": "snes", "optimizer": "adam"}, "optimizer must be 'sgd'"),
    ({"strategy": "snes", "sigma_decay": 0.9}, "sigma_decay must be 1.0"),
])
def test_bad_settings_are_refused_in_plain_words(settings, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        make_es(ESConfig(**settings), START)


def test_bad_template_and_fitness_shape_are_refused(runs):
    with pytest.raises(ValueError, match="float arrays only.*'n'.*int32"):
        make_es(ESConfig(population_size=4), {"n": jnp.arange(3), "x": jnp.zeros(2)})
    with pytest.raises(ValueError, match="empty pytree"):
        make_es(ESConfig(population_size=4), {})
    es, _, (state, _) = runs["open_es"]
    population, state = es.ask(jax.random.key(0), state)
    for shape in [(POPULATION + 1,), (POPULATION, 1), ()]:
        with pytest.raises(ValueError, match=rf"\(population_size,\) = \({POPULATION},\)"):
            es.tell(state, population, jnp.zeros(shape))


def test_shard_population_is_a_no_op_on_one_device():
    population = {"a": jnp.zeros((4, 3))}
    assert shard_population(population) is population
    with pytest.raises(ValueError, match="same leading"):
        shard_population({"a": jnp.zeros((4, 3)), "b": jnp.zeros((2,))})


SHARDED_SCRIPT = textwrap.dedent("""
    import jax, jax.numpy as jnp, numpy as np
    from jax.sharding import Mesh
    from jaxrl_suite.meta.es import ESConfig, make_es, shard_population

    assert len(jax.devices()) == 2, jax.devices()
    start = {"a": jnp.zeros(3), "b": jnp.zeros((2, 2))}
    es = make_es(ESConfig(population_size=8), start)

    def generation(state, key, shard):
        population, state = es.ask(key, state)
        if shard:
            population = shard_population(population)
        fitness = jax.vmap(lambda p: -jnp.sum((p["a"] - 1) ** 2) - jnp.sum(p["b"] ** 2))(
            population)
        return es.tell(state, population, fitness), population

    state = es.init(jax.random.key(0))
    key = jax.random.key(1)
    sharded, population = jax.jit(lambda s, k: generation(s, k, True))(state, key)
    alone, _ = jax.jit(lambda s, k: generation(s, k, False))(state, key)
    assert len(population["a"].sharding.device_set) == 2, population["a"].sharding
    eager = shard_population(es.ask(key, state)[0])
    assert len(eager["a"].sharding.device_set) == 2, eager["a"].sharding
    for a, b in zip(jax.tree.leaves(es.mean(sharded)), jax.tree.leaves(es.mean(alone))):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    try:
        shard_population({"a": jnp.zeros((3, 2))}, Mesh(np.array(jax.devices()), ("members",)))
    except ValueError as error:
        assert "3 members" in str(error), error
    else:
        raise AssertionError("an indivisible population was accepted")
    print("ES-SHARDED-OK")
""")


def test_population_sharded_over_two_devices_matches_one_device():
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2",
           "JAX_PLATFORMS": "cpu"}
    completed = subprocess.run([sys.executable, "-c", SHARDED_SCRIPT], env=env,
                               capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "ES-SHARDED-OK" in completed.stdout
