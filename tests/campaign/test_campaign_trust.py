"""Who a campaign's robot trusts: one home (robot config + ``bremen trust``), checked before
the campaign waits, before ``bremen approve`` signs, and before anything is counted deployed.

Runs in-process on the toy task (tests/campaign/test_campaign_logic.py's helpers), in seconds;
the README's own tour runs in tests/campaign/test_readme_tour.py.
"""

from __future__ import annotations

import json
import re
import threading
import time
from pathlib import Path

import pytest
import yaml

from bremen_robot.campaign.config import load_campaign_config
from bremen_robot.campaign.runner import Campaign
from bremen_robot.cli import main
from bremen_robot.errors import BremenError
from bremen_robot.registry import Registry, init_operator, key_fingerprint, load_public_key
from tests.campaign.test_campaign_logic import DirectCollector, write_campaign


class WaitedError(Exception):
    """Raised by a test's log when the campaign starts waiting although it must not."""


@pytest.fixture
def operators(tmp_path, monkeypatch):
    monkeypatch.setenv("BREMEN_OPERATOR_DIR", str(tmp_path / "ops"))
    monkeypatch.delenv("BREMEN_WORKSPACE", raising=False)
    init_operator("alice")
    init_operator("bob")
    return tmp_path / "ops"


def _operator(messages: list[str], act, ws: Path) -> threading.Thread:
    """Like a person in another terminal: waits for the campaign's prompt, then acts. If the
    test's action fails, the candidate is rejected so that the campaign stops instead of waiting."""

    def run() -> None:
        for _ in range(1200):
            time.sleep(0.05)
            for m in list(messages):
                if found := re.match(r"waiting for approval of candidate (\w+) ", m):
                    try:
                        act(found.group(1))
                    except BaseException:
                        with Registry.open(ws) as reg:
                            reg.reject(found.group(1), "the test's operator failed")
                        raise
                    return

    t = threading.Thread(target=run)
    t.start()
    return t


def test_campaign_that_could_never_deploy_refuses_before_any_work(tmp_path, operators):
    cfg = load_campaign_config(write_campaign(tmp_path))
    collector = DirectCollector()

    def log(m: str) -> None:
        if "waiting for approval" in m:
            raise WaitedError(m)

    with pytest.raises(BremenError) as err:
        Campaign(cfg, tmp_path / "ws", collect_fn=collector, log=log).run()
    assert str(err.value) == (
        "robot 'point' trusts no operator keys, so no candidate could be deployed after deployment 1; "
        f"run 'bremen trust add NAME --workspace {(tmp_path / 'ws').resolve()}' (see bremen trust --help) "
        "with the NAME of 'bremen operator init NAME', then run this command again"
    )
    assert collector.calls == []
    assert not (tmp_path / "ws" / "registry.sqlite").exists()


def test_approve_refuses_an_untrusted_operator_before_signing(tmp_path, operators, capsys):
    cfg = load_campaign_config(write_campaign(tmp_path))
    ws = (tmp_path / "ws").resolve()
    assert main(["trust", "add", "alice", "--workspace", str(ws)]) == 0
    messages: list[str] = []
    codes: dict[str, int] = {}
    states: list[str] = []

    def act(pid: str) -> None:
        # alice (trusted) named with bob's key: the key is not hers, whatever the robot trusts
        codes["alice with bob.key"] = main(
            [
                "approve",
                pid,
                "--operator",
                "alice",
                "--key",
                str(operators / "bob.key"),
                "--workspace",
                str(ws),
            ]
        )
        codes["bob"] = main(["approve", pid, "--operator", "bob", "--workspace", str(ws)])
        with Registry.open(ws, create=False) as reg:
            states.append(reg.get(pid).state)
        codes["alice"] = main(["approve", pid, "--operator", "alice", "--workspace", str(ws)])

    t = _operator(messages, act, ws)
    summary = Campaign(cfg, ws, collect_fn=DirectCollector(), log=messages.append).run()
    t.join()
    err = capsys.readouterr().err.strip().splitlines()
    assert codes == {"alice with bob.key": 2, "bob": 2, "alice": 0}
    assert states == ["candidate"]  # both refusals signed and changed nothing
    bob_fp = key_fingerprint(load_public_key(operators / "bob.pub"))
    alice_fp = key_fingerprint(load_public_key(operators / "alice.pub"))
    assert len(err) == 2
    # not "robot 'point' does not trust operator alice (key <bob's>)": its fix, 'bremen trust add
    # alice', answers "already trusted"
    assert err[0] == (
        f"error: key '{operators / 'bob.key'}' (fingerprint {bob_fp[:12]}, operator 'bob') is not the key "
        f"of operator 'alice' ({operators / 'alice.pub'}: fingerprint {alice_fp[:12]}); approve as the "
        "key's owner, or sign with alice's own key"
    )
    assert err[1] == (
        f"error: robot 'point' does not trust operator bob (key {bob_fp[:12]}): "
        f"run 'bremen trust add bob --workspace {ws}' (see bremen trust --help), then approve again; "
        "nothing was approved"
    )
    assert summary["deployment_count"] == 2
    assert any("(trusted operators: alice;" in m for m in messages)


