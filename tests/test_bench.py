"""The benchmark's parts that do not need a GPU: statistics, the shape plan, the CSV schema,
the measurement loop with a fake timer, the target verdicts, and the plots of a synthetic GPU
CSV and of a CPU CSV.
"""
import datetime
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from bench import records, shapes, summary
from bench.measure import measure_case
from bench.timing import choose_reps, input_set_count, percentile, summarize

# The library's tests need no plotting library; the plot tests need the bench extra, which
# run_tests.sh installs.
NO_PLOTS = "the plot tests need matplotlib: pip install -e '.[bench]' (run_tests.sh does)"

# -- statistics -----------------------------------------------------------------------------------


def test_percentiles_of_a_known_list():
    xs = [5.0, 1.0, 4.0, 2.0, 3.0]  # unsorted on purpose
    s = summarize(xs)
    assert (s.median, s.p20, s.p80, s.n) == (3.0, pytest.approx(1.8), pytest.approx(4.2), 5)
    assert percentile([7.0], 20) == percentile([7.0], 80) == 7.0


@pytest.mark.parametrize("n", [2, 7, 100], ids=["n2", "n7", "n100"])
def test_percentiles_match_torch_quantile(n):
    xs = torch.rand(n, dtype=torch.float64) * 10
    for q in (20, 50, 80):
        assert percentile(xs.tolist(), q) == pytest.approx(torch.quantile(xs, q / 100).item())


def test_reps_and_input_sets_stay_in_bounds():
    assert choose_reps(0.01, 300, 5, 100) == 100   # fast call: capped
    assert choose_reps(1000.0, 300, 5, 100) == 5   # slow call: at least min_reps
    assert choose_reps(10.0, 300, 5, 100) == 30
    assert input_set_count(10**9, 50 * 2**20) == 2           # big inputs: still rotate 2
    assert input_set_count(1024, 50 * 2**20) == 8            # tiny inputs: capped
    assert input_set_count(25 * 2**20, 50 * 2**20) == 4      # together twice the cache


# -- the shape plan -------------------------------------------------------------------------------


def test_anchor_and_references_are_the_issue_figures():
    a = shapes.ANCHOR
    assert (a.cell, a.batch, a.seq, a.hidden) == ("LSTM", 16, 1024, 768)
    assert shapes.ANCHOR_REFERENCE_MS["cuDNN persistent (H100)"] == {
        "forward": 2.01, "forward+backward": 5.19}
    assert shapes.ANCHOR_REFERENCE_MS["FlashRNN best fused CUDA (H100)"] == {
        "forward": 4.87, "forward+backward": 13.61}
    assert shapes.ANCHOR_TARGET_MS == {"forward": 1.0, "forward+backward": 2.6}


def test_deepbench_tables():
    train, infer = shapes.deepbench_training(), shapes.deepbench_inference()
    assert len(train) == 52 and len(infer) == 69 + 3
    assert all(s.input_size == s.hidden and s.layers == 1 and not s.bidirectional
               for s in train + infer)
    assert {s.cell for s in train} == {"RNN_RELU", "LSTM", "GRU"}  # vanilla is cuDNN's ReLU
    assert shapes.Shape("GRU", 1, 2816, 1500, 2816, suite="deepbench-inference") in infer
    assert shapes.Shape("LSTM", 128, 4096, 25, 4096, suite="deepbench-training") in train


def _keys(cases):
    return {(c.shape, c.dtype, c.mode) for c in cases}


def test_default_plan_has_the_anchor_sweeps_and_deepbench_inference():
    cases = shapes.plan("default")
    anchor = [c for c in cases if c.shape.suite == "anchor"]
    assert {(c.dtype, c.mode) for c in anchor} == {(d, m) for d in shapes.ANCHOR_DTYPES
                                                   for m in shapes.MODES}
    for axis, values in shapes.SWEEP.items():
        for family in ("LSTM", "GRU", "RNN"):
            got = {getattr(c.shape, axis) for c in cases
                   if c.shape.suite == f"sweep-{axis}" and c.shape.family == family}
            assert got == set(values), (axis, family)
    assert min(shapes.SWEEP["batch"]) == 1 and max(shapes.SWEEP["batch"]) == 256
    assert min(shapes.SWEEP["hidden"]) == 64 and max(shapes.SWEEP["hidden"]) == 2048
    assert min(shapes.SWEEP["seq"]) == 16 and max(shapes.SWEEP["seq"]) == 4096
    assert any(c.shape.layers > 1 and c.shape.bidirectional for c in cases)
    deep = [c for c in cases if c.shape.suite == "deepbench-inference"]
    assert {c.shape for c in deep} == set(shapes.deepbench_inference())
    assert {c.mode for c in deep} == {"forward"}
    assert not any(c.shape.suite == "deepbench-training" for c in cases)


