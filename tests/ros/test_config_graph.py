"""Collect configs, node specs, and the launch file <-> ``bremen collect`` parity (no ROS needed)."""

from __future__ import annotations

import configparser
import importlib.util
from pathlib import Path

import pytest
import yaml

from bremen_robot.errors import ConfigError
from bremen_robot.ros.collect import collect
from bremen_robot.ros.config import load_collect_config
from bremen_robot.ros.graph import collect_specs, node_specs
from tests.ros.conftest import CONFIGS, REPO, write_collect_config

PKG = REPO / "ros2_ws" / "src" / "bremen"
LAUNCH = PKG / "launch" / "collect.launch.py"
SHIPPED = sorted(p.stem for p in (CONFIGS / "collect").glob("*.yaml"))


def load_launch_module():
    spec = importlib.util.spec_from_file_location("bremen_collect_launch", LAUNCH)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_shipped_configs_load_and_name_existing_robots():
    assert {"halfcheetah", "hopper", "ant", "halfcheetah-robot"} <= set(SHIPPED)
    for name in SHIPPED:
        cfg = load_collect_config(CONFIGS / "collect" / f"{name}.yaml")
        assert cfg.robot.is_file()


@pytest.mark.parametrize(
    "change, fragment",
    [
        ({"colour": "red"}, "colour: unknown field"),
        ({"sim": "none", "mode": "lockstep"}, "lockstep needs a simulator"),
        ({"mode": "fast"}, "mode"),
        ({"noise_sigma": -1}, "noise_sigma"),
        ({"log_topics": ["joint_states", "tf"]}, "unknown topic 'tf'"),
        ({"robot": "nowhere/robot.yaml"}, "not found"),
        ({"runner_realtime_priority": 50}, "runner_realtime_priority applies to mode: realtime"),
        ({"runner_realtime_priority": 99}, "runner_realtime_priority"),
        ({"stop_grace_s": 0}, "0.0 s is outside 0.1-10 s; set it"),
        ({"stop_grace_s": 60}, "60.0 s is outside 0.1-10 s; set it"),
        ({"stop_grace_s": float("nan")}, "stop_grace_s: Input should be a finite number (got nan)"),
    ],
)
def test_bad_collect_config_is_one_line_naming_the_field(tmp_path, change, fragment):
    path = write_collect_config(tmp_path, **change)
    with pytest.raises(ConfigError) as err:
        load_collect_config(path)
    msg = str(err.value)
    assert fragment in msg and "\n" not in msg
    assert f"{next(iter(change))}" in msg


def test_stop_grace_reaches_the_runner_and_defaults_to_half_a_second(tmp_path):
    specs = node_specs(
        load_collect_config(write_collect_config(tmp_path, stop_grace_s=1.25)), policy="random"
    )
    assert next(s for s in specs if s.name == "policy_runner").parameters["stop_grace_s"] == 1.25
    default = load_collect_config(CONFIGS / "collect" / "halfcheetah.yaml")
    assert default.stop_grace_s == 0.5


def test_node_specs_lockstep_sim_and_real_robot():
    cfg = load_collect_config(CONFIGS / "collect" / "halfcheetah.yaml")
    specs = {s.name: s for s in node_specs(cfg, policy="random", bag="/tmp/b")}
    assert set(specs) == {"sim_bridge", "policy_runner", "trajectory_logger"}
    assert specs["policy_runner"].parameters["use_sim_time"] is False  # sim time from the state stamps
    assert specs["sim_bridge"].parameters["use_sim_time"] is False  # it is the clock
    assert specs["trajectory_logger"].parameters["bag"] == "/tmp/b"
    for s in specs.values():
        for v in s.parameters.values():  # ROS parameters: no None, typed lists
            assert v is not None and (not isinstance(v, list) or all(isinstance(x, str) for x in v))
    real = load_collect_config(CONFIGS / "collect" / "halfcheetah-robot.yaml")
    rspecs = {s.name: s for s in node_specs(real, policy="random")}
    assert "sim_bridge" not in rspecs and rspecs["policy_runner"].parameters["mode"] == "realtime"
    assert ("bremen/command", "/forward_command_controller/commands") in rspecs["policy_runner"].remappings
    argv = rspecs["policy_runner"].command(Path("/tmp/p.yaml"))
    assert argv[1:3] == ["-m", "bremen_robot.ros.policy_runner"]
    assert "bremen/command:=/forward_command_controller/commands" in argv


