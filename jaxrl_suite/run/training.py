"""What every algorithm's ``make_train`` returns, and the shape of its result (DESIGN.md s6).

An algorithm is an ``init`` (key, hyperparameters -> training state) and an ``update`` (state ->
state, metrics of that update). ``Train`` strings them together: ``train(key)`` is one
``lax.scan`` over all updates, so ``jax.jit(train)`` compiles the whole run and
``jax.jit(jax.vmap(train))(keys, hparams)`` runs many seeds or a hyperparameter sweep at once.
The harness (``jaxrl_suite.run.harness``) uses ``init`` and ``update`` directly to add live
progress and to cut the run into checkpointed chunks, without the algorithm knowing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from jaxrl_suite.env.registry import debug_mode

__all__ = ["Train", "TrainResult"]


def _check_key(key: Any, where: str) -> None:
    """A run's randomness is a JAX PRNG key: refuse an int (``train(0)``) in plain words."""
    dtype = getattr(key, "dtype", None)
    if dtype is not None and (jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key)
                              or (dtype == jnp.uint32 and key.shape[-1:] == (2,))):
        return
    raise TypeError(f"{where}: key must be a JAX PRNG key such as jax.random.key(0) (or "
                    f"jax.random.split(key, n) for several seeds); got {key!r}.")


@struct.dataclass
class TrainResult:
    """``state``: the final training state (params, optimiser and env state, RNG, ...).
    ``metrics``: a dict of arrays stacked per update, each ``(num_updates, ...)`` (plus a leading
    seed axis under ``vmap``)."""

    state: Any
    metrics: dict[str, jax.Array]


