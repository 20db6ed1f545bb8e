"""OPEN: a learned optimiser for PPO, meta-trained by evolution over whole PPO training runs.

Goldie et al. 2024, "Can Learned Optimization Make Reinforcement Learning Less Difficult?".

The optimiser is one small network applied to every parameter on its own (a GRU of
``gru_size`` then two dense layers of ``hidden_size`` with LayerNorm and ReLU, three outputs).
Its 19 inputs per parameter and step:

* the parameter, the gradient (sign and log-magnitude) and its momenta at six timescales
  (``MOMENTUM_DECAYS``, sign and log-magnitude), each normalised by its second moment over
  the parameter's tensor;
* the training progress (updates done / the run's updates), the batch progress (minibatch
  steps done within the update / the update's steps), the layer's depth in its network (0 at
  the input, 1 at the output) and the dormancy of the parameter's unit (``unit_dormancy``:
  its mean absolute activation on the minibatch over its layer's mean, 1 for an average unit).

Outputs ``(m, e, z)`` give the step ``u = step_scale * (m * exp(exponent_scale * e) + z * noise)``,
``noise`` standard normal on the actor's parameters only (OPEN's learned stochasticity, an
exploration in parameter space; 0 on the critic and with ``stochastic`` False); the steps are
centred (their mean over all parameters subtracted) and the parameters move by ``-u``.

``OpenOptimizer`` is the optimiser as PPO's ``optimizer=`` argument: a factory ``hparams ->
optax.GradientTransformation`` that reads the network's weights from ``hparams.meta[
"optimizer"]`` (traced, so a population of optimisers is a ``vmap`` of whole PPO runs and
nothing recompiles between generations). PPO passes it the units' dormancy as optax's extra
argument ``dormancy=``.

Meta-training is LPO's loop (``es.make_evolution``): a generation asks the strategy (OpenAI-ES,
population 64, rate and sigma 0.03 decayed by 0.99) for ``population_size`` optimisers in
antithetic pairs, trains one fresh PPO agent with each for a whole inner run, evaluates each
final policy (``fitness_episodes`` episodes, their mean return is the fitness; a pair shares its
keys), and tells the strategy the rank-shaped fitness. The generation's baseline is PPO with its
own Adam on the first pair's keys. The harness checkpoints every generation (``--resume`` is
bit-exact); the run folder gets ``optimizer.npz`` (the search mean) and ``optimizer_best.npz``.
``jaxrl train ppo --optimizer-params RUN_DIR`` trains with the discovered optimiser.
"""

from __future__ import annotations

import dataclasses
import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from jaxrl_suite.algos import ppo
from jaxrl_suite.meta import es as es_lib
from jaxrl_suite.meta import lpo
from jaxrl_suite.run.algorithms import AlgorithmSpec
from jaxrl_suite.run.training import Train

__all__ = [
    "MOMENTUM_DECAYS",
    "NUM_INPUTS",
    "Config",
    "Hyperparams",
    "OpenOptimizer",
    "OpenState",
    "OpenTrain",
    "OptimizerNetwork",
    "PRESETS",
    "init_optimizer_params",
    "load_optimizer_params",
    "make_train",
    "open_optimizer",
    "save_optimizer_params",
    "write_outputs",
]

MOMENTUM_DECAYS = (0.1, 0.5, 0.9, 0.99, 0.999, 0.9999)
NUM_INPUTS = 1 + 2 * len(MOMENTUM_DECAYS) + 2 + 4  # 15 normalised, 4 constant per tensor


# --- config -------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Config(lpo.EvolutionSettings):
    """OPEN's optimiser and its meta-training (every field a command-line flag).

    The optimiser: ``gru_size``, ``hidden_size``, ``step_scale`` and ``exponent_scale`` (OPEN's
    1e-3 and 1e-3), ``stochastic`` (the learned noise on the actor), ``center_updates``.
    The inner runs and the search: LPO's ``EvolutionSettings`` (``meta/lpo.py``).
    """

    gru_size: int = 8
    hidden_size: int = 16
    step_scale: float = 1e-3
    exponent_scale: float = 1e-3
    stochastic: bool = True
    center_updates: bool = True


