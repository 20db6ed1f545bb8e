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

Drift objectives (Mirror Learning; Kuba et al. 2022) write the policy loss as ``-mean(r A -
drift(r, A))`` with a drift that is non-negative and zero, with zero gradient, at ``r = 1``.
PPO's clipped surrogate is the drift ``relu((r - clip(r, 1 +- eps)) A)``; DPO (Lu et al. 2022,
"Discovered Policy Optimisation") is a closed-form drift; LPO is a learned one, a small network
of ``drift_features(r, A)`` added to PPO's drift, and TA-LPO (Jackson et al. 2024) also feeds it
the training progress. The learned drift's parameters are ``hparams.meta["objective"]``: traced,
so a population of objectives is a ``vmap`` over them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from jaxrl_suite.learn.preferences import scalarize

__all__ = [
    "DPO_ALPHA",
    "DPO_BETA",
    "DRIFT_MARGIN",
    "LEARNED_OBJECTIVES",
    "OBJECTIVES",
    "DriftNetwork",
    "ObjectiveInputs",
    "PolicyObjective",
    "LossAssembly",
    "Scalarization",
    "actor_critic_loss",
    "check_drift_params",
    "clipped_surrogate",
    "dpo",
    "dpo_drift",
    "drift_features",
    "init_drift_params",
    "learned_drift",
    "load_drift_params",
    "lpo",
    "ppo_drift",
    "save_drift_params",
    "ta_lpo",
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


# --- drift objectives ---------------------------------------------------------------------------
DPO_ALPHA = 2.0  # DPO's published drift constants (Lu et al. 2022, section 5)
DPO_BETA = 0.6
DRIFT_MARGIN = 1e-4  # the learned term's dead zone (see ``learned_drift``)


def ppo_drift(ratio: jax.Array, advantages: jax.Array, epsilon: jax.Array) -> jax.Array:
    """PPO's clipped objective as a drift: ``relu((r - clip(r, 1 - eps, 1 + eps)) A)``, so that
    ``min(r A, clip(r) A) = r A - ppo_drift``. Elementwise; any shape."""
    return jax.nn.relu((ratio - jnp.clip(ratio, 1.0 - epsilon, 1.0 + epsilon)) * advantages)


def dpo_drift(ratio: jax.Array, advantages: jax.Array, alpha: float = DPO_ALPHA,
              beta: float = DPO_BETA) -> jax.Array:
    """DPO's drift: ``relu((r - 1) A - alpha tanh((r - 1) A / alpha))`` where ``A >= 0`` and
    ``relu(log(r) A - beta tanh(log(r) A / beta))`` where ``A < 0``. Elementwise."""
    positive = (ratio - 1.0) * advantages
    negative = jnp.log(ratio) * advantages
    return jnp.where(
        advantages >= 0,
        jax.nn.relu(positive - alpha * jnp.tanh(positive / alpha)),
        jax.nn.relu(negative - beta * jnp.tanh(negative / beta)),
    )


def dpo(inputs: ObjectiveInputs) -> jax.Array:
    """DPO's objective: ``-mean(r A - dpo_drift(r, A))`` (closed form, nothing learned)."""
    return -(inputs.ratio * inputs.advantages
             - dpo_drift(inputs.ratio, inputs.advantages)).mean()


def drift_features(log_ratio: jax.Array, advantages: jax.Array,
                   progress: jax.Array | None = None) -> jax.Array:
    """The learned drift's inputs ``(..., 8)``: ``[r - 1, (r - 1)^2, log r, (log r)^2]`` and the
    same four times ``A`` (LPO); with ``progress`` (TA-LPO, ``n / N`` a scalar) also those eight
    times ``progress``, ``(..., 16)``. Every feature is 0 at ``r = 1``."""
    ratio_minus_one = jnp.expm1(log_ratio)
    base = jnp.stack([ratio_minus_one, jnp.square(ratio_minus_one), log_ratio,
                      jnp.square(log_ratio)], axis=-1)
    features = jnp.concatenate([base, base * advantages[..., None]], axis=-1)
    if progress is not None:
        features = jnp.concatenate([features, features * progress], axis=-1)
    return features


class DriftNetwork(nn.Module):
    """LPO's drift network: one hidden layer of ``hidden_size`` tanh units and a scalar output,
    no biases, so its output is 0 where every feature is (at ``r = 1``). ``(..., F) -> (...)``."""

    hidden_size: int = 128

    @nn.compact
    def __call__(self, features: jax.Array) -> jax.Array:
        hidden = jnp.tanh(nn.Dense(self.hidden_size, use_bias=False)(features))
        return nn.Dense(1, use_bias=False)(hidden)[..., 0]


def _num_features(time_aware: bool) -> int:
    return 16 if time_aware else 8


def init_drift_params(key: jax.Array, time_aware: bool = False,
                      hidden_size: int = 128) -> Any:
    """A drift network initialised at PPO: the hidden layer random (flax's default), the output
    layer zero, so the learned term is 0 and ``lpo`` / ``ta_lpo`` equal PPO's clipped objective
    bit for bit, while the output layer's weights still move the drift (a wholly zero network
    would be a saddle where an evolution strategy's estimate of the gradient is 0)."""
    params = DriftNetwork(hidden_size).init(key, jnp.zeros((_num_features(time_aware),)))
    return jax.tree_util.tree_map_with_path(
        lambda path, x: jnp.zeros_like(x) if "Dense_1" in jax.tree_util.keystr(path) else x,
        params)


def check_drift_params(params: Any, time_aware: bool, owner: str) -> int:
    """Check a drift network's params (shapes static, so this runs while tracing too); returns
    the hidden size. Raises ``ValueError`` naming the shapes found and the shapes accepted."""
    features = _num_features(time_aware)
    name = "ta_lpo" if time_aware else "lpo"
    try:
        kernel_in = params["params"]["Dense_0"]["kernel"]
        kernel_out = params["params"]["Dense_1"]["kernel"]
    except (KeyError, TypeError, IndexError):
        raise ValueError(
            f"{owner}: objective {name!r} reads its drift network from "
            f"hparams.meta['objective'], a flax params dict {{'params': {{'Dense_0': "
            f"{{'kernel': ({features}, H)}}, 'Dense_1': {{'kernel': (H, 1)}}}}}} "
            f"(init_drift_params, or a meta-run's objective.npz); got "
            f"{jax.tree.map(jnp.shape, params)!r}.") from None
    hidden = kernel_in.shape[-1] if kernel_in.ndim == 2 else -1
    if kernel_in.shape != (features, hidden) or kernel_out.shape != (hidden, 1):
        raise ValueError(
            f"{owner}: objective {name!r} needs drift-network kernels of shapes ({features}, H) "
            f"and (H, 1) ({features} features{' with training progress' if time_aware else ''}"
            f"); got {tuple(kernel_in.shape)} and {tuple(kernel_out.shape)}.")
    return hidden


def learned_drift(params: Any, inputs: ObjectiveInputs, time_aware: bool) -> jax.Array:
    """LPO's drift ``relu(ppo_drift + shrink(net(x)))`` per sample, ``(batch,)``.

    ``shrink(u) = sign(u) max(|u| - DRIFT_MARGIN, 0)`` gives the learned term a dead zone: where
    the network's output is within the margin of 0 (as it is near ``r = 1``) the drift is PPO's
    and its gradient PPO's. The published LPO code instead subtracts a margin from the sum
    (``relu(ppo_drift + net(x) - margin)``), which moves even a zero network off PPO's objective;
    the shrinkage keeps the dead zone and makes a zero network PPO exactly."""
    hidden = check_drift_params(params, time_aware, "PPO")
    features = drift_features(inputs.log_ratio, inputs.advantages,
                              inputs.progress if time_aware else None)
    learned = DriftNetwork(hidden).apply(params, features)
    learned = jnp.sign(learned) * jax.nn.relu(jnp.abs(learned) - DRIFT_MARGIN)
    return jax.nn.relu(ppo_drift(inputs.ratio, inputs.advantages, inputs.hparams.clip_epsilon)
                       + learned)


def _learned_drift_objective(inputs: ObjectiveInputs, time_aware: bool) -> jax.Array:
    meta = inputs.hparams.meta
    if not isinstance(meta, dict) or "objective" not in meta:
        name = "ta_lpo" if time_aware else "lpo"
        raise ValueError(
            f"PPO: objective {name!r} reads its drift network from hparams.meta['objective']; "
            f"got hparams.meta={meta!r}. ppo.make_train's default hparams carry one initialised "
            f"at PPO (or the one Config.objective_params names).")
    ratio, advantages = inputs.ratio, inputs.advantages
    epsilon = inputs.hparams.clip_epsilon
    drift = learned_drift(meta["objective"], inputs, time_aware)
    # r A - drift, written as PPO's min(r A, clip(r) A) minus what the learned term adds to PPO's
    # drift: the same value, and for a zero network (the addition exactly 0) PPO's clipped
    # objective bit for bit, gradient included.
    clipped = jnp.clip(ratio, 1.0 - epsilon, 1.0 + epsilon)
    addition = drift - ppo_drift(ratio, advantages, epsilon)
    return -(jnp.minimum(ratio * advantages, clipped * advantages) - addition).mean()


def lpo(inputs: ObjectiveInputs) -> jax.Array:
    """LPO: ``-mean(r A - learned_drift)``, the drift network in ``hparams.meta["objective"]``."""
    return _learned_drift_objective(inputs, time_aware=False)


def ta_lpo(inputs: ObjectiveInputs) -> jax.Array:
    """TA-LPO: LPO whose drift network also reads the training progress ``n / N``."""
    return _learned_drift_objective(inputs, time_aware=True)


def save_drift_params(path: str, params: Any) -> None:
    """Write a drift network's params to ``path`` (``.npz``: the two kernels, float32)."""
    np.savez(path, hidden=np.asarray(params["params"]["Dense_0"]["kernel"], np.float32),
             output=np.asarray(params["params"]["Dense_1"]["kernel"], np.float32))


def load_drift_params(path: str, time_aware: bool, owner: str = "PPO") -> Any:
    """Read ``save_drift_params``'s file back (checked against the objective's shapes)."""
    with np.load(path) as data:
        if set(data.files) != {"hidden", "output"}:
            raise ValueError(f"{owner}: {path} is not a drift network's file (its arrays are "
                             f"{sorted(data.files)}; expected ['hidden', 'output']).")
        params = {"params": {"Dense_0": {"kernel": jnp.asarray(data["hidden"])},
                             "Dense_1": {"kernel": jnp.asarray(data["output"])}}}
    check_drift_params(params, time_aware, owner)
    return params


OBJECTIVES: dict[str, PolicyObjective] = {
    "clipped_surrogate": clipped_surrogate,
    "policy_gradient": policy_gradient,
    "dpo": dpo,
    "lpo": lpo,
    "ta_lpo": ta_lpo,
}
LEARNED_OBJECTIVES = {"lpo": False, "ta_lpo": True}  # name -> time_aware


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
