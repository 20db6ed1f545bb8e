"""MO-Brax: Brax locomotion with MO-Gymnasium's vector rewards, ids ``mo/brax-<task>``.

Each env is a Brax env run through the project's adapter (``envs/brax.py``, ``BraxEnv``: the
same observations, actions in ``[-1, 1]``, termination, truncation and physics params) whose
reward is the vector that MO-Gymnasium's ``mo-<task>-v5`` env computes, assembled from the
Brax pipeline states before and after the step and the action:

===========  =================  ====================================================  =========
task         MO-Gymnasium       objectives, per step                                  reference
===========  =================  ====================================================  =========
halfcheetah  mo-halfcheetah-v5  [vx, -|u|^2]                                          (-100,)*2
walker2d     mo-walker2d-v5     [vx, -|u|^2] + healthy                                none
swimmer      mo-swimmer-v5      [vx, -|u|^2]                                          none
humanoid     mo-humanoid-v5     [vx of the centre of mass, -|u|^2] + healthy          (-100,)*2
hopper       mo-hopper-v5       [vx, 10 * height gain, -|u|^2] + healthy              (-100,)*3
hopper-2obj  mo-hopper-2obj-v5  [vx, 10 * height gain] + healthy - 1e-3 |u|^2         (-100,)*2
ant          mo-ant-v5          [vx, vy, -|u|^2] + healthy                            (-100,)*3
ant-2obj     mo-ant-2obj-v5     [vx, vy] + healthy - 0.5 |u|^2                        (-100,)*2
===========  =================  ====================================================  =========

``vx``, ``vy`` are the torso's velocity (m/s, over the env's control step ``dt``), ``height
gain`` the torso's rise above its rest height (m), ``u`` the control Brax applies (the action,
mapped to the actuator range for humanoid) and ``|u|^2`` its sum of squares. ``healthy`` is
the Brax env's healthy reward on steps that end healthy and 0 on a step that ends unhealthy
(Gymnasium v5's rule; MO-Gymnasium adds it to every objective), judged by the Brax env's own
criteria, so it is 0 exactly where Brax's ``done`` is 1.

Where a term is also in Brax's reward it is computed the way Brax computes it, so it equals
Brax's metric: the velocity is the torso's world position difference over ``dt`` (swimmer:
the slider joints; humanoid: the centre of mass), and ``-|u|^2`` is Brax's ``reward_ctrl``
(humanoid: ``reward_quadctrl``) divided by its weight, which is how MO-Gymnasium removes
Gymnasium's weight. Differences from MO-Gymnasium that come from Brax:
Gymnasium measures the planar walkers' x position by the root slide joint (``qpos[0]``, the
same as the torso origin in Brax's models, whose root joints sit at the torso origin); Brax's
ant and humanoid compute no contact forces, so MO-Gymnasium's contact cost (added to every
objective) is 0 here; Brax's own scalar reward pays the healthy reward on the terminal step too
(Gymnasium v4's rule), the vector here does not; the healthy criteria are Brax's (e.g. the ant
has no finiteness check). Brax's scalar reward stays in ``info["brax_reward"]``.

Reference points (hypervolume) are the ones C-MORL and morl-baselines use, published for
MO-Gymnasium's v4 ids (``MO_BRAX_TASKS[task].reference_source`` names the file and the episode
length). v5 changed the healthy-reward rule and, for halfcheetah only, a term: v4's cost
objective is ``-0.1 |u|^2``, so the published ``(-100, -100)`` is kept as published, not
rescaled. None is published for walker2d and swimmer: PGMORL's ``(0, 0)`` belongs to its own
MO-Walker2d-v2 / MO-Swimmer-v2, whose objectives (speed and energy efficiency with alive
bonuses) are other functions, so ``reference_point`` is ``None`` there.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxrl_suite.env import spaces
from jaxrl_suite.env.environment import StepOutput
from jaxrl_suite.env.registry import register
from jaxrl_suite.envs.brax import DEFAULT_BACKEND, BraxEnv, BraxParams, BraxState

__all__ = [
    "MOBraxEnv",
    "MOBraxTask",
    "MO_BRAX_TASKS",
    "register_mo_brax",
    "torso_velocity",
    "slider_velocity",
    "center_of_mass",
    "control_energy",
    "humanoid_control",
    "torso_height_gain",
]

PREFIX = "mo/brax-"

# (brax_env, pipeline state before, pipeline state after, action (action_size,)) -> (k,)
Objectives = Callable[[Any, Any, Any, jax.Array], jax.Array]


# --- terms: pure functions of Brax pipeline states (brax.base.State or the MJX State) ----------
def torso_velocity(before: Any, after: Any, dt: float) -> jax.Array:
    """World-frame velocity of the torso (body 0) over one control step, ``(3,)`` in m/s.

    Brax's halfcheetah, hopper, walker2d and ant measure forward motion this way."""
    return (after.x.pos[0] - before.x.pos[0]) / dt


