"""The trainer's dataset of transitions (DESIGN.md §3 "Trajectory logs").

One row per transition. Shapes (N transitions, D observation size, A action size)::

    obs, next_obs      N x D   float32
    actions            N x A   float32
    rewards            N       float32
    terminals          N       bool    next_obs is a failure state (no bootstrapping)
    timeouts           N       bool    the episode was cut by a time limit (bootstrap)
    episode_ids        N       int64   unique within the dataset
    deployment_ids     N       int64   which deployment collected the row (1-based)
    policy_sha256      N       <U64    sha256 of the collecting policy ("random" for uniform)
    interventions      N       int32   safety-shield interventions at that step
    robot              N       <U64    which robot collected the row ("" before fleets; optional)

Stored as ``.npz`` without pickling; the digest is a sha256 over every column's bytes in a fixed
order plus the task name, so equal data gives an equal digest wherever it was written. The
``robot`` column (issue 17: a fleet's per-robot provenance) is optional: a file without it loads
with "" everywhere, and it enters the digest only when some row names a robot, so every dataset
written before it keeps its digest.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bremen_robot.errors import DatasetError
from bremen_robot.fsutil import atomic_write_bytes
from bremen_robot.tasks import Task, get_task

COLUMNS: dict[str, Any] = {
    "obs": np.float32,
    "actions": np.float32,
    "rewards": np.float32,
    "next_obs": np.float32,
    "terminals": np.bool_,
    "timeouts": np.bool_,
    "episode_ids": np.int64,
    "deployment_ids": np.int64,
    "policy_sha256": np.dtype("<U64"),
    "interventions": np.int32,
}
OPTIONAL_COLUMNS: dict[str, Any] = {"robot": np.dtype("<U64")}
FORMAT_VERSION = 1
_MATRIX_COLUMNS = ("obs", "actions", "next_obs")  # N x D or N x A; every other column is N


@dataclass
class Dataset:
    """Transitions with episode/deployment bookkeeping; see the module docstring for shapes."""

    task: str
    obs: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    next_obs: np.ndarray
    terminals: np.ndarray
    timeouts: np.ndarray
    episode_ids: np.ndarray
    deployment_ids: np.ndarray
    policy_sha256: np.ndarray
    interventions: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)
    robot: np.ndarray = field(default_factory=lambda: np.empty(0, OPTIONAL_COLUMNS["robot"]))

    def __post_init__(self) -> None:
        if len(self.robot) == 0:  # not given (datasets from before fleets): no robot named
            self.robot = np.full(len(self.obs), "")
        self.robot = np.ascontiguousarray(np.asarray(self.robot).astype(OPTIONAL_COLUMNS["robot"]))
        if len(self.robot) != len(self.obs):
            raise DatasetError(f"column 'robot' has {len(self.robot)} rows but obs has {len(self.obs)}")
        for name, dtype in COLUMNS.items():
            setattr(
                self, name, np.ascontiguousarray(np.asarray(getattr(self, name)).astype(dtype, copy=False))
            )
        for name in (*COLUMNS, *OPTIONAL_COLUMNS):
            arr = getattr(self, name)
            # one value per row: an N x 1 column (a D4RL export's rewards) would broadcast to N x N
            if name not in _MATRIX_COLUMNS and arr.ndim != 1:
                raise DatasetError(
                    f"column '{name}' has shape {arr.shape}; it must hold one value per transition "
                    "(shape N): reshape it to 1-D"
                )
        n = len(self.obs)
        for name in COLUMNS:
            if len(getattr(self, name)) != n:
                raise DatasetError(f"column '{name}' has {len(getattr(self, name))} rows but obs has {n}")
        if self.obs.ndim != 2 or self.next_obs.shape != self.obs.shape or self.actions.ndim != 2:
            raise DatasetError(
                f"obs {self.obs.shape}, next_obs {self.next_obs.shape} and actions {self.actions.shape} "
                "must be N x D, N x D and N x A"
            )

    # ----------------------------------------------------------------- basics
    def __len__(self) -> int:
        return int(self.obs.shape[0])

    @property
    def obs_dim(self) -> int:
        return int(self.obs.shape[1])

    @property
    def action_dim(self) -> int:
        return int(self.actions.shape[1])

    def columns(self) -> dict[str, np.ndarray]:
        """Every column, ``robot`` included only when some row names a robot."""
        cols = {name: getattr(self, name) for name in COLUMNS}
        if bool(np.any(self.robot != "")):
            cols["robot"] = self.robot
        return cols

    def digest(self) -> str:
        """sha256 over the task name and every column (dtype, shape, bytes) in a fixed order."""
        h = hashlib.sha256(f"bremen-dataset-v{FORMAT_VERSION}:{self.task}".encode())
        for name, arr in self.columns().items():
            h.update(f"{name}:{arr.dtype.str}:{arr.shape}".encode())
            h.update(arr.tobytes())
        return h.hexdigest()

    def select(self, mask: np.ndarray) -> Dataset:
        """Rows where ``mask`` (N bool or index array) holds; meta is kept."""
        cols = {k: getattr(self, k)[mask] for k in (*COLUMNS, *OPTIONAL_COLUMNS)}
        return Dataset(task=self.task, meta=dict(self.meta), **cols)

    def episode_keys(self) -> np.ndarray:
        """Unique episode ids, in order of first appearance."""
        _, first = np.unique(self.episode_ids, return_index=True)
        return self.episode_ids[np.sort(first)]

    def episode_returns(self) -> np.ndarray:
        """Sum of rewards per episode (order of :meth:`episode_keys`)."""
        keys, first, inverse = np.unique(self.episode_ids, return_index=True, return_inverse=True)
        sums = np.bincount(inverse, weights=self.rewards.astype(np.float64), minlength=len(keys))
        return sums[np.argsort(first)]  # order of first appearance, like episode_keys()

    def deployments(self) -> list[int]:
        return sorted(int(d) for d in np.unique(self.deployment_ids))

    def latest_deployment(self) -> Dataset:
        """Rows of the highest deployment id (BC trains on these by default)."""
        return self.select(self.deployment_ids == max(self.deployments()))

    # ------------------------------------------------------------- validation
    def validate(self, task: Task | None = None) -> None:
        """Raise a one-line :class:`DatasetError` for empty, non-finite or mismatched data."""
        if len(self) == 0:
            raise DatasetError("dataset is empty; collect or merge at least one episode first")
        task = task or get_task(self.task)
        task.check_obs_dim(self.obs_dim, f"dataset (task '{self.task}')")
        if self.action_dim != task.action_dim:
            raise DatasetError(
                f"dataset actions have size {self.action_dim} but task '{task.name}' "
                f"expects {task.action_dim}"
            )
        for name in ("obs", "actions", "rewards", "next_obs"):
            arr = getattr(self, name)
            bad = ~np.isfinite(arr)
            if bad.any():
                row = int(np.argwhere(bad)[0][0])
                raise DatasetError(
                    f"column '{name}' has {int(bad.sum())} NaN/inf values (first at row {row}); "
                    "drop those episodes or re-ingest the source"
                )

    def split_by_episode(self, holdout_fraction: float) -> tuple[Dataset, Dataset]:
        """Per-episode split into (train, holdout); both non-empty when possible.

        Whole episodes go to one side so holdout error measures generalization to unseen
        trajectories (the original code held out the last 15% of rows instead). The side is a
        pure function of the episode's content (a hash of its deployment id and first state), so
        when the ensemble is re-fit on more data at the next deployment, no episode it trained on
        before moves into the holdout. Episodes that start from one state (a home pose) also hash
        their order among those, so each still draws its own side.
        """
        keys = self.episode_keys()
        if len(keys) < 2:
            # A single long episode: split it by time so holdout still exists.
            cut = min(len(self) - 1, max(1, int(round(len(self) * (1 - holdout_fraction)))))
            idx = np.arange(len(self))
            return self.select(idx[:cut]), self.select(idx[cut:])
        _, first = np.unique(self.episode_ids, return_index=True)
        first = np.sort(first)  # first row of each episode, in the order of keys
        u = np.array(_episode_hashes(self.deployment_ids[first], self.obs[first]))
        held = u < holdout_fraction
        if not held.any():
            held[np.argmin(u)] = True
        if held.all():
            held[np.argmax(u)] = False
        hold = np.isin(self.episode_ids, keys[held])
        return self.select(~hold), self.select(hold)

    # -------------------------------------------------------------------- I/O
    def save(self, path: Path, overwrite: bool = False) -> Path:
        """Write ``.npz`` atomically (temp file + rename); refuses to replace a different file."""
        path = Path(path)
        if path.is_dir():  # else it became <folder>.npz beside the folder, not the file asked for
            raise DatasetError(f"'{path}' is a folder; give a file name, e.g. '{path / 'data.npz'}'")
        path = Dataset.npz_path(path)
        if path.exists() and not overwrite:
            return self._same_as_existing(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        header = {
            "format_version": FORMAT_VERSION,
            "task": self.task,
            "meta": self.meta,
            "digest": self.digest(),
        }
        arrays: dict[str, Any] = {"header": np.array(json.dumps(header)), **self.columns()}
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        try:
            # exclusive: a writer that created the file since the check above is never replaced
            atomic_write_bytes(path, buf.getvalue(), exclusive=not overwrite)
        except FileExistsError:
            return self._same_as_existing(path)
        return path

    @staticmethod
    def npz_path(path: Path) -> Path:
        """Where :meth:`save` writes ``path``: as given when it ends in ``.npz``, else with
        ``.npz`` appended (numpy's rule; replacing the suffix made ``data.2026.12`` ``data.2026.npz``)."""
        path = Path(path)
        return path if path.suffix == ".npz" else path.with_name(path.name + ".npz")

    def _same_as_existing(self, path: Path) -> Path:
        """``path`` when the file there holds this very data; otherwise refuse, in one line."""
        try:
            if Dataset.load(path).digest() == self.digest():
                return path
        except DatasetError:
            pass
        raise DatasetError(f"'{path}' already exists; choose another output path (nothing was written)")

    @staticmethod
    def load(path: Path) -> Dataset:
        """Read a ``.npz`` written by :meth:`save`; corrupt or truncated files give one line."""
        path = Path(path)
        if not path.is_file():
            raise DatasetError(f"dataset '{path}' not found; pass a .npz written by 'bremen dataset'")
        try:
            loaded = np.load(path, allow_pickle=False)
            if not isinstance(loaded, np.lib.npyio.NpzFile):  # a lone .npy array
                raise DatasetError(
                    f"dataset '{path}' is a single numpy array, not a dataset .npz; pass a file written "
                    "by 'bremen dataset' (or convert a D4RL-style .npz with 'bremen dataset convert')"
                )
            with loaded as z:
                header = json.loads(str(z["header"]))
                cols = {name: z[name] for name in COLUMNS}
                cols.update({name: z[name] for name in OPTIONAL_COLUMNS if name in z.files})
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, KeyError) as exc:
            kind = "missing column " + str(exc) if isinstance(exc, KeyError) else "corrupt or truncated"
            raise DatasetError(
                f"dataset '{path}' is unreadable ({kind}); re-create it from the source bags"
            ) from None
        if not isinstance(header, dict) or not isinstance(header.get("task"), str):
            raise DatasetError(
                f"dataset '{path}' has no valid header (task); re-create it from the source bags"
            )
        if header.get("format_version") != FORMAT_VERSION:
            raise DatasetError(
                f"dataset '{path}' has format {header.get('format_version')}, expected {FORMAT_VERSION}"
            )
        if not isinstance(header.get("digest"), str) or not isinstance(header.get("meta", {}), dict):
            # save always records both: without the digest nothing below could be checked
            raise DatasetError(
                f"dataset '{path}' has no recorded digest or a malformed meta; "
                "re-create it from the source bags"
            )
        for name, arr in cols.items():
            problem = _column_problem(name, arr)
            if problem:
                raise DatasetError(
                    f"dataset '{path}': column '{name}' {problem}; re-create it from the source bags"
                )
        try:
            ds = Dataset(task=header["task"], meta=header.get("meta", {}), **cols)
        except DatasetError as exc:
            raise DatasetError(f"dataset '{path}': {exc}") from None
        if header["digest"] != ds.digest():
            raise DatasetError(
                f"dataset '{path}' does not match its recorded digest (corrupted); re-create it"
            )
        return ds

    @staticmethod
    def from_columns(
        task: str, columns: dict[str, np.ndarray], meta: dict[str, Any] | None = None
    ) -> Dataset:
        """Build from a mapping of columns; optional columns default sensibly."""
        missing = [c for c in ("obs", "actions", "rewards", "next_obs") if c not in columns]
        if missing:
            raise DatasetError(f"missing required column(s) {', '.join(missing)}")
        n = len(columns["obs"])
        defaults: dict[str, Any] = {
            "terminals": np.zeros(n, bool),
            "timeouts": np.zeros(n, bool),
            "episode_ids": np.zeros(n, np.int64),
            "deployment_ids": np.ones(n, np.int64),
            "policy_sha256": np.full(n, "unknown"),
            "interventions": np.zeros(n, np.int32),
        }
        cols: dict[str, Any] = {name: columns.get(name, defaults.get(name)) for name in COLUMNS}
        return Dataset(task=task, meta=meta or {}, **cols)


