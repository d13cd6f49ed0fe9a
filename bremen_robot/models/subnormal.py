"""Keeping subnormal ("denormal") floats out of training on the CPU.

Weight decay drives the weights of dead ReLU units towards zero until they fall below float32's
smallest normal number (1.18e-38). x86 CPUs handle such subnormal operands in microcode, 10-50x
slower than normal ones, and every matmul that touches them pays: after a few warm-started
deployments 29 % of a Walker2d ensemble's weights were subnormal and its fit ran at 1-5
GFLOP/s instead of about 70 (docs/performance.md, "Subnormal weights"). Zeroing them changes
no result beyond the last bits: they are below 1e-38.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import torch

# Bit patterns of the smallest normal number, as the signed integer a magnitude is read as:
# a float is subnormal exactly when its magnitude's bits lie strictly between 0 and this.
_SMALLEST_NORMAL_BITS = {
    torch.float32: (torch.int32, 0x0080_0000),
    torch.float64: (torch.int64, 0x0010_0000_0000_0000),
}
# nesting of flush_denormals() per thread, like the flag itself; torch offers no getter for it
_local = threading.local()


@contextmanager
def flush_denormals() -> Iterator[None]:
    """Flush subnormal results to zero (and read subnormal operands as zero) while inside.

    The flag is per thread on x86 (MXCSR): it covers the calling thread, which runs every op
    when torch uses one thread (the ``cpu`` presets); torch's intra-op worker threads keep
    their own, so :func:`zero_subnormal_` cleans the ensemble's weights between epochs as well.
    On leaving the outermost block the flag is switched off again, torch's default, so that
    collection and evaluation after training compute exactly as a fresh process would. Blocks
    are counted per thread, as the flag is: one thread's block neither ends nor skips another's.
    """
    depth = getattr(_local, "depth", 0)
    if depth == 0:
        torch.set_flush_denormal(True)
    _local.depth = depth + 1
    try:
        yield
    finally:
        _local.depth -= 1
        if _local.depth == 0:
            torch.set_flush_denormal(False)


@torch.no_grad()
def zero_subnormal_(tensors: Iterable[torch.Tensor]) -> int:
    """Set every subnormal entry of float32 and float64 ``tensors`` to zero, in place; the count.

    Normal numbers, zeros, infinities and NaNs are left as they are, as are other dtypes. The
    test is on the bits, not on ``abs(x) < tiny``: inside :func:`flush_denormals` the CPU reads
    a subnormal operand as zero, so a comparison would never find one.
    """
    zeroed = 0
    for t in tensors:
        if t.dtype not in _SMALLEST_NORMAL_BITS:
            continue
        int_dtype, smallest_normal = _SMALLEST_NORMAL_BITS[t.dtype]
        magnitude = t.view(int_dtype) & ~torch.iinfo(int_dtype).min  # sign bit cleared
        mask = (magnitude > 0) & (magnitude < smallest_normal)
        zeroed += int(mask.sum())
        t.masked_fill_(mask, 0.0)
    return zeroed
