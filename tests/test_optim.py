"""jaxrl_suite.learn.optim by hand (Adam's first step with and without clipping, the linear decay,
the descent check, the optimiser argument's forms), and the optimiser argument of the eight
off-policy and offline algorithms: refused before anything compiles when it ascends or names an
unknown network, the ``adam_eps_root`` setting, and ``Hyperparams.meta``."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxrl_suite
from jaxrl_suite.algos import dqn, sac, td3
from jaxrl_suite.algos.offline import bc, cql, iql, rebrac, td3_bc
from jaxrl_suite.learn import optim
from tests.conformance import jit_fast_compile
from tests.test_iql import tiny_dataset


# --- optim.py by hand ---------------------------------------------------------------------------
def adam_state(opt_state) -> optax.ScaleByAdamState:
    """The Adam moments inside a chain's state."""
    (found,) = [node for node in jax.tree.leaves(
        opt_state, is_leaf=lambda x: isinstance(x, optax.ScaleByAdamState))
        if isinstance(node, optax.ScaleByAdamState)]
    return found


GRADS = np.array([0.3, -4.0, 0.0, 1.2], np.float32)  # global norm 4.187


@pytest.mark.parametrize("eps_root", [0.0, 1e-8])
def test_adam_first_step_by_hand(eps_root):
    # After one step the bias-corrected moments are g and g^2, so the update is
    # -lr * g / (sqrt(g^2 + eps_root) + eps): about -lr * sign(g), and 0 where g is 0.
    rate, eps = 1e-2, 1e-8
    optimizer = optim.adam(rate, eps=eps, eps_root=eps_root)
    params = jnp.ones(4, jnp.float32)
    updates, state = optimizer.update(jnp.asarray(GRADS), optimizer.init(params), params)
    g = GRADS.astype(np.float64)
    expected = -rate * g / (np.sqrt(g**2 + eps_root) + eps)
    # float32's bias correction 1 - 0.999 is 1.3e-5 off, so the update is 6.7e-6 off.
    np.testing.assert_allclose(np.asarray(updates), expected, rtol=1e-5, atol=1e-12)
    np.testing.assert_allclose(np.asarray(adam_state(state).mu), 0.1 * g, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(adam_state(state).nu), 0.001 * g**2, rtol=1e-6)
    new_params, _ = optim.apply_gradient(optimizer, params, optimizer.init(params),
                                         jnp.asarray(GRADS))
    np.testing.assert_array_equal(np.asarray(new_params), 1.0 + np.asarray(updates))


def test_adam_clips_the_global_norm_before_the_moments():
    norm = float(np.linalg.norm(GRADS.astype(np.float64)))
    params = jnp.zeros(4, jnp.float32)
    for max_norm, scale in [(2.0, 2.0 / norm), (10.0, 1.0)]:  # clipped, then below the clip
        optimizer = optim.adam(1e-2, max_grad_norm=max_norm)
        _, state = optimizer.update(jnp.asarray(GRADS), optimizer.init(params), params)
        np.testing.assert_allclose(np.asarray(adam_state(state).mu), 0.1 * scale * GRADS,
                                   rtol=1e-6)
        np.testing.assert_allclose(np.asarray(adam_state(state).nu),
                                   0.001 * (scale * GRADS.astype(np.float64)) ** 2, rtol=1e-5)


def test_linear_decay_is_constant_over_each_block_of_steps():
    schedule = optim.linear_decay(jnp.float32(2.0), 3, 4)  # 4 decrements of 3 steps each
    values = [float(schedule(jnp.int32(count))) for count in range(13)]
    assert values == [2.0] * 3 + [1.5] * 3 + [1.0] * 3 + [0.5] * 3 + [0.0]


@pytest.mark.parametrize("optimizer", [optax.adam(3e-4), optax.sgd(0.1), optax.set_to_zero(),
                                       optim.adam(1e-3, max_grad_norm=0.5)],
                         ids=["adam", "sgd", "zero", "clipped"])
def test_check_descends_accepts_complete_optimisers(optimizer):
    optim.check_descends(optimizer, "test")


def test_check_descends_refuses_a_direction_without_its_negative_rate():
    with pytest.raises(ValueError, match="test: the optimiser's update ascends") as error:
        optim.check_descends(optax.scale_by_adam(), "test")
    assert "optax's convention" in str(error.value)


def test_resolve_optimizer_takes_none_an_optimiser_or_a_factory():
    default = lambda hparams: optax.sgd(hparams)  # here hparams is simply a rate
    assert optim.resolve_optimizer(None, default, 0.1, "test") is default
    adam = optax.adam(1e-3)
    assert optim.resolve_optimizer(adam, default, 0.1, "test")(0.5) is adam
    factory = lambda hparams: optax.adam(hparams)
    assert optim.resolve_optimizer(factory, default, 0.1, "test") is factory


@pytest.mark.parametrize("bad", [3e-4, "adam", lambda hparams: 3e-4],
                         ids=["float", "string", "factory of a float"])
