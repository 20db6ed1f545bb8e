"""Named held-out maze levels, shipped as text files in ``levels/`` (one character per cell,
the text form of ``level.py``), loadable by name.

The 13x13 levels are drawn for this project to the published descriptions of the DCD papers'
held-out mazes (same names, so results sit beside theirs). The larger perfect mazes were made
once by ``perfect_maze_level`` with a fixed key and saved, so they never change.
"""

from __future__ import annotations

import difflib
import functools
from importlib import resources

from jaxrl_suite.envs.maze.level import Level, level_from_text, stack_levels

__all__ = ["named_level_names", "load_level", "load_levels", "level_text"]


@functools.cache
def named_level_names() -> tuple[str, ...]:
    """Every named level, sorted."""
    folder = resources.files("jaxrl_suite.envs.maze").joinpath("levels")
    return tuple(sorted(
        entry.name[: -len(".txt")] for entry in folder.iterdir() if entry.name.endswith(".txt")
    ))


def level_text(name: str) -> str:
    """The text of a named level; an unknown name raises a ``ValueError`` listing the names."""
    names = named_level_names()
    if name not in names:
        close = difflib.get_close_matches(name, names, n=3, cutoff=0.4)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise ValueError(
            f"No maze level named {name!r}.{hint} Named levels: {', '.join(names)}."
        )
    folder = resources.files("jaxrl_suite.envs.maze").joinpath("levels")
    return folder.joinpath(f"{name}.txt").read_text()


@functools.cache
def load_level(name: str) -> Level:
    """The named level as a ``Level`` (its own size: 13x13 for the DCD mazes)."""
    return level_from_text(level_text(name), name=name)


def load_levels(names: tuple[str, ...] | list[str]) -> Level:
    """Several named levels of one size, stacked along a leading axis (for vmapped eval)."""
    return stack_levels([load_level(name) for name in names])
