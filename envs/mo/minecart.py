"""Minecart: mine two ores and bring them home, spending as little fuel as possible
(3 objectives).

The environment of Abels et al., "Dynamic Weights in Multi-Objective Deep Reinforcement
Learning", ICML 2019, as MO-Gymnasium defines it (``mo_gymnasium/envs/minecart/minecart.py``
with ``mine_config_det.json``: ``minecart-deterministic-v0``; vector observation, frame skip 4,
incremental frame skip).

A cart moves in the unit square; home is the quarter disc of radius 0.15 around (0, 0), five
mines (disc radius 0.14) lie at the positions of ``MINE_POSITIONS``, each yielding per mining
frame the ore amounts of ``MINE_MEANS`` (the deterministic config: standard deviation 0; with
``params.mine_std > 0`` a frame yields ``max(0, N(mean, std))``, as ``minecart-v0`` with 0.05).
The cart holds at most 1.5 units of ore. It starts at home, at rest, facing 45 degrees.

Actions 0 mine, 1 turn left, 2 turn right, 3 accelerate, 4 brake, 5 do nothing. A step is 4
frames; each frame (units: position in the unit square, speed per frame, angles in degrees):

1. the action: turn by -10 / +10 degrees; accelerate (speed + 0.0075, at most 1); brake (speed
   0); mine (at a speed below 0.001, from the nearest mine if within 0.14: its yield, scaled
   down to the room left in the cart);
2. stop here if the episode ended at the previous frame (so the action of a step's remaining
   frame after the return home still turns or accelerates the cart, as in MO-Gymnasium);
3. the cart moves by ``speed * (cos, sin)(angle)``, clipped to the square; a cart sliding
   along a wall turns 10 degrees along it; its speed becomes the distance it moved;
4. within 0.15 of home: a cart that has left home before ends the episode and sells its
   content (reward ``[ore_1, ore_2]`` of the content, which is emptied); elsewhere it has left
   home.

Reward ``[ore_1, ore_2, fuel]``: the ore sold at this step, and the fuel of the step, -0.005
per frame idling, -0.025 more per frame accelerating, -0.05 more per frame mining (-0.02, -0.12,
-0.22 a step). MO-Gymnasium's ``TimeLimit`` truncates at 1000 steps. Observation, float32
``(7,)``: ``[x, y, speed, sin(angle), cos(angle), ore_1 / capacity, ore_2 / capacity]``.

Arithmetic is float32 (MO-Gymnasium's is float64): under ``jax_enable_x64`` with float64 state
the trajectories equal MO-Gymnasium's exactly; in float32 they agree to about 1e-5 until a cart
touches a wall at a position or speed that only rounding puts on one side of the wall test
(``y == 1``, ``|v| > 0.001``), after which the two may turn differently.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from jaxrl_suite.env import spaces
from jaxrl_suite.env.environment import EnvState, StepOutput
from jaxrl_suite.envs.mo.common import MOEnvironment, truncate_at_limit

__all__ = ["MINE_MEANS", "MINE_POSITIONS", "Minecart", "MinecartParams", "MinecartState"]

# MO-Gymnasium's mine_config_det.json: positions and per-frame yields (ore 1, ore 2).
MINE_POSITIONS = np.array([[0.16, 0.84], [0.5, 0.84], [0.84, 0.84], [0.84, 0.5], [0.84, 0.16]],
                          np.float32)
MINE_MEANS = np.array([[0.2, 0.0], [0.15, 0.1], [0.2, 0.2], [0.1, 0.15], [0.0, 0.2]],
                      np.float32)
FRAME_SKIP = 4
EPS_SPEED = 0.001  # below this speed the cart is at rest: it does not move and it may mine
ROTATION = 10.0  # degrees per frame of a turn
ACCELERATION = 0.0075  # speed gained per frame of acceleration
MAX_SPEED = 1.0
MINE_RADIUS = 0.14
BASE_RADIUS = 0.15
FUEL_IDLE, FUEL_ACC, FUEL_MINE = -0.005, -0.025, -0.05  # per frame
MINE, LEFT, RIGHT, ACCELERATE, BRAKE, NONE = range(6)


@struct.dataclass
class MinecartParams:
    """Attributes:
      mine_positions: float32 ``(mines, 2)``; mine_means, mine_std: float32 ``(mines, 2)``,
        each mine's yield per mining frame of each ore (std 0: deterministic).
      capacity: the most ore the cart holds (1.5).
      max_steps_in_episode: MO-Gymnasium's ``TimeLimit`` (1000 steps).
    """

    mine_positions: jax.Array = struct.field(default_factory=lambda: jnp.asarray(
        MINE_POSITIONS))
    mine_means: jax.Array = struct.field(default_factory=lambda: jnp.asarray(MINE_MEANS))
    mine_std: jax.Array = struct.field(default_factory=lambda: jnp.zeros_like(
        jnp.asarray(MINE_MEANS)))
    capacity: float = 1.5
    max_steps_in_episode: int = 1000


@struct.dataclass
class MinecartState(EnvState):
    position: jax.Array  # float32 (2,), in the unit square
    speed: jax.Array  # float32 (), distance per frame
    angle: jax.Array  # float32 (), degrees
    content: jax.Array  # float32 (2,), ore carried
    departed: jax.Array  # bool (): the cart has left home this episode


def _mine(key: jax.Array, state: MinecartState, params: MinecartParams) -> jax.Array:
    """The cart's content after one mining frame (unchanged unless at rest near a mine)."""
    distances = jnp.linalg.norm(params.mine_positions - state.position, axis=-1)
    nearest = jnp.argmin(distances)  # the first of equally near mines, as Python's min
    draw = params.mine_means[nearest] + params.mine_std[nearest] * jax.random.normal(key, (2,))
    mined = jnp.maximum(draw, 0.0)
    room = params.capacity - jnp.sum(state.content)
    total = jnp.sum(mined)
    mined = jnp.where(total > room, mined * room / jnp.where(total > 0, total, 1.0), mined)
    can_mine = (state.speed < EPS_SPEED) & (distances[nearest] <= MINE_RADIUS)
    return jnp.where(can_mine, state.content + mined, state.content)


