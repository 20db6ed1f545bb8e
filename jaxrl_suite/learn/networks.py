"""Small flax (linen) networks shared by the algorithms.

Every module here maps a batch of flat observations or features ``(..., features)`` to outputs
with the same leading axes; nothing assumes a particular batch rank, so the same module serves a
single env, ``vmap`` over envs, and minibatches. An observation with several axes (a MinAtar
image ``(10, 10, C)``) first passes an encoder from ``array_encoder``: ``Flatten`` for the MLPs,
or ``MinAtarEncoder``'s convolution.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "ACTIVATIONS",
    "ARRAY_ENCODERS",
    "MLP",
    "DeterministicActor",
    "Flatten",
    "GaussianActor",
    "GridEncoder",
    "MinAtarEncoder",
    "QEnsemble",
    "QNetwork",
    "ResettableGRU",
    "TanhGaussianActor",
    "activation_by_name",
    "array_encoder",
    "flatten_observation",
    "orthogonal",
    "scale_to_bounds",
    "tanh_gaussian_sample",
    "unit_dormancy",
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
    ``layer_norm`` adds a LayerNorm after each hidden activation (ReBRAC's critics).
    Input ``(..., in)`` -> output ``(..., output_size)``.
    """

    hidden_sizes: Sequence[int]
    output_size: int
    activation: str = "tanh"
    output_scale: float = 1.0
    layer_norm: bool = False

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        activation = activation_by_name(self.activation)
        for width in self.hidden_sizes:
            x = nn.Dense(width, kernel_init=orthogonal(np.sqrt(2.0)))(x)
            x = activation(x)
            if self.layer_norm:
                x = nn.LayerNorm()(x)
        return nn.Dense(
            self.output_size, kernel_init=orthogonal(self.output_scale)
        )(x)


class GridEncoder(nn.Module):
    """Features of a grid observation ``{"image": (..., H, W, C), "direction": (...) int}`` (the
    maze's): a ``kernel_size`` convolution over the image (valid padding, ReLU), flattened, and a
    learned embedding of the one-hot direction, concatenated. A missing ``"direction"`` is
    skipped. Output ``(..., conv_features * (H - k + 1) * (W - k + 1) + direction_features)``.
    """

    conv_features: int = 16
    kernel_size: int = 3
    direction_features: int = 5
    num_directions: int = 4

    @nn.compact
    def __call__(self, observation: dict[str, jax.Array]) -> jax.Array:
        image = jnp.asarray(observation["image"], jnp.float32)
        batch_shape = image.shape[:-3]
        kernel = (self.kernel_size, self.kernel_size)
        features = nn.Conv(self.conv_features, kernel, padding="VALID",
                           kernel_init=orthogonal(np.sqrt(2.0)))(
            image.reshape(-1, *image.shape[-3:])
        )
        parts = [nn.relu(features).reshape(*batch_shape, -1)]
        if "direction" in observation:
            one_hot = jax.nn.one_hot(observation["direction"], self.num_directions)
            parts.append(nn.Dense(self.direction_features,
                                  kernel_init=orthogonal(np.sqrt(2.0)))(one_hot))
        return jnp.concatenate(parts, axis=-1)


def unit_dormancy(module: nn.Module, variables: Any, inputs: Any,
                  activation: Callable[[jax.Array], jax.Array]) -> Any:
    """How active each unit of ``module``'s dense layers is on ``inputs``, relative to its layer.

    A unit's score is its mean absolute activation over the batch divided by the mean of that
    over its layer (Sokar et al. 2023's dormancy, the input OPEN's learned optimiser reads): 1
    for an average unit, near 0 for a dormant one. Hidden dense layers are scored after
    ``activation``, a scope's last dense layer (an MLP's output) on its raw output.

    Args:
      module: a flax module (an ``MLP``, or one containing them).
      variables: its variables (``{"params": ...}``).
      inputs: a batch of its inputs, ``(..., in)``; every leading axis is a batch axis.
      activation: the hidden layers' activation.

    Returns:
      A pytree shaped like ``variables``: each dense kernel ``(in, out)`` and bias ``(out,)``
      holds its output unit's score (broadcast over ``in``); every other leaf holds ones.
    """
    _, captured = module.apply(variables, inputs, capture_intermediates=True,
                               mutable=["intermediates"])

    def dense_index(name: str) -> int:
        return int(name.split("_")[-1]) if name.startswith("Dense_") else -1

    def score(params: Any, outputs: Any) -> Any:
        last = max((dense_index(name) for name in params), default=-1)
        scored = {}
        for name, child in params.items():
            kernel = child.get("kernel") if isinstance(child, Mapping) else None
            if kernel is not None and kernel.ndim == 2 and name in outputs:
                output = outputs[name]["__call__"][0]
                if dense_index(name) != last:
                    output = activation(output)
                magnitude = jnp.abs(output).reshape(-1, output.shape[-1]).mean(axis=0)
                unit = magnitude / (magnitude.mean() + 1e-9)
                scored[name] = {leaf: (jnp.broadcast_to(unit, value.shape)
                                       if leaf in ("kernel", "bias") else jnp.ones_like(value))
                                for leaf, value in child.items()}
            elif isinstance(child, Mapping):
                scored[name] = score(child, outputs.get(name, {}))
            else:
                scored[name] = jnp.ones_like(child)
        return scored

    return {"params": score(variables["params"], captured["intermediates"])}


