"""notebooks/quickstart.ipynb runs top to bottom (small budget) and shows what it promises.

The kernel is this interpreter: a kernelspec pointing at ``sys.executable`` is written to a
temporary folder, so a ``python3`` kernelspec of some other Python on the machine cannot be
picked up. The kernel runs with ``JAXRL_NOTEBOOK_SMALL=1`` and ``TMPDIR`` in pytest's temporary
folder, so the notebook's run folder and GIF are cleaned up with it.

Compilation dominates the run: each PPO program takes about 10 s to compile on a 2-core CPU and
under a second to run at the small budget. So the kernel also gets XLA's backend optimisation
off (programs compile about twice as fast and run slower, a good trade for a smoke run) and a
fresh persistent compilation cache (``run_training``, ``evaluate_run`` and the notebook's own
``Checkpointer`` cell build identical init and evaluation programs from separate ``make_train``
calls, which jit's in-memory cache cannot share). Measured on 2 cores: about 60 s -> 37 s.
Neither changes what the notebook computes beyond floating-point rounding.
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
from pathlib import Path

import nbclient
import nbformat
import pytest
from ipykernel.kernelspec import install as install_kernelspec
from jupyter_client import KernelManager
from jupyter_client.kernelspec import KernelSpecManager

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "quickstart.ipynb"
KERNEL_NAME = "jaxrl-suite-notebook-test"
CELL_TIMEOUT_S = 300
SMALL_SEEDS = 4  # NUM_SEEDS of the notebook's small budget

# Appended to the in-memory copy of the notebook only: where the kernel ran and what it wrote.
CHECK_CELL = """\
import json as _json
import sys as _sys
import tempfile as _tempfile

print("NOTEBOOK-CHECK " + _json.dumps({
    "executable": _sys.executable,
    "small": SMALL,
    "tempdir": _tempfile.gettempdir(),
    "work_dir": str(WORK_DIR),
    "run_dir": str(run_dir),
}))
"""


def code_cells(nb) -> list:
    return [cell for cell in nb.cells if cell.cell_type == "code"]


def stdout_text(nb) -> str:
    return "".join(
        output.get("text", "")
        for cell in code_cells(nb)
        for output in cell.outputs
        if output.output_type == "stream" and output.name == "stdout"
    )


def display_mimetypes(nb) -> list[str]:
    """The richest mimetype of every display output (``image/png``, ``image/gif``, ...)."""
    found = []
    for cell in code_cells(nb):
        for output in cell.outputs:
            if output.output_type in ("display_data", "execute_result"):
                found.extend(m for m in output.data if m.startswith("image/"))
    return found


def test_notebook_is_stored_without_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata.kernelspec.name == "python3"
    for index, cell in enumerate(code_cells(nb)):
        assert cell.outputs == [], f"code cell {index} has stored outputs; strip them"
        assert cell.execution_count is None, f"code cell {index} has an execution count"


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    """The notebook executed in a fresh kernel of this interpreter, small budget."""
    root = tmp_path_factory.mktemp("notebook")
    spec_dir = Path(install_kernelspec(prefix=str(root / "kernelspec"), kernel_name=KERNEL_NAME))
    kernel_tmp = root / "tmp"
    kernel_tmp.mkdir()
    xla_flags = " ".join(filter(None, [os.environ.get("XLA_FLAGS", ""),
                                       "--xla_backend_optimization_level=0"]))
    env = {
        **os.environ,
        "JAXRL_NOTEBOOK_SMALL": "1",
        "TMPDIR": str(kernel_tmp),
        "XLA_FLAGS": xla_flags,
        "JAX_COMPILATION_CACHE_DIR": str(root / "jax-cache"),
    }
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(CHECK_CELL))
    manager = KernelManager(
        kernel_name=KERNEL_NAME,
        kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(spec_dir.parent)]),
    )
    client = nbclient.NotebookClient(
        nb,
        km=manager,
        kernel_name=KERNEL_NAME,
        timeout=CELL_TIMEOUT_S,
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},  # cwd, as Jupyter would set it
    )
    client.execute(env=env)  # raises CellExecutionError, with the traceback, if a cell fails
    check_lines = [line for line in stdout_text(nb).splitlines()
                   if line.startswith("NOTEBOOK-CHECK ")]
    assert len(check_lines) == 1
    return nb, json.loads(check_lines[0].removeprefix("NOTEBOOK-CHECK ")), kernel_tmp


@pytest.mark.slow
def test_notebook_ran_in_this_interpreter_on_the_small_budget_and_wrote_to_temp(executed):
    nb, check, kernel_tmp = executed
    assert Path(check["executable"]).resolve() == Path(sys.executable).resolve()
    assert check["small"] is True
    work_dir, run_dir = Path(check["work_dir"]), Path(check["run_dir"])
    assert work_dir.resolve().is_relative_to(kernel_tmp.resolve())
    assert run_dir.resolve().is_relative_to(work_dir.resolve())
    assert not (NOTEBOOK.parent / "runs").exists()
    errors = [output for cell in code_cells(nb) for output in cell.outputs
              if output.output_type == "error"]
    assert errors == []


@pytest.mark.slow
def test_notebook_trains_seeds_and_prints_final_returns_and_wall_time(executed):
    text = stdout_text(executed[0])
    assert "observation space: Box" in text and "action space:      Discrete(2)" in text
    assert "reward 1.0, terminated False" in text
    finals = re.findall(r"^seed (\d+): final return +(\S+)$", text, re.MULTILINE)
    assert [int(seed) for seed, _ in finals] == list(range(SMALL_SEEDS))
    assert all(math.isfinite(float(value)) for _, value in finals), finals
    assert re.search(r"^wall time: [\d.]+ s for 4 seeds", text, re.MULTILINE)
    assert "wall time, already compiled:" in text
    sweep = re.findall(r"^learning rate .*: final return +(\S+) ±", text, re.MULTILINE)
    assert len(sweep) == 4 and all(math.isfinite(float(value)) for value in sweep), sweep


@pytest.mark.slow
def test_notebook_saves_restores_and_evaluates_a_checkpoint(executed):
    text = stdout_text(executed[0])
    assert "config.json" in text and "metrics.csv" in text and "checkpoints/" in text
    assert "restored update 20" in text  # evaluate_run restored the last checkpoint
    assert "deterministic: mean return per seed" in text
    assert "restored params equal the trained ones: True" in text
    assert "a fresh init's params differ from them: True" in text
    assert "greedy episode of" in text


@pytest.mark.slow
def test_notebook_shows_its_figures(executed):
    images = display_mimetypes(executed[0])
    # Learning curves, sweep, the run's learning_curve.png, cart-pole frames, angle/position.
    assert images.count("image/png") >= 5, images
    try:
        import PIL  # noqa: F401
    except ImportError:
        return
    assert "image/gif" in images