def _move(state: MinecartState) -> MinecartState:
    """One frame of motion (module docstring, item 3)."""
    radians = state.angle * (jnp.pi / 180.0)
    vx, vy = state.speed * jnp.cos(radians), state.speed * jnp.sin(radians)
    x, y = state.position[0], state.position[1]
    # Against a wall and moving along it: turn 10 degrees along the wall (the velocity of this
    # frame is already set).
    along_y = (y != 0) & (y != 1) & (jnp.abs(vy) > EPS_SPEED)
    along_x = (x != 0) & (x != 1) & (jnp.abs(vx) > EPS_SPEED)
    turn = jnp.where(along_y & (x == 1) & (vx > 0), jnp.sign(vy) * ROTATION, 0.0)
    turn -= jnp.where(along_y & (x == 0) & (vx < 0), jnp.sign(vy) * ROTATION, 0.0)
    turn -= jnp.where(along_x & (y == 1) & (vy > 0), jnp.sign(vx) * ROTATION, 0.0)
    turn += jnp.where(along_x & (y == 0) & (vy < 0), jnp.sign(vx) * ROTATION, 0.0)
    position = jnp.clip(state.position + jnp.stack([vx, vy]), 0.0, 1.0)
    moved = state.replace(position=position, angle=state.angle + turn,
                          speed=jnp.linalg.norm(position - state.position))
    at_rest = state.speed < EPS_SPEED
    return jax.tree.map(lambda rest, move: jnp.where(at_rest, rest, move), state, moved)


