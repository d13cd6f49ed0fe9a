"""Every config error reads ``<file>: <field>: <problem>; <fix>`` (issue 15, item 15).

Several config kinds (train preset, campaign, collect, robot, randomization) x several error
kinds (wrong type, missing field, unknown field, out of range, bad choice). The expected lines
are written out here in full.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bremen_robot.campaign.config import load_campaign_config
from bremen_robot.config.train import load_train_config
from bremen_robot.errors import ConfigError
from bremen_robot.robot_config import load_robot_config
from bremen_robot.ros.config import load_collect_config
from sim.errors import SimError
from sim.randomization import load_randomization

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
CAMPAIGN = (
    f"name: c\nrobot: {CONFIGS}/robots/panda.yaml\ncollect: {CONFIGS}/collect/panda-mujoco.yaml\n"
    "train: panda-quick\nsteps_per_deployment: 100\n"
)
ROBOT = "name: r\nsimulated: true\ntask: halfcheetah\njoints: [a]\ncontrol_rate_hz: 20\n"

CASES = [
    # (loader, file text, expected message after "<file>: ")
    (
        load_campaign_config,
        CAMPAIGN + "deployments: five\n",
        "deployments: Input should be a valid integer, unable to parse string as an integer (got 'five'); "
        "set deployments to a whole number like 5",
    ),
    (
        load_campaign_config,
        CAMPAIGN + "deployments: 0\n",
        "deployments: Input should be greater than or equal to 1 (got 0); "
        "set deployments to a value at least 1",
    ),
    (
        load_campaign_config,
        CAMPAIGN.replace("steps_per_deployment: 100\n", "") + "deployments: 3\n",
        "steps_per_deployment: required field is missing; add steps_per_deployment: <value> "
        "(transitions collected per deployment)",
    ),
    (
        load_campaign_config,
        CAMPAIGN + "deployments: 3\nseed: -1\n",
        "seed: Input should be greater than or equal to 0 (got -1); set seed to a value at least 0",
    ),
    (
        load_train_config,
        "seed: 1.5\n",
        "seed: Input should be a valid integer, got a number with a fractional part; "
        "set seed to a whole number like 0",
    ),
    (
        load_train_config,
        "ensemble: {members: 5, membrs: 5}\n",
        "ensemble.membrs: unknown field; remove it or fix its spelling (known fields: batch_size, hidden, "
        "holdout_fraction, lr, max_epochs, members, min_improvement, patience, warm_start, weight_decay)",
    ),
    (
        load_train_config,
        "trpo: 5\n",
        "trpo: Input should be a valid dictionary or instance of TRPOConfig (got 5); "
        "write trpo as a mapping of field: value",
    ),
    (
        load_train_config,
        "device: tpu\n",
        "device: Input should be 'auto', 'cpu' or 'cuda' (got 'tpu'); "
        "set device to one of 'auto', 'cpu' or 'cuda'",
    ),
    (
        load_collect_config,
        f"robot: {CONFIGS}/robots/panda.yaml\nnoise_sigma: -0.1\n",
        "noise_sigma: Input should be greater than or equal to 0 (got -0.1); "
        "set noise_sigma to a value at least 0.0",
    ),
    (
        load_collect_config,
        f"robot: {CONFIGS}/robots/panda.yaml\nlog_topics: joint_states\n",
        "log_topics: Input should be a valid list (got 'joint_states'); "
        "write log_topics as a list like [a, b]",
    ),
    (
        load_robot_config,
        ROBOT + "floating_base: maybe\n",
        "floating_base: Input should be a valid boolean, unable to interpret input (got 'maybe'); "
        "set floating_base to true or false",
    ),
    (
        load_robot_config,
        ROBOT.replace("name: r\n", ""),
        "name: required field is missing; "
        "add name: <value> (robot name; policy manifests must carry the same name)",
    ),
    (
        load_randomization,
        "mass: [0.9, 1.1]\n",
        "mass: unknown field; remove it or fix its spelling (known fields: action_delay, actuator_gain, "
        "control_period_jitter, friction, joint_damping, link_mass, obs_noise_std)",
    ),
]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # was: "steps_per_deployment: required field is missing; add ... (+1 more)", the typo hidden
        (
            CAMPAIGN.replace("steps_per_deployment:", "step_per_deployment:") + "deployments: 3\n",
            "step_per_deployment: unknown field (did you mean 'steps_per_deployment'?); "
            "rename it to steps_per_deployment",
        ),
        # a further mistake is still counted, the typo's missing twin is not
        (
            CAMPAIGN.replace("steps_per_deployment:", "step_per_deployment:") + "deployments: 0\n",
            "step_per_deployment: unknown field (did you mean 'steps_per_deployment'?); "
            "rename it to steps_per_deployment (+1 more)",
        ),
        # an unknown field like no missing one: the first error as before, the other counted
        (
            CAMPAIGN.replace("steps_per_deployment: 100\n", "colour: red\n") + "deployments: 3\n",
            "steps_per_deployment: required field is missing; add steps_per_deployment: <value> "
            "(transitions collected per deployment) (+1 more)",
        ),
    ],
)
def test_a_misspelled_required_field_leads_with_the_typo(tmp_path, text, expected):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_campaign_config(path)
    assert str(info.value) == f"{path}: {expected}"


@pytest.mark.parametrize(("loader", "text", "expected"), CASES)
def test_config_errors_name_file_field_problem_and_fix(tmp_path, loader, text, expected):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises((ConfigError, SimError)) as info:
        loader(path)
    assert str(info.value) == f"{path}: {expected}"


CAMPAIGN_PRESETS = (
    "ant, ant-cpu, halfcheetah, halfcheetah-cpu, halfcheetah-cpu-bc, hopper, hopper-cpu, quickstart, "
    "walker2d, walker2d-cpu"
)
TRAIN_PRESETS = (
    "ant-cpu, ant-paper, halfcheetah-cpu, halfcheetah-cpu-bc, halfcheetah-demo, halfcheetah-paper, "
    "hopper-cpu, hopper-paper, panda-quick, point-demo, walker2d-cpu, walker2d-paper"
)


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        # was: "unknown campaign 'configs/campaign/quickstart.yaml'; presets: ...", never that the
        # file does not exist (the folder is configs/campaigns)
        (
            ["campaign", "--config", "configs/campaign/quickstart.yaml"],
            "no such campaign file 'configs/campaign/quickstart.yaml'; check the path, "
            f"or pass a preset: {CAMPAIGN_PRESETS}",
        ),
        (
            ["campaign", "--config", "quickstart.yml"],
            f"no such campaign file 'quickstart.yml'; check the path, or pass a preset: {CAMPAIGN_PRESETS}",
        ),
        (
            ["campaign", "--config", "quikstart"],
            f"unknown campaign preset 'quikstart'; presets: {CAMPAIGN_PRESETS}",
        ),
        (
            ["campaign", "--config", str(CONFIGS)],
            f"campaign file '{CONFIGS}' is a folder; pass a YAML file, or a preset: {CAMPAIGN_PRESETS}",
        ),
        # was: "unknown preset or missing file '...'"; now as the campaign says it
        (
            ["train", "--config", "configs/train/quick.yaml", "--data", "d.npz", "--out", "o"],
            "no such train config file 'configs/train/quick.yaml'; check the path, "
            f"or pass a preset: {TRAIN_PRESETS}",
        ),
        (
            ["train", "--config", "quick", "--data", "d.npz", "--out", "o"],
            f"unknown train preset 'quick'; presets: {TRAIN_PRESETS}",
        ),
    ],
)
def test_a_missing_config_file_is_not_called_an_unknown_preset(tmp_path, monkeypatch, capsys, argv, expected):
    from bremen_robot.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    assert capsys.readouterr().err.strip() == f"error: {expected}"


def test_a_validator_message_keeps_its_own_fix(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text("trpo: {horizon: 500, steps_per_iteration: 100}\n")
    with pytest.raises(ConfigError) as info:
        load_train_config(path)
    assert str(info.value) == (
        f"{path}: trpo: steps_per_iteration (100) must be >= horizon (500); "
        "raise the batch or shorten the horizon"
    )


def test_a_binary_file_is_not_a_decoding_crash(tmp_path):
    path = tmp_path / "b.yaml"
    path.write_bytes(b"\xff\xfe\x00\x81 binary")
    with pytest.raises(ConfigError) as info:
        load_train_config(path)
    assert str(info.value) == f"{path}: not a text file (not UTF-8); pass a YAML config file"


@pytest.mark.parametrize(
    ("text", "field", "example"),
    [
        ("bc: {hidden: [0]}\n", "bc.hidden", "[200, 200]"),
        ("bc: {hidden: [200, -3]}\n", "bc.hidden", "[200, 200]"),
        ("trpo: {value: mlp, value_hidden: [0]}\n", "trpo.value_hidden", "[64, 64]"),
    ],
)
def test_every_layer_width_must_be_positive(tmp_path, text, field, example):
    """A zero width builds a network whose output is its last bias (a BC policy that ignores the
    state, silently); a negative one crashed in torch minutes into training."""
    path = tmp_path / "t.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_train_config(path)
    assert str(info.value) == (
        f"{path}: {field}: hidden widths must be positive integers, e.g. {example}; "
        f"set {field} to a valid value ("
        + {"bc.hidden": "policy hidden widths (ReLU)", "trpo.value_hidden": "MLP baseline widths"}[field]
        + ")"
    )


@pytest.mark.parametrize(
    ("loader", "text", "field"),
    [
        (load_train_config, "trpo: {max_kl: .inf}\n", "trpo.max_kl"),
        (load_train_config, "ensemble: {weight_decay: .nan}\n", "ensemble.weight_decay"),
        (load_campaign_config, CAMPAIGN + "deployments: 3\nexploration_sigma: .inf\n", "exploration_sigma"),
        (load_collect_config, f"robot: {CONFIGS}/robots/panda.yaml\nnoise_sigma: .inf\n", "noise_sigma"),
    ],
)
def test_inf_or_nan_is_never_a_setting(tmp_path, loader, text, field):
    """They validated (an infinite trust region trained to the end, exit 0)."""
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        loader(path)
    assert str(info.value).startswith(f"{path}: {field}: Input should be a finite number")
    assert "\n" not in str(info.value)
