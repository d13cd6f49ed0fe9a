"""Campaign configuration (``configs/campaigns/*.yaml``). Relative paths resolve against the file."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from bremen_robot.campaign.seeds import MAX_FLEET, SeedLayout
from bremen_robot.config.loading import load_yaml_model
from bremen_robot.config.train import load_train_config
from bremen_robot.errors import ConfigError
from bremen_robot.robot_config import joint_order_problem, load_robot_config
from bremen_robot.tasks import get_task

REPO_CAMPAIGNS = Path(__file__).resolve().parents[2] / "configs" / "campaigns"
REPO_TRAIN = Path(__file__).resolve().parents[2] / "configs" / "train"


IDENTITY_VERSION = 3  # see CampaignConfig.digest
PROSE_FIELDS = ("description", "expected_time")  # words about a config, not settings


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)  # inf or NaN is never a setting


class EvaluationConfig(_Strict):
    """How each candidate is evaluated before the operator decides."""

    episodes: int = Field(5, ge=1, description="evaluation episodes per policy (mean action)")
    env: str | None = Field(None, description="env spec; default sim:<robot sim_model>/mujoco")
    sim2real: bool = Field(False, description="also run the sim2real check (other engine, randomization)")


class SelectionPolicy(_Strict):
    """What the campaign does with the trainer's candidate selection (the train preset's
    ``selection``; docs/algorithm.md, "Selection"). Without it, the trainer's candidate is proposed."""

    when_none_beats: Literal["keep_deployed", "propose_best_with_warning"] = Field(
        "keep_deployed",
        description="when no snapshot beats the deployed policy on the evidence: keep collecting with "
        "the deployed policy (no new deployment is counted), or propose the best snapshot with a "
        "warning for the operator",
    )
    twin: bool = Field(
        False,
        description="also run the snapshots that beat the deployed policy offline, and the deployed "
        "policy, in the simulator twin (the engine that did NOT collect the data, randomized)",
    )
    data_engine: Literal["mujoco", "pybullet", "none"] | None = Field(
        None,
        description="engine that collected the data (none: real hardware); default: the collect "
        "config's `sim`",
    )
    twin_engine: Literal["mujoco", "pybullet"] | None = Field(
        None, description="the twin's engine; default: the other one than data_engine (never the same)"
    )
    twin_episodes: int = Field(3, ge=1, description="twin episodes per policy (mean action)")
    twin_randomization: Path | None = Field(
        None, description="domain randomization YAML (configs/sim/); default: randomization-default"
    )
    twin_tolerance: float = Field(
        0.1,
        ge=0,
        lt=1,
        description="a snapshot is vetoed when its twin return is more than this fraction of "
        "max(|deployed twin return|, 1) below the deployed policy's",
    )
    twin_veto_warning: int = Field(
        2,
        ge=1,
        description="warn the operator when the twin has vetoed every snapshot it ran (those that beat "
        "the deployed policy offline within the action-shift limit) at this many deployments in a row "
        "(each time the campaign kept collecting with the deployed policy): the twin may not rank "
        "policies as the robot does",
    )


class ShadowSetting(_Strict):
    """A shadow run of each new candidate before its approval is asked (docs/ros.md "Shadow mode")."""

    enabled: bool = Field(
        False,
        description="run each new candidate in shadow beside the deployed policy before asking for its "
        "approval, and record the summary (bremen review shows it); off keeps campaigns as they were",
    )
    steps: int = Field(1000, ge=1, description="control steps of the shadow run (the deployed policy drives)")


CAMPAIGN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
"""What a campaign name may be: it names folders on robot nodes."""


