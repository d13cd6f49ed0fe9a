import numpy as np
import pytest

from bremen_robot.cli import build_parser, command_modules, main
from bremen_robot.config.train import TrainConfig, load_train_config, preset_names
from bremen_robot.errors import ConfigError


@pytest.mark.parametrize("name", preset_names())
def test_every_shipped_preset_loads_and_says_how_it_differs(name):
    cfg = load_train_config(name)
    assert cfg.name == name and cfg.description and cfg.expected_time


def test_paper_presets_carry_the_published_figures():
    cheetah = load_train_config("halfcheetah-paper")
    assert (cheetah.ensemble.members, cheetah.ensemble.hidden, cheetah.ensemble.batch_size) == (
        5,
        [1024, 1024],
        1000,
    )
    assert (cheetah.trpo.max_kl, cheetah.trpo.horizon, cheetah.trpo.steps_per_iteration) == (0.1, 250, 50_000)
    assert load_train_config("hopper-paper").trpo.horizon == 1000
    assert load_train_config("ant-paper").trpo.gae_lambda == 0.97
    assert cheetah.bc.steps == 300_000 and cheetah.trpo.init_log_std is None


@pytest.mark.parametrize(
    ("yaml_text", "expected"),
    [
        ("ensemble: {membrs: 5}\n", "ensemble.membrs: unknown field"),
        ("ensemble: {lr: -1}\n", "ensemble.lr: Input should be greater than 0"),
        ("trpo: {horizon: 500, steps_per_iteration: 100}\n", "must be >= horizon"),
        ("device: tpu\n", "device: Input should be 'auto', 'cpu' or 'cuda'"),
        ("ensemble: [1, 2\n", "is not valid YAML"),
        # YAML keeps the last of two equal keys: which learning rate trained would depend on order
        ("ensemble: {lr: 0.001}\nseed: 1\nensemble: {lr: 0.1}\n", "line 3: key 'ensemble' is given twice"),
        ("ensemble: {lr: 0.001, lr: 0.1}\n", "line 1: key 'lr' is given twice in one mapping; keep one"),
    ],
)
def test_config_errors_are_one_line_naming_the_field(tmp_path, yaml_text, expected):
    path = tmp_path / "c.yaml"
    path.write_text(yaml_text)
    with pytest.raises(ConfigError) as info:
        load_train_config(path)
    assert expected in str(info.value)
    assert "\n" not in str(info.value)


def test_every_subcommand_has_help(capsys):
    parser = build_parser()
    names = [m.rsplit(".", 1)[-1].removesuffix("_cmd") for m in command_modules()]
    assert {"train", "evaluate", "dataset", "bench", "demo"} <= set(names)
    for name in ("train", "evaluate", "dataset", "bench", "demo"):
        with pytest.raises(SystemExit) as exit_info:
            parser.parse_args([name, "--help"])
        assert exit_info.value.code == 0
    assert "--config" in capsys.readouterr().out


def test_bad_inputs_exit_2_with_one_line_and_write_nothing(tmp_path, point_data, capsys):
    data = point_data.save(tmp_path / "d.npz")
    cheetah_like = tmp_path / "c.npz"
    bad = point_data.select(np.arange(len(point_data)))
    bad.obs[0, 0] = np.nan
    nan_path = bad.save(tmp_path / "nan.npz")
    cases = [
        (
            ["train", "--config", "no-such-preset", "--data", str(data), "--out", str(tmp_path / "o1")],
            "unknown train preset 'no-such-preset'; presets: ant-cpu, ant-paper,",
        ),
        (
            ["train", "--config", "halfcheetah-cpu", "--data", str(data), "--out", str(tmp_path / "o2")],
            "the config trains task 'halfcheetah' but the data was recorded for 'point'",
        ),
        (["train", "--config", "point-demo", "--data", str(nan_path), "--out", str(tmp_path / "o3")], "NaN"),
        (
            ["train", "--config", "point-demo", "--data", str(cheetah_like), "--out", str(tmp_path / "o4")],
            "not found",
        ),
        (["evaluate", str(tmp_path / "nothing"), "--env", "point"], "no policy artifact"),
        (["evaluate", str(tmp_path), "--env", "Pong-v5"], "unknown env"),
        (["dataset", "collect", "--env", "point", "--steps", "10", "--out", str(data)], "already exists"),
    ]
    before = data.read_bytes()
    for argv, message in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert message in err and err.count("\n") == 0, (argv, err)
    assert data.read_bytes() == before
    assert not any((tmp_path / f"o{i}" / "manifest.json").exists() for i in range(1, 5))


def test_train_config_rejects_unknown_top_level_field():
    with pytest.raises(Exception, match="extra"):
        TrainConfig.model_validate({"epochs": 3})


def test_bench_only_with_an_unknown_section_is_refused_and_writes_nothing(tmp_path, capsys):
    """`--only foo` ran no section, printed nothing and exited 0 (and wrote a figure-less --json)."""
    report = tmp_path / "b.json"
    assert main(["bench", "--quick", "--threads", "1", "--only", "foo", "--json", str(report)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        "error: --only 'foo': no bench section by that name; "
        "pass one of compute, backends, shield, ros_graph, fleet (or a part of one)"
    )
    assert not report.exists()
    # one bad word among good ones is still refused, by its own name
    assert main(["bench", "--quick", "--only", "shield", "sheild"]) == 2
    assert capsys.readouterr().err.startswith("error: --only 'sheild': no bench section by that name;")


def test_a_crash_in_native_code_prints_where_each_thread_was():
    """A segfault in rclpy, torch or mujoco under `bremen` leaves the Python stacks on stderr."""
    import subprocess
    import sys

    crash = (
        "import ctypes, sys\n"
        "from bremen_robot import cli\n"
        "parser = cli.build_parser\n"
        "class Crashing:\n"
        "    def parse_args(self, argv):\n"
        "        args = parser().parse_args(argv)\n"
        "        args.func = lambda args: ctypes.string_at(0)\n"
        "        return args\n"
        "cli.build_parser = Crashing\n"
        "sys.exit(cli.main(['policies']))\n"
    )
    proc = subprocess.run([sys.executable, "-c", crash], capture_output=True, text=True, timeout=120)
    assert proc.returncode == -11
    assert "Fatal Python error: Segmentation fault" in proc.stderr
    assert "in <lambda>" in proc.stderr  # the frame that crashed, by name