def slider_velocity(before: Any, after: Any, dt: float) -> jax.Array:
    """Velocity of swimmer's two root slider joints (x, y), ``(2,)`` in m/s, as Brax's
    swimmer (and Gymnasium's) measure it: by the joint positions ``q[:2]``."""
    return (after.q[:2] - before.q[:2]) / dt


def center_of_mass(sys: Any, state: Any) -> jax.Array:
    """The mass-weighted mean of the links' centres of mass, world frame, ``(3,)`` in m.

    Brax's humanoid (and Gymnasium's) measures forward motion by the whole body's centre of
    mass. Masses are the ``System``'s own (a ``mass_scale`` scales them all alike and leaves
    the centre where it is); Brax's spring/positional backends reweigh inertia, so the
    humanoid task refuses them (``MOBraxEnv``)."""
    inertia = sys.link.inertia
    link_centres = state.x.vmap().do(inertia.transform).pos  # (num_links, 3)
    return jnp.sum(inertia.mass[:, None] * link_centres, axis=0) / jnp.sum(inertia.mass)


def control_energy(control: jax.Array) -> jax.Array:
    """``sum(u ** 2)`` of one step's control ``u`` ``(action_size,)``: a scalar, in squared
    control units. The cost objectives are its negative."""
    return jnp.sum(jnp.square(control))


def humanoid_control(sys: Any, action: jax.Array) -> jax.Array:
    """The control Brax's humanoid applies for an action in ``[-1, 1]``: the action mapped
    linearly onto each actuator's ``ctrl_range`` (``[-0.4, 0.4]``), ``(action_size,)``.
    Gymnasium's humanoid takes that control as its action, and charges its cost on it."""
    low, high = sys.actuator.ctrl_range[:, 0], sys.actuator.ctrl_range[:, 1]
    return low + (action + 1.0) * (high - low) / 2.0


def torso_height_gain(sys: Any, state: Any) -> jax.Array:
    """How far the torso's vertical root joint has risen above its rest position,
    ``q[1] - init_q[1]``, a scalar in m (Gymnasium's ``z_distance_from_origin``)."""
    return state.q[1] - sys.init_q[1]


def _open_range(value: jax.Array, bounds: tuple[float, float]) -> jax.Array:
    low, high = bounds
    return (low < value) & (value < high)


# The Brax envs keep their reward settings in private attributes (brax 0.14.2): reading them
# instead of repeating the defaults keeps the terms right under changed Brax constructor options.
def _hopper_is_healthy(env: Any, state: Any) -> jax.Array:
    """Brax's hopper criteria: torso z, torso angle ``q[2]`` and every other coordinate and
    velocity inside the env's open ranges."""
    rest = jnp.concatenate([state.q[2:], state.qd])
    return (jnp.all(_open_range(rest, env._healthy_state_range))
            & _open_range(state.x.pos[0, 2], env._healthy_z_range)
            & _open_range(state.q[2], env._healthy_angle_range))


def _walker2d_is_healthy(env: Any, state: Any) -> jax.Array:
    """Brax's walker2d criteria: torso z and torso angle ``q[2]`` inside open ranges."""
    return (_open_range(state.x.pos[0, 2], env._healthy_z_range)
            & _open_range(state.q[2], env._healthy_angle_range))


def _torso_z_is_healthy(env: Any, state: Any) -> jax.Array:
    """Brax's ant and humanoid criterion: torso z inside the closed ``healthy_z_range``."""
    low, high = env._healthy_z_range
    z = state.x.pos[0, 2]
    return (low <= z) & (z <= high)


