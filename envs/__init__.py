"""Environments: the project's own and adapters (``gymnax/``, ``brax/``, ``mjx/``).

Importing this package registers every built-in id with the core registry. Entry points are
strings, so nothing heavy (Brax, MuJoCo) is imported until an env is made.
"""

from jaxrl_suite.envs.brax import BRAX_ENV_NAMES, MJX_ENV_NAMES
from jaxrl_suite.envs.gymnax import PREFIX as _GYMNAX_PREFIX
from jaxrl_suite.envs.gymnax import gymnax_env_ids
from jaxrl_suite.registry import register


def _register_builtin_envs() -> None:
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
