"""Render an episode to a GIF (or MP4) on a headless machine.

MuJoCo renders offscreen through EGL or OSMesa (chosen in :mod:`sim._gl` before ``mujoco`` is
imported; set ``MUJOCO_GL`` to override); PyBullet uses its built-in CPU renderer
(``ER_TINY_RENDERER``), which needs no OpenGL at all.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sim.env import BremenSimEnv, make
from sim.errors import SimError

Policy = Callable[[np.ndarray], np.ndarray]


def write_video(frames: Sequence[np.ndarray], path: Path, fps: float) -> Path:
    """Write RGB frames to ``.gif`` (Pillow via imageio) or ``.mp4`` (needs imageio-ffmpeg)."""
    import imageio.v2 as imageio

    path = Path(path)
    images: list[Any] = [np.asarray(f, dtype=np.uint8) for f in frames]
    if not images:
        raise SimError("no frames to write; the episode ended before the first step")
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix.lower()
    if suffix == ".gif":
        imageio.mimsave(path, images, duration=1000.0 / fps, loop=0)
    elif suffix == ".mp4":
        try:
            imageio.mimsave(path, images, fps=fps, macro_block_size=1)
        except (ImportError, ValueError, RuntimeError) as exc:
            raise SimError(f"cannot write MP4 ({exc}); pip install imageio-ffmpeg or write a .gif") from None
    else:
        raise SimError(f"unsupported video format '{suffix}'; use .gif or .mp4")
    return path


def render_episode(
    env: BremenSimEnv | str,
    path: str | Path,
    policy: Policy | None = None,
    *,
    backend: str = "mujoco",
    seed: int = 0,
    max_steps: int | None = None,
    every: int = 1,
    width: int = 320,
    height: int = 240,
    **make_kwargs: Any,
) -> Path:
    """Roll out ``policy`` (default: zero action) for one episode and write it to ``path``.

    ``env`` is an env made with ``render_mode="rgb_array"`` or a robot name (then ``backend`` and
    ``make_kwargs`` build one). ``every`` keeps one frame in ``every`` control steps.
    """
    own = isinstance(env, str)
    if isinstance(env, str):
        env = make(env, backend=backend, render_mode="rgb_array", width=width, height=height, **make_kwargs)
    if env.render_mode != "rgb_array":
        raise SimError("render_episode needs an env made with render_mode='rgb_array'")
    try:
        obs, _ = env.reset(seed=seed)
        frames = [np.asarray(env.render())]
        steps = max_steps if max_steps is not None else env.task.max_episode_steps
        for t in range(steps):
            action = policy(obs) if policy is not None else np.zeros(env.task.action_dim)
            obs, _, terminated, truncated, _ = env.step(action)
            if (t + 1) % every == 0:
                frames.append(np.asarray(env.render()))
            if terminated or truncated:
                break
        return write_video(frames, Path(path), fps=env.metadata["render_fps"] / every)
    finally:
        if own:
            env.close()
