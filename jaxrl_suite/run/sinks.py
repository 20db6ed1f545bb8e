"""Where live training metrics go: a progress bar, the console, CSV, TensorBoard, Weights & Biases.

The harness calls every sink from a ``jax.debug.callback`` every N updates with a *summary*:
``{metric name: (mean over seeds, std over seeds)}`` as Python floats (NaN where no seed has a
value, e.g. no episode finished yet). Sinks only format and write; they never touch JAX.
"""

from __future__ import annotations

import csv
import math
import os
import time
from pathlib import Path
from typing import Any, Protocol

__all__ = [
    "MetricSink",
    "ProgressBar",
    "ConsoleSink",
    "CSVSink",
    "TensorBoardSink",
    "WandbSink",
    "Summary",
    "read_scalars",
]

Summary = dict[str, tuple[float, float]]


class MetricSink(Protocol):
    """Where reports go. A sink may also have ``phase(name)``, called as the run moves through
    ``compiling``, ``training`` and ``evaluating`` (the progress bar and the console show it)."""

    def write(self, update: int, env_steps: int, summary: Summary) -> None: ...

    def close(self) -> None: ...


def _format(mean: float, std: float) -> str:
    if math.isnan(mean):
        return "-"
    return f"{mean:.4g}" if std == 0 or math.isnan(std) else f"{mean:.4g} ± {std:.2g}"


class ProgressBar:
    """A rich progress bar: updates done, env steps/s since the first report, latest return
    (mean ± std over seeds)."""

    def __init__(self, total_updates: int, first_update: int = 0, description: str = "training"):
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[speed]}"),
            TextColumn("return {task.fields[episode_return]}"),
            TimeElapsedColumn(),
        )
        self._task = self._progress.add_task(
            description, total=total_updates, completed=first_update, speed="", episode_return="-"
        )
        self._progress.start()
        self._start: tuple[float, int] | None = None
        self._description = description

    def phase(self, name: str) -> None:
        self._progress.update(self._task, description=f"{self._description} ({name})")

    def write(self, update: int, env_steps: int, summary: Summary) -> None:
        now = time.perf_counter()
        speed = ""
        if self._start is None:
            self._start = (now, env_steps)
        elif now > self._start[0]:
            speed = f"{(env_steps - self._start[1]) / (now - self._start[0]):,.0f} steps/s"
        episode_return = _format(*summary.get("episode_return", (math.nan, math.nan)))
        self._progress.update(
            self._task, completed=update, speed=speed, episode_return=episode_return
        )

    def close(self) -> None:
        self._progress.stop()


class ConsoleSink:
    """One line per report: update, env steps, and the chosen metrics as mean ± std."""

    def __init__(self, total_updates: int, keys: tuple[str, ...] = (
            "episode_return", "episode_length", "entropy", "approx_kl", "meta_loss",
            "fitness_mean"),
                 description: str = ""):
        self.total_updates, self.keys = total_updates, keys
        self.description = description
        self._phase_start: float | None = None

    def phase(self, name: str) -> None:
        now = time.perf_counter()
        took = ("" if self._phase_start is None
                else f" (the previous phase took {now - self._phase_start:.1f} s)")
        self._phase_start = now
        prefix = f"{self.description}: " if self.description else ""
        print(f"{prefix}{name}{took}", flush=True)

    def write(self, update: int, env_steps: int, summary: Summary) -> None:
        parts = [f"update {update}/{self.total_updates}", f"steps {env_steps:,}"]
        parts += [f"{key} {_format(*summary[key])}" for key in self.keys if key in summary]
        print(" | ".join(parts), flush=True)

    def close(self) -> None:
        pass


