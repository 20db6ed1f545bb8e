"""Environments: the project's own and adapters (``gymnax/``, ``brax/``, ``mjx/``).

Importing this package registers every built-in id with the core registry. Entry points are
strings, so nothing heavy (Brax, MuJoCo) is imported until an env is made.
"""

from jaxrl_suite.env.registry import register
from jaxrl_suite.envs.brax import BRAX_ENV_NAMES, MJX_ENV_NAMES
from jaxrl_suite.envs.gymnax import PREFIX as _GYMNAX_PREFIX
from jaxrl_suite.envs.gymnax import gymnax_env_ids

MAZE_IDS = {
    "maze": ({}, "13x13 maze, 25 random walls, 5x5 egocentric view (JaxUED / DCD papers)"),
    "maze-full": ({"observation": "full"}, "13x13 maze, random walls, full-grid observation"),
    "maze-rooms": ({"generator": "empty_rooms"}, "13x13 maze of sixteen empty rooms with doors"),
    "maze-perfect": ({"generator": "perfect_maze"}, "13x13 perfect maze (one path between cells)"),
}


def _register_builtin_envs() -> None:
    for maze_id, (kwargs, description) in MAZE_IDS.items():
        register(maze_id, "jaxrl_suite.envs.maze:Maze", kwargs=kwargs, description=description,
                 overwrite=True, render="jaxrl_suite.envs.maze.render:render_request")
    register("maze-editor", "jaxrl_suite.envs.maze:make_editor",
             description="PAIRED's editor for the 13x13 maze: 25 walls, then goal, then agent",
             overwrite=True)
    for gymnax_id in gymnax_env_ids():
        register(
            _GYMNAX_PREFIX + gymnax_id,
            "jaxrl_suite.envs.gymnax:GymnaxEnv",
            kwargs={"gymnax_id": gymnax_id},
            description=f"gymnax {gymnax_id}",
            overwrite=True,
        )
    for name in BRAX_ENV_NAMES:
        register(
            f"brax/{name}",
            "jaxrl_suite.envs.brax:BraxEnv",
            kwargs={"brax_name": name},
            description=f"Brax {name}, default (generalized) backend",
            overwrite=True,
        )
    for name in MJX_ENV_NAMES:
        register(
            f"mjx/{name}",
            "jaxrl_suite.envs.brax:BraxEnv",
            kwargs={"brax_name": name, "backend": "mjx"},
            description=f"Brax {name} on the MJX backend",
            overwrite=True,
        )


_register_builtin_envs()