def _column_problem(name: str, arr: np.ndarray) -> str:
    """Why a loaded column is not what save writes ("" when it is). Load must not cast: float
    terminals of 2.5 would read as True, fractional episode ids would merge episodes, a longer
    string would be cut to 64 characters."""
    want = np.dtype({**COLUMNS, **OPTIONAL_COLUMNS}[name])
    if not np.can_cast(arr.dtype, want, casting="safe"):
        return f"is {arr.dtype}, expected {want}"
    ndim = 2 if name in _MATRIX_COLUMNS else 1
    if arr.ndim != ndim:
        return f"has shape {arr.shape}, expected {ndim}-D"
    return ""


def _unit_hash(deployment: int, first_obs: np.ndarray, repeat: int = 0) -> float:
    """A number in [0, 1) fixed by an episode's content; ``repeat`` (k > 0 for the k-th later
    episode of the deployment with the same first state) enters only when above 0, so an episode
    with a first state of its own hashes as it always did."""
    key = deployment.to_bytes(8, "little", signed=True) + first_obs.tobytes()
    if repeat:
        key += repeat.to_bytes(8, "little")
    return int.from_bytes(hashlib.sha256(key).digest()[:8], "little") / 2**64


def _episode_hashes(deployments: np.ndarray, first_obs: np.ndarray) -> list[float]:
    """:func:`_unit_hash` of each episode ``(E,), (E, D)``, in order. Without the repeat count every
    episode of a deployment that resets to one state would land on the same side of the split."""
    seen: Counter[bytes] = Counter()
    out = []
    for dep, row in zip(deployments.tolist(), first_obs):
        key = int(dep).to_bytes(8, "little", signed=True) + row.tobytes()
        out.append(_unit_hash(int(dep), row, seen[key]))
        seen[key] += 1
    return out


