"""Policy ids: short unique prefixes; bad and ambiguous ids get clear one-line errors."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from registry_helpers import ArtifactFactory

from bremen_robot.registry import Registry, RegistryError


def _fake_policy(reg: Registry, sha: str) -> None:
    """Insert a bare row with a chosen sha256 (a 4-hex collision would need ~300 real exports)."""
    conn = sqlite3.connect(reg.db_path)
    conn.execute(
        "INSERT INTO policies (sha256, state, kind, robot, task, created_at, registered_at, manifest_digest,"
        " manifest_json, report_json, lineage_json) VALUES (?, 'candidate', 'bremen', 'r', 't', 'x', 'x',"
        " '', '{}', '{}', '{}')",
        (sha,),
    )
    conn.commit()
    conn.close()


def test_prefixes_resolve(registry: Registry, artifact_factory: ArtifactFactory) -> None:
    rec = registry.register(artifact_factory())
    for ref in (rec.sha256, rec.id, rec.sha256[:4], rec.sha256[:7].upper(), f"  {rec.id} "):
        assert registry.get(ref).sha256 == rec.sha256


@pytest.mark.parametrize(
    ("ref", "match"),
    [
        ("", "empty policy id"),
        ("   ", "empty policy id"),
        ("xyz!", "not a sha256 prefix"),
        ("../etc", "not a sha256 prefix"),
        ("a" * 65, "not a sha256 prefix"),
        ("abc", "too short; type at least 4"),
        ("0000", "no policy with id '0000'"),
        ("random", "no random deployment"),
    ],
)
def test_bad_ids(registry: Registry, artifact_factory: ArtifactFactory, ref: str, match: str) -> None:
    rec = registry.register(artifact_factory())
    assert not rec.sha256.startswith("0000")
    with pytest.raises(RegistryError, match=match) as info:
        registry.get(ref)
    assert "\n" not in str(info.value)


def test_ambiguous_prefix_lists_the_matches(registry: Registry) -> None:
    a, b = "abcd1111" + "0" * 56, "abcd2222" + "0" * 56
    _fake_policy(registry, a)
    _fake_policy(registry, b)
    with pytest.raises(RegistryError, match="ambiguous") as info:
        registry.get("abcd")
    msg = str(info.value)
    assert a[:12] in msg and b[:12] in msg and "type more characters" in msg
    assert registry.resolve("abcd1") == a
    assert registry.resolve("ABCD2") == b
    for action in (lambda: registry.reject("abcd", "x"), lambda: registry.retire("abcd")):
        with pytest.raises(RegistryError, match="ambiguous"):
            action()


def test_unknown_id_names_no_secrets(registry: Registry, alice: tuple[Path, Path]) -> None:
    with pytest.raises(RegistryError) as info:
        registry.approve("feedbeef", "alice")
    assert "no policy with id 'feedbeef'" in str(info.value)
    assert str(alice[0]) not in str(info.value)
