"""Rendering episodes to GIF on a headless machine (MuJoCo offscreen GL, PyBullet CPU renderer)."""

from __future__ import annotations

import numpy as np
import pytest

import sim
from sim.errors import SimError


def _mujoco_gl_works() -> str | None:
    """None if MuJoCo can render offscreen here, else the reason."""
    try:
        env = sim.make("hopper", backend="mujoco", render_mode="rgb_array", width=32, height=24)
        env.reset(seed=0)
        env.render()
        env.close()
    except SimError as exc:
        return str(exc)
    return None


def _gif_frames(path):
    import imageio.v2 as imageio

    return [np.asarray(f) for f in imageio.mimread(path)]


@pytest.mark.parametrize("backend", ["mujoco", "pybullet"])
def test_render_episode_writes_an_animated_gif(backend, tmp_path):
    if backend == "mujoco":
        reason = _mujoco_gl_works()
        if reason is not None:
            pytest.skip(f"no offscreen OpenGL for MuJoCo on this machine: {reason}")
    path = sim.render_episode(
        "halfcheetah",
        tmp_path / "ep.gif",
        backend=backend,
        max_steps=12,
        every=3,
        width=96,
        height=72,
        policy=lambda obs: np.sin(np.arange(6) + obs[0]),
    )
    frames = _gif_frames(path)
    assert len(frames) == 5  # the reset frame + one every 3 of 12 steps
    assert frames[0].shape[:2] == (72, 96)
    assert frames[0].std() > 5  # not a blank image
    assert any(np.abs(f.astype(int) - frames[0].astype(int)).mean() > 0.5 for f in frames[1:])  # it moves


def test_pybullet_renders_the_arm_and_its_goal(tmp_path):
    env = sim.make("panda", backend="pybullet", render_mode="rgb_array", width=80, height=60)
    env.reset(seed=0)
    img = env.render()
    assert img.shape == (60, 80, 3) and img.dtype == np.uint8
    green = (img[:, :, 1] > 150) & (img[:, :, 0] < 100) & (img[:, :, 2] < 100)
    assert green.any()  # the goal marker is drawn
    env.close()


def test_render_needs_rgb_array_mode_and_a_known_format(tmp_path):
    with pytest.raises(SimError, match="rgb_array"):
        sim.make("hopper", render_mode="human")
    env = sim.make("hopper", backend="pybullet")
    with pytest.raises(SimError, match="render_mode='rgb_array'"):
        sim.render_episode(env, tmp_path / "x.gif")
    env.close()
    with pytest.raises(SimError, match="use .gif or .mp4"):
        sim.render_episode("hopper", tmp_path / "x.avi", backend="pybullet", max_steps=1)
