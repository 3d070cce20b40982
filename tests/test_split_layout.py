"""How the split regime lays its programs out (kernels/config.py: split_layout), checked with a
device's SM count and shared memory given explicitly: a batch tile's programs wait for each
other at every exchange, so they must all run at once (no more per group than SMs); hidden
sizes with more slices than SMs walk several slices per program with a plan that compiles
clean in that form; each program keeps as many chunks of its W_hh rows (and W_hr rows) on
chip as the shared memory holds, and streams the rest. One launch per sequence in every
case; the interpreter's layout (one program per group) runs in test_functional's split tests,
the GPU's in test_gpu."""
import pytest
import torch

from tritonrnn.kernels import config, dtypes, pruning
from tritonrnn.kernels.cells import CELL_CODES

LSTM, GRU, RNN = CELL_CODES["LSTM"], CELL_CODES["GRU"], CELL_CODES["RNN_TANH"]
H100 = (132, config.SHARED_PER_BLOCK[9], 9)
A100 = (108, config.SHARED_PER_BLOCK[8], 8)


def prune_resident_forms(monkeypatch, keys=()):
    """Replace the pruned resident forms (pruning.resident_key) by `keys`: the shared-memory
    rule alone when empty."""
    everywhere, multi_only, _ = pruning._pruned()
    monkeypatch.setattr(pruning, "_pruned", lambda: (everywhere, multi_only, frozenset(keys)))


def test_interpreter_walks_every_slice_in_one_program():
    plan = config.Plan(True, 16, 16, 32, 8, 1)
    layout = config.split_layout(plan, LSTM, 100, 100, torch.float32)
    assert (layout.plan, layout.progs, layout.n_slices, layout.multi) == (plan, 1, 7, True)


def test_one_program_per_slice_when_the_slices_fit():
    plan = config.Plan(True, 16, 16, 256, 4, 1)
    layout = config.split_layout(plan, LSTM, 2048, 2048, torch.float16, H100)
    assert (layout.plan, layout.progs, layout.n_slices, layout.multi) == (plan, 128, 128, False)