def test_an_untrusted_approval_stops_the_campaign_before_anything_is_counted(tmp_path, operators):
    cfg = load_campaign_config(write_campaign(tmp_path))
    ws = (tmp_path / "ws").resolve()
    main(["trust", "add", "alice", "--workspace", str(ws)])
    messages: list[str] = []

    def approve_as_bob(pid: str) -> None:  # through the API, past the CLI's own check
        with Registry.open(ws) as reg:
            reg.approve(pid, "bob")

    t = _operator(messages, approve_as_bob, ws)
    first = DirectCollector()
    with pytest.raises(BremenError) as err:
        Campaign(cfg, ws, collect_fn=first, log=messages.append).run()
    t.join()
    msg = str(err.value)
    assert msg.startswith("deployment 2 not started, nothing counted: policy ")
    assert "approval signature by 'bob'" in msg and "robot.yaml" not in msg
    assert msg.endswith(f"run 'bremen trust add bob --workspace {ws}' (see bremen trust --help)")
    assert first.calls == [1]
    with Registry.open(ws, create=False) as reg:
        assert reg.deployment_count() == 1
        assert [r.state for r in reg.policies() if not r.is_random] == ["approved"]
    # the fix the message names, then the same command: it resumes and deploys bob's approval
    assert main(["trust", "add", "bob", "--workspace", str(ws)]) == 0
    second = DirectCollector()
    summary = Campaign(cfg, ws, collect_fn=second, log=messages.append).run()
    assert second.calls == [2] and summary["deployment_count"] == 2


def test_a_deployment_is_counted_only_once_it_collected(tmp_path):
    cfg = load_campaign_config(write_campaign(tmp_path))
    with pytest.raises(KeyboardInterrupt):
        Campaign(
            cfg, tmp_path / "ws", auto_approve=True, collect_fn=DirectCollector(fail_at=1), log=lambda m: None
        ).run()
    with Registry.open(tmp_path / "ws", create=False) as reg:
        assert reg.deployment_count() == 0


def test_a_hand_edited_robot_yaml_is_kept_not_overwritten(tmp_path):
    cfg = load_campaign_config(write_campaign(tmp_path, deployments=1))
    ws = tmp_path / "ws"
    messages: list[str] = []
    run = Campaign(cfg, ws, auto_approve=True, collect_fn=DirectCollector(), log=messages.append).run
    run()
    generated = (ws / "robot.yaml").read_text()
    run()  # unchanged trust: the same file, nothing set aside
    assert (ws / "robot.yaml").read_text() == generated and not (ws / "robot.yaml.edited-1").exists()
    edited = generated.replace("trusted_operator_keys:", "trusted_operator_keys:\n- /somewhere/carol.pub")
    (ws / "robot.yaml").write_text(edited)
    run()
    assert (ws / "robot.yaml.edited-1").read_text() == edited
    assert (ws / "robot.yaml").read_text() == generated
    kept = [m for m in messages if "robot.yaml.edited-1" in m]
    assert len(kept) == 1 and "bremen trust add NAME --workspace" in kept[0]


def test_trusted_keys_in_the_robot_config_are_not_the_campaign_identity(tmp_path, operators):
    camp = write_campaign(tmp_path)
    cfg = load_campaign_config(camp)
    before, legacy = cfg.digest(), cfg.digest(version=1)
    robot = yaml.safe_load((tmp_path / "robot.yaml").read_text())
    robot["trusted_operator_keys"] = [str(operators / "alice.pub")]
    (tmp_path / "robot.yaml").write_text(yaml.safe_dump(robot))
    assert load_campaign_config(camp).digest() == before  # adding an operator keeps the workspace
    robot["control_rate_hz"] = 20
    (tmp_path / "robot.yaml").write_text(yaml.safe_dump(robot))
    assert load_campaign_config(camp).digest() != before  # the robot itself is still identity
    # a workspace made before this change recorded the byte digest; it still resumes
    (tmp_path / "ws").mkdir()
    (tmp_path / "ws" / "campaign.json").write_text(json.dumps({"name": "tiny", "config_digest": legacy}))
    Campaign(cfg, tmp_path / "ws", auto_approve=True, collect_fn=DirectCollector()).ws.claim(
        cfg.name, before, legacy_digests=[legacy]
    )


