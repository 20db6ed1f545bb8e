"""Training-state checkpoints with orbax-checkpoint.

A checkpoint is the whole training state pytree (params, optimiser state, env state with its
normaliser statistics, RNG keys, update counter, hyperparameters) plus a small JSON record (the
update number and the run's config fingerprint). Orbax writes each step to a temporary folder and
renames it when complete, so a process killed mid-save leaves the previous checkpoint intact.
Typed PRNG keys are stored as their raw ``uint32`` data and re-wrapped on restore.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import json
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp

__all__ = ["CheckpointError", "CheckpointWarning", "Checkpointer", "config_fingerprint",
           "tree_digest"]


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


class CheckpointError(ValueError):
    """No checkpoint of a run folder could be restored (a plain one-line message)."""


class CheckpointWarning(UserWarning):
    """A checkpoint could not be read and an older one is used instead."""


def _cause(error: BaseException) -> str:
    """The first line of an error, shortened: orbax and TensorStore errors run to many lines."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    text = text.split(" See full TensorStore details")[0].rstrip(".")
    return text if len(text) <= 200 else text[:197] + "..."


def _is_restore_noise(error: BaseException | None) -> bool:
    """What orbax's asyncio restore leaves behind when one array read fails: the other reads'
    callbacks find the event loop closed, and the failed read's coroutine is dropped with its
    error, each reported through ``sys.unraisablehook`` as a traceback of its own."""
    text = str(error)
    return (isinstance(error, RuntimeError) and text == "Event loop is closed") or (
        "Encountered error while reading array" in text)


@contextlib.contextmanager
def _quiet_failed_reads():
    """Drop the unraisable-error tracebacks of a failed restore (``_is_restore_noise``): the
    failure itself is reported once, as a warning naming the checkpoint. Everything else still
    reaches the previous hook."""
    previous = sys.unraisablehook

    def hook(info):
        if not _is_restore_noise(info.exc_value):
            previous(info)

    sys.unraisablehook = hook
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "coroutine .* was never awaited", RuntimeWarning)
            yield
    finally:
        gc.collect()  # the failed restore's coroutines and futures are reported now, inside
        time.sleep(0.05)  # callbacks still in flight on TensorStore's threads
        gc.collect()
        sys.unraisablehook = previous


class Checkpointer:
    """Saves and restores training states under ``directory`` (one sub-folder per update).

    Retention: the newest ``max_to_keep`` checkpoints are kept, and so is the newest one whose
    state was finite (``save(..., finite=False)`` marks one that is not), so checkpoints of a
    diverged run never evict the last good one. Restoring falls back past damaged checkpoints
    (a truncated array file, an empty manifest, a corrupt record) to the newest intact one,
    with a ``CheckpointWarning`` naming each it skipped.
    """

    def __init__(self, directory: str | Path, max_to_keep: int = 2):
        if not isinstance(max_to_keep, int) or isinstance(max_to_keep, bool) or max_to_keep < 1:
            raise ValueError(f"keep_checkpoints must be a positive integer; got {max_to_keep!r}.")
        self.directory = Path(directory).absolute()
        self.max_to_keep = max_to_keep
        # Orbax keeps every step; ``_prune`` applies the retention above, which orbax's own
        # max_to_keep (newest N, whatever they hold) cannot express.
        self._manager = ocp.CheckpointManager(
            self.directory, options=ocp.CheckpointManagerOptions(create=True))
        self._finite: dict[int, bool] = {}

    def save(self, update: int, state: Any, fingerprint: str, finite: bool = True) -> None:
        """Save ``state`` as update ``update`` and wait until it is on disk; ``finite`` is
        recorded (``False``: the state holds NaN or infinite values)."""
        self._manager.save(
            update,
            args=ocp.args.Composite(
                state=ocp.args.StandardSave(_keys_to_data(state)),
                record=ocp.args.JsonSave(
                    {"update": update, "fingerprint": fingerprint, "finite": bool(finite)}),
            ),
        )
        self._manager.wait_until_finished()
        self._finite[update] = bool(finite)
        self._prune()

    def updates(self) -> list[int]:
        """The saved updates, oldest first."""
        return sorted(self._manager.all_steps())

    def latest_update(self) -> int | None:
        return self._manager.latest_step()

    def path_of(self, update: int) -> Path:
        return self.directory / str(update)

    def _read_record(self, update: int) -> dict[str, Any]:
        return self._manager.restore(
            update, args=ocp.args.Composite(record=ocp.args.JsonRestore()))["record"]

    def is_finite(self, update: int) -> bool:
        """Whether the checkpoint of ``update`` was saved as finite (older checkpoints, which
        record nothing, count as finite; an unreadable record as not)."""
        if update not in self._finite:
            try:
                self._finite[update] = bool(self._read_record(update).get("finite", True))
            except Exception:  # noqa: BLE001 - a damaged record: not a checkpoint to keep for
                self._finite[update] = False
        return self._finite[update]

    def newest_finite_update(self) -> int | None:
        """The newest checkpoint saved as finite, or ``None``."""
        finite = [update for update in self.updates() if self.is_finite(update)]
        return finite[-1] if finite else None

    def _prune(self) -> None:
        updates = self.updates()
        keep = set(updates[-self.max_to_keep:])
        if not any(self.is_finite(update) for update in keep):
            newest_finite = self.newest_finite_update()
            if newest_finite is not None:
                keep.add(newest_finite)
        for update in updates:
            if update not in keep:
                self._manager.delete(update)
                self._finite.pop(update, None)

    def restore(self, like: Any, fingerprint: str, update: int | None = None) -> tuple[Any, int]:
        """Restore the state saved at ``update`` (default the newest intact checkpoint) into the
        structure of ``like`` (a state of the same run, e.g. a freshly initialised one).

        Refuses a checkpoint whose fingerprint differs from ``fingerprint`` (a different
        config). Without ``update``, a checkpoint that cannot be read is skipped with a
        ``CheckpointWarning`` and the next older one is tried; ``CheckpointError`` when none
        can be read.
        """
        if update is not None:
            return self._restore_one(like, fingerprint, update), update
        updates = self.updates()
        if not updates:
            raise CheckpointError(f"No checkpoint in {self.directory}.")
        failures = []
        for candidate in reversed(updates):
            try:
                with _quiet_failed_reads():
                    return self._restore_one(like, fingerprint, candidate), candidate
            except _FingerprintMismatch as error:
                raise ValueError(str(error)) from None
            except Exception as error:  # noqa: BLE001 - any damage: try the previous one
                failures.append(f"update {candidate} ({_cause(error)})")
                warnings.warn(
                    f"The checkpoint of update {candidate} ({self.path_of(candidate)}) could not "
                    f"be read: {_cause(error)}. Trying the previous one.",
                    CheckpointWarning, stacklevel=2)
        raise CheckpointError(
            f"No checkpoint in {self.directory} could be read: " + "; ".join(failures) + ".")

    def _restore_one(self, like: Any, fingerprint: str, update: int) -> Any:
        record = self._read_record(update)
        if not isinstance(record, dict) or "fingerprint" not in record:
            raise ValueError(f"its record holds no fingerprint ({record!r:.80})")
        if record["fingerprint"] != fingerprint:
            raise _FingerprintMismatch(
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
        return jax.tree.unflatten(treedef, leaves)

    def close(self) -> None:
        self._manager.close()


class _FingerprintMismatch(Exception):
    pass
