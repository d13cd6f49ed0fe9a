"""Training configuration: one pydantic model per concern (DESIGN.md §4).

Defaults are the paper's (matsuolab/BREMEN). YAML presets live in ``configs/train/``; a
``cpu`` preset shrinks sizes and counts and says how in ``description``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from bremen_robot.config.loading import load_yaml_model, resolve_preset

REPO_CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "train"
# the seeds torch's generators take; a larger one failed deep in training as an internal error
SEED_MIN, SEED_MAX = -(2**63), 2**64 - 1


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)  # inf or NaN is never a setting


def positive_widths(widths: list[int], example: str) -> list[int]:
    """``widths`` when every layer has a unit; a zero width leaves a network whose output is its
    last bias, whatever the input, so it is refused rather than trained."""
    if any(h < 1 for h in widths):
        raise ValueError(f"hidden widths must be positive integers, e.g. {example}")
    return widths


class EnsembleConfig(_Strict):
    """Dynamics-model ensemble and how it is fit."""

    members: int = Field(5, ge=1, le=64, description="number of ensemble members K")
    hidden: list[int] = Field([1024, 1024], min_length=1, description="hidden layer widths (ReLU)")
    lr: float = Field(1e-3, gt=0, description="Adam learning rate")
    weight_decay: float = Field(1e-4, ge=0, description="L2 penalty on weights added to the MSE loss")
    batch_size: int = Field(1000, ge=1, description="minibatch size per member")
    max_epochs: int = Field(200, ge=1, description="upper bound on epochs per fit")
    patience: int = Field(
        5, ge=1, description="stop when no member improved holdout MSE for this many epochs"
    )
    holdout_fraction: float = Field(
        0.15, gt=0, lt=1, description="share of episodes held out for early stopping"
    )
    min_improvement: float = Field(
        0.01, ge=0, description="relative holdout improvement that counts as better"
    )
    warm_start: bool = Field(
        True,
        description="in a campaign, re-fit the previous deployment's ensemble (the paper) instead of "
        "fitting a freshly initialized one on all data so far",
    )

    @field_validator("hidden")
    @classmethod
    def _positive(cls, v: list[int]) -> list[int]:
        return positive_widths(v, "[1024, 1024]")


class BCConfig(_Strict):
    """Behavior cloning of the data-collecting policy."""

    hidden: list[int] = Field([200, 200], min_length=1, description="policy hidden widths (ReLU)")
    lr: float = Field(5e-4, gt=0, description="Adam learning rate")
    batch_size: int = Field(256, ge=1, description="minibatch size")
    steps: int = Field(300_000, ge=1, description="gradient steps")
    data: Literal["latest", "all"] = Field(
        "latest", description="clone the latest deployment only, or all data"
    )

    @field_validator("hidden")
    @classmethod
    def _positive(cls, v: list[int]) -> list[int]:
        return positive_widths(v, "[200, 200]")


class TRPOConfig(_Strict):
    """TRPO in imagined rollouts, initialized from the BC policy."""

    iterations: int = Field(2000, ge=0, description="TRPO iterations per deployment (paper: 25 x 80)")
    steps_per_iteration: int = Field(50_000, ge=1, description="imagined steps per iteration (batch)")
    horizon: int = Field(
        250, ge=1, description="imagined rollout length; batch/horizon rollouts run in parallel"
    )
    max_kl: float = Field(
        0.01, gt=0, description="KL trust region per step (0.1 HalfCheetah, 0.05 Hopper/Walker2d/Ant)"
    )
    cg_iters: int = Field(10, ge=1, description="conjugate-gradient iterations")
    cg_damping: float = Field(0.1, ge=0, description="damping added to the Fisher-vector product")
    line_search_steps: int = Field(10, ge=1, description="backtracking line-search halvings")
    accept_ratio: float = Field(0.1, gt=0, description="actual/expected improvement needed to accept a step")
    gamma: float = Field(0.99, gt=0, le=1, description="discount")
    gae_lambda: float = Field(0.95, ge=0, le=1, description="GAE lambda (0.97 for Ant)")
    value: Literal["linear", "mlp"] = Field(
        "linear", description="baseline: linear features (published) or an MLP"
    )
    value_hidden: list[int] = Field([64, 64], description="MLP baseline widths")
    value_epochs: int = Field(5, ge=1, description="MLP baseline epochs per iteration")
    bc_kl_coef: float = Field(
        0.0, ge=0, description="explicit alpha * KL(pi || pi_BC) penalty (0 = implicit only)"
    )
    init_log_std: float | None = Field(
        None,
        gt=-5,
        lt=0,
        description="reset the policy's log-std to this before TRPO; None keeps BC's (paper). "
        "BC's MSE loss drives log-std to its floor -5, which makes KL-bounded steps tiny; "
        "short CPU runs reset it (a documented deviation)",
    )
    fvp_subsample: float = Field(
        1.0, gt=0, le=1, description="fraction of the batch used for Fisher-vector products"
    )

    @field_validator("value_hidden")
    @classmethod
    def _positive(cls, v: list[int]) -> list[int]:
        return positive_widths(v, "[64, 64]")

    @model_validator(mode="after")
    def _batch_covers_horizon(self) -> TRPOConfig:
        if self.steps_per_iteration < self.horizon:
            raise ValueError(
                f"steps_per_iteration ({self.steps_per_iteration}) must be >= horizon ({self.horizon}); "
                "raise the batch or shorten the horizon"
            )
        return self

    @property
    def n_rollouts(self) -> int:
        return self.steps_per_iteration // self.horizon


class ImaginationConfig(_Strict):
    """Where imagined rollouts start, and how imagined rewards count model uncertainty."""

    start_states: Literal["auto", "reset", "dataset"] = Field(
        "auto",
        description="reset: the task's reset distribution; dataset: logged states; auto: reset if known",
    )
    uncertainty_penalty: float = Field(
        0.0,
        ge=0,
        description="lambda of MOPO's penalized reward r - lambda * u(s, a), u = ensemble disagreement "
        "in normalized units; 0 = off (BREMEN). Costs one forward pass of every member per imagined step",
    )
    penalty_units: Literal["absolute", "behavior"] = Field(
        "absolute",
        description="absolute: the penalty is lambda * u; behavior: lambda * u / u_b, u_b the ensemble's "
        "mean disagreement on the behavior data (the data BC clones), so lambda counts multiples of the "
        "disagreement the deployed policy's own states show and keeps its weight as the models improve",
    )


class SelectionConfig(_Strict):
    """Candidate selection among BC and TRPO snapshots (issue 16; docs/algorithm.md, "Selection")."""

    enabled: bool = Field(
        False,
        description="keep BC and every snapshot_every-th TRPO policy, score each offline, and export the "
        "one `pick` chooses as the candidate; off = the final TRPO policy is the candidate (BREMEN)",
    )
    snapshot_every: int = Field(
        10, ge=1, description="TRPO iterations between snapshots; the last iteration is always one"
    )
    rule: Literal["min", "quantile"] = Field(
        "min",
        description="lower bound across ensemble members of each member's mean imagined return: the "
        "minimum, or the `quantile` quantile",
    )
    quantile: float = Field(0.2, gt=0, lt=1, description="the quantile used by rule: quantile")
    start_states: int = Field(
        64, ge=1, description="real start states (rows of the behavior data) every member rolls from"
    )
    horizon: int | None = Field(
        None, ge=1, description="imagined steps per scoring rollout; None = trpo.horizon"
    )
    margin: float = Field(
        0.0,
        ge=0,
        description="a snapshot beats the deployed policy when its score exceeds the deployed policy's "
        "by this fraction of the latter's magnitude",
    )
    pick: Literal["best", "earliest"] = Field(
        "best",
        description="which snapshot to propose among the eligible ones that beat the deployed policy "
        "offline (and survive the twin): best = the highest lower bound; earliest = the first in training "
        "order (BC, then TRPO's), the smallest step from the data that still promises an improvement. "
        "With no deployed policy to beat (deployment 1) both take the best (docs/algorithm.md, 'Candidate "
        "selection')",
    )
    max_action_shift: float | None = Field(
        None,
        gt=0,
        description="a snapshot is eligible only when its mean action moves from BC's by at most this "
        "many times the behavior data's own action spread around BC's mean (RMS over the data's states, "
        "per unit of each action's half range); beyond it the models judge actions the data never "
        "tried. None = no limit (docs/algorithm.md, 'Candidate selection')",
    )


class TrainConfig(_Strict):
    """Everything one deployment's offline training needs."""

    name: str = Field("custom", description="preset name")
    description: str = Field("", description="what this preset is for and how it differs from the paper")
    expected_time: str = Field("", description="measured or estimated wall time of one deployment's training")
    task: str | None = Field(None, description="task name; default: the dataset's task")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="auto = CUDA when present, else CPU")
    threads: int | None = Field(None, ge=1, description="torch intra-op threads (default: torch's choice)")
    seed: int = Field(0, ge=SEED_MIN, le=SEED_MAX, description="seed for every generator in the run")
    ensemble: EnsembleConfig = Field(default_factory=EnsembleConfig, description="dynamics ensemble")
    bc: BCConfig = Field(default_factory=BCConfig, description="behavior cloning")
    trpo: TRPOConfig = Field(default_factory=TRPOConfig, description="policy optimization")
    imagination: ImaginationConfig = Field(default_factory=ImaginationConfig, description="imagined rollouts")
    selection: SelectionConfig = Field(
        default_factory=SelectionConfig, description="candidate selection among training snapshots"
    )

    @model_validator(mode="after")
    def _snapshots_fit_trpo(self) -> TrainConfig:
        sel, iters = self.selection, self.trpo.iterations
        if sel.enabled and iters and sel.snapshot_every > iters:
            raise ValueError(
                f"selection.snapshot_every ({sel.snapshot_every}) exceeds trpo.iterations ({iters}); "
                f"set it to at most {iters} so TRPO yields snapshots between BC and its end"
            )
        return self


def preset_names() -> list[str]:
    return sorted(p.stem for p in REPO_CONFIGS.glob("*.yaml"))


def load_train_config(name_or_path: str | Path) -> TrainConfig:
    """A YAML path, or the name of a preset in ``configs/train/`` (e.g. ``halfcheetah-cpu``)."""
    return load_yaml_model(
        TrainConfig, resolve_preset(name_or_path, REPO_CONFIGS, "train", "train config file")
    )