class CampaignConfig(_Strict):
    """A campaign of a few deployments on one robot."""

    name: str = Field(description="campaign name")
    description: str = Field("", description="what this campaign is for and how it differs from the paper")
    expected_time: str = Field("", description="measured or estimated wall time")
    robot: Path = Field(description="robot config YAML (configs/robots/...)")
    collect: Path = Field(description="collect-graph config YAML (configs/collect/...)")
    train: str = Field(description="training preset name (configs/train/) or YAML path")
    deployments: int = Field(ge=1, le=50, description="number of deployments K (the first is random)")
    steps_per_deployment: int = Field(ge=1, description="transitions collected per deployment")
    exploration_sigma: float = Field(
        0.1, ge=0, description="Gaussian noise added to the approved policy's mean"
    )
    seed: int = Field(
        0,
        ge=0,
        le=1_000_000,
        description="campaign seed: every collection, twin check, shadow run and evaluation derives "
        "its reset seeds from it (seed_layout)",
    )
    seed_layout: SeedLayout = Field(
        "spaced",
        description="spaced: each deployment's collection, each twin check and the evaluation reset "
        "from their own block of seeds, never another's; sliding: seed * 1000 + deployment + "
        "episode, the layout before 2026-12-07, whose deployments share start states: only to "
        "resume a workspace made with it (bremen_robot/campaign/seeds.py)",
    )
    approval_poll_seconds: float = Field(2.0, gt=0, description="how often to check for an approval")
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig, description="candidate evaluation")
    selection: SelectionPolicy = Field(
        default_factory=SelectionPolicy, description="what to propose from the trainer's snapshot selection"
    )
    shadow: ShadowSetting = Field(
        default_factory=ShadowSetting, description="shadow run of each candidate before its approval"
    )
    fleet: list[str] = Field(
        default_factory=list,
        description="robot node names (bremen robot join --name) of the robot kind above that collect "
        "each deployment together, steps_per_deployment split among them; needs --cluster (docs/cluster.md)",
    )
    fleet_on_robot_loss: Literal["finish_with_others", "wait"] = Field(
        "finish_with_others",
        description="when a fleet robot fails mid-collection: go on with the others' samples, or stop "
        "so that re-running the same command collects that robot's share (finished shares are kept)",
    )

    @field_validator("name")
    @classmethod
    def _plain_name(cls, v: str) -> str:
        # a robot node keeps the campaign's files in a folder of this name (cluster/node.py)
        if not CAMPAIGN_NAME.fullmatch(v):
            raise ValueError(
                f"'{v}' is not a plain name; use letters, digits, '.', '_' and '-' (at most 64, "
                "starting with a letter or digit)"
            )
        return v

    @field_validator("fleet")
    @classmethod
    def _unique_fleet(cls, v: list[str]) -> list[str]:
        dup = sorted({r for r in v if v.count(r) > 1})
        if dup:
            raise ValueError(f"robot '{dup[0]}' appears twice; name each robot node once")
        if len(v) > MAX_FLEET:  # each robot's share resets from its own block (campaign/seeds.py)
            raise ValueError(f"a fleet has at most {MAX_FLEET} robots (got {len(v)}); split the campaign")
        return v

    @model_validator(mode="after")
    def _paths_exist(self) -> CampaignConfig:
        for field in ("robot", "collect"):
            path = getattr(self, field)
            if not Path(path).is_file():
                raise ValueError(
                    f"{field} file '{path}' not found; fix the path (relative to the campaign file)"
                )
        return self

    def digest(self, *, version: int = IDENTITY_VERSION) -> str:
        """Identity of the campaign: a workspace belongs to exactly one config.

        Neither the robot config's ``trusted_operator_keys`` (who may approve is not what the
        campaign collects: adding an operator mid-campaign must not orphan the workspace) nor,
        since version 3, prose (``description``, ``expected_time``) and YAML comments of the
        campaign and the files it names are part of it: rewording a description must not orphan
        a workspace either. ``version`` gives the identity as earlier versions computed it (2:
        prose and the preset's and collect file's bytes included; 1: the robot file's bytes too),
        so workspaces made before still resume (:meth:`identities`).
        """
        h = hashlib.sha256(json.dumps(self.identity_fields(version=version), sort_keys=True).encode())
        # the files it names count too: an edited preset or robot config is another campaign
        train = Path(self.train) if Path(self.train).is_file() else REPO_TRAIN / f"{self.train}.yaml"
        for path in (self.robot, self.collect, train):
            if version >= 3:
                h.update(_file_identity(Path(path), robot=path == self.robot))
            elif version == 2 and path == self.robot:
                h.update(_robot_identity(Path(path)))
            else:
                h.update(Path(path).read_bytes() if Path(path).is_file() else b"-")
        return h.hexdigest()

    def identity_fields(self, *, version: int = IDENTITY_VERSION) -> dict[str, Any]:
        """The settings :meth:`digest` hashes (before the files the config names). A field added
        here changes the identity of every workspace made before it, so that none of them
        resumes: only what changes the data a campaign collects or what it trains belongs here
        (tests/campaign/test_campaign_identity.py lists them)."""
        # a shadow run collects nothing the trainer uses, and how often to poll or when to warn
        # the operator changes nothing the campaign decides: not part of what the campaign is
        exclude: dict[str, Any] = {
            "approval_poll_seconds": True,
            "shadow": True,
            "selection": {"twin_veto_warning": True},
            **({f: True for f in PROSE_FIELDS} if version >= 3 else {}),
        }
        dump = self.model_dump(mode="json", exclude=exclude)
        for field in _CLUSTER_FIELDS:  # absent when unset: a workspace from before issue 17 resumes
            if dump[field] == CampaignConfig.model_fields[field].get_default(call_default_factory=True):
                dump.pop(field)
        if dump["seed_layout"] == "sliding":  # every workspace made before the field was sliding
            dump.pop("seed_layout")
        return dump

    def identities(self) -> list[str]:
        """This config's identity as every version computes it, the current one first."""
        return [self.digest(version=v) for v in range(IDENTITY_VERSION, 0, -1)]


