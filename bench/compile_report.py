"""Compile report: every recurrence kernel, in every launch configuration the library can
select, compiled ahead of time for sm_80/sm_90 with no GPU.

For each compiled kernel it reports registers per thread, spill bytes (from ptxas), shared
memory against the architecture's per-block limit, whether the recurrent matmuls run on
tensor cores (HMMA/HGMMA in the SASS, read with the nvdisasm bundled with triton) and the
compile time. Must run with TRITON_INTERPRET unset: kernels defined under the interpreter
cannot be compiled.

    python -m bench.compile_report                       # shipped configs, readable table
    python -m bench.compile_report --full --json out.json  # every selectable config and form
    python -m bench.compile_report --arch sm_80,sm_90 --cells LSTM --dtypes fp16
    python -m bench.compile_report --scope space --json s.json && \
        python -m bench.compile_report --prune-from s.json   # regenerate the pruned list

Exit status 1 when any selectable configuration fails to compile, spills, exceeds the shared
memory limit, or (fp16/bf16/tf32) misses tensor-core instructions.
"""
import argparse
import contextlib
import io
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed

# Only what the report needs from the kernels; imported lazily in workers.
SHARED_LIMIT = {80: 163 * 1024, 90: 227 * 1024}
DTYPES = ("fp32", "tf32", "fp16", "bf16")
CELLS = ("LSTM", "LSTM_PROJ", "GRU", "RNN_TANH", "RNN_RELU")
QUICK_HIDDEN = (64, 128, 768, 2048)
FULL_HIDDEN = (16, 32, 64, 128, 256, 512, 768, 1024, 2048)
# Dtypes whose recurrent matmul must use tensor cores (fp32 "ieee" is plain FMA by design).


def _parse_arch(text):
    return [int(a.strip().removeprefix("sm_")) for a in text.split(",") if a.strip()]


def _shipped_plans(cell, dtype, hidden):
    """Plans of the shipped tuning table's entries for this cell, dtype and hidden size."""
    from tritonrnn import tuning
    from tritonrnn.kernels import config
    proj = cell == "LSTM_PROJ"
    base = "LSTM" if proj else cell
    return [config.Plan(**e["config"]) for e in tuning.read_table(tuning.SHIPPED_TABLE)
            if (e["cell"], bool(e["proj"]), e["dtype"], int(e["hidden"])) == (base, proj, dtype, hidden)]


