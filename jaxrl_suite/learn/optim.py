"""One optimiser convention for every algorithm: optax's own (DESIGN.md section 6).

An optimiser is a complete ``optax.GradientTransformation``: its ``update`` returns *updates*
that ``optax.apply_updates`` adds to the params, so learning rate, schedule and gradient
clipping all live inside the chain (``optax.adam(3e-4)`` is a complete optimiser;
``optax.scale_by_adam()`` alone is not: it would ascend the loss).

Algorithms take an ``optimizer`` argument in one of two forms:

* an ``optax.GradientTransformation``, used as it is (its own rate, schedule and clipping: the
  config's ``learning_rate``, ``anneal_lr`` and ``max_grad_norm`` then do not apply);
* an *optimiser factory* ``hparams -> GradientTransformation``, called inside the compiled
  program with the run's traced ``Hyperparams``. This is how the default optimisers keep their
  rates traced (a ``vmap`` over learning rates is a sweep, with no recompiling), and the channel
  a learned optimiser uses: its parameters live in ``hparams.meta`` and are vmapped over a
  population like any other hyperparameter. The factory must build a chain of the same
  structure for every ``hparams`` (the optimiser state is carried between calls).

``resolve_optimizer`` turns either form (or ``None``, the algorithm's default) into a factory
and refuses, before anything compiles, an optimiser whose first step on a quadratic bowl
ascends: the old ``scale_by_*``-then-subtract convention can no longer slip through.

A factory may carry two attributes: ``learned = True`` (a learned optimiser, exempt from that
check) and ``uses_dormancy = True`` (its ``update`` takes the extra argument ``dormancy=``, a
pytree shaped like the params holding each parameter's unit dormancy, which PPO then computes
on every minibatch: ``networks.unit_dormancy``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax

__all__ = [
    "OptimizerFactory",
    "adam",
    "apply_gradient",
    "check_descends",
    "clip_by_global_norm",
    "default_adam",
    "linear_decay",
    "resolve_optimizer",
    "resolve_optimizers",
]

OptimizerFactory = Callable[[Any], optax.GradientTransformation]
"""``hparams -> optax.GradientTransformation``, called inside the compiled program."""


def adam(
    learning_rate: float | jax.Array | optax.Schedule,
    *,
    max_grad_norm: float | jax.Array | None = None,
    eps: float = 1e-8,
    eps_root: float = 0.0,
    b1: float = 0.9,
    b2: float = 0.999,
) -> optax.GradientTransformation:
    """Adam with optional global-norm clipping: ``clip -> scale_by_adam -> -learning_rate``.

    Args:
      learning_rate: a scalar (a Python float, or a traced array: a swept rate) or an optax
        schedule ``count -> rate``, ``count`` being the optimiser steps taken so far.
      max_grad_norm: clip the gradients' global norm to this before Adam (``None``: no clip).
      eps: Adam's epsilon, added to the root of the second moment.
      eps_root: added to the second moment *inside* the square root. Keep it positive (1e-8)
        where gradients flow through training (a meta-gradient or hypergradient through the
        inner updates): with 0 the derivative of ``sqrt`` at a zero second moment is infinite
        and the outer gradient is NaN (measured: PPO with ReLU networks, SAC's preset).

    Returns:
      The optax chain; its updates are added to the params by ``apply_gradient``.
    """
    parts = []
    if max_grad_norm is not None:
        parts.append(clip_by_global_norm(max_grad_norm))
    parts.append(optax.scale_by_adam(b1=b1, b2=b2, eps=eps, eps_root=eps_root))
    parts.append(optax.scale_by_learning_rate(learning_rate))
    return optax.chain(*parts)


def default_adam(config: Any, rate: str) -> OptimizerFactory:
    """The default optimiser factory of one network: ``hparams -> adam(hparams.<rate>,
    eps_root=config.adam_eps_root)`` (Adam's eps 1e-8, no clipping, a constant rate).

    ``rate`` names the ``Hyperparams`` field of that network's learning rate; the factory reads
    it from the traced hyperparameters, so a ``vmap`` over rates is a sweep.
    """
    eps_root = config.adam_eps_root
    return lambda hparams: adam(getattr(hparams, rate), eps_root=eps_root)


def clip_by_global_norm(max_norm: float | jax.Array) -> optax.GradientTransformation:
    """Scale the gradients by ``min(1, max_norm / (|g| + 1e-12))``, ``|g|`` their global norm.

    The same clip as ``optax.clip_by_global_norm`` up to round-off. It is written here because
    optax computes ``(g / |g|) * max_norm``, which rounds differently: this is the formula the
    project's algorithms used before they adopted optax's convention, so their runs (and the
    learning results and benchmarks measured with them) stay bit for bit the same.
    """

    def update(updates, state, params=None):
        del params
        norm = optax.tree.norm(updates)
        scale = jnp.minimum(1.0, max_norm / (norm + 1e-12))
        return jax.tree.map(lambda g: g * scale, updates), state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update)


def linear_decay(initial: jax.Array, steps_per_decrement: int, num_decrements: int):
    """A schedule that decays ``initial`` linearly to 0: ``initial * (1 - (count //
    steps_per_decrement) / num_decrements)``, constant over each block of
    ``steps_per_decrement`` optimiser steps (PPO's annealing is per update, not per
    minibatch)."""

    def schedule(count: jax.Array) -> jax.Array:
        return initial * (1.0 - (count // steps_per_decrement) / num_decrements)

    return schedule


def apply_gradient(
    optimizer: optax.GradientTransformation, params: Any, opt_state: Any, grads: Any
) -> tuple[Any, Any]:
    """One optimiser step: ``(params + updates, new opt_state)`` with optax's sign convention."""
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state


def check_descends(optimizer: optax.GradientTransformation, owner: str) -> None:
    """Refuse an optimiser whose first step on ``0.5 * |p|^2`` (gradient ``p``) moves uphill.

    Runs eagerly on a 4-vector, before anything is traced. An optimiser whose first update is
    zero (gradient accumulation, a warm-up from rate 0) passes; only an ascent is an error.
    """
    params = jnp.array([1.0, -2.0, 0.5, 3.0], jnp.float32)
    try:
        updates, _ = optimizer.update(params, optimizer.init(params), params)
    except Exception as error:  # noqa: BLE001 - reported with the owner's name
        raise TypeError(
            f"{owner}: the optimiser could not take a step on a 4-vector of float32 params "
            f"({type(error).__name__}: {error}). Pass a complete optax optimiser such as "
            f"optax.adam(3e-4), or a factory hparams -> optimiser."
        ) from error
    slope = float(jnp.vdot(updates, params))
    if not slope <= 0.0:
        raise ValueError(
            f"{owner}: the optimiser's update ascends the loss (update . gradient = {slope:.3g} "
            f"> 0 on a quadratic bowl). jaxrl-suite follows optax's convention: an optimiser "
            f"returns updates that are added to the params, so it must contain its (negative) "
            f"learning rate, e.g. optax.adam(3e-4) or optax.chain(optax.scale_by_adam(), "
            f"optax.scale_by_learning_rate(3e-4)); optax.scale_by_adam() alone ascends."
        )


def resolve_optimizer(
    optimizer: optax.GradientTransformation | OptimizerFactory | None,
    default: OptimizerFactory,
    default_hparams: Any,
    owner: str,
) -> OptimizerFactory:
    """An optimiser argument (see the module docstring) as a factory, checked to descend.

    Args:
      optimizer: ``None`` (use ``default``), a complete optax optimiser, or a factory.
      default: the algorithm's own factory ``hparams -> optimiser``.
      default_hparams: the run's default ``Hyperparams``, used to build the factory's optimiser
        once for the descent check.
      owner: who takes the optimiser, for the error messages (e.g. ``"PPO"``).
    """
    if optimizer is None:
        factory = default
    elif isinstance(optimizer, optax.GradientTransformation):
        factory = lambda hparams: optimizer  # noqa: E731
    elif callable(optimizer):
        factory = optimizer
    else:
        raise TypeError(
            f"{owner}: optimizer must be an optax.GradientTransformation (e.g. optax.adam(3e-4)) "
            f"or a factory hparams -> GradientTransformation; got {type(optimizer).__name__}."
        )
    built = factory(default_hparams)
    if not isinstance(built, optax.GradientTransformation):
        raise TypeError(
            f"{owner}: the optimiser factory must return an optax.GradientTransformation; it "
            f"returned {type(built).__name__}."
        )
    # A learned optimiser (a factory marked ``learned``, e.g. OPEN's) puts the sign into its
    # construction; its first step on a bowl is whatever its network learned (a random
    # initialisation may well climb), which is no sign of a convention error.
    if not getattr(factory, "learned", False):
        check_descends(built, owner)
    return factory


def resolve_optimizers(
    optimizer: Any,
    defaults: dict[str, OptimizerFactory],
    default_hparams: Any,
    owner: str,
) -> dict[str, OptimizerFactory]:
    """``resolve_optimizer`` for an algorithm with several networks (actor, critic, ...).

    ``optimizer`` is ``None`` (every network keeps its default), one optimiser or factory (used
    for every network, each with its own state), or a dict naming some of ``defaults``' keys
    (the others keep their defaults). An unknown key raises, listing the accepted ones.
    """
    if isinstance(optimizer, dict):
        unknown = sorted(set(optimizer) - set(defaults))
        if unknown:
            raise ValueError(
                f"{owner}: optimizer names unknown networks {unknown}; accepted: "
                f"{sorted(defaults)}."
            )
        chosen = {name: optimizer.get(name) for name in defaults}
    else:
        chosen = dict.fromkeys(defaults, optimizer)
    return {
        name: resolve_optimizer(chosen[name], defaults[name], default_hparams,
                                f"{owner} ({name} optimiser)")
        for name in defaults
    }
