"""The review's video shows the policy the operator is asked to approve: the stored files are
compared with the registry's record before torch parses them, as verify_for_deployment and
verify_for_shadow do. Another, self-consistent artifact copied over the store must give no
video (one line saying why), never a video of that other policy beside the record's verdict."""

from __future__ import annotations

import hashlib
import os
import shutil

import pytest
from registry_helpers import ArtifactFactory, record_torch_parses

from bremen_robot.registry import Registry, reviewing
from bremen_robot.registry.video import Video


def test_a_store_swapped_after_registration_gives_no_video_of_the_other_policy(
    registry: Registry, artifact_factory: ArtifactFactory, monkeypatch: pytest.MonkeyPatch
) -> None:

    rec = registry.register(artifact_factory())
    assert rec.artifact_dir is not None
    other = artifact_factory(seed=77)
    other_sha = hashlib.sha256((other / "policy.pt").read_bytes()).hexdigest()
    os.chmod(rec.artifact_dir, 0o755)
    for name in ("policy.pt", "manifest.json"):
        (rec.artifact_dir / name).unlink()
        shutil.copyfile(other / name, rec.artifact_dir / name)
    parsed = record_torch_parses(monkeypatch)
    rendered: list[object] = []

    def side_by_side(env_spec: str, left: object, right: object, seed: int = 0) -> Video:
        rendered.append(left)
        return Video(None, "rendered")

    monkeypatch.setattr(reviewing, "side_by_side", side_by_side)
    got = reviewing._video(rec, None, "sim:point/mujoco")
    assert other_sha not in parsed
    assert rendered == []
    assert got.reason == (
        f"no video: cannot load the policy (policy.pt and manifest.json in '{rec.artifact_dir}' changed "
        "after the registry check, before loading; refusing to run them (check who writes to that "
        "folder, then start again))"
    )


def test_an_intact_store_still_gives_its_video(
    registry: Registry, artifact_factory: ArtifactFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    rec = registry.register(artifact_factory())
    monkeypatch.setattr(reviewing, "side_by_side", lambda *a, **k: Video(None, "rendered"))
    assert reviewing._video(rec, None, "sim:point/mujoco").reason == "rendered"
