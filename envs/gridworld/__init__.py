"""LPG's grid worlds: the task distribution of meta-learned RL objectives (meta/)."""

from jaxrl_suite.envs.gridworld.gridworld import (
    ACTIONS,
    DISTRIBUTIONS,
    GridLevel,
    GridWorld,
    GridWorldParams,
    GridWorldState,
    optimal_return,
    stack_levels,
)
from jaxrl_suite.envs.gridworld.named import (
    level_from_picture,
    load_level,
    named_level_env,
    named_level_info,
    named_level_names,
)
from jaxrl_suite.envs.gridworld.render import render_level, render_level_grid

__all__ = [
    "ACTIONS",
    "DISTRIBUTIONS",
    "GridLevel",
    "GridWorld",
    "GridWorldParams",
    "GridWorldState",
    "level_from_picture",
    "load_level",
    "named_level_env",
    "named_level_info",
    "named_level_names",
    "optimal_return",
    "render_level",
    "render_level_grid",
    "stack_levels",
]
