"""Comparing training states leaf by leaf, PRNG keys included (resume and vmap tests)."""

from __future__ import annotations

from typing import Any

import jax
import numpy as np


def as_numpy(leaf: Any) -> np.ndarray:
    """A state leaf as a numpy array: a typed PRNG key as its raw key data."""
    if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
        leaf = jax.random.key_data(leaf)
    return np.asarray(leaf)


def assert_states_equal(a: Any, b: Any) -> None:
    """Two pytrees of the same structure, equal bit for bit in every leaf."""
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(as_numpy(x), as_numpy(y))