def test_quick_is_a_subset_of_default_and_full_adds_training_and_fp32():
    quick, default, full = (shapes.plan(lvl) for lvl in ("quick", "default", "full"))
    assert _keys(quick) < _keys(default) < _keys(full)
    assert any(c.shape.suite == "anchor" for c in quick)
    assert len(quick) < 40
    assert {c.shape for c in full if c.shape.suite == "deepbench-training"} == set(
        shapes.deepbench_training())
    assert "fp32" in {c.dtype for c in full} and "fp32" not in {c.dtype for c in default}


def test_plan_filters_and_custom_grid():
    cases = shapes.plan("default", families=("GRU",), dtypes=("bf16",), modes=("forward",))
    assert {c.shape.cell for c in cases} == {"GRU"}
    assert {(c.dtype, c.mode) for c in cases} == {("bf16", "forward")}
    grid = shapes.custom_grid("RNN", batch=(1, 3), seq=(5,))
    assert [(s.cell, s.batch, s.hidden, s.seq) for s in grid] == [
        ("RNN_TANH", 1, 768, 5), ("RNN_TANH", 3, 768, 5)]
    assert len(shapes.plan(custom=grid, dtypes=("fp16",))) == 2 * 2  # two modes


def test_dry_run_lists_the_plan(capsys):
    from bench.__main__ import main

    main(["--quick", "--dry-run"])
    out = capsys.readouterr().out
    assert "anchor" in out and "LSTM B=16 H=768 T=1024" in out
    assert f"{len(shapes.plan('quick'))} cases x 4 providers" in out


# -- measuring with a fake timer, and the CSV schema ----------------------------------------------


class FakeTimer:
    """Stands in for CudaEventTimer: runs the function once per input set (so it must work)
    and returns fixed samples."""
    cache_bytes = 0  # no cache to defeat: the minimum of two rotating input sets
    samples = [4.0, 1.0, 2.0, 3.0, 5.0]

    def __init__(self):
        self.calls = 0

    def __call__(self, fn, input_sets, before_each=lambda: None):
        for inputs in input_sets:
            before_each()
            fn(inputs)
            self.calls += 1
        return list(self.samples)


def _fake_gpu_context():
    return records.context(records.GPU, device="NVIDIA H100 80GB HBM3 (synthetic)")


def _check_context_columns(rows):
    for r in rows:
        assert set(r) == set(records.COLUMNS)
        for column in ("run_kind", "device", "torch", "triton", "commit", "timestamp"):
            assert r[column] not in ("", None), column
        stamp = datetime.datetime.fromisoformat(r["timestamp"])
        assert stamp.utcoffset() == datetime.timedelta(0)


@pytest.mark.parametrize("mode", shapes.MODES)
def test_measure_case_rows(mode, tmp_path):
    shape = shapes.Shape("LSTM", batch=2, hidden=16, seq=3, input_size=8, suite="custom")
    timer = FakeTimer()
    rows = measure_case(shapes.Case(shape, "fp32", mode), ("tritonrnn", "torch", "loop"),
                        timer, "cpu", _fake_gpu_context())
    assert timer.calls == 3 * 2  # every provider ran on both rotated input sets
    _check_context_columns(rows)
    by = {(r["provider"], r["metric"]): r for r in rows}
    assert not [r for r in rows if r["metric"] == "error"]
    for provider in ("tritonrnn", "torch", "loop"):
        t = by[(provider, "time")]
        assert (t["value"], t["p20"], t["p80"], t["n"], t["unit"]) == (
            3.0, pytest.approx(1.8), pytest.approx(4.2), 5, "ms")
        tok = by[(provider, "tokens_per_s")]
        assert tok["value"] == pytest.approx(shape.tokens / 3.0e-3)
        assert tok["p20"] < tok["value"] < tok["p80"]
        # All providers hold torch.nn's weights and compute the same layer (fp32).
        assert by[(provider, "max_abs_diff_vs_torch")]["value"] < 1e-5

    path = tmp_path / "gpu.csv"
    writer = records.CsvWriter(path)
    writer.write(rows)
    writer.close()
    back = records.read(path)
    assert len(back) == len(rows) and list(back[0]) == list(records.COLUMNS)
    _check_context_columns(back)