def jobs(cells, dtypes, hiddens, forms, scope="shipped"):
    """Every (kernel form, cell, dtype, hidden size, plan) in `scope`, as plain dicts:
    "shipped": the default plans and the shipped tuning table's; "selectable": every
    candidate not pruned; "space": the whole search space, pruned ones included.
    A projecting LSTM ("LSTM_PROJ") uses proj_size = hidden // 4."""
    from tritonrnn.kernels import config
    from tritonrnn.kernels.cells import CELL_CODES
    from tritonrnn.kernels.compile_specs import is_multi_slice, kernel_forms
    for cell in cells:
        base_cell = "LSTM" if cell == "LSTM_PROJ" else cell
        for dtype in dtypes:
            for hidden in hiddens:
                width = max(1, hidden // 4) if cell == "LSTM_PROJ" else hidden
                # fp32 and TF32 are pruned separately; candidates() reads the TF32 switch.
                with config.tf32_for(dtype):
                    plans = config.candidates(CELL_CODES[base_cell], hidden, width,
                                              config.torch_dtype(dtype), scope == "space")
                # (plan, the forms it runs in): in the shipped scope the multi-slice forms run
                # only with config.multi_slice_plan, the main forms with the chosen plans.
                if scope != "shipped":
                    runs = [(p, kernel_forms(p.split, cell == "LSTM_PROJ")) for p in plans]
                else:
                    shipped = list(dict.fromkeys(plans[:1] + _shipped_plans(cell, dtype, hidden)))
                    runs = [(p, [f for f in kernel_forms(p.split, cell == "LSTM_PROJ")
                                 if not is_multi_slice(f)]) for p in shipped]
                    if any(p.split for p in shipped):
                        with config.tf32_for(dtype):
                            multi = config.multi_slice_plan(CELL_CODES[base_cell], hidden, width,
                                                            config.torch_dtype(dtype))
                        runs.append((multi, [f for f in kernel_forms(True, cell == "LSTM_PROJ")
                                             if is_multi_slice(f)]))
                for plan, plan_forms in runs:
                    for form in plan_forms:
                        if form in forms:
                            yield dict(kernel=form, cell=cell, dtype=dtype, hidden_size=hidden,
                                       proj_size=width if width != hidden else 0,
                                       config=plan.as_dict())


def _compile_key(job, arch):
    """Jobs that compile to the same binary (the split regime does not depend on H)."""
    from tritonrnn.kernels.compile_specs import compile_spec, launch_options
    fn, cx = compile_spec(job["kernel"], job["cell"], job["dtype"], job["config"])
    return (arch, fn.__name__, tuple(sorted((k, str(v)) for k, v in cx.items())),
            tuple(sorted(launch_options(job["kernel"], job["config"]).items())))


def _ptxas_numbers(log):
    regs = re.search(r"Used (\d+) registers", log)
    spill_st = re.search(r"(\d+) bytes spill stores", log)
    spill_ld = re.search(r"(\d+) bytes spill loads", log)
    return (int(regs.group(1)) if regs else -1,
            (int(spill_st.group(1)) if spill_st else 0) + (int(spill_ld.group(1)) if spill_ld else 0))


def _sass_mma(cubin):
    """(tensor-core instruction count, their mnemonics) in the cubin's SASS."""
    import triton
    nvdisasm = os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin", "nvdisasm")
    with tempfile.NamedTemporaryFile(suffix=".cubin") as f:
        f.write(cubin)
        f.flush()
        sass = subprocess.run([nvdisasm, "-c", f.name], capture_output=True, text=True,
                              check=True).stdout
    ops = re.findall(r"\b(HGMMA|HMMA|DMMA|IMMA)[.\w]*", sass)
    return len(ops), sorted(set(ops))


def compile_job(job, arch):
    """Compile one job for sm_`arch`; returns its record."""
    import triton
    from triton import knobs
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource
    from tritonrnn.kernels.compile_specs import compile_spec, launch_options
    from tritonrnn.kernels.compile_specs import signature as make_signature
    fn, constexprs = compile_spec(job["kernel"], job["cell"], job["dtype"], job["config"])
    signature = make_signature(fn, constexprs, job["dtype"])
    record = dict(job, arch=f"sm_{arch}", shared_limit=SHARED_LIMIT[arch],
                  triton=triton.__version__)
    start = time.time()
    log = io.StringIO()
    try:
        knobs.nvidia.dump_ptxas_log = True  # ptxas -v output (registers, spills) to stdout
        with contextlib.redirect_stdout(log):
            compiled = triton.compile(
                ASTSource(fn, signature, constexprs), target=GPUTarget("cuda", arch, 32),
                options=launch_options(job["kernel"], job["config"]))
    except Exception as exc:  # noqa: BLE001 - a compile error is a finding, not a crash
        record.update(error=f"{type(exc).__name__}: {str(exc)[:300]}", ok=False,
                      compile_s=round(time.time() - start, 2))
        return record
    regs, spills = _ptxas_numbers(log.getvalue())
    n_mma, mma_ops = _sass_mma(compiled.asm["cubin"])
    shared = compiled.metadata.shared
    record.update(registers=regs, spills_bytes=spills, shared_bytes=shared,
                  tensor_cores=n_mma > 0, mma_instructions=n_mma, mma_ops=mma_ops,
                  compile_s=round(time.time() - start, 2), error=None)
    from tritonrnn.kernels.pruning import problems
    record["ok"] = not problems(record)
    return record


def _compile_batch(keys, unique, results, workers, progress, start, total):
    """Compile `keys` in a pool; returns the keys left uncompiled because a worker died (an
    LLVM assertion aborts the whole process, which breaks the pool)."""
    from concurrent.futures.process import BrokenProcessPool
    with ProcessPoolExecutor(workers) as pool:
        futures = {pool.submit(compile_job, *unique[k]): k for k in keys}
        for future in as_completed(futures):
            try:
                results[futures[future]] = future.result()
            except BrokenProcessPool:
                break
            if len(results) % 8 == 0 or len(results) == total:
                print(f"  compiled {len(results)}/{total}  ({time.time() - start:.0f}s)",
                      file=progress, flush=True)
    return [k for k in keys if k not in results]


def _record_key(record):
    """Identity of a record (or of a job with its "sm_NN" arch) across report runs."""
    return (record["arch"], record["kernel"], record["cell"], record["dtype"],
            record["hidden_size"], json.dumps(record["config"], sort_keys=True))


def run(archs, cells, dtypes, hiddens, forms, scope="shipped", workers=None,
        progress=sys.stderr, known=()):
    """Compile every job; jobs sharing a binary are compiled once and share its numbers.
    `known`: records of earlier runs of the same kernels, reused instead of recompiled."""
    reuse = {_record_key(r): r for r in known}
    work, reused = [], []
    for arch in archs:
        for job in jobs(cells, dtypes, hiddens, forms, scope):
            earlier = reuse.get(_record_key(dict(job, arch=f"sm_{arch}")))
            if earlier is not None:
                reused.append(earlier)
            else:
                work.append((job, arch))
    unique = {}
    for job, arch in work:
        unique.setdefault(_compile_key(job, arch), (job, arch))
    keys = list(unique)
    print(f"compile report: {len(work) + len(reused)} records, {len(keys)} distinct "
          f"compilations ({len(reused)} records reused), archs {archs}", file=progress,
          flush=True)
    # A private, empty Triton cache: a cache hit skips ptxas (no register/spill numbers) and
    # would make compile times meaningless.
    os.environ["TRITON_CACHE_DIR"] = tempfile.mkdtemp(prefix="tritonrnn-compile-report-")
    results, start = {}, time.time()
    workers = workers or os.cpu_count() or 1
    pending = keys
    while pending:
        unfinished = _compile_batch(pending, unique, results, workers, progress, start, len(keys))
        # A worker died (an LLVM assertion aborts the process and breaks the pool). Work is
        # handed out in order, so the culprit is among the first unfinished keys: compile
        # those one per pool to isolate it, then go on in parallel with the rest.
        suspects, pending = unfinished[:workers + 1], unfinished[workers + 1:]
        for key in suspects:
            if _compile_batch([key], unique, results, 1, progress, start, len(keys)):
                job, arch = unique[key]
                results[key] = dict(job, arch=f"sm_{arch}", shared_limit=SHARED_LIMIT[arch],
                                    error="compiler process crashed", ok=False, compile_s=0.0)
    records = list(reused)
    for job, arch in work:
        shared = results[_compile_key(job, arch)]
        fields = {k: v for k, v in shared.items() if k not in job}
        records.append(dict(job, **fields))
    return records


def write_pruned(records, command):
    """Rewrite kernels/pruned_configs.json with every failing configuration in `records`."""
    from tritonrnn.kernels import pruning
    entries = pruning.entries_from_report(records)
    with open(pruning.PRUNED_FILE, "w") as f:
        json.dump(dict(generated_by=command,
                       archs=sorted({r["arch"] for r in records}),
                       kernels=sorted({r["kernel"] for r in records}),
                       hidden_sizes=sorted({r["hidden_size"] for r in records}),
                       compiled=len(records), configs=entries), f, indent=1)
        f.write("\n")
    print(f"wrote {len(entries)} pruned configurations to {pruning.PRUNED_FILE}", file=sys.stderr)


def _prune_version_from(paths):
    """--prune-version-from: the installed Triton's failures, recorded for its version only."""
    import triton
    from tritonrnn.kernels import pruning
    records = []
    for path in paths:
        with open(path) as f:
            records += json.load(f)
    others = {r.get("triton") for r in records} - {triton.__version__}
    if others:
        raise SystemExit(f"records from triton {sorted(map(str, others))}, not the installed "
                         f"{triton.__version__}: run the report and this under one Triton")
    added = pruning.add_version_entries(
        pruning.entries_from_report(records), "python -m bench.compile_report "
        "--prune-version-from " + " ".join(os.path.basename(p) for p in paths))
    print(f"triton {pruning.triton_version_key()}: {added} configurations added to "
          f"{pruning.PRUNED_BY_TRITON_FILE}", file=sys.stderr)
    return 0


def format_table(records):
    head = (f"{'arch':6} {'kernel':22} {'cell':9} {'dtype':5} {'H':>5} {'config':28} {'regs':>4} "
            f"{'spill':>5} {'shared':>7} {'limit':>7} {'TC':>3} {'s':>5}  status")
    from tritonrnn.kernels.pruning import problems
    lines = [head]
    for r in records:
        c = r["config"]
        cfg = f"b{c['block_b']} n{c['block_h']} k{c['block_k']} w{c['num_warps']} s{c['num_stages']}"
        if r.get("error"):
            lines.append(f"{r['arch']:6} {r['kernel']:22} {r['cell']:9} {r['dtype']:5} "
                         f"{r['hidden_size']:>5} {cfg:28} COMPILE ERROR {r['error'][:60]}")
            continue
        status = "ok" if r["ok"] else "; ".join(problems(r))
        lines.append(f"{r['arch']:6} {r['kernel']:22} {r['cell']:9} {r['dtype']:5} "
                     f"{r['hidden_size']:>5} {cfg:28} {r['registers']:>4} {r['spills_bytes']:>5} "
                     f"{r['shared_bytes']:>7} {r['shared_limit']:>7} "
                     f"{'y' if r['tensor_cores'] else 'n':>3} {r['compile_s']:>5.1f}  {status}")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="sm_80,sm_90", help="comma-separated, e.g. sm_80,sm_90")
    parser.add_argument("--cells", default=",".join(CELLS))
    parser.add_argument("--dtypes", default=",".join(DTYPES))
    parser.add_argument("--hidden", default=None,
                        help=f"comma-separated hidden sizes (quick: {QUICK_HIDDEN}; "
                             f"full: {FULL_HIDDEN})")
    parser.add_argument("--scope", choices=("shipped", "selectable", "space"), default=None,
                        help="shipped: default plans + shipped tuning table (default); "
                             "selectable: every unpruned candidate (--full); space: the whole "
                             "search space, pruned ones included")
    parser.add_argument("--full", action="store_true",
                        help="all hidden sizes, every selectable candidate and every kernel "
                             "form, the split regime's multi-slice forms included")
    parser.add_argument("--quick", action="store_true",
                        help="the default: quick hidden sizes, shipped configs, main forms")
    parser.add_argument("--forms", choices=("main", "all"), default=None,
                        help="main: the forms ordinary sizes launch; all: also the split "
                             "regime's multi-slice forms (more hidden slices than SMs)")
    parser.add_argument("--json", default=None, help="write the records as a JSON list here")
    parser.add_argument("--prune-from", nargs="+", default=None, metavar="JSON",
                        help="compile nothing: rewrite kernels/pruned_configs.json from the "
                             "failures in these report files (e.g. a --scope space run for "
                             "sm_90, then a --scope selectable run for sm_80)")
    parser.add_argument("--prune-version-from", nargs="+", default=None, metavar="JSON",
                        help="compile nothing: add the failures in these report files, run "
                             "under the installed Triton, to its entries in "
                             "kernels/pruned_by_triton.json (the shipped list is untouched)")
    parser.add_argument("--reuse", nargs="+", default=(), metavar="JSON",
                        help="records of earlier runs (same kernels) to reuse, not recompile")
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args(argv)
    if args.prune_from:
        records = []
        for path in args.prune_from:
            with open(path) as f:
                records += json.load(f)
        write_pruned(records, "python -m bench.compile_report --prune-from " +
                     " ".join(os.path.basename(p) for p in args.prune_from))
        return 0
    if args.prune_version_from:
        return _prune_version_from(args.prune_version_from)
    if os.environ.get("TRITON_INTERPRET", "0") == "1":
        parser.error("unset TRITON_INTERPRET: kernels defined under the interpreter cannot be compiled")
    if args.full and args.quick:
        parser.error("--full or --quick, not both")
    from tritonrnn.kernels import compile_specs, pruning
    hiddens = (tuple(int(h) for h in args.hidden.split(",")) if args.hidden
               else FULL_HIDDEN if args.full else QUICK_HIDDEN)
    forms = args.forms or ("all" if args.full else "main")
    forms = compile_specs.KERNEL_FORMS if forms == "all" else compile_specs.MAIN_FORMS
    scope = args.scope or ("selectable" if args.full else "shipped")
    archs = _parse_arch(args.arch)
    known = []
    for path in args.reuse:
        with open(path) as f:
            known += json.load(f)
    records = run(archs, args.cells.split(","), args.dtypes.split(","), hiddens, forms, scope,
                  args.workers, known=known)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(records, f, indent=1)
    else:
        print(format_table(records))
    bad = [r for r in records if not r["ok"]]
    print(f"{len(records)} records, {len(bad)} failing", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
