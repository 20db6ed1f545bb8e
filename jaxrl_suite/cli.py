"""The ``jaxrl`` command.

    jaxrl envs [--prefix gymnax/]          list registered env ids
    jaxrl rollout --env ID [--num-envs N] [--steps T] [--seed S]
                                           random-policy rollout; prints throughput and returns
    jaxrl algos                            list algorithms
    jaxrl train ALGO --env ID [--seeds N] [--total-steps 5e5] [any Config field as a flag]
                                           train; writes runs/<algo>-<env>-<timestamp>/
    jaxrl eval RUN_DIR [--episodes N]      evaluate the last checkpoint of a run, every seed
    jaxrl collect --algo sac --env ID --kind medium [--kind expert | --kind all] [--out DIR]
                  [--transitions 100000] [--seed S] [--total-steps N]
                                           train an agent; write D4RL-style datasets (Minari)
    jaxrl render maze [--level NAME | --generator G --size S --seed S] [--num-levels N]
                      [--rollout-steps T] [--tile-size PX] OUT.png|OUT.gif
                                           picture of a level, a grid of levels, or a GIF of
                                           a random-policy rollout
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

import jax
import numpy as np

from jaxrl_suite.env.rollouts import random_rollout

__all__ = ["main"]


def _episode_metrics(reward: jax.Array, info: dict) -> tuple[jax.Array, jax.Array]:
    episode_return = info["episode_return"]
    if episode_return.ndim > 1:  # multi-objective: report the sum of objectives
        episode_return = episode_return.sum(-1)
    return episode_return, info["returned_episode"]


def _positive(value: str) -> int:
    number = int(float(value))
    if number <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer; got {value}")
    return number


def _cmd_envs(args: argparse.Namespace) -> int:
    import jaxrl_suite

    for env_id in jaxrl_suite.registered_envs():
        if env_id.startswith(args.prefix):
            print(env_id)
    return 0


def _cmd_rollout(args: argparse.Namespace) -> int:
    import jaxrl_suite

    env, params = jaxrl_suite.make(args.env)
    rollout = random_rollout(env, params, args.num_envs, args.steps, _episode_metrics)
    start = time.perf_counter()
    jax.block_until_ready(rollout(jax.random.key(args.seed)))
    compile_seconds = time.perf_counter() - start
    start = time.perf_counter()
    episode_return, finished = jax.block_until_ready(rollout(jax.random.key(args.seed + 1)))
    seconds = time.perf_counter() - start
    total = args.num_envs * args.steps
    finished = np.asarray(finished)
    returns = np.asarray(episode_return)[finished]
    print(f"{env.name}: random policy, {args.num_envs} envs x {args.steps} steps "
          f"on {jax.devices()[0].platform}")
    print(f"  compile + first run {compile_seconds:.2f} s; run {seconds:.3f} s; "
          f"{total / seconds:,.0f} env steps/s")
    if returns.size:
        print(f"  {returns.size} episodes finished: return mean {returns.mean():.2f}, "
              f"min {returns.min():.2f}, max {returns.max():.2f}")
    else:
        print("  no episode finished within the rollout")
    return 0


def _cmd_algos(args: argparse.Namespace) -> int:
    from jaxrl_suite.run.algorithms import registered_algorithms

    for name, description in registered_algorithms().items():
        print(f"{name:12s} {description}")
    return 0


def _cmd_eval(args: argparse.Namespace) -> int:
    from jaxrl_suite.run.harness import evaluate_run

    result = evaluate_run(args.run_dir, num_episodes=args.episodes, seed=args.seed)
    same = ("; the evaluation key and size of the run's eval.json, so a run evaluated at its "
            "last update agrees with it" if args.episodes is None and args.seed is None else "")
    print(f"{args.run_dir}: checkpoint at update {result['update']}, "
          f"{result['num_episodes_per_seed']} episodes per seed, seed {result['seed']}{same}")
    for mode in ("deterministic", "stochastic"):
        entry = result[mode]
        per_seed = ", ".join(f"{x:.1f}" for x in entry["per_seed"])
        print(f"  {mode:13s} return {entry['mean_return']:.2f} ± {entry['std_over_seeds']:.2f} "
              f"(per seed: {per_seed})")
    return 0


def _cmd_collect(args: argparse.Namespace) -> int:
    from pathlib import Path

    from jaxrl_suite.data.collect import collect_datasets
    from jaxrl_suite.data.datasets import behaviour_score, datasets_dir, episode_returns

    out_dir = Path(args.out) if args.out is not None else datasets_dir()
    datasets = collect_datasets(
        args.algo, args.env, args.kind or ["all"], num_transitions=args.transitions,
        seed=args.seed, total_steps=args.total_steps, out_dir=out_dir,
        progress=lambda line: print(line, file=sys.stderr, flush=True),
    )
    info = next(iter(datasets.values())).info
    print(f"reference returns: random {info.ref_min_score:.2f}, expert "
          f"{info.ref_max_score:.2f} ({args.algo} on {args.env}, seed {args.seed})")
    for dataset in datasets.values():
        mean_return = float(episode_returns(dataset).mean())
        score = behaviour_score(dataset)
        print(f"wrote {out_dir / dataset.info.name}: {dataset.size:,} transitions, "
              f"{dataset.num_episodes} episodes, mean return {mean_return:.2f}, "
              f"normalised score {score:.1f}")
    return 0


def _check_picture_fits(args: argparse.Namespace) -> None:
    """Refuse, before any level is generated, a picture too large for this machine's memory
    (``--size 5000`` is an 80,000-pixel square: tens of GB)."""
    from jaxrl_suite.run.resources import check_fits

    cells = (args.size or 13) ** 2  # a named level is at most a few dozen cells across
    tile = args.tile_size or 16
    pictures = (args.num_levels or 1) * ((args.rollout_steps or 0) + 1)
    # The (H, W, tile, tile, 3) uint8 pixels, about as much again while they are assembled,
    # and the host copy that is written out.
    needed = 3 * cells * tile * tile * 3 * pictures
    check_fits(needed, f"jaxrl render: {pictures} picture(s) of {args.size or 13}x"
               f"{args.size or 13} cells at {tile} pixels per cell",
               "use a smaller --size, --tile-size, --num-levels or --rollout-steps.")


def _cmd_render(args: argparse.Namespace) -> int:
    """Checks what every picture shares, then dispatches to the env's render hook (its
    registry entry's ``render``): the command line knows no env."""
    from pathlib import Path

    from jaxrl_suite.env.registry import RenderRequest, env_spec, renderable_envs

    try:
        hook = env_spec(args.env).load_render()
    except ValueError as error:  # an unknown id: say which envs can be drawn
        raise ValueError(f"jaxrl render: {error} Envs that can be drawn; accepted: "
                         f"{', '.join(renderable_envs())}.") from error
    if hook is None:
        raise ValueError(f"jaxrl render: cannot render env {args.env!r}: it registers no render "
                         f"hook; accepted: {', '.join(renderable_envs())}.")
    output = Path(args.output)
    suffix = output.suffix.lower()
    if suffix not in (".png", ".gif"):
        raise ValueError(f"jaxrl render: the output must end in .png or .gif; got {output}.")
    if (suffix == ".gif") != (args.rollout_steps is not None):
        raise ValueError("jaxrl render: a rollout (--rollout-steps T) is written as a .gif, and "
                         "a .gif output needs --rollout-steps; the other pictures are .png.")
    _check_picture_fits(args)
    description = hook(RenderRequest(
        env_id=args.env, output=str(output), level=args.level, generator=args.generator,
        size=args.size, seed=args.seed, num_levels=args.num_levels,
        rollout_steps=args.rollout_steps, tile_size=args.tile_size))
    print(f"wrote {output}: {description}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="jaxrl", description="jaxrl-suite command line")
    commands = parser.add_subparsers(dest="command", required=True)
    envs = commands.add_parser("envs", help="list registered environment ids")
    envs.add_argument("--prefix", default="", help="only ids starting with this, e.g. gymnax/")
    envs.set_defaults(run=_cmd_envs)
    rollout = commands.add_parser("rollout", help="random-policy rollout with throughput")
    rollout.add_argument("--env", default="gymnax/CartPole-v1", help="a registered env id")
    rollout.add_argument("--num-envs", type=_positive, default=1024)
    rollout.add_argument("--steps", type=_positive, default=1000, help="steps per env")
    rollout.add_argument("--seed", type=int, default=0)
    rollout.set_defaults(run=_cmd_rollout)
    commands.add_parser("meta", help="meta-learning: jaxrl meta lpg ... (meta-train), jaxrl "
                                     "meta eval RUN_DIR (meta-test); jaxrl meta --help")
    algos = commands.add_parser("algos", help="list algorithms")
    algos.set_defaults(run=_cmd_algos)
    train = commands.add_parser(
        "train", help="train an algorithm: jaxrl train ppo --env gymnax/CartPole-v1 --seeds 4",
        add_help=False,
    )
    train.add_argument("algo", help="an algorithm name (jaxrl algos lists them)")
    train.set_defaults(run=None)
    evaluate = commands.add_parser("eval", help="evaluate a run folder's last checkpoint")
    evaluate.add_argument("run_dir", help="a run folder, e.g. runs/ppo-gymnax_CartPole-v1-...")
    evaluate.add_argument("--episodes", type=_positive, default=None,
                          help="episodes per seed (default: the run's --eval-episodes, or 16)")
    evaluate.add_argument("--seed", type=int, default=None,
                          help="evaluation seed (default: the one the run's eval.json used, "
                               "its --seed + 1)")
    evaluate.set_defaults(run=_cmd_eval)
    render = commands.add_parser(
        "render", help="draw a level, a grid of levels, or a rollout GIF: "
                       "jaxrl render maze --level Labyrinth out.png",
    )
    render.add_argument("env", help="the env to draw: one whose registry entry has a render "
                                    "hook (the maze ids)")
    render.add_argument("output", help="the file to write: .png, or .gif with --rollout-steps")
    render.add_argument("--level", default=None,
                        help="a named level (default: one sampled from --generator)")
    render.add_argument("--generator", default=None,
                        help="the generator levels are sampled from when --level is not given "
                             "(the maze's: random_walls, empty_rooms, perfect_maze; default "
                             "the env id's own)")
    render.add_argument("--size", type=_positive, default=None,
                        help="side of generated levels (default 13)")
    render.add_argument("--seed", type=int, default=0, help="seed of sampled levels and rollouts")
    render.add_argument("--num-levels", type=_positive, default=1,
                        help="N > 1: a grid PNG of N generated levels")
    render.add_argument("--rollout-steps", type=_positive, default=None,
                        help="T: a GIF of T random-policy steps on the level (output .gif)")
    render.add_argument("--tile-size", type=_positive, default=None,
                        help="pixels per cell (default 16; 8 for a grid of levels)")
    render.set_defaults(run=_cmd_render)
    collect = commands.add_parser(
        "collect", help="train an agent and write D4RL-style datasets (Minari folders): "
                        "jaxrl collect --algo sac --env gymnax/Pendulum-v1 --kind medium",
    )
    collect.add_argument("--algo", default="sac", help="the agent to train: sac or td3")
    collect.add_argument("--env", default="gymnax/Pendulum-v1", help="a registered env id")
    collect.add_argument("--kind", action="append", default=None,
                         help="random, medium, expert, medium-replay, medium-expert or all; "
                              "repeat for several (default all)")
    collect.add_argument("--out", default=None,
                         help="folder to write to (default $JAXRL_DATASETS, else "
                              "~/.jaxrl_suite/datasets)")
    collect.add_argument("--transitions", type=_positive, default=100_000,
                         help="transitions of each rolled-out dataset (whole episodes)")
    collect.add_argument("--seed", type=int, default=0)
    collect.add_argument("--total-steps", type=_positive, default=None,
                         help="env steps to train for (default: the preset's)")
    collect.set_defaults(run=_cmd_collect)
    return parser


def _train(argv: list[str]) -> int:
    from jaxrl_suite.run.algorithms import load_algorithm
    from jaxrl_suite.run.command import algorithm_main

    if not argv or argv[0].startswith("-"):
        print("usage: jaxrl train ALGO [--env ID] [--seeds N] [flags]; "
              "jaxrl algos lists ALGO, jaxrl train ALGO --help the flags", file=sys.stderr)
        return 2
    try:
        algorithm = load_algorithm(argv[0])
    except ValueError as error:
        print(f"jaxrl: error: {error}", file=sys.stderr)
        return 2
    return algorithm_main(algorithm, argv[1:], prog=f"jaxrl train {argv[0]}")


META_HELP = """usage: jaxrl meta {lpg,lpo,open,eval} ...

Meta-learning of RL algorithms (meta/):
  jaxrl meta lpg [--preset cpu] [--curriculum random|frozen|plr]
                 [--score alg_regret|pvl|maxmc] [--meta-optimizer metagrad|es]
                 [--env gridworld] [flags]
      meta-train an LPG objective (GROOVE with --curriculum plr --score alg_regret);
      every config field is a flag: jaxrl meta lpg --help lists them.
  jaxrl meta lpo [--preset cpu] [--env gymnax/CartPole-v1] [--time-aware]
                 [--population-size 64] [--generations N] [--es-strategy open_es|snes|cma_es]
      meta-train an LPO drift objective (TA-LPO with --time-aware) by evolution over whole
      PPO runs; train with it by jaxrl train ppo --objective lpo --objective-params RUN_DIR.
  jaxrl meta open [--preset cpu] [--env gymnax/CartPole-v1] [--population-size 64]
      meta-train OPEN, a learned per-parameter optimiser for PPO, by evolution over whole
      PPO runs; train with it by jaxrl train ppo --optimizer-params RUN_DIR.
  jaxrl meta eval RUN_DIR [--on named|heldout|minatar|ENV_ID ...] [--seeds N]
      an LPG run: train fresh agents with the run's learned objective beside A2C (same budget
      and seeds); a table and a plot per target in RUN_DIR/meta_eval/.
  jaxrl meta eval RUN_DIR [--on minatar|ENV_ID ...] [--horizons 0.25 1 4] [--seeds N]
                  [--objective-file objective|objective_best]
      an LPO run: fresh PPO agents with PPO's, DPO's and the discovered drift on the same seeds,
      for each horizon multiple of the budget; a table in RUN_DIR/meta_eval/.
"""


def _meta(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(META_HELP, end="")
        return 0 if argv else 2
    if argv[0] in ("lpg", "lpo", "open"):
        from jaxrl_suite.run.algorithms import load_algorithm
        from jaxrl_suite.run.command import algorithm_main

        return algorithm_main(load_algorithm(argv[0]), argv[1:], prog=f"jaxrl meta {argv[0]}")
    if argv[0] == "eval":
        from jaxrl_suite.meta.evaluate import main as meta_eval_main

        return meta_eval_main(argv[1:])
    print(f"jaxrl: error: unknown meta command {argv[0]!r}; `jaxrl meta --help` lists lpg, "
          f"lpo, open and eval.", file=sys.stderr)
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "train":  # its flags are the algorithm's: parsed by the harness
        return _train(argv[1:])
    if argv and argv[0] == "meta":  # meta-training and meta-testing (meta/)
        return _meta(argv[1:])
    args = build_parser().parse_args(argv)
    from jaxrl_suite.run.command import plain_warnings

    plain_warnings()
    try:
        return args.run(args)
    except ValueError as error:  # bad input: one clear line, no traceback
        print(f"jaxrl: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