def test_gpu_flow_with_a_fake_timer(tmp_path, capsys):
    """python -m bench's GPU path end to end (plan, measure, CSV, table, targets) on CPU
    tensors with a fake timer, native torch.nn only."""
    from bench.__main__ import parse_args, run_gpu

    args = parse_args(["--cells", "GRU", "--batch", "2", "--hidden", "8", "--seq", "3,4",
                       "--dtypes", "fp32", "--providers", "torch,loop",
                       "--out", str(tmp_path)])
    path = run_gpu(args, timer=FakeTimer(), device="cpu", device_name="test device")
    rows = records.read(path)
    assert {(r["seq"], r["mode"], r["provider"]) for r in rows if r["metric"] == "time"} == {
        (t, m, p) for t in ("3", "4") for m in shapes.MODES for p in ("torch", "loop")}
    assert {r["device"] for r in rows} == {"test device"}
    out = capsys.readouterr().out
    assert "GRU B2 H8 T3" in out and "Targets" in out


def test_a_point_shared_by_suites_is_measured_once():
    from dataclasses import replace

    from bench.measure import measure_cases

    shape = shapes.Shape("RNN_TANH", batch=2, hidden=8, seq=2, input_size=4, suite="sweep-batch")
    cases = [shapes.Case(s, "fp32", "forward")
             for s in (shape, replace(shape, suite="sweep-seq"), replace(shape, seq=3))]
    timer = FakeTimer()
    per_case = list(measure_cases(cases, ("torch",), timer, "cpu", _fake_gpu_context()))
    assert timer.calls == 2 * 2  # two distinct points, two input sets each
    assert [{r["suite"] for r in rows} for rows in per_case] == [
        {"sweep-batch"}, {"sweep-seq"}, {"sweep-batch"}]
    strip = [{k: v for k, v in r.items() if k != "suite"} for r in per_case[0]]
    assert strip == [{k: v for k, v in r.items() if k != "suite"} for r in per_case[1]]


def test_failed_provider_is_an_error_row_not_a_crash():
    shape = shapes.Shape("GRU", batch=2, hidden=8, seq=2, input_size=4)
    rows = measure_case(shapes.Case(shape, "fp32", "forward"), ("no_such_provider", "torch"),
                        FakeTimer(), "cpu", _fake_gpu_context())
    errors = [r for r in rows if r["metric"] == "error"]
    assert [r["provider"] for r in errors] == ["no_such_provider"]
    assert any(r["provider"] == "torch" and r["metric"] == "time" for r in rows)


def test_row_rejects_unknown_columns():
    with pytest.raises(KeyError):
        records.row(_fake_gpu_context(), "time", 1.0, speed=3)


# -- targets --------------------------------------------------------------------------------------


def _time_rows(ctx, shape, dtype, mode, ms_by_provider):
    return [records.row(ctx, "time", ms, "ms", shape=shape, dtype=dtype, mode=mode, provider=p,
                        p20=ms * 0.95, p80=ms * 1.05, n=20)
            for p, ms in ms_by_provider.items()]


def synthetic_gpu_rows():
    """Times shaped like a real run: tritonrnn 2x faster than torch.nn, the loop 50x slower."""
    ctx, rows = _fake_gpu_context(), []
    plan = shapes.plan("quick", dtypes=("fp16",))
    plan += [shapes.Case(s, "fp16", "forward") for s in shapes.deepbench_inference()[:4]]
    for c in plan:
        base = 1e-4 * c.shape.tokens * (c.shape.hidden / 768) ** 2 * (
            3 if c.mode == "forward+backward" else 1)
        rows += _time_rows(ctx, c.shape, c.dtype, c.mode,
                           {"tritonrnn": base, "torch": 2 * base, "loop": 100 * base,
                            "loop_compiled": 40 * base})
    return rows


def test_targets_verdicts():
    rows = synthetic_gpu_rows()
    verdicts = {name.split(":")[0].split(" <=")[0]: v for name, v, _ in summary.targets(rows)}
    # Anchor: 1e-4 * 16384 tokens = 1.64 ms forward (> 1.0: missed), 4.9 ms fwd+bwd (missed).
    assert verdicts["anchor forward"] is False
    assert verdicts["anchor forward+backward"] is False
    assert verdicts["DeepBench inference, B"] is True
    assert verdicts[">= 20x faster than the PyTorch loop everywhere"] is True
    fast = [dict(r, value=0.5) if r["suite"] == "anchor" and r["provider"] == "tritonrnn"
            else r for r in rows]
    verdicts = {name.split(" <=")[0]: v for name, v, _ in summary.targets(fast)}
    assert verdicts["anchor forward"] is True


