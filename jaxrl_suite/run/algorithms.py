"""The algorithm registry: names for ``jaxrl train NAME`` and ``jaxrl algos``, and the one
typed description every algorithm module declares.

Each entry is a module in ``jaxrl_suite.algos`` exposing ``ALGORITHM``, an ``AlgorithmSpec``
(name, ``Config``, ``Hyperparams``, ``make_train``, presets, default env, x axis, data needs,
outputs hook), from which its ``preset_config`` and ``main`` come (DESIGN.md section 6); the
harness reads the spec, never the module's attributes. Modules are imported only when used.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import types
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["ALGORITHMS", "AlgorithmSpec", "algorithm_spec", "load_algorithm",
           "registered_algorithms"]


@dataclasses.dataclass(frozen=True)
class AlgorithmSpec:
    """What the harness and the command line need to know of an algorithm.

    Attributes:
      name: the ``jaxrl train NAME`` name, also the run folders' prefix.
      config: the ``Config`` dataclass (every field a command-line flag).
      hyperparams: the ``Hyperparams`` dataclass (the traced part of a run).
      make_train: ``(config, env, env_params, ...) -> Train``.
      presets: ``{preset name: Config overrides}``.
      preset_by_env: ``{env id: preset name}``, the preset an env gets by default.
      default_env: the env of ``jaxrl train NAME`` without ``--env``.
      x_axis: the metric learning curves are drawn against: ``env_steps``, or
        ``gradient_steps`` for offline runs, which take no env step.
      dataset_env: an offline algorithm's ``dataset name -> env id`` (the env a dataset records,
        which ``--env`` defaults to); None for an algorithm that learns from an env. The run
        wing reads datasets only through it: ``jaxrl_suite.data`` sits above ``run``.
      write_outputs: ``(run_dir, train, states) -> ...``, pictures the algorithm adds to its
        run folder (UED's levels), or None.
      description: one line for ``--help`` (default the module docstring's first line).
      display_name: how messages name the algorithm (default ``name`` in capitals).
      measured_presets: ``{preset name: where}`` for the presets whose learning was measured on
        this project: ``where`` names the test in tests/ that trains it to a threshold or the
        script in benchmarks/ that records its returns. Every other preset is published or
        adapted settings, unverified here. The one source of what ``--help``
        (``preset_help``) says of each preset.
      checkpoint_every: the updates between checkpoints when ``--checkpoint-every`` is not
        given (0: one checkpoint at the end); 1 for a meta-run, whose update is a generation.
      evaluates_policy: whether the run's final state holds a policy the harness evaluates
        (``eval.json``); False for meta-training, which learns an objective (evaluated by
        training fresh agents with it: ``jaxrl meta eval``).
    """

    name: str
    config: type
    hyperparams: type
    make_train: Callable[..., Any]
    presets: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    preset_by_env: dict[str, str] = dataclasses.field(default_factory=dict)
    default_env: str = "gymnax/CartPole-v1"
    x_axis: str = "env_steps"
    dataset_env: Callable[[str], str] | None = None
    write_outputs: Callable[..., Any] | None = None
    description: str = ""
    display_name: str = ""
    measured_presets: dict[str, str] = dataclasses.field(default_factory=dict)
    evaluates_policy: bool = True
    checkpoint_every: int = 0

    @property
    def needs_dataset(self) -> bool:
        """An offline algorithm: it learns from ``--dataset NAME``, not from env steps."""
        return self.dataset_env is not None

    @property
    def title(self) -> str:
        return self.display_name or self.name.upper()

    def env_preset_config(self, env: Any, **overrides: Any) -> Any:
        """``Config`` for a built env: the preset of ``env.name`` where that name is an env id
        with a preset (``make``'s gymnax and Brax ids are), else the plain defaults; then
        ``overrides``. For algorithms that build another's config from the env they are given
        (a preference set's learner, LPO's inner PPO): the project's own envs name
        themselves without their family (``mo/deep-sea-treasure`` is ``deep-sea-treasure``),
        which ``preset_config`` would take for a preset name."""
        preset = self.presets.get(self.preset_by_env.get(getattr(env, "name", ""), ""), {})
        return self.config(**{**preset, **overrides})

    def preset_config(self, env_id_or_preset: str, **overrides: Any) -> Any:
        """``Config`` from a preset (by name, or the default one of an env id), then
        ``overrides``. An env without a preset gets the plain defaults; an unknown preset name
        raises, listing the presets."""
        from jaxrl_suite.run.configs import preset_config_from

        return preset_config_from(self.config, self.presets, self.preset_by_env, self.title,
                                  env_id_or_preset, overrides)

    def preset_help(self) -> str:
        """One line per preset for ``--help``: its name, the envs that get it by default, and
        whether its learning was measured here (``measured_presets``) or is unverified."""
        if not self.presets:
            return ""
        lines = ["presets (--preset NAME; 'auto' picks the env's):"]
        for name in self.presets:
            envs = [env_id for env_id, preset in self.preset_by_env.items() if preset == name]
            shown = ", ".join(envs[:2]) + (f" and {len(envs) - 2} more" if len(envs) > 2 else "")
            status = (f"measured here ({self.measured_presets[name]})"
                      if name in self.measured_presets
                      else "unverified here (published or adapted settings)")
            lines.append(f"  {name}: {status}" + (f"; default for {shown}" if envs else ""))
        return "\n".join(lines)

    def main(self, argv: Sequence[str] | None = None) -> int:
        """``python algos/NAME.py --env ID --seeds 4``: the same as ``jaxrl train NAME``."""
        from jaxrl_suite.run.command import algorithm_main

        return algorithm_main(self, argv)


def algorithm_spec(algorithm: Any) -> AlgorithmSpec:
    """The ``AlgorithmSpec`` of an algorithm module (its ``ALGORITHM``), or the spec itself."""
    if isinstance(algorithm, AlgorithmSpec):
        return algorithm
    spec = getattr(algorithm, "ALGORITHM", None)
    if not isinstance(spec, AlgorithmSpec):
        name = getattr(algorithm, "__name__", type(algorithm).__name__)
        raise TypeError(f"{name} is not an algorithm: an algorithm module declares ALGORITHM = "
                        f"AlgorithmSpec(...) (jaxrl_suite.run.algorithms).")
    return spec

ALGORITHMS: dict[str, tuple[str, str]] = {
    "ppo": ("jaxrl_suite.algos.ppo", "Proximal Policy Optimisation; discrete or continuous "
            "actions, optional GRU policy"),
    "dqn": ("jaxrl_suite.algos.dqn", "Deep Q-Network; double-Q, dueling, n-step, prioritised "
            "replay; discrete actions"),
    "sac": ("jaxrl_suite.algos.sac", "Soft Actor-Critic; twin critics as an ensemble, "
            "automatic entropy tuning; continuous or discrete actions"),
    "td3": ("jaxrl_suite.algos.td3", "Twin Delayed DDPG; target policy smoothing, delayed "
            "policy updates; continuous actions"),
    "ued": ("jaxrl_suite.algos.ued", "Unsupervised Environment Design on level envs: DR, PLR, "
            "robust PLR, ACCEL, PAIRED (--method); PPO student, held-out evaluation"),
    "bc": ("jaxrl_suite.algos.offline.bc", "Offline: behaviour cloning (MSE to the dataset's "
           "actions); the baseline"),
    "iql": ("jaxrl_suite.algos.offline.iql", "Offline: Implicit Q-Learning; expectile value, "
            "advantage-weighted policy"),
    "td3_bc": ("jaxrl_suite.algos.offline.td3_bc", "Offline: TD3+BC; TD3 with a behaviour-"
               "cloning term, normalised states"),
    "cql": ("jaxrl_suite.algos.offline.cql", "Offline: Conservative Q-Learning on SAC; "
            "pushes down out-of-data action values"),
    "rebrac": ("jaxrl_suite.algos.offline.rebrac", "Offline: ReBRAC; TD3+BC with BC in the "
               "critic target, layer norm, large batches"),
    "cmorl": ("jaxrl_suite.algos.morl.cmorl", "Multi-objective: C-MORL, a Pareto front by "
              "preference-vmapped PPO and constrained extension (IPO log-barrier) in one "
              "program"),
    "preference_set": ("jaxrl_suite.algos.morl.preference_set", "Multi-objective: PPO or SAC "
                       "vmapped over a preference weight set (--learner), or one "
                       "preference-conditioned agent (--conditioned)"),
    "envelope": ("jaxrl_suite.algos.morl.envelope", "Multi-objective: Envelope Q-learning, one "
                 "preference-conditioned vector Q-network for every linear preference; "
                 "discrete actions; writes the front"),
    "lpo": ("jaxrl_suite.meta.lpo", "Meta-learning: LPO / TA-LPO (--time-aware), a PPO drift "
            "objective discovered by evolution over whole PPO runs; train with it by "
            "`jaxrl train ppo --objective lpo --objective-params RUN_DIR`"),
    "open": ("jaxrl_suite.meta.open", "Meta-learning: OPEN, a learned per-parameter optimiser "
             "for PPO discovered by evolution over whole PPO runs; train with it by "
             "`jaxrl train ppo --optimizer-params RUN_DIR`"),
    "lpg": ("jaxrl_suite.meta.lpg", "Meta-learning: LPG, a learned policy-gradient objective "
            "meta-trained on level envs; GROOVE's curricula (--curriculum plr --score "
            "alg_regret); `jaxrl meta eval` tests it"),
}


def registered_algorithms() -> dict[str, str]:
    """``{name: one-line description}``, sorted by name."""
    return {name: ALGORITHMS[name][1] for name in sorted(ALGORITHMS)}


def load_algorithm(name: str) -> types.ModuleType:
    """The module of algorithm ``name``; an unknown name raises a ``ValueError`` listing them."""
    if name not in ALGORITHMS:
        close = difflib.get_close_matches(str(name).lower(), list(ALGORITHMS), n=3)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise ValueError(
            f"Unknown algorithm {name!r}.{hint} Available: {', '.join(sorted(ALGORITHMS))}."
        )
    return importlib.import_module(ALGORITHMS[name][0])
