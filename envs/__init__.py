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


GRIDWORLD_IDS = {
    "gridworld": ({}, "LPG's grid worlds: GROOVE's `all` distribution (side 4-10, 1-5 objects "
                  "of 5 types), tabular observation"),
    "gridworld-maps": ({"observation": "maps"}, "the `all` grid worlds with position and object "
                       "maps, objects placed at random"),
    "gridworld-small": ({"distribution": "small"}, "small grid worlds (side 4-6, 1-3 objects, "
                        "episodes up to 100 steps), tabular"),
    "gridworld-large": ({"distribution": "large"}, "large grid worlds (side 8-10, 2-5 objects, "
                        "episodes 250-750 steps), tabular"),
}
# The named reference levels, one id each (gridworld/dense, ...): levels/named_levels.json.
# MO-Gymnasium's multi-objective envs (envs/mo/): id -> (entry point, kwargs, description).
MO_IDS = {
    "mo/deep-sea-treasure": ("DeepSeaTreasure", {"map_name": "convex"},
                             "Deep Sea Treasure, convex map (deep-sea-treasure-v0): treasure, "
                             "time"),
    "mo/deep-sea-treasure-concave": ("DeepSeaTreasure", {"map_name": "concave"},
                                     "Deep Sea Treasure, concave map "
                                     "(deep-sea-treasure-concave-v0): treasure, time"),
    "mo/resource-gathering": ("ResourceGathering", {}, "Resource Gathering "
                              "(resource-gathering-v0): death by enemy, gold, diamond"),
    "mo/four-room": ("FourRoom", {}, "Four-Room (four-room-v0): three kinds of shapes to collect"),
    "mo/fruit-tree-5": ("FruitTree", {"depth": 5}, "Fruit Tree of depth 5: six nutrients"),
    "mo/fruit-tree-6": ("FruitTree", {"depth": 6}, "Fruit Tree of depth 6 (fruit-tree-v0): six "
                        "nutrients"),
    "mo/fruit-tree-7": ("FruitTree", {"depth": 7}, "Fruit Tree of depth 7: six nutrients"),
    "mo/minecart-deterministic": ("Minecart", {}, "Minecart, deterministic mines "
                                  "(minecart-deterministic-v0): ore 1, ore 2, fuel"),
    "mo/mountaincar": ("MOMountainCar", {}, "Mountain Car (mo-mountaincar-v0): time, reverse, "
                       "forward penalties"),
    "mo/mountaincar-continuous": ("MOMountainCarContinuous", {}, "Continuous Mountain Car "
                                  "(mo-mountaincarcontinuous-v0): time, fuel"),
}
GRIDWORLD_NAMED = ("dense", "sparse", "long", "longer", "long_dense", "rand_dense", "rand_long",
                   "rand_small", "rand_sparse", "rand_very_dense")


def _register_builtin_envs() -> None:
    for grid_id, (kwargs, description) in GRIDWORLD_IDS.items():
        register(grid_id, "jaxrl_suite.envs.gridworld:GridWorld", kwargs=kwargs,
                 description=description, overwrite=True,
                 render="jaxrl_suite.envs.gridworld.render:render_request")
    for name in GRIDWORLD_NAMED:
        register(f"gridworld/{name}", "jaxrl_suite.envs.gridworld:named_level_env",
                 kwargs={"name": name}, description=f"the named grid world {name!r}",
                 overwrite=True, render="jaxrl_suite.envs.gridworld.render:render_request")
    for mo_id, (entry, kwargs, description) in MO_IDS.items():
        register(mo_id, f"jaxrl_suite.envs.mo:{entry}", kwargs=kwargs, description=description,
                 overwrite=True)
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
