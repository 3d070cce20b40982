"""The GPU check that fits one short visit: ``bash bench/gpu_evidence.sh --quick OUT``.

Made for a GPU machine with a fixed image and no network (an H200 with torch 2.11+cu130 and
triton 3.6 under python3; visits of about ten minutes, start-up included). In at most
BUDGET_S seconds it runs, most important first, each step under its own time limit, each
writing as it goes, none stopping the others:

  1_env.txt           install without network; versions, GPU name, SM count, clocks
  2_parity.csv        parity smoke: every regime x cell x fp16/bf16/fp32, fwd and bwd, vs float64
  3_anchor.csv        LSTM fp16 B=16 T=1024 I=H=768: tritonrnn vs torch.nn (cuDNN)
  4_calibration.json  the latency model's calibration kernels, where the split forward's step
                      cycles go (its step profile), the anchor's step ablations
  5_sweep.csv         LSTM and GRU, fp16, H 64..1024, B 1/16/64, T=512, vs torch.nn
  6_sweep.png         one figure of that sweep (.svg where the image has no matplotlib)
  7_steps.log         every step's own output
  0_summary.txt       the short table, rewritten after every step and printed last

``--dry-run`` rehearses it on any machine (no GPU, no package index): the offline install
into a throw-away folder, the imports, what each step would run and the plans it would launch
on an H200 (132 SMs), the file budget, and an estimate of the run time with its arithmetic
(bench/quick_estimate.py). Only the standard library is imported here: the install step has
to work before torch or tritonrnn can be imported.
"""
import argparse
import atexit
import csv
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUDGET_S = 480     # the whole run; the visit's start-up comes on top
RESERVE_S = 20     # kept out of the steps' limits: the summary, process exits
MAX_FILES, MAX_FILE_BYTES = 8, 16 * 2**20
FILES = {"summary": "0_summary.txt", "env": "1_env.txt", "parity": "2_parity.csv",
         "anchor": "3_anchor.csv", "calibrate": "4_calibration.json", "sweep": "5_sweep.csv",
         "plot": "6_sweep.png", "log": "7_steps.log"}

# The measured steps' shapes (bench's own command line; I = H).
ANCHOR_ARGS = ["--cells", "LSTM", "--dtypes", "fp16", "--hidden", "768", "--batch", "16",
               "--seq", "1024", "--modes", "forward,forward+backward",
               "--providers", "tritonrnn,torch"]
ANCHOR_TIMING = dict(warmup=3, budget_ms=300, min_reps=10, max_reps=50)
# H = 64 and 128 run fused (one program, no exchange), the rest split: the first H200 visit
# timed split only, at a near-constant 3-5.5 us a step whatever H. fp16 only: tritonrnn's
# bf16 times were within 20% of fp16's there (median ratio 1.00 over 30 shapes, run 2), and
# the step's time went to the calibration's step profile.
SWEEP_ARGS = ["--cells", "LSTM,GRU", "--dtypes", "fp16",
              "--hidden", "64,128,256,512,768,1024", "--batch", "1,16,64", "--seq", "512",
              "--modes", "forward", "--providers", "tritonrnn,torch"]
SWEEP_TIMING = dict(warmup=2, budget_ms=60, min_reps=5, max_reps=20)
PARITY_WORKERS, PARITY_DEADLINE_S = 8, 30


def _timing_args(t):
    return ["--warmup", str(t["warmup"]), "--budget-ms", str(t["budget_ms"]),
            "--min-reps", str(t["min_reps"]), "--max-reps", str(t["max_reps"])]


@dataclass
class Step:
    name: str
    limit_s: int
    what: str
    argv: list = field(default_factory=list)  # after the python executable; {OUT} filled in
    file: str = None

    def command(self, python, out):
        return [python] + [a.format(OUT=out) for a in self.argv]


