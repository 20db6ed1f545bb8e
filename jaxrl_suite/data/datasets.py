"""Offline datasets: one in-memory ``Dataset`` of flat arrays, the D4RL and Minari file formats,
checks, normalised scores and the samplers offline algorithms draw minibatches with inside jit.

    dataset = load_dataset("pendulum-medium-v0")        # a name in the datasets folder, or a path
    sampler = TransitionSampler.uniform(dataset)        # or .return_weighted(dataset, 0.1)
    batch = sampler.sample(key, 256)                    # a buffers.Transition, leaves (256, ...)

Formats (the machines have no internet; both are written and read here from their published
layouts, and ``save_minari`` folders open in ``minari.load_dataset``):

- **D4RL**: one HDF5 file of flat arrays ``observations``, ``actions``, ``rewards``,
  ``terminals``, ``timeouts`` (each ``(N, ...)``) and optionally ``next_observations``. Without
  ``next_observations`` they are the next row within the episode, and an episode's last step,
  whose next observation the file does not hold, is dropped (as ``d4rl.qlearning_dataset``
  does). The reference returns of a normalised score are file attributes ``ref_min_score`` and
  ``ref_max_score`` when the file has them.
- **Minari**: a folder with ``data/main_data.hdf5`` holding one group ``episode_{k}`` per episode
  (``observations`` with T+1 rows, ``actions``, ``rewards``, ``terminations``, ``truncations``
  with T) and ``data/metadata.json`` (Minari 0.5 keeps it beside the HDF5 file; a
  ``metadata.json`` at the folder's top is read too). The metadata's ``dataset_id`` is the
  folder's name (its path under Minari's datasets root when written there), and for an env with
  a Gymnasium counterpart (``GYMNASIUM_IDS``) its ``env_spec`` is Gymnasium's serialised
  ``EnvSpec`` (``EnvSpec.to_json()``, as Minari stores it), so ``recover_environment()`` works;
  reading, a folder without the project's own ``env_id`` takes its env from that ``env_spec``.

Episode boundaries: ``terminals`` mark a true end (no bootstrapping), ``timeouts`` a truncation
(the episode stops but the target still bootstraps from ``next_observations``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from jaxrl_suite.env import spaces
from jaxrl_suite.learn.buffers import Transition

__all__ = [
    "Dataset",
    "DatasetInfo",
    "TransitionSampler",
    "D4RL_FIELDS",
    "make_dataset",
    "load_dataset",
    "load_d4rl",
    "save_d4rl",
    "load_minari",
    "save_minari",
    "datasets_dir",
    "resolve_dataset",
    "check_matches_env",
    "normalized_score",
    "episode_returns",
    "behaviour_score",
    "recorded_env_id",
    "observation_statistics",
    "GYMNASIUM_IDS",
]

D4RL_FIELDS = ("observations", "actions", "rewards", "terminals", "timeouts")
"""The arrays a D4RL file must have (``next_observations`` is optional)."""

MINARI_EPISODE_FIELDS = ("observations", "actions", "rewards", "terminations", "truncations")

GYMNASIUM_IDS = {
    "gymnax/Acrobot-v1": "Acrobot-v1",
    "gymnax/CartPole-v1": "CartPole-v1",
    "gymnax/MountainCar-v0": "MountainCar-v0",
    "gymnax/MountainCarContinuous-v0": "MountainCarContinuous-v0",
    "gymnax/Pendulum-v1": "Pendulum-v1",
}
"""Project env id -> the Gymnasium id of the same MDP (same observations, actions, rewards and
episode length): the ``env_spec`` a Minari folder records, and back."""


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """What a dataset is, beside its arrays (static: hashable, not traced).

    ``ref_min_score`` and ``ref_max_score`` are the returns of a random and an expert policy
    (D4RL's and Minari's names), the ends of the normalised score; None when unknown.
    """

    name: str = ""
    env_id: str | None = None
    kind: str | None = None
    ref_min_score: float | None = None
    ref_max_score: float | None = None
    algorithm: str | None = None
    source: str | None = None  # the file or folder it was read from


@struct.dataclass
class Dataset:
    """Transitions as flat arrays, on the device; ``N`` transitions in ``E`` episodes.

    ``observations`` and ``next_observations`` ``(N, *obs_shape)`` float32; ``actions``
    ``(N, *action_shape)`` float32 (int32 for discrete actions); ``rewards`` ``(N,)`` float32;
    ``terminals`` and ``timeouts`` ``(N,)`` bool; ``episode_ids`` ``(N,)`` int32 in
    ``[0, E)``, non-decreasing. ``info`` is static.
    """

    observations: jax.Array
    actions: jax.Array
    rewards: jax.Array
    next_observations: jax.Array
    terminals: jax.Array
    timeouts: jax.Array
    episode_ids: jax.Array
    info: DatasetInfo = struct.field(pytree_node=False, default=DatasetInfo())

    @property
    def size(self) -> int:
        """Transitions."""
        return int(self.rewards.shape[0])

    @property
    def num_episodes(self) -> int:
        """Episodes (a last, unfinished one included)."""
        return int(self.episode_ids[-1]) + 1 if self.size else 0

    def transitions(self, indices: jax.Array) -> Transition:
        """The transitions at ``indices`` (any shape) as a ``buffers.Transition``."""
        return Transition(
            observation=self.observations[indices],
            action=self.actions[indices],
            reward=self.rewards[indices],
            next_observation=self.next_observations[indices],
            terminated=self.terminals[indices],
            truncated=self.timeouts[indices],
        )


# --- building and checking -----------------------------------------------------------------------
def _check_finite(name: str, values: np.ndarray) -> None:
    if np.issubdtype(values.dtype, np.floating) and not np.all(np.isfinite(values)):
        bad = np.argwhere(~np.isfinite(values))[0]
        raise ValueError(
            f"Dataset field {name!r} has a NaN or infinite value (first at index "
            f"{tuple(int(i) for i in bad)}: {values[tuple(bad)]}); clean the data first."
        )


def _episode_ids_from_ends(ends: np.ndarray) -> np.ndarray:
    """Episode index of each row when ``ends[i]`` closes an episode at row ``i``."""
    ids = np.zeros(len(ends), np.int32)
    if len(ends) > 1:
        ids[1:] = np.cumsum(ends[:-1].astype(np.int32))
    return ids


def make_dataset(
    observations: Any,
    actions: Any,
    rewards: Any,
    next_observations: Any,
    terminals: Any,
    timeouts: Any,
    episode_ids: Any = None,
    info: DatasetInfo | None = None,
) -> Dataset:
    """A checked ``Dataset`` from arrays (NumPy or JAX), each with ``N`` rows.

    Raises a ``ValueError`` naming the field for mismatched lengths, NaN or infinite values, an
    empty dataset, or episode ids that go down. ``episode_ids`` default to new episodes after
    each terminal or timeout. Discrete (integer) actions stay int32; the rest become float32.
    """
    fields = {
        "observations": np.asarray(observations),
        "actions": np.asarray(actions),
        "rewards": np.asarray(rewards),
        "next_observations": np.asarray(next_observations),
        "terminals": np.asarray(terminals),
        "timeouts": np.asarray(timeouts),
    }
    if episode_ids is not None:
        fields["episode_ids"] = np.asarray(episode_ids)
    lengths = {name: (value.shape[0] if value.ndim else None) for name, value in fields.items()}
    size = lengths["observations"]
    if size is None or size == 0:
        raise ValueError("Dataset field 'observations' is empty; a dataset needs at least one "
                         "transition.")
    for name, length in lengths.items():
        if length != size:
            raise ValueError(
                f"Dataset field {name!r} has {length} rows but 'observations' has {size}; "
                f"every field needs one row per transition."
            )
    for name in ("rewards", "terminals", "timeouts"):
        if fields[name].ndim != 1:
            raise ValueError(f"Dataset field {name!r} must be one value per transition, shape "
                             f"({size},); got {fields[name].shape}.")
    if fields["next_observations"].shape != fields["observations"].shape:
        raise ValueError(
            f"Dataset field 'next_observations' has shape {fields['next_observations'].shape} "
            f"but 'observations' has {fields['observations'].shape}."
        )
    for name, value in fields.items():
        _check_finite(name, value)
    terminals_bool = fields["terminals"].astype(bool)
    timeouts_bool = fields["timeouts"].astype(bool)
    if episode_ids is None:
        ids = _episode_ids_from_ends(terminals_bool | timeouts_bool)
    else:
        ids = fields["episode_ids"].astype(np.int64)
        if np.any(np.diff(ids) < 0) or ids[0] < 0:
            raise ValueError("Dataset field 'episode_ids' must be non-negative and "
                             "non-decreasing (each episode's transitions together, in order).")
        _, ids = np.unique(ids, return_inverse=True)  # renumber to 0..E-1
        ids = ids.astype(np.int32)
    actions = fields["actions"]
    action_dtype = np.int32 if np.issubdtype(actions.dtype, np.integer) else np.float32
    return Dataset(
        observations=jnp.asarray(fields["observations"], jnp.float32),
        actions=jnp.asarray(actions.astype(action_dtype)),
        rewards=jnp.asarray(fields["rewards"], jnp.float32),
        next_observations=jnp.asarray(fields["next_observations"], jnp.float32),
        terminals=jnp.asarray(terminals_bool),
        timeouts=jnp.asarray(timeouts_bool),
        episode_ids=jnp.asarray(ids),
        info=info or DatasetInfo(),
    )


def check_matches_env(dataset: Dataset, env: Any, env_params: Any) -> None:
    """Raise a ``ValueError`` naming the field when the dataset's observations or actions do not
    fit ``env``'s spaces (shape, and for discrete actions the range)."""
    observation_space = env.observation_space(env_params)
    action_space = env.action_space(env_params)
    name = dataset.info.name or "the dataset"
    if isinstance(observation_space, spaces.Box):
        shape = tuple(dataset.observations.shape[1:])
        if shape != tuple(observation_space.shape):
            raise ValueError(
                f"Dataset field 'observations' of {name} has shape {shape} per transition but "
                f"{env.name}'s observation space is {observation_space}; is it a dataset of "
                f"another env?"
            )
    if isinstance(action_space, spaces.Discrete):
        if jnp.issubdtype(dataset.actions.dtype, jnp.floating) or dataset.actions.ndim != 1:
            raise ValueError(
                f"Dataset field 'actions' of {name} holds {dataset.actions.dtype} actions of "
                f"shape {tuple(dataset.actions.shape[1:])} but {env.name} has discrete actions "
                f"({action_space}): one integer per transition."
            )
        low, high = int(dataset.actions.min()), int(dataset.actions.max())
        if low < 0 or high >= action_space.n:
            raise ValueError(f"Dataset field 'actions' of {name} has actions in [{low}, {high}] "
                             f"but {env.name} accepts 0..{action_space.n - 1}.")
    elif isinstance(action_space, spaces.Box):
        shape = tuple(dataset.actions.shape[1:])
        if shape != tuple(action_space.shape):
            raise ValueError(
                f"Dataset field 'actions' of {name} has shape {shape} per transition but "
                f"{env.name}'s action space is {action_space}."
            )


