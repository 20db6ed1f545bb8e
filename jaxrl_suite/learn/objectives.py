"""Policy objectives and loss assemblies for on-policy learners (PPO, A2C; learned ones next).

An on-policy learner computes, for each minibatch, one ``ObjectiveInputs`` record and hands it to
two replaceable parts (DESIGN.md section 6):

* a **policy objective** ``inputs -> scalar loss`` over the whole minibatch. It sees the batch,
  not single samples, so batch-level terms (a log-barrier on a constraint estimated over the
  batch, as C-MORL's) are expressible; a learned objective (LPO's drift network) reads its
  parameters from ``inputs.hparams.meta`` and the training progress from ``inputs.progress``
  (TA-LPO);
* a **loss assembly** ``(inputs, policy_loss) -> (total_loss, diagnostics)`` that adds whatever
  else the agent learns (PPO: the value loss and the entropy bonus; LPG: its own prediction
  target and no value loss).

``OBJECTIVES`` names the built-in objectives for ``Config.objective``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from jaxrl_suite.learn.preferences import scalarize

__all__ = [
    "OBJECTIVES",
    "ObjectiveInputs",
    "PolicyObjective",
    "LossAssembly",
    "Scalarization",
    "actor_critic_loss",
    "clipped_surrogate",
    "linear_scalarization",
    "policy_gradient",
    "policy_objective_by_name",
]


@struct.dataclass
class ObjectiveInputs:
    """Everything a policy objective or loss assembly may use, for one minibatch.

    Per-sample fields are flat ``(batch,)`` arrays (a recurrent learner's ``(num_steps, envs)``
    minibatch is flattened in time-major order); ``advantages`` is ``(batch,)``, or
    ``(batch, num_objectives)`` for a vector-valued critic. Values, targets and advantages come
    from the rollout's assessment (held fixed within the update); ``values``, ``log_prob`` and
    ``entropy`` from the networks being trained.

    Attributes:
      ratio: ``exp(log_ratio)``, the probability ratio of the taken action, new / old policy.
      log_ratio: ``log_prob - old_log_prob``.
      log_prob: log-probability of the taken action under the current policy.
      old_log_prob: its log-probability under the policy that collected the rollout.
      advantages: the advantage estimates (standardised per minibatch when the learner does).
      values: the current critic's values of the observations.
      old_values: the critic's values at rollout time (what a value clip is centred on).
      targets: the value targets (GAE returns).
      entropy: the current policy's entropy at each observation.
      progress: the fraction of the run's updates done before this one, ``update / updates``,
        a scalar in ``[0, 1)``.
      epoch_progress: the fraction of this update's epochs done before this one,
        ``epoch / epochs``, a scalar in ``[0, 1)``.
      hparams: the learner's traced ``Hyperparams`` (``clip_epsilon``, ``meta``, ...).
      objective_advantages: for a multi-objective env, the advantages of each objective,
        ``(batch, num_objectives)`` (standardised per objective when the learner standardises);
        ``advantages`` is then their scalarisation. ``None`` for a scalar reward.
    """

    ratio: jax.Array
    log_ratio: jax.Array
    log_prob: jax.Array
    old_log_prob: jax.Array
    advantages: jax.Array
    values: jax.Array
    old_values: jax.Array
    targets: jax.Array
    entropy: jax.Array
    progress: jax.Array
    epoch_progress: jax.Array
    hparams: Any
    objective_advantages: jax.Array | None = None


PolicyObjective = Callable[[ObjectiveInputs], jax.Array]
"""``inputs -> scalar`` policy loss of the minibatch (to be minimised)."""

LossAssembly = Callable[[ObjectiveInputs, jax.Array], tuple[jax.Array, dict[str, jax.Array]]]
"""``(inputs, policy_loss) -> (total_loss, diagnostics)``; diagnostics are scalars."""

Scalarization = Callable[[jax.Array, Any], jax.Array]
"""``(advantages (..., num_objectives), hparams) -> (...)``: one advantage per sample from the
advantages of each objective (the preference weights are ``hparams.preference``)."""


def linear_scalarization(advantages: jax.Array, hparams: Any) -> jax.Array:
    """``sum_i w_i A_i`` with ``w = hparams.preference`` ``(num_objectives,)``: the weighted
    sum of the objectives' advantages (linear utility, the MORL baseline's)."""
    return scalarize(advantages, hparams.preference)


def clipped_surrogate(inputs: ObjectiveInputs) -> jax.Array:
    """PPO's clipped surrogate, averaged: ``-mean(min(r A, clip(r, 1 +- eps) A))``."""
    ratio, advantages = inputs.ratio, inputs.advantages
    epsilon = inputs.hparams.clip_epsilon
    clipped = jnp.clip(ratio, 1.0 - epsilon, 1.0 + epsilon)
    return -jnp.minimum(ratio * advantages, clipped * advantages).mean()


def policy_gradient(inputs: ObjectiveInputs) -> jax.Array:
    """The vanilla policy gradient (A2C's actor loss): ``-mean(log pi(a|s) A)``. On the rollout's
    own policy (one epoch, one minibatch) its gradient equals the clipped surrogate's."""
    return -(inputs.log_prob * inputs.advantages).mean()


OBJECTIVES: dict[str, PolicyObjective] = {
    "clipped_surrogate": clipped_surrogate,
    "policy_gradient": policy_gradient,
}


def policy_objective_by_name(name: str, owner: str) -> PolicyObjective:
    """The built-in objective ``name``; an unknown name raises, listing ``OBJECTIVES``."""
    if name not in OBJECTIVES:
        raise ValueError(f"{owner}: objective must be one of {tuple(OBJECTIVES)}; got {name!r}.")
    return OBJECTIVES[name]


def actor_critic_loss(
    inputs: ObjectiveInputs, policy_loss: jax.Array, *, clip_value: bool
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """The actor-critic total: ``policy_loss + value_coef * value_loss - entropy_coef *
    entropy``, with the value loss ``0.5 * mean((V - target)^2)``, clipped around the rollout's
    values (``old_values +- clip_epsilon``, the larger error kept) when ``clip_value``."""
    hparams = inputs.hparams
    value_error = jnp.square(inputs.values - inputs.targets)
    if clip_value:
        clipped_value = inputs.old_values + jnp.clip(
            inputs.values - inputs.old_values, -hparams.clip_epsilon, hparams.clip_epsilon
        )
        value_error = jnp.maximum(value_error, jnp.square(clipped_value - inputs.targets))
    value_loss = 0.5 * value_error.mean()
    entropy = inputs.entropy.mean()
    total = policy_loss + hparams.value_coef * value_loss - hparams.entropy_coef * entropy
    return total, {"value_loss": value_loss, "entropy": entropy}
