"""Ingest never makes transitions from shadow data: a bag with the shadow streams ingests to
exactly what the same bag without them gives."""

from __future__ import annotations

import numpy as np

from bremen_robot.data.bag_ingest import ingest_bags
from bremen_robot.ros import topics as T
from bremen_robot.ros.bagfile import SegmentedBagWriter, typestore
from tests.ros.test_ingest import _header, _ser, write_episode

F64 = "std_msgs/msg/Float64MultiArray"
DIAG = "diagnostic_msgs/msg/DiagnosticArray"


def _shadow_messages(w, eid: int, n: int, t0_ns: int) -> None:
    """Shadow commands, raw actions and interventions for every step of the episode, tagged like
    the acting runner's (same states), with values the acting runner never sent."""
    t = typestore().types
    for k in range(n):
        tag = T.make_tag(eid, t0_ns + k * 5 * 10**7)
        dim = t["std_msgs/msg/MultiArrayDimension"](label=tag, size=6, stride=6)
        arr = t[F64](
            layout=t["std_msgs/msg/MultiArrayLayout"](dim=[dim], data_offset=0), data=np.full(6, 7.0)
        )
        for topic in (T.SHADOW_COMMAND, T.SHADOW_RAW_ACTION):
            w.write("/" + topic, F64, t0_ns + 5 + k, _ser(arr, F64))
        status = t["diagnostic_msgs/msg/DiagnosticStatus"](
            level=1, name="bremen/safety/clipped_box", message="", hardware_id="", values=[]
        )
        diag = t[DIAG](header=_header(typestore(), 0, tag), status=[status])
        w.write("/" + T.SHADOW_SAFETY, DIAG, t0_ns + 6 + k, _ser(diag, DIAG))


def _bag(path, shadow: bool):
    w = SegmentedBagWriter(path, {"bremen.task": "halfcheetah", "bremen.mode": "lockstep"})
    if shadow:
        _shadow_messages(w, 1, 8, 10**9)
    write_episode(w, 1, n=8, scramble=False)
    w.close()


def test_shadow_streams_change_nothing_that_ingest_returns(tmp_path):
    _bag(tmp_path / "plain", shadow=False)
    _bag(tmp_path / "shadow", shadow=True)
    plain = ingest_bags([tmp_path / "plain"], "halfcheetah")
    shadow = ingest_bags([tmp_path / "shadow"], "halfcheetah")
    assert len(plain["obs"]) == 8
    for col in ("obs", "actions", "rewards", "next_obs", "terminals", "timeouts", "interventions"):
        np.testing.assert_array_equal(shadow[col], plain[col], err_msg=col)
    assert not (shadow["actions"] == 7.0).any()  # no shadow command became an action
    assert shadow["interventions"].tolist() == [0, 0, 2, 0, 0, 0, 0, 0]  # the acting shield's only
