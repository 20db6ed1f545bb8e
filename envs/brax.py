"""Adapter: Brax environments as ``brax/<name>`` (default backend) and ``mjx/<name>`` (MJX).

Brax envs have no params pytree and leave the episode limit to a training wrapper; here the
episode length is a field of ``BraxParams`` (changeable without recompiling) and hitting it is
reported as ``truncated``, while Brax's own ``done`` (an unhealthy robot) is ``terminated``.
Brax is deterministic given the reset key, so ``step`` ignores its key.
Actions are in ``[-1, 1]^action_size`` (Brax envs scale them to actuator ranges themselves).

Physics is in the params too: ``BraxParams``' scales (mass, friction, gravity, actuator
strength; ``None``: as Brax ships the model) rebuild the Brax ``System`` inside the traced
``reset``/``step``, so ``ParamLevels(env, {"mass_scale": (0.5, 2.0)})`` gives domain
randomisation and UED over Brax dynamics, each env of a vmapped batch with its own physics.
"""

from __future__ import annotations

import copy
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from jaxrl_suite.env import spaces
from jaxrl_suite.env.environment import Environment, StepOutput

__all__ = [
    "BraxEnv",
    "BraxParams",
    "BraxState",
    "BRAX_ENV_NAMES",
    "MJX_ENV_NAMES",
    "PHYSICS_SCALES",
    "scale_physics",
]

# brax.envs' registry, kept here so registering the ids does not import Brax (slow) and so a
# Brax release that adds or removes envs fails tests/test_brax_adapter.py instead of going
# unnoticed. 'fast' is Brax's physics-free test env (no backend) and 'swimmer' supports only the
# generalized backend (Brax raises for any other), so neither has an mjx/ id.
BRAX_ENV_NAMES = (
    "ant",
    "fast",
    "halfcheetah",
    "hopper",
    "humanoid",
    "humanoidstandup",
    "inverted_double_pendulum",
    "inverted_pendulum",
    "pusher",
    "reacher",
    "swimmer",
    "walker2d",
)
MJX_ENV_NAMES = tuple(name for name in BRAX_ENV_NAMES if name not in ("fast", "swimmer"))

DEFAULT_BACKEND = "generalized"  # Brax's own default for get_environment


@struct.dataclass
class BraxParams:
    """Episode length and physics scales of a Brax env (changeable without recompiling).

    A scale multiplies values of the Brax ``System`` as loaded and is applied for every backend
    (Brax's own ``System`` fields and the MJX ``Model`` fields it extends); it must be > 0.
    ``None`` (the default) leaves that part of the model as loaded, like 1.0, but compiles
    without it: a physics value that is an input of the program instead of a constant makes
    XLA fold less (measured on brax/inverted_pendulum: 117 -> 143 kernels, +15-25% compile
    time, even for gravity alone). So an env compiles only the scaling of what is set, e.g. the
    fields ``ParamLevels`` samples. Setting a scale that was ``None`` (or back) changes the
    params' pytree structure, which compiles once more; changing its value does not. Set
    scales are float32 scalars (``ParamLevels`` samples float32).

    Attributes:
      max_steps_in_episode: steps after which an episode is truncated.
      mass_scale: multiplies every body's mass and rotational inertia (each body keeps its
        shape and mass distribution) and divides the inverse weights the constraint solvers
        derive from them, as loading the scaled model would. Joint armature (rotor inertia)
        belongs to the motors, not the bodies, and is kept.
      friction_scale: multiplies every geom's (and explicit contact pair's) friction
        coefficients: sliding, torsional and rolling. Does nothing in envs without contacts
        (inverted_pendulum).
      gravity_scale: multiplies the gravity vector.
      actuator_strength_scale: multiplies each actuator's force before its force limit (the
        gain on the control and the position/velocity bias terms): motors push that much
        harder, position servos are that much stiffer about the same set point.
    """

    max_steps_in_episode: int = 1000
    mass_scale: float | None = None
    friction_scale: float | None = None
    gravity_scale: float | None = None
    actuator_strength_scale: float | None = None


