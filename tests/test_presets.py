"""Every preset of every registered algorithm builds and runs on its env: one or two updates.

The learning tests train a few presets to a threshold; the others were only ever read (PPO's and
DQN's MinAtar presets crashed while tracing, issue 16). Here each preset runs on an env that maps
to it, with only its sizes shrunk (``SIZE_OVERRIDES``: budgets, env and batch counts, buffer
sizes), so its wiring (encoder, recurrence, normalisers, heads, targets) is the preset's own.
Brax/MJX presets take minutes to compile here: they are checked with ``jax.eval_shape`` of the
whole run (traced, not compiled). Also: the MinAtar encoder and the flattening of image
observations for every algorithm, and what ``--help`` says of each preset.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxrl_suite
from jaxrl_suite.data.datasets import Dataset, DatasetInfo
from jaxrl_suite.env import spaces
from jaxrl_suite.env.wrappers import Wrapper
from jaxrl_suite.learn.networks import MinAtarEncoder, QNetwork, array_encoder
from jaxrl_suite.run.algorithms import ALGORITHMS, algorithm_spec, load_algorithm
from jaxrl_suite.run.divergence import finite_flag

# Fields a smoke run may shrink, per kind of algorithm: sizes and budgets only.
SIZE_OVERRIDES = {
    "on-policy": lambda config: dict(
        num_envs=2, num_steps=8, num_minibatches=2, update_epochs=1, total_steps=16),
    "off-policy": lambda config: dict(
        num_envs=2, buffer_size=128, learning_starts=32, batch_size=16,
        total_steps=32 + 2 * config.train_frequency * 2),
    "ued": lambda config: dict(
        num_envs=4, num_steps=8, eval_interval=1, buffer_capacity=8, update_epochs=1,
        heldout_episodes=1, heldout_levels=("SixteenRooms",), total_steps=4 * 8),
    "offline": lambda config: dict(
        dataset="in-memory", total_updates=2, eval_interval=2, evaluation_episodes=1,
        batch_size=16),
    "meta": lambda config: dict(
        population_size=2, num_envs=2, rollout_steps=4, inner_updates=1, lifetime=2,
        gru_width=8, meta_steps=1, buffer_size=4, eval_steps=4),
    "es-meta": lambda config: dict(
        population_size=2, generations=1, inner_total_steps=256, inner_num_envs=4,
        fitness_episodes=1, fitness_max_steps=8, hidden_size=4),
    "morl": lambda config: dict(
        num_preferences=4, num_envs=2, num_steps=8, num_minibatches=2, update_epochs=1,
        init_steps=16, extension_rounds=1, extension_steps=16, front_episodes=1),
}
OFF_POLICY = {"dqn", "sac", "td3", "envelope"}  # envelope: DQN's replay settings
# Presets whose env is a Brax/MJX physics simulation: compiled, they take minutes on 2 cores.
PHYSICS_BACKENDS = ("brax/", "mjx/", "mo/brax-")


def kind_of(name: str) -> str:
    if name == "ppo":
        return "on-policy"
    if name in OFF_POLICY:
        return "off-policy"
    if name == "ued":
        return "ued"
    if name == "lpg":
        return "meta"
    if name in ("lpo", "open"):  # ES over whole PPO runs
        return "es-meta"
    if name == "cmorl":
        return "morl"
    return "offline"


def env_for_preset(spec, preset: str) -> str:
    """An env id whose default preset is ``preset`` (the first listed), else the algorithm's
    default env (PPO's a2c preset: CartPole; UED's maze; the offline algorithms' Pendulum)."""
    for env_id, name in spec.preset_by_env.items():
        if name == preset:
            return env_id
    return spec.default_env


def preset_cases():
    cases = []
    for name in sorted(ALGORITHMS):
        spec = algorithm_spec(load_algorithm(name))
        for preset in spec.presets:
            env_id = env_for_preset(spec, preset)
            marks = []
            if env_id.startswith(PHYSICS_BACKENDS) or kind_of(name) in ("ued", "offline"):
                marks.append(pytest.mark.slow)
            cases.append(pytest.param(name, preset, env_id, id=f"{name}-{preset}", marks=marks))
    return cases


def random_dataset(env, env_params, size: int = 256) -> Dataset:
    """``size`` transitions of uniformly random observations and actions from ``env``'s spaces
    (no dynamics: the offline smoke runs only check that an update runs)."""
    keys = jax.random.split(jax.random.key(0), 4)
    observation_space = env.observation_space(env_params)
    action_space = env.action_space(env_params)
    low = np.maximum(observation_space.low, -1.0)
    high = np.minimum(observation_space.high, 1.0)
    observations = jax.random.uniform(keys[0], (size, *observation_space.shape), jnp.float32,
                                      low, high)
    actions = jax.random.uniform(keys[1], (size, *action_space.shape), jnp.float32,
                                 action_space.low, action_space.high)
    return Dataset(
        observations=observations, actions=actions,
        rewards=jax.random.uniform(keys[2], (size,), jnp.float32, -1.0, 0.0),
        next_observations=jax.random.uniform(keys[3], observations.shape, jnp.float32, low,
                                             high),
        terminals=jnp.zeros(size, bool), timeouts=(jnp.arange(size) % 64) == 63,
        episode_ids=jnp.arange(size, dtype=jnp.int32) // 64,
        info=DatasetInfo(name="random-smoke", env_id="gymnax/Pendulum-v1"),
    )


@pytest.mark.parametrize(("name", "preset", "env_id"), preset_cases())
def test_every_preset_runs_an_update_on_its_env(name, preset, env_id):
    module = load_algorithm(name)
    spec = algorithm_spec(module)
    full = spec.preset_config(preset)
    config = spec.preset_config(preset, **SIZE_OVERRIDES[kind_of(name)](full))
    # Only sizes changed: every other field (the wiring) is the preset's.
    changed = {field for field in vars(full) if getattr(full, field) != getattr(config, field)}
    assert changed <= set(SIZE_OVERRIDES[kind_of(name)](full)), changed
    env, env_params = jaxrl_suite.make(env_id)
    extra = {}
    if kind_of(name) == "offline":
        extra["dataset"] = random_dataset(env, env_params)
    train = spec.make_train(config, env, env_params, **extra)
    key = jax.random.key(0)
    if env_id.startswith(PHYSICS_BACKENDS):
        # Traced but not compiled (compiling a physics step takes minutes here): shapes only.
        result = jax.eval_shape(train, key)
        metrics = result.metrics
        assert all(leaf.shape[:1] == (train.num_updates,) for leaf in jax.tree.leaves(metrics))
        return
    # The hyperparameters as an argument, not constants folded into the program: presets that
    # differ only in traced values (LPG's published and cpu, after the size overrides) then
    # compile to one program, which the persistent compilation cache serves the second time.
    result = jax.jit(train)(key, train.default_hparams)
    assert train.num_updates in (1, 2)
    # A learner reports its losses; an evolution strategy its members' fitness.
    assert any("loss" in metric or metric.startswith("fitness") for metric in result.metrics), (
        sorted(result.metrics))
    for metric, value in result.metrics.items():
        assert np.shape(value)[:1] == (train.num_updates,), (metric, np.shape(value))
    # The harness's divergence check on the last update: losses (unless the update reports it
    # did not learn, as a robust PLR round on new levels does) and learned arrays finite.
    last_update = jax.tree.map(lambda x: x[-1], result.metrics)
    assert float(finite_flag(result.state, last_update)) == 1.0, last_update


def test_the_minatar_presets_use_the_minatar_network():
    from jaxrl_suite.algos import dqn, ppo

    for module in (ppo, dqn):
        config = module.preset_config("gymnax/Breakout-MinAtar")
        assert (config.encoder, config.conv_features, config.hidden_sizes) == (
            "minatar", 16, (128,))
        assert config.activation == "relu"


def test_minatar_encoder_is_one_3x3_convolution_of_16_channels():
    """The MinAtar paper's torso: (10, 10, C) -> 16 channels of 8 x 8 (valid padding), ReLU,
    flattened; any leading batch axes."""
    image = jax.random.uniform(jax.random.key(0), (2, 3, 10, 10, 4))
    encoder = MinAtarEncoder()
    params = encoder.init(jax.random.key(1), image[0, 0])
    kernel = params["params"]["Conv_0"]["kernel"]
    assert kernel.shape == (3, 3, 4, 16)
    features = encoder.apply(params, image)
    assert features.shape == (2, 3, 16 * 8 * 8)
    assert float(features.min()) >= 0.0  # after the ReLU
    np.testing.assert_allclose(features[1, 2], encoder.apply(params, image[1, 2]), rtol=1e-6)


def test_array_encoders_flatten_images_and_leave_flat_observations_alone():
    assert array_encoder("none", (4,)) is None  # so flat-observation networks are unchanged
    flatten = array_encoder("none", (10, 10, 4))
    image = jnp.arange(2 * 10 * 10 * 4, dtype=jnp.float32).reshape(2, 10, 10, 4)
    np.testing.assert_array_equal(flatten.apply({}, image), image.reshape(2, 400))
    with pytest.raises(ValueError, match="minatar.*got shape \\(4,\\)"):
        array_encoder("minatar", (4,))
    with pytest.raises(ValueError, match="Unknown encoder 'cnn'"):
        array_encoder("cnn", (10, 10, 4))
    # A Q-network on an image with the flattening encoder: one value per action per batch row.
    network = QNetwork((8,), 3, encoder=flatten)
    params = network.init(jax.random.key(0), image[0])
    assert network.apply(params, image).shape == (2, 3)
    assert "encoder" not in params["params"]  # Flatten has no parameters


class ImageObservation(Wrapper):
    """A flat observation ``(n,)`` as an image ``(1, n, 1)``: an image Box with continuous
    actions (Pendulum's), which no registered env has."""

    def observation_space(self, params=None):
        space = self._env.observation_space(params)
        shape = (1, *space.shape, 1)
        return spaces.Box(space.low.reshape(shape), space.high.reshape(shape), shape,
                          space.dtype)

    @staticmethod
    def _image(observation):
        return observation.reshape(1, *observation.shape, 1)

    def wrap_reset(self, obs, state, params):
        return self._image(obs), state

    def step_env(self, key, state, action, params):
        obs, state, reward, terminated, truncated, info = self._env.step_env(
            key, state, action, params)
        if "final_observation" in info:
            info = {**info, "final_observation": self._image(info["final_observation"])}
        return self._image(obs), state, reward, terminated, truncated, info


@pytest.mark.parametrize("name", ["ppo", "dqn", "sac", "td3"])
def test_mlp_networks_take_image_observations(name):
    """With encoder 'none' (SAC and TD3 have only MLPs) an image observation is flattened: one
    update runs, and the trained policy acts on the env's unflattened observations. Breakout's
    (10, 10, 4) for the discrete-action algorithms (SAC's discrete variant), Pendulum's as a
    (1, 3, 1) image for TD3."""
    module = load_algorithm(name)
    if name == "td3":
        env, env_params = jaxrl_suite.make("gymnax/Pendulum-v1", wrappers=False)
        env = ImageObservation(env)
    else:
        env, env_params = jaxrl_suite.make("gymnax/Breakout-MinAtar", wrappers=False)
    kind = kind_of(name)
    base = module.Config()
    overrides = SIZE_OVERRIDES[kind](base)
    if hasattr(base, "encoder"):
        overrides["encoder"] = "none"
    config = module.Config(**{**overrides, "hidden_sizes": (16,)})
    train = module.make_train(config, env, env_params)
    result = jax.jit(train)(jax.random.key(0))
    losses = [np.asarray(v) for k, v in result.metrics.items() if "loss" in k]
    assert losses and all(np.isfinite(loss).all() for loss in losses)
    policy = train.make_policy(result.state)
    observation, _ = env.reset(jax.random.key(1), env_params)
    assert observation.ndim == 3 and observation.shape[-1] > 0
    action, _ = policy.act(policy.params, jax.random.key(2), observation, policy.initial_carry,
                           jnp.bool_(True), True)
    assert env.action_space(env_params).contains(action)
    assert math.prod(np.shape(action)) == math.prod(env.action_space(env_params).shape)


def test_help_says_which_presets_were_measured():
    for name in sorted(ALGORITHMS):
        spec = algorithm_spec(load_algorithm(name))
        assert set(spec.measured_presets) <= set(spec.presets), name
        text = spec.preset_help()
        for preset in spec.presets:
            line = next(line for line in text.splitlines()
                        if line.strip().startswith(f"{preset}:"))
            assert ("measured here" in line) == (preset in spec.measured_presets), line
            assert ("unverified" in line) == (preset not in spec.measured_presets), line
    ppo_help = algorithm_spec(load_algorithm("ppo")).preset_help()
    assert "minatar: measured here (benchmarks/minatar_breakout.py" in ppo_help
    assert "brax-locomotion: unverified" in ppo_help
