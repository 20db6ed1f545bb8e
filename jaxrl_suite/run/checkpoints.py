"""Training-state checkpoints with orbax-checkpoint.

A checkpoint is the whole training state pytree (params, optimiser state, env state with its
normaliser statistics, RNG keys, update counter, hyperparameters) plus a small JSON record (the
update number and the run's config fingerprint). Orbax writes each step to a temporary folder and
renames it when complete, so a process killed mid-save leaves the previous checkpoint intact.
Typed PRNG keys are stored as their raw ``uint32`` data and re-wrapped on restore.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp

__all__ = ["Checkpointer", "config_fingerprint", "tree_digest"]


def config_fingerprint(record: dict[str, Any]) -> str:
    """A short stable hash of a JSON-able run record (algorithm, env, seeds, config)."""
    text = json.dumps(record, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def tree_digest(tree: Any) -> str:
    """A short stable hash of a pytree's structure, shapes, dtypes and values (typed PRNG keys
    by their data): what a run record keeps of given hyperparameters."""
    digest = hashlib.sha256(str(jax.tree.structure(tree)).encode())
    for leaf in jax.tree.leaves(_keys_to_data(tree)):
        array = np.ascontiguousarray(np.asarray(leaf))
        digest.update(f"{array.shape}{array.dtype}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()[:16]


def _is_key(leaf: Any) -> bool:
    return hasattr(leaf, "dtype") and jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key)


def _keys_to_data(tree: Any) -> Any:
    return jax.tree.map(lambda x: jax.random.key_data(x) if _is_key(x) else x, tree)


def _abstract(tree: Any) -> Any:
    """Shapes, dtypes and (for device arrays) shardings to restore into: a state sharded over
    devices comes back sharded the same way."""

    def leaf(x: Any) -> jax.ShapeDtypeStruct:
        sharding = getattr(x, "sharding", None)
        if _is_key(x):
            data = jax.eval_shape(jax.random.key_data, x)
            return jax.ShapeDtypeStruct(data.shape, data.dtype, sharding=sharding)
        dtype = x.dtype if hasattr(x, "dtype") else np.asarray(x).dtype
        return jax.ShapeDtypeStruct(np.shape(x), dtype, sharding=sharding)

    return jax.tree.map(leaf, tree)


class Checkpointer:
    """Saves and restores training states under ``directory`` (one sub-folder per update)."""

    def __init__(self, directory: str | Path, max_to_keep: int = 2):
        self.directory = Path(directory).absolute()
        self._manager = ocp.CheckpointManager(
            self.directory,
            options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True),
        )

    def save(self, update: int, state: Any, fingerprint: str) -> None:
        """Save ``state`` as update ``update`` and wait until it is on disk."""
        self._manager.save(
            update,
            args=ocp.args.Composite(
                state=ocp.args.StandardSave(_keys_to_data(state)),
                record=ocp.args.JsonSave({"update": update, "fingerprint": fingerprint}),
            ),
        )
        self._manager.wait_until_finished()

    def latest_update(self) -> int | None:
        return self._manager.latest_step()

    def restore(self, like: Any, fingerprint: str, update: int | None = None) -> tuple[Any, int]:
        """Restore the state saved at ``update`` (default the latest) into the structure of
        ``like`` (a state of the same run, e.g. a freshly initialised one). Refuses a
        checkpoint whose fingerprint differs from ``fingerprint`` (a different config)."""
        update = self.latest_update() if update is None else update
        if update is None:
            raise ValueError(f"No checkpoint in {self.directory}.")
        record = self._manager.restore(
            update, args=ocp.args.Composite(record=ocp.args.JsonRestore())
        )["record"]
        if record["fingerprint"] != fingerprint:
            raise ValueError(
                f"The checkpoint in {self.directory} (update {update}) was saved by a run with a "
                f"different configuration (fingerprint {record['fingerprint']}, this run "
                f"{fingerprint}); resume it with the config in its run folder's config.json."
            )
        restored = self._manager.restore(
            update, args=ocp.args.Composite(state=ocp.args.StandardRestore(_abstract(like)))
        )["state"]
        keys_like = jax.tree.leaves(like)
        leaves, treedef = jax.tree.flatten(restored)
        leaves = [
            jax.random.wrap_key_data(leaf, impl=jax.random.key_impl(template))
            if _is_key(template) else leaf
            for leaf, template in zip(leaves, keys_like, strict=True)
        ]
        return jax.tree.unflatten(treedef, leaves), update

    def close(self) -> None:
        self._manager.close()