# --- scores and statistics -----------------------------------------------------------------------
def normalized_score(episode_return: Any, ref_min_score: float, ref_max_score: float) -> Any:
    """D4RL's normalised score ``100 * (R - R_random) / (R_expert - R_random)``: 0 is the random
    policy, 100 the expert. Works on floats and arrays (also traced)."""
    return 100.0 * (episode_return - ref_min_score) / (ref_max_score - ref_min_score)


def episode_returns(dataset: Dataset) -> np.ndarray:
    """Undiscounted return of each episode, ``(E,)`` float64 (an unfinished last one counts)."""
    ids = np.asarray(dataset.episode_ids)
    return np.bincount(ids, weights=np.asarray(dataset.rewards, np.float64),
                       minlength=dataset.num_episodes)


def behaviour_score(dataset: Dataset) -> float | None:
    """The normalised score of the dataset's own mean episode return (the behaviour policy's),
    by its recorded reference returns; None when it records none."""
    info = dataset.info
    if info.ref_min_score is None or info.ref_max_score is None:
        return None
    return float(normalized_score(episode_returns(dataset).mean(), info.ref_min_score,
                                  info.ref_max_score))


def observation_statistics(dataset: Dataset, epsilon: float = 1e-3) -> tuple[jax.Array, jax.Array]:
    """Mean and standard deviation (plus ``epsilon``) of the observations, each
    ``(*obs_shape,)``: the state normalisation of TD3+BC (and IQL, ReBRAC)."""
    mean = dataset.observations.mean(axis=0)
    std = dataset.observations.std(axis=0) + epsilon
    return mean, std


