"""The morl-baselines peer (PyTorch), run in its own virtualenv: stdlib only.

``benchmarks/morl.py`` (the project's side of the multi-objective benchmark) calls
:func:`run_peer` and gets back the dict that ``benchmarks/morl_peer.py`` prints: a trace of
(env steps, training wall time without evaluation, hypervolume, expected utility, front) of a
morl-baselines algorithm, and the time to each hypervolume threshold. The peer imports nothing
from this project; this module imports nothing outside the standard library.

Python API::

    from benchmarks.morl_runner import run_peer   # or: sys.path / importlib, as groove_peer

    result = run_peer("envelope", "deep-sea-treasure-v0", steps=50_000, seed=0,
                      eval_every=1000, thresholds=[300, 401.8])
    result["time_to_threshold"]   # [{"hypervolume": 300, "env_steps": ..., "wall_time_s": ...},
                                  #  {"hypervolume": 401.8, ...}]   (None where not reached)
    result["trace"][-1]           # {"env_steps", "wall_time_s", "cpu_time_s", "hypervolume",
                                  #  "expected_utility", "hypervolume_discounted", "front"}
    result["config"]["ref_point"], result["config"]["known_front_hypervolume"]

``algo`` is one of ``envelope``, ``gpi_ls`` (GPI-PD without its model, morl-baselines'
``GPILS``) and ``pcn``; ``env`` an MO-Gymnasium id with a known reference point
(``deep-sea-treasure-v0`` [0, -25], ``mo-mountaincar-v0`` [-110, -110, -110],
``minecart-v0`` [0, 0, -200]; ``ref_point=`` for others). Keyword arguments: ``eval_weights``
(equally spaced weights per evaluation, default 100), ``eval_episodes`` (per weight; default
1 on DST, 5 elsewhere), ``ref_point``, ``gamma``, ``overrides`` (constructor keywords),
``train_overrides`` (``train()`` keywords), ``threads`` (torch CPU threads, default 2),
``python`` (an interpreter that already has the peer's packages; default: the venv, created
on demand), ``nice``, ``timeout`` (seconds; ``subprocess.TimeoutExpired`` past it) and
``partial_out`` (a file the peer rewrites with its trace after every evaluation, so that a
run cut short still leaves its trace). See ``morl_peer.py`` for how it trains, evaluates and
times, and where the hyperparameters and reference points come from.

On first use :func:`ensure_venv` creates ``benchmarks/.venv-morl`` (git-ignored): ``python -m
venv`` with this interpreter, then ``pip install`` of :data:`PEER_REQUIREMENTS`. torch is the
CPU build: from PyTorch's CPU wheel index (:data:`TORCH_CPU_INDEX`, or ``MORL_TORCH_INDEX``)
when it answers within a few seconds, otherwise from the default index (there its Linux wheel
is the CUDA one, which runs on CPU too, only larger; a local CPU wheel that pip is configured
to find is taken first). The pins are the versions this was measured with.

Command line (prints the JSON)::

    python benchmarks/morl_runner.py --algo envelope --env deep-sea-treasure-v0 \\
        --steps 50000 --seed 0 --eval-every 1000 --hv-thresholds 300 401.8
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PEER = HERE / "morl_peer.py"
VENV_DIR = HERE / ".venv-morl"
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"

# Measured with these (Python 3.11): morl-baselines 1.3.0 is the latest release; it needs
# mo-gymnasium>=1.3 and gymnasium>=1.0. numpy, scipy and pymoo are pinned because the
# hypervolume and the equally spaced weights come from them.
PEER_REQUIREMENTS = (
    "morl-baselines==1.3.0", "mo-gymnasium==1.3.2", "gymnasium==1.4.0", "torch==2.13.0",
    "numpy==2.4.6", "scipy==1.17.1", "pymoo==0.6.2",
)
IMPORT_CHECK = "import torch, mo_gymnasium, morl_baselines.multi_policy.envelope.envelope"


def _index_reachable(url: str, timeout: float = 5.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status < 400
    except (OSError, ValueError):
        return False


def peer_works(python: Path) -> bool:
    check = subprocess.run([str(python), "-c", IMPORT_CHECK], capture_output=True,
                           env=_peer_environ(1))
    return check.returncode == 0


def ensure_venv(venv_dir: Path = VENV_DIR) -> Path:
    """The interpreter of the peer's venv (created and installed when missing)."""
    python = venv_dir / "bin" / "python"
    if python.exists() and peer_works(python):
        return python
    print(f"Creating the morl-baselines venv in {venv_dir} ({', '.join(PEER_REQUIREMENTS)})...",
          file=sys.stderr)
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv_dir)], check=True)
    index = os.environ.get("MORL_TORCH_INDEX", TORCH_CPU_INDEX)
    extra = ["--extra-index-url", index] if _index_reachable(index) else []
    if not extra:
        print(f"{index} cannot be reached: torch comes from the default index.",
              file=sys.stderr)
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", *extra,
                    *PEER_REQUIREMENTS], check=True)
    if not peer_works(python):
        raise RuntimeError(f"{python} still cannot import morl-baselines after installing it.")
    return python


