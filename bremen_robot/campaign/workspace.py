"""Campaign workspace layout and the files that record progress.

Every stage's output is written atomically and its presence means "done", so a campaign
killed at any point resumes with the same command. Nothing is deleted: a half-written stage
directory is renamed aside (``*.incomplete-N``) before the stage is redone.

::

    <ws>/campaign.json               name + config digest: the workspace belongs to one config
    <ws>/.bremen.lock                held while a campaign runs (see bremen_robot.workspace_lock)
    <ws>/registry.sqlite, artifacts/ the policy registry (bremen policies --workspace <ws>)
    <ws>/robot.yaml                  robot config the graph runs with; generated on every start and
                                     before each deployment (robot config + trusted_operators/ + demo
                                     key with --auto-approve); an edited copy is kept aside as
                                     robot.yaml.edited-N, never overwritten
    <ws>/trusted_operators/          <NAME>.pub: operators this campaign's robot trusts besides the
                                     robot config's (bremen trust add|remove|list; campaign/trust.py)
    <ws>/keys/                       demo operator key (--auto-approve, simulators only)
    <ws>/d<k>/collect.yaml           collect config of deployment k (campaign's collect file + seed)
    <ws>/d<k>/bag/                   rosbag2 log of deployment k (collect.json when complete)
    <ws>/d<k>/data.npz               deployment k as a dataset
    <ws>/d<k>/train/                 candidate trained on d1..dk (manifest.json when complete)
    <ws>/d<k>/train.rejected-N/      a training whose candidate an operator turned down, kept
    <ws>/rejections.json             each such move: policy, who, why, where the training went
    <ws>/d<k>/eval.json              evaluation of that candidate
    <ws>/summary.json, summary.png   the campaign table and plot
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bremen_robot.errors import BremenError
from bremen_robot.fsutil import atomic_write_bytes

if TYPE_CHECKING:
    from bremen_robot.campaign.config import CampaignConfig


def write_json_atomic(path: Path, data: Any) -> None:
    atomic_write_bytes(path, json.dumps(data, indent=1).encode())


def read_json(path: Path) -> Any:
    return json.loads(path.read_text()) if path.is_file() else None


def move_aside(path: Path, tag: str = "incomplete") -> Path | None:
    """Rename an incomplete stage output to ``<name>.<tag>-N``; never deletes."""
    if not path.exists():
        return None
    target = aside_name(path, tag)
    path.rename(target)
    return target


def aside_name(path: Path, tag: str) -> Path:
    """``<name>.<tag>-N`` for the first N not taken: where :func:`move_aside` renames ``path`` to."""
    n = 1
    while (target := path.with_name(f"{path.name}.{tag}-{n}")).exists():
        n += 1
    return target


class Workspace:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def lock(self) -> AbstractContextManager[Path]:
        """One campaign per workspace: a second one is refused at once, naming the holder."""
        from bremen_robot.workspace_lock import folder_lock

        if self.root.exists() and not self.root.is_dir():
            raise BremenError(f"--workspace {self.root} is a file, not a folder; pass a folder path")
        return folder_lock(self.root, "workspace")

    def deployment_dir(self, k: int) -> Path:
        return self.root / f"d{k}"

    def bag(self, k: int) -> Path:
        return self.deployment_dir(k) / "bag"

    def collect_marker(self, k: int) -> Path:
        return self.deployment_dir(k) / "collect.json"

    def data(self, k: int) -> Path:
        return self.deployment_dir(k) / "data.npz"

    def train_dir(self, k: int) -> Path:
        return self.deployment_dir(k) / "train"

    def eval_file(self, k: int) -> Path:
        return self.deployment_dir(k) / "eval.json"

    def claimed_digest(self) -> str | None:
        """The config digest this workspace is bound to (None: not claimed yet)."""
        meta = read_json(self.root / "campaign.json")
        return None if meta is None else str(meta.get("config_digest"))

    def claim(self, name: str, digest: str, legacy_digests: Sequence[str] = ()) -> None:
        """Bind the workspace to one campaign config, or refuse if it belongs to another.

        ``legacy_digests``: the same config's identity as older versions computed it, so
        workspaces created before a change of :meth:`CampaignConfig.digest` still resume.
        """
        meta_path = self.root / "campaign.json"
        meta = read_json(meta_path)
        if meta is None:
            self.root.mkdir(parents=True, exist_ok=True)
            write_json_atomic(meta_path, {"name": name, "config_digest": digest})
            return
        if meta.get("config_digest") not in (digest, *legacy_digests):
            raise BremenError(
                f"workspace '{self.root}' belongs to campaign '{meta.get('name')}' with a different config "
                f"(digest {str(meta.get('config_digest'))[:12]}); "
                "use a new --workspace or the original config"
            )


def refuse_other_seed_layout(ws: Workspace, cfg: CampaignConfig) -> None:
    """A workspace collected with the sliding seeds, resumed by its config without
    ``seed_layout`` (spaced since 2026-12-07): refused in one line that names the setting,
    not as "another campaign", and never continued with other seeds."""
    if cfg.seed_layout == "sliding":
        return
    sliding = cfg.model_copy(update={"seed_layout": "sliding"})
    if ws.claimed_digest() in sliding.identities():
        raise BremenError(
            f"workspace '{ws.root}' was collected with the sliding seed layout (campaigns "
            "made before 2026-12-07); add 'seed_layout: sliding' to the campaign config to resume "
            "it, or start a new --workspace"
        )