def _healthy_reward(env: Any, is_healthy: Callable[[Any, Any], jax.Array],
                    state: Any) -> jax.Array:
    """Gymnasium v5's survival term: the healthy reward where the step ends healthy, else 0."""
    return env._healthy_reward * is_healthy(env, state).astype(jnp.float32)


# --- objective vectors: (env, before, after, action) -> (k,) float32 ---------------------------
def _vector(terms: list[jax.Array], shared: jax.Array | float = 0.0) -> jax.Array:
    """The objectives ``(k,)``, with ``shared`` (healthy reward, folded-in costs) added to each
    objective, as MO-Gymnasium adds them rather than making them objectives of their own."""
    return (jnp.stack(terms) + shared).astype(jnp.float32)


def halfcheetah_objectives(env: Any, before: Any, after: Any, action: jax.Array) -> jax.Array:
    """``[x velocity (m/s), -|u|^2]``: mo-halfcheetah-v5."""
    return _vector([torso_velocity(before, after, env.dt)[0], -control_energy(action)])


def swimmer_objectives(env: Any, before: Any, after: Any, action: jax.Array) -> jax.Array:
    """``[x velocity (m/s), -|u|^2]``: mo-swimmer-v5."""
    return _vector([slider_velocity(before, after, env.dt)[0], -control_energy(action)])


def walker2d_objectives(env: Any, before: Any, after: Any, action: jax.Array) -> jax.Array:
    """``[x velocity (m/s), -|u|^2] + healthy``: mo-walker2d-v5."""
    healthy = _healthy_reward(env, _walker2d_is_healthy, after)
    return _vector([torso_velocity(before, after, env.dt)[0], -control_energy(action)], healthy)


def humanoid_objectives(env: Any, before: Any, after: Any, action: jax.Array) -> jax.Array:
    """``[centre-of-mass x velocity (m/s), -|u|^2] + healthy``: mo-humanoid-v5 (its contact
    cost, added to both, is 0: Brax computes no contact forces)."""
    velocity = (center_of_mass(env.sys, after) - center_of_mass(env.sys, before)) / env.dt
    energy = control_energy(humanoid_control(env.sys, action))
    return _vector([velocity[0], -energy], _healthy_reward(env, _torso_z_is_healthy, after))


def hopper_objectives(env: Any, before: Any, after: Any, action: jax.Array,
                      cost_objective: bool = True) -> jax.Array:
    """mo-hopper-v5: ``[x velocity (m/s), 10 * torso height gain (m), -|u|^2] + healthy``;
    without the cost objective (mo-hopper-2obj-v5) the first two, each with the weighted
    control cost ``-ctrl_cost_weight |u|^2`` (Brax's ``reward_ctrl``) and healthy added."""
    velocity = torso_velocity(before, after, env.dt)[0]
    height = 10.0 * torso_height_gain(env.sys, after)
    energy = control_energy(action)
    healthy = _healthy_reward(env, _hopper_is_healthy, after)
    if cost_objective:
        return _vector([velocity, height, -energy], healthy)
    return _vector([velocity, height], healthy - env._ctrl_cost_weight * energy)


def ant_objectives(env: Any, before: Any, after: Any, action: jax.Array,
                   cost_objective: bool = True) -> jax.Array:
    """mo-ant-v5: ``[x velocity, y velocity (m/s), -|u|^2] + healthy``; without the cost
    objective (mo-ant-2obj-v5) the two velocities, each with ``-ctrl_cost_weight |u|^2``
    (Brax's ``reward_ctrl``) and healthy added. The contact cost MO-Gymnasium adds is 0
    (Brax's ant computes none: its ``reward_contact`` metric is 0)."""
    velocity = torso_velocity(before, after, env.dt)
    energy = control_energy(action)
    healthy = _healthy_reward(env, _torso_z_is_healthy, after)
    if cost_objective:
        return _vector([velocity[0], velocity[1], -energy], healthy)
    return _vector([velocity[0], velocity[1]], healthy - env._ctrl_cost_weight * energy)


