"""Test and measurement hooks of the kernels, in one opt-in module: nothing here runs, and
nothing is patched, unless it is imported and switched on. The library never imports it.

- count_launches(): which kernels the launchers started, by name.
- poison_outputs(): fill every fresh kernel output with NaN (on at import when
  TRITONRNN_POISON=1, as tests/conftest.py sets it).
- count_traffic(): bytes every load and store of an interpreted kernel moves.
- force_plan / force_split (kernels/config.py): run every recurrence with a chosen launch
  plan; re-exported here so a test finds every hook in one place.
"""
import collections
import contextlib
import threading
import os
from dataclasses import dataclass

import numpy as np

from . import launches, memory
from .config import force_plan, force_split  # noqa: F401  (re-exported: the forced plans)


@contextlib.contextmanager
def count_launches():
    """Yields a Counter of kernel launches (by form: "fused_forward", "split_backward", ...)
    made inside the block."""
    saved, launches.counter = launches.counter, collections.Counter()
    try:
        yield launches.counter
    finally:
        launches.counter = saved


def poison_outputs(enabled=True):
    """Fill fresh kernel outputs with NaN from now on (or stop, enabled=False)."""
    memory.poison = enabled


if os.environ.get("TRITONRNN_POISON", "0") == "1":
    poison_outputs()


# -- global-memory traffic under the interpreter ------------------------------------------
# Counts the bytes every load and store moves (masked-off elements excluded), by wrapping the
# interpreter's masked load/store; every unmasked access goes through those too. No cache is
# modelled: this is what a kernel asks of memory, the quantity to hold against the lower bound.


@dataclass
class Traffic:
    loaded: int = 0
    stored: int = 0
    loaded_int32: int = 0  # of `loaded`: int32 words (lengths, the split regime's flags)

    @property
    def total(self):
        return self.loaded + self.stored


@contextlib.contextmanager
def count_traffic():
    """Yields a Traffic that accumulates the bytes moved by kernels launched inside (Triton's
    interpreter only)."""
    from triton.runtime.interpreter import InterpreterBuilder as builder

    load, store = builder.create_masked_load, builder.create_masked_store
    traffic = Traffic()
    lock = threading.Lock()  # programs may run in threads (tests/threaded_interpreter.py)

    def counted_load(self, ptrs, mask, other, *args):
        ret = load(self, ptrs, mask, other, *args)
        moved = int(mask.data.sum()) * ret.data.dtype.itemsize
        with lock:
            traffic.loaded += moved
            if ret.data.dtype == np.int32:
                traffic.loaded_int32 += moved
        return ret

    def counted_store(self, ptrs, value, mask, *args):
        with lock:
            traffic.stored += int(mask.data.sum()) * value.data.dtype.itemsize
        return store(self, ptrs, value, mask, *args)

    builder.create_masked_load, builder.create_masked_store = counted_load, counted_store
    try:
        yield traffic
    finally:
        builder.create_masked_load, builder.create_masked_store = load, store
