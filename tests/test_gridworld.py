"""The grid worlds (envs/gridworld): hand-computed transitions, observations, the sampler's
properties, mutation, the exact optimal return by hand, named levels, rendering, bad input.

The conformance suite runs on every registered gridworld id (tests/test_conformance.py)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import jaxrl_suite
from jaxrl_suite.envs import gridworld as gw

UP, DOWN, LEFT, RIGHT, STAY = range(5)


def level(grid, rewards=(1.0,), p_terminate=(0.0,), p_respawn=(0.0,), length=20,
          random_respawn=False, **sizes):
    return gw.level_from_picture(grid, rewards, p_terminate, p_respawn, length, random_respawn,
                                 **sizes)


def env_for(lv, observation="tabular"):
    return gw.GridWorld(max_side=lv.walls.shape[0], max_objects=lv.object_positions.shape[0],
                        max_types=lv.type_rewards.shape[0], observation=observation)


def play(env, lv, actions, seed=0):
    """Steps of ``actions`` from the level's start: (obs, state, reward, terminated,
    truncated) after each."""
    params = env.default_params
    obs, state = env.reset_to_level(jax.random.key(seed), lv, params)
    out = []
    for i, action in enumerate(actions):
        obs, state, reward, terminated, truncated, _ = env.step_env(
            jax.random.key(seed * 1000 + i), state, jnp.int32(action), params)
        out.append((obs, state, float(reward), bool(terminated), bool(truncated)))
    return out


def test_moves_walls_and_the_border():
    lv = level(["S.#", "...", "..."], rewards=(0.0,))  # no objects: just moving
    env = env_for(lv)
    steps = play(env, lv, [UP, LEFT, RIGHT, RIGHT, DOWN, DOWN, DOWN, STAY])
    positions = [tuple(np.asarray(s[1].position)) for s in steps]
    # up/left off the grid stay; right once, then the wall at (0, 2) blocks; down twice, then
    # the border; stay stays.
    assert positions == [(0, 0), (0, 0), (0, 1), (0, 1), (1, 1), (2, 1), (2, 1), (2, 1)]
    assert all(s[2] == 0.0 and not s[3] for s in steps)


def test_collection_gives_the_reward_and_removes_the_object():
    lv = level(["S0", ".."], rewards=(0.5,), p_terminate=(0.0,), p_respawn=(0.0,))
    env = env_for(lv)
    steps = play(env, lv, [RIGHT, STAY, LEFT, RIGHT])
    assert [s[2] for s in steps] == [0.5, 0.0, 0.0, 0.0]
    assert [bool(np.asarray(s[1].present)[0]) for s in steps] == [False] * 4


def test_termination_with_probability_one_and_never_with_zero():
    for seed in range(5):
        (_, _, reward, terminated, truncated), = play(env_for(lv := level(
            ["S0", ".."], p_terminate=(1.0,))), lv, [RIGHT], seed)
        assert reward == 1.0 and terminated and not truncated
        (_, _, _, terminated, _), = play(env_for(lv := level(["S0", ".."],
                                                             p_terminate=(0.0,))), lv, [RIGHT],
                                         seed)
        assert not terminated


def test_respawn_in_place_with_probability_one_and_never_with_zero():
    always = level(["S0", ".."], p_respawn=(1.0,))
    steps = play(env_for(always), always, [RIGHT, LEFT, RIGHT])
    # Collected at step 1 (cannot reappear at the same step), back at step 2, collected again.
    assert [bool(np.asarray(s[1].present)[0]) for s in steps] == [False, True, False]
    assert [s[2] for s in steps] == [1.0, 0.0, 1.0]
    never = level(["S0", ".."], p_respawn=(0.0,))
    steps = play(env_for(never), never, [RIGHT, LEFT, STAY, STAY, RIGHT])
    assert not any(bool(np.asarray(s[1].present)[0]) for s in steps)


def test_random_respawn_places_objects_on_free_unoccupied_cells():
    lv = level(["S0.#", "....", ".#..", "...."], p_respawn=(1.0,), random_respawn=True)
    env = env_for(lv, "maps")
    walls = np.asarray(lv.walls)
    for seed in range(6):
        steps = play(env, lv, [STAY, RIGHT, STAY, STAY], seed)
        for _, state, *_ in steps:
            r, c = np.asarray(state.object_positions)[0]
            assert not walls[r, c]
        # Every respawn (each second step, p_respawn 1) lands off the agent's cell.
        _, state, *_ = steps[2]
        assert bool(np.asarray(state.present)[0])
        assert tuple(np.asarray(state.object_positions)[0]) != tuple(np.asarray(
            state.position))


def test_truncation_at_the_episode_length_is_not_termination():
    lv = level(["S.", ".."], rewards=(0.0,), length=3)
    steps = play(env_for(lv), lv, [STAY, STAY, STAY])
    assert [(s[3], s[4]) for s in steps] == [(False, False), (False, False), (False, True)]


def test_tabular_and_map_observations_by_hand():
    lv = level(["S0", ".1"], rewards=(1.0, -1.0), p_terminate=(0.0, 0.0),
               p_respawn=(0.0, 0.0), length=4)
    tabular = env_for(lv, "tabular")
    obs, state = tabular.reset_to_level(jax.random.key(0), lv, tabular.default_params)
    # 2x2 cells x 2**2 masks + time; the agent at cell 0, both objects present (mask 3).
    assert obs.shape == (2 * 2 * 4 + 1,)
    assert int(np.argmax(np.asarray(obs[:-1]))) == 0 + 4 * 3 and float(obs[-1]) == 0.0
    obs, state, *_ = tabular.step_env(jax.random.key(1), state, jnp.int32(RIGHT),
                                      tabular.default_params)
    # At cell 1, object 0 collected: mask 2 (only object 1 left); time 1/4.
    assert int(np.argmax(np.asarray(obs[:-1]))) == 1 + 4 * 2 and float(obs[-1]) == 0.25
    maps = env_for(lv, "maps")
    obs, _ = maps.reset_to_level(jax.random.key(0), lv, maps.default_params)
    agent, type0, type1 = (np.asarray(obs[:-1]).reshape(3, 2, 2))
    assert agent.tolist() == [[1, 0], [0, 0]]
    assert type0.tolist() == [[0, 1], [0, 0]] and type1.tolist() == [[0, 0], [0, 1]]


def test_optimal_return_by_hand_on_tiny_levels():
    # One reward next to the start that ends the episode: 1, whatever the length.
    lv = level(["S0", "##"], rewards=(1.0,), p_terminate=(1.0,), length=5)
    np.testing.assert_allclose(float(gw.optimal_return(env_for(lv), lv)), 1.0, rtol=1e-6)
    # A reward two steps away, episode of length 1: out of reach, 0.
    far = level(["S.0", "###", "###"], rewards=(1.0,), p_terminate=(1.0,), length=1)
    assert float(gw.optimal_return(env_for(far), far)) == 0.0
    # Respawning in place with probability p, never terminating, 4 steps: collect at step 1
    # (1); at step 2 the object is absent (collected at step 1, it could not reappear then),
    # so nothing; it reappears at step 2 with probability p and the agent, standing on its
    # cell, collects it at step 3; otherwise it may reappear at step 3 (p) for step 4.
    p = 0.5
    lv = level(["S0", "##"], rewards=(1.0,), p_terminate=(0.0,), p_respawn=(p,), length=4)
    value = float(gw.optimal_return(env_for(lv), lv))
    expected = 1.0 + (1.0 - (1.0 - p) ** 2)
    np.testing.assert_allclose(value, expected, rtol=1e-5)
    with pytest.raises(ValueError, match="random cells"):
        rand = level(["S0", ".."], random_respawn=True)
        gw.optimal_return(env_for(rand), rand)


@pytest.fixture(scope="module")
def sampler():
    env, params = jaxrl_suite.make("gridworld", wrappers=False)
    return env, params, jax.jit(jax.vmap(env.sample_level, in_axes=(0, None)))


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1))
def test_sampled_levels_are_valid_and_in_range(sampler, seed):
    env, params, sample = sampler
    levels = jax.tree.map(np.asarray, sample(jax.random.split(jax.random.key(seed), 16),
                                             params))
    for i in range(16):
        side, count = int(levels.side[i]), int(levels.num_objects[i])
        assert 4 <= side <= 10 and 1 <= count <= 5
        assert 20 <= int(levels.episode_length[i]) <= 750
        walls = levels.walls[i]
        assert walls[side:, :].all() and walls[:, side:].all()  # padding is wall
        cells = [tuple(levels.start[i])] + [tuple(p) for p in levels.object_positions[i][:count]]
        assert len(set(cells)) == len(cells)  # distinct
        for r, c in cells:
            assert r < side and c < side and not walls[r, c]
        assert levels.type_rewards[i][0] >= 0 and (np.abs(levels.type_rewards[i]) <= 1).all()
        assert ((levels.type_p_terminate[i] >= 1e-2 - 1e-7)
                & (levels.type_p_terminate[i] <= 1)).all()
        assert ((levels.type_p_respawn[i] >= 1e-3 - 1e-8)
                & (levels.type_p_respawn[i] <= 0.1 + 1e-7)).all()
        assert int(levels.object_types[i][0]) == 0


def test_mutation_keeps_levels_valid(sampler):
    env, params, sample = sampler
    levels = sample(jax.random.split(jax.random.key(3), 8), params)
    mutate = jax.jit(jax.vmap(env.mutate_level, in_axes=(0, 0, None, None)))
    mutated = jax.tree.map(np.asarray, mutate(jax.random.split(jax.random.key(4), 8), levels,
                                              10, params))
    changed = 0
    for i in range(8):
        side, count = int(mutated.side[i]), int(mutated.num_objects[i])
        cells = [tuple(mutated.start[i])] + [tuple(p) for p in
                                              mutated.object_positions[i][:count]]
        assert len(set(cells)) == len(cells)
        for r, c in cells:
            assert r < side and c < side and not mutated.walls[i][r, c]
        changed += not all(np.array_equal(np.asarray(a)[i], b[i]) for a, b in zip(
            jax.tree.leaves(levels), jax.tree.leaves(mutated), strict=True))
    assert changed >= 6


def test_named_levels_load_valid_and_describe_themselves():
    names = gw.named_level_names()
    assert names[:5] == ["dense", "sparse", "long", "longer", "long_dense"]
    for name in names:
        info = gw.named_level_info(name)
        assert info["description"] and info["lifetime"] > 0
        lv = gw.load_level(name)
        assert int(lv.num_objects) == info["num_objects"]
        side = int(lv.side)
        for r, c in [tuple(np.asarray(lv.start))] + [tuple(p) for p in np.asarray(
                lv.object_positions)[:int(lv.num_objects)]]:
            assert r < side and c < side and not bool(np.asarray(lv.walls)[r, c])
    env, params = jaxrl_suite.make("gridworld/longer")
    level_a = env.sample_level(jax.random.key(0), params)
    level_b = env.sample_level(jax.random.key(1), params)
    assert all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(level_a),
                                                    jax.tree.leaves(level_b), strict=True))
    # The sparse level's optimal return: the reward, 11 + 10 steps from the start, well
    # within its 50 steps, ends the episode.
    sparse = gw.named_level_env("sparse")
    assert float(gw.optimal_return(sparse, gw.load_level("sparse"))) == pytest.approx(1.0)


def test_render_writes_a_png_of_levels(tmp_path):
    from PIL import Image

    levels = gw.stack_levels([gw.load_level(name, gw.GridWorld(max_side=13, max_objects=5,
                                                               max_types=3))
                              for name in ("dense", "sparse", "longer", "long_dense")])
    image = gw.render_level_grid(levels, tile_size=6)
    assert image.dtype == np.uint8 and image.shape[2] == 3
    path = tmp_path / "levels.png"
    from jaxrl_suite.envs.gridworld.render import save_png
    save_png(image, path)
    assert Image.open(path).size == (image.shape[1], image.shape[0])
    single = gw.render_level(gw.load_level("longer"), 4)
    walls = np.asarray(gw.load_level("longer").walls)
    # The wall down the middle column is dark in the picture.
    assert tuple(single[0 * 4 + 1, 4 * 4 + 1]) == (60, 60, 60) and walls[0, 4]


@pytest.mark.parametrize("kwargs, message", [
    ({"distribution": "huge"}, "distribution must be one of"),
    ({"observation": "pixels"}, "observation must be one of"),
    ({"max_side": 1}, "max_side must be an integer >= 2"),
    ({"max_objects": 13}, "too many"),
])
def test_bad_constructor_options_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        gw.GridWorld(**kwargs)


def test_bad_params_are_refused():
    env = gw.GridWorld()
    with pytest.raises(ValueError, match="min_side <= max_side <= 10"):
        env.check_params(env.default_params.replace(max_side=12))
    with pytest.raises(ValueError, match="wall_probability"):
        env.check_params(env.default_params.replace(wall_probability=1.5))
    with pytest.raises(ValueError, match="unknown named level"):
        gw.load_level("densest")
