"""Global-memory traffic of kernels run under Triton's interpreter.

Counts the bytes every load and store moves (masked-off elements excluded), by wrapping the
interpreter's masked load/store; every unmasked access goes through those too. No cache is
modelled: this is what a kernel asks of memory, the quantity to hold against the lower bound.
"""
import contextlib
import threading
from dataclasses import dataclass


@dataclass
class Traffic:
    loaded: int = 0
    stored: int = 0

    @property
    def total(self):
        return self.loaded + self.stored


@contextlib.contextmanager
def count_traffic():
    """Yields a Traffic that accumulates the bytes moved by kernels launched inside."""
    from triton.runtime.interpreter import InterpreterBuilder as builder

    load, store = builder.create_masked_load, builder.create_masked_store
    traffic = Traffic()
    lock = threading.Lock()  # programs may run in threads (tests/threaded_interpreter.py)

    def counted_load(self, ptrs, mask, other, *args):
        ret = load(self, ptrs, mask, other, *args)
        with lock:
            traffic.loaded += int(mask.data.sum()) * ret.data.dtype.itemsize
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
