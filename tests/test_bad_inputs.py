"""The bad-input catalogue: every case is refused early with the error type it should raise and a
message that names the bad value (issue "reliability and compatibility", parts 4 and 5).

Cases are checked where the input first meets the library: an algorithm's ``validate`` (which
its ``make_train`` and the command line call before anything is traced), ``make``, the spaces,
``Train`` and the command line. Nothing here compiles a training program.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import math
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxrl_suite
from jaxrl_suite.env import spaces

ALGORITHMS = {  # module, the env its validate is shown
    "ppo": ("jaxrl_suite.algos.ppo", "gymnax/CartPole-v1"),
    "dqn": ("jaxrl_suite.algos.dqn", "gymnax/CartPole-v1"),
    "sac": ("jaxrl_suite.algos.sac", "gymnax/Pendulum-v1"),
    "td3": ("jaxrl_suite.algos.td3", "gymnax/Pendulum-v1"),
    "ued": ("jaxrl_suite.algos.ued", "maze"),
    "cql": ("jaxrl_suite.algos.offline.cql", "gymnax/Pendulum-v1"),
    "iql": ("jaxrl_suite.algos.offline.iql", "gymnax/Pendulum-v1"),
    "rebrac": ("jaxrl_suite.algos.offline.rebrac", "gymnax/Pendulum-v1"),
    "td3_bc": ("jaxrl_suite.algos.offline.td3_bc", "gymnax/Pendulum-v1"),
    "bc": ("jaxrl_suite.algos.offline.bc", "gymnax/Pendulum-v1"),
    "lpg": ("jaxrl_suite.meta.lpg", "gridworld"),
}


@functools.cache
def env_of(env_id: str):
    return jaxrl_suite.make(env_id)


def check_config(algorithm: str, **fields) -> None:
    """Run the algorithm's own checks on its default config with ``fields`` changed."""
    module_name, env_id = ALGORITHMS[algorithm]
    module = importlib.import_module(module_name)
    base = module.Config()
    if hasattr(base, "dataset"):  # offline: past the "no dataset given" check
        base = dataclasses.replace(base, dataset="any-name")
    config = dataclasses.replace(base, **fields)
    env, params = env_of(env_id)
    if hasattr(module, "validate"):
        module.validate(config, env, params)
    else:  # BC checks in make_train, before its dataset is read
        module.make_train(config, env, params)


def _fields_of(kind: type) -> list[tuple[str, str]]:
    out = []
    for algorithm, (module_name, _) in ALGORITHMS.items():
        config = importlib.import_module(module_name).Config()
        for field in dataclasses.fields(config):
            value = getattr(config, field.name)
            if type(value) is kind:
                out.append((algorithm, field.name))
    return out


def _names_value(message: str, field: str, value: str) -> bool:
    return field in message and re.search(value, message) is not None


# --- every float setting of every algorithm refuses NaN and infinity --------------------------
@pytest.mark.parametrize("bad", [math.nan, math.inf], ids=["nan", "inf"])
@pytest.mark.parametrize("algorithm,field", _fields_of(float),
                         ids=[f"{a}-{f}" for a, f in _fields_of(float)])
def test_float_settings_refuse_nan_and_inf(algorithm, field, bad):
    with pytest.raises(ValueError) as caught:
        check_config(algorithm, **{field: bad})
    assert _names_value(str(caught.value), field, "nan" if math.isnan(bad) else "inf"), \
        str(caught.value)


# --- every integer setting refuses a negative count -------------------------------------------
@pytest.mark.parametrize("algorithm,field", _fields_of(int),
                         ids=[f"{a}-{f}" for a, f in _fields_of(int)])
def test_integer_settings_refuse_negative_values(algorithm, field):
    with pytest.raises(ValueError) as caught:
        check_config(algorithm, **{field: -1})
    assert _names_value(str(caught.value), field, r"-1\b"), str(caught.value)


