import json

import numpy as np
import pytest
import torch

from bremen_robot.errors import ArtifactError
from bremen_robot.policy.artifact import export_policy, load_artifact, manifest_digest
from bremen_robot.policy.gaussian import GaussianPolicy


@pytest.fixture
def artifact(tmp_path):
    torch.manual_seed(0)
    pol = GaussianPolicy(3, [-2.0, 0.0], [2.0, 1.0], (16, 16))
    pol.set_obs_normalizer(np.array([1.0, -1.0, 0.5]), np.array([2.0, 0.5, 1.0]))
    with torch.no_grad():
        for p in pol.parameters():
            p.add_(0.3 * torch.randn_like(p))  # make the mean non-trivial
    m = export_policy(
        pol,
        tmp_path / "a",
        robot="r",
        task="t",
        observation_names=["a", "b", "c"],
        action_names=["j1", "j2"],
        control_rate_hz=50.0,
    )
    return pol, tmp_path / "a", m


def test_export_parity_with_python_policy(artifact):
    pol, path, manifest = artifact
    frozen = load_artifact(path)
    obs = np.random.default_rng(0).normal(size=(64, 3)).astype(np.float32) * 3
    with torch.no_grad():
        expected = pol(torch.as_tensor(obs))[0].numpy()
    np.testing.assert_allclose(frozen.act(obs), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(frozen.act(obs[0]), expected[0], rtol=1e-5, atol=1e-6)
    assert (frozen.act(obs)[:, 1] >= 0).all() and (
        frozen.act(obs)[:, 1] <= 1
    ).all()  # scaling inside the graph
    assert manifest.action_low == [-2.0, 0.0] and manifest.joint_order == ["j1", "j2"]
    assert len(manifest_digest(manifest)) == 64


def test_tampered_or_broken_artifacts_are_refused(artifact):
    _, path, _ = artifact
    data = bytearray((path / "policy.pt").read_bytes())
    data[-30] ^= 0xFF
    (path / "policy.pt").write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="does not match the manifest"):
        load_artifact(path)
    (path / "manifest.json").write_text(json.dumps({"robot": "r"}))
    with pytest.raises(ArtifactError, match="invalid manifest"):
        load_artifact(path)
    with pytest.raises(ArtifactError, match="no policy artifact"):
        load_artifact(path / "missing")


BAD_MANIFESTS = [
    # (change to the exported manifest.json's text, what the one line must say after the file name)
    (lambda m: {**m, "action_low": [-2.0]}, "action_low: holds 1 for 2 action_names; one per action"),
    (lambda m: {**m, "joint_order": ["j1"]}, "joint_order: holds 1 for 2 action_names; one per action"),
    (
        lambda m: {**m, "action_high": [2.0, 0.0]},
        "action_high: entry 1 (action 'j2') is 0, not above action_low's 0; each action needs low < high",
    ),
    (lambda m: {**m, "action_low": [float("nan"), 0.0]}, "action_low: entry 0 is nan; bounds are finite"),
    (lambda m: {**m, "action_high": [float("inf"), 1.0]}, "action_high: entry 0 is inf; bounds are finite"),
    (lambda m: {**m, "control_rate_hz": float("inf")}, "control_rate_hz: Input should be a finite number"),
    (lambda m: {**m, "policy_sha256": "ABC"}, "policy_sha256: 'ABC' is not a sha256 (64 lowercase hex"),
    (lambda m: {**m, "policy_sha256": "random"}, "policy_sha256: 'random' names the random policy"),
    (lambda m: {**m, "policy_sha256": "a\nb"}, "policy_sha256: 'a\\nb' is not a sha256"),
    (lambda m: {**m, "bad\nkey": 1}, "invalid manifest: bad key: unknown field"),
    (lambda m: {k: v for k, v in m.items() if k != "task"}, "manifest: task: required field is missing"),
    (lambda m: "{" + json.dumps(m)[1:-1], "not valid JSON (line 1 column"),
    (lambda m: [m], "not a JSON object of manifest fields"),
]


@pytest.mark.parametrize("change,says", BAD_MANIFESTS)
def test_a_bad_manifest_is_refused_at_load_in_one_line_naming_the_field(artifact, change, says):
    """The runner clips the policy's actions to the manifest's bounds before the shield: a NaN,
    an inverted or a missing bound is refused when the artifact loads, and the line names it
    (it used to say only '1 validation error for PolicyManifest', and accepted NaN bounds)."""
    _, path, _ = artifact
    changed = change(json.loads((path / "manifest.json").read_text()))
    (path / "manifest.json").write_text(changed if isinstance(changed, str) else json.dumps(changed))
    with pytest.raises(ArtifactError) as err:
        load_artifact(path)
    line = str(err.value)
    assert says in line and "\n" not in line
    assert line.startswith(f"{path / 'manifest.json'}: ")


def test_wrong_observation_size_is_one_line(artifact):
    _, path, _ = artifact
    with pytest.raises(ArtifactError, match="expects 3"):
        load_artifact(path).act(np.zeros(5))


def test_a_policy_torch_cannot_load_names_both_torch_versions(artifact, monkeypatch):
    """On a robot PC or cluster node with another torch, the TorchScript load fails deep inside
    torch: the line says which version wrote the policy and which one is here."""
    _, path, _ = artifact

    def refuse(*args, **kwargs):
        raise RuntimeError("Unknown builtin op: aten::something_new")

    monkeypatch.setattr(torch.jit, "load", refuse)
    with pytest.raises(ArtifactError, match="cannot load TorchScript \\(RuntimeError\\); re-export it$"):
        load_artifact(path)
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["torch_version"] = "9.9.0"
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError) as err:
        load_artifact(path)
    assert (
        f"written by torch 9.9.0 and this machine has torch {torch.__version__}: install torch 9.9.0"
        in str(err.value)
    )


def test_the_manifest_digest_is_the_canonical_json_of_manifest_json_and_survives_a_later_field(artifact):
    """What every registry row and signed approval holds: sha256 of manifest.json's object with
    sorted keys and no spaces, worked out here from the file itself. A field added to the model
    later (simulated by a subclass) with a default must leave the digest of a manifest.json
    written before it unchanged, or every registered policy would be refused."""
    import hashlib

    from bremen_robot.policy.manifest import PolicyManifest, load_manifest

    _, path, exported = artifact
    raw = json.loads((path / "manifest.json").read_text())
    canonical = json.dumps(raw, sort_keys=True, separators=(",", ":")).encode()
    assert manifest_digest(load_manifest(path)) == hashlib.sha256(canonical).hexdigest()
    assert manifest_digest(exported) == manifest_digest(load_manifest(path))

    class LaterManifest(PolicyManifest):
        safety_notes: str = "a field with a default, added after the file was written"

    assert manifest_digest(LaterManifest.model_validate(raw)) == manifest_digest(load_manifest(path))
    written_later = LaterManifest.model_validate({**raw, "safety_notes": "x"})  # a file that has it
    assert manifest_digest(written_later) != manifest_digest(load_manifest(path))