# --- sampling -------------------------------------------------------------------------------------
@struct.dataclass
class TransitionSampler:
    """Draws minibatches of transitions inside jit.

    ``cumulative``: None for uniform sampling, else the cumulative probabilities ``(N,)`` of
    each transition, searched with the uniform draws (``O(batch log N)`` per minibatch).
    """

    dataset: Dataset
    cumulative: jax.Array | None = None

    @classmethod
    def uniform(cls, dataset: Dataset) -> TransitionSampler:
        """Every transition equally likely."""
        return cls(dataset, None)

    @classmethod
    def return_weighted(cls, dataset: Dataset, temperature: float = 0.1) -> TransitionSampler:
        """Trajectory weighting for mixed datasets (Hong et al., 2023): a transition's weight is
        ``exp(g / temperature)`` where ``g`` in ``[0, 1]`` is its episode's return rescaled over
        the dataset's episodes (the worst 0, the best 1), so the draw leans towards transitions
        of high-return episodes; a large temperature is uniform over transitions."""
        if not temperature > 0:
            raise ValueError(f"return-weighted sampling needs temperature > 0; got "
                             f"{temperature!r}.")
        returns = episode_returns(dataset)
        spread = returns.max() - returns.min()
        scaled = (returns - returns.min()) / spread if spread > 0 else np.zeros_like(returns)
        episode_weight = np.exp((scaled - 1.0) / temperature)  # <= 1: no overflow
        weights = episode_weight[np.asarray(dataset.episode_ids)]
        cumulative = np.cumsum(weights)
        return cls(dataset, jnp.asarray(cumulative / cumulative[-1], jnp.float32))

    def probabilities(self) -> jax.Array:
        """Probability of each transition per draw, ``(N,)``."""
        if self.cumulative is None:
            return jnp.full((self.dataset.size,), 1.0 / self.dataset.size)
        return jnp.diff(self.cumulative, prepend=0.0)

    def sample_indices(self, key: jax.Array, batch_shape: int | tuple[int, ...]) -> jax.Array:
        """int32 row indices of shape ``batch_shape``, drawn with replacement."""
        size = self.dataset.size
        batch_shape = (batch_shape,) if isinstance(batch_shape, int) else tuple(batch_shape)
        if self.cumulative is None:
            return jax.random.randint(key, batch_shape, 0, size)
        uniform = jax.random.uniform(key, batch_shape)
        index = jnp.searchsorted(self.cumulative, uniform, side="right")
        return jnp.clip(index, 0, size - 1).astype(jnp.int32)

    def sample(self, key: jax.Array, batch_size: int) -> Transition:
        """A minibatch: ``Transition`` leaves ``(batch_size, ...)``."""
        return self.dataset.transitions(self.sample_indices(key, batch_size))


