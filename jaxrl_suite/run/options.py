"""``RunOptions``: how to run an algorithm (not what it learns), shared by the harness, the run
folder and the command line."""

from __future__ import annotations

import dataclasses

import jax

__all__ = ["NONFINITE_POLICIES", "RunOptions", "seed_keys", "validate_options"]

NONFINITE_POLICIES = ("stop", "warn")


@dataclasses.dataclass(frozen=True)
class RunOptions:
    """How to run (not what to learn): the env, seeds, outputs, progress and checkpoints."""

    env: str = "gymnax/CartPole-v1"
    """A registered env id (`jaxrl envs` lists them)."""
    seeds: int = 1
    """Independent seeds, trained at once under vmap."""
    seed: int = 0
    """Base seed; seed i of the run uses split(key(seed), seeds)[i]."""
    preset: str = "auto"
    """'auto' (the env's tuned preset when it has one), 'none' (plain defaults) or a preset name
    (listed above, each marked measured here or unverified)."""
    runs_root: str = "runs"
    """Where new run folders are created."""
    run_dir: str | None = None
    """Exact run folder (default runs_root/<algo>-<env>-<timestamp>)."""
    progress_every: int = 0
    """Report every N updates (0: about 50 reports per run)."""
    no_progress: bool = False
    """No live progress at all (no callbacks compiled into the run)."""
    console: bool = False
    """Print a metrics line at each report (in addition to the progress bar)."""
    tensorboard: bool = True
    """Write TensorBoard event files to RUN_DIR/tensorboard."""
    wandb: bool = False
    """Log to Weights & Biases (needs the wandb package)."""
    wandb_project: str = "jaxrl-suite"
    """W&B project name."""
    checkpoint_every: int = 0
    """Save the training state every K updates (0: only at the end); the run is jitted in chunks
    of K updates."""
    keep_checkpoints: int = 2
    """Checkpoints kept on disk (the newest; and always the newest finite one)."""
    on_nonfinite: str = "stop"
    """When a loss or a learned parameter becomes NaN or infinite: 'stop' (exit non-zero
    naming the update, the seed and the metric; no non-finite checkpoint is saved) or 'warn'
    (say so once and train on). Checked after each chunk of --checkpoint-every updates."""
    resume: str | None = None
    """Continue the run in this folder from its last checkpoint."""
    eval_episodes: int = 16
    """Episodes per seed for the final evaluation (0: skip)."""


def validate_options(options: RunOptions) -> None:
    """Refuse options no run could use, naming the bad value."""
    if not isinstance(options.seeds, int) or options.seeds <= 0:
        raise ValueError(f"seeds must be a positive integer; got {options.seeds!r}.")
    for name in ("progress_every", "checkpoint_every", "eval_episodes"):
        value = getattr(options, name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ValueError(f"{name} must be a non-negative integer; got {value!r}.")
    if (not isinstance(options.keep_checkpoints, int) or isinstance(options.keep_checkpoints, bool)
            or options.keep_checkpoints < 1):
        raise ValueError(f"keep_checkpoints must be a positive integer; got "
                         f"{options.keep_checkpoints!r}.")
    if options.on_nonfinite not in NONFINITE_POLICIES:
        raise ValueError(f"on_nonfinite must be one of {', '.join(NONFINITE_POLICIES)}; got "
                         f"{options.on_nonfinite!r}.")


def seed_keys(options: RunOptions) -> jax.Array:
    """Seed i of a run uses ``split(key(seed), seeds)[i]``."""
    return jax.random.split(jax.random.key(options.seed), options.seeds)
