"""API conformance of every registered env (a new env joins by registering), but the ``mo/``
ones (tests/test_mo_envs.py runs the same checks over those: this process is at the limit of
compiled programs where XLA's CPU compiler segfaults).

Checked for each id: reset/step under jit and vmap; observations, actions, rewards and flags have
the shapes and dtypes of the spaces; determinism given the key; jit equals eager and vmap equals
a single env; ``AutoReset``'s ``final_observation`` is the observation the env really produced and
the next observation is a reset one; ``EpisodeStats`` sums returns and lengths; truncation at
the episode limit is ``truncated`` and never ``terminated``. The checks themselves are in
tests/conformance.py; each test here runs one of them.
"""

from __future__ import annotations

import pytest

import jaxrl_suite
from tests import conformance as C

# The ten named grid worlds are one class (GridWorld) with a fixed level each: two of them, one
# per observation kind, stand for the rest, which keeps the side test process's compiled programs
# near what they were (XLA's CPU backend segfaulted writing the compilation cache in that
# process, once, with all ten added).
NAMED_GRIDWORLDS_CHECKED = ("gridworld/longer", "gridworld/rand_small")
# The multi-objective envs run the checks in tests/test_mo_envs.py, in the other test process.
SEPARATE_PREFIXES = ("mo/",)
ENV_IDS = [env_id for env_id in jaxrl_suite.registered_envs()
           if (not env_id.startswith("gridworld/") or env_id in NAMED_GRIDWORLDS_CHECKED)
           and not env_id.startswith(SEPARATE_PREFIXES)]
PHYSICS_PREFIXES = C.PHYSICS_PREFIXES


# Compile-heavy envs, left out of `make test-fast`: Brax and MJX; the gymnax envs whose checks
# took 8 to 30 s in all on 2 cores (MinAtar; Acrobot's RK4 step) where most take 3 to 8 s; and
# the maze's other level generators (12 to 21 s; the step and observations are `maze`'s).
SLOW_SUFFIXES = ("-MinAtar",)
SLOW_IDS = ("gymnax/Acrobot-v1", "maze-perfect", "maze-rooms")


def _param(env_id: str):
    slow = (env_id.startswith(PHYSICS_PREFIXES) or env_id.endswith(SLOW_SUFFIXES)
            or env_id in SLOW_IDS)
    return pytest.param(env_id, marks=[pytest.mark.slow] if slow else [], id=env_id)


all_envs = pytest.mark.parametrize("env_id", [_param(e) for e in ENV_IDS])


# Kept as module-level test functions taking (env_id[, short]): notebooks/custom_env.ipynb calls
# them by name on its own env ids.
@all_envs
def test_spaces_shapes_and_dtypes(env_id: str) -> None:
    C.check_spaces_shapes_and_dtypes(env_id)


@all_envs
def test_deterministic_given_key(env_id: str) -> None:
    C.check_deterministic_given_key(env_id)


@all_envs
def test_jit_and_vmap_match_single_eager_steps(env_id: str) -> None:
    """The first reset and step of env 0 in the vmapped, jitted rollout, redone without vmap."""
    C.check_jit_and_vmap_match_single_eager_steps(env_id)


@all_envs
@pytest.mark.parametrize("short", [False, True], ids=["default_limit", "short_episodes"])
def test_autoreset_final_observation(env_id: str, short: bool) -> None:
    C.check_autoreset_final_observation(env_id, short)


@all_envs
@pytest.mark.parametrize("short", [False, True], ids=["default_limit", "short_episodes"])
def test_episode_stats_and_truncation(env_id: str, short: bool) -> None:
    C.check_episode_stats_and_truncation(env_id, short)


@all_envs
def test_properties_hold_over_many_random_rollouts(env_id: str) -> None:
    """The checks on many more random rollouts through the same compiled program."""
    C.check_properties_hold_over_many_random_rollouts(env_id)
