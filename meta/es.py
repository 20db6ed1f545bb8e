"""Evolution strategies over any parameter pytree, on top of evosax.

The meta-learners (LPG's objective network by ES, as TA-LPG trains it; later LPO objectives
and learned optimisers) search over a pytree of float arrays. ``make_es(config,
example_params)`` wraps one of evosax's distribution-based strategies (``Open_ES``, ``SNES``,
``CMA_ES``) in four pure, jittable functions::

    es = make_es(ESConfig(population_size=16), params)
    state = es.init(key)
    population, state = es.ask(ask_key, state)        # params with a leading axis of 16
    fitness = jax.vmap(evaluate)(population)           # (16,) float32, higher is better
    state = es.tell(state, population, fitness)
    params = es.mean(state)                            # the search mean, shaped like params

A generation loop runs under ``jax.lax.scan`` and independent runs (seeds) under ``jax.vmap``.

Conventions that differ from evosax's own, and why:

* Fitness is *higher is better* (a return); evosax minimises, so ``tell`` negates it.
* Antithetic members are adjacent: members ``2i`` and ``2i + 1`` are ``mean + d`` and
  ``mean - d`` for one perturbation ``d``, so a caller can evaluate each pair on the same task
  (the TA-LPG recipe) and ``pairwise_rank_fitness`` can compare them. evosax's ``Open_ES`` puts
  the mirrored half after the first and ``SNES`` / ``CMA_ES`` do not mirror at all, so ``ask``
  draws from evosax and mirrors the first half itself. Every strategy here samples a Gaussian
  centred on the mean, so the mirror image is as likely a sample as the original.
* Fitness shaping is done here, before evosax sees the fitness (``pairwise_rank``, the default
  for ``open_es``; ``centered_rank``; ``raw``). ``snes`` and ``cma_es`` then weight the members
  by their own rank-based weights, so only the order of the shaped fitness reaches them:
  ``centered_rank`` and ``raw`` give the same update, and ``pairwise_rank`` (whose ties they
  cannot order) is refused for them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import evosax.algorithms as evosax_algorithms
import jax
import jax.numpy as jnp
import numpy as np
import optax
from evosax.core.fitness_shaping import identity_fitness_shaping_fn
from flax import struct
from jax import flatten_util
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from jaxrl_suite.run import configs
from jaxrl_suite.run.sharding import seed_mesh

__all__ = [
    "ES",
    "ESConfig",
    "ESState",
    "EvolutionState",
    "FITNESS_SHAPINGS",
    "OPTIMIZERS",
    "STRATEGIES",
    "centered_rank_fitness",
    "make_es",
    "make_evolution",
    "pairwise_rank_fitness",
    "shard_population",
]

STRATEGIES = ("open_es", "snes", "cma_es")
FITNESS_SHAPINGS = ("pairwise_rank", "centered_rank", "raw")
OPTIMIZERS = ("adam", "sgd")

# The default fitness shaping and learning rate of each strategy when the config leaves them
# None: OpenAI-ES uses the TA-LPG erratum's pairwise ranks and rate; SNES's mean step is
# evosax's default (1.0, in units of the step size); CMA-ES has no learning rate.
_DEFAULT_SHAPING = {"open_es": "pairwise_rank", "snes": "centered_rank", "cma_es": "centered_rank"}
_DEFAULT_LEARNING_RATE = {"open_es": 1e-2, "snes": 1.0, "cma_es": None}
_DEFAULT_OPTIMIZER = {"open_es": "adam", "snes": "sgd", "cma_es": None}


@dataclasses.dataclass(frozen=True)
class ESConfig:
    """Static settings of an evolution strategy.

    Attributes:
      strategy: ``"open_es"`` (OpenAI-ES: a fixed-width Gaussian, the mean moved by an optax
        optimiser along the estimated fitness gradient), ``"snes"`` (separable NES: a step
        size per dimension, adapted) or ``"cma_es"`` (CMA-ES: a full covariance, adapted;
        memory grows with the square of the number of params, so keep it to a few thousand).
      population_size: members per generation; even when ``antithetic`` (mirrored pairs).
      sigma: the Gaussian's standard deviation in param units: fixed (up to ``sigma_decay``)
        for ``open_es``, the initial step size for ``snes`` and ``cma_es``.
      learning_rate: the optimiser's rate for the mean. ``None``: 1e-2 for ``open_es`` (the
        TA-LPG erratum's value), 1.0 for ``snes`` (evosax's default); ``cma_es`` has none and
        refuses a value.
      optimizer: ``"adam"`` or ``"sgd"``, the optax optimiser that moves the mean. ``None``:
        ``"adam"`` for ``open_es``, ``"sgd"`` for ``snes`` (the only one it takes: its step is
        a natural gradient already scaled by the step sizes); ``cma_es`` has none.
      sigma_decay, sigma_limit: ``open_es`` only: ``sigma`` is multiplied by ``sigma_decay``
        each generation and kept at ``sigma_limit`` or above (1.0: constant).
      lr_decay, lr_limit: the learning rate is multiplied by ``lr_decay`` each generation and
        kept at ``lr_limit`` or above (1.0: constant).
      antithetic: mirrored sampling; members ``2i`` and ``2i + 1`` are ``mean +/- d``.
      fitness_shaping: ``"pairwise_rank"`` (each mirrored pair: +1 to the better, -1 to the
        worse; needs ``antithetic``), ``"centered_rank"`` (ranks spread over [-0.5, 0.5]) or
        ``"raw"`` (the fitness itself: its scale sets the step, and a NaN reaches the mean;
        the rank shapings rank NaN last). ``None``: ``"pairwise_rank"`` for ``open_es`` with
        ``antithetic``, ``"centered_rank"`` otherwise.
    """

    strategy: str = "open_es"
    population_size: int = 64
    sigma: float = 0.1
    learning_rate: float | None = None
    optimizer: str | None = None
    sigma_decay: float = 1.0
    sigma_limit: float = 0.0
    lr_decay: float = 1.0
    lr_limit: float = 0.0
    antithetic: bool = True
    fitness_shaping: str | None = None

    @property
    def shaping(self) -> str:
        """The fitness shaping in force (the strategy's default when ``fitness_shaping`` is
        None)."""
        if self.fitness_shaping is not None:
            return self.fitness_shaping
        if not self.antithetic:  # no mirrored pairs to compare
            return "centered_rank"
        return _DEFAULT_SHAPING.get(self.strategy, "pairwise_rank")

    @property
    def rate(self) -> float | None:
        """The learning rate in force (the strategy's default when ``learning_rate`` is None)."""
        if self.learning_rate is not None:
            return self.learning_rate
        return _DEFAULT_LEARNING_RATE.get(self.strategy)

    @property
    def mean_optimizer(self) -> str | None:
        """The optimiser in force (the strategy's default when ``optimizer`` is None)."""
        return self.optimizer or _DEFAULT_OPTIMIZER.get(self.strategy)

    def validate(self) -> None:
        """Raise a ``ValueError`` naming the first bad setting and what is accepted."""
        configs.require_finite_numbers(self)
        if self.strategy not in STRATEGIES:
            raise ValueError(
                f"strategy must be one of {', '.join(STRATEGIES)}; got {self.strategy!r}."
            )
        if self.fitness_shaping is not None and self.fitness_shaping not in FITNESS_SHAPINGS:
            raise ValueError(
                f"fitness_shaping must be one of {', '.join(FITNESS_SHAPINGS)} (or None for "
                f"the strategy's default); got {self.fitness_shaping!r}."
            )
        if self.optimizer is not None and self.optimizer not in OPTIMIZERS:
            raise ValueError(
                f"optimizer must be one of {', '.join(OPTIMIZERS)} (or None for the "
                f"strategy's default); got {self.optimizer!r}."
            )
        configs.require_positive_ints(self, "population_size")
        if self.population_size < 2:
            raise ValueError(
                f"population_size must be at least 2 (ranks compare members); got "
                f"{self.population_size}."
            )
        if self.antithetic and self.population_size % 2:
            raise ValueError(
                f"population_size must be even with antithetic=True (members come in mirrored "
                f"pairs); got {self.population_size}. Use an even size or antithetic=False."
            )
        configs.require_positive(self, "sigma")
        configs.require_non_negative(self, "sigma_limit", "lr_limit")
        for name in ("sigma_decay", "lr_decay"):
            value = getattr(self, name)
            if not 0.0 < value <= 1.0:
                raise ValueError(f"{name} must be in (0, 1] (1: no decay); got {value!r}.")
        if self.strategy == "cma_es":
            if self.learning_rate is not None:
                raise ValueError(
                    f"learning_rate must be None for strategy 'cma_es' (CMA-ES moves its mean "
                    f"by recombination, with no learning rate); got {self.learning_rate!r}."
                )
            if self.optimizer is not None:
                raise ValueError(
                    f"optimizer must be None for strategy 'cma_es' (it has no optimiser); got "
                    f"{self.optimizer!r}."
                )
            if self.lr_decay != 1.0:
                raise ValueError(
                    f"lr_decay must be 1.0 for strategy 'cma_es' (it has no learning rate); "
                    f"got {self.lr_decay!r}."
                )
        elif not (isinstance(self.rate, (int, float)) and not isinstance(self.rate, bool)
                  and self.rate > 0):
            raise ValueError(
                f"learning_rate must be positive and finite (or None for the strategy's "
                f"default); got {self.learning_rate!r}."
            )
        if self.strategy != "open_es" and self.sigma_decay != 1.0:
            raise ValueError(
                f"sigma_decay must be 1.0 for strategy {self.strategy!r} (it adapts its own "
                f"step size); got {self.sigma_decay!r}. sigma_decay applies to 'open_es'."
            )
        if self.strategy == "snes" and self.mean_optimizer != "sgd":
            raise ValueError(
                f"optimizer must be 'sgd' for strategy 'snes' (its mean step is a natural "
                f"gradient already scaled by the step sizes); got {self.optimizer!r}."
            )
        if self.shaping == "pairwise_rank" and not self.antithetic:
            raise ValueError(
                "fitness_shaping 'pairwise_rank' needs antithetic=True (it compares the two "
                "members of each mirrored pair); got antithetic=False. Use 'centered_rank' or "
                "'raw' without mirrored pairs."
            )
        if self.strategy != "open_es" and self.shaping == "pairwise_rank":
            raise ValueError(
                f"fitness_shaping 'pairwise_rank' cannot be used with strategy "
                f"{self.strategy!r}: it weights members by their rank, and pairwise ranks "
                f"tie half the population. Use 'centered_rank' or 'raw' (the same update "
                f"there: only the order counts)."
            )


@struct.dataclass
class ESState:
    """An ES run's state, a pytree (``vmap`` it for independent runs).

    Attributes:
      strategy_state: evosax's state of the strategy (its ``mean`` is the flattened search
        mean, ``(num_dims,)`` float32; ``generation_counter`` the generations told).
      strategy_params: evosax's params of the strategy (constants: step-size rates, weights).
    """

    strategy_state: Any
    strategy_params: Any

    @property
    def generation(self) -> jax.Array:
        """Generations told so far, an int32 scalar."""
        return self.strategy_state.generation_counter


@dataclasses.dataclass(frozen=True)
class ES:
    """An evolution strategy as pure functions (closures over the config and the template).

    * ``init(key, params=None) -> ESState``: the search starts at ``params`` (default the
      ``example_params`` given to ``make_es``).
    * ``ask(key, state) -> (population, state)``: ``population`` is the params pytree with a
      leading axis of ``population_size``; with ``antithetic``, members ``2i`` / ``2i + 1`` are
      ``mean + d_i`` / ``mean - d_i``.
    * ``tell(state, population, fitness) -> state``: ``fitness`` ``(population_size,)``,
      higher is better, raw (shaped inside); ``population`` as ``ask`` returned it.
    * ``mean(state) -> params``: the search mean, shaped like ``example_params``.
    * ``num_dims``: the number of floats searched over; ``algorithm``: the evosax strategy
      object (for its other methods; its conventions are evosax's: lower fitness is better).
    * ``shape_fitness(fitness) -> utilities``: the config's shaping, ``(population_size,)``
      float32, higher is better (what ``tell`` feeds the strategy).
    """

    config: ESConfig
    num_dims: int
    algorithm: Any
    init: Callable[..., ESState]
    ask: Callable[[jax.Array, ESState], tuple[Any, ESState]]
    tell: Callable[[ESState, Any, jax.Array], ESState]
    mean: Callable[[ESState], Any]
    shape_fitness: Callable[[jax.Array], jax.Array]


# --- fitness shaping ---------------------------------------------------------------------------
def pairwise_rank_fitness(fitness: jax.Array) -> jax.Array:
    """Compare each mirrored pair: +1 to the better member, -1 to the worse, 0 to both on a tie.

    Args:
      fitness: ``(..., population_size)``, higher is better, ``population_size`` even, pairs
        adjacent (members ``2i`` and ``2i + 1``). NaN (a failed evaluation) loses to any number.

    Returns:
      ``(..., population_size)`` float32 in {-1, 0, 1}. The TA-LPG recipe gives 1 and 0; with
      mirrored pairs that is this up to a constant, which the pair's update cancels, and the
      zero mean keeps any strategy's baseline at 0.
    """
    fitness = jnp.asarray(fitness, jnp.float32)
    size = fitness.shape[-1]
    if size % 2:
        raise ValueError(
            f"pairwise_rank_fitness needs an even number of members (adjacent pairs); got "
            f"fitness of shape {fitness.shape}."
        )
    fitness = jnp.where(jnp.isnan(fitness), -jnp.inf, fitness)
    pairs = fitness.reshape(*fitness.shape[:-1], size // 2, 2)
    first, second = pairs[..., 0], pairs[..., 1]
    # Comparisons, not sign(first - second): -inf - -inf is NaN.
    win = (first > second).astype(jnp.float32) - (first < second).astype(jnp.float32)
    return jnp.stack([win, -win], axis=-1).reshape(fitness.shape)


def centered_rank_fitness(fitness: jax.Array) -> jax.Array:
    """Ranks spread evenly over [-0.5, 0.5]: the best member gets 0.5, the worst -0.5.

    Args:
      fitness: ``(..., population_size)``, higher is better, ``population_size >= 2``. Ties
        share their average rank; NaN ranks below every number.

    Returns:
      ``(..., population_size)`` float32, summing to 0 over the last axis.
    """
    fitness = jnp.asarray(fitness, jnp.float32)
    size = fitness.shape[-1]
    if size < 2:
        raise ValueError(
            f"centered_rank_fitness needs at least 2 members; got fitness of shape "
            f"{fitness.shape}."
        )
    fitness = jnp.where(jnp.isnan(fitness), -jnp.inf, fitness)
    ranks = jax.scipy.stats.rankdata(fitness, axis=-1) - 1.0
    return (ranks / (size - 1) - 0.5).astype(jnp.float32)


def _raw_fitness(fitness: jax.Array) -> jax.Array:
    return jnp.asarray(fitness, jnp.float32)


_SHAPING_FUNCTIONS = {
    "pairwise_rank": pairwise_rank_fitness,
    "centered_rank": centered_rank_fitness,
    "raw": _raw_fitness,
}


# --- building the strategy ---------------------------------------------------------------------
def _schedule(initial: float, decay: float, limit: float) -> optax.Schedule:
    """``initial * decay**count``, never below ``limit``; a constant when ``decay`` is 1."""
    if decay == 1.0:
        return optax.constant_schedule(initial)
    return optax.exponential_decay(
        init_value=initial, transition_steps=1, decay_rate=decay, end_value=min(limit, initial)
    )


def _mean_optimizer(config: ESConfig) -> optax.GradientTransformation:
    rate = _schedule(config.rate, config.lr_decay, config.lr_limit)
    return optax.adam(rate) if config.mean_optimizer == "adam" else optax.sgd(rate)


def _make_algorithm(config: ESConfig, example_params: Any) -> tuple[Any, Any]:
    """The evosax strategy and its params (``sigma`` as the initial step size)."""
    size = config.population_size
    if config.strategy == "open_es":
        # Mirroring is done in ask (adjacent pairs), so evosax draws plain Gaussian members.
        algorithm = evosax_algorithms.Open_ES(
            size,
            example_params,
            use_antithetic_sampling=False,
            optimizer=_mean_optimizer(config),
            std_schedule=_schedule(config.sigma, config.sigma_decay, config.sigma_limit),
            fitness_shaping_fn=identity_fitness_shaping_fn,  # shaped in tell already
        )
        return algorithm, algorithm.default_params
    if config.strategy == "snes":
        algorithm = evosax_algorithms.SNES(size, example_params, optimizer=_mean_optimizer(config))
    else:
        algorithm = evosax_algorithms.CMA_ES(size, example_params)
    params = algorithm.default_params.replace(std_init=jnp.asarray(config.sigma, jnp.float32))
    return algorithm, params


def _check_template(example_params: Any) -> None:
    leaves = jax.tree.leaves(example_params)
    if not leaves:
        raise ValueError("example_params has no arrays to search over; got an empty pytree.")
    for path, leaf in jax.tree_util.tree_leaves_with_path(example_params):
        dtype = jnp.asarray(leaf).dtype
        if not jnp.issubdtype(dtype, jnp.floating):
            raise ValueError(
                f"example_params must hold float arrays only; the leaf at "
                f"{jax.tree_util.keystr(path)} has dtype {dtype}."
            )


def _strong(leaf: Any) -> Any:
    """``leaf`` without JAX's weak type (the same dtype and values)."""
    if isinstance(leaf, jax.Array) and jax.typeof(leaf).weak_type:
        return jax.lax.convert_element_type(leaf, leaf.dtype)
    return leaf


def make_es(config: ESConfig, example_params: Any) -> ES:
    """Build an evolution strategy searching over pytrees shaped like ``example_params``.

    Args:
      config: the strategy's settings (``config.validate()`` is called here).
      example_params: a pytree of float arrays, the search's starting mean (``init`` can start
        elsewhere). Its structure, shapes and dtypes are the population members'.

    Returns:
      An ``ES`` of pure functions; see its docstring.
    """
    config.validate()
    _check_template(example_params)
    algorithm, strategy_params = _make_algorithm(config, example_params)
    size = config.population_size
    shape = _SHAPING_FUNCTIONS[config.shaping]
    template = jax.tree.map(jnp.asarray, example_params)
    ravel = jax.vmap(lambda params: flatten_util.ravel_pytree(params)[0])
    unravel = jax.vmap(flatten_util.ravel_pytree(template)[1])  # evosax's flat order, too

    def init(key: jax.Array, params: Any = None) -> ESState:
        start = template if params is None else params
        state = algorithm.init(key, start, strategy_params)
        # evosax leaves some initial fields weakly typed (best_solution, best_fitness), which
        # tell makes strong: a jitted generation would compile twice, on its first and second
        # call. Made strong here, every generation sees one state type.
        state = jax.tree.map(_strong, state)
        return ESState(strategy_state=state, strategy_params=strategy_params)

    def ask(key: jax.Array, state: ESState) -> tuple[Any, ESState]:
        population, strategy_state = algorithm.ask(
            key, state.strategy_state, state.strategy_params
        )
        if config.antithetic:
            mean = strategy_state.mean
            offsets = ravel(population)[: size // 2] - mean
            # (size/2, 2, dims) -> (size, dims): member 2i is mean + d_i, 2i + 1 is mean - d_i.
            flat = jnp.stack([mean + offsets, mean - offsets], axis=1).reshape(size, -1)
            population = unravel(flat)
        return population, state.replace(strategy_state=strategy_state)

    def tell(state: ESState, population: Any, fitness: jax.Array) -> ESState:
        fitness = jnp.asarray(fitness)
        if fitness.shape != (size,):
            raise ValueError(
                f"fitness must have shape (population_size,) = ({size},), one number per "
                f"member; got shape {fitness.shape}."
            )
        utilities = shape(fitness)
        # evosax minimises: lower must be better when it ranks or steps.
        strategy_state, _ = algorithm.tell(
            jax.random.key(0),  # evosax's tell uses its key for metrics only
            population,
            -utilities,
            state.strategy_state,
            state.strategy_params,
        )
        return state.replace(strategy_state=strategy_state)

    def mean(state: ESState) -> Any:
        return algorithm.get_mean(state.strategy_state)

    return ES(
        config=config,
        num_dims=int(algorithm.num_dims),
        algorithm=algorithm,
        init=init,
        ask=ask,
        tell=tell,
        mean=mean,
        shape_fitness=shape,
    )


# --- sharding the population -------------------------------------------------------------------
def shard_population(population: Any, mesh: Mesh | None = None) -> Any:
    """Split the population axis (every leaf's leading axis) over devices.

    With ``mesh=None``, a one-axis mesh over as many local devices as divide the population
    evenly (``run.sharding.seed_mesh``); with one such device the population is returned as it
    is. A given mesh's first axis is used, and must divide the population. Works eagerly
    and inside ``jit`` (a sharding constraint): members are independent, so
    their evaluation (``vmap``) then runs on their own devices with no communication.

    Args:
      population: a pytree whose leaves all have the same leading axis (members).
      mesh: a ``jax.sharding.Mesh`` or None.
    """
    leaves = jax.tree.leaves(population)
    if not leaves:
        return population
    sizes = {np.shape(leaf)[0] if np.ndim(leaf) else None for leaf in leaves}
    if len(sizes) != 1 or None in sizes:
        raise ValueError(
            f"shard_population needs every leaf to have the same leading (member) axis; got "
            f"leading sizes {sorted(map(str, sizes))}."
        )
    (size,) = sizes
    if mesh is None:
        mesh = seed_mesh(size)
        if mesh is None:
            return population
    axis = mesh.axis_names[0]
    devices = mesh.shape[axis]
    if size % devices:
        raise ValueError(
            f"the population ({size} members) cannot be split evenly over the mesh axis "
            f"{axis!r} of {devices} devices; use a population size that {devices} divides."
        )
    sharding = NamedSharding(mesh, PartitionSpec(axis))
    # A sharding constraint places a concrete array as device_put would, and under jit tells
    # the compiler where the members live.
    return jax.tree.map(lambda leaf: jax.lax.with_sharding_constraint(leaf, sharding), population)



# --- a generation of whole inner runs -----------------------------------------------------------
@struct.dataclass
class EvolutionState:
    """The state of a meta-run that evolves params evaluated by whole inner runs.

    Attributes:
      es_state: the strategy's state (its mean is the current params).
      mean: the search mean, shaped like the template.
      best: the best member seen so far, and ``best_fitness`` its fitness (-inf before any).
      key: the run's key; ``generation`` the generations done (int32).
      hparams: the meta-run's traced hyperparameters (the inner runs').
    """

    es_state: ESState
    mean: Any
    best: Any
    best_fitness: jax.Array
    key: jax.Array
    generation: jax.Array
    hparams: Any


def make_evolution(
    es: ES,
    template: Any,
    member_fitness: Callable[[Any, Any, jax.Array], jax.Array],
    baseline: Any,
    member_chunks: int = 1,
) -> tuple[Callable[[jax.Array, Any], EvolutionState],
           Callable[[EvolutionState], tuple[EvolutionState, dict[str, jax.Array]]]]:
    """``(init, update)`` of a meta-run whose generation is one ``update``: ask the strategy,
    evaluate every member by ``member_fitness``, tell.

    Args:
      es: the strategy (``make_es``), over params shaped like ``template``.
      template: where the search starts.
      member_fitness: ``(params, hparams, key) -> scalar`` fitness of one member (a whole inner
        run and its evaluation), higher is better. The two members of an antithetic pair get
        the same key (their agents' initialisation, env seeds, evaluation episodes), so only
        the sign of the perturbation tells them apart.
      baseline: the generation's reference, on the first pair's key: a params pytree shaped
        like ``template`` (evaluated beside the search mean in one ``vmap``) or a callable
        ``(hparams, key) -> scalar`` (a different inner run, e.g. PPO with Adam).
      member_chunks: evaluate the population in this many sequential chunks (memory grows
        with a chunk's members); it must divide the population.

    ``update`` reports ``fitness_mean``/``_max``/``_min`` (over members, NaN ignored),
    ``baseline_return``, ``mean_return`` (the search mean's fitness) and ``best_fitness``.
    Members are split over local devices when they divide the population (``shard_population``).
    """
    population = es.config.population_size
    returns_of = jax.vmap(member_fitness, in_axes=(0, None, 0))

    def init(key: jax.Array, hparams: Any) -> EvolutionState:
        es_key, run_key = jax.random.split(key)
        return EvolutionState(es_state=es.init(es_key, template), mean=template, best=template,
                              best_fitness=jnp.float32(-jnp.inf), key=run_key,
                              generation=jnp.int32(0), hparams=hparams)

    def update(state: EvolutionState) -> tuple[EvolutionState, dict[str, jax.Array]]:
        key, ask_key, member_key = jax.random.split(state.key, 3)
        candidates, es_state = es.ask(ask_key, state.es_state)
        keys = jnp.repeat(jax.random.split(member_key, population // 2), 2, axis=0)
        members = shard_population((candidates, keys))
        if member_chunks == 1:
            fitness = returns_of(members[0], state.hparams, members[1])
        else:
            def split(x):
                return x.reshape((member_chunks, x.shape[0] // member_chunks) + x.shape[1:])

            fitness = jax.lax.map(lambda chunk: returns_of(chunk[0], state.hparams, chunk[1]),
                                  jax.tree.map(split, members)).reshape(-1)
        if callable(baseline):
            baseline_return = baseline(state.hparams, keys[0])
            mean_return = member_fitness(state.mean, state.hparams, keys[0])
        else:
            references = jax.tree.map(lambda a, b: jnp.stack([a, b]), baseline, state.mean)
            baseline_return, mean_return = returns_of(references, state.hparams, keys[:2])
        es_state = es.tell(es_state, candidates, fitness)
        finite = jnp.where(jnp.isfinite(fitness), fitness, -jnp.inf)
        top = jnp.argmax(finite)
        improved = finite[top] > state.best_fitness
        best = jax.tree.map(lambda new, old: jnp.where(improved, new[top], old), candidates,
                            state.best)
        best_fitness = jnp.maximum(finite[top], state.best_fitness)
        report = {
            "fitness_mean": jnp.nanmean(fitness), "fitness_max": jnp.nanmax(fitness),
            "fitness_min": jnp.nanmin(fitness), "baseline_return": baseline_return,
            "mean_return": mean_return, "best_fitness": best_fitness,
        }
        return state.replace(es_state=es_state, mean=es.mean(es_state), best=best,
                             best_fitness=best_fitness, key=key,
                             generation=state.generation + 1), report

    return init, update