PRESETS: dict[str, dict[str, Any]] = {
    # OPEN's published sizes with LPO's search settings, inner runs at the env's PPO preset.
    "published": {},
    # What two CPU cores afford in minutes: CartPole inner runs of 32k steps, population 16.
    "cpu": {"population_size": 16, "generations": 30, "inner_total_steps": 32_768,
            "inner_num_envs": 8, "fitness_episodes": 8},
}


@struct.dataclass
class Hyperparams:
    """The traced part of a meta-run: the inner PPO's hyperparameters (its ``meta`` is set per
    member; OPEN ignores PPO's ``learning_rate`` and ``max_grad_norm``)."""

    ppo: ppo.Hyperparams


# --- the optimiser network ------------------------------------------------------------------------
class OptimizerNetwork(nn.Module):
    """Per-parameter: ``(carry (..., gru_size), inputs (..., NUM_INPUTS)) -> (carry, (m, e, z)
    (..., 3))``; every leading axis is a parameter."""

    gru_size: int = 8
    hidden_size: int = 16

    @nn.compact
    def __call__(self, carry: jax.Array, inputs: jax.Array) -> tuple[jax.Array, jax.Array]:
        carry, features = nn.GRUCell(features=self.gru_size)(carry, inputs)
        for _ in range(2):
            features = nn.relu(nn.LayerNorm()(nn.Dense(self.hidden_size)(features)))
        return carry, nn.Dense(3)(features)


def init_optimizer_params(key: jax.Array, config: Config = Config()) -> Any:
    """The network's weights, randomly initialised (OPEN starts its search there)."""
    network = OptimizerNetwork(config.gru_size, config.hidden_size)
    return network.init(key, jnp.zeros((1, config.gru_size)), jnp.zeros((1, NUM_INPUTS)))


def save_optimizer_params(path: str | Path, params: Any) -> None:
    """The weights as an ``.npz`` of arrays named by their path (``params/GRUCell_0/...``)."""
    flat = {"/".join(str(getattr(k, "key", k)) for k in path_): np.asarray(leaf)
            for path_, leaf in jax.tree_util.tree_flatten_with_path(params)[0]}
    np.savez(path, **flat)


def load_optimizer_params(path: str | Path, config: Config = Config()) -> Any:
    """Weights ``save_optimizer_params`` wrote, checked against ``config``'s network: a file
    of another size raises ``ValueError`` naming the array and both shapes."""
    template = init_optimizer_params(jax.random.key(0), config)
    with np.load(path) as stored:
        arrays = dict(stored)
    leaves = []
    for path_, leaf in jax.tree_util.tree_flatten_with_path(template)[0]:
        name = "/".join(str(getattr(k, "key", k)) for k in path_)
        if name not in arrays:
            raise ValueError(f"OPEN: {path} has no array {name!r}; it holds {sorted(arrays)}.")
        if arrays[name].shape != leaf.shape:
            raise ValueError(f"OPEN: {path}'s {name} has shape {arrays[name].shape}; this "
                             f"optimiser (gru_size {config.gru_size}, hidden_size "
                             f"{config.hidden_size}) needs {leaf.shape}.")
        leaves.append(jnp.asarray(arrays[name], leaf.dtype))
    return jax.tree.unflatten(jax.tree.structure(template), leaves)


# --- the optimiser as an optax transformation ----------------------------------------------------
@struct.dataclass
class OpenState:
    """Per parameter: ``momenta (..., 6)`` and the GRU's ``carry (..., gru_size)``, trees shaped
    like the params; ``count`` the steps taken (int32); ``key`` the noise's key."""

    momenta: Any
    carry: Any
    count: jax.Array
    key: jax.Array


UpdateRule = Callable[[Any, jax.Array, jax.Array, jax.Array], tuple[jax.Array, jax.Array]]
"""``(weights, carry (P, gru_size), inputs (P, NUM_INPUTS), gradient (P,)) -> (carry, step
(P,))`` over all ``P`` parameters at once, flattened leaf by leaf; the default is the network's
(``m * exp(e) + z * noise``, scaled). Replaceable for testing the plumbing."""


def _layer_depths(params: Any) -> list[float]:
    """Each leaf's layer depth within its top-level network, 0 (first) to 1 (last): the
    distinct parent modules in flattening order, per top-level key."""
    paths = [tuple(str(getattr(k, "key", k)) for k in path)
             for path, _ in jax.tree_util.tree_flatten_with_path(params)[0]]
    modules: dict[str, list[tuple[str, ...]]] = {}
    for path in paths:
        modules.setdefault(path[0], [])
        if path[:-1] not in modules[path[0]]:
            modules[path[0]].append(path[:-1])
    return [modules[p[0]].index(p[:-1]) / max(1, len(modules[p[0]]) - 1) for p in paths]