# --- settings with their own rules --------------------------------------------------------------
OTHER_SETTINGS = [
    ("ppo", dict(num_minibatches=3), ValueError, r"num_minibatches \(3\)"),
    ("ppo", dict(total_steps=100), ValueError, r"total_steps \(100\)"),
    ("ppo", dict(gamma=1.5), ValueError, r"gamma.*1\.5"),
    ("ppo", dict(objective="nope"), ValueError, r"'nope'"),
    ("ppo", dict(activation="nope"), ValueError, r"'nope'"),
    ("ppo", dict(encoder="nope"), ValueError, r"'nope'"),
    ("ppo", dict(hidden_sizes=()), ValueError, r"hidden_sizes.*\(\)"),
    ("ppo", dict(hidden_sizes=(64, 0)), ValueError, r"hidden_sizes.*\(64, 0\)"),
    ("ppo", dict(num_envs=2.0), ValueError, r"num_envs.*2\.0"),
    ("ppo", dict(num_envs=50_000_000, total_steps=10**10), ValueError,
     r"6,400,000,000.*int32"),
    ("ppo", dict(total_steps=True), ValueError, r"total_steps.*True"),
    ("ppo", dict(recurrent=True, num_envs=4, num_minibatches=3), ValueError,
     r"num_envs \(4\).*num_minibatches \(3\)"),
    ("dqn", dict(gamma=2.0), ValueError, r"gamma.*2\.0"),
    ("dqn", dict(learning_rate=0.0), ValueError, r"learning_rate.*0\.0"),
    ("sac", dict(tau=0.0), ValueError, r"tau.*0\.0"),
    ("sac", dict(activation="sigmoidal"), ValueError, r"'sigmoidal'"),
    ("td3", dict(policy_delay=0), ValueError, r"policy_delay.*0"),
    ("iql", dict(expectile=1.5), ValueError, r"expectile.*1\.5"),
    ("cql", dict(gamma=-0.5), ValueError, r"gamma.*-0\.5"),
]


@pytest.mark.parametrize("algorithm,fields,error,pattern", OTHER_SETTINGS,
                         ids=[f"{a}-{'-'.join(f)}" for a, f, _, _ in OTHER_SETTINGS])
def test_settings_with_their_own_rules(algorithm, fields, error, pattern):
    with pytest.raises(error, match=pattern):
        check_config(algorithm, **fields)


def test_a_preset_for_a_mistyped_env_id_is_refused():
    from jaxrl_suite.algos import ppo

    with pytest.raises(ValueError, match=r"'gymnax/CartPol-v1'.*'gymnax/CartPole-v1'"):
        ppo.preset_config("gymnax/CartPol-v1")
    with pytest.raises(ValueError, match=r"Unknown PPO preset 'cartpol'"):
        ppo.preset_config("cartpol")
    assert ppo.preset_config("gymnax/CartPole-v1").num_envs == 16  # the real id still works


@pytest.mark.parametrize("algorithm,env_id", [("dqn", "gymnax/CartPole-v1"),
                                              ("sac", "gymnax/Pendulum-v1"),
                                              ("td3", "gymnax/Pendulum-v1")])
def test_a_budget_beyond_int32_step_counters_is_refused(algorithm, env_id):
    module = importlib.import_module(ALGORITHMS[algorithm][0])
    env, params = env_of(env_id)
    with pytest.raises(ValueError, match=r"3,000,000,000 env steps, beyond the int32"):
        module.make_train(module.preset_config(env_id, total_steps=3 * 10**9), env, params)


def test_a_config_of_another_algorithm_is_refused():
    from jaxrl_suite.algos import dqn, ppo

    env, params = env_of("gymnax/CartPole-v1")
    with pytest.raises(TypeError, match="ppo.Config.*Config"):
        ppo.validate(dqn.Config(), env, params)


# --- make(): ids, constructor options, params overrides ----------------------------------------
MAKE_CASES = [
    (("gymnax/CartPol-v1",), {}, ValueError, r"'gymnax/CartPol-v1'.*gymnax/CartPole-v1"),
    (("CartPole-v1",), {}, ValueError, r"'CartPole-v1'.*gymnax/CartPole-v1"),
    ((42,), {}, TypeError, r"42"),
    (("gymnax/CartPole-v1",), dict(max_steps_in_episode=-5), ValueError,
     r"max_steps_in_episode.*-5"),
    (("gymnax/CartPole-v1",), dict(max_steps_in_episode="abc"), ValueError,
     r"max_steps_in_episode.*'abc'"),
    (("gymnax/CartPole-v1",), dict(max_steps_in_episode=2.5), ValueError,
     r"max_steps_in_episode.*2\.5"),
    (("gymnax/CartPole-v1",), dict(gravity=math.nan), ValueError, r"gravity.*nan"),
    (("gymnax/CartPole-v1",), dict(no_such_field=1), ValueError, r"'no_such_field'"),
    (("gymnax/CartPole-v1",), dict(env_kwargs={"nope": 1}), ValueError, r"'nope'"),
    (("maze",), dict(env_kwargs={"nope": 1}), ValueError, r"'nope'.*accepted: size"),
    (("gymnax/CartPole-v1",), dict(env_kwargs=[1]), TypeError, r"\[1\]"),
    (("maze",), dict(num_walls=500), ValueError, r"num_walls .*\[0, 167\].*500"),
    (("maze",), dict(num_walls=-3), ValueError, r"num_walls.*-3"),
]


