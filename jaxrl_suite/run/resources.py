"""Memory a run will need, estimated from shapes before anything is allocated, and what the
machine has: a run too large for the machine is refused with the estimate in the message
instead of being killed by the OOM killer (or allocating 40 GB) minutes later.

Two estimates, both without allocating: the training state's bytes (``jax.eval_shape`` of
``init``: parameters, optimiser state, replay buffers, env states), checked before the state is
built; and the compiled update program's own (``memory_analysis`` of the compiled chunk:
arguments, outputs and temporaries such as a rollout), checked before it runs.
"""

from __future__ import annotations

import math
import os
from typing import Any

import jax
import numpy as np

__all__ = ["RunTooLarge", "available_memory_bytes", "check_fits", "format_bytes", "tree_bytes"]

# A run may use this share of what is available: XLA, Python and the OS need the rest.
USABLE_FRACTION = 0.9


class RunTooLarge(MemoryError, ValueError):
    """A run (or a picture) would need more memory than the machine has. A ``ValueError`` too,
    so the command line reports it as the one-line error of a bad setting."""


def tree_bytes(tree: Any) -> int:
    """Bytes of every array (or ``ShapeDtypeStruct``) leaf of ``tree``; typed PRNG keys count
    as their data."""
    total = 0
    for leaf in jax.tree.leaves(tree):
        dtype = getattr(leaf, "dtype", None)
        if dtype is None:
            continue
        if jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key):
            itemsize = 8  # two uint32 words of threefry data
        else:
            itemsize = np.dtype(dtype).itemsize
        total += math.prod(getattr(leaf, "shape", ())) * itemsize
    return total


def format_bytes(count: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if count < 1000 or unit == "TB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1000
    return f"{count:.1f} TB"


def _host_available_bytes() -> int | None:
    try:
        with open("/proc/meminfo") as file:
            for line in file:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def available_memory_bytes(devices: list[Any] | None = None) -> int | None:
    """What the run's devices can hold: the sum of the accelerators' memory limits, or the
    host's available memory for CPU devices (which share it). ``None`` when unknown."""
    devices = jax.local_devices() if devices is None else devices
    if all(device.platform == "cpu" for device in devices):
        return _host_available_bytes()
    total = 0
    for device in devices:
        stats = device.memory_stats() or {}
        if "bytes_limit" not in stats:
            return None
        total += int(stats["bytes_limit"]) - int(stats.get("bytes_in_use", 0))
    return total


def check_fits(needed_bytes: int, what: str, hint: str = "",
               available_bytes: int | None = None) -> None:
    """Raise ``RunTooLarge`` (one plain line, with the estimate) when ``needed_bytes`` exceed
    the usable share of ``available_bytes`` (default what this machine has now)."""
    available = available_memory_bytes() if available_bytes is None else available_bytes
    if available is None or needed_bytes <= USABLE_FRACTION * available:
        return
    raise RunTooLarge(
        f"{what} needs about {format_bytes(needed_bytes)}, more than this machine can give it "
        f"({format_bytes(available)} available); {hint or 'use smaller shapes.'}")
