"""How the fused regime's kernels are launched (kernels/config.py: fused_warps; kernels/fused.py):
no more warps than the output tiles of a kernel's smallest product, so no two warps compute
the same tensor-core tile, and the compile report's check that would catch it
(bench/compile_report.py: mma_needed_flops; bench/prune_rules.py: problems)."""
import pytest

from bench import compile_report, prune_rules
from tritonrnn.kernels import config
from tritonrnn.kernels.cells import CELL_CODES

LSTM, GRU, RNN = CELL_CODES["LSTM"], CELL_CODES["GRU"], CELL_CODES["RNN_TANH"]


def output_tiles(rows, block_b):
    return max(1, rows // config.MMA_TILE_ROWS) * max(1, block_b // config.MMA_TILE_COLS)


SQUARE = [(16, 16), (32, 32), (64, 64), (128, 128), (256, 256)]
PROJECTED = [(64, 16), (128, 32), (100, 40)]  # LSTM with proj_size


@pytest.mark.parametrize("cell,hidden,width", [(c, h, w) for c in (LSTM, GRU, RNN)
                                               for h, w in SQUARE]
                         + [(LSTM, h, w) for h, w in PROJECTED])
@pytest.mark.parametrize("backward", [False, True])
def test_no_more_warps_than_the_smallest_product_has_tiles(cell, hidden, width, backward):
    bh, bk = config.block(hidden), config.block(width)
    gates_rows = config.padded_gates(cell) * bh
    if backward:  # dh^T [K, B] (and dh_cell^T [H, B] when projecting)
        products = [bk] + ([bh] if width != hidden else [])
    else:         # the gates [GP*H, B] (and the projection [P, B])
        products = [gates_rows] + ([bk] if width != hidden else [])
    for bb, warps in config.FUSED_SPACE:
        plan = config.Plan(False, bb, bh, bk, warps, 1)
        got = config.fused_warps(plan, cell, hidden, width, backward)
        assert got & (got - 1) == 0 and 1 <= got <= warps
        tiles = min(output_tiles(rows, bb) for rows in products)
        assert got <= tiles, (plan, got, tiles)
        assert got == warps or got * 2 > tiles  # no fewer than the tiles allow


def test_large_products_keep_the_plans_warps():
    plan = config.Plan(False, 16, 128, 128, 8, 1)
    assert config.fused_warps(plan, LSTM, 128, 128, False) == 8  # gates: 512 x 16
    assert config.fused_warps(plan, LSTM, 128, 128, True) == 8   # dh: 128 x 16
    small = config.Plan(False, 16, 16, 16, 8, 1)
    assert config.fused_warps(small, LSTM, 16, 16, False) == 8   # gates: 64 x 16, 8 tiles
    assert config.fused_warps(small, LSTM, 16, 16, True) == 2    # dh: 16 x 16, 2 tiles


def test_products_on_the_fma_units_keep_the_plans_warps():
    """fp32 without TF32 multiplies on the FMA units, one output element per thread: no
    tiles to repeat, and fewer warps only means more registers a thread (triton 3.9 also
    crashed compiling LSTM's fp32 backward at 2 and 4 warps, H = 16 and 32)."""
    small = config.Plan(False, 16, 16, 16, 8, 1)
    assert config.fused_warps(small, LSTM, 16, 16, True, tensor_cores=False) == 8


def record(kernel, cell="LSTM", hidden=64, block_b=16, block_k=64, mma_flops=None):
    config_ = dict(split=False, block_b=block_b, block_h=hidden, block_k=block_k, num_warps=8,
                   num_stages=1)
    return dict(kernel=kernel, cell=cell, dtype="fp16", hidden_size=hidden, config=config_,
                registers=100, spills_bytes=0, shared_bytes=1024, shared_limit=232448,
                tensor_cores=True, launch_warps=8,
                per_step=None if mma_flops is None else dict(mma_flops=mma_flops))


def test_needed_mma_work_of_the_fused_kernels():
    # LSTM H=64, B tile 16: W_hh [256, 64] @ h^T [64, 16]
    assert compile_report.mma_needed_flops(record("fused_forward")) == 2 * 16 * 256 * 64
    # projected: plus W_hr [16, 64] @ h_cell^T [64, 16]
    proj = record("fused_backward", cell="LSTM_PROJ", block_k=16)
    assert compile_report.mma_needed_flops(proj) == 2 * 16 * (256 * 16 + 16 * 64)
    assert compile_report.mma_needed_flops(record("split_forward")) is None


def test_repeated_mma_work_fails_a_record():
    r = record("fused_forward")
    assert prune_rules.problems(r) == []
    r["per_step"] = dict(mma_flops=2 * 2 * 16 * 256 * 64, mma_over_needed=2.0)
    assert any("repeat each other's MMA tiles" in p for p in prune_rules.problems(r))
    r["per_step"]["mma_over_needed"] = 1.0
    assert prune_rules.problems(r) == []
