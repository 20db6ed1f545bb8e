"""LPO and TA-LPO: a PPO drift objective discovered by evolution over whole PPO training runs.

Lu et al. 2022, "Discovered Policy Optimisation" (LPO, and DPO its closed form); Jackson et al.
2024, "Discovering Temporally-Aware Reinforcement Learning Algorithms" (TA-LPO).

The objective is ``jaxrl_suite.learn.objectives.lpo`` (``ta_lpo`` with ``time_aware``): PPO's
loss ``-mean(r A - drift)`` with ``drift = relu(ppo_drift + net(x))``, ``net`` a 128-unit tanh
layer without biases on ``drift_features(r, A)`` (and the training progress ``n / N`` for
TA-LPO). Its parameters are PPO's traced ``hparams.meta["objective"]``, so a population of
objectives is a ``vmap`` of whole PPO runs and nothing recompiles between generations.

A generation (one ``update`` of this ``Train``, one compiled call):

1. the evolution strategy (``meta/es.py``; OpenAI-ES by default, population 64, rate and sigma
   0.03 decayed by 0.99 per generation, LPO's published meta-training) proposes
   ``population_size`` drift networks in antithetic pairs;
2. each member trains a fresh PPO agent for the whole inner run (``ppo_preset`` on the env,
   ``inner_total_steps`` env steps) and its final policy plays ``fitness_episodes`` evaluation
   episodes: its mean return is the fitness; the two members of a pair share their keys (the
   agents' initialisation, env seeds and evaluation episodes), so only the sign of the
   perturbation tells them apart;
3. two more inner runs on the first pair's keys report the generation: PPO itself (the drift
   network initialised at PPO, whose learned term is 0) and the search mean;
4. the fitness is rank-shaped (``centered_rank`` by default; ``pairwise_rank`` compares the two
   of each pair) and told to the strategy.

The population is split over local devices when they divide it (``es.shard_population``);
``member_chunks`` evaluates it in sequential chunks (memory grows with a chunk). The harness
gives the run live progress, a run folder, an orbax checkpoint every generation (the ES state,
the mean and the best parameters, the keys) and bit-exact ``--resume``; the run folder gets
``objective.npz`` (the search mean), ``objective_best.npz`` (the best member seen) and
``drift.png`` (the discovered drift over ``r`` and ``A``). ``jaxrl train ppo --objective lpo
--objective-params RUN_DIR`` trains with the discovered objective; ``jaxrl meta eval RUN_DIR``
(``meta/evaluate.py``) trains fresh PPO agents with it, with PPO's and with DPO's objective on
the same seeds, at multiples of the inner budget and on other envs.

Over a curriculum (``curriculum``: ``dr``, ``plr``, ``robust_plr``, ``accel`` or ``paired``, on a
level env: ``maze``, ``gridworld``, or any env as ``ParamLevels``): each member's inner run is
the UED run of that method whose student is the inner PPO (``curriculum_config``), trained with
the member's drift while the curriculum picks its levels; its fitness is the student's final
policy on fresh levels of the env's own distribution. The issue's "an objective meta-trained
over a UED curriculum without editing algos/ued.py": the UED student takes the objective
through its ``hparams.student.meta``.

Several envs at once (fitness normalised by PPO's return per env, as the paper's multi-task
runs) are not built yet: one env per meta-run.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from jaxrl_suite.algos import ppo, ued
from jaxrl_suite.env import wrappers
from jaxrl_suite.env.levels import is_level_env
from jaxrl_suite.learn import objectives
from jaxrl_suite.meta import es as es_lib
from jaxrl_suite.run.algorithms import AlgorithmSpec
from jaxrl_suite.run.configs import require_finite_numbers
from jaxrl_suite.run.evaluation import evaluate
from jaxrl_suite.run.training import Train

__all__ = [
    "Config",
    "EvolutionSettings",
    "Hyperparams",
    "LPOState",
    "LPOTrain",
    "CURRICULA",
    "PRESETS",
    "curriculum_config",
    "inner_config",
    "make_inner_train",
    "make_run_return",
    "make_train",
    "plot_drift",
    "validate",
    "with_objective",
    "write_outputs",
]


# --- config -------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class EvolutionSettings:
    """What every ES meta-run over whole PPO runs sets (LPO's, OPEN's ``Config`` extend it).

    The inner runs: PPO's ``ppo_preset`` (empty: the env's default preset; ``none``: PPO's plain
    defaults) with ``inner_total_steps`` env steps (0: the preset's) and ``inner_num_envs`` (0:
    the preset's); evaluated by ``fitness_episodes`` episodes of at most ``fitness_max_steps``
    steps (0: the env's episode limit), sampled (``fitness_deterministic`` False) or greedy.
    The search: ``es_*`` and ``population_size`` (OpenAI-ES, LPO's published 64 and 0.03 /
    0.03 decayed 0.99), ``generations`` of it, the population evaluated in ``member_chunks``.
    """

    population_size: int = 64
    generations: int = 256
    member_chunks: int = 1
    ppo_preset: str = ""
    inner_total_steps: int = 0
    inner_num_envs: int = 0
    fitness_episodes: int = 16
    fitness_max_steps: int = 0
    fitness_deterministic: bool = False
    es_strategy: str = "open_es"
    es_learning_rate: float = 0.03
    es_sigma: float = 0.03
    es_lr_decay: float = 0.99
    es_sigma_decay: float = 0.99
    es_fitness_shaping: str = "centered_rank"


@dataclasses.dataclass(frozen=True)
class Config(EvolutionSettings):
    """LPO meta-training settings (every field a command-line flag): the objective's
    ``time_aware`` (TA-LPO) and ``hidden_size``, ``EvolutionSettings``' inner runs and search,
    and the ``curriculum`` (a UED method; empty: plain PPO on the env) that picks the inner
    runs' levels on a level env."""

    time_aware: bool = False
    hidden_size: int = 128
    curriculum: str = ""


CURRICULA = ("",) + ued.METHODS


PRESETS: dict[str, dict[str, Any]] = {
    # LPO's published meta-training (population 64, OpenAI-ES 0.03 / 0.03 decayed 0.99), the
    # inner runs at the env's PPO preset: for accelerators.
    "published": {},
    # What two CPU cores afford in minutes: CartPole inner runs of 32k steps, population 16.
    "cpu": {"population_size": 16, "generations": 30, "inner_total_steps": 32_768,
            "inner_num_envs": 8, "fitness_episodes": 8, "hidden_size": 32},
}


@struct.dataclass
class Hyperparams:
    """The traced part of a meta-run: the inner PPO's hyperparameters (a sweep over them is a
    ``vmap``); their ``meta`` is set per member. Over a curriculum, the inner UED run's
    (``ued.Hyperparams``: its student's PPO settings, and PAIRED's adversary's)."""

    ppo: ppo.Hyperparams | ued.Hyperparams


LPOState = es_lib.EvolutionState
"""A meta-run's state: the ES state, the search ``mean`` and the ``best`` member seen (as
drift-network params), ``best_fitness``, ``key``, ``generation`` and ``hparams``."""


@dataclasses.dataclass(frozen=True, eq=False)
class LPOTrain(Train):
    """``Train`` plus what ``write_outputs`` and ``jaxrl meta eval`` read: the inner PPO
    ``Train``, the strategy, and the fitness: ``member_return(drift, ppo_hparams, key)`` (one
    whole inner run and its evaluation, a scalar) and ``population_returns(drifts,
    ppo_hparams, keys)`` (its ``vmap`` over members, ``(members,)``)."""

    inner: Train | None = None
    es: Any = None
    member_return: Any = None
    population_returns: Any = None


def inner_config(config: Any, env: Any, objective: str | None = None) -> ppo.Config:
    """The inner runs' PPO config: the preset (or the env's), the learned objective (default
    ``lpo``, ``ta_lpo`` when ``config.time_aware``; ``objective`` names another), the steps and
    envs the config overrides."""
    if objective is None:
        objective = "ta_lpo" if config.time_aware else "lpo"
    overrides: dict[str, Any] = {"objective": objective}
    if config.inner_total_steps:
        overrides["total_steps"] = config.inner_total_steps
    if config.inner_num_envs:
        overrides["num_envs"] = config.inner_num_envs
    if config.ppo_preset == "none":
        return ppo.Config(**overrides)
    if config.ppo_preset:
        return ppo.preset_config(config.ppo_preset, **overrides)
    return ppo.ALGORITHM.env_preset_config(env, **overrides)


def curriculum_config(config: Config, ppo_config: ppo.Config) -> ued.Config:
    """The UED run of ``config.curriculum`` whose student is ``ppo_config`` (its network,
    optimiser, objective and budget; a UED round is one PPO update's rollout), with UED's own
    curriculum settings (buffer, scores, replay) at their defaults and a single logged update:
    the held-out levels are played once, at the end."""
    rounds = max(1, ppo_config.total_steps // (ppo_config.num_envs * ppo_config.num_steps))
    shared = ("total_steps", "num_envs", "num_steps", "update_epochs", "num_minibatches",
              "learning_rate", "anneal_lr", "gamma", "gae_lambda", "clip_epsilon",
              "entropy_coef", "value_coef", "max_grad_norm", "encoder", "conv_features",
              "recurrent", "gru_hidden_size", "hidden_sizes", "activation", "objective",
              "objective_params", "optimizer_params")
    return ued.Config(method=config.curriculum, eval_interval=rounds, heldout_episodes=1,
                      **{name: getattr(ppo_config, name) for name in shared})


def make_inner_train(config: Config, ppo_config: ppo.Config, env: Any, env_params: Any
                     ) -> Train:
    """The inner run's ``Train``: PPO of ``ppo_config`` on ``env``, or over a curriculum the
    UED run whose student it is (``curriculum_config``)."""
    if getattr(config, "curriculum", ""):
        return ued.make_train(curriculum_config(config, ppo_config), env, env_params)
    return ppo.make_train(ppo_config, env, env_params)


def with_objective(inner_hparams: Any, drift: Any) -> Any:
    """``inner_hparams`` (PPO's, or a UED run's) with the learned objective's ``drift``: PPO's
    ``meta``, or the UED student's."""
    if isinstance(inner_hparams, ued.Hyperparams):
        return inner_hparams.replace(student=inner_hparams.student.replace(
            meta={"objective": drift}))
    return inner_hparams.replace(meta={"objective": drift})


def without_objective(inner_hparams: Any) -> Any:
    """``inner_hparams`` with no learned objective set (``meta`` None): the meta-run's default
    hyperparameters, whose objective is set per member."""
    if isinstance(inner_hparams, ued.Hyperparams):
        return inner_hparams.replace(student=inner_hparams.student.replace(meta=None))
    return inner_hparams.replace(meta=None)


def es_config(config: Any) -> es_lib.ESConfig:
    """The strategy a meta-run's ``es_*`` and ``population_size`` fields describe."""
    return es_lib.ESConfig(
        strategy=config.es_strategy, population_size=config.population_size,
        sigma=config.es_sigma,
        learning_rate=None if config.es_strategy == "cma_es" else config.es_learning_rate,
        lr_decay=1.0 if config.es_strategy == "cma_es" else config.es_lr_decay,
        sigma_decay=config.es_sigma_decay if config.es_strategy == "open_es" else 1.0,
        fitness_shaping=config.es_fitness_shaping)


def validate(config: Config, env: Any = None, env_params: Any = None) -> None:
    """Refuse a meta-run that cannot work, in plain words, before anything compiles."""
    check_evolution_config(config, env, env_params, "LPO", {"hidden_size": 1})
    if config.curriculum not in CURRICULA:
        raise ValueError(f"LPO: curriculum must be empty (plain PPO on the env) or a UED method "
                         f"({', '.join(ued.METHODS)}); got {config.curriculum!r}.")
    if config.curriculum and env is not None and not is_level_env(env):
        raise ValueError(f"LPO: the curriculum {config.curriculum!r} picks levels, so it needs "
                         f"a level env (maze, gridworld, or any env wrapped in ParamLevels); "
                         f"{env.name} has none.")


def check_evolution_config(config: Any, env: Any, env_params: Any, owner: str,
                           sizes: dict[str, int]) -> None:
    """The checks every ES meta-run over whole PPO runs shares (LPO's, OPEN's): finite numbers;
    ``sizes`` (name -> minimum) and the population, chunk, inner-run and fitness fields are
    integers at least their minimum; the population even (antithetic pairs) and divisible by
    ``member_chunks``; a valid strategy; an episode limit to evaluate with."""
    require_finite_numbers(config)
    for name, minimum in (*sizes.items(), ("population_size", 2), ("generations", 0),
                          ("member_chunks", 1), ("inner_total_steps", 0),
                          ("inner_num_envs", 0), ("fitness_episodes", 1), ("fitness_max_steps", 0)):
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ValueError(f"{owner}: {name} must be an integer >= {minimum}; got {value!r}.")
    if config.population_size % 2:
        raise ValueError(f"{owner}: the population comes in antithetic pairs, so "
                         f"population_size must be even; got {config.population_size}.")
    if config.population_size % config.member_chunks:
        raise ValueError(f"{owner}: population_size ({config.population_size}) must be "
                         f"divisible by member_chunks ({config.member_chunks}).")
    es_config(config).validate()
    if env is not None and config.fitness_max_steps == 0 and getattr(
            env_params, "max_steps_in_episode", None) is None:
        raise ValueError(f"{owner}: {env.name}'s params have no max_steps_in_episode; set "
                         f"fitness_max_steps.")


# --- make_train -----------------------------------------------------------------------------------
def make_run_return(inner: Train, env: Any, env_params: Any, episodes: int,
                    deterministic: bool, max_steps: int | None):
    """``run_return(ppo_hparams, key) -> ()`` float32: one whole PPO run of ``inner`` (``init``
    from ``key``, then its ``num_updates`` updates in a ``lax.scan``) and the mean undiscounted
    return of its final policy over ``episodes`` evaluation episodes of ``env`` without
    auto-reset (sampled actions unless ``deterministic``; at most ``max_steps`` steps each,
    None: the env's episode limit). Pure: ``vmap`` it over keys or over hparams. The fitness of
    a meta-run's member, and what ``jaxrl meta eval`` trains on each seed."""
    evaluation_env = wrappers.without_auto_reset(env)

    def run_return(ppo_hparams, key):
        init_key, eval_key = jax.random.split(key)
        state = inner.init(init_key, ppo_hparams)
        state = jax.lax.scan(lambda s, _: (inner.update(s)[0], None), state, None,
                             length=inner.num_updates)[0]
        returns = evaluate(inner.make_policy(state), evaluation_env, env_params, eval_key,
                           episodes, deterministic=deterministic,
                           max_steps=max_steps)["episode_return"]
        return returns.mean()

    return run_return


def make_train(config: Config, env: Any, env_params: Any) -> LPOTrain:
    """LPO (or TA-LPO) meta-training on ``env`` as a ``Train`` of ``config.generations``
    generations. Raises ``ValueError`` for bad settings (``validate``, and PPO's own checks of
    the inner config)."""
    validate(config, env, env_params)
    inner = make_inner_train(config, inner_config(config, env), env, env_params)
    run_return = make_run_return(inner, env, env_params, config.fitness_episodes,
                                 config.fitness_deterministic, config.fitness_max_steps or None)
    template = objectives.init_drift_params(jax.random.key(0), config.time_aware,
                                            config.hidden_size)
    es = es_lib.make_es(es_config(config), template)
    population = config.population_size

    def member_return(drift, ppo_hparams, key):
        """One whole inner PPO run trained with ``drift``, then its evaluation: a scalar."""
        return run_return(with_objective(ppo_hparams, drift), key)

    def fitness(drift, hparams, key):
        return member_return(drift, hparams.ppo, key)

    # The baseline is PPO itself: the template's learned term is 0.
    init, evolve = es_lib.make_evolution(es, template, fitness, baseline=template,
                                         member_chunks=config.member_chunks)

    def update(state: LPOState) -> tuple[LPOState, dict[str, jax.Array]]:
        state, report = evolve(state)
        report["ppo_return"] = report.pop("baseline_return")
        report["episode_return"] = report["mean_return"]
        report["env_steps"] = (state.generation.astype(jnp.float32) * (population + 2)
                               * inner.num_updates * inner.env_steps_per_update)
        return state, report

    def make_policy(state):
        raise ValueError("LPO: a meta-run learns an objective, not a policy; train with it by "
                         "`jaxrl train ppo --objective lpo --objective-params RUN_DIR`, or "
                         "`jaxrl meta eval RUN_DIR`.")

    return LPOTrain(
        init=init, update=update, num_updates=config.generations,
        env_steps_per_update=(population + 2) * inner.num_updates * inner.env_steps_per_update,
        default_hparams=Hyperparams(ppo=without_objective(inner.default_hparams)),
        make_policy=make_policy, config=config, int32_env_steps=False, inner=inner, es=es,
        member_return=member_return,
        population_returns=jax.vmap(member_return, in_axes=(0, None, 0)))


# --- outputs --------------------------------------------------------------------------------------
def drift_grid(drift_params: Any, time_aware: bool, clip_epsilon: float = 0.2,
               progress: float = 0.0, size: int = 101) -> tuple[np.ndarray, ...]:
    """The learned drift and PPO's over ``r`` in [0.5, 1.5] and ``A`` in [-2, 2] (``size`` each,
    ``progress`` n/N for TA-LPO): ``(ratios, advantages, drift, ppo_drift)``, the drifts
    ``(size, size)`` indexed ``[advantage, ratio]``."""
    ratios = np.linspace(0.5, 1.5, size, dtype=np.float32)
    advantages = np.linspace(-2.0, 2.0, size, dtype=np.float32)
    ratio, advantage = np.meshgrid(ratios, advantages)
    log_ratio = jnp.log(ratio)
    inputs = objectives.ObjectiveInputs(
        ratio=jnp.asarray(ratio), log_ratio=log_ratio, log_prob=log_ratio,
        old_log_prob=jnp.zeros_like(log_ratio), advantages=jnp.asarray(advantage),
        values=log_ratio, old_values=log_ratio, targets=log_ratio, entropy=log_ratio,
        progress=jnp.float32(progress), epoch_progress=jnp.float32(0.0),
        hparams=_ClipOnly(jnp.float32(clip_epsilon)))
    learned = objectives.learned_drift(drift_params, inputs, time_aware)
    reference = objectives.ppo_drift(inputs.ratio, inputs.advantages, clip_epsilon)
    return ratios, advantages, np.asarray(learned), np.asarray(reference)


@struct.dataclass
class _ClipOnly:
    clip_epsilon: jax.Array


def plot_drift(drift_params: Any, time_aware: bool, path: Path, clip_epsilon: float = 0.2,
               title: str = "") -> None:
    """The papers' figure: the drift as a heat map over ``r`` and ``A``, beside PPO's (and for
    TA-LPO at the start, middle and end of training)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    progresses = (0.0, 0.5, 1.0) if time_aware else (0.0,)
    figure, axes = plt.subplots(1, len(progresses) + 1, figsize=(4 * (len(progresses) + 1), 3.6),
                                squeeze=False)
    panels = []
    for progress in progresses:
        ratios, advantages, learned, reference = drift_grid(drift_params, time_aware,
                                                            clip_epsilon, progress)
        panels.append((f"learned drift (n/N = {progress:g})" if time_aware
                       else "learned drift", learned))
    panels.append(("PPO's drift", reference))
    top = max(float(np.max(p[1])) for p in panels) or 1.0
    for axis, (name, values) in zip(axes[0], panels):
        image = axis.imshow(values, origin="lower", aspect="auto", vmin=0.0, vmax=top,
                            extent=(ratios[0], ratios[-1], advantages[0], advantages[-1]),
                            cmap="viridis")
        axis.set_xlabel("probability ratio r")
        axis.set_title(name, fontsize=9)
    axes[0][0].set_ylabel("advantage A")
    figure.colorbar(image, ax=axes[0].tolist(), shrink=0.85)
    if title:
        figure.suptitle(title, fontsize=10)
    figure.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(figure)


def write_outputs(run_dir: Path, train: LPOTrain, states: LPOState) -> dict[str, Any]:
    """``objective.npz`` (the search mean), ``objective_best.npz`` (the best member seen) and
    ``drift.png``; with several seeds, ``objective_seed{i}.npz`` and so on per seed and the
    first seed's as ``objective.npz``."""
    run_dir = Path(run_dir)
    config: Config = train.config
    num_seeds = jax.tree.leaves(states.mean)[0].shape[0]
    inner_hparams = states.hparams.ppo
    student = inner_hparams.student if isinstance(inner_hparams, ued.Hyperparams) else inner_hparams
    clip_epsilon = float(np.asarray(student.clip_epsilon).reshape(-1)[0])
    written = []
    for seed in range(num_seeds):
        state = jax.tree.map(lambda x, s=seed: x[s], states)
        suffix = f"_seed{seed}" if num_seeds > 1 else ""
        for name, params in (("objective", state.mean), ("objective_best", state.best)):
            objectives.save_drift_params(str(run_dir / f"{name}{suffix}.npz"), params)
            if seed == 0 and suffix:
                objectives.save_drift_params(str(run_dir / f"{name}.npz"), params)
        plot_drift(state.mean, config.time_aware, run_dir / f"drift{suffix}.png", clip_epsilon,
                   title=f"{'TA-LPO' if config.time_aware else 'LPO'}: the search mean after "
                         f"{int(state.generation)} generations")
        written.append({"best_fitness": float(state.best_fitness),
                        "generations": int(state.generation)})
    return {"seeds": written}


# --- the algorithm's description: presets and the command line come from it -------------------
ALGORITHM = AlgorithmSpec(
    name="lpo", display_name="LPO", config=Config, hyperparams=Hyperparams,
    make_train=make_train, presets=PRESETS, default_env="gymnax/CartPole-v1",
    write_outputs=write_outputs, evaluates_policy=False, checkpoint_every=1,
    description=__doc__.strip().splitlines()[0],
)
preset_config = ALGORITHM.preset_config  # (preset, **overrides) -> Config
main = ALGORITHM.main  # `python meta/lpo.py --preset cpu`, `jaxrl meta lpo ...`


if __name__ == "__main__":
    sys.exit(main())
