"""How long one deployment's training takes with a preset on this machine (a measurement, not a test).

Runs the trainer's own stages on one deployment's dataset, with the preset's settings, on
``--device`` (``auto``: CUDA when present):

* the dynamics ensemble fit, in full (the preset's ``max_epochs`` with its early stopping);
* behavior cloning for ``--bc-steps`` steps and TRPO for ``--trpo-iterations`` iterations, both
  timed and scaled linearly to the preset's full counts (each step/iteration does the same work);
* then, unless ``--no-export``, ``bremen_robot.trainer.train`` end to end with tiny counts, so the
  export of a policy trained on this device is exercised too.

It writes a JSON with the measured stage times and ``deployment_hours``: the measured ensemble
time plus the scaled BC and TRPO times. ``deployment_hours_upper`` assumes all ``max_epochs``
ensemble epochs run. The JSON is rewritten after every stage, so a run cut short keeps what it
measured.

    python benchmarks/gpu_deployment_time.py --data d1.npz --config halfcheetah-paper \\
        --bc-steps 20000 --trpo-iterations 40 --json gpu.json
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from reproduce import apply_overrides  # benchmarks/ is on sys.path when run as a script

from bremen_robot.config.train import load_train_config
from bremen_robot.data.dataset import Dataset
from bremen_robot.progress import Reporter
from bremen_robot.rl.behavior import BehaviorAnchor
from bremen_robot.tasks import get_task
from bremen_robot.trainer import (
    behavior_data,
    clone_behavior,
    fit_dynamics,
    model_env_for,
    resolve_device,
    run_trpo,
    train,
    trpo_start_policy,
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, required=True, help="one deployment's dataset (.npz)")
    p.add_argument("--config", default="halfcheetah-paper", help="training preset or YAML path")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    p.add_argument("--bc-steps", type=int, default=20_000, help="BC steps timed (scaled to the preset's)")
    p.add_argument("--trpo-iterations", type=int, default=40, help="TRPO iterations timed (scaled likewise)")
    p.add_argument("--max-epochs", type=int, default=None, help="cap the ensemble's epochs (default: preset)")
    p.add_argument("--no-export", action="store_true", help="skip the tiny end-to-end train() with export")
    p.add_argument("--json", type=Path, required=True, help="where to write the figures")
    args = p.parse_args(argv)
    for name in ("bc_steps", "trpo_iterations"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1")
    return args


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def measure(args: argparse.Namespace) -> dict[str, Any]:
    full = load_train_config(args.config)
    cfg = apply_overrides(full, {"device": args.device})
    if args.max_epochs is not None:
        cfg = apply_overrides(cfg, {"ensemble.max_epochs": args.max_epochs})
    data = Dataset.load(args.data)
    task = get_task(cfg.task or data.task)
    data.validate(task)
    device = resolve_device(cfg.device)
    out: dict[str, Any] = {
        "config": args.config,
        "device": _device_name(device),
        "torch": torch.__version__,
        "transitions": len(data),
        "data_digest": data.digest(),
        "bc_steps_full": full.bc.steps,
        "trpo_iterations_full": full.trpo.iterations,
        "trpo_steps_per_iteration": full.trpo.steps_per_iteration,
    }

    def dump() -> None:
        args.json.write_text(json.dumps(out, indent=1))

    dump()
    torch.manual_seed(cfg.seed)
    gen = torch.Generator(device=device).manual_seed(cfg.seed)
    quiet = Reporter(enabled=False)

    t = time.perf_counter()
    ensemble, hist = fit_dynamics(cfg, task, data, gen, device, None, quiet)
    _sync(device)
    out["ensemble_s"] = time.perf_counter() - t
    out["ensemble_epochs"] = hist.epochs
    out["ensemble_max_epochs"] = full.ensemble.max_epochs
    out["ensemble_s_per_epoch"] = out["ensemble_s"] / max(hist.epochs, 1)
    out["ensemble_best_holdout_mse"] = [float(x) for x in hist.best_holdout_mse]
    dump()

    bc_cfg = apply_overrides(cfg, {"bc.steps": args.bc_steps})
    bc_data = behavior_data(bc_cfg, data)
    t = time.perf_counter()
    bc, _ = clone_behavior(bc_cfg, bc_data, task, gen, device)
    _sync(device)
    out["bc_s_measured"] = time.perf_counter() - t
    out["bc_steps_measured"] = args.bc_steps
    out["bc_s_full"] = out["bc_s_measured"] * full.bc.steps / args.bc_steps
    dump()

    trpo_cfg = apply_overrides(cfg, {"trpo.iterations": args.trpo_iterations})
    env = model_env_for(trpo_cfg, task, ensemble, data, gen)
    policy = trpo_start_policy(bc, trpo_cfg)
    bc.requires_grad_(False)
    anchor = BehaviorAnchor.from_data(bc, bc_data.obs, bc_data.actions)
    t = time.perf_counter()
    stats = run_trpo(policy, env, trpo_cfg, gen, bc, quiet, anchor=anchor)
    _sync(device)
    out["trpo_s_measured"] = time.perf_counter() - t
    out["trpo_iterations_measured"] = args.trpo_iterations
    out["trpo_s_per_iteration"] = out["trpo_s_measured"] / args.trpo_iterations
    out["trpo_s_full"] = out["trpo_s_per_iteration"] * full.trpo.iterations
    out["imagined_steps_per_s"] = full.trpo.steps_per_iteration / out["trpo_s_per_iteration"]
    returns = stats.get("imagined_return") or [float("nan")]
    out["trpo_imagined_return_last"] = float(returns[-1])
    rest = out["bc_s_full"] + out["trpo_s_full"]
    out["deployment_hours"] = (out["ensemble_s"] + rest) / 3600
    out["deployment_hours_upper"] = (out["ensemble_s_per_epoch"] * full.ensemble.max_epochs + rest) / 3600
    dump()

    if not args.no_export:
        small = {"ensemble.max_epochs": 2, "bc.steps": 1000, "trpo.iterations": 2}
        tiny = apply_overrides(cfg, {**small, "trpo.steps_per_iteration": 5000})
        with tempfile.TemporaryDirectory() as tmp:
            t = time.perf_counter()
            result = train(tiny, data, Path(tmp) / "artifact")
            out["export_check_s"] = time.perf_counter() - t
            sha, where = result.manifest.policy_sha256[:12], result.report["timing"]["device"]
            out["export_check"] = f"ok: artifact {sha} on {where}"
        dump()
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out = measure(args)
    for key, value in out.items():
        if not isinstance(value, list):
            print(f"{key}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
