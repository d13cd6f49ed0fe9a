"""One deployment's TD3+BC training with d3rlpy, for the recursive model-free baseline.

Runs inside ``benchmarks/.venv-d3rlpy`` (made by ``benchmarks/setup_d3rlpy.sh``), never in the
project's venv: d3rlpy pins ``gymnasium==1.0.0``. It imports nothing from ``bremen_robot``; it
reads the project's dataset ``.npz`` files (columns obs, actions, rewards, next_obs, terminals,
timeouts, episode_ids) and writes the trained deterministic actor as plain arrays::

    weights.npz   hidden_W<i>, hidden_b<i> (ReLU layers), out_W, out_b (tanh output), obs_mean,
                  obs_scale (= std + eps, the divisor d3rlpy uses), action_low, action_high,
                  probe_obs, probe_actions (d3rlpy's own predict() on dataset states, for the
                  parity check on the other side), info (JSON string)

so the action is ``low + (tanh(out(relu(...relu(W0 (obs - mean) / scale)))) + 1) / 2 * (high - low)``,
which is exactly the mean of ``bremen_robot.policy.gaussian.GaussianPolicy``. The project's venv
(``benchmarks/reproduce.py``) rebuilds that policy and exports a regular frozen artifact.

The file is written atomically; its presence means the step is done.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

CHUNK_STEPS = 1_000  # steps added at a time while a --min-seconds budget is not used up


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Train TD3+BC (d3rlpy) on all data so far and write the actor's weights as .npz.",
    )
    p.add_argument(
        "--data", type=Path, nargs="+", required=True, help="dataset .npz files (one per deployment)"
    )
    p.add_argument("--out", type=Path, required=True, help="weights .npz to write (atomically)")
    p.add_argument("--steps", type=int, default=100_000, help="gradient steps, at least (default 100000)")
    p.add_argument(
        "--min-seconds",
        type=float,
        default=0.0,
        help="then go on, in chunks of 1,000 steps, until the fit has taken at least this long "
        "(a wall-time budget; default 0: exactly --steps)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed for d3rlpy/torch/numpy")
    p.add_argument("--action-low", type=float, nargs="+", required=True, help="lower action bound per entry")
    p.add_argument("--action-high", type=float, nargs="+", required=True, help="upper action bound per entry")
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    p.add_argument("--device", default="cpu", help="torch device for d3rlpy (cpu, cuda:0)")
    p.add_argument("--batch-size", type=int, default=256, help="minibatch size (TD3+BC paper: 256)")
    p.add_argument("--alpha", type=float, default=2.5, help="TD3+BC alpha (paper: 2.5)")
    p.add_argument("--hidden", type=int, nargs="+", default=[256, 256], help="actor/critic widths")
    return p.parse_args(argv)


def to_d3rlpy_arrays(paths: list[Path]) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """Our transition rows -> d3rlpy's per-episode observation sequences.

    d3rlpy reads ``next_obs`` from the following row of the same episode. An episode that ended
    by termination keeps its rows (the last transition bootstraps from nothing); one cut by a
    time limit or by the collection budget gets its final ``next_obs`` appended as an extra row
    flagged ``timeouts``, so none of our transitions is dropped.
    """
    obs_l, act_l, rew_l, term_l, tout_l = [], [], [], [], []
    mismatch = 0.0
    transitions = 0
    for path in paths:
        with np.load(path, allow_pickle=False) as z:
            obs = z["obs"].astype(np.float32)
            nxt = z["next_obs"].astype(np.float32)
            act = z["actions"].astype(np.float32)
            rew = z["rewards"].astype(np.float32)
            term = z["terminals"].astype(bool)
            ep = z["episode_ids"]
        order = np.argsort(ep, kind="stable")  # episodes contiguous, rows in time order
        obs, nxt, act, rew, term, ep = obs[order], nxt[order], act[order], rew[order], term[order], ep[order]
        starts = np.flatnonzero(np.r_[True, ep[1:] != ep[:-1]])
        ends = np.r_[starts[1:], len(ep)]
        for i, j in zip(starts, ends):
            n = j - i
            transitions += n
            if n > 1:
                mismatch = max(mismatch, float(np.abs(nxt[i : j - 1] - obs[i + 1 : j]).max()))
            o, a, r = obs[i:j], act[i:j], rew[i:j]
            t = np.zeros(n, np.float32)
            to = np.zeros(n, np.float32)
            if term[j - 1]:
                t[-1] = 1.0
            else:
                o = np.concatenate([o, nxt[j - 1 : j]])
                a = np.concatenate([a, np.zeros_like(a[:1])])
                r = np.concatenate([r, np.zeros_like(r[:1])])
                t = np.r_[t, np.float32(0)]
                to = np.r_[to, np.float32(1)]
            obs_l.append(o)
            act_l.append(a)
            rew_l.append(r)
            term_l.append(t)
            tout_l.append(to)
    arrays = {
        "observations": np.concatenate(obs_l),
        "actions": np.concatenate(act_l),
        "rewards": np.concatenate(rew_l),
        "terminals": np.concatenate(term_l),
        "timeouts": np.concatenate(tout_l),
    }
    stats = {"transitions": float(transitions), "episodes": float(len(obs_l)), "next_obs_mismatch": mismatch}
    return arrays, stats


def actor_arrays(algo: object) -> dict[str, np.ndarray]:
    """The deterministic actor's Linear layers; refuses anything but Linear/ReLU encoders."""
    import torch

    policy = algo.impl.modules.policy  # type: ignore[attr-defined]
    layers = list(policy._encoder._layers)
    out: dict[str, np.ndarray] = {}
    k = 0
    for i, layer in enumerate(layers):
        if isinstance(layer, torch.nn.Linear):
            if i + 1 >= len(layers) or not isinstance(layers[i + 1], torch.nn.ReLU):
                raise SystemExit(f"td3bc_step: actor layer {i} is not followed by ReLU; cannot export")
            out[f"hidden_W{k}"] = layer.weight.detach().cpu().numpy()
            out[f"hidden_b{k}"] = layer.bias.detach().cpu().numpy()
            k += 1
        elif not isinstance(layer, torch.nn.ReLU):
            raise SystemExit(f"td3bc_step: actor has a {type(layer).__name__} layer; only Linear/ReLU export")
    out["out_W"] = policy._fc.weight.detach().cpu().numpy()
    out["out_b"] = policy._fc.bias.detach().cpu().numpy()
    return out


