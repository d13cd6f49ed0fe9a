"""Figures of one trained policy for the operator's review (``report.json``; docs/review.md).

How far the policy moved from BC (KL, and the mean-action shift in exploration-noise units) and
how it fares in imagination (its imagined return, and the ensemble's disagreement on the states
it visits there: a policy that exploits the models goes where they disagree). The trainer writes
them for the policy it exports and, with selection, for every snapshot the campaign could still
propose instead, so a review always describes the policy it reviews.

Shapes: T imagined steps, B rollouts, D observation, A action.
"""

from __future__ import annotations

from typing import Any

import torch

from bremen_robot.imagination.model_env import ModelEnv, imagine
from bremen_robot.models.ensemble import DynamicsEnsemble
from bremen_robot.policy.gaussian import GaussianPolicy, gaussian_kl
from bremen_robot.rl.behavior import BehaviorAnchor, evenly_spaced

KL_ROWS = 8192  # dataset states the KL to BC is averaged over
# the report's top-level keys that describe the exported policy (disagreement's is nested)
POLICY_KEYS = ("kl_to_bc", "behavior_shift", "imagined_return_final")


@torch.no_grad()
def kl_to_behavior(policy: GaussianPolicy, bc: GaussianPolicy, obs: torch.Tensor) -> float:
    """Mean KL(pi || pi_BC) over dataset states ``(N, D)``: how far TRPO moved from the behavior policy."""
    m, s = policy(obs)
    mb, sb = bc(obs)
    return float(gaussian_kl(m, s, mb, sb).mean())


def spread_rows(n: int, rows: int, device: torch.device) -> torch.Tensor:
    """Indices of at most ``rows`` evenly spaced rows of ``n`` (merged data is in deployment order:
    the first rows are deployment 1's random-policy states, not the data as a whole)."""
    return torch.as_tensor(evenly_spaced(n, rows), device=device)


def policy_figures(
    policy: GaussianPolicy,
    bc: GaussianPolicy,
    anchor: BehaviorAnchor,
    env: ModelEnv,
    ensemble: DynamicsEnsemble,
    obs: torch.Tensor,
    rollouts: int,
    horizon: int,
    generator: torch.Generator,
) -> dict[str, float]:
    """``policy``'s review figures: KL to BC on dataset states ``obs`` ``(N, D)``, behavior shift,
    and the mean return and ensemble disagreement of ``rollouts`` imagined rollouts of ``horizon``
    steps (drawn with ``generator``)."""
    final = imagine(env, policy, rollouts, horizon, generator)
    T, B, D = final.obs.shape
    with torch.no_grad():
        # (T, B, D) -> (T*B, D): disagreement on the policy's own imagined states
        dis = ensemble.disagreement(final.obs.reshape(T * B, D), final.actions.reshape(T * B, -1))
    return {
        "kl_to_bc": kl_to_behavior(policy, bc, obs[spread_rows(len(obs), KL_ROWS, obs.device)]),
        "behavior_shift": anchor.shift(policy),
        "imagined_return_final": float(final.episode_returns().mean()),
        "policy_imagined_disagreement": float(dis.mean()),
    }


def with_figures_of(report: dict[str, Any], snapshot: str) -> dict[str, Any]:
    """``report`` describing ``snapshot`` instead of the trainer's choice (a new dict).

    The twin may veto the trainer's choice, and the campaign then proposes another snapshot: its
    own figures (the selection row's ``figures``) replace the exported policy's. A report from
    before snapshots carried figures loses the figures of the other policy rather than keep them.
    """
    sel = report.get("selection") or {}
    if snapshot == sel.get("chosen"):
        return report
    rows = [row for row in sel.get("snapshots", []) if row.get("name") == snapshot]
    if not rows:
        raise ValueError(f"snapshot '{snapshot}' is not in the training report's selection table")
    figures = rows[0].get("figures")
    out = dict(report)
    dis = dict(out.get("disagreement") or {})
    if figures is None:
        for key in POLICY_KEYS:
            out.pop(key, None)
        dis.pop("policy_imagined", None)
    else:
        out |= {key: figures[key] for key in POLICY_KEYS}
        dis["policy_imagined"] = figures["policy_imagined_disagreement"]
    out["disagreement"] = dis
    out["figures_of"] = snapshot
    return out