@dataclasses.dataclass(frozen=True, eq=False)  # hashed by identity, so jax.jit(train) works
class Train:
    """A pure, jittable training run: ``train(key, hparams=None, env_params=None) ->
    TrainResult``.

    Attributes:
      init: ``(key, hparams) -> state``, or ``(key, hparams, env_params) -> state`` when
        ``takes_env_params``; ``hparams`` are the traceable hyperparameters (a pytree of
        scalars), stored in the state so that a ``vmap`` over them is a sweep; ``env_params``
        likewise (``None``: the run closes over the env params it was built with).
      update: ``state -> (state, metrics)``: one update (rollout and learning step); metrics is a
        dict of scalars.
      num_updates: updates in a whole run.
      env_steps_per_update: env steps per update, summed over the parallel envs.
      default_hparams: the hyperparameters taken from the config, used when none are given.
      make_policy: ``state -> Policy`` for ``jaxrl_suite.run.evaluation.evaluate``.
      config: the algorithm's config the run was built from.
      env_steps_before_updates: env steps ``init`` already took (an off-policy run's random
        prefill of its replay buffer); env steps after ``u`` updates are this plus
        ``u * env_steps_per_update``.
      data: a pytree of arrays every update reads and none changes (an offline dataset), or
        None. When set, ``update`` is ``(state, data) -> (state, metrics)``: the harness passes
        ``data`` to the compiled program as an argument, shared by all seeds, so a large dataset
        is neither embedded in the program as a constant nor copied per seed or checkpoint.
      takes_env_params: whether ``init`` takes env params: a run that does can be given its
        task (physics, level, preference weights) as a traced argument, so a ``vmap`` over env
        params trains on many tasks in one program.
      check_hparams: ``hparams -> None``, raising a ``ValueError`` for values the config would
        refuse (``configs.hyperparams_validator``). Called on hyperparameters given as concrete
        values (``train(key, hparams)``, ``initial_state(s)``, the harness); values that are
        already traced (inside the caller's ``jit``) are checked at run time only in debug
        mode (``JAXRL_DEBUG=1``), where a bad one stops the program with the same message.
      int32_env_steps: whether the program counts env steps in int32 (every algorithm does),
        so that a run past ``2**31`` env steps is refused; False for a run that does not
        (meta-training, whose env steps run to tens of billions).
    """

    init: Callable[..., Any]
    update: Callable[[Any], tuple[Any, dict[str, jax.Array]]]
    num_updates: int
    env_steps_per_update: int
    default_hparams: Any
    make_policy: Callable[[Any], Any]
    config: Any
    env_steps_before_updates: int = 0
    data: Any = None
    takes_env_params: bool = False
    check_hparams: Callable[[Any], None] | None = None
    int32_env_steps: bool = True

    def __post_init__(self) -> None:
        # Step counters and metrics are int32 (JAX without x64): a run whose env steps pass
        # 2**31 would wrap them to negative numbers, so it is refused here, in plain words.
        # A run that counts no env steps in its program (meta-training counts meta-steps and
        # agent ages) says so with int32_env_steps=False.
        if not self.int32_env_steps:
            return
        total = self.env_steps_before_updates + self.num_updates * self.env_steps_per_update
        if total >= 2**31:
            raise ValueError(
                f"This run takes {total:,} env steps, beyond the int32 step counters JAX uses "
                f"(at most {2**31 - 1:,}); lower total_steps, or run it in parts.")

    def validated_hparams(self, hparams: Any) -> Any:
        """``hparams`` (``None``: the defaults) after the checks of their type and values."""
        if hparams is None:
            return self.default_hparams
        expected = type(self.default_hparams)
        if dataclasses.is_dataclass(self.default_hparams) and not isinstance(hparams, expected):
            raise TypeError(
                f"hparams must be a {expected.__module__}.{expected.__name__}, as "
                f"train.default_hparams is (change fields with "
                f"train.default_hparams.replace(learning_rate=...)); got "
                f"{type(hparams).__name__}.")
        if self.check_hparams is not None:
            if not any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree.leaves(hparams)):
                self.check_hparams(hparams)
            elif debug_mode():
                check = self.check_hparams
                jax.debug.callback(lambda values: check(values), hparams)
        return hparams

    def step(self, state: Any, data: Any = None) -> tuple[Any, dict[str, jax.Array]]:
        """One update, given ``data`` when the run has any (default ``self.data``)."""
        if self.data is None:
            return self.update(state)
        return self.update(state, self.data if data is None else data)

    def initial_state(self, key: jax.Array, hparams: Any = None, env_params: Any = None) -> Any:
        _check_key(key, "train.initial_state")
        hparams = self.validated_hparams(hparams)
        if env_params is None:
            return self.init(key, hparams)
        self._require_env_params()
        return self.init(key, hparams, env_params)

    def initial_states(self, keys: jax.Array, hparams: Any = None,
                       env_params: Any = None) -> Any:
        """Seed-batched initial states: ``init`` under ``vmap`` over ``keys`` ``(num_seeds,)``.
        ``hparams`` (and ``env_params``, when given) must have a leading ``num_seeds`` axis;
        default the config's hyperparameters, repeated, and the run's own env params."""
        _check_key(keys, "train.initial_states")
        if hparams is not None:
            hparams = self.validated_hparams(hparams)
        hparams = self.seed_hparams(len(keys), hparams)
        if env_params is None:
            return jax.jit(jax.vmap(self.init))(keys, hparams)
        self._require_env_params()
        return jax.jit(jax.vmap(self.init))(keys, hparams, env_params)

    def seed_hparams(self, num_seeds: int, hparams: Any = None) -> Any:
        """``hparams`` (leading axis ``num_seeds``) as given, or the default ones repeated."""
        if hparams is not None:
            return hparams
        return jax.tree.map(
            lambda x: jnp.broadcast_to(jnp.asarray(x), (num_seeds, *jnp.shape(x))),
            self.default_hparams,
        )

    def _require_env_params(self) -> None:
        if not self.takes_env_params:
            name = getattr(type(self.config), "__module__", "this algorithm")
            raise ValueError(
                f"{name}'s run closes over the env params it was built with and does not take "
                f"them as an argument; build it with make_train(config, env, env_params) for "
                f"each task instead.")

    def run_updates(self, state: Any, num_updates: int) -> tuple[Any, dict[str, jax.Array]]:
        """``num_updates`` updates as one ``lax.scan``; metrics stacked ``(num_updates, ...)``."""
        return jax.lax.scan(lambda carry, _: self.step(carry), state, None, num_updates)

    def __call__(self, key: jax.Array, hparams: Any = None, env_params: Any = None
                 ) -> TrainResult:
        _check_key(key, "train")
        state = self.initial_state(key, hparams, env_params)
        state, metrics = self.run_updates(state, self.num_updates)
        return TrainResult(state, metrics)
