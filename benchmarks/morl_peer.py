"""Trains one morl-baselines algorithm and traces its hypervolume: run in the peer's own venv.

The peer is morl-baselines (PyTorch) on MO-Gymnasium environments. It cannot share this
project's environment (it pulls torch, wandb, pymoo, cvxpy and pins of its own), so
``benchmarks/morl_runner.py`` creates ``benchmarks/.venv-morl`` and starts this file with that
venv's interpreter. It imports nothing from this project and can be run by hand there::

    benchmarks/.venv-morl/bin/python benchmarks/morl_peer.py --algo envelope \\
        --env deep-sea-treasure-v0 --steps 30000 --seed 0 --eval-every 1000 \\
        --hv-thresholds 300 401.8

What it does
------------
It builds the algorithm with the hyperparameters of morl-baselines' own examples (see
:data:`ALGOS`; wandb logging off) and calls the algorithm's own ``train`` once, for ``--steps``
environment steps. The training environment is wrapped in :class:`EvalEveryWrapper`, which
counts the steps the algorithm takes and, once ``--eval-every`` more have been taken, evaluates
the current set of policies *before the algorithm's next step or reset* (so after the update
that follows the counted step). The evaluation is morl-baselines' own, as its ``train`` loops
do it when logging: for Envelope and GPI-LS, ``policy_evaluation_mo`` (greedy ``agent.eval``
episodes, averaged over ``--eval-episodes``) for each of ``equally_spaced_weights(dim,
--eval-weights)``; for PCN, its ``evaluate`` (one greedy episode per command of its
``_nlargest`` archive). It runs on a separate environment instance, so it consumes none of the
algorithm's randomness, and its time is excluded from ``wall_time_s``.

From the evaluated returns it keeps the *undiscounted* front (``filter_pareto_dominated``),
its ``hypervolume`` at the reference point and the ``expected_utility`` over
``equally_spaced_weights(dim, 50)`` (morl-baselines' ``num_eval_weights_for_eval`` default).
morl-baselines logs the *discounted* front; its hypervolume is recorded too
(``hypervolume_discounted``), for comparison with their published curves.

Reference points (morl-baselines' own choices):

* ``deep-sea-treasure-v0``: ``[0, -25]``, as in its ``examples/ols_dst.py``,
  ``examples/mp_mo_q_learning_DST.py``, ``examples/pql_dst.py``, ``tests/test_algos.py`` and
  the ``experiments/benchmark/launch_experiment.py`` docstring (``--ref-point 0 -25``). The
  undiscounted front of the (convex) default map has hypervolume 401.8 there (10 points; our
  ``known_front_hypervolume``, from ``env.unwrapped.pareto_front(gamma=1.0)``).
* ``minecart-v0``: ``[0, 0, -200]``, as in ``examples/envelope_minecart.py``,
  ``examples/gpi_pd_minecart.py`` and ``examples/pcn_minecart.py``.
* ``mo-mountaincar-v0``: ``[-110, -110, -110]``. No example, test or script of the
  morl-baselines repository names it (its benchmark script takes ``--ref-point`` on the
  command line and the per-env values were kept in its issue #43 and the openrlbenchmark wandb
  runs); this is the value the benchmark was specified with. Only episodes that reach the goal
  in under 110 steps fall inside it. ``--ref-point`` overrides any of them.

Timing: ``wall_time_s`` in the trace is ``time.perf_counter()`` since the call of ``train``,
less the time spent in this script's evaluations. Work the algorithm itself does on its
evaluation env (GPI-LS's weight selection evaluates corner weights with
``policy_evaluation_mo``) is part of training and is counted. Torch runs on
``--threads`` CPU threads (default 2, this machine's cores).

Output: one JSON object on stdout (everything the algorithms print goes to stderr): ``algo``,
``env``, ``versions``, ``config``, ``trace`` (a list of ``{env_steps, wall_time_s,
hypervolume, expected_utility, hypervolume_discounted, front}``), ``train_wall_time_s``,
``eval_time_s``, ``elapsed_s``, ``time_to_threshold`` (per ``--hv-thresholds`` value: the first
trace point at or above it, or null), ``torch_threads``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from importlib import metadata
from typing import Any

# wandb is imported by every morl-baselines module; with log=False it is never started, and
# this keeps it from trying to reach its servers should anything call it anyway.
os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("WANDB_SILENT", "true")

import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402

PACKAGES = ("morl-baselines", "mo-gymnasium", "gymnasium", "torch", "numpy", "pymoo", "scipy")

# Per environment: the hypervolume reference point, the discount the algorithms are given,
# and how many evaluation episodes each weight gets. DST is deterministic (fixed start, greedy
# policies), so one episode is the exact return; the others start at random states and get
# morl-baselines' default num_eval_episodes_for_front=5.
ENVS: dict[str, dict[str, Any]] = {
    "deep-sea-treasure-v0": {
        "ref_point": [0.0, -25.0],
        # gamma 0.99: the launch_experiment.py PCN/DST command and the issue #43 template
        # (--gamma 0.99). With 0.99 all 10 treasures are strictly on the discounted convex
        # hull (undiscounted, (20.3, -14) only lies on a segment), so linear methods can find
        # the whole front.
        "gamma": 0.99,
        "eval_episodes": 1,
    },
    "mo-mountaincar-v0": {"ref_point": [-110.0, -110.0, -110.0], "gamma": 0.99,
                          "eval_episodes": 5},
    # gamma 0.98: examples/envelope_minecart.py and examples/gpi_pd_minecart.py.
    "minecart-v0": {"ref_point": [0.0, 0.0, -200.0], "gamma": 0.98, "eval_episodes": 5},
}

# Constructor keyword arguments, from morl-baselines' own examples (gamma comes from ENVS).
ALGOS: dict[str, dict[str, Any]] = {
    # examples/envelope_minecart.py, the library's Envelope example.
    "envelope": {
        "max_grad_norm": 0.1, "learning_rate": 3e-4, "batch_size": 64,
        "net_arch": [256, 256, 256, 256], "buffer_size": int(2e6), "initial_epsilon": 1.0,
        "final_epsilon": 0.05, "epsilon_decay_steps": 50000, "initial_homotopy_lambda": 0.0,
        "final_homotopy_lambda": 1.0, "homotopy_decay_steps": 10000, "learning_starts": 100,
        "envelope": True, "gradient_updates": 1, "target_net_update_freq": 1000, "tau": 1,
    },
    # examples/gpi_pd_minecart.py run as GPI-LS (morl-baselines' GPILS class: no Dyna model).
    # That example sets per=gpi_pd, i.e. per=False for GPI-LS, but in morl-baselines 1.3.0
    # (and its main branch of July 2026) GPIPD.update unpacks 5 values from the plain replay
    # buffer's 6 and fails; per=True is GPILS's class default and works. gradient_updates is
    # the example's command-line argument ``g`` (no default there; the class default is 20,
    # and it only applies after dynamics_rollout_starts=5000 steps): 1 here, like Envelope's,
    # so both peers take one update per step; --set gradient_updates=20 gives the default.
    "gpi_ls": {
        "num_nets": 2, "max_grad_norm": None, "learning_rate": 3e-4, "batch_size": 128,
        "net_arch": [256, 256, 256, 256], "buffer_size": int(2e5), "initial_epsilon": 1.0,
        "final_epsilon": 0.05, "epsilon_decay_steps": 50000, "learning_starts": 100,
        "alpha_per": 0.6, "min_priority": 0.01, "per": True, "use_gpi": True,
        "gradient_updates": 1, "target_net_update_freq": 200, "tau": 1,
    },
    # experiments/benchmark/launch_experiment.py docstring: --algo pcn --env-id
    # deep-sea-treasure-v0 --gamma 0.99 --init-hyperparams "scaling_factor:np.array([1, 1, 1])";
    # learning_rate and batch_size from examples/pcn_minecart.py (the class defaults too).
    "pcn": {"scaling_factor": [1.0, 1.0, 1.0], "learning_rate": 1e-3, "batch_size": 256},
}

# Keyword arguments of the algorithms' train(), besides the budget and evaluation settings.
TRAIN_KWARGS: dict[str, dict[str, Any]] = {
    # examples/gpi_pd_minecart.py: timesteps_per_iter=10000, weight_selection_algo="gpi-ls".
    "gpi_ls": {"timesteps_per_iter": 10000, "weight_selection_algo": "gpi-ls",
               "num_eval_episodes_for_front": 5, "checkpoints": False},
    # examples/pcn_minecart.py: num_er_episodes=20, max_buffer_size=50, num_model_updates=50;
    # train()'s defaults for the rest. max_return per env below.
    "pcn": {"num_er_episodes": 20, "max_buffer_size": 50, "num_model_updates": 50,
            "num_step_episodes": 10},
}
# PCN clips desired returns at max_return (default 100 per objective): the best return of
# each objective, like examples/pcn_minecart.py's [1.5, 1.5, -0.0] for minecart.
PCN_MAX_RETURN = {"deep-sea-treasure-v0": [23.7, -1.0], "minecart-v0": [1.5, 1.5, -0.0],
                  "mo-mountaincar-v0": [0.0, 0.0, 0.0]}


class EvalEveryWrapper(gym.Wrapper):
    """Counts the steps taken in the wrapped env and calls ``evaluate`` every ``every`` steps.

    The call is deferred to the next ``step`` or ``reset`` (or :meth:`flush`), so the
    algorithm has finished the update that follows the counted step before it is evaluated.
    """

    def __init__(self, env: gym.Env, every: int, evaluate: Callable[[int], None]):
        super().__init__(env)
        self.every = every
        self.evaluate = evaluate
        self.steps = 0
        self.pending: int | None = None

    def flush(self) -> None:
        if self.pending is not None:
            step, self.pending = self.pending, None
            self.evaluate(step)

    def reset(self, **kwargs):
        self.flush()
        return self.env.reset(**kwargs)

    def step(self, action):
        self.flush()
        result = self.env.step(action)
        self.steps += 1
        if self.steps % self.every == 0:
            self.pending = self.steps
        return result


def parse_assignments(items: Sequence[str]) -> dict[str, Any]:
    """``name=value`` pairs, each value read as JSON (``lr=1e-3``, ``net_arch=[64,64]``)."""
    out = {}
    for item in items:
        name, _, text = item.partition("=")
        try:
            out[name] = json.loads(text)
        except json.JSONDecodeError:
            out[name] = text
    return out


def versions() -> dict[str, str]:
    out = {"python": platform.python_version(), "platform": platform.platform()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "missing"
    return out


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, float | int | str | bool) or value is None:
        return value
    return repr(value)


def make_agent(algo: str, env: gym.Env, gamma: float, seed: int, overrides: dict[str, Any]):
    """The morl-baselines agent for ``algo`` (wandb off)."""
    kwargs = {**ALGOS[algo], "gamma": gamma, **overrides}
    if algo == "envelope":
        from morl_baselines.multi_policy.envelope.envelope import Envelope

        return Envelope(env, log=False, seed=seed, device="cpu", **kwargs)
    if algo == "gpi_ls":
        from morl_baselines.multi_policy.gpi_pd.gpi_pd import GPILS

        return GPILS(env, log=False, seed=seed, device="cpu", **kwargs)
    if algo == "pcn":
        from morl_baselines.multi_policy.pcn.pcn import PCN

        # PCN's scaling factor covers each objective and the horizon.
        scaling = kwargs.pop("scaling_factor")
        reward_dim = env.unwrapped.reward_space.shape[0]
        if len(scaling) != reward_dim + 1:
            scaling = [1.0] * (reward_dim + 1)
        return PCN(env, scaling_factor=np.array(scaling, dtype=np.float32), log=False,
                   seed=seed, device="cpu", **kwargs)
    raise SystemExit(f"unknown algo {algo!r}; one of {sorted(ALGOS)}")


def train(algo: str, agent, env_id: str, steps: int, algo_eval_env: gym.Env,
          ref_point: np.ndarray, train_kwargs: dict[str, Any]) -> None:
    """One call of the algorithm's own ``train`` (its evaluations are off: log=False)."""
    if algo == "envelope":
        # eval_env=None: Envelope evaluates only when logging anyway; the wrapper does ours.
        agent.train(total_timesteps=steps, eval_env=None, ref_point=ref_point, **train_kwargs)
    elif algo == "gpi_ls":
        # The weight selection (linear support) evaluates on algo_eval_env: part of training.
        agent.train(total_timesteps=steps, eval_env=algo_eval_env, ref_point=ref_point,
                    **train_kwargs)
    elif algo == "pcn":
        # With log=False PCN's checkpoint evaluations only feed wandb; they would also mutate
        # its archive (``_nlargest`` re-heapifies it) and write weights/ files, so are skipped.
        agent.save = lambda *args, **kwargs: None
        agent.evaluate = lambda *args, **kwargs: ([], None, None)
        agent.train(total_timesteps=steps, eval_env=algo_eval_env, ref_point=ref_point,
                    **train_kwargs)


