"""Behaviour cloning: regress the dataset's actions, the baseline every offline method must beat.

Read top to bottom: ``Config`` and presets, the network, ``make_train`` (the mean-squared-error
step), ``main``. ``make_train(config, env, env_params)`` returns the usual pure ``Train``::

    env, env_params = jaxrl_suite.make("gymnax/Pendulum-v1")
    train = make_train(preset_config("gymnax/Pendulum-v1", dataset="pendulum-medium-v0"),
                       env, env_params)

The policy is deterministic: a tanh MLP scaled to the action bounds, fitted by mean squared error
to the dataset's actions on standardised observations (the setting of the TD3+BC paper's BC
baseline and CORL's). With ``sampling="return_weighted"`` it clones the better episodes more.
"""

from __future__ import annotations

import dataclasses
import sys
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from jaxrl_suite.data.datasets import Dataset
from jaxrl_suite.data.offline import (
    OFFLINE_ALGORITHM,
    OfflineConfig,
    make_offline_train,
    prepare_offline,
    write_outputs,
)
from jaxrl_suite.env.environment import Environment
from jaxrl_suite.learn import optim
from jaxrl_suite.learn.buffers import Transition
from jaxrl_suite.learn.networks import DeterministicActor, activation_by_name, scale_to_bounds
from jaxrl_suite.run.algorithms import AlgorithmSpec
from jaxrl_suite.run.configs import (
    hyperparams_from_config,
    require_finite_numbers,
    require_hidden_sizes,
    require_positive,
)
from jaxrl_suite.run.training import Train

__all__ = ["Config", "Hyperparams", "PRESETS", "make_train", "preset_config", "main",
           "write_outputs"]


# --- configuration ------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Config(OfflineConfig):
    """BC settings (and the shared offline ones: dataset, total_updates, batch_size, ...).
    Defaults: CORL's BC (3e-4, two 256-unit layers, 1M steps of batch 256)."""

    learning_rate: float = 3e-4
    """Adam step size (traceable)."""
    hidden_sizes: tuple[int, ...] = (256, 256)
    """Hidden layer widths of the policy."""
    activation: str = "relu"
    """relu, tanh, gelu, silu or elu."""


@struct.dataclass
class Hyperparams:
    """The continuous hyperparameters, traceable: pass a batch of them to ``vmap(train)``."""

    learning_rate: jax.Array
    meta: Any = None
    """Meta-parameters, any pytree of arrays, traced: handed to the optimiser factory (e.g. a
    learned optimiser's params); None by default."""


# The Pendulum preset keeps the published settings and shortens the run: Pendulum's datasets
# are small (1e5 transitions) and the policies converge within 3e4 steps.
PRESETS: dict[str, dict[str, Any]] = {
    "pendulum": dict(total_updates=30_000, eval_interval=1_000, evaluation_episodes=10),
}
_PRESET_BY_ENV = {"gymnax/Pendulum-v1": "pendulum"}


# --- make_train ---------------------------------------------------------------------------------
@struct.dataclass
class LearnerState:
    actor_params: Any
    actor_opt_state: Any


def make_train(config: Config, env: Environment, env_params: Any,
               dataset: Dataset | None = None, optimizer: Any = None) -> Train:
    """BC's pure training run on ``config.dataset`` (or ``dataset``), evaluated in ``env``.

    ``optimizer`` follows ``jaxrl_suite.learn.optim``: None for Adam at ``learning_rate``; an optax
    optimiser, used as it is (its own rate: ``learning_rate`` then does not apply); or a
    factory ``hparams -> optimiser`` of the traced ``Hyperparams``.
    """
    if not isinstance(config, Config):
        raise TypeError(f"config must be a bc.Config; got {type(config).__name__}.")
    require_finite_numbers(config)
    require_positive(config, "learning_rate")
    require_hidden_sizes(config.hidden_sizes)
    activation_by_name(config.activation)
    setup = prepare_offline(config, env, env_params, "BC", dataset)
    default_hparams = hyperparams_from_config(Hyperparams, config)
    make_optimizer = optim.resolve_optimizer(
        optimizer, optim.default_adam(config, "learning_rate"), default_hparams, "BC")
    actor = DeterministicActor(config.hidden_sizes, setup.action_dim, config.activation)

    def action_in_bounds(actor_params, observation):
        return scale_to_bounds(actor.apply(actor_params, observation), setup.action_low,
                               setup.action_high)

    def init_learner(key: jax.Array, hparams: Hyperparams) -> LearnerState:
        params = actor.init(key, setup.dataset.observations[0])
        return LearnerState(params, make_optimizer(hparams).init(params))

    def loss(actor_params, batch: Transition):
        return jnp.square(action_in_bounds(actor_params, batch.observation) - batch.action).mean()

    def gradient_step(learner: LearnerState, batch: Transition, key: jax.Array,
                      hparams: Hyperparams):
        value, grads = jax.value_and_grad(loss)(learner.actor_params, batch)
        params, opt_state = optim.apply_gradient(
            make_optimizer(hparams), learner.actor_params, learner.actor_opt_state, grads)
        return LearnerState(params, opt_state), {"bc_loss": value}

    return make_offline_train(
        config, env, env_params, setup,
        init_learner=init_learner,
        gradient_step=gradient_step,
        greedy_action=lambda learner, obs: action_in_bounds(learner.actor_params, obs),
        default_hparams=default_hparams,
        validate=lambda c: require_positive(c, "learning_rate"),
    )


# --- the algorithm's description: presets and the command line come from it -------------------
ALGORITHM = AlgorithmSpec(
    name="bc", display_name="BC", config=Config, hyperparams=Hyperparams,
    make_train=make_train, presets=PRESETS, preset_by_env=_PRESET_BY_ENV,
    description=__doc__.strip().splitlines()[0], **OFFLINE_ALGORITHM,
    measured_presets={"pendulum": "benchmarks/offline.py"},
)
preset_config = ALGORITHM.preset_config  # (env_id_or_preset, **overrides) -> Config
main = ALGORITHM.main  # `python algos/offline/bc.py --dataset pendulum-medium-v0`


if __name__ == "__main__":
    sys.exit(main())
