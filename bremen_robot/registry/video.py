"""The review page's video: the candidate and the deployed policy, one episode each, side by side.

Rendered offscreen with MuJoCo (``sim`` picks EGL or OSMesa, see :mod:`sim._gl`) in the
environment the campaign evaluated in, same seed for both, and encoded as WebM (VP9, through
imageio-ffmpeg) so any browser plays it from a data URI. When rendering is impossible (no
OpenGL, no ffmpeg, an environment that is not a ``sim:`` one) :func:`side_by_side` returns the
reason in one line instead of a broken video.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

Act = Callable[[np.ndarray], np.ndarray]

MAX_FRAMES = 150  # 7.5 s at the Panda's 20 Hz: one reach episode, a page of a few hundred kB
WIDTH, HEIGHT = 256, 192


@dataclass(frozen=True)
class Video:
    """A rendered video (``data`` WebM bytes) or why there is none (``reason``)."""

    data: bytes | None
    reason: str = ""
    frames: int = 0
    fps: float = 0.0


def policy_act(
    artifact: Path | None,
    env_spec: str,
    seed: int,
    expect_sha256: str | None = None,
    expect_manifest_digest: str | None = None,
) -> Act:
    """The artifact's mean action, or the uniform random policy when ``artifact`` is None.
    ``expect_*``: the registry's record of a stored artifact, compared with the bytes before torch
    parses them (``load_artifact``), so a review never shows a policy other than the record's."""
    if artifact is None:
        from bremen_robot.data.real_rollout import task_for_env_spec, uniform_policy

        return uniform_policy(task_for_env_spec(env_spec), np.random.default_rng(seed))
    from bremen_robot.policy.artifact import load_artifact

    return load_artifact(
        artifact, expect_sha256=expect_sha256, expect_manifest_digest=expect_manifest_digest
    ).act


def _episode(env: Any, act: Act, seed: int, max_frames: int) -> list[np.ndarray]:
    obs, _ = env.reset(seed=seed)
    frames = [np.asarray(env.render(), dtype=np.uint8)]
    while len(frames) < max_frames:
        obs, _, terminated, truncated, _ = env.step(act(obs))
        frames.append(np.asarray(env.render(), dtype=np.uint8))
        if terminated or truncated:
            break
    return frames


def encode_webm(frames: list[np.ndarray], fps: float) -> bytes:
    """VP9 WebM bytes of RGB frames (imageio-ffmpeg's bundled ffmpeg)."""
    import imageio.v2 as imageio

    with tempfile.TemporaryDirectory(prefix="bremen-review-") as tmp:
        path = Path(tmp) / "v.webm"
        w = imageio.get_writer(
            path,
            format="FFMPEG",  # type: ignore[arg-type]
            fps=fps,
            codec="libvpx-vp9",
            macro_block_size=1,
            output_params=["-b:v", "0", "-crf", "40", "-deadline", "realtime", "-cpu-used", "8"],
        )
        try:
            for f in frames:
                w.append_data(f)
        finally:
            w.close()
        return path.read_bytes()


def side_by_side(
    env_spec: str,
    left: Act,
    right: Act | None,
    seed: int = 0,
    max_frames: int = MAX_FRAMES,
) -> Video:
    """One episode of ``left`` (and of ``right`` beside it, same seed) in ``env_spec``'s simulator."""
    if not env_spec.startswith("sim:"):
        return Video(None, f"no video: the evaluation environment '{env_spec}' is not a MuJoCo simulator")
    robot, _, backend = env_spec[4:].partition("/")
    if (backend or "mujoco") != "mujoco":
        return Video(None, f"no video: the evaluation ran in {backend}, and the page renders MuJoCo only")
    try:
        import sim

        env = sim.make(robot, backend="mujoco", render_mode="rgb_array", width=WIDTH, height=HEIGHT)
    except Exception as exc:  # missing mujoco, unknown robot: the page says so in one line
        return Video(None, f"no video: cannot make {env_spec} ({type(exc).__name__}: {str(exc)[:120]})")
    try:
        fps = float(env.metadata.get("render_fps", 20))
        a = _episode(env, left, seed, max_frames)
        b = _episode(env, right, seed, max_frames) if right is not None else []
    except Exception as exc:  # no OpenGL: MuJoCo's offscreen renderer fails at the first frame
        return Video(None, f"no video: rendering failed ({type(exc).__name__}: {str(exc)[:160]})")
    finally:
        env.close()
    frames = a
    if b:
        n = max(len(a), len(b))
        a += [a[-1]] * (n - len(a))
        b += [b[-1]] * (n - len(b))
        gap = np.full((HEIGHT, 4, 3), 255, dtype=np.uint8)
        frames = [np.concatenate([x, gap, y], axis=1) for x, y in zip(a, b, strict=True)]
    try:
        data = encode_webm(frames, fps)
    except Exception as exc:  # ffmpeg missing or without VP9
        return Video(None, f"no video: WebM encoding failed ({type(exc).__name__}: {str(exc)[:160]})")
    return Video(data, "", len(frames), fps)
