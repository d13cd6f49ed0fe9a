"""The registry commands through ``bremen_robot.cli.main``: exit codes and one-line errors."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from registry_helpers import SYNTHETIC_REPORT, ArtifactFactory

from bremen_robot.cli import main
from bremen_robot.registry import Registry


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(err: str, needle: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], err


def test_operator_show_of_an_unknown_name_names_operator_init(
    capsys: pytest.CaptureFixture[str], operator_dir: Path
) -> None:
    """No robot config is involved in 'operator show': the fix is to create the pair or pass --dir."""
    code, _, err = run(capsys, "operator", "show", "bob")
    assert code == 2
    one_line_error(err, f"no public key for operator bob at '{operator_dir / 'bob.pub'}'")
    one_line_error(err, "'bremen operator init bob'")
    assert "trusted_operator_keys" not in err and "robot config" not in err


def test_cli_flow(
    capsys: pytest.CaptureFixture[str], workspace: Path, operator_dir: Path, artifact_factory: ArtifactFactory
) -> None:
    code, out, _ = run(capsys, "operator", "init", "alice")
    assert code == 0 and "trusted_operator_keys" in out
    assert stat.S_IMODE((operator_dir / "alice.key").stat().st_mode) == 0o600
    code, _, err = run(capsys, "operator", "init", "alice")
    assert code == 2
    one_line_error(err, "already exists")
    code, out, _ = run(capsys, "operator", "show", "alice")
    assert code == 0 and "alice.pub" in out

    code, _, err = run(capsys, "policies")  # nothing registered yet: no database is created
    assert code == 2
    one_line_error(err, "no registry database")
    assert not workspace.exists()

    export = artifact_factory(report=SYNTHETIC_REPORT)
    code, out, _ = run(capsys, "policies", "register", str(export))
    assert code == 0 and out.startswith("registered: policy ")
    pid = out.split()[2]
    code, out, _ = run(capsys, "policies", "register", str(export))
    assert code == 0 and out.startswith("already registered")

    code, out, _ = run(capsys, "review", pid[:5], "--out", str(workspace / "r"))
    assert code == 0 and "holdout error per ensemble member: #0 0.35" in out
    pngs = sorted((workspace / "r").glob("*.png"))
    assert pngs and all(p.read_bytes()[:4] == b"\x89PNG" for p in pngs)

    code, out, _ = run(capsys, "approve", pid, "--operator", "alice", "--note", "checked curves")
    assert code == 0 and f"approved policy {pid} as alice" in out
    code, _, err = run(capsys, "approve", pid, "--operator", "alice")
    assert code == 2
    one_line_error(err, "already approved by alice")

    code, out, _ = run(capsys, "policies")
    assert code == 0
    assert out.splitlines()[0].endswith("0 deployment(s), 1 policies")
    row = next(line for line in out.splitlines() if line.startswith(pid))
    assert "approved" in row and "alice" in row and "data=00000000" in row

    with Registry.open(workspace) as reg:
        assert reg.mark_deployed(pid) == 1
    code, out, _ = run(capsys, "policies", "--workspace", str(workspace))
    assert "1 deployment(s)" in out.splitlines()[0]

    code, _, err = run(capsys, "reject", pid, "--reason", "late")
    assert code == 2
    one_line_error(err, "retire it instead")
    code, out, _ = run(capsys, "retire", pid, "--note", "superseded")
    assert code == 0 and "retired" in out
    code, out, _ = run(capsys, "policies", "audit", pid)
    assert code == 0
    assert [line.split()[3:6] for line in out.splitlines()] == [
        ["-", "->", "candidate"],
        ["candidate", "->", "approved"],
        ["approved", "->", "deployed"],
        ["deployed", "->", "retired"],
    ]


def test_cli_reject_and_bad_ids(
    capsys: pytest.CaptureFixture[str], workspace: Path, artifact_factory: ArtifactFactory
) -> None:
    with Registry.open(workspace) as reg:
        pid = reg.register(artifact_factory()).id
    code, out, _ = run(capsys, "reject", pid, "--reason", "KL too large", "--operator", "bob")
    assert code == 0 and "rejected" in out
    for argv, needle in (
        (["review", "zz"], "not a sha256 prefix"),
        (["review", "abc"], "too short"),
        (["approve", "ffff0000", "--operator", "alice"], "no policy with id 'ffff0000'"),
        (["retire", pid], "was rejected by bob"),
        (["approve", pid, "--operator", "bad name"], "invalid operator name"),
        (["policies", "--db", "mysql://x/y"], "only sqlite:// is supported"),
        (["policies", "register", str(workspace / "missing")], "no policy artifact"),
    ):
        code, _, err = run(capsys, *argv)
        assert code == 2, argv
        one_line_error(err, needle)


def test_audit_shows_a_typed_note_with_its_escapes_spelled_out(
    capsys: pytest.CaptureFixture[str], workspace: Path, artifact_factory: ArtifactFactory
) -> None:
    """A reason with a terminal escape (here: set the window title) must not reach the terminal."""
    with Registry.open(workspace) as reg:
        pid = reg.register(artifact_factory()).id
    assert run(capsys, "reject", pid, "--reason", "bad\x1b]0;approved\x07 run", "--operator", "bob")[0] == 0
    code, out, _ = run(capsys, "policies", "audit", pid)
    assert code == 0
    assert out.splitlines()[-1].endswith("bob  bad\\x1b]0;approved\\x07 run")
    assert "\x1b" not in out and "\x07" not in out


def test_cli_argument_errors(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["reject", "abcd"], ["approve", "abcd"], ["operator"]):
        with pytest.raises(SystemExit) as info:
            main(argv)
        assert info.value.code == 2
        capsys.readouterr()


@pytest.mark.parametrize(
    "argv",
    [
        ["policies"],
        ["policies", "audit"],
        ["policies", "register", "export"],
        ["review", "abcdef12"],
        ["approve", "abcdef12", "--operator", "alice"],
        ["reject", "abcdef12", "--reason", "r"],
        ["retire", "abcdef12"],
        ["registry", "check"],
        ["registry", "backup", "--out", "b.sqlite"],
        ["trust", "list"],
    ],
)
def test_a_workspace_that_is_a_file_is_named_as_one(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, argv: list[str]
) -> None:
    """Was "no registry database at 'README.md/registry.sqlite'; register a policy first ..."."""
    ws = tmp_path / "README.md"
    ws.write_text("# not a workspace\n")
    code, _, err = run(capsys, *argv, "--workspace", str(ws))
    assert code == 2
    assert (
        err.strip()
        == f"error: workspace '{ws}' is a file, not a folder; pass the campaign's workspace folder"
    )
    assert ws.read_text() == "# not a workspace\n"


def test_hints_name_the_workspace_the_user_passed(
    capsys: pytest.CaptureFixture[str], workspace: Path, tmp_path: Path, artifact_factory: ArtifactFactory
) -> None:
    """`bremen retire` of a candidate in --workspace runs/mine said "review it with 'bremen review
    ID'": followed as written, that looks in the default workspace, not runs/mine."""
    mine = tmp_path / "runs" / "mine"
    code, out, _ = run(capsys, "policies", "register", str(artifact_factory()), "--workspace", str(mine))
    pid = out.split()[2]
    assert code == 0
    assert (
        out.strip()
        == f"registered: policy {pid} (candidate); review it with 'bremen review {pid} --workspace {mine}'"
    )
    code, _, err = run(capsys, "retire", pid, "--workspace", str(mine))
    assert code == 2
    assert err.strip() == (
        f"error: policy {pid} is a candidate, not approved; review it with 'bremen review {pid} --workspace "
        f"{mine}' and approve it with 'bremen approve {pid} --operator NAME --workspace {mine}'; reject it "
        f"instead with 'bremen reject {pid} --reason TEXT --workspace {mine}'"
    )
    # in the default workspace ($BREMEN_WORKSPACE here) the hint stays as short as it was
    code, out, _ = run(capsys, "policies", "register", str(artifact_factory()))
    assert code == 0 and out.strip().endswith(f"review it with 'bremen review {out.split()[2]}'")


