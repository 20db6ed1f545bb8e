"""Offline datasets for tests, made once per process: the Pendulum D4RL family from a SAC agent.

    from tests.offline_data import pendulum_family

    medium = pendulum_family()["medium"]          # a datasets.Dataset, 10,000 transitions

The SAC agent (Pendulum preset, 10k env steps, seed 0) is trained once per process, whatever the
sizes asked for; each size of rollout datasets is made once. Arrays are shared between callers:
do not modify them.
"""

from __future__ import annotations

import functools

from jaxrl_suite.data.collect import (
    KINDS,
    AgentRun,
    References,
    datasets_from_agent,
    reference_returns,
    train_agent,
)
from jaxrl_suite.data.datasets import Dataset

ENV_ID = "gymnax/Pendulum-v1"
ALGORITHM = "sac"


def pendulum_agent(seed: int = 0) -> tuple[AgentRun, References]:
    """The trained SAC agent and its reference returns (about 20 s on two CPU cores)."""
    return _agent(int(seed))


@functools.cache  # called with positional arguments only: one cache entry per seed
def _agent(seed: int) -> tuple[AgentRun, References]:
    run = train_agent(ALGORITHM, ENV_ID, seed=seed)
    return run, reference_returns(run)


@functools.cache
def _family(num_transitions: int, seed: int) -> dict[str, Dataset]:
    run, references = _agent(seed)
    return datasets_from_agent(run, KINDS, num_transitions=num_transitions,
                               references=references)


def pendulum_family(num_transitions: int = 10_000, seed: int = 0) -> dict[str, Dataset]:
    """Every kind (``random``, ``medium``, ``expert``, ``medium-replay``, ``medium-expert``) of
    Pendulum dataset, by kind; the rolled-out ones hold ``num_transitions`` transitions (whole
    200-step episodes, so a multiple of 200 gives exactly that many)."""
    return _family(int(num_transitions), int(seed))