@pytest.mark.parametrize("sigma", [0.1, 0.37, 0.0])
def test_policy_runner_gets_the_exploration_noise_of_the_config(tmp_path, sigma):
    """The runner adds N(0, sigma^2) to the policy mean; sigma must reach it as written."""
    cfg = load_collect_config(write_collect_config(tmp_path, noise_sigma=sigma))
    for spec in (node_specs(cfg, policy="deadbeef", bag="/tmp/b"), collect_specs(cfg, policy="deadbeef")):
        runner = next(s for s in spec if s.name == "policy_runner")
        assert runner.parameters["noise_sigma"] == sigma
    shipped = yaml.safe_load((CONFIGS / "collect" / "halfcheetah.yaml").read_text())["noise_sigma"]
    cfg = load_collect_config(CONFIGS / "collect" / "halfcheetah.yaml")
    runner = next(s for s in node_specs(cfg, policy="deadbeef") if s.name == "policy_runner")
    assert runner.parameters["noise_sigma"] == shipped == 0.1


def test_sim_override_none_switches_to_realtime():
    specs = collect_specs(CONFIGS / "collect" / "halfcheetah.yaml", policy="random", sim="none")
    assert [s.name for s in specs] == ["policy_runner", "trajectory_logger"]
    assert specs[0].parameters["mode"] == "realtime"


@pytest.mark.parametrize("name", SHIPPED)
@pytest.mark.parametrize("policy", ["random", "deadbeef"])
def test_launch_file_and_bremen_collect_build_identical_specs(name, policy, tmp_path, monkeypatch):
    """The shipped launch file and `bremen collect` go through one function to the same nodes."""
    import bremen_robot.ros.collect as collect_mod

    monkeypatch.setattr(collect_mod, "_check_approval", lambda *a: None)  # no registry for this check
    launch = load_launch_module()
    cfg = CONFIGS / "collect" / f"{name}.yaml"
    out = tmp_path / "bag"
    args = {"config": str(cfg), "policy": policy, "sim": "", "episodes": "3", "steps": "0", "out": str(out)}
    from_launch = launch.processes_from_arguments(args)
    kw = {"random": True} if policy == "random" else {"policy": policy}
    res = collect(cfg, episodes=3, out=out, dry_run=True, **kw)
    assert from_launch == res.processes
    assert [n for p in from_launch for n in p.nodes] == res.specs  # every node, once
    for proc in from_launch:  # the Node arguments carry the spec unchanged
        k = launch.node_kwargs(proc, tmp_path / "launch_params")
        first = proc.nodes[0]
        assert (k["package"], k["remappings"]) == (first.package, list(first.remappings))
        doc = yaml.safe_load(yaml.safe_dump(proc.params_document()))  # what bremen collect writes
        if len(proc.nodes) == 1:
            assert (k["executable"], k["name"]) == (first.executable, first.name)
            assert k["parameters"] == [first.parameters]
            assert doc["/**"]["ros__parameters"] == first.parameters
        else:  # composed: one section per node, in the file both launchers pass
            assert k["executable"] == "composed" and "name" not in k
            assert k["arguments"] == [n.executable for n in proc.nodes]
            assert yaml.safe_load(Path(k["parameters"][0]).read_text()) == doc
            for node in proc.nodes:
                assert doc[f"/{node.name}"]["ros__parameters"] == node.parameters


def test_lockstep_simulation_composes_bridge_and_runner_unless_disabled(tmp_path):
    from bremen_robot.ros.graph import process_specs

    cfg = load_collect_config(CONFIGS / "collect" / "halfcheetah.yaml")
    specs = node_specs(cfg, policy="random", bag="/tmp/b")
    procs = process_specs(cfg, specs)
    assert [p.name for p in procs] == ["sim_bridge+policy_runner", "trajectory_logger"]
    argv = procs[0].command(Path("/tmp/p.yaml"))
    assert argv[1:5] == ["-m", "bremen_robot.ros.composed", "sim_bridge", "policy_runner"]
    assert "__node:=" not in " ".join(argv)  # renaming would give both nodes one name
    separate = cfg.model_copy(update={"compose_lockstep": False})
    assert [p.name for p in process_specs(separate, specs)] == [s.name for s in specs]
    realtime = cfg.model_copy(update={"mode": "realtime"})
    assert all(len(p.nodes) == 1 for p in process_specs(realtime, node_specs(realtime, policy="random")))


def test_launch_description_builds_where_launch_ros_exists():
    pytest.importorskip("launch_ros", reason="launch_ros is not installed (needs a ROS 2 install)")
    from launch import LaunchDescription
    from launch.actions import DeclareLaunchArgument

    ld = load_launch_module().generate_launch_description()
    assert isinstance(ld, LaunchDescription)
    declared = {e.name for e in ld.entities if isinstance(e, DeclareLaunchArgument)}
    assert {"config", "policy", "sim"} <= declared


