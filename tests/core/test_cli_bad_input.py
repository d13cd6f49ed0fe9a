"""Bad input to the CLI found by a sweep of every command: one line naming the problem and the
fix, exit 2, and nothing already written changed. The expected lines are written out here."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from bremen_robot.cli import main


def _one_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0, err
    assert "internal error" not in err and "Traceback" not in err, err
    return err


@pytest.fixture
def point_artifact(tmp_path: Path) -> Path:
    """A frozen (untrained) policy of the toy point task: evaluates in milliseconds."""
    from bremen_robot.policy.artifact import export_policy
    from bremen_robot.policy.gaussian import GaussianPolicy
    from bremen_robot.tasks import get_task

    task = get_task("point")
    torch.manual_seed(0)
    pol = GaussianPolicy(task.obs_dim, list(task.action_low), list(task.action_high), (8,))
    export_policy(
        pol,
        tmp_path / "art",
        robot="point",
        task="point",
        observation_names=list(task.obs_names),
        action_names=list(task.action_names),
        control_rate_hz=1 / task.dt,
    )
    return tmp_path / "art"


def test_json_report_never_replaces_a_dataset(tmp_path, point_data, point_artifact, capsys):
    """`--json` named an existing dataset: it was overwritten with the returns (data lost)."""
    data = point_data.save(tmp_path / "d.npz")
    before = data.read_bytes()
    argv = ["evaluate", str(point_artifact), "--env", "point", "--episodes", "1", "--max-steps", "5"]
    assert main([*argv, "--json", str(data)]) == 2
    assert _one_line(capsys) == (
        f"error: --json {data} exists and is not a JSON report; pass a new file name (it was left as it was)"
    )
    assert data.read_bytes() == before
    assert main(["bench", "--only", "no-such-section", "--json", str(data)]) == 2
    assert _one_line(capsys).startswith(f"error: --json {data} exists and is not a JSON report")
    assert data.read_bytes() == before
    # a report of an earlier run is still rewritten, as the README says
    report = tmp_path / "returns.json"
    report.write_text('{"env": "point", "returns": [1.0]}')
    assert main([*argv, "--json", str(report)]) == 0
    rewritten = json.loads(report.read_text())
    assert rewritten["env"] == "point" and len(rewritten["returns"]) == 1 and rewritten["returns"] != [1.0]


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        # was: "obs (0,), next_obs (0,) and actions (0,) must be N x D, N x D and N x A"
        (["--steps", "0"], "--steps must be at least 1 (got 0)"),
        (["--steps", "-5"], "--steps must be at least 1 (got -5)"),
        # was: internal error ValueError: expected non-negative integer
        (["--seed", "-1"], "--seed must be 0 or more (got -1)"),
        # was: exit 0, a dataset of NaN actions written
        (["--noise", "nan"], "--noise must be a finite sigma of 0 or more, like 0.1 (got nan)"),
        (["--noise", "-1"], "--noise must be a finite sigma of 0 or more, like 0.1 (got -1.0)"),
        # was: exit 0, rows of deployment 0 written (ids are 1-based)
        (
            ["--deployment", "0"],
            "--deployment 0: not a deployment number; pass 1 for the first deployment, 2 for the next, ...",
        ),
    ],
)
def test_dataset_collect_options_out_of_range(tmp_path, point_artifact, capsys, options, expected):
    out = tmp_path / "d.npz"
    argv = ["dataset", "collect", "--env", "point", "--steps", "20", "--policy", str(point_artifact)]
    assert main([*argv, *options, "--out", str(out)]) == 2
    assert _one_line(capsys) == f"error: {expected}"
    assert not out.exists()


def _d4rl(path: Path, n: int = 20, **override: np.ndarray) -> Path:
    rng = np.random.default_rng(0)
    obs = rng.normal(size=(n, 2))
    terminals = np.zeros(n)
    terminals[-1:] = 1
    arrays = {
        "observations": obs,
        "actions": rng.uniform(-1, 1, (n, 2)),
        "rewards": rng.normal(size=n),
        "next_observations": obs + 0.1,
        "terminals": terminals,
    }
    np.savez(path, **{**arrays, **override})
    return path


def test_dataset_convert_bad_arrays_and_deployment(tmp_path, capsys):
    out = tmp_path / "out.npz"
    good = _d4rl(tmp_path / "good.npz")
    text = _d4rl(tmp_path / "text.npz", observations=np.array([["a", "b"]] * 20))
    empty = _d4rl(tmp_path / "empty.npz", n=0)
    cases = [
        # was: internal error ValueError: could not convert string to float
        (
            [str(text)],
            f"'{text}': array observations holds <U1 values, not numbers; D4RL-style arrays are numeric",
        ),
        # was: "column 'episode_ids' has 1 rows but obs has 0" (a column the user never gave)
        ([str(empty)], f"'{empty}' holds no transitions (observations is empty); pass a file with data"),
        # was: exit 0 (deployment -3 written); a huge one an internal OverflowError
        (
            [str(good), "--deployment", "-3"],
            "--deployment -3: not a deployment number; pass 1 for the first deployment, 2 for the next, ...",
        ),
        ([str(good), "--deployment", str(10**23)], f"--deployment {10**23}: not a deployment number"),
    ]
    for argv, expected in cases:
        assert main(["dataset", "convert", *argv, "--task", "point", "--out", str(out)]) == 2, argv
        assert _one_line(capsys).startswith(f"error: {expected}"), argv
        assert not out.exists()
    assert main(["dataset", "convert", str(good), "--task", "point", "--out", str(out)]) == 0


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        # was: exit 0, training with torch's own thread count (the override skipped validation)
        (["--threads", "0"], "--threads must be at least 1 (got 0)"),
        # was: internal error RuntimeError: set_num_threads expects a positive integer
        (["--threads", "-1"], "--threads must be at least 1 (got -1)"),
        # was: internal error ValueError: Overflow when unpacking long long
        (
            ["--seed", str(10**23)],
            f"--seed must be from -9223372036854775808 to 18446744073709551615 (got {10**23}); "
            "pass e.g. --seed 0",
        ),
    ],
)
def test_train_overrides_out_of_range(tmp_path, capsys, options, expected):
    # the data is never read: the overrides are refused first
    argv = [
        "train",
        "--config",
        "point-demo",
        "--data",
        str(tmp_path / "d.npz"),
        "--out",
        str(tmp_path / "o"),
    ]
    assert main([*argv, *options]) == 2
    assert _one_line(capsys) == f"error: {expected}"
    assert not (tmp_path / "o" / "manifest.json").exists()


def test_a_train_config_seed_too_large_for_torch(tmp_path, capsys):
    config = tmp_path / "c.yaml"
    config.write_text(f"task: point\nseed: {10**23}\n")
    argv = ["train", "--config", str(config), "--data", str(tmp_path / "d.npz"), "--out", str(tmp_path / "o")]
    assert main(argv) == 2
    assert _one_line(capsys) == (
        f"error: {config}: seed: Input should be less than or equal to 18446744073709551615 (got {10**23}); "
        "set seed to a value at most 18446744073709551615"
    )


@pytest.mark.parametrize("threads", ["0", "-1"])
def test_bench_threads_out_of_range(capsys, threads):
    # was: 0 silently ignored (exit 0), -1 an internal error
    assert main(["bench", "--only", "no-such-section", "--threads", threads]) == 2
    assert _one_line(capsys) == f"error: --threads must be at least 1 (got {threads})"


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        # was: exit 0, whole episodes run (0 read as "no limit")
        (["--max-steps", "0"], "--max-steps must be at least 1 (got 0)"),
        # was: "obs (0,), next_obs (0,) and actions (0,) must be N x D, N x D and N x A"
        (["--max-steps", "-5"], "--max-steps must be at least 1 (got -5)"),
        # was: internal error ValueError: expected non-negative integer
        (["--seed", "-1"], "--seed must be 0 or more (got -1)"),
    ],
)
def test_evaluate_options_out_of_range(point_artifact, capsys, options, expected):
    assert main(["evaluate", str(point_artifact), "--env", "point", "--episodes", "1", *options]) == 2
    assert _one_line(capsys) == f"error: {expected}"


def test_evaluate_in_another_robots_env_names_the_flag_to_change(point_artifact, capsys):
    """Was: "...; pick the task the data was recorded for", though no data is involved."""
    pytest.importorskip("mujoco", reason="mujoco (sim extra) missing")
    assert main(["evaluate", str(point_artifact), "--env", "HalfCheetah-v5", "--episodes", "1"]) == 2
    assert _one_line(capsys) == (
        f"error: policy '{point_artifact}' has observations of size 2 but task 'halfcheetah' expects 17 "
        "(qpos.rootz, qpos.rooty, qpos.bthigh, ...); pass the --env the policy was trained for"
    )


def test_init_ensemble_that_is_not_a_torch_file(tmp_path, capsys):
    """Was: internal error UnpicklingError with torch's multi-line advice about weights_only."""
    image = tmp_path / "curves.png"
    image.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    data = tmp_path / "d.npz"
    from bremen_robot.data.real_rollout import make_env, rollout, uniform_policy

    env, task = make_env("point")
    rollout(env, task, uniform_policy(task, np.random.default_rng(0)), steps=100, seed=0).save(data)
    config = tmp_path / "c.yaml"
    config.write_text("task: point\nthreads: 1\nensemble: {members: 2, hidden: [8], max_epochs: 1}\n")
    argv = ["train", "--config", str(config), "--data", str(data), "--out", str(tmp_path / "o")]
    assert main([*argv, "--init-ensemble", str(image), "--quiet"]) == 2
    assert _one_line(capsys) == (
        f"error: cannot load ensemble '{image}' (UnpicklingError); train without --init-ensemble"
    )
    assert not (tmp_path / "o" / "manifest.json").exists()


