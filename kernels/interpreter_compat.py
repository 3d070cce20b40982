"""Lets Triton 3.6's interpreter turn run-time scalars into Python ints under NumPy >= 2.4.

Under the interpreter a run-time scalar (an int kernel argument such as T, tl.program_id,
anything computed from them) is a one-element 1-D NumPy array. Python needs an int from it
wherever it is a `range` bound (`for s in range(T)`, `range(0, K, BLOCK_KC)`). Triton 3.6's
interpreter converts with int(array); NumPy 2.4 made int() of an array with ndim > 0 a
TypeError ("only 0-dimensional arrays can be converted to Python scalars"; a
DeprecationWarning since NumPy 1.25). Newer Triton squeezes the array first. Here the
interpreter's conversion is checked once and, where it fails, replaced by one that takes the
single element, so every kernel (present and future) runs as written. Compiled kernels are
untouched: this only runs under TRITON_INTERPRET=1.
"""
import operator

import numpy as np


def _index_of_scalar(tensor):
    """int of a one-element interpreter tensor (a block raises, as it must)."""
    data = tensor.handle.data
    return operator.index(data.item() if data.size == 1 else data)


def _interpreter_index_works(interpreter, core):
    """Whether the interpreter's own tl.tensor.__index__ accepts a scalar as it makes them."""
    scope = interpreter._LangPatchScope()
    try:
        interpreter._patch_lang_tensor(core.tensor, scope)
        scalar = core.tensor(interpreter.TensorHandle(np.array([3], dtype=np.int32), core.int32),
                             core.int32)
        return operator.index(scalar) == 3
    except TypeError:
        return False
    finally:
        scope.restore()


def apply():
    """Install the fix if this Triton's interpreter needs it; returns whether it did."""
    from triton.language import core
    from triton.runtime import interpreter
    if getattr(interpreter._patch_lang_tensor, "_tritonrnn_fixed", False):
        return True
    if _interpreter_index_works(interpreter, core):
        return False
    original = interpreter._patch_lang_tensor

    def patch_lang_tensor(tensor, scope):
        # Ours goes in where the interpreter sets its own, never after it: every call of a
        # @triton.jit function from a kernel patches the class again, and programs running
        # in threads (tests/threaded_interpreter.py) would otherwise meet the failing
        # conversion between the two settings (it did, at random: TypeError at range(T)).
        set_attr = scope.set_attr

        def set_fixed(obj, name, value):
            set_attr(obj, name, _index_of_scalar if (obj, name) == (tensor, "__index__")
                     else value)
        scope.set_attr = set_fixed
        try:
            original(tensor, scope)
        finally:
            del scope.set_attr

    patch_lang_tensor._tritonrnn_fixed = True
    patch_lang_tensor.__wrapped__ = original
    interpreter._patch_lang_tensor = patch_lang_tensor
    return True