PHYSICS_SCALES = ("mass_scale", "friction_scale", "gravity_scale", "actuator_strength_scale")


@struct.dataclass
class BraxState:
    brax_state: Any  # brax.envs.State
    time: jax.Array  # steps taken in this episode, int32


class _NumpyWithLegacyClip:
    """``jax.numpy`` whose ``clip`` still takes ``a_min``/``a_max``.

    brax 0.14.2's ``fluid.py`` (the viscosity used by ``swimmer``) calls
    ``jnp.clip(x, a_min=...)``; JAX 0.10 removed those keywords, so swimmer fails to trace.
    The adapter hands that one module this shim instead of ``jax.numpy``.
    """

    def __getattr__(self, name: str) -> Any:
        return getattr(jnp, name)

    @staticmethod
    def clip(x: Any, a_min: Any = None, a_max: Any = None, **kwargs: Any) -> jax.Array:
        return jnp.clip(x, kwargs.pop("min", a_min), kwargs.pop("max", a_max), **kwargs)


def _patch_brax_for_current_jax() -> None:
    import inspect

    from brax import fluid

    if "a_min" not in inspect.signature(jnp.clip).parameters and fluid.jp is jnp:
        fluid.jp = _NumpyWithLegacyClip()


def scale_physics(sys: Any, params: BraxParams) -> Any:
    """``sys`` (a ``brax.System``) with the physics scales of ``params`` that are set applied.

    Pure ``jnp`` on the ``System``'s arrays, so it traces under ``jit`` and ``vmap`` (a batch of
    params gives a batch of systems). Brax's own fields (``link``, ``dof``, ``actuator``,
    ``gravity``: read by the ``generalized``, ``positional`` and ``spring`` backends) and the
    MJX ``Model`` fields (``body_*``, ``*_invweight0``, ``actuator_*prm``, ``opt.gravity``: read
    by the ``mjx`` backend; ``geom_friction``/``pair_friction``: by the collision detection of
    every backend) are scaled together, so the scales mean the same on every backend.
    """
    changes: dict[str, Any] = {}
    if params.mass_scale is not None:
        mass = jnp.asarray(params.mass_scale, jnp.float32)
        inertia = sys.link.inertia.replace(
            mass=sys.link.inertia.mass * mass, i=sys.link.inertia.i * mass
        )
        changes.update(
            link=sys.link.replace(inertia=inertia, invweight=sys.link.invweight / mass),
            dof=sys.dof.replace(invweight=sys.dof.invweight / mass),
            body_mass=sys.body_mass * mass,
            body_subtreemass=sys.body_subtreemass * mass,
            body_inertia=sys.body_inertia * mass,
            body_invweight0=sys.body_invweight0 / mass,
            dof_invweight0=sys.dof_invweight0 / mass,
            tendon_invweight0=sys.tendon_invweight0 / mass,
        )
    if params.friction_scale is not None:
        friction = jnp.asarray(params.friction_scale, jnp.float32)
        changes.update(
            geom_friction=sys.geom_friction * friction,
            pair_friction=sys.pair_friction * friction,
        )
    if params.gravity_scale is not None:
        gravity = jnp.asarray(params.gravity_scale, jnp.float32)
        changes.update(
            gravity=sys.gravity * gravity,
            opt=sys.opt.replace(gravity=sys.opt.gravity * gravity),
        )
    if params.actuator_strength_scale is not None:
        strength = jnp.asarray(params.actuator_strength_scale, jnp.float32)
        actuator = sys.actuator.replace(
            gain=sys.actuator.gain * strength,
            bias_q=sys.actuator.bias_q * strength,
            bias_qd=sys.actuator.bias_qd * strength,
        )
        # MuJoCo's force is gainprm[0] * ctrl + biasprm[0] + biasprm[1] * length
        # + biasprm[2] * velocity (Brax's loader accepts only fixed gains); the later columns
        # parameterise other gain and bias types.
        changes.update(
            actuator=actuator,
            actuator_gainprm=sys.actuator_gainprm.at[:, :3].multiply(strength),
            actuator_biasprm=sys.actuator_biasprm.at[:, :3].multiply(strength),
        )
    return sys.replace(**changes)


