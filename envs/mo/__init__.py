"""Multi-objective environments (DESIGN.md section 5), MO-Gymnasium's as pure JAX.

Each returns a float32 reward vector of shape ``(num_objectives,)`` and exposes
``num_objectives``, ``reward_space(params)``, ``objective_names`` and ``reference_point``
(hypervolume). Known Pareto fronts ship as data: ``pareto_front(env_id_or_env, gamma=None)``.

| id | class | objectives |
|---|---|---|
| ``mo/deep-sea-treasure`` | ``DeepSeaTreasure("convex")`` | treasure, time |
| ``mo/deep-sea-treasure-concave`` | ``DeepSeaTreasure("concave")`` | treasure, time |
| ``mo/resource-gathering`` | ``ResourceGathering`` | death, gold, diamond |
| ``mo/four-room`` | ``FourRoom`` | three shape kinds |
| ``mo/fruit-tree-5``, ``-6``, ``-7`` | ``FruitTree(depth)`` | six nutrients |
| ``mo/minecart-deterministic`` | ``Minecart`` | ore 1, ore 2, fuel |
| ``mo/mountaincar`` | ``MOMountainCar`` | time, reverse, forward |
| ``mo/mountaincar-continuous`` | ``MOMountainCarContinuous`` | time, fuel |
"""

from jaxrl_suite.envs.mo.common import MOEnvironment
from jaxrl_suite.envs.mo.deep_sea_treasure import DeepSeaTreasure, DSTParams, DSTState
from jaxrl_suite.envs.mo.four_room import FourRoom, FourRoomParams, FourRoomState
from jaxrl_suite.envs.mo.fruit_tree import FruitTree, FruitTreeParams, FruitTreeState, fruits
from jaxrl_suite.envs.mo.minecart import Minecart, MinecartParams, MinecartState
from jaxrl_suite.envs.mo.mountain_car import (
    MOMountainCar,
    MOMountainCarContinuous,
    MountainCarContinuousParams,
    MountainCarParams,
    MountainCarState,
)
from jaxrl_suite.envs.mo.pareto import front_data, has_front, pareto_front, reference_point
from jaxrl_suite.envs.mo.resource_gathering import ResourceGathering, RGParams, RGState

__all__ = [
    "DSTParams",
    "DSTState",
    "DeepSeaTreasure",
    "FourRoom",
    "FourRoomParams",
    "FourRoomState",
    "FruitTree",
    "FruitTreeParams",
    "FruitTreeState",
    "MOEnvironment",
    "MOMountainCar",
    "MOMountainCarContinuous",
    "Minecart",
    "MinecartParams",
    "MinecartState",
    "MountainCarContinuousParams",
    "MountainCarParams",
    "MountainCarState",
    "RGParams",
    "RGState",
    "ResourceGathering",
    "front_data",
    "fruits",
    "has_front",
    "pareto_front",
    "reference_point",
]