def open_optimizer(weights: Any, config: Config, num_updates: int, steps_per_update: int,
                   *, noise_on: tuple[str, ...] = ("actor",),
                   update_rule: UpdateRule | None = None,
                   ) -> optax.GradientTransformationExtraArgs:
    """OPEN's optimiser with network ``weights`` for a run of ``num_updates`` updates of
    ``steps_per_update`` minibatch steps each (the progress inputs count against them).

    Args:
      weights: ``init_optimizer_params``' tree (traced is fine).
      config: the network's sizes and scales.
      num_updates, steps_per_update: the inner run's shape.
      noise_on: the top-level params keys that get the learned noise (PPO's actor).
      update_rule: replaces the network (module docstring's ``UpdateRule``).

    ``update(grads, state, params, dormancy=None)``: ``dormancy`` a tree shaped like the params
    (``unit_dormancy``); None reads as every unit average (ones).
    """
    network = OptimizerNetwork(config.gru_size, config.hidden_size)
    decays = jnp.asarray(MOMENTUM_DECAYS, jnp.float32)

    def default_rule(theta, carry, inputs, gradient):
        del gradient
        carry, output = network.apply(theta, carry, inputs)
        return carry, output

    def init(params):
        leaves = jax.tree.leaves(params)
        # The noise's key comes from the params, so agents initialised differently draw
        # different noise (an optax init sees nothing else) and a run replays bit for bit.
        total = sum(jnp.sum(leaf.astype(jnp.float32)) for leaf in leaves)
        key = jax.random.fold_in(jax.random.key(0),
                                 jax.lax.bitcast_convert_type(jnp.float32(total), jnp.uint32))
        return OpenState(
            momenta=jax.tree.map(lambda p: jnp.zeros(p.shape + (len(MOMENTUM_DECAYS),),
                                                     jnp.float32), params),
            carry=jax.tree.map(lambda p: jnp.zeros(p.shape + (config.gru_size,), jnp.float32),
                               params),
            count=jnp.int32(0), key=key)

    def update(grads, state, params=None, *, dormancy=None, **extra):
        del extra
        if params is None:
            raise ValueError("OPEN: the optimiser reads the parameters; call update(grads, "
                             "state, params).")
        treedef = jax.tree.structure(params)
        top_keys = [str(getattr(path[0], "key", path[0]))
                    for path, _ in jax.tree_util.tree_flatten_with_path(params)[0]]
        depths = _layer_depths(params)
        momenta = jax.tree.map(
            lambda m, g: decays * m + (1.0 - decays) * g.astype(jnp.float32)[..., None],
            state.momenta, grads)
        if dormancy is None:
            dormancy = jax.tree.map(jnp.ones_like, params)
        update_index = state.count // steps_per_update
        training_progress = update_index.astype(jnp.float32) / num_updates
        batch_progress = (state.count % steps_per_update).astype(jnp.float32) / steps_per_update
        key, noise_key = jax.random.split(state.key)

        # Every parameter's inputs as one (num_params, NUM_INPUTS) batch: the network is
        # applied once per step, not once per tensor (one copy in the compiled program).
        leaves = jax.tree.leaves(params)
        inputs, gradients, carries, noisy = [], [], [], []
        for i, (p, g, m, c, d) in enumerate(zip(
                leaves, jax.tree.leaves(grads), treedef.flatten_up_to(momenta),
                treedef.flatten_up_to(state.carry), jax.tree.leaves(dormancy), strict=True)):
            p32, g32 = p.astype(jnp.float32), g.astype(jnp.float32)
            tiny = 1e-13
            normalised = jnp.concatenate([
                p32[..., None], jnp.sign(m), jnp.log(jnp.abs(m) + tiny),
                jnp.sign(g32)[..., None], jnp.log(jnp.abs(g32) + tiny)[..., None]], axis=-1)
            axes = tuple(range(p.ndim))
            normalised = normalised * jax.lax.rsqrt(
                1e-5 + jnp.mean(jnp.square(normalised), axis=axes, keepdims=True))
            constant = jnp.broadcast_to(
                jnp.stack([training_progress, batch_progress, jnp.float32(depths[i])]),
                p.shape + (3,))
            inputs.append(jnp.concatenate(
                [normalised, constant, d.astype(jnp.float32)[..., None]],
                axis=-1).reshape(-1, NUM_INPUTS))
            gradients.append(g32.reshape(-1))
            carries.append(c.reshape(-1, c.shape[-1]))
            noisy.append(np.full(p.size, top_keys[i] in noise_on))
        inputs, gradients = jnp.concatenate(inputs), jnp.concatenate(gradients)
        carry = jnp.concatenate(carries)
        if update_rule is not None:
            carry, step = update_rule(weights, carry, inputs, gradients)
        else:
            carry, output = default_rule(weights, carry, inputs, gradients)
            step = output[:, 0] * jnp.exp(config.exponent_scale * output[:, 1])
            if config.stochastic:
                noise = jax.random.normal(noise_key, step.shape) * np.concatenate(noisy)
                step = step + output[:, 2] * noise
            step = config.step_scale * step
        if config.center_updates:
            step = step - jnp.mean(step)
        sizes = np.cumsum([p.size for p in leaves])[:-1]
        updates = treedef.unflatten([
            (-s).reshape(p.shape).astype(p.dtype)
            for s, p in zip(jnp.split(step, sizes), leaves, strict=True)])
        new_carry = treedef.unflatten([
            c.reshape(p.shape + (c.shape[-1],))
            for c, p in zip(jnp.split(carry, sizes), leaves, strict=True)])
        return updates, OpenState(momenta=momenta, carry=new_carry, count=state.count + 1,
                                  key=key)

    return optax.GradientTransformationExtraArgs(init, update)