@pytest.mark.parametrize("args,kwargs,error,pattern", MAKE_CASES,
                         ids=[f"{a[0]}-{'-'.join(map(str, k))}" for a, k, _, _ in MAKE_CASES])
def test_make_refuses_bad_ids_options_and_params(args, kwargs, error, pattern):
    with pytest.raises(error, match=pattern):
        jaxrl_suite.make(*args, **kwargs)


def test_a_registered_entry_point_that_does_not_import_names_the_env():
    from jaxrl_suite.env.registry import _REGISTRY, register

    register("test-broken/env", "no_such_module_anywhere:Env")
    try:
        with pytest.raises(ValueError, match=r"'test-broken/env'.*no_such_module_anywhere"):
            jaxrl_suite.make("test-broken/env")
    finally:
        _REGISTRY.pop("test-broken/env")


# --- keys, states, actions ------------------------------------------------------------------
def test_keys_are_checked_everywhere():
    env, params = env_of("gymnax/CartPole-v1")
    for call in (lambda: env.reset(0, params), lambda: spaces.Discrete(3).sample(0),
                 lambda: spaces.Box(-1.0, 1.0, (2,)).sample(0),
                 lambda: spaces.Dict({"a": spaces.Discrete(2)}).sample(7)):
        with pytest.raises(TypeError, match=r"PRNG key.*got int"):
            call()


def test_a_state_of_another_env_is_refused():
    cartpole, cartpole_params = env_of("gymnax/CartPole-v1")
    acrobot, acrobot_params = env_of("gymnax/Acrobot-v1")
    _, state = cartpole.reset(jax.random.key(0), cartpole_params)
    _, other = acrobot.reset(jax.random.key(0), acrobot_params)
    cartpole.step(jax.random.key(1), state, 0, cartpole_params)  # its own state is fine
    with pytest.raises(TypeError, match=r"state.*does not fit"):
        cartpole.step(jax.random.key(1), other, 0, cartpole_params)


def test_an_action_outside_the_space_names_it():
    env, params = env_of("gymnax/CartPole-v1")
    _, state = env.reset(jax.random.key(0), params)
    with pytest.raises(ValueError, match=r"action 7 .*integers 0\.\.1"):
        env.step(jax.random.key(1), state, 7, params)
    with pytest.raises(TypeError, match="integer actions"):
        env.step(jax.random.key(1), state, 0.5, params)


# --- Train: keys and hyperparameters ------------------------------------------------------------
@functools.cache
def ppo_train():
    from jaxrl_suite.algos import ppo

    env, params = env_of("gymnax/CartPole-v1")
    return ppo.make_train(ppo.preset_config("gymnax/CartPole-v1"), env, params)


@pytest.mark.parametrize("field,value,pattern", [
    ("learning_rate", math.nan, r"hparams\.learning_rate = nan"),
    ("learning_rate", -1.0, r"hparams\.learning_rate = -1\.0"),
    ("gamma", 5.0, r"hparams\.gamma = 5\.0"),
    ("gae_lambda", -0.5, r"hparams\.gae_lambda = -0\.5"),
    ("clip_epsilon", math.inf, r"hparams\.clip_epsilon = inf"),
    ("entropy_coef", -1.0, r"hparams\.entropy_coef = -1\.0"),
])
def test_concrete_hyperparameters_are_range_checked(field, value, pattern):
    train = ppo_train()
    bad = train.default_hparams.replace(**{field: jnp.float32(value)})
    with pytest.raises(ValueError, match=pattern):
        train.initial_state(jax.random.key(0), bad)
    # A sweep is checked element by element.
    sweep = train.default_hparams.replace(**{field: jnp.array([0.5, value], jnp.float32)})
    with pytest.raises(ValueError, match=pattern):
        train.initial_states(jax.random.split(jax.random.key(0), 2),
                             jax.tree.map(lambda x: jnp.broadcast_to(x, (2,)) if jnp.ndim(x)
                                          == 0 else x, sweep))