def _peer_environ(threads: int) -> dict[str, str]:
    """This environment without the project's paths, with wandb off and threads capped."""
    environ = {k: v for k, v in os.environ.items()
               if k not in ("PYTHONPATH", "VIRTUAL_ENV", "XLA_FLAGS")}
    environ.update({"WANDB_MODE": "disabled", "WANDB_SILENT": "true",
                    "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)})
    return environ


def peer_command(algo: str, env: str, steps: int, seed: int = 0, eval_every: int = 1000,
                 thresholds: Sequence[float] = (), eval_weights: int | None = None,
                 eval_episodes: int | None = None, ref_point: Sequence[float] | None = None,
                 gamma: float | None = None, overrides: dict[str, Any] | None = None,
                 train_overrides: dict[str, Any] | None = None, threads: int = 2,
                 partial_out: str | os.PathLike | None = None) -> list[str]:
    """The arguments of ``morl_peer.py`` for these settings (after the interpreter)."""
    args = [str(PEER), "--algo", algo, "--env", env, "--steps", str(steps), "--seed", str(seed),
            "--eval-every", str(eval_every), "--threads", str(threads)]
    if thresholds:
        args += ["--hv-thresholds", *map(str, thresholds)]
    if eval_weights is not None:
        args += ["--eval-weights", str(eval_weights)]
    if eval_episodes is not None:
        args += ["--eval-episodes", str(eval_episodes)]
    if ref_point is not None:
        args += ["--ref-point", *map(str, ref_point)]
    if gamma is not None:
        args += ["--gamma", str(gamma)]
    if overrides:
        args += ["--set", *(f"{k}={json.dumps(v)}" for k, v in overrides.items())]
    if train_overrides:
        args += ["--train-set", *(f"{k}={json.dumps(v)}" for k, v in train_overrides.items())]
    if partial_out is not None:
        args += ["--partial-out", str(partial_out)]
    return args


def run_peer(algo: str, env: str, steps: int, seed: int = 0, eval_every: int = 1000,
             thresholds: Sequence[float] = (), *, python: str | None = None,
             nice: int | None = None, timeout: float | None = None, threads: int = 2,
             **settings: Any) -> dict:
    """Train ``algo`` on ``env`` with morl-baselines in its venv; the peer's result dict.

    ``settings`` are the other keywords of :func:`peer_command` (``eval_weights``,
    ``eval_episodes``, ``ref_point``, ``gamma``, ``overrides``, ``train_overrides``,
    ``partial_out``).
    """
    python = python or str(ensure_venv())
    command = [python, *peer_command(algo, env, steps, seed, eval_every, thresholds,
                                     threads=threads, **settings)]
    if nice is not None:
        command = ["nice", "-n", str(nice), *command]
    completed = subprocess.run(command, text=True, capture_output=True, timeout=timeout,
                               env=_peer_environ(threads), cwd=HERE)
    lines = [line for line in completed.stdout.splitlines() if line.startswith("{")]
    if completed.returncode != 0 or not lines:
        sys.stderr.write(completed.stdout[-4000:] + completed.stderr[-4000:])
        raise RuntimeError(f"the morl-baselines peer failed (exit {completed.returncode}); its "
                           f"output is above.")
    return json.loads(lines[-1])


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run the morl-baselines peer in its venv.")
    parser.add_argument("--algo", required=True, choices=("envelope", "gpi_ls", "pcn"))
    parser.add_argument("--env", required=True)
    parser.add_argument("--steps", type=int, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--eval-every", type=int, default=1000)
    parser.add_argument("--hv-thresholds", type=float, nargs="*", default=[])
    parser.add_argument("--eval-weights", type=int, default=None)
    parser.add_argument("--eval-episodes", type=int, default=None)
    parser.add_argument("--ref-point", type=float, nargs="+", default=None)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=None)
    args = parser.parse_args(argv)
    result = run_peer(args.algo, args.env, args.steps, args.seed, args.eval_every,
                      args.hv_thresholds, timeout=args.timeout, threads=args.threads,
                      eval_weights=args.eval_weights, eval_episodes=args.eval_episodes,
                      ref_point=args.ref_point)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