def evaluate_front(algo: str, agent, env: gym.Env, weights: list[np.ndarray], episodes: int,
                   max_return: np.ndarray | None, num_points: int
                   ) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(undiscounted, discounted) returns of the agent's current policies, morl-baselines' way."""
    if algo == "pcn":
        return _pcn_front(agent, env, max_return, num_points)
    from morl_baselines.common.evaluation import policy_evaluation_mo

    undiscounted, discounted = [], []
    for w in weights:
        _, _, vec, disc_vec = policy_evaluation_mo(agent, env, w, rep=episodes)
        undiscounted.append(np.asarray(vec, dtype=np.float64))
        discounted.append(np.asarray(disc_vec, dtype=np.float64))
    return undiscounted, discounted


def _pcn_front(agent, env: gym.Env, max_return: np.ndarray, n: int):
    """PCN's ``evaluate``: a greedy episode per command of its ``_nlargest(n)`` archive.

    Its own ``evaluate`` returns returns discounted by its gamma and re-sorts its archive; this
    runs the same episodes on a copy of the archive and keeps both sums.
    """
    saved = list(agent.experience_replay)
    try:
        n = min(n, len(agent.experience_replay))
        episodes = agent._nlargest(n)
    finally:
        agent.experience_replay = saved
    undiscounted, discounted = [], []
    for episode in episodes:
        transitions = episode[2]
        command, horizon = transitions[0].reward, np.float32(len(transitions))
        run = agent._run_episode(env, command, horizon, max_return, eval_mode=True)
        rewards = np.array([t.reward for t in run], dtype=np.float64)
        undiscounted.append(rewards.sum(axis=0))
        discounts = agent.gamma ** np.arange(len(rewards))
        discounted.append((discounts[:, None] * rewards).sum(axis=0))
    return undiscounted, discounted


def front_metrics(points: list[np.ndarray], ref_point: np.ndarray, eu_weights: list[np.ndarray]
                  ) -> tuple[float, float, list[list[float]]]:
    """Hypervolume, expected utility and the non-dominated points, as morl-baselines logs them."""
    from morl_baselines.common.pareto import filter_pareto_dominated
    from morl_baselines.common.performance_indicators import expected_utility, hypervolume

    if not points:
        return 0.0, float("nan"), []
    front = list(filter_pareto_dominated(points))
    hv = float(hypervolume(ref_point, front))
    eu = float(expected_utility(front, weights_set=eu_weights))
    front = sorted([[round(float(x), 6) for x in p] for p in front])
    return hv, eu, front


def time_to_thresholds(trace: list[dict], thresholds: Sequence[float]) -> list[dict]:
    """For each threshold, the first trace point whose hypervolume reaches it (else nulls)."""
    out = []
    for threshold in thresholds:
        # a relative tolerance: the returns are float32 sums (DST's full front is 401.8 or
        # 401.79999 depending on the order of the additions)
        floor = threshold - 1e-6 * max(1.0, abs(threshold))
        hit = next((p for p in trace if p["hypervolume"] >= floor), None)
        out.append({"hypervolume": threshold,
                    "env_steps": hit["env_steps"] if hit else None,
                    "wall_time_s": hit["wall_time_s"] if hit else None,
                    "cpu_time_s": hit.get("cpu_time_s") if hit else None})
    return out


def run(algo: str, env_id: str, steps: int, seed: int = 0, eval_every: int = 1000,
        thresholds: Sequence[float] = (), eval_weights: int = 100,
        eval_episodes: int | None = None, ref_point: Sequence[float] | None = None,
        gamma: float | None = None, overrides: dict[str, Any] | None = None,
        train_overrides: dict[str, Any] | None = None, threads: int = 2,
        partial_out: str | None = None) -> dict:
    """Train ``algo`` on ``env_id`` for ``steps`` env steps; the result dict (see the docstring)."""
    import mo_gymnasium as mo_gym
    import torch
    from morl_baselines.common.evaluation import seed_everything
    from morl_baselines.common.weights import equally_spaced_weights

    torch.set_num_threads(threads)
    seed_everything(seed)
    spec = ENVS.get(env_id, {"ref_point": None, "gamma": 0.99, "eval_episodes": 5})
    ref = np.array(ref_point if ref_point is not None else spec["ref_point"], dtype=np.float64)
    if ref is None or ref.ndim == 0:
        raise SystemExit(f"no reference point known for {env_id}: pass --ref-point")
    gamma = spec["gamma"] if gamma is None else gamma
    episodes = spec["eval_episodes"] if eval_episodes is None else eval_episodes

    t_setup = time.perf_counter()
    base_env = mo_gym.make(env_id)
    algo_eval_env = mo_gym.make(env_id)
    measure_env = mo_gym.make(env_id)
    for offset, env in enumerate((base_env, algo_eval_env, measure_env)):
        env.reset(seed=seed + offset)  # later resets continue these generators
        env.action_space.seed(seed + offset)
    reward_dim = base_env.unwrapped.reward_space.shape[0]
    weights = equally_spaced_weights(reward_dim, eval_weights)
    eu_weights = equally_spaced_weights(reward_dim, 50)
    max_return = np.array(PCN_MAX_RETURN.get(env_id, [100.0] * reward_dim), dtype=np.float32)
    known_front_hv = None
    if hasattr(base_env.unwrapped, "pareto_front"):
        known = base_env.unwrapped.pareto_front(gamma=1.0)
        known_front_hv = float(front_metrics(list(known), ref, eu_weights)[0])

    trace: list[dict] = []
    # wall and process-CPU clocks of training: the CPU one is less disturbed by other jobs
    # on a shared machine (it still counts both torch threads).
    clock = {"start": 0.0, "eval": 0.0, "cpu_start": 0.0, "cpu_eval": 0.0}

    def on_eval(step: int) -> None:
        begin, cpu_begin = time.perf_counter(), time.process_time()
        wall = begin - clock["start"] - clock["eval"]
        cpu = cpu_begin - clock["cpu_start"] - clock["cpu_eval"]
        undiscounted, discounted = evaluate_front(algo, agent, measure_env, weights, episodes,
                                                  max_return, eval_weights)
        hv, eu, front = front_metrics(undiscounted, ref, eu_weights)
        hv_disc, _, _ = front_metrics(discounted, ref, eu_weights)
        trace.append({"env_steps": step, "wall_time_s": round(wall, 4),
                      "cpu_time_s": round(cpu, 4), "hypervolume": hv, "expected_utility": eu,
                      "hypervolume_discounted": hv_disc, "front": front})
        clock["eval"] += time.perf_counter() - begin
        clock["cpu_eval"] += time.process_time() - cpu_begin
        if partial_out:  # what a run cut short by a timeout still leaves behind
            with open(partial_out, "w") as handle:
                json.dump(summary(partial=True), handle)
        print(f"[morl_peer] {algo} {env_id} step {step}: hv {hv:.3f} eu {eu:.3f} "
              f"wall {wall:.1f}s", file=sys.stderr, flush=True)

    def summary(partial: bool) -> dict:
        """The result (``partial``: so far, from an evaluation during training)."""
        now = time.perf_counter()
        return {
            "algo": algo,
            "env": env_id,
            "partial": partial,
            "versions": versions(),
            "config": {
                "steps": steps, "env_steps_taken": env.steps, "seed": seed,
                "eval_every": eval_every, "eval_weights": eval_weights,
                "eval_episodes": episodes, "eu_weights": 50, "ref_point": ref.tolist(),
                "gamma": gamma, "known_front_hypervolume": known_front_hv,
                "agent": _jsonable(agent.get_config()),
                "train_kwargs": _jsonable(train_kwargs),
                "overrides": _jsonable(overrides or {}),
            },
            "trace": trace,
            # training time less evaluations (so far, when partial)
            "train_wall_time_s": round(clock.get("train_wall", trace[-1]["wall_time_s"]), 4),
            "train_cpu_time_s": round(clock.get("train_cpu", trace[-1]["cpu_time_s"]), 4),
            "eval_time_s": round(clock["eval"], 4),
            "setup_s": round(setup_s, 4),
            "elapsed_s": round(now - t_setup, 4),
            "final_hypervolume": trace[-1]["hypervolume"],
            "max_hypervolume": max(p["hypervolume"] for p in trace),
            "time_to_threshold": time_to_thresholds(trace, thresholds),
            "torch_threads": torch.get_num_threads(),
            "cpu_count": os.cpu_count(),
            # 1-minute load averages: other jobs on a shared machine slow the wall clock down
            "loadavg_start": round(load_start[0], 2),
            "loadavg_now": round(os.getloadavg()[0], 2),
        }

    env = EvalEveryWrapper(base_env, eval_every, on_eval)
    agent = make_agent(algo, env, gamma, seed, overrides or {})
    train_kwargs = {**TRAIN_KWARGS.get(algo, {}), **(train_overrides or {})}
    if algo == "gpi_ls":  # it trains steps // timesteps_per_iter whole iterations
        train_kwargs["timesteps_per_iter"] = min(train_kwargs["timesteps_per_iter"], steps)
    if algo == "pcn":
        train_kwargs.setdefault("max_return", max_return)
        train_kwargs.setdefault("num_points_pf", eval_weights)
    setup_s = time.perf_counter() - t_setup

    load_start = os.getloadavg()
    clock["start"], clock["cpu_start"] = time.perf_counter(), time.process_time()
    train(algo, agent, env_id, steps, algo_eval_env, ref, train_kwargs)
    end, cpu_end = time.perf_counter(), time.process_time()
    eval_during_train, cpu_eval_during_train = clock["eval"], clock["cpu_eval"]
    env.flush()
    if not trace or trace[-1]["env_steps"] != env.steps:  # always end on a final evaluation
        env.pending = env.steps
        env.flush()
    clock["train_wall"] = end - clock["start"] - eval_during_train
    clock["train_cpu"] = cpu_end - clock["cpu_start"] - cpu_eval_during_train
    return summary(partial=False)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--algo", required=True, choices=sorted(ALGOS))
    parser.add_argument("--env", required=True, help="an MO-Gymnasium id, e.g. "
                        + ", ".join(ENVS))
    parser.add_argument("--steps", type=int, required=True, help="training env steps")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--eval-every", type=int, default=1000, help="env steps between "
                        "evaluations")
    parser.add_argument("--hv-thresholds", type=float, nargs="*", default=[])
    parser.add_argument("--eval-weights", type=int, default=100, help="equally spaced weights "
                        "(morl-baselines' num_eval_weights_for_front default: 100)")
    parser.add_argument("--eval-episodes", type=int, default=None, help="episodes per weight "
                        "(default per env: DST 1, others 5)")
    parser.add_argument("--ref-point", type=float, nargs="+", default=None)
    parser.add_argument("--gamma", type=float, default=None)
    parser.add_argument("--set", nargs="*", default=[], metavar="NAME=JSON",
                        help="constructor keyword overrides")
    parser.add_argument("--train-set", nargs="*", default=[], metavar="NAME=JSON",
                        help="train() keyword overrides")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--partial-out", default=None, help="file rewritten with the trace so "
                        "far after each evaluation")
    args = parser.parse_args(argv)

    stdout = sys.stdout
    # The algorithms print progress (GPI-LS its weights, PCN every step): keep stdout for JSON.
    with contextlib.redirect_stdout(sys.stderr):
        result = run(args.algo, args.env, args.steps, seed=args.seed, eval_every=args.eval_every,
                     thresholds=args.hv_thresholds, eval_weights=args.eval_weights,
                     eval_episodes=args.eval_episodes, ref_point=args.ref_point,
                     gamma=args.gamma, overrides=parse_assignments(args.set),
                     train_overrides=parse_assignments(args.train_set), threads=args.threads,
                     partial_out=args.partial_out)
    stdout.write(json.dumps(result) + "\n")
    stdout.flush()


if __name__ == "__main__":
    main()
