"""One persistent XLA compilation cache for the whole test run, and what it saved.

Compilation dominates the suite on 2 cores, and many tests build the same program from separate
``make_train`` calls (the harness's init and evaluation programs, a learning test and another
test of the same preset): jit's in-memory cache keys on the Python function, so it cannot share
them; the persistent cache keys on the compiled program itself, so it can, across tests and
across the two pytest processes ``make test`` runs at once (and the subprocesses some tests
start, through the environment variables). It changes no result: a hit returns the executable
XLA compiled for the same program. (XLA's backend optimisation stays at its default level for
the session: unoptimised, MJX's constraint-solver loops run for minutes; the programs where
turning it off pays are compiled so one by one, ``tests/conformance.py:jit_fast_compile``.)

The cache lives in ``build/jax_cache`` (``JAXRL_TEST_CACHE`` overrides it; ``make clean`` removes
it). Only programs that took at least ``MIN_COMPILE_S`` to compile are written: below that,
writing and reading back cost about what compiling does. The terminal summary says how many
compiles the cache served and the compile time they saved.
"""

from __future__ import annotations

import os
from pathlib import Path

import jax
from jax._src import monitoring

MIN_COMPILE_S = 0.5
CACHE_DIR = Path(os.environ.get("JAXRL_TEST_CACHE",
                                Path(__file__).resolve().parents[1] / "build" / "jax_cache"))

os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(CACHE_DIR))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", str(MIN_COMPILE_S))
jax.config.update("jax_compilation_cache_dir", os.environ["JAX_COMPILATION_CACHE_DIR"])
jax.config.update("jax_persistent_cache_min_compile_time_secs",
                  float(os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"]))
jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)

_totals = {"compile_s": 0.0, "compiles": 0, "saved_s": 0.0, "hits": 0}


def _on_duration(event: str, seconds: float, **_: object) -> None:
    if event == "/jax/core/compile/backend_compile_duration":
        _totals["compile_s"] += seconds
        _totals["compiles"] += 1
    elif event == "/jax/compilation_cache/compile_time_saved_sec":
        _totals["saved_s"] += seconds
        _totals["hits"] += 1


monitoring.register_event_duration_secs_listener(_on_duration)


def pytest_terminal_summary(terminalreporter) -> None:
    terminalreporter.write_line(
        f"XLA compilation: {_totals['compiles']} compiles, {_totals['compile_s']:.0f} s "
        f"(cache reads included); persistent cache ({CACHE_DIR}): {_totals['hits']} hits, "
        f"{_totals['saved_s']:.0f} s of compiling saved"
    )
