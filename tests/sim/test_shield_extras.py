import numpy as np

from bremen_robot.tasks import get_task
from sim.observation import shield_extras


def test_body_height_comes_from_the_root_height_entry():
    ant = get_task("ant")
    obs = np.arange(ant.obs_dim, dtype=float) + 0.5
    assert shield_extras(ant, obs) == {"body_height": 0.5}  # qpos.root_z is Ant's first entry
    hopper = get_task("hopper")
    obs = np.zeros(hopper.obs_dim)
    obs[hopper.obs_names.index("qpos.rootz")] = 1.25
    assert shield_extras(hopper, obs) == {"body_height": 1.25}
    assert shield_extras(get_task("panda_reach"), np.zeros(20)) == {}