def test_resolve_optimizer_refuses_what_is_not_an_optimiser(bad):
    with pytest.raises(TypeError, match="test: "):
        optim.resolve_optimizer(bad, lambda hparams: optax.sgd(0.1), None, "test")


# --- the algorithms' optimizer argument -----------------------------------------------------------
NETWORKS = {  # algorithm -> the names its optimizer dict takes (None: a single network)
    "dqn": None, "bc": None,
    "sac": ["actor", "alpha", "critic"], "td3": ["actor", "critic"],
    "td3_bc": ["actor", "critic"], "rebrac": ["actor", "critic"],
    "iql": ["actor", "critic", "value"], "cql": ["actor", "alpha", "critic", "lagrange"],
}
ONLINE = {"dqn": (dqn, "gymnax/CartPole-v1"), "sac": (sac, "gymnax/Pendulum-v1"),
          "td3": (td3, "gymnax/Pendulum-v1")}
OFFLINE = {"bc": bc, "iql": iql, "cql": cql, "td3_bc": td3_bc, "rebrac": rebrac}
TINY_OFFLINE = dict(dataset="tiny", total_updates=20, eval_interval=10, batch_size=16,
                    evaluation_episodes=1, hidden_sizes=(8,))


def build(name: str, optimizer=None, **overrides):
    """``make_train`` of ``name`` at a tiny size (nothing compiles)."""
    if name in ONLINE:
        module, env_id = ONLINE[name]
        env, params = jaxrl_suite.make(env_id)
        config = module.Config(total_steps=200, learning_starts=100, buffer_size=200,
                               batch_size=16, hidden_sizes=(8,), **overrides)
        return module.make_train(config, env, params, optimizer=optimizer)
    module = OFFLINE[name]
    config = module.Config(**{**TINY_OFFLINE, **overrides})
    return module.make_train(config, *jaxrl_suite.make("gymnax/Pendulum-v1"),
                             dataset=tiny_dataset(), optimizer=optimizer)


@pytest.mark.parametrize("name", NETWORKS)
def test_scale_by_adam_alone_is_refused_naming_optax_convention(name):
    with pytest.raises(ValueError, match="optax's convention"):
        build(name, optimizer=optax.scale_by_adam())


@pytest.mark.parametrize("name", [name for name, nets in NETWORKS.items() if nets])
def test_an_unknown_network_name_is_refused_listing_the_accepted_ones(name):
    with pytest.raises(ValueError, match="unknown networks \\['critc'\\]") as error:
        build(name, optimizer={"actor": optax.adam(1e-3), "critc": optax.adam(1e-3)})
    assert f"accepted: {NETWORKS[name]}" in str(error.value)
    # A known name with an ascending optimiser is refused naming that network.
    with pytest.raises(ValueError, match="\\(critic optimiser\\)"):
        build(name, optimizer={"critic": optax.scale_by_adam()})


@pytest.mark.parametrize("name", NETWORKS)
def test_adam_eps_root_must_be_non_negative(name):
    with pytest.raises(ValueError, match="adam_eps_root must be non-negative"):
        build(name, adam_eps_root=-1e-8)


@pytest.mark.parametrize("name", NETWORKS)
def test_hyperparams_meta_defaults_to_none_an_empty_pytree(name):
    hparams = build(name).default_hparams
    assert hparams.meta is None
    leaves = jax.tree.leaves(hparams)
    # Every field but meta, and but the preference weights, None on a scalar-reward env.
    empty = {"meta"} | ({"preference"} if "preference" in type(hparams).__dataclass_fields__
                        else set())
    assert all(getattr(hparams, name) is None for name in empty)
    assert len(leaves) == len(type(hparams).__dataclass_fields__) - len(empty)
    assert all(np.asarray(leaf).dtype == np.float32 and np.ndim(leaf) == 0 for leaf in leaves)
    batched = jax.tree.map(lambda x: jnp.broadcast_to(x, (3,)), hparams)
    assert jax.vmap(lambda h: h)(batched).meta is None


def test_meta_reaches_the_optimiser_factory_traced():
    # The factory reads its rate from hparams.meta: rate 0 leaves the policy as initialised.
    # (The descent check builds it once with the default hparams, whose meta is None.)
    def factory(hparams):
        return optim.adam(1e-3 if hparams.meta is None else hparams.meta["rate"])

    train = build("bc", optimizer=factory)
    key = jax.random.key(0)
    run = jit_fast_compile(train)
    frozen = run(key, train.default_hparams.replace(meta={"rate": jnp.float32(0.0)}))
    moving = run(key, train.default_hparams.replace(meta={"rate": jnp.float32(1e-2)}))
    initial = train.initial_state(key).learner.actor_params  # eager: equal to round-off
    for still, moved, start in zip(*map(jax.tree.leaves, (
            frozen.state.learner.actor_params, moving.state.learner.actor_params, initial))):
        np.testing.assert_allclose(still, start, atol=1e-6)
        assert np.abs(np.asarray(moved) - start).max() > 1e-3