def _episode_fingerprints(d: Dataset) -> set[str]:
    """One sha256 per episode over its rows' deployment, observations and actions: equal only
    for the same recorded episode (episode ids are renumbered by every merge, so not those)."""
    _, inverse = np.unique(d.episode_ids, return_inverse=True)
    order = np.argsort(inverse, kind="stable")  # rows grouped by episode, in row order
    cuts = np.flatnonzero(np.diff(inverse[order])) + 1
    keys = set()
    for rows in np.split(order, cuts) if len(d) else []:
        h = hashlib.sha256(d.deployment_ids[rows].tobytes())
        h.update(d.obs[rows].tobytes())
        h.update(d.actions[rows].tobytes())
        keys.add(h.hexdigest())
    return keys


def merge(datasets: Sequence[Dataset]) -> Dataset:
    """Concatenate datasets of one task; episode ids are renumbered so they stay unique."""
    if not datasets:
        raise DatasetError("nothing to merge; pass at least one dataset")
    tasks = {d.task for d in datasets}
    if len(tasks) > 1:
        raise DatasetError(f"cannot merge datasets of different tasks: {', '.join(sorted(tasks))}")
    dims = {(d.obs_dim, d.action_dim) for d in datasets}
    if len(dims) > 1:
        raise DatasetError(f"cannot merge datasets with different (obs, action) sizes: {sorted(dims)}")
    seen: dict[str, int] = {}
    for i, d in enumerate(datasets, start=1):
        for key in _episode_fingerprints(d):
            if seen.setdefault(key, i) != i:  # the same input twice, or one that contains another
                raise DatasetError(
                    f"dataset {i} repeats an episode of dataset {seen[key]}; "
                    "merge each episode once (drop the input that holds it again)"
                )
    parts: dict[str, list[np.ndarray]] = {name: [] for name in (*COLUMNS, *OPTIONAL_COLUMNS)}
    offset = 0
    for d in datasets:
        cols = {name: getattr(d, name) for name in parts}
        _, renum = np.unique(d.episode_ids, return_inverse=True)
        cols["episode_ids"] = renum.astype(np.int64) + offset
        offset += int(renum.max()) + 1 if len(d) else 0
        for name in parts:
            parts[name].append(cols[name])
    meta = {"merged_from": [d.digest() for d in datasets]}
    return Dataset(task=datasets[0].task, meta=meta, **{k: np.concatenate(v) for k, v in parts.items()})
