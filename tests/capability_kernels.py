"""A kernel that reads and writes through kernels/capabilities.py's atomic helpers, for
tests/test_capabilities.py (interpreted there, compiled ahead of time in a subprocess)."""
import triton
import triton.language as tl

from tritonrnn.kernels import capabilities


@triton.jit
def read_add_write(src, dst, n, NATIVE: tl.constexpr):
    offs = tl.arange(0, 16)
    mask = offs < n
    value = capabilities.atomic_read(src + offs, mask, "acquire", NATIVE)
    capabilities.atomic_write(dst + offs, value + 1, mask, "release", NATIVE)


def sass_memory_ops(native, arch=90):
    """Global-memory instruction mnemonics (ATOMG, LDG, STG...) of the kernel compiled for
    sm_`arch` with no GPU."""
    import os
    import re
    import subprocess
    import tempfile
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource
    signature = {"src": "*i32", "dst": "*i32", "n": "i32", "NATIVE": "constexpr"}
    compiled = triton.compile(ASTSource(read_add_write, signature, {"NATIVE": native}),
                              target=GPUTarget("cuda", arch, 32))
    nvdisasm = os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin",
                            "nvdisasm")
    with tempfile.NamedTemporaryFile(suffix=".cubin") as f:
        f.write(compiled.asm["cubin"])
        f.flush()
        sass = subprocess.run([nvdisasm, "-c", f.name], capture_output=True, text=True,
                              check=True).stdout
    return sorted(set(re.findall(r"\b(ATOMG|ATOM|RED|LDG|STG)\b", sass)))


if __name__ == "__main__":
    import json
    print(json.dumps({str(native): sass_memory_ops(native) for native in
                      ([False, True] if capabilities.ATOMIC_LOAD_STORE else [False])}))
