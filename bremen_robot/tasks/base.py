"""The :class:`Task` record: observation layout plus known reward, termination and reset.

Reward and termination are pure functions of ``(obs, action, next_obs)`` written once with
operators that numpy arrays and torch tensors share (``*``, ``.sum(-1)``, ``abs``, ``&``), so
the same code scores a logged dataset (numpy) and an imagined rollout (torch, any device).
Shapes: ``obs``/``next_obs`` are ``B x D_obs`` (or ``... x D_obs``), ``action`` is ``B x D_act``;
outputs are ``B`` (float for reward, bool for termination).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bremen_robot.errors import TaskError

Array = Any  # numpy.ndarray or torch.Tensor; both support the operators used by task functions
RewardFn = Callable[[Array, Array, Array], Array]
TerminationFn = Callable[[Array, Array, Array], Array]
ResetFn = Callable[[int, np.random.Generator], np.ndarray]


def never_terminates(obs: Array, action: Array, next_obs: Array) -> Array:
    """Termination function of tasks without a failure state: all False, shape ``B``."""
    return next_obs[..., 0] != next_obs[..., 0]  # False except for NaN, which should end a rollout


@dataclass(frozen=True)
class Task:
    """A control task: what the observation means and how it is scored.

    Attributes:
        name: registry key, e.g. ``halfcheetah``.
        obs_names: name of each observation entry, in order (``qpos.rootz``, ``qvel.rootx``, ...).
        action_names: actuated joint of each action entry, in order.
        action_low / action_high: box bounds of the action.
        dt: control period in seconds (the simulator's frame_skip x timestep).
        max_episode_steps: time limit of one episode (a timeout, not a terminal).
        reward_fn / termination_fn: known functions of (obs, action, next_obs).
        reset_fn: samples ``n x D_obs`` start observations from the simulator's reset
            distribution; ``None`` when unknown (imagination then starts from dataset states).
        gym_id / gym_kwargs: the Gymnasium env whose observations match ``obs_names`` exactly.
        default_horizon: imagined rollout length the paper uses for this task.
        description: one line for ``--help`` and reports.
        success_fn: where defined, True where ``next_obs`` counts as success (judged on an
            episode's last step), e.g. the arm within 5 cm of its goal.
    """

    name: str
    obs_names: tuple[str, ...]
    action_names: tuple[str, ...]
    action_low: tuple[float, ...]
    action_high: tuple[float, ...]
    dt: float
    max_episode_steps: int
    reward_fn: RewardFn
    termination_fn: TerminationFn = never_terminates
    reset_fn: ResetFn | None = None
    gym_id: str | None = None
    gym_kwargs: dict[str, Any] = field(default_factory=dict)
    default_horizon: int = 250
    description: str = ""
    success_fn: TerminationFn | None = None

    def __post_init__(self) -> None:
        if len(self.action_low) != len(self.action_names) or len(self.action_high) != len(self.action_names):
            raise TaskError(f"task {self.name}: action bounds must have one entry per action name")

    @property
    def obs_dim(self) -> int:
        return len(self.obs_names)

    @property
    def action_dim(self) -> int:
        return len(self.action_names)

    def reward(self, obs: Array, action: Array, next_obs: Array) -> Array:
        """Reward of each transition, shape ``B``."""
        return self.reward_fn(obs, action, next_obs)

    def terminated(self, obs: Array, action: Array, next_obs: Array) -> Array:
        """True where ``next_obs`` is a terminal (failure) state, shape ``B``."""
        return self.termination_fn(obs, action, next_obs)

    def sample_reset(self, n: int, rng: np.random.Generator) -> np.ndarray | None:
        """``n x D_obs`` float32 start observations, or ``None`` if the distribution is unknown."""
        if self.reset_fn is None:
            return None
        return np.asarray(self.reset_fn(n, rng), dtype=np.float32)

    def check_obs_dim(
        self, dim: int, what: str, fix: str = "pick the task the data was recorded for"
    ) -> None:
        """Raise a one-line :class:`TaskError` ending in ``fix`` when ``dim`` does not match this
        task's layout."""
        if dim != self.obs_dim:
            raise TaskError(
                f"{what} has observations of size {dim} but task '{self.name}' expects {self.obs_dim} "
                f"({', '.join(self.obs_names[:3])}, ...); {fix}"
            )


def squared_norm(x: Array) -> Array:
    """Row-wise squared L2 norm, ``B x D -> B``; works on numpy and torch."""
    return (x * x).sum(-1)
