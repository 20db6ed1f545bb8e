"""Seeds spread over several devices (DESIGN.md section 8), on CPU with forced host devices.

The test process has already started JAX with one device, so the multi-device checks run in a
fresh interpreter with ``--xla_force_host_platform_device_count=2``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import jax
import pytest

from jaxrl_suite.run.sharding import seed_mesh, shard_seeds, use_all_cpu_cores

SCRIPT = textwrap.dedent("""
    import json, shutil, sys
    import jax, numpy as np
    from jaxrl_suite.algos import sac
    from jaxrl_suite.run.harness import RunOptions, run_training

    assert len(jax.devices()) == 2, jax.devices()
    root = sys.argv[1]
    config = sac.preset_config("gymnax/Pendulum-v1", total_steps=260, learning_starts=200,
                               buffer_size=250, batch_size=32, hidden_sizes=(16, 16))
    options = RunOptions(env="gymnax/Pendulum-v1", seeds=4, seed=3, run_dir=root + "/run",
                         checkpoint_every=20, no_progress=False, progress_every=10,
                         eval_episodes=2)
    full, run_dir = run_training(sac, config, options)
    leaf = full.state.critic_params["params"]["VmapMLP_0"]["Dense_0"]["kernel"]
    assert len(leaf.sharding.device_set) == 2, leaf.sharding  # seeds really split

    # Resume from the checkpoint before the last, sharded as well: bit for bit.
    shutil.rmtree(run_dir / "checkpoints" / "60")
    resumed, _ = run_training(sac, config, RunOptions(**{
        **options.__dict__, "run_dir": None, "resume": str(run_dir)}))
    for a, b in zip(jax.tree.leaves(full.state), jax.tree.leaves(resumed.state), strict=True):
        if jax.dtypes.issubdtype(a.dtype, jax.dtypes.prng_key):
            a, b = jax.random.key_data(a), jax.random.key_data(b)
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))

    # The same seeds on one device: equal up to float round-off of batched matmuls.
    from jaxrl_suite.env.registry import make
    env, params = make("gymnax/Pendulum-v1")
    train = sac.make_train(config, env, params)
    keys = jax.random.split(jax.random.key(3), 4)
    alone = jax.jit(jax.vmap(train))(jax.device_put(keys, jax.devices()[0]))
    np.testing.assert_allclose(np.asarray(alone.state.critic_params["params"]["VmapMLP_0"]
                                          ["Dense_0"]["kernel"]), np.asarray(leaf),
                               rtol=1e-4, atol=1e-5)
    print("SHARDED-OK", json.dumps(sorted(str(d) for d in leaf.sharding.device_set)))
""")


@pytest.mark.slow
def test_seed_sharded_run_resumes_bit_for_bit_and_matches_one_device(tmp_path):
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2",
           "JAX_PLATFORMS": "cpu"}
    completed = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path)], env=env,
                               capture_output=True, text=True, timeout=600)
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "SHARDED-OK" in completed.stdout
    # The progress reports of sharded seeds are gathered, not rematerialised with a warning each.
    assert "Involuntary full rematerialization" not in completed.stderr, completed.stderr[-2000:]


def test_one_device_or_indivisible_seeds_leave_the_state_alone():
    tree = {"x": jax.numpy.zeros((4, 3))}
    assert seed_mesh(4) is None  # this process has one CPU device
    assert shard_seeds(tree, 4) is tree
    devices = [jax.devices()[0]] * 2  # as if two devices: 3 seeds cannot be split evenly
    assert seed_mesh(3, devices) is None


CORES_SCRIPT = textwrap.dedent("""
    import os
    from jaxrl_suite.run.sharding import use_all_cpu_cores
    added = use_all_cpu_cores()
    import jax
    print(added, len(jax.devices()), os.environ.get("XLA_FLAGS", ""))
    print(use_all_cpu_cores())  # JAX has started: nothing more is changed
""")


def run_cores_script(**environment) -> list[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "JAX_PLATFORMS")}
    completed = subprocess.run([sys.executable, "-c", CORES_SCRIPT], capture_output=True,
                               text=True, timeout=120, env={**env, **environment})
    assert completed.returncode == 0, completed.stderr[-2000:]
    return completed.stdout.split("\n")


def test_use_all_cpu_cores_gives_one_device_per_core_unless_told_otherwise():
    cores = len(os.sched_getaffinity(0))
    first, second = run_cores_script()[:2]
    assert first.split()[:2] == ([str(cores > 1), str(max(cores, 1))])
    assert second == "False"
    explicit = run_cores_script(XLA_FLAGS="--xla_force_host_platform_device_count=3")[0]
    assert explicit.split() == ["False", "3", "--xla_force_host_platform_device_count=3"]


def test_use_all_cpu_cores_changes_nothing_once_jax_has_started(monkeypatch):
    jax.devices()  # this process's backend is running
    monkeypatch.setenv("XLA_FLAGS", "")
    assert use_all_cpu_cores() is False
    assert os.environ["XLA_FLAGS"] == ""