class BraxEnv(Environment):
    """A Brax ``PipelineEnv`` under the project's API."""

    def __init__(self, brax_name: str, backend: str = DEFAULT_BACKEND, **brax_kwargs: Any):
        from brax import envs as brax_envs

        _patch_brax_for_current_jax()

        if brax_name not in brax_envs._envs:
            raise ValueError(
                f"Brax has no env {brax_name!r}; it has: {', '.join(sorted(brax_envs._envs))}."
            )
        if brax_name != "fast":
            brax_kwargs["backend"] = backend
        self.brax_name, self.backend = brax_name, backend
        self.brax_env = brax_envs.get_environment(brax_name, **brax_kwargs)
        # Brax's own `observation_size` runs an eager reset (hundreds of op-by-op compilations,
        # 15-35 s on a CPU); abstract evaluation gives the same shape without running anything.
        obs_shape = jax.eval_shape(self.brax_env.reset, jax.random.key(0)).obs.shape
        self._obs_space = spaces.Box(-jnp.inf, jnp.inf, obs_shape, jnp.float32)
        self._action_space = spaces.Box(-1.0, 1.0, (self.brax_env.action_size,), jnp.float32)

    @property
    def name(self) -> str:
        prefix = "mjx/" if self.backend == "mjx" and self.brax_name in MJX_ENV_NAMES else "brax/"
        return prefix + self.brax_name

    @property
    def default_params(self) -> BraxParams:
        return BraxParams()

    def observation_space(self, params: Any = None) -> spaces.Box:
        return self._obs_space

    def action_space(self, params: Any = None) -> spaces.Box:
        return self._action_space

    def brax_env_under(self, params: BraxParams) -> Any:
        """The Brax env with its ``System`` scaled by ``params`` (to call inside a trace).

        With no scale set this is ``self.brax_env`` itself, so default params compile the same
        program as an env without scales. Otherwise a shallow copy whose ``sys`` is replaced
        (Brax's ``DomainRandomizationVmapWrapper`` swaps ``sys`` the same way), leaving
        ``self.brax_env`` unchanged.
        """
        scales_set = [name for name in PHYSICS_SCALES if getattr(params, name) is not None]
        if not scales_set:
            return self.brax_env
        if not hasattr(self.brax_env, "sys"):
            raise ValueError(
                f"{self.name} has no physics (no Brax System), so its params' "
                f"{', '.join(scales_set)} would do nothing; leave them None."
            )
        scaled = copy.copy(self.brax_env)
        scaled.sys = scale_physics(self.brax_env.sys, params)
        return scaled

    def reset_env(self, key: jax.Array, params: BraxParams) -> tuple[jax.Array, BraxState]:
        # Reset under the scaled system too: the physics state caches mass-dependent terms
        # (generalized: the inverse mass matrix; MJX: forward dynamics) computed from `sys`.
        brax_state = self.brax_env_under(params).reset(key)
        return brax_state.obs, BraxState(brax_state, jnp.zeros((), jnp.int32))

    def step_env(
        self, key: jax.Array, state: BraxState, action: jax.Array, params: BraxParams
    ) -> StepOutput:
        del key  # Brax dynamics are deterministic
        # Brax's step updates the metrics dict of the state it is given in place: a copy keeps
        # the caller's state unchanged (under a trace, a changed input would leak tracers).
        given = state.brax_state.replace(metrics=dict(state.brax_state.metrics))
        brax_state = self.brax_env_under(params).step(given, action)
        time = state.time + 1
        terminated = brax_state.done > 0.5
        truncated = jnp.logical_and(time >= params.max_steps_in_episode, ~terminated)
        info = {name: value for name, value in brax_state.metrics.items()}
        return (
            brax_state.obs,
            BraxState(brax_state, time),
            jnp.asarray(brax_state.reward, jnp.float32),
            terminated,
            truncated,
            info,
        )