def steps():
    """The measured steps in order of importance (install and env come first, apart)."""
    return [
        Step("parity", 115, "parity smoke on CUDA, every regime/cell/dtype, fwd+bwd",
             ["-m", "bench.parity_smoke", "--csv", "{OUT}/" + FILES["parity"],
              "--workers", str(PARITY_WORKERS), "--deadline", str(PARITY_DEADLINE_S)],
             FILES["parity"]),
        Step("anchor", 75, "anchor: tritonrnn vs torch.nn (cuDNN), CUDA events, L2 cleared",
             ["-m", "bench", *ANCHOR_ARGS, *_timing_args(ANCHOR_TIMING),
              "--csv", "{OUT}/" + FILES["anchor"], "--no-plots"], FILES["anchor"]),
        Step("calibrate", 120, "latency model calibration kernels, the split forward's step "
             "profile, the anchor's step ablations (bench/model.py --calibrate)",
             ["-m", "bench.model", "--calibrate", "--gpu", "H200", "--out",
              "{OUT}/" + FILES["calibrate"]],
             FILES["calibrate"]),
        Step("sweep", 75, "short sweep vs torch.nn (forward)",
             ["-m", "bench", *SWEEP_ARGS, *_timing_args(SWEEP_TIMING),
              "--csv", "{OUT}/" + FILES["sweep"], "--no-plots"], FILES["sweep"]),
        Step("plot", 20, "one figure: speedup over torch.nn against H, a line per batch",
             ["-m", "bench.plot", "{OUT}/" + FILES["sweep"], "--speedup-vs-hidden",
              "{OUT}/" + FILES["plot"]], FILES["plot"]),
    ]


INSTALL_LIMIT_S, ENV_LIMIT_S = 30, 25


def limits_total():
    return INSTALL_LIMIT_S + ENV_LIMIT_S + sum(s.limit_s for s in steps())


# -- running a step ---------------------------------------------------------------------------

