"""What the installed Triton offers that not every supported version has.

The project supports Triton 3.6 through the newest release (pyproject.toml). Kernels and
launchers ask here, never compare version numbers themselves, and keep a fallback for the
versions without the feature:

- ATOMIC_LOAD_STORE: tl.atomic_load / tl.atomic_store (plain strong loads and stores with
  acquire/release semantics; Triton 3.9 has them, 3.6 does not). Use atomic_read /
  atomic_write below: they compile to the fallback (a read-modify-write) where missing.
- COOPERATIVE_GRID: the launch option launch_cooperative_grid=True (the driver guarantees
  that all programs are resident at once, or refuses the launch). Pass it through
  launch_options() below, which leaves it out where the option does not exist.

The flags are tl.constexpr so a @triton.jit function can branch on them at compile time; the
branch not taken is never compiled, so it may name functions this Triton lacks.
"""
import triton
import triton.language as tl


def version_tuple(text=None):
    """(major, minor) of a Triton version string (the installed one by default)."""
    major, minor = (text or triton.__version__).split(".")[:2]
    return int(major), int("".join(ch for ch in minor if ch.isdigit()) or 0)


def _has_cooperative_grid():
    try:
        from triton.backends.nvidia.compiler import CUDAOptions
    except ImportError:  # no NVIDIA backend in this build
        return False
    return "launch_cooperative_grid" in getattr(CUDAOptions, "__dataclass_fields__", {})


TRITON_VERSION = version_tuple()
ATOMIC_LOAD_STORE = tl.constexpr(hasattr(tl, "atomic_load") and hasattr(tl, "atomic_store"))
COOPERATIVE_GRID = _has_cooperative_grid()


def summary():
    """{name: value} of every capability, for reports and the GPU evidence run."""
    return {"triton": triton.__version__, "atomic_load_store": bool(ATOMIC_LOAD_STORE.value),
            "cooperative_grid": COOPERATIVE_GRID}


def launch_options(cooperative):
    """Extra keyword arguments for a kernel launch that needs all its programs resident at
    once: the cooperative launch where this Triton has it, nothing otherwise (the caller
    then relies on its own residency scheme, e.g. never more programs than SMs)."""
    return {"launch_cooperative_grid": True} if cooperative and COOPERATIVE_GRID else {}


@triton.jit
def atomic_read(ptr, mask, SEM: tl.constexpr, NATIVE: tl.constexpr = ATOMIC_LOAD_STORE):
    """Atomic load of `ptr` with semantics SEM ("acquire" or "relaxed"): tl.atomic_load where
    this Triton has it, else an atomic add of zero (a read-modify-write of the same value)."""
    if NATIVE:
        return tl.atomic_load(ptr, mask=mask, sem=SEM, scope="gpu")
    else:
        return tl.atomic_add(ptr, 0, mask=mask, sem=SEM, scope="gpu")


@triton.jit
def atomic_write(ptr, value, mask, SEM: tl.constexpr, NATIVE: tl.constexpr = ATOMIC_LOAD_STORE):
    """Atomic store of `value` with semantics SEM ("release" or "relaxed"): tl.atomic_store
    where this Triton has it, else an exchange whose old value is dropped."""
    if NATIVE:
        tl.atomic_store(ptr, value, mask=mask, sem=SEM, scope="gpu")
    else:
        tl.atomic_xchg(ptr, value, mask=mask, sem=SEM, scope="gpu")