@dataclasses.dataclass(frozen=True, eq=False)
class OpenOptimizer:
    """OPEN as PPO's ``optimizer=`` argument: ``hparams -> open_optimizer(hparams.meta[
    "optimizer"], ...)``; ``default_weights`` where ``hparams.meta`` holds none (the weights a
    ``--optimizer-params`` file gave, or a random initialisation).

    ``learned`` and ``uses_dormancy`` tell PPO (``optim.resolve_optimizer``) not to test the
    first step for descent and to pass the units' dormancy."""

    config: Config
    num_updates: int
    steps_per_update: int
    default_weights: Any = None
    update_rule: UpdateRule | None = None
    learned: bool = True
    uses_dormancy: bool = True

    @classmethod
    def for_ppo(cls, config: Config, ppo_config: ppo.Config, default_weights: Any = None,
                update_rule: UpdateRule | None = None) -> OpenOptimizer:
        """The optimiser for a PPO run of ``ppo_config`` (its updates and minibatch steps)."""
        num_updates = ppo_config.total_steps // (ppo_config.num_envs * ppo_config.num_steps)
        if default_weights is None:
            default_weights = init_optimizer_params(jax.random.key(0), config)
        return cls(config, max(1, num_updates),
                   ppo_config.update_epochs * ppo_config.num_minibatches, default_weights,
                   update_rule)

    def __call__(self, hparams: Any) -> optax.GradientTransformationExtraArgs:
        meta = getattr(hparams, "meta", None)
        weights = (meta["optimizer"] if isinstance(meta, dict) and "optimizer" in meta
                   else self.default_weights)
        return open_optimizer(weights, self.config, self.num_updates, self.steps_per_update,
                              update_rule=self.update_rule)


# --- make_train -----------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True, eq=False)
class OpenTrain(Train):
    """``Train`` plus the inner PPO ``Train`` (with OPEN), the baseline's (with Adam), the
    strategy and ``member_return(weights, ppo_hparams, key)`` (one whole inner run and its
    evaluation, a scalar)."""

    inner: Train | None = None
    baseline: Train | None = None
    es: Any = None
    member_return: Any = None


def validate(config: Config, env: Any = None, env_params: Any = None) -> None:
    """Refuse a meta-run that cannot work, in plain words, before anything compiles."""
    lpo.check_evolution_config(config, env, env_params, "OPEN",
                               {"gru_size": 1, "hidden_size": 1})
    for name in ("step_scale", "exponent_scale"):
        if not getattr(config, name) > 0:
            raise ValueError(f"OPEN: {name} must be > 0; got {getattr(config, name)!r}.")