@pytest.mark.parametrize("timeout", ["-1", "nan", "inf"])
def test_collect_refuses_a_timeout_that_is_not_seconds(tmp_path, capsys, timeout):
    """-1 and nan were accepted (a collection that never gives up, said to have a timeout)."""
    argv = ["collect", "--config", str(tmp_path / "none.yaml"), "--random", "--out", str(tmp_path / "b")]
    argv += ["--timeout", timeout]
    assert main(argv) == 2
    assert _one_line(capsys) == (
        f"error: --timeout must be seconds >= 0 (0: never give up; got {float(timeout)})"
    )


@pytest.mark.parametrize(("option", "value"), [("--steps", "0"), ("--steps", "-5"), ("--episodes", "0")])
def test_demo_refuses_a_count_below_one_and_leaves_no_run_folder(tmp_path, capsys, option, value):
    """--steps 0 gave a shape message about obs and left an empty run-* folder behind."""
    assert main(["demo", "--out", str(tmp_path / "demo"), option, value]) == 2
    assert _one_line(capsys) == f"error: {option} must be at least 1 (got {value})"
    assert not (tmp_path / "demo").exists() or not any((tmp_path / "demo").iterdir())


def test_demo_refuses_a_preset_of_another_task_before_collecting(tmp_path, capsys):
    """point-demo was found not to fit only after the HalfCheetah data was collected into a run-*
    folder: the minutes of collection were lost and the folder stayed behind."""
    argv = ["demo", "--out", str(tmp_path / "demo"), "--config", "point-demo"]
    assert main([*argv, "--steps", "200"]) == 2  # few steps: a regression fails fast, not in minutes
    assert _one_line(capsys) == (
        "error: --config point-demo trains task 'point', but the demo collects HalfCheetah-v5 data "
        "(task 'halfcheetah'); pass a halfcheetah preset, e.g. --config halfcheetah-demo (the default)"
    )
    assert not (tmp_path / "demo").exists()


@pytest.mark.parametrize("action", [["list"], ["add", "alice"], ["remove", "alice"]])
def test_trust_refuses_a_workspace_that_is_a_file(tmp_path, capsys, action):
    """`trust list --workspace <a file>` said the workspace had not started a campaign, exit 0."""
    ws = tmp_path / "ws.txt"
    ws.write_text("not a workspace")
    assert main(["trust", *action, "--workspace", str(ws)]) == 2
    assert (
        _one_line(capsys)
        == f"error: workspace '{ws}' is a file, not a folder; pass the campaign's workspace folder"
    )
    assert ws.read_text() == "not a workspace"


def test_dataset_merge_refuses_an_out_that_is_a_folder(tmp_path, point_data, capsys):
    """It wrote <folder>.npz beside the folder and said it had written the folder."""
    data = point_data.save(tmp_path / "d.npz")
    out = tmp_path / "merged"
    out.mkdir()
    assert main(["dataset", "merge", str(data), "--out", str(out)]) == 2
    assert _one_line(capsys) == f"error: '{out}' is a folder; give a file name, e.g. '{out / 'data.npz'}'"
    assert not (tmp_path / "merged.npz").exists() and not any(out.iterdir())