class Run:
    def __init__(self, out, python, dry_run):
        self.out, self.python, self.dry_run = Path(out), python, dry_run
        self.start = time.time()
        self.cwd, self.env = ROOT, dict(os.environ)
        self.env.pop("TRITON_INTERPRET", None)  # compiled kernels, not the interpreter
        self.env["PYTHONUNBUFFERED"] = "1"
        self.results = []  # (step, status, seconds, limit, what it found)
        self.log = open(self.out / FILES["log"], "a")

    def left(self):
        return BUDGET_S - RESERVE_S - (time.time() - self.start)

    def note(self, text):
        print(text, flush=True)
        self.log.write(text + "\n")
        self.log.flush()

    def call(self, name, argv, limit_s, env=None, cwd=None, stdout=None):
        """Run argv under min(limit, time left): (status, seconds). Output goes to the log
        (or `stdout`, a file) as it comes; on the limit the whole process group is ended."""
        limit = min(limit_s, int(self.left()))
        if limit < 3:
            return "skipped: no time left", 0.0
        shown = " ".join(a if len(a) < 200 else a.strip().splitlines()[0] + " ..."
                         for a in map(str, argv))
        self.note(f"== {name} (limit {limit} s): {shown}")
        begin = time.time()
        proc = subprocess.Popen(argv, cwd=cwd or self.cwd, env=env or self.env,
                                stdout=stdout or subprocess.PIPE,
                                stderr=self.log if stdout else subprocess.STDOUT,
                                start_new_session=True)
        tee = None
        if stdout is None:  # to the log and the console, line by line as it comes
            tee = threading.Thread(target=self._tee, args=(proc.stdout,), daemon=True)
            tee.start()
        try:
            rc = proc.wait(timeout=limit)
            status = "ok" if rc == 0 else f"exit {rc}"
        except subprocess.TimeoutExpired:
            for sig in (signal.SIGTERM, signal.SIGKILL):
                try:
                    os.killpg(proc.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    proc.wait(timeout=5)
                    break
                except subprocess.TimeoutExpired:
                    continue
            status = f"timeout at {limit} s"
        seconds = time.time() - begin
        if tee is not None:
            tee.join(timeout=5)
        self.log.flush()
        self.note(f"   {name}: {status} in {seconds:.0f} s")
        return status, seconds

    def _tee(self, pipe):
        for raw in iter(pipe.readline, b""):
            line = raw.decode(errors="replace")
            sys.stdout.write(line)
            sys.stdout.flush()
            self.log.write(line)
            self.log.flush()

    def record(self, name, status, seconds, limit, found):
        self.results.append((name, status, seconds, limit, found))
        self.write_summary()

    def write_summary(self):
        lines = summary_table(self.results, time.time() - self.start)
        (self.out / FILES["summary"]).write_text("\n".join(lines) + "\n")
        return lines


# -- install without network ---------------------------------------------------------------------

def _imports_here(run, cwd):
    probe = ("import tritonrnn, tritonrnn.kernels, os; "
             "print(os.path.dirname(os.path.dirname(os.path.realpath(tritonrnn.kernels.__file__))))")
    try:
        proc = subprocess.run([run.python, "-c", probe], cwd=cwd, env=run.env,
                              capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        return False
    return proc.returncode == 0 and Path(proc.stdout.strip()) == ROOT


def _linked_tree(run):
    """A folder where `import tritonrnn.kernels` finds this checkout's sources with nothing
    installed: tritonrnn/ holds links to tritonrnn/*, its kernels to kernels/; bench, tests
    and examples are linked beside it. Steps then run from that folder."""
    view = Path(tempfile.mkdtemp(prefix="tritonrnn-view-"))
    atexit.register(shutil.rmtree, view, True)
    (view / "tritonrnn").mkdir()
    for entry in (ROOT / "tritonrnn").iterdir():
        if entry.name != "__pycache__":
            (view / "tritonrnn" / entry.name).symlink_to(entry)
    (view / "tritonrnn" / "kernels").symlink_to(ROOT / "kernels")
    for name in ("bench", "tests", "examples"):
        (view / name).symlink_to(ROOT / name)
    return view


def install(run):
    """Make tritonrnn importable with no network: nothing if this checkout already is;
    else pip with no index, no build isolation and no dependencies (editable; the dry run
    installs into a throw-away folder instead, leaving this environment alone); else, when
    pip cannot build here (an old setuptools without bdist_wheel, a system Python that
    refuses installs), a folder of links to the sources. Returns what it did."""
    if not run.dry_run and _imports_here(run, ROOT):
        return "ok", 0.0, "already installed from this checkout"
    # No index, no find-links, no configuration that could name one: nothing but this folder.
    env = {k: v for k, v in run.env.items() if not k.startswith("PIP_")}
    env.update(PIP_NO_INDEX="1", PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1")
    base = [run.python, "-m", "pip", "install", "--no-index", "--no-deps",
            "--no-build-isolation"]
    if run.dry_run:
        target = tempfile.mkdtemp(prefix="tritonrnn-install-")
        argv = base + ["--target", target, str(ROOT)]
    else:
        argv = base + ["-e", str(ROOT)]
    status, seconds = run.call("install", argv, INSTALL_LIMIT_S, env=env)
    if status == "ok":
        if run.dry_run:
            probe = subprocess.run(
                [run.python, "-c", "import tritonrnn.kernels, tritonrnn; print(tritonrnn.__file__)"],
                cwd=target, env=dict(run.env, PYTHONPATH=target), capture_output=True,
                text=True, timeout=60)
            shutil.rmtree(target, ignore_errors=True)
            if probe.returncode != 0:
                return "exit 1", seconds, "pip installed, but import failed: " + \
                    (probe.stderr.strip().splitlines() or ["?"])[-1]
            return status, seconds, "pip --no-index --no-build-isolation --no-deps " \
                "(into a throw-away folder): installs and imports"
        return status, seconds, "pip --no-index --no-build-isolation --no-deps -e ."
    view = _linked_tree(run)
    run.cwd = view
    if not _imports_here(run, view):
        return "exit 1", seconds, f"pip failed ({status}) and the linked sources in {view} " \
            "do not import"
    return "ok", seconds, f"pip failed ({status}; see {FILES['log']}): running from links " \
        f"to the sources in {view}"


# -- the environment ---------------------------------------------------------------------------

ENV_PROBE = r"""
import json, platform, subprocess, torch, triton
import tritonrnn
from tritonrnn.kernels import capabilities
from bench.records import git_commit
print("python", platform.python_version(), "|", platform.platform())
print("torch", torch.__version__, "cuda", torch.version.cuda, "cudnn",
      torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None)
print("triton", triton.__version__, "| tritonrnn commit", git_commit())
print("capabilities", json.dumps(capabilities.summary()))
import os, shutil  # Triton's JIT builds its launcher with a C compiler on first launch
print("c compiler", os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
      or shutil.which("clang") or "NONE FOUND")
if torch.cuda.is_available():
    p = torch.cuda.get_device_properties(0)
    print("gpu", torch.cuda.get_device_name(0), "| SMs", p.multi_processor_count,
          "| memory GiB %.1f" % (p.total_memory / 2**30), "| capability %d.%d" % (p.major, p.minor),
          "| L2 MiB %.0f" % (getattr(p, "L2_cache_size", 0) / 2**20))
    try:
        q = ("name,driver_version,clocks.sm,clocks.max.sm,clocks.mem,clocks.max.mem,"
             "power.limit,temperature.gpu,compute_mode")
        print(subprocess.run(["nvidia-smi", "--query-gpu=" + q, "--format=csv"],
                             capture_output=True, text=True, timeout=20).stdout.strip())
    except (OSError, subprocess.TimeoutExpired) as err:
        print("nvidia-smi:", err)
else:
    print("gpu none (CUDA not available)")
"""


def env_step(run, install_found):
    path = run.out / FILES["env"]
    with open(path, "w") as f:
        f.write(f"date {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}\n")
        f.write(f"install {install_found}\n")
        f.flush()
        status, seconds = run.call("env", [run.python, "-c", ENV_PROBE], ENV_LIMIT_S, stdout=f)
    text = path.read_text()
    print(text.rstrip())
    gpu = next((line for line in text.splitlines() if line.startswith("gpu ")), "gpu ?")
    return status, seconds, gpu[4:]


# -- what each step found (read from its files; never fails the run) -------------------------------

def _rows(path):
    try:
        with open(path, newline="") as f:
            return list(csv.DictReader(f))
    except OSError:
        return []


def parity_found(path):
    rows = _rows(path)
    if not rows:
        return "no rows"
    bad = [f"{r['regime']}/{r['kind']}/{r['dtype']}: {r['status']}" for r in rows
           if r["status"] != "ok"]
    text = f"{len(rows) - len(bad)}/{len(rows)} ok"
    return text + ("; " + ", ".join(bad[:4]) + (" ..." if len(bad) > 4 else "") if bad else "")


def _times(rows):
    return {(r["mode"], r["provider"], r["cell"], r["dtype"], r["hidden"], r["batch"]):
            float(r["value"]) for r in rows if r["metric"] == "time"}


def anchor_found(path):
    times = _times(_rows(path))
    parts = []
    for mode in ("forward", "forward+backward"):
        ours = next((v for k, v in times.items() if k[:2] == (mode, "tritonrnn")), None)
        base = next((v for k, v in times.items() if k[:2] == (mode, "torch")), None)
        if ours and base:
            parts.append(f"{mode} {ours:.2f} ms vs cuDNN {base:.2f} ms ({base / ours:.2f}x)")
    return "; ".join(parts) or "no timings"


def sweep_found(path):
    times = _times(_rows(path))
    ratios = [times[(m, "torch") + k[2:]] / v for k, v in times.items()
              for m in [k[0]] if k[1] == "tritonrnn" and (m, "torch") + k[2:] in times]
    if not ratios:
        return "no timings"
    gm = math.exp(sum(math.log(r) for r in ratios) / len(ratios))
    return (f"{len(ratios)} shapes; speedup over torch.nn geomean {gm:.2f}x, "
            f"min {min(ratios):.2f}x, max {max(ratios):.2f}x")


def calibrate_found(path):
    """The anchor forward's step profile and ablations (bench/calibrate.py) in one line, or
    what is missing."""
    try:
        with open(path) as f:
            raw = json.load(f).get("raw", {})
    except (OSError, ValueError):
        return "no file"
    found = []
    profile = raw.get("step_profile_h768_inference", {}).get("split_forward", {})
    if "step" in profile:  # medians over the programs
        found.append("anchor forward step cycles " + ", ".join(
            f"{k} {profile[k][1]:.0f}" for k in ("step", "work", "wait", "release")))
    ablation = raw.get("anchor_forward_ablation", {})
    if ablation:
        found.append("anchor forward " + ", ".join(f"{name.replace('_', ' ')} {t['ms']:.2f} ms"
                                                   for name, t in ablation.items()))
    return "; ".join(found) or path.name


def summary_table(results, elapsed):
    lines = [f"{'step':10} {'status':22} {'s':>5} {'limit':>5}  result"]
    for name, status, seconds, limit, found in results:
        lines.append(f"{name:10} {status[:22]:22} {seconds:5.0f} {limit:5}  {found}")
    lines.append(f"total {elapsed:.0f} s of {BUDGET_S} s")
    return lines


# -- the run ----------------------------------------------------------------------------------

def gpu_run(run):
    status, seconds, found = install(run)
    run.record("install", status, seconds, INSTALL_LIMIT_S, found)
    status, seconds, gpu = env_step(run, found)
    run.record("env", status, seconds, ENV_LIMIT_S, gpu)
    readers = {"parity": parity_found, "anchor": anchor_found, "sweep": sweep_found,
               "calibrate": calibrate_found}
    for step in steps():
        if gpu.startswith("none") or gpu == "?":
            run.record(step.name, "skipped", 0.0, step.limit_s, "no CUDA GPU (see 1_env.txt)")
            continue
        if step.name == "calibrate" and not _has_calibration(run):
            run.record(step.name, "skipped", 0.0, step.limit_s,
                       "bench/model.py has no --calibrate yet (issue: latency model)")
            continue
        status, seconds = run.call(step.name, step.command(run.python, run.out), step.limit_s)
        path = run.out / step.file
        if step.name == "plot" and not path.exists() and path.with_suffix(".svg").exists():
            path = path.with_suffix(".svg")
        found = readers[step.name](path) if step.name in readers else \
            (path.name if path.exists() else "no file")
        run.record(step.name, status, seconds, step.limit_s, found)


def _has_calibration(run):
    if not (ROOT / "bench" / "model.py").exists():
        return False
    try:
        proc = subprocess.run([run.python, "-m", "bench.model", "--help"], cwd=run.cwd,
                              env=run.env, capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        return False
    return proc.returncode == 0 and "--calibrate" in proc.stdout


def dry_run(run):
    status, seconds, found = install(run)
    run.record("install", status, seconds, INSTALL_LIMIT_S, found)
    if run.cwd == ROOT and not _imports_here(run, ROOT):  # nothing installed in this Python
        run.cwd = _linked_tree(run)
    status, seconds = run.call("imports + plans", [
        run.python, "-m", "bench.quick_estimate", "--install-seconds", f"{seconds:.1f}",
        "--python", run.python], 300)
    run.record("plans", status, seconds, 300, "the list and the estimate are above")
    return status


def main(argv=None):
    p = argparse.ArgumentParser(prog="bash bench/gpu_evidence.sh --quick",
                                description="The GPU check that fits one short visit.")
    p.add_argument("out", help="folder for the (at most 8) files")
    p.add_argument("--dry-run", action="store_true",
                   help="rehearse on this machine: offline install, imports, plans, estimate")
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    run = Run(out, os.environ.get("PYTHON") or sys.executable, args.dry_run)
    if args.dry_run:
        status = dry_run(run)
    else:
        gpu_run(run)
        ran = [r for r in run.results if r[1] != "skipped"]
        status = "ok" if len(ran) > 2 and all(r[1] == "ok" for r in ran) else "failed"
    lines = run.write_summary()
    run.log.close()
    print("\n".join(lines))
    return 0 if status == "ok" else 1


if __name__ == "__main__":
    sys.exit(main())
