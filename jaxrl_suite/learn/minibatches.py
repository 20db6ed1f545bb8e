"""Shuffling a rollout into minibatches, and epochs of minibatch steps, for on-policy learners.

A rollout is a pytree of arrays ``(num_steps, num_envs, ...)``. A feed-forward learner shuffles
every transition; a recurrent one keeps each env's steps in time order (its hidden state runs
along them) and shuffles envs instead. ``epochs`` runs the passes over a rollout that PPO's
update makes, each reshuffled, with a step function per minibatch.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp

__all__ = ["epochs", "over_envs", "over_transitions"]


def _check_divides(count: int, num_minibatches: int, what: str) -> None:
    if num_minibatches <= 0 or count % num_minibatches:
        raise ValueError(f"num_minibatches must be a positive divisor of the {what} ({count}); "
                         f"got {num_minibatches!r}.")


def over_transitions(key: jax.Array, rollout: Any, num_minibatches: int) -> Any:
    """Every leaf ``(num_steps, num_envs, ...)`` -> ``(num_minibatches, minibatch_size, ...)``:
    the ``num_steps * num_envs`` transitions flattened, permuted by ``key`` (one permutation
    for all leaves, so they stay aligned) and cut in equal parts."""
    leaves = jax.tree.leaves(rollout)
    num_steps, num_envs = leaves[0].shape[:2]
    batch_size = num_steps * num_envs
    _check_divides(batch_size, num_minibatches, "rollout's transitions")
    order = jax.random.permutation(key, batch_size)
    return jax.tree.map(
        lambda x: x.reshape(batch_size, *x.shape[2:])[order].reshape(
            num_minibatches, batch_size // num_minibatches, *x.shape[2:]),
        rollout,
    )


def over_envs(key: jax.Array, rollout: Mapping[str, Any], num_minibatches: int,
              env_axis: Mapping[str, int] | None = None) -> dict[str, Any]:
    """Envs permuted by ``key`` and cut in ``num_minibatches`` equal groups, each env's steps kept
    in order: an entry whose env axis is ``a`` (1 by default, for ``(num_steps, num_envs, ...)``;
    ``env_axis[name]`` otherwise, e.g. 0 for an initial hidden state ``(num_envs, hidden)``)
    becomes ``(num_minibatches, ..., num_envs / num_minibatches, ...)``, the group axis first.
    An entry may itself be a pytree (a dict observation): its leaves share the entry's axis."""
    env_axis = dict(env_axis or {})
    first = next(iter(rollout))
    num_envs = jax.tree.leaves(rollout[first])[0].shape[env_axis.get(first, 1)]
    _check_divides(num_envs, num_minibatches, "number of envs")
    order = jax.random.permutation(key, num_envs)
    per = num_envs // num_minibatches

    def cut(x, axis):
        x = jnp.take(x, order, axis=axis)
        x = x.reshape(*x.shape[:axis], num_minibatches, per, *x.shape[axis + 1:])
        return jnp.moveaxis(x, axis, 0)

    def cut_entry(name, value):
        axis = env_axis.get(name, 1)
        return jax.tree.map(lambda x: cut(x, axis), value)

    return {name: cut_entry(name, value) for name, value in rollout.items()}


def epochs(
    step: Callable[[Any, Any, jax.Array], tuple[Any, Any]],
    carry: Any,
    key: jax.Array,
    data: Any,
    num_epochs: int,
    split: Callable[[jax.Array, Any], Any],
) -> tuple[Any, Any]:
    """``num_epochs`` passes over ``data``, each cut into minibatches afresh.

    Args:
      step: ``(carry, minibatch, epoch_progress) -> (carry, metrics)``, one minibatch's update;
        ``epoch_progress`` is the fraction of the epochs done before this one (``0, 1/E, ...``).
      carry: what the steps thread (params and optimiser state).
      key: one key per epoch is split from it and handed to ``split``.
      data: the rollout, as ``split`` takes it.
      num_epochs: passes (static).
      split: ``(key, data) -> minibatches`` with a leading minibatch axis (``over_transitions``
        or ``over_envs`` with its arguments bound).

    Returns:
      ``(carry, metrics)``, each metric stacked ``(num_epochs, num_minibatches, ...)``.
    """

    def epoch(carry, epoch_inputs):
        epoch_key, epoch_index = epoch_inputs
        epoch_progress = epoch_index / num_epochs
        return jax.lax.scan(lambda c, batch: step(c, batch, epoch_progress), carry,
                            split(epoch_key, data))

    return jax.lax.scan(epoch, carry,
                        (jax.random.split(key, num_epochs), jnp.arange(num_epochs)))