class CSVSink:
    """Appends one row per report to ``path``: update, env_steps, wall_seconds and, per metric,
    ``<name>_mean`` and ``<name>_std``. Written and flushed at each report, so a killed run keeps
    its progress so far."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._start = time.perf_counter()
        self._file: Any = None
        self._writer: Any = None

    def write(self, update: int, env_steps: int, summary: Summary) -> None:
        if self._writer is None:
            names = sorted(summary)
            fieldnames = ["update", "env_steps", "wall_seconds"]
            fieldnames += [f"{name}_{stat}" for name in names for stat in ("mean", "std")]
            new_file = not self.path.exists() or self.path.stat().st_size == 0
            self._file = self.path.open("a", newline="")
            self._writer = csv.DictWriter(self._file, fieldnames, extrasaction="ignore")
            if new_file:
                self._writer.writeheader()
        row: dict[str, Any] = {
            "update": update,
            "env_steps": env_steps,
            "wall_seconds": round(time.perf_counter() - self._start, 3),
        }
        for name, (mean, std) in summary.items():
            row[f"{name}_mean"], row[f"{name}_std"] = mean, std
        self._writer.writerow(row)
        self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


def read_scalars(logdir: str | Path) -> list[tuple[str, int, float, float]]:
    """Every scalar in the TensorBoard event files of ``logdir``: ``(tag, step, value,
    wall_time)`` in file order (files by name). Reads the TFRecord framing itself (length,
    CRC, event proto) so that no TensorFlow or TensorBoard install is needed."""
    from tensorboardX.proto import event_pb2

    out = []
    for path in sorted(Path(logdir).glob("events.out.tfevents.*")):
        data = path.read_bytes()
        offset = 0
        while offset + 12 <= len(data):
            length = int.from_bytes(data[offset:offset + 8], "little")
            start = offset + 12  # the length and its CRC
            if start + length + 4 > len(data):
                break  # a record cut off by a kill: the file ends before it
            event = event_pb2.Event.FromString(data[start:start + length])
            offset = start + length + 4
            for value in event.summary.value:
                if value.HasField("simple_value"):
                    out.append((value.tag, int(event.step), float(value.simple_value),
                                float(event.wall_time)))
    return out


class TensorBoardSink:
    """Scalars ``<metric>/mean`` and ``<metric>/std`` against env steps, in a TensorBoard
    events file (tensorboardX's protos and record writer).

    Events are written synchronously: tensorboardX's ``SummaryWriter`` hands them to a worker
    thread and its ``flush`` does not wait for that queue, so a run killed after a report could
    lose scalars that a resume does not re-run.

    ``keep_until_step`` (a resumed run: the env steps of its checkpoint): the scalars already in
    ``logdir`` up to that step are copied into this sink's new event file and the old files are
    removed, so the folder holds one history, as an uninterrupted run would, instead of a
    second file that overlaps the first where updates are re-run.
    """

    def __init__(self, logdir: str | Path, keep_until_step: int | None = None):
        from tensorboardX.event_file_writer import EventsWriter

        logdir = Path(logdir)
        old_files = (sorted(logdir.glob("events.out.tfevents.*"))
                     if keep_until_step is not None and logdir.exists() else [])
        kept = [scalar for scalar in read_scalars(logdir) if scalar[1] <= keep_until_step
                ] if old_files else []
        logdir.mkdir(parents=True, exist_ok=True)
        # A name of its own: tensorboardX names files by the second, as the old one may be.
        self._writer = EventsWriter(str(logdir / "events"),
                                    filename_suffix=f".{os.getpid()}.{time.time_ns()}")
        for tag, step, value, wall_time in kept:
            self._add(tag, value, step, wall_time)
        self._writer.flush()
        for path in old_files:
            path.unlink()

    def _add(self, tag: str, value: float, step: int, wall_time: float) -> None:
        from tensorboardX.proto import event_pb2, summary_pb2

        summary = summary_pb2.Summary(value=[summary_pb2.Summary.Value(
            tag=tag, simple_value=float(value))])
        self._writer.write_event(event_pb2.Event(wall_time=wall_time, step=int(step),
                                                 summary=summary))

    def write(self, update: int, env_steps: int, summary: Summary) -> None:
        now = time.time()
        for name, (mean, std) in summary.items():
            if not math.isnan(mean):
                self._add(f"{name}/mean", mean, env_steps, now)
                self._add(f"{name}/std", std, env_steps, now)
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()


class WandbSink:
    """Logs the summary to Weights & Biases (``pip install jaxrl-suite[wandb]``)."""

    def __init__(self, project: str, name: str, config: dict[str, Any], directory: str | Path):
        try:
            import wandb
        except ImportError:
            raise ValueError(
                "--wandb needs the wandb package; install it with pip install 'jaxrl-suite[wandb]'."
            ) from None
        self._run = wandb.init(project=project, name=name, config=config, dir=str(directory))

    def write(self, update: int, env_steps: int, summary: Summary) -> None:
        data = {f"{name}/mean": mean for name, (mean, _) in summary.items()}
        data |= {f"{name}/std": std for name, (_, std) in summary.items()}
        self._run.log({"update": update, **data}, step=env_steps)

    def close(self) -> None:
        self._run.finish()
