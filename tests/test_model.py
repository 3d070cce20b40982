"""bench/model.py's arithmetic on a hand-made per-step record (no compile): the latency chain,
the low end overlapping the work terms (instruction issue among them) and the high end
adding them, the GEMMs and waves of a sequence; --calibrate refusing to run without a GPU,
and keeping every part it measured when its time runs out."""
import json

import pytest

from bench import gpu_constants, model

STEP = dict(dependent_round_trips=10, membar_instr=1, wait_loops=1, bar_instr=4,
            ldg_bytes=64_000, stg_bytes=0, lds_bytes=128_000, sts_bytes=0,
            hgmma_smem_bytes=0, mma_kinds={"HMMA.16816": 10}, instructions=700)
RECORD = dict(per_step=STEP, config=dict(num_warps=4, block_b=16), programs_per_group=48)


def test_step_cycles():
    consts = gpu_constants.constants("H100")
    low = model.step_cycles(STEP, 4, consts, 0)
    high = model.step_cycles(STEP, 4, consts, 1)
    assert low["latency"] == 10 * 300 + 300 + 150 + 4 * 20
    assert high["latency"] == 10 * 500 + 500 + 500 + 4 * 40
    assert low["l2"] == 64_000 / 64 and high["l2"] == 64_000 / 40
    assert low["smem"] == high["smem"] == 1000  # 128 KB at 128 B/clk
    flops = 10 * 4096 * 4  # 10 HMMA.16816 per warp, 4 warps
    assert low["mma"] == pytest.approx(flops / consts["hmma_flop_per_clk"][0])
    assert low["issue"] == 700 and high["issue"] == 1400  # 4 warps: one a scheduler
    assert model.step_cycles(STEP, 8, consts, 0)["issue"] == 1400  # two a scheduler
    assert low["total"] == low["latency"] + max(low["l2"], low["smem"], low["mma"],
                                                low["issue"])
    assert high["total"] == pytest.approx(high["latency"] + high["l2"] + high["smem"]
                                          + high["mma"] + high["issue"])


def test_records_without_instruction_counts_are_refused():
    """A compile record made before instructions were counted would leave issue out of the
    estimate without saying so: the model refuses it."""
    consts = gpu_constants.constants("H100")
    old = {k: v for k, v in STEP.items() if k != "instructions"}
    with pytest.raises(ValueError, match="compile it again"):
        model.step_cycles(old, 4, consts, 0)


def test_sequence_scales_with_steps_and_waves():
    consts = gpu_constants.constants("H100")
    one = model.sequence_ms("LSTM", 16, 768, 1000, RECORD, RECORD, consts)
    two = model.sequence_ms("LSTM", 16, 768, 2000, RECORD, RECORD, consts)
    gemm = one["gemm_ms"][0][0]
    assert gemm == pytest.approx(2 * 1000 * 16 * 768 * 4 * 768 / 650e12 * 1e3)
    assert two["forward"][0] - 2 * gemm == pytest.approx(2 * (one["forward"][0] - gemm))
    # 16 batch tiles of 48 programs: 2 fit on 132 SMs at once, so 8 waves
    wide = model.sequence_ms("LSTM", 256, 768, 1000, RECORD, RECORD, consts)
    recurrence = one["forward"][0] - gemm
    assert wide["forward"][0] - wide["gemm_ms"][0][0] == pytest.approx(8 * recurrence)


def test_calibrate_needs_a_gpu(capsys):
    # This tier runs under the interpreter with no CUDA device.
    assert model.main(["--calibrate"]) == 2
    assert "needs a CUDA GPU" in capsys.readouterr().err


