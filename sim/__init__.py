"""MuJoCo and PyBullet backends for the same robots, Gymnasium envs, domain randomization."""