# -- plots ----------------------------------------------------------------------------------------


@pytest.fixture
def titles(monkeypatch):
    """Records the title of every figure saved."""
    matplotlib = pytest.importorskip("matplotlib", reason=NO_PLOTS)
    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    seen = {}
    save = Figure.savefig

    def recording_save(self, path, *args, **kwargs):
        seen[str(path)] = self._suptitle.get_text() if self._suptitle else ""
        return save(self, path, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", recording_save)
    return seen


def _write(rows, path):
    w = records.CsvWriter(path)
    w.write(rows)
    w.close()
    return path


def test_plots_from_a_gpu_csv(tmp_path, titles):
    from bench.plot import draw

    csv_path = _write(synthetic_gpu_rows(), tmp_path / "gpu.csv")
    written = {p.name for p in draw(csv_path, tmp_path / "plots")}
    for axis in ("batch", "hidden", "seq"):
        for mode in ("forward", "forward_backward"):
            assert f"speedup_{axis}_{mode}.png" in written
    assert {"anchor.png", "deepbench_inference_forward.png"} <= written
    for path, title in titles.items():
        assert "NVIDIA H100 80GB HBM3 (synthetic)" in title, path
        assert "CPU" not in title
    for name in written:
        assert (tmp_path / "plots" / name).read_bytes()[:4] == b"\x89PNG"


def test_plots_from_a_cpu_csv_are_labelled_and_show_no_speed(tmp_path, titles):
    from bench.plot import draw

    ctx = records.context(records.CPU_INTERPRETER)
    shape = shapes.Shape("LSTM", 3, 20, 6, 12, suite="agreement")
    rows = [records.row(ctx, "max_abs_err_vs_float64", v, shape=shape, dtype="fp32",
                        mode="forward+backward", provider=p, quantity=q)
            for p, v in (("tritonrnn", 1e-7), ("torch", 2e-7)) for q in ("output", "grad_input")]
    tshape = shapes.Shape("LSTM", 16, 64, 0, 64, suite="traffic")
    rows += [records.row(ctx, m, v, "bytes", shape=tshape, dtype="fp16", mode="forward",
                         provider="tritonrnn", quantity="fused")
             for m, v in (("bytes_per_step", 10240), ("bytes_per_step_lower_bound", 10240))]
    rows += [records.row(ctx, "launches_per_sequence", 1, "launches", shape=tshape,
                         dtype="fp16", mode="forward", provider="tritonrnn", quantity=f"T={t}")
             for t in (3, 6)]
    rows += [records.row(ctx, m, v, suite="compile-report-sm_90", hidden=128, dtype="fp16",
                         provider="tritonrnn", quantity="fused_forward BLOCK_H=128")
             for m, v in (("registers", 168), ("spills_bytes", 0), ("shared_bytes", 137216),
                          ("shared_limit", 232448), ("tensor_cores", 1))]
    csv_path = _write(rows, tmp_path / "cpu.csv")
    written = {p.name for p in draw(csv_path, tmp_path / "plots")}
    assert written == {"agreement.png", "traffic.png", "compile_resources.png"}
    assert titles and all(t.startswith(records.CPU_LABEL) for t in titles.values())
    assert not any("speedup" in t.lower() or " ms" in t for t in titles.values())


def test_plot_refuses_mixed_run_kinds(tmp_path):
    from bench.plot import draw

    rows = synthetic_gpu_rows()[:2]
    rows[1] = dict(rows[1], run_kind=records.CPU_INTERPRETER)
    with pytest.raises(ValueError, match="one run kind"):
        draw(_write(rows, tmp_path / "mixed.csv"), tmp_path)


# -- the CPU report -------------------------------------------------------------------------------


def test_cpu_agreement_rows_are_accuracy_not_time():
    from bench.cpu_report import agreement

    ctx = records.context(records.CPU_INTERPRETER)
    rows = agreement(["GRU"], ["fp32"], ctx, shape_kw=dict(batch=2, hidden=8, seq=3,
                                                            input_size=5, layers=1,
                                                            bidirectional=False))
    assert {r["metric"] for r in rows} == {"max_abs_err_vs_float64"}
    assert {r["run_kind"] for r in rows} == {records.CPU_INTERPRETER}
    assert {r["quantity"] for r in rows} == {"output", "h_n", "grad_input", "grad_h0",
                                             "grad_weights"}
    for r in rows:
        assert math.isfinite(r["value"]) and r["value"] < 1e-5, r


FAKE_COMPILE_REPORT = '''
import argparse, json, os, sys
parser = argparse.ArgumentParser()
parser.add_argument("--arch")
parser.add_argument("--quick", action="store_true")
parser.add_argument("--cells")
parser.add_argument("--hidden")
parser.add_argument("--json")
args = parser.parse_args()
if "TRITON_INTERPRET" in os.environ or not args.quick:
    sys.exit("expected the interpreter off and --quick")
json.dump([{"kernel": "fused_forward", "arch": args.arch, "dtype": "fp16",
            "config": {"BLOCK_H": 128, "num_warps": 8}, "hidden_size": 128, "registers": 168,
            "spills_bytes": 0, "shared_bytes": 137216, "shared_limit": 232448,
            "tensor_cores": True, "compile_s": 0.4}], open(args.json, "w"))
'''


def test_compile_report_integration_follows_the_json_contract(tmp_path, monkeypatch):
    """A stand-in honouring bench.compile_report's contract (command line, JSON keys, no
    interpreter in its environment) feeds the CPU report's rows without compiling anything
    (tests/test_compile.py runs the real report)."""
    from bench.cpu_report import compile_report

    (tmp_path / "fake_compile_report.py").write_text(FAKE_COMPILE_REPORT)
    monkeypatch.syspath_prepend(str(tmp_path))
    rows, note = compile_report(records.context(records.CPU_INTERPRETER),
                                module="fake_compile_report")
    assert note is None
    got = {r["metric"]: r for r in rows}
    assert set(got) == {"registers", "spills_bytes", "shared_bytes", "shared_limit",
                        "tensor_cores"}
    assert got["registers"]["value"] == 168 and got["tensor_cores"]["value"] == 1
    assert got["shared_bytes"]["suite"] == "compile-report-sm_90"
    assert got["shared_bytes"]["quantity"] == "fused_forward BLOCK_H=128 num_warps=8"

    rows, note = compile_report(records.context(records.CPU_INTERPRETER),
                                module="no_such_compile_report")
    assert rows == [] and "not in this tree" in note


def test_main_job_starts_the_interpreter_itself(tmp_path):
    """`python -m bench` as the README runs it, in a fresh process without TRITON_INTERPRET:
    the main job turns the interpreter on before anything imports tritonrnn (it once did so
    only after parsing its arguments, which import it, and the CPU run refused to start)."""
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--cells", "RNN", "--dtypes", "fp32",
         "--no-compile-report", "--no-plots", "--batch", "2", "--hidden", "8", "--seq", "2",
         "--layers", "1", "--bidirectional", "no", "--out", str(tmp_path)],
        cwd=Path(__file__).resolve().parents[1], env=env, capture_output=True, text=True,
        timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "nothing is timed" in proc.stdout
    assert (tmp_path / "cpu-interpreter.csv").exists()


