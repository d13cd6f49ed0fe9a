import gc

import pytest

pytest.importorskip("pybullet", reason="pybullet (sim extra) not installed")

import sim  # noqa: E402
from sim.errors import SimError  # noqa: E402


def test_a_failed_load_never_disconnects_a_later_backend(tmp_path):
    """PyBullet reuses client ids. A backend whose description failed to load may be freed late
    (its exception's traceback keeps it alive); when it goes, it must not disconnect the id a
    newer backend now holds. This made a PyBullet test fail at random in the full suite."""
    bad = tmp_path / "broken.xml"
    bad.write_text("<mujoco><worldbody><body><geom type='nonsense'/></body></worldbody></mujoco>")
    with pytest.raises(SimError, match="MuJoCo cannot load") as info:
        sim.create_backend("halfcheetah", "pybullet", asset=bad)
    good = sim.create_backend("halfcheetah", "pybullet")  # reuses the failed backend's client id
    del info
    gc.collect()  # frees the failed backend: its __del__ runs now
    good.reset(0)
    good.apply([0.1] * len(good.actuated_joint_names))
    good.step()  # raised "Not connected to physics server" before the fix
    good.close()
