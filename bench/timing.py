"""Timing on the GPU with CUDA events, and the statistics of the samples.

One sample is one call of the function under test, bracketed by two CUDA events recorded on
the current stream: the events mark when the GPU reaches them, so a sample is the GPU time of
that call, including the gaps where the GPU waited for the host to launch work (a Python time
loop pays its launch overhead there). Before each sample, outside the events: the caller's
``before_each`` (gradients set to None, so backward allocates fresh ones instead of
accumulating) and a write over a buffer twice the size of L2, so no call finds the previous
call's data in cache. Inputs rotate over several sets for the same reason.

The timer is an object with one method, so the benchmark loop can be run with a fake one where
there is no GPU (tests).
"""
import math
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Stats:
    median: float
    p20: float
    p80: float
    n: int


def percentile(samples, q):
    """q-th percentile (0..100) with linear interpolation between closest ranks (numpy's and
    torch.quantile's default)."""
    xs = sorted(samples)
    if not xs:
        raise ValueError("no samples")
    pos = (len(xs) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def summarize(samples):
    return Stats(percentile(samples, 50), percentile(samples, 20), percentile(samples, 80),
                 len(samples))


def choose_reps(estimate_ms, budget_ms, min_reps, max_reps):
    """How many timed calls fit the time budget, at least min_reps and at most max_reps."""
    if estimate_ms <= 0:
        return max_reps
    return int(min(max_reps, max(min_reps, budget_ms // estimate_ms)))


def input_set_count(bytes_per_set, cache_bytes, most=8):
    """Input sets to rotate over: enough that together they are twice the cache, at least 2."""
    return int(min(most, max(2, math.ceil(2 * cache_bytes / max(1, bytes_per_set)))))


def l2_cache_bytes(device=None):
    props = torch.cuda.get_device_properties(device or torch.cuda.current_device())
    return getattr(props, "L2_cache_size", 0) or 50 * 2**20  # H100 SXM has 50 MiB


class CudaEventTimer:
    """Times calls on the current CUDA device.

    warmup: untimed calls first (Triton's and torch.compile's compilation, cuDNN's algorithm
    choice, the caching allocator's first allocations all happen there); then a short timed
    estimate sets how many samples fit ``budget_ms``.
    """

    def __init__(self, warmup=3, budget_ms=300.0, min_reps=5, max_reps=100):
        self.warmup, self.budget_ms = warmup, budget_ms
        self.min_reps, self.max_reps = min_reps, max_reps
        self.cache_bytes = l2_cache_bytes()
        self._flush = torch.empty(2 * self.cache_bytes, dtype=torch.int8, device="cuda")

    def __call__(self, fn, input_sets, before_each=lambda: None):
        """fn(inputs) for inputs in input_sets (rotating); returns the samples in ms."""
        n = len(input_sets)
        for i in range(self.warmup):
            before_each()
            fn(input_sets[i % n])
        torch.cuda.synchronize()

        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        before_each()
        start.record()
        fn(input_sets[0])
        end.record()
        torch.cuda.synchronize()
        reps = choose_reps(start.elapsed_time(end), self.budget_ms, self.min_reps,
                           self.max_reps)

        starts = [torch.cuda.Event(enable_timing=True) for _ in range(reps)]
        ends = [torch.cuda.Event(enable_timing=True) for _ in range(reps)]
        for i in range(reps):
            before_each()
            self._flush.zero_()
            starts[i].record()
            fn(input_sets[i % n])
            ends[i].record()
        torch.cuda.synchronize()  # elapsed_time needs both events completed
        return [s.elapsed_time(e) for s, e in zip(starts, ends)]
