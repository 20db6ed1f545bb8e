"""Spreading seeds over devices (DESIGN.md section 8).

Seeds are independent, so a seed-batched training state (leading axis = seeds) is sharded over a
one-axis ``Mesh`` of the local devices with ``NamedSharding``; the jitted ``vmap(update)`` then
runs each device's seeds on that device with no communication at all.

On a CPU-only machine there is one XLA device unless the process asks for more with
``--xla_force_host_platform_device_count``; and XLA runs the small matrix products of RL networks
on one core, so a multi-seed run leaves the other cores idle. ``use_all_cpu_cores`` (called by
the training command, ``jaxrl train`` or ``python algos/<name>.py``, before JAX starts) exposes
one host device per core, which roughly halves a vmapped 8-seed SAC run on two cores.
"""

from __future__ import annotations

import math
import os
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

__all__ = ["SEED_AXIS", "seed_mesh", "shard_seeds", "use_all_cpu_cores"]

SEED_AXIS = "seeds"
_DEVICE_COUNT_FLAG = "--xla_force_host_platform_device_count"


def use_all_cpu_cores() -> bool:
    """Ask XLA for one CPU device per core, unless ``XLA_FLAGS`` already sets a count, JAX is
    told to use another platform, or JAX has already started (the flag would change nothing in
    this process and would only leak into its child processes). Returns whether it was added."""
    try:
        from jax._src import xla_bridge

        if xla_bridge.backends_are_initialized():
            return False
    except (ImportError, AttributeError):  # a JAX without this private check: go by the flags
        pass
    flags = os.environ.get("XLA_FLAGS", "")
    platforms = os.environ.get("JAX_PLATFORMS", "")
    if _DEVICE_COUNT_FLAG in flags or (platforms and "cpu" not in platforms.split(",")):
        return False
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    if not cores or cores < 2:
        return False
    os.environ["XLA_FLAGS"] = f"{flags} {_DEVICE_COUNT_FLAG}={cores}".strip()
    return True


def seed_mesh(num_seeds: int, devices: list[Any] | None = None) -> Mesh | None:
    """A mesh over as many local devices as divide ``num_seeds`` evenly (their greatest common
    divisor), or None when that is a single device (nothing to shard)."""
    devices = list(jax.local_devices() if devices is None else devices)
    count = math.gcd(num_seeds, len(devices))
    if count <= 1:
        return None
    return Mesh(np.array(devices[:count]), (SEED_AXIS,))


def shard_seeds(tree: Any, num_seeds: int, devices: list[Any] | None = None) -> Any:
    """Place every leaf of a seed-batched pytree (leading axis ``num_seeds``) so that its seeds
    are split evenly over the devices; unchanged when there is one device to use."""
    mesh = seed_mesh(num_seeds, devices)
    if mesh is None:
        return tree
    sharding = NamedSharding(mesh, PartitionSpec(SEED_AXIS))
    return jax.tree.map(lambda leaf: jax.device_put(leaf, sharding), tree)
