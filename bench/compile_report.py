"""Compile report: every recurrence kernel, in every launch configuration the library can
select, compiled ahead of time for sm_80/sm_90 with no GPU.

For each compiled kernel it reports registers per thread, spill bytes (from ptxas), shared
memory against the architecture's per-block limit, whether the recurrent matmuls run on
tensor cores (HMMA/HGMMA in the SASS, read with the nvdisasm bundled with triton), the
compile time, and what one time step executes per program (record key "per_step", second
table; bench/sass.py). Each kernel is compiled as the JIT would compile the launcher's call:
job_call() asks kernels/compile_specs.kernel_call for the call and lets the JIT's own binder
specialize it (bench/jit_specialization.py). Must run with TRITON_INTERPRET unset: kernels
defined under the interpreter cannot be compiled.

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
import zlib
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
    from tritonrnn.kernels import cells, config
    kind = cells.lookup(cell)
    return [config.Plan(**e["config"]) for e in tuning.read_table(tuning.SHIPPED_TABLE)
            if (e["cell"], bool(e["proj"]), e["dtype"], int(e["hidden"]))
            == (kind.mode, kind.projects, dtype, hidden)]


def jobs(cells, dtypes, hiddens, forms, scope="shipped"):
    """Every (kernel form, cell, dtype, hidden size, plan) in `scope`, as plain dicts:
    "shipped": the default plans and the shipped tuning table's, in their main forms (run()
    lays each out as launched, which may walk slices); "selectable": every candidate not
    pruned; "space": the whole search space, pruned ones included. A projecting LSTM
    ("LSTM_PROJ") uses proj_size = hidden // 4."""
    from tritonrnn.kernels import cells as cell_table, config
    from tritonrnn.kernels.compile_specs import is_multi_slice, kernel_forms
    from tritonrnn.kernels.dtypes import tf32_for, torch_dtype
    for cell in cells:
        kind = cell_table.lookup(cell)
        for dtype in dtypes:
            for hidden in hiddens:
                width = max(1, hidden // 4) if kind.projects else hidden
                # fp32 and TF32 are pruned separately; candidates() reads the TF32 switch.
                with tf32_for(dtype):
                    plans = config.candidates(kind.code, hidden, width, torch_dtype(dtype),
                                              scope == "space")
                # (plan, the forms it runs in)
                if scope != "shipped":
                    runs = [(p, kernel_forms(p.split, kind.projects)) for p in plans]
                else:
                    shipped = list(dict.fromkeys(plans[:1] + _shipped_plans(cell, dtype, hidden)))
                    with tf32_for(dtype):  # and its 32-row batch tile, where B > 16 takes it
                        wide = plans and config.wide_batch_layout(plans[0], kind.code, hidden,
                                                                  width, torch_dtype(dtype))
                    shipped += [wide.plan] if wide else []
                    # each in its main forms; run() swaps in what the launcher runs on each
                    # architecture (launched: the multi-slice plan, where slices outnumber SMs)
                    runs = [(p, [f for f in kernel_forms(p.split, kind.projects)
                                 if not is_multi_slice(f)]) for p in shipped]
                for plan, plan_forms in runs:
                    for form in plan_forms:
                        if form in forms:
                            yield dict(kernel=form, cell=cell, dtype=dtype, hidden_size=hidden,
                                       proj_size=width if width != hidden else 0,
                                       config=plan.as_dict())


def launched(job, arch):
    """`job` as the launcher runs its plan on sm_`arch` (config.split_layout, with the SMs and
    shared memory the report assumes): a split plan whose slices outnumber the SMs gives way
    to config.multi_slice_plan, which walks its slices (the multi-slice forms) only where
    they outnumber the SMs too, and else runs one slice a program (the main forms). Where
    the report compiled the multi-slice plan beside the default whatever the size, it
    compiled forms that do not run: at H = 2304-4096 those spilled where what runs did not
    (LSTM and GRU fp16, sm_90, triton 3.9; 2026-12-01)."""
    from tritonrnn.kernels import cells, config, dtypes
    from tritonrnn.kernels.compile_specs import SPLIT_MAIN_FORMS
    if job["kernel"] not in SPLIT_MAIN_FORMS:
        return job
    width = job["proj_size"] or job["hidden_size"]
    with dtypes.tf32_for(job["dtype"]):
        layout = config.split_layout(
            config.Plan(**job["config"]), cells.lookup(job["cell"]).code, job["hidden_size"],
            width, dtypes.torch_dtype(job["dtype"]),
            (SMS[arch], config.SHARED_PER_BLOCK[arch // 10], arch // 10))
    kernel = job["kernel"] + "_multi" if layout.multi else job["kernel"]
    return dict(job, kernel=kernel, config=layout.plan.as_dict())


# SMs of the GPUs each architecture is reported for (H100 SXM, A100 SXM): how many programs
# a split group runs with when it has more hidden slices than that (multi-slice forms).
SMS = {90: 132, 80: 108}


def programs_per_group(job, arch):
    """Programs per group the launcher would run `job` with on sm_`arch` (split regime):
    one per hidden slice, or one per SM walking several slices in the multi-slice forms."""
    from tritonrnn.kernels.compile_specs import is_multi_slice
    slices = -(-job["hidden_size"] // job["config"]["block_h"])
    return min(slices, SMS[arch]) if is_multi_slice(job["kernel"]) else slices


def job_call(job, arch):
    """The one call that says what `job` launches (kernels/compile_specs.kernel_call), and
    what the JIT specializes it to on sm_`arch`: (call, signature, constexprs, attrs, options)."""
    from bench.jit_specialization import specialize
    from tritonrnn.kernels.compile_specs import kernel_call
    width = job["proj_size"] or job["hidden_size"]
    call = kernel_call(job["kernel"], job["cell"], job["dtype"], job["config"],
                       job["hidden_size"], width, programs=programs_per_group(job, arch),
                       arch=arch, measure=job.get("measure"))
    return (call,) + specialize(call.fn, call.args, call.options, arch)


def loop_trips(job, arch):
    """Iterations per time step of the loops nested in the kernels' time loops, keyed by the
    loop's iterable as written in kernels/split.py (see bench/sass.py): the backward's sum
    of partial products, SUM_BATCH slices a trip; the streaming of the columns past the
    resident chunks (rows_times_state's loop, and the backward's rows_t_times_stack); and
    (multi-slice forms) the further slices a program walks, each streaming all of its rows.
    One streaming loop's text serves W_hh and W_hr alike: its value lists the trips of
    each such loop the kernel runs, in program order."""
    from tritonrnn.kernels.compile_specs import is_multi_slice, split_layout_for
    from tritonrnn.kernels.split import STREAM_KC, SUM_BATCH
    c = job["config"]
    hidden, width = job["hidden_size"], job["proj_size"] or job["hidden_size"]
    cdiv = lambda a, b: -(-a // b)  # noqa: E731
    progs = programs_per_group(job, arch)
    if not job["kernel"].startswith("split"):
        return {}
    layout = split_layout_for(job["cell"], job["dtype"], c, hidden, width, arch,
                              progs)
    backward = job["kernel"].startswith("split_backward")
    multi, proj = is_multi_slice(job["kernel"]), width != hidden
    res, res_proj, stream_w, stream_wr, _ = layout.kernel_resident(hidden, width, backward)
    chunks = lambda n: cdiv(max(0, n), STREAM_KC.value)  # noqa: E731
    w_hr_rows = width if backward else hidden  # the backward multiplies W_hr^T
    w_hh_rest, w_hh_all = chunks(width - res * c["block_k"]), chunks(width)
    w_hr_rest, w_hr_all = chunks(w_hr_rows - res_proj * c["block_k"]), chunks(w_hr_rows)
    state_loops, stack_loops = [], []  # rows_times_state's, rows_t_times_stack's
    if backward:  # dh of the cell output (W_hr^T), then the partials (W_hh^T) of each slice
        state_loops += [w_hr_rest] * (proj and stream_wr) + [w_hr_all] * (proj and multi)
        stack_loops += [w_hh_rest] * stream_w + [w_hh_all] * multi
    else:  # the cell (W_hh) of each slice, then the projection (W_hr) of each
        state_loops += [w_hh_rest] * stream_w + [w_hh_all] * multi
        state_loops += [w_hr_rest] * (proj and stream_wr) + [w_hr_all] * (proj and multi)
    slices = cdiv(hidden, c["block_h"])
    sum_batch = min(slices, SUM_BATCH.value)
    return {"tl.range(0, SUM_SLICES, BATCH, num_stages=1)": cdiv(slices, sum_batch),
            "tl.range(RES * BLOCK_KC, L, STREAM_KC, num_stages=STAGES)": state_loops,
            "tl.range(RES * BLOCK_KC, K, STREAM_KC, num_stages=STAGES)": stack_loops,
            "range(pid_n + progs, n_cell, progs)": cdiv(cdiv(hidden, c["block_h"]), progs) - 1,
            "range(pid_n + progs, n_out, progs)": cdiv(cdiv(width, c["block_h"]), progs) - 1,
            "range(pid_n + progs, n_rec, progs)": cdiv(cdiv(width, c["block_h"]), progs) - 1}


def resident_form(job, arch):
    """The resident constexprs (kernels/pruning.RESIDENT_CONSTEXPRS: chunks of W_hh and
    W_hr on chip, whether the rest streams and in how many pipeline stages) `job` compiles
    with on sm_`arch`; None for the fused and multi-slice forms. They, more than the hidden
    size, are what a split plan's binary depends on, and what a failing record prunes
    (bench/prune_rules.py)."""
    from tritonrnn.kernels.compile_specs import is_multi_slice, split_layout_for
    if not job["kernel"].startswith("split") or is_multi_slice(job["kernel"]):
        return None
    hidden = job["hidden_size"]
    width = job["proj_size"] or hidden
    layout = split_layout_for(job["cell"], job["dtype"], job["config"], hidden, width, arch)
    return list(layout.kernel_resident(hidden, width, job["kernel"] == "split_backward"))


def _compile_key(job, arch):
    """Jobs that compile to the same binary (the split regime depends on H only through
    its run-time specialization)."""
    call, signature, constexprs, attrs, options = job_call(job, arch)
    return (arch, call.fn.__name__, tuple(sorted(signature.items())),
            tuple(sorted((str(k), str(v)) for k, v in constexprs.items())),
            tuple(sorted((str(k), str(v)) for k, v in attrs.items())),
            tuple(sorted(call.options.items())))


def _ptxas_numbers(log):
    regs = re.search(r"Used (\d+) registers", log)
    spill_st = re.search(r"(\d+) bytes spill stores", log)
    spill_ld = re.search(r"(\d+) bytes spill loads", log)
    return (int(regs.group(1)) if regs else -1,
            (int(spill_st.group(1)) if spill_st else 0) + (int(spill_ld.group(1)) if spill_ld else 0))


def _sass_mma(sass):
    """(tensor-core instruction count, their mnemonics) in the whole SASS."""
    ops = re.findall(r"\b(HGMMA|HMMA|DMMA|IMMA)[.\w]*", sass)
    return len(ops), sorted(set(ops))


def compile_job(job, arch):
    """Compile one job for sm_`arch` exactly as the JIT would compile the launcher's call;
    returns its record (with the SASS, zlib-compressed, under "_sass" for the time-loop
    columns, which depend on the job's sizes; run() drops it)."""
    import triton
    from triton import knobs
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource
    from bench import sass as sass_tools
    from bench.jit_specialization import by_name
    call, signature, constexprs, attrs, options = job_call(job, arch)
    _, divisible = by_name(call.fn, constexprs, attrs)
    record = dict(job, arch=f"sm_{arch}", shared_limit=SHARED_LIMIT[arch],
                  resident=resident_form(job, arch), signature=signature,
                  divisible_args=divisible, launch_warps=options["num_warps"],
                  programs_per_group=programs_per_group(job, arch), triton=triton.__version__)
    start = time.time()
    log = io.StringIO()
    try:
        knobs.nvidia.dump_ptxas_log = True  # ptxas -v output (registers, spills) to stdout
        with contextlib.redirect_stdout(log):
            compiled = triton.compile(ASTSource(call.fn, signature, constexprs, attrs),
                                      target=GPUTarget("cuda", arch, 32), options=options)
    except Exception as exc:  # noqa: BLE001 - a compile error is a finding, not a crash
        record.update(error=f"{type(exc).__name__}: {str(exc)[:300]}", ok=False,
                      compile_s=round(time.time() - start, 2))
        return record
    regs, spills = _ptxas_numbers(log.getvalue())
    sass = sass_tools.disassemble(compiled.asm["cubin"])
    n_mma, mma_ops = _sass_mma(sass)
    shared = compiled.metadata.shared
    record.update(registers=regs, spills_bytes=spills, shared_bytes=shared,
                  tensor_cores=n_mma > 0, mma_instructions=n_mma, mma_ops=mma_ops,
                  compile_s=round(time.time() - start, 2), error=None,
                  _sass=zlib.compress(sass.encode()))
    from .prune_rules import problems
    record["ok"] = not problems(record)
    return record


def ldg_bound_bytes(job, arch):
    """What a forward step of one program must load at least, in bytes (the "Resident
    weights" issue's bound): h_{t-1} of its batch tile in the storage dtype (split regime:
    the others' units arrive through memory; fused: h stays on chip), the input projection
    of its hidden units, plus 1 KiB; with a projection (split) also the cell output of every
    hidden unit, which the projection h = W_hr hh reads. None for backward forms."""
    if "forward" not in job["kernel"]:
        return None
    from tritonrnn.kernels import cells, dtypes
    c = job["config"]
    size = dtypes.DTYPES[job["dtype"]].itemsize
    gates = cells.lookup(job["cell"]).gates
    width = job["proj_size"] or job["hidden_size"]
    if not job["kernel"].startswith("split"):
        return gates * c["block_b"] * c["block_h"] * size + 1024
    progs = programs_per_group(job, arch)
    slices = -(-(-(-job["hidden_size"] // c["block_h"])) // progs)  # per program
    exchanged = width + (job["hidden_size"] if job["proj_size"] else 0)
    return (c["block_b"] * exchanged * size
            + slices * gates * c["block_b"] * c["block_h"] * size + 1024)


def add_time_loop(record):
    """Put the per-step columns (bench/sass.py) of `record`'s sizes into it, with the global
    loads' ratio to ldg_bound_bytes for forward forms."""
    from bench import sass as sass_tools
    packed = record.pop("_sass", None)
    if packed is None:
        return record
    arch = int(record["arch"].removeprefix("sm_"))
    step = sass_tools.time_loop_report(
        zlib.decompress(packed).decode(), launch_warps(record), loop_trips(record, arch))
    bound = ldg_bound_bytes(record, arch)
    if bound and step.get("time_loop"):
        step["ldg_bound_bytes"] = bound
        step["ldg_over_bound"] = round(step["ldg_bytes"] / bound, 3)
    needed = mma_needed_flops(record)
    if needed and step.get("time_loop"):
        step["mma_over_needed"] = round(step["mma_flops"] / needed, 3)
    record["per_step"] = step
    from .prune_rules import problems
    record["ok"] = not problems(record)  # again: some checks read the per-step columns
    return record


def launch_warps(record):
    """Warps the record's kernel is launched with (the plan's, or what the launcher makes
    of them: config.fused_warps, split.split_backward_warps)."""
    return record.get("launch_warps") or record["config"]["num_warps"]


def mma_needed_flops(record):
    """Tensor-core FLOPs a fused kernel's step needs (kernels/fused.py), with its tiles as
    padded: forward W_hh [GP*BH, BK] @ h^T [BK, BB] (and W_hr [BK, BH] @ h_cell^T); backward
    the same shapes transposed. More in the SASS means warps computing the same tiles. None
    for the split kernels."""
    if not record["kernel"].startswith("fused"):
        return None
    from tritonrnn.kernels import cells, config
    c = record["config"]
    kind = cells.lookup(record["cell"])
    per_batch = config.padded_gates(kind.code) * c["block_h"] * c["block_k"]
    if kind.projects:
        per_batch += c["block_k"] * c["block_h"]
    return 2 * c["block_b"] * per_batch


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
    """Identity of a record (or of a job with its "sm_NN" arch and resident form) across
    report runs. A record from before resident forms were recorded matches no split job."""
    return (record["arch"], record["kernel"], record["cell"], record["dtype"],
            record["hidden_size"], json.dumps(record["config"], sort_keys=True),
            json.dumps(record.get("resident")))


def run(archs, cells, dtypes, hiddens, forms, scope="shipped", workers=None,
        progress=sys.stderr, known=()):
    """Compile every job of the scope for every arch (the shipped scope as launched, walking
    slices where the launcher does, whichever forms were asked for); see compile_jobs."""
    work = {}
    for arch in archs:
        for job in jobs(cells, dtypes, hiddens, forms, scope):
            if scope == "shipped":
                job = launched(job, arch)
            work.setdefault(_record_key(dict(job, arch=f"sm_{arch}")), (job, arch))
    return compile_jobs(list(work.values()), workers, progress, known)


def compile_jobs(work, workers=None, progress=sys.stderr, known=()):
    """Records of (job, arch) pairs; jobs sharing a binary are compiled once and share its
    numbers (the per-step columns follow each job's own sizes). `known`: records of earlier
    runs of the same kernels, reused instead of recompiled."""
    import triton
    reuse = {_record_key(r): r for r in known}
    todo, reused = [], []
    for job, arch in work:
        earlier = reuse.get(_record_key(dict(job, arch=f"sm_{arch}",
                                             resident=resident_form(job, arch))))
        if earlier is not None:
            reused.append(earlier)
        else:
            todo.append((job, arch))
    work = todo
    unique, work_keys = {}, []
    for job, arch in work:
        work_keys.append(_compile_key(job, arch))
        unique.setdefault(work_keys[-1], (job, arch))
    keys = list(unique)
    print(f"compile report: {len(work) + len(reused)} records, {len(keys)} distinct "
          f"compilations ({len(reused)} records reused)", file=progress, flush=True)
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
                                    resident=resident_form(job, arch),
                                    triton=triton.__version__,
                                    error="compiler process crashed", ok=False, compile_s=0.0)
    records = list(reused)
    for (job, arch), key in zip(work, work_keys):
        fields = {k: v for k, v in results[key].items() if k not in job}
        fields["programs_per_group"] = programs_per_group(job, arch)
        records.append(add_time_loop(dict(job, **fields)))
    return records


def write_pruned(records, command):
    """Rewrite kernels/pruned_configs.json with every failing configuration in `records`."""
    from tritonrnn.kernels import pruning
    from .prune_rules import entries_from_report
    entries = entries_from_report(records)
    with open(pruning.PRUNED_FILE, "w") as f:
        json.dump(dict(generated_by=command,
                       archs=sorted({r["arch"] for r in records}),
                       kernels=sorted({r["kernel"] for r in records}),
                       hidden_sizes=sorted({r["hidden_size"] for r in records}),
                       compiled=len(records), configs=entries), f, indent=1)
        f.write("\n")
    print(f"wrote {len(entries)} pruned configurations to {pruning.PRUNED_FILE}", file=sys.stderr)


def _installed_triton_records(paths):
    """The records in `paths`, all compiled under the installed Triton (else exit)."""
    import triton
    records = []
    for path in paths:
        with open(path) as f:
            records += json.load(f)
    others = {r.get("triton") for r in records} - {triton.__version__}
    if others:
        raise SystemExit(f"records from triton {sorted(map(str, others))}, not the installed "
                         f"{triton.__version__}: run the report and this under one Triton")
    return records


def _prune_version_from(paths):
    """--prune-version-from: the installed Triton's failures, recorded for its version only."""
    from tritonrnn.kernels import pruning
    from . import prune_rules
    records = _installed_triton_records(paths)
    added = prune_rules.add_version_entries(
        prune_rules.entries_from_report(records), "python -m bench.compile_report "
        "--prune-version-from " + " ".join(os.path.basename(p) for p in paths))
    print(f"triton {pruning.triton_version_key()}: {added} configurations added to "
          f"{pruning.PRUNED_BY_TRITON_FILE}", file=sys.stderr)
    return 0


def _prune_add_from(paths):
    """--prune-add-from: failures of a report under the shipped list's Triton, added to it."""
    import triton
    from tritonrnn.kernels import pruning
    from . import prune_rules
    records = _installed_triton_records(paths)
    if pruning.triton_version_key() != pruning.SHIPPED_TRITON:
        raise SystemExit(f"the shipped list is for triton {pruning.SHIPPED_TRITON}, not the "
                         f"installed {triton.__version__}: use --prune-version-from")
    added = prune_rules.add_shipped_entries(
        prune_rules.entries_from_report(records), "python -m bench.compile_report "
        "--prune-add-from " + " ".join(os.path.basename(p) for p in paths))
    print(f"{added} configurations added to {pruning.PRUNED_FILE}", file=sys.stderr)
    return 0


def _prune_fused_from(paths):
    """--prune-fused-from: the fused regime's entries, replaced from a whole-space report."""
    from tritonrnn.kernels import pruning
    from . import prune_rules
    records = _installed_triton_records(paths)
    dropped, added = prune_rules.replace_fused_entries(
        prune_rules.entries_from_report(records), "python -m bench.compile_report "
        "--prune-fused-from " + " ".join(os.path.basename(p) for p in paths))
    print(f"triton {pruning.triton_version_key()}: {dropped} fused entries dropped, {added} "
          "added", file=sys.stderr)
    return 0


def settle(archs, cells, dtypes, hiddens, forms, scope, workers, known=()):
    """Compile the scope, then prune each failing split record's resident form (under the
    installed Triton: kernels/pruned_configs.json when it is the shipped list's, else its
    entries in pruned_by_triton.json) and compile again the records whose layout that
    changed (config.clean_resident keeps less on chip, or streams in fewer stages), until
    every record is clean or no failing record has a lower form left. Returns the last
    records."""
    from tritonrnn.kernels import pruning
    from . import prune_rules
    records = run(archs, cells, dtypes, hiddens, forms, scope, workers, known=known)
    command = "python -m bench.compile_report --settle"
    while True:
        resident = [e for e in prune_rules.entries_from_report(records)
                    if e["forms"] == "resident"]
        if pruning.triton_version_key() == pruning.SHIPPED_TRITON:
            added = prune_rules.add_shipped_entries(resident, command) if resident else 0
        else:
            added = prune_rules.add_version_entries(resident, command) if resident else 0
        failing = sum(not r["ok"] for r in records)
        print(f"settle: {failing} failing records, {added} resident forms pruned",
              file=sys.stderr, flush=True)
        if not added:
            return records
        records = run(archs, cells, dtypes, hiddens, forms, scope, workers, known=records)


def format_table(records):
    head = (f"{'arch':6} {'kernel':22} {'cell':9} {'dtype':5} {'H':>5} {'config':28} {'regs':>4} "
            f"{'spill':>5} {'shared':>7} {'limit':>7} {'TC':>3} {'s':>5}  status")
    from .prune_rules import problems
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
    return "\n".join(lines) + "\n\n" + format_time_loops(records)


def format_time_loops(records):
    """Second table: per time step and program, from each kernel's time loop (bench/sass.py).
    MMA: HMMA per warp or HGMMA per warpgroup; 'W?' marks global loads inside a loop nested
    in the time loop (data streamed every step); '/bound': global-load bytes over the least a
    forward step must load (ldg_bound_bytes); RT: dependent global round trips."""
    head = (f"{'arch':6} {'kernel':22} {'cell':9} {'dtype':5} {'H':>5} {'progs':>5} "
            f"{'LDG':>5} {'LDG B':>8} {'/bound':>6} {'STG B':>7} {'LDS B':>9} {'STS B':>8} {'HGMMA smem':>10} "
            f"{'LDL B':>6} {'MMA':>14} {'RT':>4} {'BAR':>5} {'MEMBAR':>6} {'ATOM+RED':>8} {'CCTL':>4} "
            f"{'W?':>2}  time loop")
    lines = ["per time step, per program (static SASS counts x inner-loop trips; waits "
             "counted as satisfied at once):", head]
    for r in records:
        p = r.get("per_step")
        if not p or p.get("time_loop") is None:
            continue
        kinds = p["mma_kinds"]
        mma = " ".join(f"{n}x{k.split('.', 1)[-1]}" for k, n in kinds.items()) or "-"
        lines.append(
            f"{r['arch']:6} {r['kernel']:22} {r['cell']:9} {r['dtype']:5} {r['hidden_size']:>5} "
            f"{r.get('programs_per_group', ''):>5} {p['ldg_instr']:>5} {p['ldg_bytes']:>8} "
            f"{p.get('ldg_over_bound', '-'):>6} "
            f"{p['stg_bytes']:>7} {p['lds_bytes']:>9} {p['sts_bytes']:>8} "
            f"{p['hgmma_smem_bytes']:>10} {p['ldl_bytes']:>6} {mma:>14} "
            f"{p.get('dependent_round_trips', '-'):>4} {p['bar_instr']:>5} "
            f"{p['membar_instr']:>6} {p['atom_instr'] + p['red_instr']:>8} {p['cctl_instr']:>4} "
            f"{'y' if p['nested_loop_loads_global'] else 'n':>2}  {p['time_loop']}")
    return "\n".join(lines)


FORM_CHOICES = ("main", "all", "fused", "split_forward", "split_backward")  # --forms


def form_set(choice):
    """The kernel forms a --forms choice compiles."""
    from tritonrnn.kernels.compile_specs import KERNEL_FORMS, MAIN_FORMS, kernel_forms
    return {"main": MAIN_FORMS, "all": KERNEL_FORMS, "fused": kernel_forms(False, False),
            "split_forward": ("split_forward", "split_forward_multi"),
            "split_backward": ("split_backward", "split_backward_multi")}[choice]


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
    parser.add_argument("--forms", choices=FORM_CHOICES, default=None,
                        help="main: the forms ordinary sizes launch; all: also the split "
                             "regime's multi-slice forms (more hidden slices than SMs); "
                             "fused: the fused regime's alone; split_forward, "
                             "split_backward: that split kernel's main and multi-slice forms "
                             "(after a change to one of them). The shipped scope compiles "
                             "each plan as it runs, walking slices where it does, under any "
                             "of these but fused")
    parser.add_argument("--json", default=None, help="write the records as a JSON list here")
    parser.add_argument("--prune-from", nargs="+", default=None, metavar="JSON",
                        help="compile nothing: rewrite kernels/pruned_configs.json from the "
                             "failures in these report files (e.g. a --scope space run for "
                             "sm_90, then a --scope selectable run for sm_80)")
    parser.add_argument("--prune-version-from", nargs="+", default=None, metavar="JSON",
                        help="compile nothing: add the failures in these report files, run "
                             "under the installed Triton, to its entries in "
                             "kernels/pruned_by_triton.json (the shipped list is untouched)")
    parser.add_argument("--prune-add-from", nargs="+", default=None, metavar="JSON",
                        help="compile nothing: add the failures in these report files (run "
                             "under the shipped list's Triton) to kernels/pruned_configs.json, "
                             "keeping its entries")
    parser.add_argument("--prune-fused-from", nargs="+", default=None, metavar="JSON",
                        help="compile nothing: the fused regime's entries of the installed "
                             "Triton's list become the failures in these report files (run "
                             "with --scope space --forms fused over every hidden size the "
                             "regime holds, both architectures); split entries are kept")
    parser.add_argument("--settle", action="store_true",
                        help="prune the failing split records' resident forms (under the "
                             "installed Triton) and recompile, until clean or nothing is "
                             "left to lower (see settle())")
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
    if args.prune_add_from:
        return _prune_add_from(args.prune_add_from)
    if args.prune_fused_from:
        return _prune_fused_from(args.prune_fused_from)
    if os.environ.get("TRITON_INTERPRET", "0") == "1":
        parser.error("unset TRITON_INTERPRET: kernels defined under the interpreter cannot be compiled")
    if args.full and args.quick:
        parser.error("--full or --quick, not both")
    hiddens = (tuple(int(h) for h in args.hidden.split(",")) if args.hidden
               else FULL_HIDDEN if args.full else QUICK_HIDDEN)
    forms = form_set(args.forms or ("all" if args.full else "main"))
    scope = args.scope or ("selectable" if args.full else "shipped")
    archs = _parse_arch(args.arch)
    known = []
    for path in args.reuse:
        with open(path) as f:
            known += json.load(f)
    compile_all = settle if args.settle else run
    records = compile_all(archs, args.cells.split(","), args.dtypes.split(","), hiddens, forms,
                          scope, args.workers, known=known)
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