def test_launch_file_runs_a_lone_policy_runner_as_a_lifecycle_node_and_configures_it(tmp_path):
    pytest.importorskip("launch_ros", reason="launch_ros is not installed (needs a ROS 2 install)")
    from launch import LaunchContext
    from launch.actions import EmitEvent, ExecuteProcess, RegisterEventHandler
    from launch_ros.actions import LifecycleNode

    launch = load_launch_module()
    ctx = LaunchContext()
    for name, (default, _) in launch.ARGUMENTS.items():
        ctx.launch_configurations[name] = default
    ctx.launch_configurations["config"] = str(CONFIGS / "collect" / "halfcheetah.yaml")
    ctx.launch_configurations["sim"] = "none"  # realtime: the runner is its own process
    actions = launch._launch_setup(ctx)
    runners = [a for a in actions if isinstance(a, LifecycleNode)]
    assert len(runners) == 1 and sum(isinstance(a, EmitEvent) for a in actions) == 1
    assert sum(isinstance(a, RegisterEventHandler) for a in actions) == 1  # activate once inactive
    ctx.launch_configurations["sim"] = "mujoco"  # lockstep, composed: the client drives it
    actions = launch._launch_setup(ctx)
    assert not any(isinstance(a, LifecycleNode) for a in actions)
    assert any(
        isinstance(a, ExecuteProcess) and "bremen_robot.ros.lifecycle_client" in str(a.cmd) for a in actions
    )


def test_ament_package_layout():
    xml = (PKG / "package.xml").read_text()
    assert "<build_type>ament_python</build_type>" in xml and "<name>bremen</name>" in xml
    assert "<exec_depend>lifecycle_msgs</exec_depend>" in xml  # the launch file's transitions
    assert (PKG / "resource" / "bremen").is_file()
    cfg = configparser.ConfigParser()
    cfg.read(PKG / "setup.cfg")
    assert cfg["develop"]["script_dir"] == "$base/lib/bremen"
    assert cfg["install"]["install_scripts"] == "$base/lib/bremen"
    setup = (PKG / "setup.py").read_text()
    import sys

    sys.path.insert(0, str(PKG))
    try:
        nodes = importlib.import_module("bremen.nodes")
        for exe in ("policy_runner", "sim_bridge", "trajectory_logger", "reset_node", "composed"):
            assert f"{exe} = bremen.nodes:{exe}" in setup
            assert callable(getattr(nodes, exe))
    finally:
        sys.path.remove(str(PKG))
        sys.modules.pop("bremen.nodes", None)
        sys.modules.pop("bremen", None)
    # the package's default config resolves its robot by name
    assert load_collect_config(PKG / "config" / "halfcheetah.yaml").robot == (
        CONFIGS / "robots" / "halfcheetah.yaml"
    )


def test_collect_needs_a_budget_and_one_policy(tmp_path):
    cfg = CONFIGS / "collect" / "halfcheetah.yaml"
    with pytest.raises(ConfigError, match="budget"):
        collect(cfg, random=True, out=tmp_path / "b", dry_run=True)
    with pytest.raises(ConfigError, match="exactly one"):
        collect(cfg, random=True, policy="abcd", episodes=1, out=tmp_path / "b", dry_run=True)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    with pytest.raises(ConfigError, match="not empty"):
        collect(cfg, random=True, episodes=1, out=tmp_path / "full", dry_run=True)


def _robot_with(tmp_path, **fields):
    """configs/robots/halfcheetah.yaml with ``fields`` changed (None: removed), and a collect
    config using it."""
    data = yaml.safe_load((CONFIGS / "robots" / "halfcheetah.yaml").read_text())
    data["safety"] = str(CONFIGS / "safety" / "halfcheetah.yaml")
    for k, v in fields.items():
        if v is None:
            data.pop(k)
        else:
            data[k] = v
    robot = tmp_path / "robot.yaml"
    robot.write_text(yaml.safe_dump(data))
    return robot, write_collect_config(tmp_path, robot=str(robot))


