"""The LAPACK-free orthogonal initialiser (jaxlib's batched QR hangs under vmap on 2 cores)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl_suite.learn.networks import orthogonal


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


@pytest.mark.slow
def test_grid_encoder_shapes_batches_and_gradients():
    from jaxrl_suite.learn.networks import GridEncoder

    encoder = GridEncoder()
    single = {"image": jnp.zeros((5, 5, 3), jnp.uint8), "direction": jnp.int32(2)}
    params = encoder.init(jax.random.key(0), single)
    assert encoder.apply(params, single).shape == (16 * 3 * 3 + 5,)
    batch = {"image": jax.random.bernoulli(jax.random.key(1), 0.3, (2, 3, 5, 5, 3)),
             "direction": jnp.arange(6).reshape(2, 3) % 4}
    features = jax.jit(encoder.apply)(params, batch)
    assert features.shape == (2, 3, 16 * 3 * 3 + 5)
    # Each batch element is encoded alone: the batch agrees with one-by-one encoding.
    one = {"image": batch["image"][1, 2], "direction": batch["direction"][1, 2]}
    np.testing.assert_allclose(features[1, 2], encoder.apply(params, one), rtol=1e-5, atol=1e-6)
    grads = jax.grad(lambda p: encoder.apply(p, batch).sum())(params)
    assert all(bool(jnp.isfinite(g).all()) for g in jax.tree.leaves(grads))
    image_only = GridEncoder(direction_features=4)
    image_params = image_only.init(jax.random.key(0), {"image": single["image"]})
    assert image_only.apply(image_params, {"image": single["image"]}).shape == (16 * 3 * 3,)


def test_action_heads_sample_clip_and_refuse_other_spaces():
    from jaxrl_suite.env import spaces
    from jaxrl_suite.learn.action_heads import ActionHead

    box = ActionHead.for_space(spaces.Box(-1.0, 2.0, (2,), jnp.float32))
    dist = box.distribution((jnp.zeros(2), jnp.log(jnp.full(2, 3.0))))
    noise = box.sampling_noise(jax.random.key(0), (5000,))
    samples = box.sample_from_noise(dist, noise)
    assert samples.shape == (5000, 2)
    np.testing.assert_allclose(np.asarray(samples.std(axis=0)), [3.0, 3.0], rtol=0.05)
    clipped = box.clip(samples)
    assert float(clipped.min()) == -1.0 and float(clipped.max()) == 2.0
    discrete = ActionHead.for_space(spaces.Discrete(3))
    logits = jnp.log(jnp.array([0.2, 0.3, 0.5]))
    draws = discrete.sample_from_noise(discrete.distribution(logits),
                                       discrete.sampling_noise(jax.random.key(1), (20000,)))
    np.testing.assert_allclose(np.bincount(np.asarray(draws), minlength=3) / 20000,
                               [0.2, 0.3, 0.5], atol=0.015)
    assert int(discrete.greedy(discrete.distribution(logits))) == 2
    with pytest.raises(ValueError, match="Discrete or Box"):
        ActionHead.for_space(spaces.Dict({"a": spaces.Discrete(2)}))
