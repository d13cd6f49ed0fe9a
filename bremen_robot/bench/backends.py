"""Bench section: simulation backend throughput per engine and robot.

* ``backend_steps_per_s``: ``{"<robot>/<backend>": control steps per second}`` of
  ``RobotBackend.apply`` + ``step`` (frame_skip physics steps each) under uniform random commands;
* ``env_steps_per_s``: the same through the Gymnasium env (observation building, task reward and
  termination included), what data collection pays per step.

Each figure is the best of 3 timed windows after a warm-up, so a neighbour's burst of load on a
shared machine shows up less. ``sim`` is imported inside :func:`run`; without the sim extra the
section is skipped.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

TITLE = "simulation backends"
ORDER = 30


def _rate(fn: Callable[[], None], seconds: float) -> float:
    """Calls per second of ``fn``: best of 3 windows of ``seconds / 3`` each."""
    fn()  # warm-up
    best = 0.0
    for _ in range(3):
        n, t0 = 0, time.perf_counter()
        while True:
            for _ in range(10):
                fn()
            n += 10
            dt = time.perf_counter() - t0
            if dt >= seconds / 3:
                break
        best = max(best, n / dt)
    return best


def _backend_rate(robot: str, engine: str, seconds: float) -> float:
    from sim.backends import create_backend

    rng = np.random.default_rng(0)
    b = create_backend(robot, engine)
    b.reset(0)
    low, high = np.maximum(b.command_low, -1.0), np.minimum(b.command_high, 1.0)
    steps = 0

    def backend_step() -> None:
        nonlocal steps
        b.apply(rng.uniform(low, high))
        b.step()
        steps += 1
        if steps % 200 == 0:  # stay near the reset state (falls and flips slow some engines)
            b.reset(steps)

    try:
        return _rate(backend_step, seconds)
    finally:
        b.close()


def _env_rate(robot: str, engine: str, seconds: float) -> float:
    import sim

    env = sim.make(robot, backend=engine, seed=0)
    env.reset(seed=0)
    env.action_space.seed(0)

    def env_step() -> None:
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        if terminated or truncated:
            env.reset()

    try:
        return _rate(env_step, seconds)
    finally:
        env.close()


def run(quick: bool) -> dict[str, object]:
    import sim

    seconds = 0.35 if quick else 2.0
    backend_rates: dict[str, float] = {}
    env_rates: dict[str, float] = {}
    for robot in sim.robot_names():
        for engine in sim.backend_names():
            key = f"{robot}/{engine}"
            backend_rates[key] = round(_backend_rate(robot, engine, seconds), 1)
            env_rates[key] = round(_env_rate(robot, engine, seconds), 1)
    return {"backend_steps_per_s": backend_rates, "env_steps_per_s": env_rates}