def test_calibration_keeps_each_part_as_it_is_measured(tmp_path, monkeypatch):
    """The quick GPU check stops the calibration at its time limit: the file is rewritten
    after each part, with the constants those parts give, so a stopped run keeps them."""
    import torch
    from bench import calibrate
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda: "a GPU")

    def stopped(repeats=5):
        yield "chase_cycles_per_hop", [290.0, 286.0, 288.0]
        yield "chase_ns_per_hop", [145.0, 145.0, 145.0]
        yield "step_profile_h768_inference", dict(split_forward=dict(
            programs=48, step=[1, 2, 3], work=[1, 1, 1], wait=[0, 1, 2], release=[0, 0, 0]))
        raise KeyboardInterrupt  # the time limit's signal, before the rest
    monkeypatch.setattr(calibrate, "measure", stopped)
    out = tmp_path / "c.json"
    with pytest.raises(KeyboardInterrupt):
        calibrate.main("H200", str(out))
    record = json.loads(out.read_text())
    assert set(record["raw"]) == {"chase_cycles_per_hop", "chase_ns_per_hop",
                                  "step_profile_h768_inference"}
    assert record["constants"] == {"l2_latency_clk": 288.0, "clock_ghz": 288.0 / 145.0}
    assert calibrate.profile_text(record["raw"]["step_profile_h768_inference"]) == (
        "split_forward, 48 programs, cycles a step: step 2 [1-3], work 1 [1-1], wait 1 [0-2], "
        "release 0 [0-0]")


def test_design_bound_counts_one_wait_h_and_the_w_rows():
    """bench/design_bound.py at the anchor's 16-unit slices, by hand: one L2 round trip and
    one exchange; all of h (16 x 768 fp16) and 4 gates x 16 units of input projection from
    L2; 64 rows x 768 of W from shared memory; low end overlapped, high end added."""
    from bench import design_bound
    consts = gpu_constants.constants("H100")
    b = design_bound.bound(16, 4, 16, 768, 1024, 2, consts)
    assert (b.programs, b.w_bytes, b.fits) == (48, 64 * 768 * 2, True)
    h_x = 16 * 768 * 2 + 16 * 4 * 16 * 2
    assert b.step_cycles[0] == pytest.approx(300 + 150 + max(h_x / 64, 98_304 / 128))
    assert b.step_cycles[1] == pytest.approx(500 + 500 + h_x / 40 + 98_304 / 128)
    assert b.step_bytes == 48 * h_x + 48 * 48 * 4  # and one poll of 48 int32 flags each
    gemm = model.gemm_ms(2.0 * 1024 * 16 * 768 * 4 * 768, consts)
    assert b.forward_ms[1] == pytest.approx(1024 * b.step_cycles[1] / 1.755e6 + gemm[1])
    assert design_bound.budget_cycles(b, 1.5, 1024, consts) == pytest.approx(
        (1.5 - gemm[1]) * 1.755e6 / 1024)
    # 64-unit slices: 256 rows of W (384 KiB) fit no block's shared memory
    assert not design_bound.bound(64, 4, 16, 768, 1024, 2, consts).fits
    # W in registers instead: no shared-memory term; 192 KiB fits a register file, 384 not
    regs = design_bound.bound(32, 4, 16, 768, 1024, 2, consts, w_in_registers=True)
    assert regs.fits and regs.step_cycles[1] == pytest.approx(1000 + (h_x + 2048) / 40)
    assert not design_bound.bound(64, 4, 16, 768, 1024, 2, consts, w_in_registers=True).fits


@pytest.mark.parametrize("gpu", ["H100", "H200"])
def test_no_slice_width_meets_both_anchor_targets(gpu):
    """The resident-weights issue's two targets at the anchor pull against each other in this
    design, by the model's own constants (H200: as calibrated on one, 2026-11-30): fewer
    programs load fewer copies of h, but each then reads more rows of W from shared memory
    a step. The slice widths that can run: 8 units (time only), 16 (neither), 32 (bytes only).
    This holds until the constants change: it is a statement about them, not a target."""
    from bench import design_bound
    from bench.shapes import (ANCHOR_MODEL_TARGET_MS, ANCHOR_STEP_BYTES_BEFORE,
                              ANCHOR_STEP_BYTES_TARGET)
    consts = gpu_constants.constants(gpu, model.load_calibration(gpu) if gpu == "H200" else None)
    meets = {}
    for b in design_bound.slice_bounds(4, 16, 768, 1024, 2, consts):
        if b.fits:
            meets[b.units] = (b.forward_ms[1] <= ANCHOR_MODEL_TARGET_MS["forward"],
                              b.step_bytes < ANCHOR_STEP_BYTES_TARGET * ANCHOR_STEP_BYTES_BEFORE)
    assert meets == {8: (True, False), 16: (False, False), 32: (False, True)}