# --- the tasks ---------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class MOBraxTask:
    """One MO-Brax env: which Brax env, how its objective vector is made, its reference point.

    Attributes:
      brax_name: the Brax env (``brax.envs`` name).
      mo_gymnasium_id: the MO-Gymnasium env whose reward vector this is.
      objectives: ``(brax_env, before, after, action) -> (k,)`` float32.
      objective_names: ``k`` short names, in order.
      cost_index: the objective that is ``-|u|^2`` (plus healthy, if ``healthy``), or None.
        It is bounded above (``reward_space``); every other objective is unbounded.
      healthy: whether the healthy reward is added to every objective.
      reference_point: the published hypervolume reference point ``(k,)``, or None.
      reference_source: where it is published, or why there is none.
    """

    brax_name: str
    mo_gymnasium_id: str
    objectives: Objectives
    objective_names: tuple[str, ...]
    cost_index: int | None
    healthy: bool
    reference_point: tuple[float, ...] | None
    reference_source: str

    @property
    def num_objectives(self) -> int:
        return len(self.objective_names)


_NO_REFERENCE = ("none published for MO-Gymnasium's {env} objectives (C-MORL, morl-baselines); "
                 "PGMORL's (0, 0) is for its own MO-{Env}-v2, a different reward")

MO_BRAX_TASKS: dict[str, MOBraxTask] = {
    "halfcheetah": MOBraxTask(
        "halfcheetah", "mo-halfcheetah-v5", halfcheetah_objectives,
        ("x_velocity", "neg_control_cost"), cost_index=1, healthy=False,
        reference_point=(-100.0, -100.0),
        reference_source="morl-baselines examples/pgmorl_halfcheetah.py and "
                         "examples/morld_cheetah.py (mo-halfcheetah-v4, 1000-step episodes; "
                         "v4's cost objective is -0.1 |u|^2, a tenth of this one)"),
    "walker2d": MOBraxTask(
        "walker2d", "mo-walker2d-v5", walker2d_objectives,
        ("x_velocity", "neg_control_cost"), cost_index=1, healthy=True,
        reference_point=None,
        reference_source=_NO_REFERENCE.format(env="walker2d", Env="Walker2d")),
    "swimmer": MOBraxTask(
        "swimmer", "mo-swimmer-v5", swimmer_objectives,
        ("x_velocity", "neg_control_cost"), cost_index=1, healthy=False,
        reference_point=None,
        reference_source=_NO_REFERENCE.format(env="swimmer", Env="Swimmer")),
    "humanoid": MOBraxTask(
        "humanoid", "mo-humanoid-v5", humanoid_objectives,
        ("x_velocity", "neg_control_cost"), cost_index=1, healthy=True,
        reference_point=(-100.0, -100.0),
        reference_source="C-MORL scripts/humanoid-v2.py (mo-humanoid-v4, 500-step episodes)"),
    "hopper": MOBraxTask(
        "hopper", "mo-hopper-v5", hopper_objectives,
        ("x_velocity", "height", "neg_control_cost"), cost_index=2, healthy=True,
        reference_point=(-100.0, -100.0, -100.0),
        reference_source="C-MORL scripts/hopper-3d.py (mo-hopper-v4 with its cost objective, "
                         "500-step episodes); morl-baselines examples/morld_hopper.py "
                         "(1000 steps)"),
    "hopper-2obj": MOBraxTask(
        "hopper", "mo-hopper-2obj-v5",
        functools.partial(hopper_objectives, cost_objective=False),
        ("x_velocity", "height"), cost_index=None, healthy=True,
        reference_point=(-100.0, -100.0),
        reference_source="C-MORL scripts/hopper-2d.py (mo-hopper-2d-v4, 500-step episodes); "
                         "morl-baselines examples/gpi_pd_hopper.py (500 steps)"),
    "ant": MOBraxTask(
        "ant", "mo-ant-v5", ant_objectives,
        ("x_velocity", "y_velocity", "neg_control_cost"), cost_index=2, healthy=True,
        reference_point=(-100.0, -100.0, -100.0),
        reference_source="C-MORL scripts/ant-3d.py (mo-ant-v4 with its cost objective, "
                         "500-step episodes)"),
    "ant-2obj": MOBraxTask(
        "ant", "mo-ant-2obj-v5", functools.partial(ant_objectives, cost_objective=False),
        ("x_velocity", "y_velocity"), cost_index=None, healthy=True,
        reference_point=(-100.0, -100.0),
        reference_source="C-MORL scripts/ant-2d.py (mo-ant-2d-v4, 500-step episodes)"),
}