# --- D4RL -----------------------------------------------------------------------------------------
def _h5py():
    try:
        import h5py
    except ImportError as error:  # pragma: no cover - h5py is a dependency
        raise ImportError("Reading and writing datasets needs h5py: pip install h5py") from error
    return h5py


def _optional_float(value: Any) -> float | None:
    if value is None:
        return None
    value = float(np.asarray(value))
    return value if np.isfinite(value) else None


def _attr_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        return value.decode()
    return str(value)


@contextlib.contextmanager
def _reading_hdf5(h5py: Any, path: Path):
    """An HDF5 file open for reading; a file that is not HDF5, or is cut short, is one
    ``ValueError`` naming it (h5py's ``OSError`` names no path)."""
    try:
        file = h5py.File(path, "r")
    except OSError as error:
        raise ValueError(f"{path} is not a readable HDF5 file ({error}); is it truncated, or "
                         f"another format?") from None
    try:
        with file:
            yield file
    except OSError as error:
        raise ValueError(f"{path} could not be read: {error}; the file is damaged or cut "
                         f"short.") from None


def load_d4rl(path: str | Path, **info_overrides: Any) -> Dataset:
    """Read a D4RL HDF5 file (see the module docstring). ``info_overrides`` set ``DatasetInfo``
    fields, e.g. ``env_id=``, ``ref_min_score=``, ``ref_max_score=`` for a file without them."""
    h5py = _h5py()
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"No D4RL file at {path}.")
    with _reading_hdf5(h5py, path) as file:
        missing = [name for name in D4RL_FIELDS if name not in file]
        if missing:
            raise ValueError(
                f"D4RL file {path} is missing the field(s) {', '.join(map(repr, missing))}; a "
                f"D4RL file has {', '.join(D4RL_FIELDS)} (and optionally next_observations)."
            )
        data = {name: np.asarray(file[name]) for name in D4RL_FIELDS}
        next_observations = (np.asarray(file["next_observations"])
                             if "next_observations" in file else None)
        attrs = dict(file.attrs)
    for name in D4RL_FIELDS:
        if data[name].shape[:1] != data["observations"].shape[:1]:
            raise ValueError(
                f"Dataset field {name!r} in {path} has {data[name].shape[0]} rows but "
                f"'observations' has {data['observations'].shape[0]}."
            )
    if next_observations is None:
        data, next_observations = _next_within_episode(data)
    info = DatasetInfo(
        name=_attr_text(attrs.get("name")) or path.stem,
        env_id=_attr_text(attrs.get("env_id")),
        kind=_attr_text(attrs.get("kind")),
        ref_min_score=_optional_float(attrs.get("ref_min_score")),
        ref_max_score=_optional_float(attrs.get("ref_max_score")),
        algorithm=_attr_text(attrs.get("algorithm")),
        source=str(path),
    )
    return make_dataset(next_observations=next_observations,
                        info=dataclasses.replace(info, **info_overrides), **data)


