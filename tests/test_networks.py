"""The LAPACK-free orthogonal initialiser (jaxlib's batched QR hangs under vmap on 2 cores)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl_suite.networks import orthogonal


@pytest.mark.parametrize("shape", [(4, 64), (64, 64), (64, 2), (3, 5, 7)])
def test_orthogonal_rows_or_columns_with_the_gain(shape):
    weights = orthogonal(2.0)(jax.random.key(0), shape)
    assert weights.shape == shape and weights.dtype == jnp.float32
    matrix = weights.reshape(-1, shape[-1])
    gram = matrix.T @ matrix if matrix.shape[0] >= matrix.shape[1] else matrix @ matrix.T
    np.testing.assert_allclose(gram, 4.0 * np.eye(gram.shape[0]), atol=1e-4)


def test_orthogonal_under_vmap_differs_per_key_and_matches_unbatched():
    keys = jax.random.split(jax.random.key(1), 4)
    batched = jax.jit(jax.vmap(lambda k: orthogonal()(k, (16, 8))))(keys)
    assert batched.shape == (4, 16, 8)
    assert not np.allclose(batched[0], batched[1])
    np.testing.assert_allclose(batched[2], orthogonal()(keys[2], (16, 8)), atol=1e-5)
