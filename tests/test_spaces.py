"""Spaces: sample is always contained; contains rejects wrong shapes, dtypes and values."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jaxrl_suite.env.spaces import Box, Dict, Discrete, MultiDiscrete


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 50), seed=st.integers(0, 2**31 - 1))
def test_discrete_samples_are_contained(n, seed):
    space = Discrete(n)
    x = space.sample(jax.random.key(seed))
    assert x.dtype == jnp.int32 and x.shape == () and 0 <= int(x) < n
    assert bool(space.contains(x))


@pytest.mark.slow
@settings(max_examples=25, deadline=None)
@given(
    low=st.floats(-100, 100),
    width=st.floats(0, 50),
    shape=st.lists(st.integers(1, 3), max_size=2).map(tuple),
    seed=st.integers(0, 2**31 - 1),
)
def test_box_samples_are_contained(low, width, shape, seed):
    space = Box(low, low + width, shape)
    x = space.sample(jax.random.key(seed))
    assert x.shape == shape and x.dtype == jnp.float32
    assert bool(space.contains(x))


def test_unbounded_and_half_bounded_box():
    space = Box(np.array([-np.inf, 0.0, -np.inf]), np.array([np.inf, np.inf, 1.0]))
    xs = jax.vmap(space.sample)(jax.random.split(jax.random.key(0), 200))
    assert np.isfinite(xs).all() and (xs[:, 1] >= 0).all() and (xs[:, 2] <= 1).all()
    assert bool(jax.vmap(space.contains)(xs).all())


def test_integer_box():
    space = Box(0, 3, (4,), jnp.int32)
    xs = jax.vmap(space.sample)(jax.random.split(jax.random.key(0), 100))
    assert xs.dtype == jnp.int32 and set(np.unique(xs)) == {0, 1, 2, 3}
    assert not bool(space.contains(jnp.full((4,), 0.5)))  # floats are not in an integer Box


def test_contains_rejects_out_of_range_shape_and_dtype():
    assert not bool(Discrete(3).contains(3)) and not bool(Discrete(3).contains(-1))
    assert not bool(Discrete(3).contains(1.0))
    assert not bool(Discrete(3).contains(jnp.array([1])))
    box = Box(-1.0, 1.0, (2,))
    assert bool(box.contains(jnp.array([1.0, -1.0])))
    assert not bool(box.contains(jnp.array([1.5, 0.0])))
    assert not bool(box.contains(jnp.zeros(3)))
    multi = MultiDiscrete([2, 5])
    assert bool(multi.contains(jnp.array([1, 4])))
    assert not bool(multi.contains(jnp.array([2, 0])))


def test_multidiscrete_and_dict_sampling():
    multi = MultiDiscrete([2, 3, 4])
    xs = jax.vmap(multi.sample)(jax.random.split(jax.random.key(0), 300))
    assert xs.shape == (300, 3) and (xs.max(0) == np.array([1, 2, 3])).all()
    space = Dict({"a": Discrete(4), "b": Box(0.0, 1.0, (2,))})
    x = space.sample(jax.random.key(1))
    assert set(x) == {"a", "b"} and bool(space.contains(x))
    assert not bool(space.contains({"a": x["a"]}))
    assert not bool(space.contains({"a": jnp.asarray(9), "b": x["b"]}))


def test_contains_works_under_jit():
    space = Box(0.0, 1.0, (2,))
    assert bool(jax.jit(space.contains)(jnp.array([0.5, 0.5])))
    assert not bool(jax.jit(Discrete(2).contains)(jnp.asarray(5)))


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: Discrete(0), "positive integer"),
        (lambda: Discrete(2.5), "positive integer"),
        (lambda: Discrete(3, dtype=jnp.float32), "integer dtype"),
        (lambda: Box(1.0, 0.0), "low <= high"),
        (lambda: Box(np.zeros(2), np.ones(3), (2,)), "do not broadcast"),
        (lambda: MultiDiscrete([2, 0]), "positive"),
        (lambda: MultiDiscrete([]), "non-empty"),
        (lambda: Dict({"a": 3}), "must be a Space"),
    ],
)
def test_bad_space_arguments_raise_clear_errors(make, message):
    with pytest.raises((ValueError, TypeError), match=message):
        make()
