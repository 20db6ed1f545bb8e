"""The functional environment API (DESIGN.md section 2), gymnax-compatible.

An environment is a Python object holding only static configuration; everything that changes
lives in two pytrees passed in and out of pure functions:

* ``params`` (``EnvParams``): what a user may vary without recompiling (physics constants,
  episode length, reward weights). ``params=None`` means ``env.default_params``.
* ``state``: the environment's dynamic state.

``reset(key, params) -> (obs, state)`` and
``step(key, state, action, params) -> (obs, state, reward, terminated, truncated, info)``
are jit/vmap/scan-able. ``step`` does **not** reset: auto-reset is the ``AutoReset`` wrapper.
``terminated`` (the MDP ended; do not bootstrap) and ``truncated`` (a time limit cut the episode;
bootstrap from the final observation) are separate scalar booleans; at most one of them is true.

Subclasses implement ``reset_env`` and ``step_env``; the public ``reset``/``step`` resolve the
params and check the inputs in Python, before tracing, so bad input fails early and clearly.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from jaxrl_suite.env import spaces
from jaxrl_suite.env.spaces import check_key

__all__ = ["Environment", "EnvParams", "EnvState", "check_key"]


@struct.dataclass
class EnvParams:
    """Base params: every episodic env has an episode length a user may change."""

    max_steps_in_episode: int = 1000


@struct.dataclass
class EnvState:
    """Base state: the number of steps taken in the current episode."""

    time: jax.Array


State = TypeVar("State")
Params = TypeVar("Params")

Obs = Any
StepOutput = tuple[Any, Any, jax.Array, jax.Array, jax.Array, dict[str, Any]]


def _describe_integers(space: spaces.Space) -> str:
    if isinstance(space, spaces.Discrete):
        return f"integers 0..{space.n - 1}"
    return f"integer vectors with 0 <= action[i] < {space.nvec.tolist()}[i]"


def _integers_in_range(action: Any, space: spaces.Space) -> bool:
    """Whether a concrete integer ``action`` lies in a ``Discrete``/``MultiDiscrete`` range.

    NumPy, not ``space.contains``: inside a trace (``jit``, ``scan``, ``vmap``) jnp ops on even
    a Python literal give tracers, and ``bool()`` of a tracer raises, where gymnax accepts the
    literal action.
    """
    upper = space.n if isinstance(space, spaces.Discrete) else space.nvec
    value = np.asarray(action)
    return bool(np.all((value >= 0) & (value < upper)))


def _structure(state: Any) -> tuple[str, ...]:
    """A state's field paths (``.env_state.x``, ...): what tells two envs' states apart when
    their pytree structures alone compare equal (gymnax's per-env ``EnvState`` classes do)."""
    return tuple(jax.tree_util.keystr(path)
                 for path, _ in jax.tree_util.tree_flatten_with_path(state)[0])


class Environment(Generic[State, Params]):
    """Base class of every environment and wrapper."""

    # --- to implement -------------------------------------------------------------------------
    @property
    def default_params(self) -> Params:
        return EnvParams()  # type: ignore[return-value]

    def reset_env(self, key: jax.Array, params: Params) -> tuple[Obs, State]:
        raise NotImplementedError

    def step_env(self, key: jax.Array, state: State, action: Any, params: Params) -> StepOutput:
        raise NotImplementedError

    def observation_space(self, params: Params | None = None) -> spaces.Space:
        """The observation space under ``params`` (``None``: the default params)."""
        raise NotImplementedError

    def action_space(self, params: Params | None = None) -> spaces.Space:
        raise NotImplementedError

    def state_space(self, params: Params | None = None) -> spaces.Space:
        """The space of the env's state, where the env declares one (gymnax's envs do; the
        gymnax adapter reports theirs). gymnax's ``Environment`` has the method, so code written
        for gymnax finds it here too."""
        raise NotImplementedError(f"{self.name} declares no state space.")

    @property
    def name(self) -> str:
        return type(self).__name__

    # --- public API -----------------------------------------------------------------------------
    def reset(self, key: jax.Array, params: Params | None = None) -> tuple[Obs, State]:
        """Start an episode. Returns ``(observation, state)``."""
        check_key(key, f"{self.name}.reset")
        observation, state = self.reset_env(key, self.resolve_params(params))
        try:  # remembered so that step() can refuse another env's state in plain words
            object.__setattr__(self, "_state_structure", _structure(state))
        except (AttributeError, TypeError):  # an env with __slots__: no check
            pass
        return observation, state

    def step(
        self, key: jax.Array, state: State, action: Any, params: Params | None = None
    ) -> StepOutput:
        """Advance one step. Returns ``(obs, state, reward, terminated, truncated, info)``.

        ``reward`` is a float32 scalar (a vector for multi-objective envs), ``terminated`` and
        ``truncated`` are bool scalars. Does not reset; see ``AutoReset``.
        """
        check_key(key, f"{self.name}.step")
        params = self.resolve_params(params)
        self.check_state(state)
        self.check_action(action)
        return self.step_env(key, state, action, params)

    def check_state(self, state: Any) -> None:
        """Refuse a state of another type than this env's ``reset`` returned (another env's,
        or one from a different wrapper stack), which would otherwise fail deep inside the
        env with an ``AttributeError``."""
        expected = self.__dict__.get("_state_structure")
        if expected is None:
            return
        structure = _structure(state)
        if structure != expected:
            missing = next((path for path in expected if path not in structure), None)
            raise TypeError(
                f"{self.name}.step: the state does not have the fields {self.name}.reset gives "
                f"(a {type(state).__qualname__} without state{missing}); a state from another "
                f"env, or from the same env under other wrappers, does not fit.")

    @property
    def num_actions(self) -> int:
        """Number of actions of a ``Discrete`` action space."""
        space = self.action_space()
        if not isinstance(space, spaces.Discrete):
            raise AttributeError(
                f"{self.name} has a {type(space).__name__} action space; num_actions is defined "
                f"only for Discrete action spaces."
            )
        return space.n

    @property
    def unwrapped(self) -> Environment:
        return self

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"

    # --- input checks (Python, before tracing) --------------------------------------------------
    def resolve_params(self, params: Params | None) -> Params:
        """``None`` becomes the default params; a params pytree of the wrong type is refused."""
        default = self.default_params
        if params is None:
            return default
        if not isinstance(params, type(default)):
            raise TypeError(
                f"{self.name}: params must be a {type(default).__module__}."
                f"{type(default).__qualname__} (the type of env.default_params); got "
                f"{type(params).__qualname__}. Start from env.default_params and change fields "
                f"with .replace(...)."
            )
        if not any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree.leaves(params)):
            self.check_params(params)
        return params

    def check_params(self, params: Params) -> None:
        """Refuse concrete params this env cannot honour (an env overrides it; ``make`` and
        ``reset``/``step`` call it on params that are not traced). Default: no rule."""

    def check_action(self, action: Any) -> None:
        """Refuse an action that cannot belong to the action space.

        Shape and dtype kind are checked always (they are static under ``jit``); integer range
        is checked for discrete spaces when the action is a concrete value. Continuous actions
        outside a ``Box`` are left to the env (most clip them), since bounds may depend on params.
        """
        # params=None: the default-params space, which adapters build once and cache.
        space = self.action_space()
        if isinstance(space, spaces.Dict):
            return
        shape = tuple(np.shape(action))
        if shape != tuple(space.shape):
            raise ValueError(
                f"{self.name}: action of shape {shape} does not fit the action space {space}, "
                f"which needs shape {tuple(space.shape)}. Under vmap, pass one env's action."
            )
        kind = jnp.result_type(action)
        if isinstance(space, (spaces.Discrete, spaces.MultiDiscrete)):
            if not jnp.issubdtype(kind, jnp.integer):
                raise TypeError(
                    f"{self.name}: the action space {space} takes integer actions; got dtype "
                    f"{kind}."
                )
            if not isinstance(action, jax.core.Tracer) and not _integers_in_range(action, space):
                raise ValueError(
                    f"{self.name}: action {np.asarray(action).tolist()} is outside the action "
                    f"space {space}; accepted: {_describe_integers(space)}."
                )
        elif isinstance(space, spaces.Box):
            if not (jnp.issubdtype(kind, jnp.floating) or jnp.issubdtype(kind, jnp.integer)):
                raise TypeError(
                    f"{self.name}: the action space {space} takes numeric actions; got dtype "
                    f"{kind}."
                )
