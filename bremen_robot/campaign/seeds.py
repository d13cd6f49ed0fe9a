"""Which seed each of a campaign's simulated runs starts from (``seed_layout`` in the campaign
config; docs/architecture.md, "A campaign's seeds").

Every collection, twin check, shadow run and evaluation resets its simulator with a base seed
plus the episode's index (``sim_bridge``, ``real_rollout``, ``sim2real``: ``base + episode``), so
two runs share start states exactly when their ranges ``[base, base + episodes)`` overlap.

* ``spaced`` (the default): the base is the campaign seed and a stream number packed into
  separate bits, ``seed << 36 | stream << 28 | robot << 20``. Each run owns a block of 2**20
  episode seeds, and no two runs' blocks meet: deployment k's collection is stream k, the twin
  check and shadow run of deployment k's candidate stream 64 + k, every evaluation stream 128
  (one set of start states for every policy evaluated, so their returns compare). A fleet
  robot's share is its own block (``robot`` = its index in the fleet).
* ``sliding``: ``seed * 1000 + k`` for deployment k's collection, ``seed * 1000 + 500 + k``
  for its twin check and shadow run, ``seed`` for the random policy's evaluation and
  ``seed + 7`` for every candidate's, and ``base * 100 + i`` for fleet robot i. Deployment
  k + 1's episode j then starts where deployment k's episode j + 1 did, and for seed 0 the
  evaluation's start states are among the first deployment's. The layout of campaigns made
  before 2026-12-07, kept so that their workspaces resume with the seeds they were collected
  with (the issue-16 suite's ``-cpu`` campaigns name it).
"""

from __future__ import annotations

from typing import Literal

SeedLayout = Literal["spaced", "sliding"]

EPISODE_BITS = 20  # episode seeds per run (and per fleet robot): 1,048,576
ROBOT_BITS = 8  # fleet robots per run
STREAM_BITS = 8  # runs per campaign seed
TWIN_STREAM = 64  # + k: the twin check and the shadow run of deployment k's candidate
EVALUATION_STREAM = 128
MAX_STREAM_DEPLOYMENT = TWIN_STREAM - 1  # deployments whose streams stay apart (the config allows 50)
MAX_FLEET = 2**ROBOT_BITS  # robots whose shares of a collection stay apart (the config's limit)


def _spaced(seed: int, stream: int) -> int:
    if not 0 <= stream < 2**STREAM_BITS:
        raise ValueError(f"stream {stream} is outside 0..{2**STREAM_BITS - 1}")
    return (seed << (STREAM_BITS + ROBOT_BITS + EPISODE_BITS)) | (stream << (ROBOT_BITS + EPISODE_BITS))


def collection_seed(seed: int, k: int, layout: SeedLayout) -> int:
    """Base reset seed of deployment ``k``'s collection (its episodes add their index)."""
    _check_deployment(k)
    return seed * 1000 + k if layout == "sliding" else _spaced(seed, k)


def twin_seed(seed: int, k: int, layout: SeedLayout) -> int:
    """Base seed of the twin check of deployment ``k``'s training and of its candidate's shadow
    run (both run the candidate beside the deployed policy, in simulation)."""
    _check_deployment(k)
    return seed * 1000 + 500 + k if layout == "sliding" else _spaced(seed, TWIN_STREAM + k)


def evaluation_seed(seed: int, layout: SeedLayout, *, random_policy: bool) -> int:
    """Base seed of a policy's evaluation; ``random_policy``: the uniform random policy's."""
    if layout == "sliding":
        return seed if random_policy else seed + 7
    return _spaced(seed, EVALUATION_STREAM)


def fleet_robot_seed(base: int, index: int, layout: SeedLayout) -> int:
    """Base seed of fleet robot ``index``'s share of a collection whose base seed is ``base``."""
    if not 0 <= index < MAX_FLEET:
        raise ValueError(f"a fleet has at most {MAX_FLEET} robots (index {index})")
    return base * 100 + index if layout == "sliding" else base + (index << EPISODE_BITS)


RETRY_BITS = 16  # a fleet robot's retried share starts 2**16 episode seeds after the one before
MAX_RETRIES = 2 ** (EPISODE_BITS - RETRY_BITS) - 1


def retry_seed(base: int, attempt: int, layout: SeedLayout) -> int:
    """Base seed of a fleet robot's ``attempt``-th retry of its share (0: the first try), so a
    retry never replays the episodes an earlier try kept. Spaced: inside the robot's own block,
    2**16 episodes per try; sliding: ``base + 7919 * attempt``, as before."""
    if layout == "sliding":
        return base + 7919 * attempt
    if not 0 <= attempt <= MAX_RETRIES:
        raise ValueError(
            f"{attempt} retries of one robot's share is more than its seed block holds ({MAX_RETRIES}); "
            "start the round again under a new campaign seed"
        )
    return base + (attempt << RETRY_BITS)


def _check_deployment(k: int) -> None:
    if not 1 <= k <= MAX_STREAM_DEPLOYMENT:
        raise ValueError(f"deployment {k} is outside 1..{MAX_STREAM_DEPLOYMENT}")
