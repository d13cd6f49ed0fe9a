"""Subnormal floats are kept out of training (bremen_robot/models/subnormal.py).

Expectations are written by hand: float32's smallest normal number is 2**-126, float64's
2**-1022; anything nonzero below them is subnormal.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import torch

from bremen_robot.config.train import EnsembleConfig
from bremen_robot.models.ensemble import DynamicsEnsemble
from bremen_robot.models.ensemble_fit import fit_ensemble
from bremen_robot.models.subnormal import flush_denormals, zero_subnormal_
from bremen_robot.progress import Reporter, Stage
from bremen_robot.trainer import train
from tests.core.test_determinism import _tiny_config
from tests.core.test_models_mutants import _fit_data

F32_NORMAL = 2.0**-126
F64_NORMAL = 2.0**-1022


def _quarter_of_smallest_normal() -> float:
    """Computed on this thread, where the flush flag applies: 0.0 when flushing, else 2**-128."""
    return float(torch.tensor([F32_NORMAL], dtype=torch.float32) * 0.25)


@pytest.mark.parametrize(("dtype", "normal"), [(torch.float32, F32_NORMAL), (torch.float64, F64_NORMAL)])
def test_only_the_subnormal_entries_are_zeroed(dtype, normal):
    values = [normal / 2, -normal / 4, normal, -normal, 0.0, 1.0, -3.5, float("inf"), float("nan")]
    t = torch.tensor(values, dtype=dtype)
    ints = torch.tensor([5, 0, -2])
    assert zero_subnormal_([t, ints]) == 2
    expected = [0.0, 0.0, normal, -normal, 0.0, 1.0, -3.5, float("inf")]
    assert t[:-1].tolist() == expected
    assert torch.isnan(t[-1])
    assert ints.tolist() == [5, 0, -2]


def test_subnormals_are_found_while_the_cpu_reads_them_as_zero():
    """Inside flush_denormals a comparison sees a subnormal as 0; the bit test still finds it."""
    t = torch.tensor([F32_NORMAL / 8, 2.0], dtype=torch.float32)
    with flush_denormals():
        assert zero_subnormal_([t]) == 1
    assert t.tolist() == [0.0, 2.0]


def test_flushing_is_on_inside_and_off_after_nested_blocks_and_errors():
    assert _quarter_of_smallest_normal() == 2.0**-128
    with flush_denormals():
        assert _quarter_of_smallest_normal() == 0.0
        with flush_denormals():
            pass
        assert _quarter_of_smallest_normal() == 0.0  # the inner block does not end it
    assert _quarter_of_smallest_normal() == 2.0**-128
    with pytest.raises(RuntimeError), flush_denormals():
        raise RuntimeError("boom")
    assert _quarter_of_smallest_normal() == 2.0**-128


def test_blocks_in_two_threads_each_switch_their_own_thread_on_and_off():
    """The flag is per thread, so is the nesting: thread A enters, B enters, A leaves, B leaves.
    A shared count left A flushing after its block (collection there computed with the flag on)
    and B never flushing inside its own."""
    a_in, b_in, a_out, b_out = (threading.Event() for _ in range(4))
    seen: dict[str, float] = {}

    def thread_a() -> None:
        with flush_denormals():
            a_in.set()
            b_in.wait(10)
        a_out.set()
        b_out.wait(10)
        seen["a after its block"] = _quarter_of_smallest_normal()

    def thread_b() -> None:
        a_in.wait(10)
        with flush_denormals():
            b_in.set()
            a_out.wait(10)
            seen["b inside its block"] = _quarter_of_smallest_normal()
        b_out.set()

    threads = [threading.Thread(target=thread_a), threading.Thread(target=thread_b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert seen == {"a after its block": 2.0**-128, "b inside its block": 0.0}
    assert _quarter_of_smallest_normal() == 2.0**-128


def test_a_fit_returns_no_subnormal_weight_even_when_it_restores_an_early_best():
    """With a learning rate of 0 nothing but the cleaning can change a weight, and the holdout
    never improves, so the fit restores the weights it saved before its first epoch: planted
    subnormals must be gone during the epochs and from the model it returns, every other
    weight untouched."""
    torch.manual_seed(0)
    ens = DynamicsEnsemble(2, 2, members=2, hidden=(8,))
    first, last = ens.linear_layers()
    with torch.no_grad():
        first.weight[0, 0, :3] = torch.tensor([F32_NORMAL / 2, -F32_NORMAL / 16, F32_NORMAL])
        last.bias[1, 0, 0] = F32_NORMAL / 4
    before = [p.detach().clone() for p in ens.parameters()]
    cfg = EnsembleConfig(members=2, hidden=[8], batch_size=20, max_epochs=2, patience=1)
    cfg = cfg.model_copy(update={"lr": 0.0})  # not a valid setting; isolates the cleaning
    seen_after_epoch: list[list[float]] = []  # the planted entries, as each epoch ends

    def record(epoch: int, train_mse: float, holdout: list[float]) -> None:
        seen_after_epoch.append([*first.weight[0, 0, :2].tolist(), float(last.bias[1, 0, 0].detach())])

    hist = fit_ensemble(
        ens, _fit_data(100, 0), _fit_data(40, 1), cfg, torch.Generator().manual_seed(0), record
    )
    assert hist.epochs == 1 and hist.best_epoch == [0, 0]
    assert seen_after_epoch == [[0.0, 0.0, 0.0]]  # cleaned before the epoch's first batch
    assert first.weight[0, 0, :3].tolist() == [0.0, 0.0, F32_NORMAL]
    assert float(last.bias[1, 0, 0].detach()) == 0.0
    for p, b in zip(ens.parameters(), before):
        keep = (b == 0) | (b.abs() >= F32_NORMAL)
        assert torch.equal(p.detach()[keep], b[keep])


class _FlushProbe(Reporter):
    """Records, at the start of each training stage, whether subnormal results are flushed."""

    def __init__(self) -> None:
        super().__init__(enabled=False)
        self.flushing: dict[str, bool] = {}

    @contextmanager
    def stage(self, name: str, total: int | None) -> Iterator[Stage]:
        self.flushing[name] = _quarter_of_smallest_normal() == 0.0
        with super().stage(name, total) as s:
            yield s


def test_training_flushes_subnormals_and_leaves_collection_as_it_was(tmp_path, point_data):
    probe = _FlushProbe()
    result = train(_tiny_config(), point_data, tmp_path / "out", reporter=probe)
    assert result.report["timing"]["subnormal_flush"] is True  # the benchmarks' budget reads it
    assert probe.flushing == {
        "fit dynamics ensemble": True,
        "behavior cloning": True,
        "TRPO in imagination": True,
    }
    assert _quarter_of_smallest_normal() == 2.0**-128  # collection after training: unchanged
