"""What Triton's JIT would compile for a call: signature, constexprs and the run-time
specialization attributes (pointers 16-byte aligned and integers divisible by 16 get
`tt.divisibility = 16`; integers equal to 1 become constants), computed by the JIT's own
code from the call's argument values, for a given GPU target with no GPU present.

An ahead-of-time compile without these attributes is not what runs: it can use other
registers and narrower loads (2-byte W loads instead of 16-byte ones, for instance).

Uses triton's internal binder (triton.runtime.jit.create_function_from_signature and
JITFunction._pack_args, as in triton 3.9's JITFunction.run).
"""
import inspect

from triton.backends.compiler import GPUTarget


def jit_function(kernel):
    """The JITFunction of a kernel: itself, or, for a kernel defined under the interpreter
    (TRITON_INTERPRET=1), a JITFunction of the same Python function and decorator options
    (constructing one compiles nothing)."""
    from triton.runtime.jit import JITFunction
    if isinstance(kernel, JITFunction):
        return kernel
    return JITFunction(kernel.fn, **getattr(kernel, "kwargs", {}))


def bind_launch(kernel, args, kwargs):
    """(parameters by name, launch options) of a `kernel[grid](*args, **kwargs)` call."""
    fn = jit_function(kernel)
    names = set(fn.arg_names)
    params = {k: v for k, v in kwargs.items() if k in names}
    options = {k: v for k, v in kwargs.items() if k not in names}
    bound = inspect.signature(fn.fn).bind_partial(*args, **params)
    return dict(bound.arguments), options


def specialize(kernel, args, options, arch):
    """(signature, constexprs, attrs, compile options) the JIT computes for launching
    `kernel` with parameters `args` (name -> value) and launch `options` on sm_`arch`:
    exactly what JITFunction.run hands to triton.compile. constexprs and attrs are keyed by
    argument index paths, as triton.compile expects."""
    from triton.compiler import make_backend
    from triton.runtime.jit import create_function_from_signature
    fn = jit_function(kernel)
    backend = make_backend(GPUTarget("cuda", arch, 32))
    binder = create_function_from_signature(fn.signature, fn.params, backend)
    bound, specialization, binder_options = binder(**args, **options)
    compile_options, signature, constexprs, attrs = fn._pack_args(
        backend, dict(options), bound, specialization, binder_options)
    return signature, constexprs, attrs, compile_options.__dict__


def by_name(kernel, constexprs, attrs):
    """constexprs and attrs keyed by argument name (readable, and comparable across calls):
    ({name: value}, sorted names with tt.divisibility 16)."""
    names = jit_function(kernel).arg_names
    named = {names[path[0]]: value for path, value in constexprs.items()}
    divisible = sorted(names[path[0]] for path, value in attrs.items()
                       if ["tt.divisibility", 16] in [list(v) for v in value])
    return named, divisible
