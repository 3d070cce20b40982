"""The GPU constants bench/model.py uses: each a (low, high) range with where it comes from.

"low" and "high" are the ends that make the estimate fast and slow respectively. Values
marked "assumed" are the model's guesses, to be replaced by `python -m bench.model
--calibrate` on the GPU (bench/calibrate.py), which writes measured values that then take
the place of both ends.
"""

# Published peak of dense fp16 tensor-core math, H100 SXM5: 989.4 TFLOP/s (NVIDIA H100
# datasheet), i.e. 4096 FLOP per clock per SM at 1.83 GHz over 132 SMs.
_WGMMA_FLOP_PER_CLK = 989.4e12 / 1.83e9 / 132

_GH100 = dict(
    sms=((132, 132), "NVIDIA H100 SXM5 / H200 datasheets: 132 SMs"),
    clock_ghz=((1.98, 1.755), "1.98 GHz: NVIDIA's maximum boost clock; 1.755 GHz: assumed "
               "sustained clock under a long tensor-core load (calibrate)"),
    l2_latency_clk=((300, 500), "L2-hit dependent load, cycles: about 260-300 near-partition "
                    "in published Hopper microbenchmarks (Chips and Cheese 2023, Luo et al. "
                    "2024, arXiv:2402.13499); up to 500 assumed for the far partition and "
                    "a loaded L2"),
    fence_clk=((300, 500), "MEMBAR.GPU waits until the SM's stores are acknowledged by L2: "
               "taken as one L2 round trip (assumed)"),
    exchange_extra_clk=((150, 500), "cost of one inter-program exchange beyond the poll's own "
                        "round trip: the producer's store reaching L2 plus, on average, a "
                        "poll that just missed it: half to one L2 latency (assumed)"),
    l2_bytes_per_clk_sm=((64, 40), "L2-to-SM bandwidth per SM: 64 B/clk per-SM link (assumed "
                         "from the L1 fill width); 40 B/clk when many SMs pull at once "
                         "(A100 whitepaper: 5120 B/clk of L2 bandwidth over 108 SMs = 47, "
                         "less under contention)"),
    smem_bytes_per_clk=((128, 128), "shared memory: 32 banks x 4 B per clock per SM (CUDA "
                        "programming guide); wgmma operands assumed to stream at the same "
                        "rate"),
    hgmma_flop_per_clk=((_WGMMA_FLOP_PER_CLK, _WGMMA_FLOP_PER_CLK),
                        "wgmma fp16/bf16 dense: 989.4 TFLOP/s at 1.83 GHz / 132 SMs"),
    hmma_flop_per_clk=((0.67 * _WGMMA_FLOP_PER_CLK, 0.5 * _WGMMA_FLOP_PER_CLK),
                       "mma.sync on Hopper: one half to two thirds of the wgmma rate "
                       "(Luo et al. 2024 measured mma.sync well below wgmma peak; assumed)"),
    barrier_clk=((20, 40), "BAR.SYNC with all warps arriving together, cycles (assumed, "
                 "microbenchmark order of magnitude)"),
    issue_clk=((1, 2), "cycles per instruction a warp issues: an SM's 4 schedulers issue one "
               "instruction a cycle each, so a warp sharing its scheduler with no other "
               "warp takes at least 1; 2 assumed for its dependent instructions' stalls "
               "(a few cycles of ALU latency that no other warp hides)"),
    gemm_tflops=((650, 400), "cuBLAS fp16 GEMMs of the input projection and the weight "
                 "gradients (M = B*T): 40-66% of the 989 TFLOP/s dense peak (assumed)"),
)

GPUS = {
    "H100": dict(_GH100, name="NVIDIA H100 SXM5"),
    # H200: the same GH100 chip and clocks with HBM3e memory (NVIDIA H200 datasheet: same
    # 989 TFLOP/s dense fp16); nothing this model uses differs from the H100 SXM.
    "H200": dict(_GH100, name="NVIDIA H200 SXM"),
}

def constants(gpu, calibration=None):
    """{name: (low, high)} for `gpu` ("H100", "H200"), with measured values from a
    calibration dict ({name: value or [low, high], ...}): one value takes both ends; a pair
    (the spread of several runs, in the table's order: the low-cycles end first) takes them
    as they are."""
    table = {k: v[0] for k, v in GPUS[gpu].items() if k != "name"}
    for name, value in (calibration or {}).get("constants", {}).items():
        if name in table:
            table[name] = tuple(value) if isinstance(value, (list, tuple)) else (value, value)
    return table


def sources(gpu, calibration=None):
    measured = (calibration or {}).get("constants", {})
    out = {}
    for k, v in GPUS[gpu].items():
        if k == "name":
            continue
        out[k] = (f"measured on {calibration['gpu']} {calibration['date']}"
                  if k in measured else v[1])
    return out
