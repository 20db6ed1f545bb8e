"""Spaces: the shapes, dtypes and bounds of observations and actions.

Every space is a plain Python object (static under ``jit``) with two pure functions:

* ``sample(key)`` draws a uniformly random element (jit/vmap-able);
* ``contains(x)`` returns a scalar boolean array: is ``x`` an element of the space?

``contains`` checks shape statically (a wrongly shaped ``x`` gives ``False`` without tracing) and
bounds with array operations, so it works on concrete and traced values alike.

``Space``, ``Discrete``, ``Box`` and ``Dict`` are subclasses of gymnax's space classes, with the
project's constructors and behaviour, so code that checks ``isinstance(space,
gymnax.environments.spaces.Box)`` (gymnax's and PureJaxRL's ``FlattenObservationWrapper``,
``StickyActionWrapper``, ``gymnax_space_to_gym_space``) accepts the project's envs. They set
the attributes gymnax's classes have (``n``, ``low``, ``high``, ``shape``, ``dtype``,
``spaces``, ``num_spaces``) and never call gymnax's constructors, whose signatures differ.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


def _gymnax_spaces() -> Any:
    """gymnax's ``spaces`` module, without importing the gymnax package.

    ``import gymnax`` builds arrays while it registers its envs, which starts JAX's backend; the
    project's command line must set XLA's device count (one CPU device per core) before that,
    and it imports this module first. The spaces module itself needs only jax, numpy and
    gymnasium, so it is loaded from its file and entered in ``sys.modules`` under its own name:
    when gymnax is imported later, its envs find this very module, so gymnax's ``isinstance``
    checks and ours see the same classes."""
    name = "gymnax.environments.spaces"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.find_spec("gymnax")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("jaxrl-suite needs gymnax (pip install gymnax).")
    path = os.path.join(spec.submodule_search_locations[0], "environments", "spaces.py")
    module_spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module
    try:
        module_spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


gymnax_spaces = _gymnax_spaces()

__all__ = ["Space", "Discrete", "Box", "MultiDiscrete", "Dict", "from_gymnax_space"]


def check_key(key: Any, where: str) -> None:
    """Raise a ``TypeError`` unless ``key`` is a JAX PRNG key (raw uint32[2] or typed)."""
    dtype = getattr(key, "dtype", None)
    if dtype is not None and jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key):
        return
    if dtype == jnp.uint32 and np.shape(key) == (2,):
        return
    raise TypeError(
        f"{where}: key must be a JAX PRNG key such as jax.random.key(0) or "
        f"jax.random.PRNGKey(0); got {type(key).__name__} with dtype={dtype} and "
        f"shape={np.shape(key)}."
    )



class Space(gymnax_spaces.Space):
    """Base class. Subclasses set ``shape`` and ``dtype`` and implement the two functions."""

    shape: tuple[int, ...]
    dtype: Any

    def sample(self, key: jax.Array) -> Any:
        check_key(key, f"{type(self).__name__}.sample")
        raise NotImplementedError

    def contains(self, x: Any) -> jax.Array:
        raise NotImplementedError

    def _shape_matches(self, x: Any) -> bool:
        return tuple(np.shape(x)) == tuple(self.shape)


def _is_integer_dtype(dtype: Any) -> bool:
    return jnp.issubdtype(jnp.dtype(dtype), jnp.integer)


class Discrete(Space, gymnax_spaces.Discrete):
    """The integers ``0, 1, ..., n - 1`` as a scalar of ``dtype`` (int32 by default)."""

    def __init__(self, n: int, dtype: Any = jnp.int32):
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n <= 0:
            raise ValueError(f"Discrete(n) needs a positive integer n; got n={n!r}.")
        if not _is_integer_dtype(dtype):
            raise ValueError(f"Discrete needs an integer dtype; got dtype={dtype!r}.")
        self.n = int(n)
        self.shape = ()
        self.dtype = jnp.dtype(dtype)

    def __repr__(self) -> str:
        return f"Discrete({self.n})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Discrete) and (self.n, self.dtype) == (other.n, other.dtype)

    def __hash__(self) -> int:
        return hash(("Discrete", self.n, str(self.dtype)))

    def sample(self, key: jax.Array) -> jax.Array:
        check_key(key, f"{type(self).__name__}.sample")
        return jax.random.randint(key, (), 0, self.n, dtype=self.dtype)

    def contains(self, x: Any) -> jax.Array:
        if not self._shape_matches(x) or not _is_integer_dtype(jnp.result_type(x)):
            return jnp.asarray(False)
        x = jnp.asarray(x)
        return jnp.logical_and(x >= 0, x < self.n)


class Box(Space, gymnax_spaces.Box):
    """Arrays of ``shape`` and ``dtype`` with ``low <= x <= high`` elementwise.

    ``low`` and ``high`` are scalars or arrays broadcastable to ``shape``; infinite bounds are
    allowed (``sample`` then draws from a standard normal on the unbounded sides).
    """

    def __init__(
        self,
        low: Any,
        high: Any,
        shape: Sequence[int] | None = None,
        dtype: Any = jnp.float32,
    ):
        low_array = np.asarray(low, dtype=np.float64)
        high_array = np.asarray(high, dtype=np.float64)
        if shape is None:
            shape = np.broadcast_shapes(low_array.shape, high_array.shape)
        shape = tuple(int(d) for d in shape)
        if any(d < 0 for d in shape):
            raise ValueError(f"Box shape must have non-negative sizes; got shape={shape}.")
        try:
            low_array = np.broadcast_to(low_array, shape)
            high_array = np.broadcast_to(high_array, shape)
        except ValueError as error:
            raise ValueError(
                f"Box bounds of shapes {np.shape(low)} and {np.shape(high)} do not broadcast "
                f"to shape={shape}."
            ) from error
        if np.any(low_array > high_array):
            raise ValueError(f"Box needs low <= high everywhere; got low={low}, high={high}.")
        self.low = low_array.astype(dtype) if _is_integer_dtype(dtype) else low_array
        self.high = high_array.astype(dtype) if _is_integer_dtype(dtype) else high_array
        self.shape = shape
        self.dtype = jnp.dtype(dtype)

    def __repr__(self) -> str:
        low = self.low.flat[0] if self.low.size and np.all(self.low == self.low.flat[0]) else "…"
        high = (
            self.high.flat[0] if self.high.size and np.all(self.high == self.high.flat[0]) else "…"
        )
        return f"Box(low={low}, high={high}, shape={self.shape}, dtype={self.dtype.name})"

    def sample(self, key: jax.Array) -> jax.Array:
        check_key(key, f"{type(self).__name__}.sample")
        if _is_integer_dtype(self.dtype):
            info = np.iinfo(self.dtype)
            low = np.clip(self.low.astype(np.int64), info.min, info.max)
            # randint's upper bound is exclusive; clip so high + 1 cannot overflow the dtype.
            high = np.clip(self.high.astype(np.int64) + 1, info.min, info.max)
            return jax.random.randint(key, self.shape, low, high, dtype=self.dtype)
        low, high = self.low, self.high
        bounded = np.isfinite(low) & np.isfinite(high)
        uniform_key, normal_key = jax.random.split(key)
        finite_low = np.where(np.isfinite(low), low, 0.0)
        finite_high = np.where(np.isfinite(high), high, 0.0)
        uniform = jax.random.uniform(
            uniform_key, self.shape, minval=finite_low, maxval=finite_high
        )
        # Unbounded sides: a normal sample shifted to start at the finite bound (if any).
        normal = jax.random.normal(normal_key, self.shape)
        unbounded = jnp.where(
            np.isfinite(low), finite_low + jnp.abs(normal),
            jnp.where(np.isfinite(high), finite_high - jnp.abs(normal), normal),
        )
        return jnp.where(bounded, uniform, unbounded).astype(self.dtype)

    def contains(self, x: Any) -> jax.Array:
        if not self._shape_matches(x):
            return jnp.asarray(False)
        x = jnp.asarray(x)
        if _is_integer_dtype(self.dtype) and not _is_integer_dtype(x.dtype):
            return jnp.asarray(False)
        return jnp.all(jnp.logical_and(x >= self.low, x <= self.high))


class MultiDiscrete(Space):
    """Integer vectors with ``0 <= x[i] < nvec[i]``."""

    def __init__(self, nvec: Sequence[int], dtype: Any = jnp.int32):
        nvec_array = np.asarray(nvec)
        if nvec_array.ndim != 1 or nvec_array.size == 0 or not _is_integer_dtype(nvec_array.dtype):
            raise ValueError(
                f"MultiDiscrete needs a non-empty 1-D sequence of integers; got nvec={nvec!r}."
            )
        if np.any(nvec_array <= 0):
            raise ValueError(f"MultiDiscrete needs every nvec entry positive; got nvec={nvec!r}.")
        self.nvec = nvec_array.astype(np.int64)
        self.shape = (len(nvec_array),)
        self.dtype = jnp.dtype(dtype)

    def __repr__(self) -> str:
        return f"MultiDiscrete({self.nvec.tolist()})"

    def sample(self, key: jax.Array) -> jax.Array:
        check_key(key, f"{type(self).__name__}.sample")
        return jax.random.randint(key, self.shape, 0, self.nvec, dtype=self.dtype)

    def contains(self, x: Any) -> jax.Array:
        if not self._shape_matches(x) or not _is_integer_dtype(jnp.result_type(x)):
            return jnp.asarray(False)
        x = jnp.asarray(x)
        return jnp.all(jnp.logical_and(x >= 0, x < self.nvec))


class Dict(Space, gymnax_spaces.Dict):
    """A dictionary of named sub-spaces; elements are dicts with the same keys."""

    def __init__(self, spaces: Mapping[str, Space]):
        if not isinstance(spaces, Mapping) or not spaces:
            raise ValueError(f"Dict needs a non-empty mapping of name -> Space; got {spaces!r}.")
        for name, space in spaces.items():
            if not isinstance(space, Space):
                raise TypeError(
                    f"Dict entry {name!r} must be a Space (Discrete, Box, MultiDiscrete, Dict); "
                    f"got {type(space).__name__}."
                )
        self.spaces = dict(spaces)
        self.num_spaces = len(self.spaces)
        self.shape = ()
        self.dtype = None

    def __repr__(self) -> str:
        return f"Dict({self.spaces!r})"

    def __getitem__(self, name: str) -> Space:
        return self.spaces[name]

    def sample(self, key: jax.Array) -> dict[str, Any]:
        check_key(key, f"{type(self).__name__}.sample")
        keys = jax.random.split(key, len(self.spaces))
        return {name: space.sample(k) for (name, space), k in zip(self.spaces.items(), keys)}

    def contains(self, x: Any) -> jax.Array:
        if not isinstance(x, Mapping) or set(x) != set(self.spaces):
            return jnp.asarray(False)
        checks = [space.contains(x[name]) for name, space in self.spaces.items()]
        return jnp.all(jnp.stack(checks))


def from_gymnax_space(space: Any) -> Space:
    """Convert a gymnax space (``Discrete``, ``Box``, ``Dict``) to the project's equivalent
    (a project space, which is also a gymnax one, is returned as it is)."""
    if isinstance(space, Space):
        return space
    if isinstance(space, gymnax_spaces.Discrete):
        return Discrete(int(space.n), dtype=space.dtype)
    if isinstance(space, gymnax_spaces.Box):
        return Box(np.asarray(space.low), np.asarray(space.high), space.shape, space.dtype)
    if isinstance(space, gymnax_spaces.Dict):
        return Dict({name: from_gymnax_space(s) for name, s in space.spaces.items()})
    raise TypeError(f"Cannot convert gymnax space of type {type(space).__name__}.")