def flatten_observation(observation: jax.Array, observation_ndim: int) -> jax.Array:
    """``(..., *observation_shape)`` -> ``(..., prod(observation_shape))``, where the observation
    has ``observation_ndim`` axes; returned as it is when that is 1 (already flat)."""
    if observation_ndim == 1:
        return observation
    batch_shape = observation.shape[:observation.ndim - observation_ndim]
    return observation.reshape(*batch_shape, -1)


class Flatten(nn.Module):
    """``flatten_observation`` as a module without parameters: the encoder that lets an MLP take
    an observation of ``observation_ndim`` axes. ``(..., *obs_shape) -> (..., prod(obs_shape))``.
    """

    observation_ndim: int

    def __call__(self, observation: jax.Array) -> jax.Array:
        return flatten_observation(observation, self.observation_ndim)


class MinAtarEncoder(nn.Module):
    """The convolution of the MinAtar paper's networks (Young & Tian, 2019): one 3x3
    convolution, stride 1, valid padding, ReLU, flattened. The paper's dense hidden layer of 128
    is the first layer of the MLP that follows (``hidden_sizes=(128,)``).

    Input ``(..., H, W, C)`` -> ``(..., conv_features * (H - 2) * (W - 2))``: 1024 features for
    MinAtar's ``(10, 10, C)`` with 16 channels.
    """

    conv_features: int = 16

    @nn.compact
    def __call__(self, image: jax.Array) -> jax.Array:
        batch_shape = image.shape[:-3]
        features = nn.Conv(self.conv_features, (3, 3), strides=1, padding="VALID",
                           kernel_init=orthogonal(np.sqrt(2.0)))(
            image.reshape(-1, *image.shape[-3:])  # flax's Conv wants one batch axis
        )
        return nn.relu(features).reshape(*batch_shape, -1)


ARRAY_ENCODERS = ("none", "minatar")  # what array_encoder builds; PPO also has "grid" (dicts)


def array_encoder(name: str, observation_shape: Sequence[int],
                  conv_features: int = 16) -> nn.Module | None:
    """The encoder called ``name`` for ``Box`` observations of ``observation_shape``:

    * ``"none"``: None for a flat ``(features,)`` observation (the MLP takes it as it is, so
      nothing changes for it), else ``Flatten``: an MLP takes an image ``(H, W, C)`` as
      ``H * W * C`` features;
    * ``"minatar"``: ``MinAtarEncoder(conv_features)``; the shape must be ``(H, W, C)``.

    Raises a ``ValueError`` naming the encoder or the shape that does not fit.
    """
    observation_ndim = len(observation_shape)
    if name == "none":
        return None if observation_ndim <= 1 else Flatten(observation_ndim)
    if name == "minatar":
        if observation_ndim != 3 or min(observation_shape[:2]) < 3:
            raise ValueError(f"encoder='minatar' convolves an image observation (H, W, C) with "
                             f"H, W >= 3; got shape {tuple(observation_shape)}.")
        return MinAtarEncoder(conv_features)
    raise ValueError(f"Unknown encoder {name!r} for array observations; choose one of "
                     f"{', '.join(ARRAY_ENCODERS)}.")


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


# --- off-policy heads ---------------------------------------------------------------------------
class QNetwork(nn.Module):
    """Action values for a discrete action space: ``(..., obs) -> (..., num_actions)``.

    ``dueling``: a value stream and an advantage stream whose mean is subtracted (Wang et al.,
    2016), sharing the hidden layers. ``encoder`` (from ``array_encoder``; None for flat
    observations) maps the observation ``(..., *obs_shape)`` to the MLP's features first; its
    parameters, if any, are under ``"encoder"``.
    """

    hidden_sizes: Sequence[int]
    num_actions: int
    activation: str = "relu"
    dueling: bool = False
    encoder: nn.Module | None = None

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        if self.encoder is not None:
            x = self.encoder(x)
        if not self.dueling:
            return MLP(self.hidden_sizes, self.num_actions, self.activation)(x)
        features = MLP(self.hidden_sizes[:-1], self.hidden_sizes[-1], self.activation)(x)
        features = activation_by_name(self.activation)(features)
        value = nn.Dense(1, kernel_init=orthogonal(1.0))(features)
        advantage = nn.Dense(self.num_actions, kernel_init=orthogonal(1.0))(features)
        return value + advantage - advantage.mean(axis=-1, keepdims=True)