_CLUSTER_FIELDS = ("fleet", "fleet_on_robot_loss")


def _file_identity(path: Path, robot: bool) -> bytes:
    """A named config file's settings: parsed, without prose (and, for the robot, without its
    trusted keys); ``-`` for a missing file."""
    from bremen_robot.config.loading import read_yaml

    if not path.is_file():
        return b"-"
    data = read_yaml(path)
    for key in (*PROSE_FIELDS, *(("trusted_operator_keys",) if robot else ())):
        data.pop(key, None)
    return (b"robot:" if robot else b"file:") + json.dumps(data, sort_keys=True, default=str).encode()


def _robot_identity(path: Path) -> bytes:
    from bremen_robot.config.loading import read_yaml

    data = read_yaml(path)
    data.pop("trusted_operator_keys", None)
    return b"robot:" + json.dumps(data, sort_keys=True, default=str).encode()


def load_campaign_config(name_or_path: str | Path) -> CampaignConfig:
    """A YAML path or a preset name in ``configs/campaigns/``; checks robot, task and preset."""
    from bremen_robot.config.loading import read_yaml, resolve_preset, validate_model

    path = resolve_preset(name_or_path, REPO_CAMPAIGNS, "campaign")
    data = read_yaml(path)
    base = path.resolve().parent
    for field in ("robot", "collect"):
        if isinstance(data.get(field), str) and not Path(data[field]).is_absolute():
            data[field] = str((base / data[field]).resolve())
    if isinstance(data.get("train"), str) and data["train"].endswith((".yaml", ".yml")):
        data["train"] = str((base / data["train"]).resolve())
    sel = data.get("selection")
    if isinstance(sel, dict) and isinstance(sel.get("twin_randomization"), str):
        sel["twin_randomization"] = str((base / sel["twin_randomization"]).resolve())
    cfg = validate_model(CampaignConfig, data, str(path))
    robot = load_robot_config(cfg.robot)
    from bremen_robot.errors import BremenError

    try:
        train = load_train_config(cfg.train)
    except BremenError as exc:
        raise ConfigError(f"{path}: train: {exc}") from None
    task = get_task(train.task or robot.task)
    if task.name != get_task(robot.task).name:
        raise ConfigError(f"{path}: train preset task '{task.name}' differs from robot task '{robot.task}'")
    why = joint_order_problem(robot, task.name)
    if why:
        raise ConfigError(f"{path}: robot config {cfg.robot}: {why}")
    if cfg.evaluation.env is not None:  # else first used after deployment 1's training
        from bremen_robot.data.real_rollout import check_env_spec

        try:
            check_env_spec(cfg.evaluation.env, task.name)
        except BremenError as exc:
            raise ConfigError(f"{path}: evaluation.env: {exc}") from None
    if cfg.selection.twin:
        from bremen_robot.selection import twin_engine

        if not train.selection.enabled:
            raise ConfigError(
                f"{path}: selection.twin: the train preset '{train.name}' has no snapshots to check; "
                "set selection.enabled: true in the preset or turn the twin off"
            )
        try:
            twin_engine(data_engine(cfg), cfg.selection.twin_engine)
        except BremenError as exc:
            raise ConfigError(f"{path}: selection.twin_engine: {exc}") from None
        if cfg.selection.twin_randomization is not None:  # else first read after deployment 1's training
            from sim.randomization import load_randomization

            try:
                load_randomization(cfg.selection.twin_randomization)
            except BremenError as exc:
                raise ConfigError(f"{path}: selection.twin_randomization: {exc}") from None
    return cfg


def data_engine(cfg: CampaignConfig) -> str:
    """The engine that collects this campaign's data: ``selection.data_engine``, else the collect
    config's ``sim`` (``none`` is real hardware)."""
    if cfg.selection.data_engine is not None:
        return cfg.selection.data_engine
    from bremen_robot.config.loading import read_yaml

    engine = read_yaml(cfg.collect).get("sim")
    if not isinstance(engine, str):
        raise ConfigError(
            f"{cfg.collect}: no `sim` entry says which engine collects the data; "
            "set selection.data_engine in the campaign"
        )
    return engine


__all__ = ["CampaignConfig", "EvaluationConfig", "load_campaign_config", "load_yaml_model"]