@pytest.mark.parametrize("cell,H,dtype,limits,res", [
    (LSTM, 768, torch.float16, H100, 3),    # the anchor: 64 rows x 768 fp16 = 96 KiB, all kept
    (LSTM, 1024, torch.float16, H100, 4),   # 128 KiB
    (LSTM, 1024, torch.float16, A100, 4),   # 163 KiB per block; mma.sync stages no state
    (LSTM, 2048, torch.float16, A100, 4),   # half of each row kept, half streamed
    (LSTM, 2048, torch.float16, H100, 4),   # 8 chunks: half of each row kept, half streamed
    (LSTM, 768, torch.float32, A100, 2),    # fp32 rows are twice the bytes: 64 KiB a chunk
    (RNN, 768, torch.float16, H100, 3),     # RNN: 64 units of one gate per program
    (GRU, 256, torch.bfloat16, H100, 1),
])
def test_resident_chunks_fit_shared_memory(monkeypatch, cell, H, dtype, limits, res):
    prune_resident_forms(monkeypatch)
    plan = config.Plan(True, 16, 64 // config.padded_gates(cell), 256, 4, 1)
    layout = config.split_layout(plan, cell, H, H, dtype, limits)
    assert layout.res_chunks == res
    item = torch.empty((), dtype=dtype).element_size()
    rows = config.padded_gates(cell) * plan.block_h
    staged = plan.block_k * plan.block_b * item if limits[2] >= 9 else 0  # wgmma's operand
    kept = layout.res_chunks * (rows * plan.block_k * item + staged)
    assert kept + config.SHARED_RESERVE <= limits[1]
    assert layout.streams(H, H)[0] == (res * plan.block_k < H)


def test_projection_rows_kept_after_the_recurrent_rows(monkeypatch):
    prune_resident_forms(monkeypatch)
    plan = config.Plan(True, 16, 16, 256, 4, 1)
    layout = config.split_layout(plan, LSTM, 1024, 256, torch.float16, H100)
    assert layout.res_chunks == 1 and layout.res_proj == 4
    assert layout.streams(1024, 256) == (False, False)


@pytest.mark.parametrize("H,forward,backward", [(768, 3, 1), (2048, 4, 2)])
def test_projection_backward_keeps_the_chunks_its_rows_have(monkeypatch, H, forward, backward):
    """The forward's W_hr rows are H long, the backward's W_hr^T rows P: the backward keeps
    only the chunks P covers (the others held zeros in registers and spilled)."""
    from tritonrnn.kernels.recurrence import split_meta
    prune_resident_forms(monkeypatch)
    plan = config.Plan(True, 16, 16, 256, 4, 1)
    P = H // 4
    layout = config.split_layout(plan, LSTM, H, P, torch.float16, H100)
    fwd = split_meta(layout, LSTM, H, P, 2, backward=False)
    bwd = split_meta(layout, LSTM, H, P, 2, backward=True)
    assert (fwd["RES_PROJ"], fwd["STREAM_WR"]) == (forward, H > 4 * 256)
    assert (bwd["RES_PROJ"], bwd["STREAM_WR"]) == (backward, False)


@pytest.mark.parametrize("dname", ["fp32", "tf32", "fp16", "bf16"])
@pytest.mark.parametrize("cell,proj", [(c, False) for c in sorted(CELL_CODES)] + [("LSTM", True)],
                         ids=sorted(CELL_CODES) + ["LSTM_PROJ"])
@pytest.mark.parametrize("hidden,sms", [(2048, 108), (2048, 132), (4096, 132), (20000, 132),
                                        (1000, 3)])
def test_more_slices_than_sms(monkeypatch, dname, cell, proj, hidden, sms):
    """Never more programs per group than SMs; a group walks several slices with the widest
    slices of the plans the compile report found clean in the multi-slice forms, or, where
    none is (the projected LSTM in TF32: config.multi_slice_plan), of every split plan."""
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", dname == "tf32")
    code, dtype = CELL_CODES[cell], dtypes.torch_dtype(dname)
    width = hidden // 4 if proj else hidden
    chosen = config.default_plan(code, hidden, width, dtype)
    assert chosen.split
    layout = config.split_layout(chosen, code, hidden, width, dtype, (sms,) + H100[1:])
    plan, progs, n_slices = layout.plan, layout.progs, layout.n_slices
    assert n_slices == -(-hidden // plan.block_h)
    assert progs == min(n_slices, sms)
    if plan != chosen:  # the chosen plan had more slices than SMs
        assert -(-hidden // chosen.block_h) > sms
        assert plan == config.multi_slice_plan(code, hidden, width, dtype)
    if progs < n_slices:
        split = [p for p in config.candidates(code, hidden, width, dtype) if p.split]
        clean = [p for p in split if not pruning.is_pruned(code, proj, dname, p,
                                                          multi_slice=True)]
        assert plan in (clean or split)
        assert plan.block_h == max(p.block_h for p in clean or split)


@pytest.mark.parametrize("dname", ["fp32", "tf32", "fp16", "bf16"])
def test_every_split_shape_has_a_multi_slice_plan(dname, monkeypatch):
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", dname == "tf32")
    dtype = dtypes.torch_dtype(dname)
    for code in CELL_CODES.values():
        for hidden in (100, 256, 768, 2048, 8192):
            for width in {hidden, hidden // 4} if code == LSTM else {hidden}:
                plan = config.multi_slice_plan(code, hidden, width, dtype)
                assert plan.split and plan in config.candidates(code, hidden, width, dtype)


def test_pruned_resident_forms_keep_fewer_chunks(monkeypatch):
    """A form the compile report pruned (it spilled holding that many chunks on chip and
    streaming the rest) is not laid out: each kernel, forward and backward, keeps the most
    bytes on chip of its forms not pruned for the device's architecture family, and the
    compile report's layout (compile_specs.split_layout_for) is the same one."""
    from tritonrnn.kernels.compile_specs import split_layout_for

    def kept(layout):  # chunks of W_hh the forward and the backward keep
        return tuple(layout.kernel_resident(2048, 2048, b)[0] for b in (False, True))
    plan = config.Plan(True, 16, 16, 256, 4, 1)
    backward_4 = pruning.resident_key("LSTM", False, "fp16", plan.as_dict(), 90,
                                      "split_backward", (4, 0, True, False, 2))
    prune_resident_forms(monkeypatch, {backward_4})
    # H = 2048 keeps 4 chunks of 8 by shared memory; the backward's form is pruned on sm_90
    assert kept(config.split_layout(plan, LSTM, 2048, 2048, torch.float16, H100)) == (4, 3)
    assert kept(split_layout_for("LSTM", "fp16", plan.as_dict(), 2048, 2048, 90)) == (4, 3)
    assert kept(config.split_layout(plan, LSTM, 2048, 2048, torch.float16, A100)) == (4, 4)
    # H = 1024 holds 4 chunks and streams nothing: another form, kept
    assert config.split_layout(plan, LSTM, 1024, 1024, torch.float16, H100).forms()[1][0] == 4
    # the multi-slice forms are pruned per plan, not per resident form
    assert kept(config.split_layout(plan, LSTM, 2048, 2048, torch.float16,
                                    (100,) + H100[1:])) == (4, 4)
    # with a projection, W_hr's chunks go first where they hold fewer bytes (16 rows
    # against W_hh's 64); the backward keeps only the W_hr chunk its P = 192 columns need
    forward_13 = pruning.resident_key("LSTM", True, "fp16", plan.as_dict(), 90,
                                      "split_forward", (1, 3, False, False, 2))
    prune_resident_forms(monkeypatch, {forward_13})
    layout = config.split_layout(plan, LSTM, 768, 192, torch.float16, H100)
    assert (layout.res_chunks, layout.res_proj) == (1, 2)
    assert layout.kernel_resident(768, 192, backward=True) == (1, 1, False, False, 2)
    # every form pruned: what shared memory allows (the compile report shows it failing)
    everything = {pruning.resident_key("LSTM", False, "fp16", plan.as_dict(), 90,
                                       "split_forward", (r, 0, True, False, 2)) for r in range(5)}
    prune_resident_forms(monkeypatch, everything)
    assert config.split_layout(plan, LSTM, 2048, 2048, torch.float16, H100).res_chunks == 4


def test_tf32_streams_in_one_stage_where_two_are_pruned(monkeypatch):
    """TF32 streams its columns past the resident chunks in two pipeline stages, or in one
    where the compile report pruned two; the multi-slice forms take one."""
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", True)
    plan = config.Plan(True, 16, 16, 256, 4, 1)
    prune_resident_forms(monkeypatch)
    layout = config.split_layout(plan, LSTM, 768, 768, torch.float32, H100)
    assert (layout.res_chunks, layout.stream_stages) == (2, 2)
    two = pruning.resident_key("LSTM", False, "tf32", plan.as_dict(), 90, "split_forward",
                               (2, 0, True, False, 2))
    prune_resident_forms(monkeypatch, {two})
    layout = config.split_layout(plan, LSTM, 768, 768, torch.float32, H100)
    assert (layout.res_chunks, layout.stream_stages) == (2, 1)
    multi = config.split_layout(plan, LSTM, 768, 768, torch.float32, (10,) + H100[1:])
    assert multi.multi and multi.stream_stages == 1
    assert config.split_layout(plan, LSTM, 768, 768, torch.float16, H100).stream_stages == 2


def test_fp32_without_tf32_streams_its_rows(monkeypatch):
    """fp32 products without TF32 run on the FMA units, which hold both operands in
    registers: a resident W would be a register-resident one (it spilled at every size), so
    none is kept and the rows are streamed."""
    prune_resident_forms(monkeypatch)
    plan = config.Plan(True, 16, 16, 256, 4, 1)
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    layout = config.split_layout(plan, LSTM, 768, 768, torch.float32, H100)
    assert (layout.res_chunks, layout.res_proj) == (0, 0) and layout.streams(768, 768)[0]
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", True)
    assert config.split_layout(plan, LSTM, 768, 768, torch.float32, H100).res_chunks == 2


@pytest.mark.parametrize("batch,directions,hidden,dtype,wide", [
    (64, 1, 768, torch.float16, True),    # 4 groups of 48 programs: 2 waves; 2 groups: 1
    (64, 1, 1024, torch.bfloat16, False),  # 2 waves, but 32 rows spill there (sm_90)
    (32, 2, 768, torch.float16, True),    # 2 tiles x 2 directions of 48: 2 waves; 2: 1
    (32, 1, 768, torch.float16, False),   # 2 groups of 48 fit already
    (64, 1, 512, torch.float16, False),   # 4 groups of 32 fit already
    (16, 1, 768, torch.float16, False),   # one tile of 16
    (64, 1, 768, torch.float32, False),   # TF32: no wide tile
])
def test_batch_tile_widens_only_where_it_saves_a_wave(monkeypatch, batch, directions, hidden,
                                                      dtype, wide):
    """The default split plan takes 32 batch rows a program instead of 16 exactly where 16
    would leave groups of programs waiting for a second wave (config.batch_tiled_layout) and
    the 32-row tile keeps all of W on chip without spilling (config.wide_batch_layout), and
    then every group runs at once."""
    monkeypatch.setattr(config, "device_limits", lambda device: H100)
    monkeypatch.setattr(config, "_tuned", lambda *args: None)
    decided = config.launch(LSTM, hidden, hidden, dtype, batch, torch.device("cuda"),
                            directions)
    layout = decided.layout
    assert layout is not None and not layout.multi
    assert decided.plan.block_b == (config.WIDE_BLOCK_B if wide else config.BLOCK_B)
    if wide:
        groups = -(-batch // config.WIDE_BLOCK_B) * directions
        assert groups * layout.progs <= H100[0]
        narrow = config.split_layout(config.default_plan(LSTM, hidden, hidden, dtype), LSTM,
                                     hidden, hidden, dtype, H100)
        assert decided.plan == config.Plan(**dict(narrow.plan.as_dict(), block_b=32))


def test_batch_tile_stays_with_forced_plans_and_the_interpreter(monkeypatch):
    """Forced plans (tests, the tuner) and the interpreter's layout keep their batch tile."""
    monkeypatch.setattr(config, "_tuned", lambda *args: None)
    assert config.launch(LSTM, 768, 768, torch.float16, 64).plan.block_b == config.BLOCK_B
    monkeypatch.setattr(config, "device_limits", lambda device: H100)
    with config.force_split(16):
        plan = config.launch(LSTM, 768, 768, torch.float16, 64, torch.device("cuda")).plan
    assert plan.block_b == config.BLOCK_B