class MOBraxEnv(BraxEnv):
    """A Brax locomotion env whose reward is MO-Gymnasium's objective vector.

    Everything but the reward is ``BraxEnv``'s (observations, actions in ``[-1, 1]``, Brax's
    ``done`` as ``terminated``, ``BraxParams``' episode length and physics scales).
    ``step`` returns the reward ``(num_objectives,)`` float32 and keeps Brax's metrics in
    ``info`` with Brax's scalar reward as ``info["brax_reward"]``.

    Attributes:
      task: the key in ``MO_BRAX_TASKS`` (``"hopper-2obj"``, ...).
      num_objectives: ``k``.
      objective_names: the objectives' names, ``k`` strings.
      reference_point: the published hypervolume reference point, ``(k,)`` float32, or None.
    """

    def __init__(self, task: str, backend: str = DEFAULT_BACKEND, **brax_kwargs: Any):
        if task not in MO_BRAX_TASKS:
            raise ValueError(f"No MO-Brax task {task!r}; the tasks are: "
                             f"{', '.join(MO_BRAX_TASKS)}.")
        spec = MO_BRAX_TASKS[task]
        if spec.brax_name == "humanoid" and backend in ("spring", "positional"):
            raise ValueError(f"mo/brax-{task}: the {backend} backend reweighs the humanoid's "
                             f"inertia for its centre of mass, which center_of_mass does not "
                             f"follow; use 'generalized' or 'mjx'.")
        super().__init__(spec.brax_name, backend=backend, **brax_kwargs)
        self.task, self.task_spec = task, spec
        self.num_objectives = spec.num_objectives
        self.objective_names = spec.objective_names
        self.reference_point = (None if spec.reference_point is None
                                else np.asarray(spec.reference_point, np.float32))
        self._reward_space = spaces.Box(-np.inf, self._reward_upper_bounds(),
                                        (spec.num_objectives,), jnp.float32)

    def _reward_upper_bounds(self) -> np.ndarray:
        """``(k,)``: inf, but the cost objective ``-|u|^2 (+ healthy)`` is at most 0 (or the
        healthy reward, when that is added and positive)."""
        high = np.full(self.task_spec.num_objectives, np.inf)
        if self.task_spec.cost_index is not None:
            healthy = self.brax_env._healthy_reward if self.task_spec.healthy else 0.0
            high[self.task_spec.cost_index] = max(0.0, float(healthy))
        return high

    @property
    def name(self) -> str:
        return ("mo/mjx-" if self.backend == "mjx" else PREFIX) + self.task

    def reward_space(self, params: BraxParams | None = None) -> spaces.Box:
        """``Box((k,))``: unbounded but for the cost objective's upper bound."""
        return self._reward_space

    def step_env(
        self, key: jax.Array, state: BraxState, action: jax.Array, params: BraxParams
    ) -> StepOutput:
        obs, new_state, brax_reward, terminated, truncated, info = super().step_env(
            key, state, action, params)
        # The physics-scaled env (the same object when no scale is set): its sys gives the
        # masses and rest pose the terms read, its dt the control step.
        brax_env = self.brax_env_under(params)
        reward = self.task_spec.objectives(brax_env, state.brax_state.pipeline_state,
                                      new_state.brax_state.pipeline_state,
                                      jnp.asarray(action, jnp.float32))
        return obs, new_state, reward, terminated, truncated, {**info, "brax_reward": brax_reward}


def register_mo_brax() -> None:
    """Register ``mo/brax-<task>`` for every task of ``MO_BRAX_TASKS`` with the core registry
    (string entry points: nothing is imported until an env is made). Idempotent."""
    for task, spec in MO_BRAX_TASKS.items():
        register(
            PREFIX + task,
            "jaxrl_suite.envs.mo.brax:MOBraxEnv",
            kwargs={"task": task},
            description=f"Brax {spec.brax_name} with {spec.mo_gymnasium_id}'s "
                        f"{spec.num_objectives} objectives ({', '.join(spec.objective_names)})",
            overwrite=True,
        )
