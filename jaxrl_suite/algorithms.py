"""The algorithm registry: names for ``jaxrl train NAME`` and ``jaxrl algos``.

Each entry is a module in ``jaxrl_suite.algos`` exposing ``NAME``, ``Config``, ``make_train``,
``preset_config`` and ``main`` (DESIGN.md section 6); modules are imported only when used.
"""

from __future__ import annotations

import difflib
import importlib
import types

__all__ = ["ALGORITHMS", "load_algorithm", "registered_algorithms"]

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