def make_train(config: Config, env: Any, env_params: Any) -> OpenTrain:
    """OPEN meta-training on ``env`` as a ``Train`` of ``config.generations`` generations.
    Raises ``ValueError`` for bad settings (``validate``, and PPO's checks of the inner
    config)."""
    validate(config, env, env_params)
    inner_cfg = lpo.inner_config(config, env, objective=ppo.Config.objective)
    optimizer = OpenOptimizer.for_ppo(config, inner_cfg)
    inner = ppo.make_train(inner_cfg, env, env_params, optimizer=optimizer)
    baseline = ppo.make_train(inner_cfg, env, env_params)
    run_return = functools.partial(lpo.make_run_return, env=env, env_params=env_params,
                                   episodes=config.fitness_episodes,
                                   deterministic=config.fitness_deterministic,
                                   max_steps=config.fitness_max_steps or None)
    inner_return, baseline_return = run_return(inner), run_return(baseline)
    template = init_optimizer_params(jax.random.key(0), config)
    es = es_lib.make_es(lpo.es_config(config), template)
    population = config.population_size

    def member_return(weights, ppo_hparams, key):
        """One whole inner PPO run trained by OPEN with ``weights``, evaluated: a scalar."""
        return inner_return(ppo_hparams.replace(meta={"optimizer": weights}), key)

    init, evolve = es_lib.make_evolution(
        es, template, lambda weights, hparams, key: member_return(weights, hparams.ppo, key),
        baseline=lambda hparams, key: baseline_return(hparams.ppo, key),
        member_chunks=config.member_chunks)

    def update(state):
        state, report = evolve(state)
        report["adam_return"] = report.pop("baseline_return")
        report["episode_return"] = report["mean_return"]
        report["env_steps"] = (state.generation.astype(jnp.float32) * (population + 2)
                               * inner.num_updates * inner.env_steps_per_update)
        return state, report

    def make_policy(state):
        raise ValueError("OPEN: a meta-run learns an optimiser, not a policy; train with it by "
                         "`jaxrl train ppo --optimizer-params RUN_DIR`.")

    return OpenTrain(
        init=init, update=update, num_updates=config.generations,
        env_steps_per_update=(population + 2) * inner.num_updates * inner.env_steps_per_update,
        default_hparams=Hyperparams(ppo=inner.default_hparams.replace(meta=None)),
        make_policy=make_policy, config=config, int32_env_steps=False, inner=inner,
        baseline=baseline, es=es, member_return=member_return)


# --- outputs --------------------------------------------------------------------------------------
def write_outputs(run_dir: Path, train: OpenTrain, states: Any) -> dict[str, Any]:
    """``optimizer.npz`` (the search mean) and ``optimizer_best.npz`` (the best member seen);
    with several seeds ``optimizer_seed{i}.npz`` and so on, the first seed's also unsuffixed."""
    run_dir = Path(run_dir)
    num_seeds = jax.tree.leaves(states.mean)[0].shape[0]
    written = []
    for seed in range(num_seeds):
        state = jax.tree.map(lambda x, s=seed: x[s], states)
        suffix = f"_seed{seed}" if num_seeds > 1 else ""
        for name, weights in (("optimizer", state.mean), ("optimizer_best", state.best)):
            save_optimizer_params(run_dir / f"{name}{suffix}.npz", weights)
            if seed == 0 and suffix:
                save_optimizer_params(run_dir / f"{name}.npz", weights)
        written.append({"best_fitness": float(state.best_fitness),
                        "generations": int(state.generation)})
    return {"seeds": written}


# --- the algorithm's description: presets and the command line come from it -------------------
ALGORITHM = AlgorithmSpec(
    name="open", display_name="OPEN", config=Config, hyperparams=Hyperparams,
    make_train=make_train, presets=PRESETS, default_env="gymnax/CartPole-v1",
    write_outputs=write_outputs, evaluates_policy=False, checkpoint_every=1,
    description=__doc__.strip().splitlines()[0],
)
preset_config = ALGORITHM.preset_config  # (preset, **overrides) -> Config
main = ALGORITHM.main  # `python meta/open.py --preset cpu`, `jaxrl meta open ...`


if __name__ == "__main__":
    sys.exit(main())
