"""Measure one case (a shape in one dtype and mode) for every provider: CSV rows of time,
tokens/s and agreement with torch.nn.

The timer is passed in (bench.timing.CudaEventTimer on a GPU, a fake in tests), so this loop
runs anywhere; only the GPU path calls it with a real timer.
"""
import sys
from dataclasses import replace

import torch

from . import records
from .providers import (build, clear_grads, input_set_bytes, make_inputs, output_of,
                        reference_layer, step_function)
from .timing import input_set_count, summarize


def measure_case(case, providers, timer, device, ctx):
    """Rows for one case. A provider that fails (out of memory, a compile error) gets one
    ``error`` row, is reported on stderr, and the sweep goes on."""
    shape, training = case.shape, case.mode == "forward+backward"
    reference = reference_layer(shape, case.dtype, device)
    count = input_set_count(input_set_bytes(shape, case.dtype, training), timer.cache_bytes)
    input_sets = make_inputs(shape, case.dtype, device, count, training)
    x0 = input_sets[0][0]
    with torch.no_grad():
        expected = output_of(reference.eval(), x0).float()

    common = dict(shape=shape, dtype=case.dtype, mode=case.mode)
    rows = []
    for provider in providers:
        try:
            model = build(provider, reference)
            with torch.no_grad():
                diff = (output_of(model.eval(), x0).float() - expected).abs().max().item()
            before = clear_grads(model, input_sets) if training else (lambda: None)
            samples = timer(step_function(model, training), input_sets, before)
        except Exception as err:  # noqa: BLE001  one failed provider must not end a long sweep
            message = f"{type(err).__name__}: {err}".splitlines()[0][:300]
            print(f"\n  {provider} failed on {shape.label()} {case.dtype} {case.mode}: {message}",
                  file=sys.stderr)
            rows.append(records.row(ctx, "error", message, provider=provider, **common))
            continue
        finally:
            if device == "cuda":
                torch.cuda.empty_cache()
        stats = summarize(samples)
        per_s = shape.tokens * 1e3
        rows += [
            records.row(ctx, "time", stats.median, "ms", stats=stats, provider=provider,
                        **common),
            # tokens/s is inverse in time: its 20th percentile comes from time's 80th.
            records.row(ctx, "tokens_per_s", per_s / stats.median, "tokens/s",
                        provider=provider, p20=per_s / stats.p80, p80=per_s / stats.p20,
                        n=stats.n, **common),
            records.row(ctx, "max_abs_diff_vs_torch", diff, "", provider=provider,
                        quantity="output", **common),
        ]
    return rows


def measure_cases(cases, providers, timer, device, ctx, before_case=lambda i, case: None):
    """Yields each case's rows in turn. A point several suites share (every sweep passes
    through the anchor's shape) is measured once; its rows are repeated under each suite."""
    done = {}
    for i, case in enumerate(cases):
        before_case(i, case)
        key = (replace(case.shape, suite=""), case.dtype, case.mode)
        if key in done:
            yield [dict(r, suite=case.shape.suite) for r in done[key]]
        else:
            done[key] = measure_case(case, providers, timer, device, ctx)
            yield done[key]