class QEnsemble(nn.Module):
    """``num_members`` independent critics evaluated as one ``vmap`` over their parameters.

    ``__call__(*inputs)`` concatenates the inputs on the last axis (``(observation, action)`` for
    Q(s, a), ``(observation,)`` for a discrete-action Q(s, .)) and returns
    ``(num_members, ...)``: ``(num_members, ...)`` scalars when ``output_size`` is None, else
    ``(num_members, ..., output_size)``. Parameters have a leading ``num_members`` axis, so the
    members are initialised independently and trained as one batched matmul.
    """

    hidden_sizes: Sequence[int]
    num_members: int = 2
    activation: str = "relu"
    output_size: int | None = None
    layer_norm: bool = False  # a LayerNorm after each hidden activation of every member

    @nn.compact
    def __call__(self, *inputs: jax.Array) -> jax.Array:
        x = jnp.concatenate(inputs, axis=-1)
        members = nn.vmap(
            MLP,
            variable_axes={"params": 0},
            split_rngs={"params": True},
            in_axes=None,
            out_axes=0,
            axis_size=self.num_members,
        )(self.hidden_sizes, self.output_size or 1, self.activation, 1.0, self.layer_norm)
        out = members(x)
        return out[..., 0] if self.output_size is None else out


class TanhGaussianActor(nn.Module):
    """SAC's policy head: ``(..., obs) -> (mean, log_std)``, each ``(..., action_dim)``, of the
    Gaussian before the tanh squashing; ``log_std`` is state-dependent and squashed smoothly
    into ``[log_std_min, log_std_max]``."""

    hidden_sizes: Sequence[int]
    action_dim: int
    activation: str = "relu"
    log_std_min: float = -5.0
    log_std_max: float = 2.0

    @nn.compact
    def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        out = MLP(self.hidden_sizes, 2 * self.action_dim, self.activation, 1.0)(x)
        mean, raw_log_std = jnp.split(out, 2, axis=-1)
        unit = 0.5 * (jnp.tanh(raw_log_std) + 1.0)
        return mean, self.log_std_min + (self.log_std_max - self.log_std_min) * unit


class DeterministicActor(nn.Module):
    """TD3/DDPG's policy: ``(..., obs) -> (..., action_dim)`` in ``[-1, 1]`` (tanh); map to
    the action bounds with ``scale_to_bounds``."""

    hidden_sizes: Sequence[int]
    action_dim: int
    activation: str = "relu"

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        return jnp.tanh(MLP(self.hidden_sizes, self.action_dim, self.activation, 1.0)(x))


def scale_to_bounds(unit_action: jax.Array, low: jax.Array, high: jax.Array) -> jax.Array:
    """Map an action in ``[-1, 1]`` affinely onto ``[low, high]``."""
    return low + 0.5 * (unit_action + 1.0) * (high - low)


def unit_from_bounds(action: jax.Array, low: jax.Array, high: jax.Array) -> jax.Array:
    """Map an action in ``[low, high]`` affinely onto ``[-1, 1]``: ``scale_to_bounds``'s
    inverse."""
    return 2.0 * (action - low) / (high - low) - 1.0


def tanh_gaussian_sample(
    mean: jax.Array, log_std: jax.Array, noise: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """``(action, log_prob)`` of ``tanh(mean + std * noise)``, the action in ``(-1, 1)``.

    ``noise`` is standard normal, shaped like ``mean`` ``(..., action_dim)``; ``log_prob``
    ``(...)`` is of the squashed action, with the tanh change of variables computed in the
    stable form ``log(1 - tanh(u)^2) = 2 (log 2 - u - softplus(-2u))``.
    """
    pre_tanh = mean + jnp.exp(log_std) * noise
    gaussian_log_prob = -0.5 * (noise**2 + jnp.log(2.0 * jnp.pi)) - log_std
    log_det = 2.0 * (jnp.log(2.0) - pre_tanh - jax.nn.softplus(-2.0 * pre_tanh))
    return jnp.tanh(pre_tanh), jnp.sum(gaussian_log_prob - log_det, axis=-1)
