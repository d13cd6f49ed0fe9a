"""Imagined rollouts in the learned ensemble (DESIGN.md §4). Never used for collection.

:class:`ModelEnv` steps a batch of states through one randomly drawn ensemble member per step
and scores it with the task's known reward and termination. All randomness comes from the
explicit ``torch.Generator`` passed in. Shapes: B rollouts, D observation, A action, T steps.

``fixed_member`` pins every step to one member instead: candidate selection
(:mod:`bremen_robot.selection`) rolls each member on its own to see which snapshot only some
members believe in.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from bremen_robot.models.ensemble import DynamicsEnsemble
from bremen_robot.policy.gaussian import GaussianPolicy
from bremen_robot.tasks import Task

STATE_CLIP = 1e5  # BREMEN clips imagined states to +-1e5


class ModelEnv:
    """Learned dynamics + known reward/termination, batched and on the ensemble's device."""

    def __init__(
        self,
        ensemble: DynamicsEnsemble,
        task: Task,
        generator: torch.Generator,
        start_states: np.ndarray | None = None,
        use_reset_distribution: bool = True,
        uncertainty_penalty: float = 0.0,
        fixed_member: int | None = None,
    ) -> None:
        self.ensemble, self.task, self.generator = ensemble, task, generator
        self.uncertainty_penalty = uncertainty_penalty
        if fixed_member is not None and not 0 <= fixed_member < ensemble.members:
            raise ValueError(f"fixed_member {fixed_member} is not one of the {ensemble.members} members")
        self.fixed_member = fixed_member
        self.device = next(ensemble.parameters()).device
        self.low = torch.tensor(task.action_low, dtype=torch.float32, device=self.device)
        self.high = torch.tensor(task.action_high, dtype=torch.float32, device=self.device)
        self.use_reset = use_reset_distribution and task.reset_fn is not None
        if not self.use_reset and start_states is None:
            raise ValueError(f"task '{task.name}' has no reset distribution; pass dataset start states")
        self.start_pool = None if start_states is None else torch.as_tensor(start_states, device=self.device)
        # Reset noise is drawn in numpy (the task's reset_fn); its seed comes from our generator.
        seed = int(torch.randint(2**31 - 1, (1,), generator=generator, device=generator.device))
        self._np_rng = np.random.default_rng(seed)

    def reset(self, n: int) -> torch.Tensor:
        """``n`` start states, ``(n, D)``."""
        if self.use_reset:
            return torch.as_tensor(self.task.sample_reset(n, self._np_rng), device=self.device)
        assert self.start_pool is not None
        idx = torch.randint(
            len(self.start_pool), (n,), generator=self.generator, device=self.generator.device
        )
        return self.start_pool[idx.to(self.device)]

    def draw_members(self, n: int) -> list[int]:
        """Which ensemble member each of the next ``n`` steps uses: one draw, one device sync
        (none with ``fixed_member``, so a pinned rollout leaves the generator untouched)."""
        if self.fixed_member is not None:
            return [self.fixed_member] * n
        gen = self.generator
        return torch.randint(self.ensemble.members, (n,), generator=gen, device=gen.device).tolist()

    def step(
        self, obs: torch.Tensor, actions: torch.Tensor, member: int | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(B, D), (B, A) -> next_obs (B, D), reward (B,), terminated (B,)``; ``member`` is
        drawn at random when not given."""
        if member is None:
            member = self.draw_members(1)[0]
        a = torch.maximum(torch.minimum(actions, self.high), self.low)
        if self.uncertainty_penalty:
            delta = self.ensemble.normalized_deltas(obs, a)  # (E, B, D)
            u = self.ensemble.spread(delta)  # (E, B, D) -> (B,)
            nxt = obs + delta[member] * self.ensemble.delta_std + self.ensemble.delta_mean
        else:
            nxt = self.ensemble.predict_member(obs, a, member)
        nxt = nxt.clamp(-STATE_CLIP, STATE_CLIP)
        bad = ~torch.isfinite(nxt).all(dim=-1)
        if self.uncertainty_penalty:  # any diverged member makes the spread, so the reward, NaN
            bad = bad | ~torch.isfinite(u)
        diverged = bool(bad.any())
        if diverged:  # a diverged model ends that rollout instead of poisoning the batch
            nxt = torch.where(bad.unsqueeze(-1), obs, nxt)
        reward = self.task.reward(obs, a, nxt)
        if self.uncertainty_penalty:
            penalty = torch.where(bad, torch.zeros_like(u), u) if diverged else u
            reward = reward - self.uncertainty_penalty * penalty
        terminated = self.task.terminated(obs, a, nxt) | bad
        return nxt, reward, terminated


@dataclass
class ImaginedBatch:
    """Time-major imagined experience: every tensor is ``(T, B, ...)``."""

    obs: torch.Tensor  # (T, B, D)
    actions: torch.Tensor  # (T, B, A)
    rewards: torch.Tensor  # (T, B)
    next_obs: torch.Tensor  # (T, B, D)
    terminals: torch.Tensor  # (T, B) bool
    dones: torch.Tensor  # (T, B) bool: terminal, or the horizon
    timesteps: torch.Tensor  # (T, B) step index within the rollout
    mean: torch.Tensor  # (T, B, A) policy mean when acting
    log_std: torch.Tensor  # (T, B, A)

    def episode_returns(self) -> torch.Tensor:
        """Undiscounted return of every whole segment: terminated, or run from the batch's first
        step to the horizon. Segments restarted mid-batch and cut by the horizon are partial and
        left out (they would bias the figure low on tasks that terminate)."""
        totals = []
        running = torch.zeros_like(self.rewards[0])
        for t in range(self.rewards.shape[0]):
            running = running + self.rewards[t]
            done = self.dones[t]
            whole = done & (self.terminals[t] | (self.timesteps[t] == t))
            totals.append(running[whole])
            running = torch.where(done, torch.zeros_like(running), running)
        return torch.cat(totals)


@torch.no_grad()
def imagine(
    env: ModelEnv,
    policy: GaussianPolicy,
    n_rollouts: int,
    horizon: int,
    generator: torch.Generator,
    *,
    start: torch.Tensor | None = None,
    deterministic: bool = False,
) -> ImaginedBatch:
    """Run ``n_rollouts`` imagined rollouts for ``horizon`` steps with a stochastic policy.

    A rollout that terminates early restarts from a fresh start state, so the batch stays full.
    ``start`` ``(B, D)`` gives the first states instead of ``env.reset``; ``deterministic``
    acts with the policy's mean, as a deployed artifact does (no noise is drawn then).
    """
    B, T, dev = n_rollouts, horizon, env.device
    D, A = env.ensemble.obs_dim, env.ensemble.action_dim
    obs_buf = torch.empty(T, B, D, device=dev)
    next_buf = torch.empty(T, B, D, device=dev)
    act_buf = torch.empty(T, B, A, device=dev)
    mean_buf = torch.empty(T, B, A, device=dev)
    lstd_buf = torch.empty(T, B, A, device=dev)
    rew_buf = torch.empty(T, B, device=dev)
    term_buf = torch.empty(T, B, dtype=torch.bool, device=dev)
    step_buf = torch.empty(T, B, dtype=torch.long, device=dev)
    if start is not None and tuple(start.shape) != (B, D):
        raise ValueError(f"start states have shape {tuple(start.shape)}, expected ({B}, {D})")
    obs = env.reset(B) if start is None else start.to(dev)
    tstep = torch.zeros(B, dtype=torch.long, device=dev)
    members = env.draw_members(T)
    for t in range(T):
        mean, log_std = policy(obs)
        if deterministic:
            action = mean
        else:
            eps = torch.randn(mean.shape, generator=generator, device=generator.device).to(dev)
            action = mean + eps * log_std.exp()
        nxt, reward, term = env.step(obs, action, members[t])
        obs_buf[t], act_buf[t], next_buf[t] = obs, action, nxt
        mean_buf[t], lstd_buf[t], rew_buf[t], term_buf[t], step_buf[t] = mean, log_std, reward, term, tstep
        if t < T - 1 and bool(term.any()):
            obs = nxt.clone()
            obs[term] = env.reset(int(term.sum()))
            tstep = torch.where(term, torch.zeros_like(tstep), tstep + 1)
        else:
            obs, tstep = nxt, tstep + 1
    dones = term_buf.clone()
    dones[-1] = True
    return ImaginedBatch(obs_buf, act_buf, rew_buf, next_buf, term_buf, dones, step_buf, mean_buf, lstd_buf)