@pytest.mark.parametrize("dry_run", [True, False])
def test_collect_refuses_a_robot_without_usable_limits_before_making_the_bag(tmp_path, capsys, dry_run):
    """policy_runner refuses these at configure, but the dry run printed a plan for them and a
    real run failed only after making the bag folder (metadata and a segment): the same --out
    was then refused as not empty."""
    from bremen_robot.cli import main

    robot, cfg = _robot_with(tmp_path, safety=None)
    out = tmp_path / "bag"
    args = ["collect", "--config", str(cfg), "--random", "--episodes", "1", "--out", str(out)]
    assert main(args + (["--dry-run"] if dry_run else [])) == 2
    err = capsys.readouterr().err
    assert err == (
        f"error: robot config {robot}: safety: no limits file; add safety: ../safety/<robot>.yaml "
        "(docs/safety.md) and check it with 'bremen safety check'\n"
    )
    assert not out.exists()
    missing = tmp_path / "nope.yaml"
    robot, cfg = _robot_with(tmp_path, safety=str(missing))
    with pytest.raises(ConfigError) as exc:
        collect(cfg, random=True, episodes=1, out=out, dry_run=dry_run)
    assert str(exc.value) == f"{missing}: file not found; pass an existing limits file"
    robot, cfg = _robot_with(tmp_path, joints=["bthigh", "bshin", "bfoot", "fthigh", "fshin", "fankle"])
    with pytest.raises(ConfigError) as exc:
        collect(cfg, random=True, episodes=1, out=out, dry_run=dry_run)
    assert str(exc.value) == (
        f"{CONFIGS / 'safety' / 'halfcheetah.yaml'}: joints.ffoot: unknown joint for this robot (its "
        "joints are bthigh, bshin, bfoot, fthigh, fshin, fankle); fix the name or remove it"
    )
    limits = yaml.safe_load((CONFIGS / "safety" / "halfcheetah.yaml").read_text())
    limits["joints"]["bthigh"]["position"] = {"min": -30.0, "max": 60.0}  # degrees, from a datasheet
    degrees = tmp_path / "degrees.yaml"
    degrees.write_text(yaml.safe_dump(limits))
    robot, cfg = _robot_with(tmp_path, safety=str(degrees))
    with pytest.raises(ConfigError) as exc:
        collect(cfg, random=True, episodes=1, out=out, dry_run=dry_run)
    assert str(exc.value) == (
        f"{degrees}: joints.bthigh.position.min: -30 is more than two turns (4π rad); positions are in "
        "radians, so this looks like degrees: convert every angle with x·π/180 (-30° = -0.5236 rad), "
        "or, for a prismatic joint in metres, set unit: m in its position limits"
    )
    assert not out.exists()
    limits = yaml.safe_load((CONFIGS / "safety" / "halfcheetah.yaml").read_text())
    limits["ood"] = {"threshold": 1.0, "fallback": "safe"}  # policy_runner would run without it
    gated = tmp_path / "gated.yaml"
    gated.write_text(yaml.safe_dump(limits))
    robot, cfg = _robot_with(tmp_path, safety=str(gated))
    with pytest.raises(ConfigError, match=rf"^{gated}: ood: policy_runner, reset_node and the evaluations"):
        collect(cfg, random=True, episodes=1, out=out, dry_run=dry_run)
    assert not out.exists()


def test_cli_dry_run_and_bad_input(tmp_path, capsys):
    from bremen_robot.cli import main

    cfg = str(CONFIGS / "collect" / "ant.yaml")
    out = str(tmp_path / "bag")
    assert main(["collect", "--config", cfg, "--random", "--episodes", "1", "--out", out, "--dry-run"]) == 0
    printed = capsys.readouterr().out
    # lockstep simulation: sim_bridge and policy_runner share a process, the logger has its own
    assert "-m bremen_robot.ros.composed sim_bridge policy_runner --ros-args" in printed
    assert "-m bremen_robot.ros.trajectory_logger --ros-args -r __node:=trajectory_logger" in printed
    assert all(f"# {node}: {{" in printed for node in ("sim_bridge", "policy_runner", "trajectory_logger"))
    bad = write_collect_config(tmp_path, mode="sideways")
    assert main(["collect", "--config", str(bad), "--random", "--episodes", "1", "--out", out]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "mode" in err and "\n" not in err
    assert main(["collect", "--config", cfg, "--random", "--episodes", "-3", "--out", out]) == 2


@pytest.mark.parametrize("dry_run", [True, False])
def test_collect_refuses_a_robot_whose_joints_are_the_tasks_actions_in_another_order(tmp_path, dry_run):
    """Until 2026-12-07 this ran with --random: sim_bridge mapped the commands to the task's order
    for the physics, but ingest stored them as sent, so every dataset column was another joint's
    action (silently; a trained policy was refused only at deployment 2)."""
    order = ["ffoot", "fshin", "fthigh", "bfoot", "bshin", "bthigh"]
    robot, cfg = _robot_with(tmp_path, joints=order)
    out = tmp_path / "bag"
    with pytest.raises(ConfigError) as exc:
        collect(cfg, random=True, episodes=1, out=out, dry_run=dry_run)
    task_order = ["bthigh", "bshin", "bfoot", "fthigh", "fshin", "ffoot"]
    assert str(exc.value) == (
        f"robot config {robot}: joints {order} are the actions of task 'halfcheetah' in another order "
        f"(the task's: {task_order}); policies act and datasets store commands in the task's order: "
        "list the joints so, and map them to your controller's order in its driver"
    )
    assert not out.exists()