def test_hyperparameters_of_the_wrong_type_and_int_keys_are_refused():
    train = ppo_train()
    with pytest.raises(TypeError, match=r"hparams must be a .*Hyperparams.*got dict"):
        train(jax.random.key(0), {"learning_rate": 1e-3})
    with pytest.raises(TypeError, match=r"PRNG key.*got 0"):
        train(0)


# --- the command line ---------------------------------------------------------------------------
CLI_CASES = [
    (["train", "ppo", "--lr", "0.01"], r"--lr.*--learning-rate"),
    (["train", "iql", "--total-steps", "100"], r"--total-steps.*--total-updates"),
    (["train", "ppo", "--bogus-flag", "1"], r"--bogus-flag"),
    (["train", "ppo", "--learning-rate", "inf"], r"learning_rate.*inf"),
    (["train", "ppo", "--learning-rate", "nan"], r"learning_rate.*nan"),
    (["train", "ppo", "--seeds", "0"], r"seeds.*0"),
    (["train", "ppo", "--keep-checkpoints", "0"], r"keep_checkpoints.*0"),
    (["train", "ppo", "--on-nonfinite", "ignore"], r"on_nonfinite.*'ignore'"),
    (["train", "ppo", "--env", "gymnax/CartPol-v1"], r"'gymnax/CartPol-v1'"),
    (["train", "ppo", "--preset", "nope"], r"'nope'"),
    (["train", "nope"], r"'nope'"),
    (["train", "ppo", "--resume", "/no/such/run"], r"/no/such/run"),
    (["eval", "/no/such/run"], r"/no/such/run"),
    (["train", "ppo", "--num-minibatches", "3"], r"num_minibatches \(3\)"),
    (["train", "ppo", "--gamma", "1.5"], r"gamma.*1\.5"),
]


@pytest.mark.parametrize("argv,pattern", CLI_CASES, ids=[" ".join(a) for a, _ in CLI_CASES])
def test_the_command_line_refuses_bad_input_in_one_line(argv, pattern, capsys, tmp_path):
    from jaxrl_suite.cli import main as cli_main

    if argv[0] == "train" and "--resume" not in argv:
        argv = [*argv, "--run-dir", str(tmp_path / "run")]
    assert cli_main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and err.count("\n") == 0, err
    assert re.search(pattern, err), err
    assert not (tmp_path / "run").exists()  # nothing half-made was left behind


def test_the_catalogue_is_large():
    counted = (2 * len(_fields_of(float)) + len(_fields_of(int)) + len(OTHER_SETTINGS)
               + len(MAKE_CASES) + len(CLI_CASES) + 6 + 8)
    assert counted >= 150, counted


def test_numpy_scalars_are_accepted_where_python_numbers_are():
    # The checks must not refuse good values of NumPy types (a sweep script's floats).
    check_config("ppo", learning_rate=float(np.float32(3e-4)), gamma=float(np.float64(0.99)))


def test_traced_hyperparameters_are_checked_in_debug_mode(monkeypatch):
    train = ppo_train()
    bad = train.default_hparams.replace(gamma=jnp.float32(5.0))
    init = jax.jit(train.initial_state)
    init(jax.random.key(0), bad)  # traced: not checked by default (it cannot see the value)
    monkeypatch.setenv("JAXRL_DEBUG", "1")
    with pytest.raises(Exception, match=r"hparams\.gamma = 5\.0"):
        # A new function, so the program is traced again (jit's cache holds the unchecked one).
        jax.block_until_ready(jax.jit(lambda k, h: train.initial_state(k, h))(
            jax.random.key(0), bad))


def test_collect_refuses_an_expert_no_better_than_random():
    from jaxrl_suite.data.collect import References, check_references

    check_references(References(-1200.0, -150.0, 3, 4000, -800.0), "sac", "gymnax/Pendulum-v1",
                     None)  # a real expert passes
    with pytest.raises(ValueError, match=r"returns -1300\.0, no better than random.*-1200\.0"):
        check_references(References(-1200.0, -1300.0, 0, 1000, -1250.0), "sac",
                         "gymnax/Pendulum-v1", 2000)