def _frame(carry: tuple[MinecartState, jax.Array, jax.Array, jax.Array], key: jax.Array,
           action: jax.Array, params: MinecartParams):
    """One of a step's frames (module docstring). ``carry``: the state, whether the episode
    ended at an earlier frame, whether the frame loop has stopped, the ore sold so far."""
    state, ended, stopped, sold = carry
    turned = jnp.mod(state.angle + jnp.where(action == LEFT, -ROTATION,
                                             jnp.where(action == RIGHT, ROTATION, 0.0)), 360.0)
    speed = jnp.where(action == ACCELERATE, jnp.clip(state.speed + ACCELERATION, 0.0, MAX_SPEED),
                      jnp.where(action == BRAKE, 0.0, state.speed))
    content = jnp.where(action == MINE, _mine(key, state, params), state.content)
    acted = state.replace(angle=turned, speed=speed, content=content)
    stops_now = ended  # MO-Gymnasium breaks out of its frame loop after the action
    moved = _move(acted)
    at_home = jnp.linalg.norm(moved.position) < BASE_RADIUS
    arrives = at_home & moved.departed
    sold_now = jnp.where(arrives, moved.content, 0.0)
    moved = moved.replace(content=jnp.where(arrives, 0.0, moved.content),
                          departed=moved.departed | ~at_home)
    after = jax.tree.map(lambda a, m: jnp.where(stops_now, a, m), acted, moved)
    # A stopped loop changes nothing more.
    new_state = jax.tree.map(lambda old, new: jnp.where(stopped, old, new), state, after)
    active = ~stopped & ~stops_now
    return (new_state, ended | (active & arrives), stopped | stops_now,
            sold + jnp.where(active, sold_now, 0.0)), None


class Minecart(MOEnvironment):
    """Minecart with the deterministic mines (module docstring)."""

    num_objectives = 3
    objective_names = ("ore_1", "ore_2", "fuel")
    # morl-baselines' examples/pcn_minecart.py (minecart-deterministic-v0, gamma 1).
    reference_point_values = (0.0, 0.0, -200.0)
    reference_point_source = "morl-baselines examples/pcn_minecart.py"

    @property
    def name(self) -> str:
        return "minecart-deterministic"

    @property
    def default_params(self) -> MinecartParams:
        return MinecartParams()

    def observation_space(self, params: Any = None) -> spaces.Box:
        return spaces.Box(-1.0, 1.0, (7,), jnp.float32)

    def action_space(self, params: Any = None) -> spaces.Discrete:
        return spaces.Discrete(6)

    def reward_space(self, params: Any = None) -> spaces.Box:
        """Ore in [0, capacity] each; fuel from -0.22 (mining) to -0.02 (idling) a step."""
        capacity = float(np.asarray(self._concrete(params).capacity))
        low = np.array([0.0, 0.0, FRAME_SKIP * (FUEL_IDLE + FUEL_MINE)])
        high = np.array([capacity, capacity, FRAME_SKIP * FUEL_IDLE])
        return spaces.Box(low, high, (3,), jnp.float32)

    def _concrete(self, params: Any) -> MinecartParams:
        if params is None or any(isinstance(leaf, jax.core.Tracer)
                                 for leaf in jax.tree.leaves(params)):
            return self.default_params
        return params

    def reset_env(self, key: jax.Array, params: MinecartParams
                  ) -> tuple[jax.Array, MinecartState]:
        state = MinecartState(time=jnp.zeros((), jnp.int32), position=jnp.zeros(2, jnp.float32),
                              speed=jnp.zeros((), jnp.float32),
                              angle=jnp.asarray(45.0, jnp.float32),
                              content=jnp.zeros(2, jnp.float32), departed=jnp.asarray(False))
        return self._observe(state, params), state

    def step_env(self, key: jax.Array, state: MinecartState, action: Any,
                 params: MinecartParams) -> StepOutput:
        action = jnp.asarray(action, jnp.int32)
        false = jnp.asarray(False)
        carry = (state, false, false, jnp.zeros_like(state.content))
        (after, ended, _, sold), _ = jax.lax.scan(
            lambda c, k: _frame(c, k, action, params), carry, jax.random.split(key, FRAME_SKIP))
        fuel = FRAME_SKIP * (FUEL_IDLE + jnp.where(action == ACCELERATE, FUEL_ACC, 0.0)
                             + jnp.where(action == MINE, FUEL_MINE, 0.0))
        reward = jnp.concatenate([sold, fuel[None]]).astype(jnp.float32)
        next_state = after.replace(time=state.time + 1)
        truncated = truncate_at_limit(next_state.time, ended, params.max_steps_in_episode)
        return self._observe(next_state, params), next_state, reward, ended, truncated, {}

    def _observe(self, state: MinecartState, params: MinecartParams) -> jax.Array:
        radians = state.angle * (jnp.pi / 180.0)
        return jnp.concatenate([
            state.position, state.speed[None], jnp.sin(radians)[None], jnp.cos(radians)[None],
            state.content / params.capacity]).astype(jnp.float32)