def test_cpu_run_end_to_end_reports_no_time(tmp_path, capsys):
    """python -m bench without a GPU, cut down: labelled tables, a CSV with no timing row, and
    the CPU figures in the folder asked for."""
    from bench.__main__ import main

    main(["--cells", "RNN", "--dtypes", "fp32", "--no-compile-report", "--batch", "2",
          "--hidden", "8", "--seq", "3", "--layers", "1", "--bidirectional", "no",
          "--out", str(tmp_path), "--plots-dir", str(tmp_path / "plots")])
    out = capsys.readouterr().out
    assert records.CPU_LABEL in out and "nothing is timed" in out
    rows = records.read(tmp_path / "cpu-interpreter.csv")
    metrics = {r["metric"] for r in rows}
    assert {"max_abs_err_vs_float64", "launches_per_sequence", "bytes_per_step",
            "bytes_per_step_lower_bound"} <= metrics
    assert not metrics & {"time", "tokens_per_s"}
    assert {r["run_kind"] for r in rows} == {records.CPU_INTERPRETER}
    fused = [r for r in rows if r["metric"] == "launches_per_sequence" and r["hidden"] == "64"]
    assert {r["value"] for r in fused} == {"1"}  # one launch per sequence, whatever T
    pytest.importorskip("matplotlib", reason=NO_PLOTS)
    assert {p.name for p in (tmp_path / "plots").iterdir()} == {"agreement.png", "traffic.png"}
