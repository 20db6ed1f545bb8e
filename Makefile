# Two commands: `make test` and `make demo`. Both create .venv if it is missing and install the
# project into it, so they work on a bare machine with only Python and pip. `make test-fast` is
# the quick tier: the same two processes, without the tests marked slow (compile-heavy or
# learning; `pytest -m "not slow"`): about 2 min on 2 cores (4 while another job compiles on
# them) instead of about 20.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: test test-fast demo lint bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The conformance suite (about 150 compiled env programs, Brax and MJX included) runs in its own
# process: after it, in the same process, XLA's CPU compiler segfaulted compiling a later Brax
# program (tests/test_offpolicy.py's SAC smoke test; reproduced twice, never in smaller runs).
# The two processes run at once: compiling takes most of the time and uses about one core, so
# on 2 cores this nearly halves the wall time. The side process's log is printed when both end.
# The offline RL tests (Pendulum datasets, collected once per process) and the core-contract
# tests (optimisers, objectives, vector rewards) join the conformance process, which balances
# the two: each takes about as long as the other. Nothing more joins it: with the grid-world
# and ES tests added after them, XLA's CPU compiler segfaulted in that process (twice, in
# compiling, once in writing the compilation cache), as it did after conformance before.
SIDE_TESTS := tests/test_conformance.py tests/test_datasets.py tests/test_collect.py \
	tests/test_offline.py tests/test_iql.py tests/test_td3_bc.py tests/test_cql.py \
	tests/test_rebrac.py tests/test_contracts.py tests/test_vector_rewards.py \
	tests/test_optim.py
# A second group runs after it in the side job, in a fresh process (so XLA starts anew): the
# meta-learning and multi-objective tests. It moves time out of the rest (the longer of the
# two), which was at 21 of the 30 minutes CI allows.
SIDE2_TESTS := tests/test_lpg.py tests/test_gridworld.py tests/test_es.py tests/test_pareto.py \
	tests/test_scalarize.py tests/test_cmorl.py tests/test_preference_set.py tests/test_mo_envs.py \
	tests/test_envelope.py tests/test_lpo.py tests/test_open.py
ALL_SIDE := $(SIDE_TESTS) $(SIDE2_TESTS)

# $(call run_tests,PYTEST_OPTIONS): ruff, then pytest over SIDE_TESTS and over the rest, at once,
# each listing its 15 slowest tests. tests/conftest.py shares one persistent compilation cache
# (build/jax_cache) between the two processes and says how much compiling it saved.
define run_tests
	$(PY) -m ruff check .
	@mkdir -p build
	@( $(PY) -m pytest $(1) --durations=15 $(SIDE_TESTS); first=$$?; \
	  $(PY) -m pytest $(1) --durations=15 $(SIDE2_TESTS); second=$$?; \
	  test $$first -eq 0 && test $$second -eq 0 ) > build/side_tests.log 2>&1 & side=$$!; \
	$(PY) -m pytest $(1) --durations=15 $(foreach t,$(ALL_SIDE),--ignore=$(t)); rest=$$?; \
	wait $$side; side_status=$$?; \
	echo "--- $(ALL_SIDE) (ran alongside) ---"; cat build/side_tests.log; \
	test $$rest -eq 0 && test $$side_status -eq 0
endef

test: $(STAMP)
	$(call run_tests,)

test-fast: $(STAMP)
	$(call run_tests,-m "not slow")

demo: $(STAMP)
	$(VENV)/bin/jaxrl train ppo --env gymnax/CartPole-v1 --seeds 4

lint: $(STAMP)
	$(PY) -m ruff check .

bench: $(STAMP)
	$(PY) benchmarks/env_throughput.py
	$(PY) benchmarks/ppo_cartpole.py
	$(PY) benchmarks/offpolicy.py
	$(PY) benchmarks/maze_throughput.py

clean:
	rm -rf $(VENV) build dist *.egg-info