def _next_within_episode(data: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """D4RL files without ``next_observations``: the next row is the next observation, except
    after an episode's end. A timeout's (and the file's last row's) next observation is unknown,
    so those rows are dropped; a terminal's is never used, so it keeps its own row."""
    observations = data["observations"]
    size = observations.shape[0]
    terminals = data["terminals"].astype(bool)
    timeouts = data["timeouts"].astype(bool)
    next_observations = np.concatenate([observations[1:], observations[-1:]], axis=0)
    keep = ~timeouts
    keep[-1] = keep[-1] & terminals[-1]
    # The row before a dropped timeout now ends its episode as a truncation.
    dropped_after = np.zeros(size, bool)
    dropped_after[:-1] = timeouts[1:] & ~terminals[:-1] & ~timeouts[:-1]
    data = dict(data)
    data["timeouts"] = timeouts | dropped_after
    data["terminals"] = terminals
    kept = {name: value[keep] for name, value in data.items()}
    return kept, next_observations[keep]


def save_d4rl(dataset: Dataset, path: str | Path) -> Path:
    """Write ``dataset`` as a D4RL HDF5 file, ``next_observations`` and the ``DatasetInfo``
    (as attributes) included."""
    h5py = _h5py()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as file:
        for name in ("observations", "actions", "rewards", "next_observations", "terminals",
                     "timeouts"):
            file.create_dataset(name, data=np.asarray(getattr(dataset, name)), compression="gzip")
        for field in dataclasses.fields(DatasetInfo):
            value = getattr(dataset.info, field.name)
            if value is not None and field.name != "source":
                file.attrs[field.name] = value
    return path


# --- Minari ---------------------------------------------------------------------------------------
def _minari_metadata(folder: Path) -> dict[str, Any]:
    for candidate in (folder / "data" / "metadata.json", folder / "metadata.json"):
        if candidate.is_file():
            return json.loads(candidate.read_text())
    raise ValueError(f"Minari folder {folder} has no metadata.json (looked in {folder / 'data'} "
                     f"and {folder}).")


def _episode_number(name: str) -> int:
    return int(name.split("_", 1)[1])


def load_minari(path: str | Path, **info_overrides: Any) -> Dataset:
    """Read a Minari dataset folder (see the module docstring); ``info_overrides`` as in
    ``load_d4rl``. Box observations and actions only (a Dict space is refused, naming it)."""
    h5py = _h5py()
    folder = Path(path)
    data_file = folder / "data" / "main_data.hdf5"
    if not data_file.is_file():
        raise ValueError(f"{folder} is not a Minari dataset folder: it has no "
                         f"data/main_data.hdf5.")
    metadata = _minari_metadata(folder)
    columns: dict[str, list[np.ndarray]] = {name: [] for name in (
        "observations", "actions", "rewards", "next_observations", "terminals", "timeouts",
        "episode_ids")}
    with _reading_hdf5(h5py, data_file) as file:
        names = sorted((name for name in file if name.startswith("episode_")),
                       key=_episode_number)
        if not names:
            raise ValueError(f"Minari file {data_file} has no episode_{{k}} groups.")
        for episode_index, name in enumerate(names):
            group = file[name]
            missing = [field for field in MINARI_EPISODE_FIELDS if field not in group]
            if missing:
                raise ValueError(
                    f"Minari {data_file}: {name} is missing the field(s) "
                    f"{', '.join(map(repr, missing))}; each episode has "
                    f"{', '.join(MINARI_EPISODE_FIELDS)}."
                )
            for field in ("observations", "actions"):
                if not isinstance(group[field], h5py.Dataset):
                    raise ValueError(
                        f"Minari {data_file}: {name}/{field} is a group (a Dict or Tuple space); "
                        f"only Box (array) {field} are supported. Flatten them first."
                    )
            observations = np.asarray(group["observations"])
            steps = np.asarray(group["actions"]).shape[0]
            lengths = {field: np.asarray(group[field]).shape[0]
                       for field in ("actions", "rewards", "terminations", "truncations")}
            if any(length != steps for length in lengths.values()) or (
                observations.shape[0] != steps + 1
            ):
                raise ValueError(
                    f"Minari {data_file}: {name} has mismatched lengths: observations "
                    f"{observations.shape[0]} (needs T+1), "
                    + ", ".join(f"{field} {length}" for field, length in lengths.items())
                    + " (each T)."
                )
            columns["observations"].append(observations[:-1])
            columns["next_observations"].append(observations[1:])
            columns["actions"].append(np.asarray(group["actions"]))
            columns["rewards"].append(np.asarray(group["rewards"]))
            columns["terminals"].append(np.asarray(group["terminations"]))
            columns["timeouts"].append(np.asarray(group["truncations"]))
            columns["episode_ids"].append(np.full(steps, episode_index, np.int32))
    arrays = {name: np.concatenate(values) for name, values in columns.items()}
    jaxrl = metadata.get("jaxrl_suite", {})
    info = DatasetInfo(
        name=str(metadata.get("dataset_id", folder.name)),
        env_id=_minari_env_id(metadata),
        kind=jaxrl.get("kind"),
        ref_min_score=_optional_float(metadata.get("ref_min_score")),
        ref_max_score=_optional_float(metadata.get("ref_max_score")),
        algorithm=metadata.get("algorithm_name"),
        source=str(folder),
    )
    return make_dataset(info=dataclasses.replace(info, **info_overrides), **arrays)


def _space_json(array: np.ndarray, discrete: bool) -> str:
    """Minari's serialised space for the dataset's own values (bounds from the data)."""
    if discrete:
        return json.dumps({"type": "Discrete", "dtype": "int64", "start": 0,
                           "n": int(array.max()) + 1})
    low = array.min(axis=0).reshape(-1) if array.size else np.zeros(0)
    high = array.max(axis=0).reshape(-1) if array.size else np.zeros(0)
    return json.dumps({"type": "Box", "dtype": "float32", "shape": list(array.shape[1:]),
                       "low": low.astype(float).tolist(), "high": high.astype(float).tolist()})


def save_minari(
    dataset: Dataset,
    path: str | Path,
    observation_space: spaces.Space | None = None,
    action_space: spaces.Space | None = None,
) -> Path:
    """Write ``dataset`` as a Minari dataset folder that ``minari.load_dataset`` opens, named
    (``dataset_id``) by ``path``; with a Gymnasium ``env_spec`` when ``dataset.info.env_id`` has
    a counterpart in ``GYMNASIUM_IDS``.

    Each episode's observations get T+1 rows: its observations and its last step's
    ``next_observation``. So an episode must be contiguous, each step's next observation the
    following step's observation (true of collected data). Pass the env's spaces to record
    their bounds; without them the bounds are the data's range.
    """
    h5py = _h5py()
    folder = Path(path)
    (folder / "data").mkdir(parents=True, exist_ok=True)
    observations = np.asarray(dataset.observations)
    next_observations = np.asarray(dataset.next_observations)
    actions = np.asarray(dataset.actions)
    ids = np.asarray(dataset.episode_ids)
    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
    ends = np.r_[starts[1:], len(ids)]
    with h5py.File(folder / "data" / "main_data.hdf5", "w") as file:
        for episode, (start, end) in enumerate(zip(starts, ends)):
            if end - start > 1 and not np.array_equal(observations[start + 1:end],
                                                      next_observations[start:end - 1]):
                raise ValueError(
                    f"Episode {episode} (rows {start}..{end - 1}) is not contiguous: a step's "
                    f"next_observations differ from the following step's observations, which "
                    f"the Minari layout (T+1 observations per episode) cannot hold."
                )
            group = file.create_group(f"episode_{episode}")
            group.attrs["id"] = episode
            group.attrs["total_steps"] = int(end - start)
            group.create_dataset("observations", data=np.concatenate(
                [observations[start:end], next_observations[end - 1:end]]))
            group.create_dataset("actions", data=actions[start:end])
            group.create_dataset("rewards", data=np.asarray(dataset.rewards[start:end],
                                                            np.float64))
            group.create_dataset("terminations", data=np.asarray(dataset.terminals[start:end]))
            group.create_dataset("truncations", data=np.asarray(dataset.timeouts[start:end]))
    discrete = bool(np.issubdtype(actions.dtype, np.integer))
    info = dataset.info
    metadata: dict[str, Any] = {
        # The target's name, not info.name: a dataset re-saved under a new name is a new
        # dataset (Minari lists datasets by this id and refuses one that differs from its path).
        "dataset_id": _minari_dataset_id(folder),
        "total_episodes": len(starts),
        "total_steps": int(len(ids)),
        "data_format": "hdf5",
        "observation_space": _space_to_json(observation_space) or _space_json(observations,
                                                                             False),
        "action_space": _space_to_json(action_space) or _space_json(actions, discrete),
        "algorithm_name": info.algorithm or "unknown",
        "minari_version": "0.5.4",
        "jaxrl_suite": {"env_id": info.env_id, "kind": info.kind},
    }
    env_spec = _gymnasium_env_spec(info.env_id)
    if env_spec is not None:
        metadata["env_spec"] = env_spec
    if info.ref_min_score is not None and info.ref_max_score is not None:
        metadata["ref_min_score"] = info.ref_min_score
        metadata["ref_max_score"] = info.ref_max_score
        metadata["num_episodes_average_score"] = 100
    (folder / "data" / "metadata.json").write_text(json.dumps(metadata, indent=2))
    return folder


def _minari_root() -> Path:
    """Minari's local datasets folder: ``$MINARI_DATASETS_PATH``, default
    ``~/.minari/datasets`` (as Minari resolves it)."""
    return Path(os.environ.get("MINARI_DATASETS_PATH", Path.home() / ".minari" / "datasets"))


def _minari_dataset_id(folder: Path) -> str:
    """The ``dataset_id`` of a folder: its path under Minari's root (``namespace/name-v0``,
    which Minari checks against the id), else its name."""
    try:
        return folder.resolve().relative_to(_minari_root().resolve()).as_posix()
    except ValueError:
        return folder.name


def _gymnasium_env_spec(env_id: str | None) -> str | None:
    """Gymnasium's ``EnvSpec.to_json()`` of ``env_id``'s counterpart, or None without one."""
    if env_id not in GYMNASIUM_IDS:
        return None
    import gymnasium  # a dependency of gymnax; imported only when a spec is written

    return gymnasium.spec(GYMNASIUM_IDS[env_id]).to_json()


def _minari_env_id(metadata: dict[str, Any]) -> str | None:
    """The project env of a Minari folder: the id the project recorded, else the env whose
    Gymnasium counterpart its ``env_spec`` names (a folder Minari wrote), else None."""
    recorded = metadata.get("jaxrl_suite", {}).get("env_id")
    if recorded is not None or not isinstance(metadata.get("env_spec"), str):
        return recorded
    try:
        gymnasium_id = json.loads(metadata["env_spec"]).get("id")
    except (json.JSONDecodeError, AttributeError):
        return None
    by_gymnasium = {gym_id: env_id for env_id, gym_id in GYMNASIUM_IDS.items()}
    return by_gymnasium.get(gymnasium_id)


def _space_to_json(space: spaces.Space | None) -> str | None:
    if space is None:
        return None
    if isinstance(space, spaces.Discrete):
        return json.dumps({"type": "Discrete", "dtype": "int64", "start": 0, "n": int(space.n)})
    if isinstance(space, spaces.Box):
        shape = tuple(space.shape)
        low = np.broadcast_to(np.asarray(space.low, np.float64), shape).reshape(-1)
        high = np.broadcast_to(np.asarray(space.high, np.float64), shape).reshape(-1)
        return json.dumps({"type": "Box", "dtype": "float32", "shape": list(shape),
                           "low": low.tolist(), "high": high.tolist()})
    raise ValueError(f"save_minari writes Box and Discrete spaces; got {space}.")


# --- names and paths ------------------------------------------------------------------------------
def datasets_dir() -> Path:
    """Where named datasets live: ``$JAXRL_DATASETS``, default ``~/.jaxrl_suite/datasets``."""
    return Path(os.environ.get("JAXRL_DATASETS", Path.home() / ".jaxrl_suite" / "datasets"))


def resolve_dataset(name_or_path: str | Path) -> Path:
    """The file or folder of a dataset given as a path, or as a name in ``datasets_dir()``
    (a Minari folder ``NAME/`` or a D4RL file ``NAME.hdf5``)."""
    path = Path(name_or_path)
    if path.exists():
        return path
    root = datasets_dir()
    for candidate in (root / str(name_or_path), root / f"{name_or_path}.hdf5"):
        if candidate.exists():
            return candidate
    known = sorted(p.name for p in root.iterdir()) if root.is_dir() else []
    raise ValueError(
        f"No dataset {str(name_or_path)!r}: not a path, nor a name in {root} "
        f"(set JAXRL_DATASETS to look elsewhere). "
        + (f"Datasets there: {', '.join(known)}. " if known else "")
        + "Make one with: jaxrl collect --algo sac --env gymnax/Pendulum-v1 --kind medium"
    )


def recorded_env_id(name_or_path: str | Path) -> str | None:
    """The env id a dataset records, read from its metadata (Minari: the project's record, else
    the counterpart of its Gymnasium ``env_spec``) or attributes (D4RL) without loading the
    arrays; None if it records none. ``jaxrl train iql --dataset NAME``
    takes its env from here when ``--env`` is not given."""
    path = resolve_dataset(name_or_path)
    if path.is_dir():
        try:
            return _minari_env_id(_minari_metadata(path))
        except ValueError:  # no metadata.json: the loader reports it when the run starts
            return None
    with _h5py().File(path, "r") as file:
        return _attr_text(file.attrs.get("env_id"))


def load_dataset(name_or_path: str | Path, **info_overrides: Any) -> Dataset:
    """A dataset by name or path: a Minari folder, or a D4RL ``.hdf5``/``.h5`` file."""
    path = resolve_dataset(name_or_path)
    if path.is_dir():
        return load_minari(path, **info_overrides)
    return load_d4rl(path, **info_overrides)
