import numpy as np

from bremen_robot.config.train import load_train_config
from bremen_robot.trainer import train


def _tiny_config():
    """point-demo, cut to a few seconds of training."""
    cfg = load_train_config("point-demo")
    return cfg.model_copy(
        update={
            "ensemble": cfg.ensemble.model_copy(update={"max_epochs": 3}),
            "bc": cfg.bc.model_copy(update={"steps": 200}),
            "trpo": cfg.trpo.model_copy(update={"iterations": 3}),
        }
    )


def test_same_seed_same_numbers(tmp_path, point_data):
    cfg = _tiny_config()
    a = train(cfg, point_data, tmp_path / "a").report
    b = train(cfg, point_data, tmp_path / "b").report
    c = train(cfg.model_copy(update={"seed": 1}), point_data, tmp_path / "c").report
    assert a["ensemble"]["holdout_mse"] == b["ensemble"]["holdout_mse"]
    assert a["trpo"] == b["trpo"]
    assert a["trpo"]["imagined_return"] != c["trpo"]["imagined_return"]
    from bremen_robot.policy.artifact import load_artifact

    obs = np.random.default_rng(0).uniform(-1, 1, size=(32, 2)).astype(np.float32)
    np.testing.assert_array_equal(
        load_artifact(tmp_path / "a").act(obs), load_artifact(tmp_path / "b").act(obs)
    )
    assert not np.array_equal(load_artifact(tmp_path / "a").act(obs), load_artifact(tmp_path / "c").act(obs))


def test_training_draws_only_from_its_own_generator(tmp_path, point_data, monkeypatch):
    """train() seeds torch's global RNG itself, so two seeded runs agree even if some stage drew
    from it. Networks are initialized from that seeded global RNG; after that, drawing from the
    global RNGs (torch, numpy) before BC's training and every imagined batch and TRPO step must
    change nothing: those use the explicit torch.Generator."""
    import torch

    import bremen_robot.trainer as trainer

    cfg = _tiny_config()
    quiet = train(cfg, point_data, tmp_path / "quiet").report

    def disturbed(fn):
        def call(*args, **kwargs):
            torch.rand(11)
            np.random.rand(5)
            return fn(*args, **kwargs)

        return call

    for name in ("train_bc", "imagine", "trpo_step"):
        monkeypatch.setattr(trainer, name, disturbed(getattr(trainer, name)))
    noisy = train(cfg, point_data, tmp_path / "noisy").report
    assert noisy["ensemble"]["holdout_mse"] == quiet["ensemble"]["holdout_mse"]
    assert noisy["bc"]["loss"] == quiet["bc"]["loss"]
    assert noisy["trpo"] == quiet["trpo"]
