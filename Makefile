# Two commands: `make test` and `make demo`. Both create .venv if it is missing and install the
# project into it, so they work on a bare machine with only Python and pip.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: test demo lint bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The conformance suite (about 150 compiled env programs, Brax and MJX included) runs in its own
# process: after it, in the same process, XLA's CPU compiler segfaulted compiling a later Brax
# program (tests/test_offpolicy.py's SAC smoke test; reproduced twice, never in smaller runs).
test: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m pytest tests/test_conformance.py
	$(PY) -m pytest --ignore=tests/test_conformance.py

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
