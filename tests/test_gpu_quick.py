"""The GPU check that fits one visit (bash bench/gpu_evidence.sh --quick), without a GPU: its
dry run end to end, the runner's time limits and budget, what it reads back from each step's
file, and its one figure."""
import csv
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench import gpu_quick, parity_smoke, records
from bench.plot import draw_speedup_vs_hidden

ROOT = Path(__file__).resolve().parents[1]


def test_dry_run_fits_and_lists_every_regime(tmp_path):
    """What CI runs: offline install, imports, the H200 plans, the file budget, the estimate."""
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["PYTHON"] = sys.executable
    out = tmp_path / "quick"
    proc = subprocess.run(["bash", "bench/gpu_evidence.sh", "--quick", "--dry-run", str(out)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=400)
    text = proc.stdout
    assert proc.returncode == 0, (text[-4000:], proc.stderr[-2000:])
    assert "verdict: fits" in text
    estimated = int(re.search(r"total\s+(\d+) s estimated; at most (\d+) s", text).group(1))
    assert estimated <= gpu_quick.BUDGET_S
    assert gpu_quick.limits_total() <= gpu_quick.BUDGET_S - gpu_quick.RESERVE_S
    # every regime is in the parity list, the multi-slice one with fewer programs than slices
    plans = re.findall(r"^\s+(fused|split|split_multi)\s+(\w+)\s+(fp16|bf16|fp32) .*$", text,
                       re.M)
    assert len(plans) == len(parity_smoke.all_cases())
    for line in re.findall(r"^\s+split_multi .*$", text, re.M):
        progs, slices = map(int, re.search(r"(\d+) programs/group, (\d+) slices", line).groups())
        assert progs == parity_smoke.FAKE_SMS < slices
    for line in re.findall(r"^\s+split\s+\w+ .*$", text, re.M):
        progs, slices = map(int, re.search(r"(\d+) programs/group, (\d+) slices", line).groups())
        assert progs == slices <= 132
    assert "anchor plans" in text and "sweep plans" in text and "file budget" in text
    summary = (out / gpu_quick.FILES["summary"]).read_text()
    assert "install" in summary and "plans" in summary
    assert len(list(out.iterdir())) <= gpu_quick.MAX_FILES


def test_at_most_eight_files_most_important_first():
    names = list(gpu_quick.FILES.values())
    assert len(names) <= gpu_quick.MAX_FILES and len(set(names)) == len(names)
    assert all("/" not in n for n in names)
    order = [gpu_quick.FILES[k] for k in ("env", "parity", "anchor", "calibrate", "sweep",
                                          "plot", "log")]
    assert order == sorted(order)
    step_files = [s.file for s in gpu_quick.steps()]
    assert step_files == sorted(step_files)


def test_runner_ends_a_step_at_its_limit_and_goes_on(tmp_path):
    run = gpu_quick.Run(tmp_path, sys.executable, dry_run=False)
    start = time.time()
    status, seconds = run.call("sleeper", [sys.executable, "-c",
                                           "import time; print('began', flush=True); "
                                           "time.sleep(60)"], 3)
    assert status == "timeout at 3 s" and seconds < 15 and time.time() - start < 15
    run.record("sleeper", status, seconds, 3, "")
    status, _ = run.call("next", [sys.executable, "-c", "print('second step ran')"], 30)
    assert status == "ok"
    run.record("next", status, 0.0, 30, "fine")
    run.log.close()
    log = (tmp_path / gpu_quick.FILES["log"]).read_text()
    assert "began" in log and "second step ran" in log  # written as it came
    summary = (tmp_path / gpu_quick.FILES["summary"]).read_text()
    assert "timeout at 3 s" in summary and "fine" in summary


def test_runner_never_passes_the_budget(tmp_path, monkeypatch):
    run = gpu_quick.Run(tmp_path, sys.executable, dry_run=False)
    monkeypatch.setattr(run, "start", time.time() - (gpu_quick.BUDGET_S - gpu_quick.RESERVE_S))
    status, seconds = run.call("late", [sys.executable, "-c", "pass"], 100)
    assert status.startswith("skipped") and seconds == 0.0
    monkeypatch.setattr(run, "start", run.start + 8)  # 8 s left: the limit shrinks to them
    status, _ = run.call("short", [sys.executable, "-c", "import time; time.sleep(30)"], 100)
    limit = int(re.fullmatch(r"timeout at (\d+) s", status).group(1))
    assert 3 <= limit <= 8
    run.log.close()


def _bench_rows(tmp_path, name, cases):
    ctx = records.context(records.GPU, device="NVIDIA H200 (synthetic)")
    rows = []
    for cell, dtype, mode, hidden, batch, ours, theirs in cases:
        for provider, ms in (("tritonrnn", ours), ("torch", theirs)):
            rows.append(records.row(ctx, "time", ms, "ms", provider=provider, suite="custom",
                                    cell=cell, batch=batch, hidden=hidden, seq=512,
                                    input_size=hidden, layers=1, bidirectional=0,
                                    dtype=dtype, mode=mode, p20=ms * 0.9, p80=ms * 1.1, n=5))
    path = tmp_path / name
    writer = records.CsvWriter(path)
    writer.write(rows)
    writer.close()
    return path


def test_what_the_summary_reads_back(tmp_path):
    anchor = _bench_rows(tmp_path, "a.csv", [("LSTM", "fp16", "forward", 768, 16, 4.0, 2.0),
                                             ("LSTM", "fp16", "forward+backward", 768, 16,
                                              12.0, 6.0)])
    assert gpu_quick.anchor_found(anchor) == (
        "forward 4.00 ms vs cuDNN 2.00 ms (0.50x); "
        "forward+backward 12.00 ms vs cuDNN 6.00 ms (0.50x)")
    sweep = _bench_rows(tmp_path, "s.csv", [("GRU", "bf16", "forward", h, b, 1.0, r)
                                            for h, r in ((128, 2.0), (256, 0.5))
                                            for b in (1, 16)])
    assert gpu_quick.sweep_found(sweep) == \
        "4 shapes; speedup over torch.nn geomean 1.00x, min 0.50x, max 2.00x"
    parity = tmp_path / "p.csv"
    with open(parity, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=parity_smoke.COLUMNS)
        w.writeheader()
        w.writerow(dict(regime="fused", kind="gru", dtype="fp16", status="ok"))
        w.writerow(dict(regime="split_multi", kind="lstm", dtype="bf16", status="timeout"))
    assert gpu_quick.parity_found(parity) == "1/2 ok; split_multi/lstm/bf16: timeout"
    calibration = tmp_path / "c.json"
    calibration.write_text(json.dumps({"raw": {"anchor_forward_ablation": {
        "as_shipped": {"ms": 3.9}, "no_fence": {"ms": 3.5}, "no_wait": {"ms": 2.0},
        "no_wait_no_fence": {"ms": 1.7}}}}))
    assert gpu_quick.calibrate_found(calibration) == (
        "anchor forward as shipped 3.90 ms, no fence 3.50 ms, no wait 2.00 ms, "
        "no wait no fence 1.70 ms")
    forward = {"programs": 48, "step": [7000, 7100, 7200], "work": [2000, 2500, 3000],
               "wait": [3000, 3800, 4500], "release": [700, 800, 900]}
    calibration.write_text(json.dumps(
        {"raw": {"step_profile_h768_inference": {"split_forward": forward}}}))
    assert gpu_quick.calibrate_found(calibration) == (
        "anchor forward step cycles step 7100, work 2500, wait 3800, release 800")
    assert gpu_quick.calibrate_found(tmp_path / "missing.json") == "no file"
    assert gpu_quick.parity_found(tmp_path / "missing.csv") == "no rows"
    assert gpu_quick.sweep_found(tmp_path / "missing.csv") == "no timings"


def test_one_sweep_figure_png_and_svg_without_matplotlib(tmp_path, monkeypatch):
    cases = [(cell, dtype, "forward", h, b, 1.0, 0.5 * h / 128)
             for cell in ("LSTM", "GRU") for dtype in ("fp16", "bf16")
             for h in (128, 256, 512, 768, 1024) for b in (1, 16, 64)]
    path = _bench_rows(tmp_path, "sweep.csv", cases)
    pytest.importorskip("matplotlib")
    png = draw_speedup_vs_hidden(path, tmp_path / "sweep.png")
    assert png.read_bytes()[:4] == b"\x89PNG"

    import bench.plot as plot

    def no_matplotlib():
        raise ImportError("no matplotlib in this image")
    monkeypatch.setattr(plot, "_pyplot", no_matplotlib)
    svg = draw_speedup_vs_hidden(path, tmp_path / "sweep2.png")
    assert svg.suffix == ".svg"
    text = svg.read_text()
    assert text.startswith("<svg") and text.rstrip().endswith("</svg>")
    assert text.count("<polyline") == 4 * 3  # a line per batch size in each of 4 panels
    assert "NVIDIA H200 (synthetic)" in text


@pytest.mark.parametrize("regime", ["fused", "split"])
def test_parity_smoke_case_runs_here(regime, monkeypatch):
    """One parity-smoke case end to end on the CPU under the interpreter: the plan it forces,
    the launches it counts, the float64 comparison. (The first H200 run found every case
    failing in the harness itself, on a launch-counting call that no longer existed.)"""
    import torch
    # The case turns TF32 off (parity_smoke.no_tf32); restore the switch the layouts read.
    # (torch's matmul switch is off by default, and torch 2.11 cannot monkeypatch it.)
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", torch.backends.cudnn.allow_tf32)
    case = next(c for c in parity_smoke.all_cases()
                if c.regime == regime and c.kind == "lstm" and c.dtype == "fp16")
    row = parity_smoke.run_case(case, parity_smoke.H200_SMS, device="cpu")
    assert row["status"] == "ok" and row["detail"] == "", row
    assert float(row["worst_output"]) <= 1 and float(row["worst_grad"]) <= 1, row
