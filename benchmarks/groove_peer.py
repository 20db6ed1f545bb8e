"""The GROOVE / LPG peer (EmptyJackson/groove), run in its own virtualenv: stdlib only.

``benchmarks/lpg.py`` calls :func:`run_groove` with a spec (see ``groove_runner.py``) and gets
the runner's ``GROOVE_RESULT`` dict back. On first use it

* checks the peer out into ``benchmarks/.groove`` (git-ignored, never committed) from a bare
  mirror of the repository (``GROOVE_MIRROR`` or ``--mirror``; default: the workplace mirror
  ``/work/.mirror/EmptyJackson+groove/repo``) or, failing that, ``git clone``
  of ``GROOVE_URL``, at ``GROOVE_COMMIT``;
* creates ``benchmarks/.venv-groove`` (``python -m venv`` with this interpreter, then
  ``pip install`` of :data:`PEER_REQUIREMENTS`: the peer's pins from its
  ``setup/requirements-*.txt`` that its training code imports, plus the pins jax 0.4.13 needs
  to import at all).

The peer's wandb, tensorflow, tensorstore, bsuite, dm_env, rich and tqdm are not installed:
only ``experiments/logging.py`` (wandb, flax checkpoints) and ``train.py`` (rich) import
them, and the runner imports neither. gym is installed because gymnax 0.0.6 imports it, and
matplotlib because evosax 0.1.4 does.

    python benchmarks/groove_peer.py '{"num_agents": 8, "meta_steps": 5}'   # prints the dict
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
RUNNER = HERE / "groove_runner.py"
GROOVE_DIR = HERE / ".groove"
VENV_DIR = HERE / ".venv-groove"
RESULT_PREFIX = "GROOVE_RESULT "
GROOVE_COMMIT = "0c091c039deceb12ad57ae50a16972f1821fb710"  # the peer's main, "Fix mode key"
GROOVE_URL = "https://github.com/EmptyJackson/groove"
DEFAULT_MIRROR = "/work/.mirror/EmptyJackson+groove/repo"

PEER_REQUIREMENTS = (
    # the peer's own pins (setup/requirements-base.txt, setup/requirements-cpu.txt)
    "jax==0.4.13", "jaxlib==0.4.13", "flax==0.6.11", "optax==0.1.5", "evosax==0.1.4",
    "gymnax==0.0.6", "matplotlib==3.7.1",
    # what those need to import under Python 3.11 today
    "numpy<2", "scipy<1.12", "ml_dtypes==0.2.0", "chex==0.1.82", "orbax-checkpoint==0.4.4",
    "gym==0.26.2", "six", "pyyaml",
)


def _run(command: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(command, check=True, **kwargs)


def ensure_groove(groove_dir: Path = GROOVE_DIR, mirror: str | None = None,
                  commit: str = GROOVE_COMMIT) -> Path:
    """A checkout of the peer at ``commit`` in ``groove_dir`` (made when missing)."""
    marker = groove_dir / ".groove_commit"
    if (groove_dir / "meta" / "meta.py").exists():
        return groove_dir
    groove_dir.mkdir(parents=True, exist_ok=True)
    mirror = mirror or os.environ.get("GROOVE_MIRROR") or DEFAULT_MIRROR
    if Path(mirror).exists():
        with tempfile.TemporaryDirectory() as tmp:
            archive = Path(tmp) / "groove.tar"
            _run(["git", "-C", mirror, "archive", "-o", str(archive), commit])
            with tarfile.open(archive) as tar:
                tar.extractall(groove_dir)
    else:
        clone = groove_dir.with_name(groove_dir.name + ".git-tmp")
        _run(["git", "clone", "--quiet", os.environ.get("GROOVE_URL", GROOVE_URL), str(clone)])
        _run(["git", "-C", str(clone), "checkout", "--quiet", commit])
        with tempfile.TemporaryDirectory() as tmp:
            archive = Path(tmp) / "groove.tar"
            _run(["git", "-C", str(clone), "archive", "-o", str(archive), commit])
            with tarfile.open(archive) as tar:
                tar.extractall(groove_dir)
        _run(["rm", "-rf", str(clone)])
    marker.write_text(commit + "\n")
    return groove_dir


def peer_works(python: Path, groove_dir: Path) -> bool:
    check = subprocess.run(
        [str(python), "-c", "import jax, flax, optax, evosax, gymnax; "
         "from meta.meta import create_lpg_train_state"],
        capture_output=True, cwd=groove_dir,
    )
    return check.returncode == 0


def ensure_venv(venv_dir: Path = VENV_DIR, groove_dir: Path = GROOVE_DIR) -> Path:
    """The interpreter of the peer's venv (created and installed when missing)."""
    python = venv_dir / "bin" / "python"
    if python.exists() and peer_works(python, groove_dir):
        return python
    print(f"Creating the GROOVE venv in {venv_dir} (jax 0.4.13, flax 0.6.11, evosax 0.1.4, "
          f"gymnax 0.0.6)...", file=sys.stderr)
    if not python.exists():
        _run([sys.executable, "-m", "venv", str(venv_dir)])
    _run([str(python), "-m", "pip", "install", "--quiet", *PEER_REQUIREMENTS])
    if not peer_works(python, groove_dir):
        raise RuntimeError(f"{python} still cannot import the GROOVE peer after installing it.")
    return python


def run_groove(spec: dict, python: str | None = None, groove_dir: Path | None = None,
               nice: int | None = None, timeout: float | None = None) -> dict:
    """Run ``groove_runner.py`` on ``spec`` in the peer's venv; the parsed ``GROOVE_RESULT``.

    ``python`` names an interpreter that already has the peer's packages (default: the venv,
    created on demand). ``nice`` runs it under ``nice -n``. The peer runs as it would by
    default: one CPU device (``XLA_FLAGS`` and ``PYTHONPATH`` are not passed on).
    """
    groove_dir = ensure_groove(groove_dir or GROOVE_DIR)
    python = python or str(ensure_venv(groove_dir=groove_dir))
    spec = {**spec, "groove_dir": str(groove_dir)}
    environ = {k: v for k, v in os.environ.items()
               if k not in ("PYTHONPATH", "VIRTUAL_ENV", "XLA_FLAGS")}
    command = [python, str(RUNNER)]
    if nice is not None:
        command = ["nice", "-n", str(nice), *command]
    completed = subprocess.run(command, input=json.dumps(spec), text=True, capture_output=True,
                               env=environ, cwd=groove_dir, timeout=timeout)
    lines = [line for line in completed.stdout.splitlines() if line.startswith(RESULT_PREFIX)]
    if completed.returncode != 0 or not lines:
        sys.stderr.write(completed.stdout[-4000:] + completed.stderr[-4000:])
        raise RuntimeError(f"the GROOVE runner failed (exit {completed.returncode}); its output "
                           f"is above.")
    return json.loads(lines[-1][len(RESULT_PREFIX):])


if __name__ == "__main__":
    print(json.dumps(run_groove(json.loads(sys.argv[1] if len(sys.argv) > 1 else "{}")),
                     indent=1))
