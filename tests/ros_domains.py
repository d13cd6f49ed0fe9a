"""ROS_DOMAIN_IDs for tests that start DDS participants.

``make test`` runs the suite on several pytest-xdist workers at once (docs/testing.md), each a
process of its own that draws its own random domains. Drawn from one range they would collide
now and then (1 in 100 per pair for a range of 100), and two live graphs on one domain hear each
other's commands. So each worker draws only from its own residue class of the range: workers of
one run never share a domain, and other runs on the machine are still kept apart by the
random draw."""

from __future__ import annotations

import os
import random


def worker_slot() -> tuple[int, int]:
    """This process's (worker index, worker count) under pytest-xdist; (0, 1) without it."""
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or 1)
    name = os.environ.get("PYTEST_XDIST_WORKER", "gw0")  # "gw0", "gw1", ...
    index = int(name[2:]) if name[2:].isdigit() else 0
    return index % count, count


def random_domains(lo: int, hi: int, k: int) -> list[int]:
    """``k`` distinct random domains in ``[lo, hi]`` that no other worker of this test run can draw."""
    index, count = worker_slot()
    mine = [d for d in range(lo, hi + 1) if d % count == index]
    if len(mine) < k:
        raise ValueError(
            f"fewer than {k} ROS domains in [{lo}, {hi}] for worker {index} of {count}; widen the range"
        )
    return random.SystemRandom().sample(mine, k)


def random_domain(lo: int, hi: int) -> int:
    """A random domain in ``[lo, hi]`` that no other worker of this test run can draw."""
    return random_domains(lo, hi, 1)[0]