def numpy_actor(w: dict[str, np.ndarray], obs: np.ndarray) -> np.ndarray:
    h = (obs - w["obs_mean"]) / w["obs_scale"]
    k = 0
    while f"hidden_W{k}" in w:
        h = np.maximum(h @ w[f"hidden_W{k}"].T + w[f"hidden_b{k}"], 0.0)
        k += 1
    a = np.tanh(h @ w["out_W"].T + w["out_b"])
    return w["action_low"] + (a + 1.0) / 2.0 * (w["action_high"] - w["action_low"])


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    warnings.filterwarnings("ignore")
    import d3rlpy
    import torch

    torch.set_num_threads(args.threads)
    low = np.asarray(args.action_low, np.float32)
    high = np.asarray(args.action_high, np.float32)
    if low.shape != high.shape or np.any(high <= low):
        print("td3bc_step: --action-low/--action-high must have equal length and low < high", file=sys.stderr)
        return 2
    for path in args.data:
        if not path.is_file():
            print(f"td3bc_step: dataset '{path}' not found", file=sys.stderr)
            return 2
    t0 = time.perf_counter()
    arrays, stats = to_d3rlpy_arrays(list(args.data))
    if arrays["actions"].shape[1] != len(low):
        print(
            f"td3bc_step: data has {arrays['actions'].shape[1]} action entries, bounds have {len(low)}",
            file=sys.stderr,
        )
        return 2
    dataset = d3rlpy.dataset.MDPDataset(
        observations=arrays["observations"],
        actions=arrays["actions"],
        rewards=arrays["rewards"],
        terminals=arrays["terminals"],
        timeouts=arrays["timeouts"],
        action_space=d3rlpy.ActionSpace.CONTINUOUS,
        action_size=len(low),
    )
    # Scalers as in the TD3+BC paper (state z-score, eps 1e-3), fitted here with numpy: d3rlpy's
    # own fit loops over every transition in Python. The action box is the task's.
    real = arrays["timeouts"] == 0  # the appended final rows are not states an action was taken in
    mean = arrays["observations"][real].mean(axis=0).astype(np.float64)
    std = arrays["observations"][real].std(axis=0).astype(np.float64)
    obs_scaler = d3rlpy.preprocessing.StandardObservationScaler(mean=mean, std=std)
    act_scaler = d3rlpy.preprocessing.MinMaxActionScaler(
        minimum=low.astype(np.float64), maximum=high.astype(np.float64)
    )
    d3rlpy.seed(args.seed)
    encoder = d3rlpy.models.encoders.VectorEncoderFactory(hidden_units=list(args.hidden))
    config = d3rlpy.algos.TD3PlusBCConfig(
        actor_learning_rate=3e-4,
        critic_learning_rate=3e-4,
        batch_size=args.batch_size,
        gamma=0.99,
        tau=0.005,
        target_smoothing_sigma=0.2,
        target_smoothing_clip=0.5,
        alpha=args.alpha,
        update_actor_interval=2,
        actor_encoder_factory=encoder,
        critic_encoder_factory=encoder,
        observation_scaler=obs_scaler,
        action_scaler=act_scaler,
    )
    algo = config.create(device=args.device)
    t1 = time.perf_counter()
    fit_kw: dict[str, Any] = dict(
        logger_adapter=d3rlpy.logging.NoopAdapterFactory(), show_progress=False, save_interval=10**9
    )
    history = algo.fit(dataset, n_steps=args.steps, n_steps_per_epoch=min(args.steps, 10_000), **fit_kw)
    steps = args.steps
    while time.perf_counter() - t1 < args.min_seconds:  # a fit continued is the same as a longer one
        history = algo.fit(dataset, n_steps=CHUNK_STEPS, n_steps_per_epoch=CHUNK_STEPS, **fit_kw)
        steps += CHUNK_STEPS
    t2 = time.perf_counter()
    weights = actor_arrays(algo)
    weights["obs_mean"] = mean.astype(np.float32)
    weights["obs_scale"] = (std + obs_scaler.eps).astype(np.float32)
    weights["action_low"], weights["action_high"] = low, high
    rng = np.random.default_rng(args.seed)
    probe = arrays["observations"][real][
        rng.choice(int(real.sum()), size=min(256, int(real.sum())), replace=False)
    ]
    weights["probe_obs"] = probe.astype(np.float32)
    weights["probe_actions"] = algo.predict(probe.astype(np.float32)).astype(np.float32)
    parity = float(np.abs(numpy_actor(weights, probe.astype(np.float64)) - weights["probe_actions"]).max())
    if parity > 1e-4:
        print(
            f"td3bc_step: exported actor differs from d3rlpy's predict by {parity:.2e}; not writing",
            file=sys.stderr,
        )
        return 1
    last = history[-1][1] if history else {}
    info = {
        "algorithm": "TD3+BC",
        "library": f"d3rlpy {d3rlpy.__version__}",
        "torch": torch.__version__,
        "steps": steps,
        "min_steps": args.steps,
        "min_seconds": args.min_seconds,
        "seed": args.seed,
        "batch_size": args.batch_size,
        "alpha": args.alpha,
        "hidden": list(args.hidden),
        "data": [str(p) for p in args.data],
        "data_stats": stats,
        "parity_max_abs": parity,
        "last_epoch_metrics": {k: float(v) for k, v in last.items()},
        "timing": {"prepare_s": t1 - t0, "fit_s": t2 - t1, "step_ms": 1000 * (t2 - t1) / max(steps, 1)},
    }
    weights["info"] = np.array(json.dumps(info))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=args.out.parent, prefix=f".{args.out.stem}.", suffix=".npz")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **weights)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, args.out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    print(json.dumps({"out": str(args.out), **info["timing"], "parity_max_abs": parity, **stats}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