def test_trust_command_adds_lists_and_removes(tmp_path, operators, capsys):
    ws = tmp_path / "ws"
    assert main(["trust", "add", "alice", "--workspace", str(ws)]) == 0
    copy = ws / "trusted_operators" / "alice.pub"
    assert copy.read_bytes() == (operators / "alice.pub").read_bytes()
    assert main(["trust", "add", "alice", "--workspace", str(ws)]) == 0  # again: nothing changes
    assert "already trusted operator alice" in capsys.readouterr().out
    # another key under alice's name is refused: a name stands for one key
    assert main(["trust", "add", "alice", "--pub", str(operators / "bob.pub"), "--workspace", str(ws)]) == 2
    err = capsys.readouterr().err
    assert "already trusts another key for operator alice" in err
    assert f"run 'bremen trust remove alice --workspace {ws}' first" in err
    assert copy.read_bytes() == (operators / "alice.pub").read_bytes()
    assert main(["trust", "add", "carol", "--workspace", str(ws)]) == 2
    assert "create it with 'bremen operator init carol' or pass --pub PATH" in capsys.readouterr().err
    assert main(["trust", "list", "--workspace", str(ws)]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert listed[-1].split()[0] == "alice" and listed[-1].endswith("workspace (bremen trust)")
    assert main(["trust", "remove", "alice", "--workspace", str(ws)]) == 0
    assert not copy.exists() and (operators / "alice.pub").is_file()
    assert main(["trust", "remove", "alice", "--workspace", str(ws)]) == 2
    assert "has no trusted key for operator alice (trusted here: none)" in capsys.readouterr().err


def test_two_trust_adds_racing_for_one_name_keep_the_first_key(tmp_path, operators, monkeypatch):
    """The other `trust add` writes bob's key as alice after this one found no alice.pub: this
    one must refuse, not replace it (os.replace would have, silently)."""
    from bremen_robot.campaign import trust

    ws = tmp_path / "ws"
    copy = ws / "trusted_operators" / "alice.pub"
    real = trust.atomic_write_bytes

    def racing(path, data, **kw):  # the other process wins between the check and this write
        copy.parent.mkdir(parents=True, exist_ok=True)
        copy.write_bytes((operators / "bob.pub").read_bytes())
        return real(path, data, **kw)

    monkeypatch.setattr(trust, "atomic_write_bytes", racing)
    with pytest.raises(BremenError, match="already trusts another key for operator alice"):
        trust.add_operator(ws, "alice")
    assert copy.read_bytes() == (operators / "bob.pub").read_bytes()
    assert [p.name for p in copy.parent.iterdir()] == ["alice.pub"]  # no temporary file left


def test_generated_robot_config_names_the_command_not_the_file(tmp_path):
    from bremen_robot.campaign.trust import write_robot_config
    from bremen_robot.robot_config import load_robot_config

    write_campaign(tmp_path)
    robot = load_robot_config(tmp_path / "robot.yaml")
    assert robot.how_to_trust("alice") == (
        f"add alice's .pub (bremen operator init alice) to trusted_operator_keys in {tmp_path / 'robot.yaml'}"
    )
    generated = load_robot_config(write_robot_config(robot, tmp_path / "ws", log=lambda m: None))
    assert generated.how_to_trust("alice") == (
        f"run 'bremen trust add alice --workspace {tmp_path / 'ws'}' (see bremen trust --help)"
    )


def test_operator_init_names_both_homes_of_trust(tmp_path, capsys):
    assert main(["operator", "init", "dave", "--dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "bremen trust add dave --workspace W" in out
    assert f"trusted_operator_keys: [{tmp_path / 'dave.pub'}]" in out


def test_a_bad_collect_config_is_named_at_start_not_in_its_generated_copy(tmp_path):
    """The graph reads d<k>/collect.yaml, rewritten for every collection: an error must name the
    campaign's own collect file, before deployment 1 is collected or counted."""
    cfg = load_campaign_config(write_campaign(tmp_path))  # its 'collect' is a robot config
    with pytest.raises(BremenError) as err:
        Campaign(cfg, tmp_path / "ws", auto_approve=True)
    assert str(err.value).startswith(f"{tmp_path / 'robot.yaml'}: ")
    assert not (tmp_path / "ws").exists()
