"""Small flax (linen) networks shared by the algorithms.

Every module here maps a batch of flat observations or features ``(..., features)`` to outputs
with the same leading axes; nothing assumes a particular batch rank, so the same module serves a
single env, ``vmap`` over envs, and minibatches.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "ACTIVATIONS",
    "MLP",
    "GaussianActor",
    "ResettableGRU",
    "activation_by_name",
    "orthogonal",
]

ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "tanh": nn.tanh,
    "relu": nn.relu,
    "gelu": nn.gelu,
    "silu": nn.silu,
    "elu": nn.elu,
}


def _orthonormal_columns(matrix: jax.Array) -> jax.Array:
    """Gram-Schmidt (twice per column, for float32 accuracy) on ``(n, m)``, ``n >= m``.

    Equals the Q of a QR decomposition whose R has a positive diagonal, which is what makes
    ``orthogonal`` Haar-distributed.
    """

    def add_column(basis, column_index):
        column = matrix[:, column_index]
        for _ in range(2):  # unfilled columns of basis are zero, so they project out nothing
            column = column - basis @ (basis.T @ column)
        column = column / jnp.linalg.norm(column)
        return basis.at[:, column_index].set(column), None

    basis, _ = jax.lax.scan(add_column, jnp.zeros_like(matrix), jnp.arange(matrix.shape[1]))
    return basis


def orthogonal(scale: float = 1.0) -> Callable[..., jax.Array]:
    """Orthogonal initialiser for dense kernels ``(..., fan_in, fan_out)``, gain ``scale``.

    The same distribution as ``jax.nn.initializers.orthogonal``, computed without LAPACK: on CPU,
    jaxlib 0.10's batched QR (what that initialiser becomes under ``vmap`` over seeds) runs its
    batch on the XLA thread pool and waits for it from inside that pool; with two cores both
    threads end up waiting and the program hangs. Initialising ``vmap``-ed seeds is exactly what
    ``jax.vmap(train)`` does, so the project uses this one.
    """

    def init(key: jax.Array, shape: Sequence[int], dtype: Any = jnp.float32) -> jax.Array:
        rows, cols = math.prod(shape[:-1]), shape[-1]
        tall = (max(rows, cols), min(rows, cols))
        basis = _orthonormal_columns(jax.random.normal(key, tall, jnp.float32))
        matrix = basis if rows >= cols else basis.T
        return (scale * matrix).reshape(shape).astype(dtype)

    return init


def activation_by_name(name: str) -> Callable[[jax.Array], jax.Array]:
    """The activation called ``name``; an unknown name raises a ``ValueError`` listing them."""
    if name not in ACTIVATIONS:
        raise ValueError(f"Unknown activation {name!r}; choose one of {', '.join(ACTIVATIONS)}.")
    return ACTIVATIONS[name]


class MLP(nn.Module):
    """Dense layers with orthogonal init (gain sqrt 2) and zero biases, then a linear output.

    ``output_scale`` is the orthogonal gain of the output layer: 0.01 for a policy head (nearly
    uniform initial policy), 1.0 for a value head, as in the PPO implementation-details study.
    Input ``(..., in)`` -> output ``(..., output_size)``.
    """

    hidden_sizes: Sequence[int]
    output_size: int
    activation: str = "tanh"
    output_scale: float = 1.0

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        activation = activation_by_name(self.activation)
        for width in self.hidden_sizes:
            x = nn.Dense(width, kernel_init=orthogonal(np.sqrt(2.0)))(x)
            x = activation(x)
        return nn.Dense(
            self.output_size, kernel_init=orthogonal(self.output_scale)
        )(x)


class GaussianActor(nn.Module):
    """Diagonal Gaussian policy: an ``MLP`` for the mean, a state-independent log-std vector.

    Returns ``(mean, log_std)``, each ``(..., action_dim)``; ``log_std`` starts at
    ``initial_log_std`` and is broadcast to the mean's shape.
    """

    hidden_sizes: Sequence[int]
    action_dim: int
    activation: str = "tanh"
    initial_log_std: float = 0.0

    @nn.compact
    def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        mean = MLP(self.hidden_sizes, self.action_dim, self.activation, output_scale=0.01)(x)
        log_std = self.param(
            "log_std", nn.initializers.constant(self.initial_log_std), (self.action_dim,)
        )
        return mean, jnp.broadcast_to(log_std, mean.shape)


class ResettableGRU(nn.Module):
    """One step of a GRU whose hidden state is zeroed where an episode starts.

    ``__call__(hidden, (x, episode_start))``: ``hidden`` ``(..., hidden_size)``, ``x``
    ``(..., in)``, ``episode_start`` ``(...)`` bool, True where ``x`` is the first observation of
    an episode (so nothing of the previous episode leaks into this one). Returns
    ``(new_hidden, new_hidden)``, so it scans over time directly. ``x`` first passes one dense
    layer of ``hidden_size`` with the activation.
    """

    hidden_size: int
    activation: str = "tanh"

    @nn.compact
    def __call__(
        self, hidden: jax.Array, inputs: tuple[jax.Array, jax.Array]
    ) -> tuple[jax.Array, jax.Array]:
        x, episode_start = inputs
        x = nn.Dense(self.hidden_size, kernel_init=orthogonal(np.sqrt(2.0)))(x)
        x = activation_by_name(self.activation)(x)
        hidden = jnp.where(episode_start[..., None], jnp.zeros_like(hidden), hidden)
        cell = nn.GRUCell(features=self.hidden_size, recurrent_kernel_init=orthogonal())
        new_hidden, _ = cell(hidden, x)
        return new_hidden, new_hidden

    def initial_hidden(self, batch_shape: tuple[int, ...] = ()) -> jax.Array:
        return jnp.zeros((*batch_shape, self.hidden_size), jnp.float32)