def test_the_default_workspace_missing_names_the_campaign_workspaces_here(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """'bremen campaign' keeps its registry in runs/<name>, the other commands look in ./bremen_ws:
    a first 'bremen policies' after the quickstart only said there was no registry."""
    monkeypatch.delenv("BREMEN_WORKSPACE", raising=False)
    monkeypatch.delenv("BREMEN_REGISTRY_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, "policies")
    assert code == 2
    assert err.strip() == (
        "error: no registry database at 'bremen_ws/registry.sqlite'; register a policy first or pass "
        "--workspace / --db"
    )
    for name in ("quickstart", "mine", "arm", "zz"):
        Registry.open(tmp_path / "runs" / name).close()
    (tmp_path / "runs" / "not-a-campaign").mkdir()
    code, _, err = run(capsys, "policies")
    assert code == 2
    assert err.strip() == (
        "error: no registry database at 'bremen_ws/registry.sqlite'; campaign workspaces here: runs/arm, "
        "runs/mine, runs/quickstart and 1 more (pass --workspace runs/arm); or register a policy first "
        "or pass --workspace / --db"
    )
    # a workspace the user named is looked in alone: no guessing about others
    code, _, err = run(capsys, "policies", "--workspace", "elsewhere")
    assert err.strip() == (
        "error: no registry database at 'elsewhere/registry.sqlite'; register a policy first or pass "
        "--workspace / --db"
    )
