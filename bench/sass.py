"""Time-loop report: what one time step of one program of a compiled kernel executes, read
from its SASS (the GPU's machine code, disassembled by the nvdisasm bundled with triton).

A recurrence kernel runs every time step in one loop; what that loop's body executes per
iteration decides the speed. This module finds that loop and counts, per time step and per
program (one CTA), the instructions and bytes that matter:

- global memory: load and store instructions (per warp) and bytes (instruction width x 32
  lanes x warps: all lanes counted active, an upper bound for masked accesses);
  cp.async (LDGSTS) counts as a global load; atomics (ATOM*/RED*) are counted separately;
- shared memory: bytes read (LDS, LDSM) and written (STS, STSM) by threads, and an estimate
  of the bytes wgmma (HGMMA) reads straight from shared memory (its operand tiles);
- local memory (register spills): LDL/STL bytes;
- tensor-core instructions by kind (HMMA per warp, HGMMA per warpgroup), and their FLOPs;
- CTA barriers (BAR), memory fences (MEMBAR at GPU or system scope; CTA-scope ones, which
  only order shared memory, apart), atomics (ATOM*, RED*), cache invalidations (CCTL),
  async-proxy fences (FENCE);
- whether a loop nested inside the time loop loads from global memory (weights streamed
  every step rather than kept on chip);
- dependent global round trips: how many times per step an instruction waits for an
  outstanding global load (in-order issue: the latency chain the step cannot hide);
- instructions: all of them, per warp (each warp issues the whole body; a scheduler issues
  at most one a cycle).

How loops are found and counted. Every backward branch in the SASS closes a loop
[target label, branch]; nesting follows from address ranges. With line information
(nvdisasm -g; triton compiles with it) the branch's source line names the Python loop it
came from: `for VAR in ITER` or `while ...`. The *time loop* is the outermost loop holding
the most global stores (each step stores its outputs), ties to the longer loop. Per-step
counts are static counts times the trip counts of the loops nested inside it, which the
caller supplies as a dict keyed by the loop's iterable source text (e.g.
"range(0, K, BLOCK_KC)") or by its loop variable ("k0"). `while` loops are waits (spin on a
flag or counter): counted as satisfied at the first check, so their bodies add nothing;
their instructions per extra spin are reported apart. A nested loop with no known trip
count counts once and is listed under "unknown_trip_loops".
"""
import ast
import functools
import os
import re
import subprocess
import tempfile

WARP = 32


def nvdisasm_path():
    import triton
    return os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin",
                        "nvdisasm")


def disassemble(cubin):
    """SASS text of a cubin (bytes), with source line information."""
    with tempfile.NamedTemporaryFile(suffix=".cubin") as f:
        f.write(cubin)
        f.flush()
        return subprocess.run([nvdisasm_path(), "-c", "-g", f.name], capture_output=True,
                              text=True, check=True).stdout


# -- parsing --------------------------------------------------------------------------------

_LINE_INFO = re.compile(r'^\s*//## File "([^"]+)", line (\d+)')
_LABEL = re.compile(r"^\s*(\.L_x_\d+):")
_INSTRUCTION = re.compile(r"^\s*/\*([0-9a-f]{4,})\*/\s+(.*?)\s*;")
_PREDICATE = re.compile(r"^@!?U?P[T\d]+\s+")
_BRANCH_TARGET = re.compile(r"`\((\.L_x_\d+)\)")


def parse(sass):
    """(instructions, labels): instructions as dicts {addr, op, text, file, line} in address
    order (op: the opcode with its modifiers, predicate removed); labels: name -> address."""
    instructions, labels, pending, where = [], {}, [], (None, None)
    for raw in sass.splitlines():
        m = _LINE_INFO.match(raw)
        if m:
            where = (m.group(1), int(m.group(2)))
            continue
        m = _LABEL.match(raw)
        if m:
            pending.append(m.group(1))
            continue
        m = _INSTRUCTION.match(raw)
        if not m:
            continue
        addr, text = int(m.group(1), 16), m.group(2).strip()
        body = _PREDICATE.sub("", text)
        op = body.split()[0] if body else ""
        for label in pending:
            labels[label] = addr
        pending = []
        instructions.append(dict(addr=addr, op=op, text=text, file=where[0], line=where[1]))
    return instructions, labels


@functools.lru_cache(maxsize=None)
def _source_loops(path):
    """{line: (kind, variable, iterable text)} for every for/while statement in a file."""
    try:
        with open(path) as f:
            tree = ast.parse(f.read())
    except (OSError, SyntaxError):
        return {}
    found = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.For):
            var = node.target.id if isinstance(node.target, ast.Name) else ast.unparse(node.target)
            found[node.lineno] = ("for", var, ast.unparse(node.iter))
        elif isinstance(node, ast.While):
            found[node.lineno] = ("while", None, ast.unparse(node.test))
    return found


def find_loops(instructions, labels):
    """Loops closed by backward branches, as dicts {head, tail, kind, var, iter, source}:
    head/tail are instruction indices (inclusive); kind "for", "while" or "unknown" from the
    branch's source line (the nearest for/while at or above it when the line itself is none).
    A branch placed after the kernel's first unconditional EXIT back to code before it closes
    no loop: it ends an out-of-line block (such as a shuffle's fallback for diverged warps,
    entered by BRA.DIV) returning to where it was entered."""
    index_of = {ins["addr"]: i for i, ins in enumerate(instructions)}
    end = next((i for i, ins in enumerate(instructions)
                if ins["op"] == "EXIT" and not _PREDICATE.match(ins["text"])), len(instructions))
    loops = []
    for i, ins in enumerate(instructions):
        if not ins["op"].startswith(("BRA", "BRX")):
            continue
        m = _BRANCH_TARGET.search(ins["text"])
        if not m or m.group(1) not in labels or labels[m.group(1)] > ins["addr"]:
            continue
        head = index_of[labels[m.group(1)]]
        if head < end < i:
            continue
        kind, var, iterable, source = "unknown", None, None, None
        if ins["file"]:
            statements = _source_loops(ins["file"])
            if ins["line"] in statements:
                kind, var, iterable = statements[ins["line"]]
                source = f"{os.path.basename(ins['file'])}:{ins['line']}"
        loops.append(dict(head=head, tail=i, kind=kind, var=var, iter=iterable, source=source))
    return loops


# -- instruction classes --------------------------------------------------------------------

def _access_bytes(op):
    """Bytes one thread moves with a load/store/ldmatrix opcode."""
    parts = op.split(".")
    if parts[0] in ("LDSM", "STSM"):  # ldmatrix/stmatrix: .1/.2/.4 8x8 matrices, 4 B/thread each
        count = next((int(p) for p in parts[1:] if p in ("1", "2", "4")), 1)
        return 4 * count
    for suffix, size in (("128", 16), ("64", 8), ("U16", 2), ("S16", 2), ("U8", 1), ("S8", 1)):
        if suffix in parts[1:]:
            return size
    return 4


_MMA_SHAPE = re.compile(r"^(HMMA|HGMMA|DMMA|IMMA)\.(\d+)x?(\d*)x?(\d*)")


def mma_flops(op):
    """FLOPs of one tensor-core instruction (per warp for HMMA, per warpgroup for HGMMA)."""
    m = _MMA_SHAPE.match(op)
    if not m:
        return 0
    kind, a = m.group(1), m.group(2)
    if kind == "HGMMA":  # HGMMA.64x16x16
        mm, n, k = int(a), int(m.group(3)), int(m.group(4))
    elif len(a) == 4:    # HMMA.16816: m16 n8 k16; HMMA.1688: m16 n8 k8
        mm, n, k = int(a[:2]), int(a[2]), int(a[3])
    elif len(a) == 5:
        mm, n, k = int(a[:2]), int(a[2]), int(a[3:])
    else:
        return 0
    return 2 * mm * n * k


def hgmma_smem_bytes(ins):
    """Estimate of the shared memory one HGMMA reads: its B tile, and its A tile unless A
    comes from registers (the operand after the destination is then a register)."""
    m = _MMA_SHAPE.match(ins["op"])
    mm, n, k = int(m.group(2)), int(m.group(3)), int(m.group(4))
    element = 32 // k  # K is 32 bytes of operand: fp16/bf16 k16, tf32 k8, fp8 k32
    operands = _PREDICATE.sub("", ins["text"]).split(None, 1)[1].split(",")
    a_in_registers = len(operands) > 1 and operands[1].strip().startswith("R")
    return (n * k + (0 if a_in_registers else mm * k)) * element


def _classify(op):
    head = op.split(".")[0]
    if head in ("LDG", "LDGSTS"):
        return "ldg"
    if head == "STG":
        return "stg"
    if head in ("LDS", "LDSM"):
        return "lds"
    if head in ("STS", "STSM"):
        return "sts"
    if head == "LDL":
        return "ldl"
    if head == "STL":
        return "stl"
    if head in ("HMMA", "DMMA", "IMMA"):
        return "hmma"
    if head == "HGMMA":
        return "hgmma"
    if head.startswith("ATOM") and head != "ATOMS":
        return "atom"
    if head.startswith("RED"):
        return "red"
    if head == "BAR":
        return "bar"
    if head == "MEMBAR":  # GPU/system scope waits for L2; CTA scope orders shared memory
        return "membar_cta" if ".CTA" in op else "membar"
    if head == "FENCE":
        return "fence"
    if head == "CCTL":
        return "cctl"
    return None


_COUNTED = ("ldg", "stg", "lds", "sts", "ldl", "stl", "hmma", "hgmma", "atom", "red", "bar",
            "membar", "membar_cta", "fence", "cctl")


def _tally(instructions, weights, num_warps):
    """Per-program counts over instructions, each weighted by how often it runs per step."""
    threads = WARP * num_warps
    out = {f"{c}_instr": 0.0 for c in _COUNTED}
    out.update(ldg_bytes=0.0, stg_bytes=0.0, lds_bytes=0.0, sts_bytes=0.0, ldl_bytes=0.0,
               stl_bytes=0.0, hgmma_smem_bytes=0.0, mma_flops=0.0, instructions=0.0)
    kinds = {}
    for ins, w in zip(instructions, weights):
        if not w:
            continue
        out["instructions"] += w  # every instruction a warp issues, of any kind
        c = _classify(ins["op"])
        if c is None:
            continue
        out[f"{c}_instr"] += w
        if c in ("ldg", "stg", "lds", "sts", "ldl", "stl"):
            out[f"{c}_bytes"] += w * _access_bytes(ins["op"]) * threads
        elif c in ("hmma", "hgmma"):
            # HMMA: every warp issues it; HGMMA: one per warpgroup of 4 warps
            per_program = num_warps if c == "hmma" else max(1, num_warps // 4)
            out["mma_flops"] += w * mma_flops(ins["op"]) * per_program
            if c == "hgmma":
                out["hgmma_smem_bytes"] += w * hgmma_smem_bytes(ins) * per_program
            name = ".".join(ins["op"].split(".")[:2])
            kinds[name] = kinds.get(name, 0.0) + w
    out = {k: _clean(v) for k, v in out.items()}
    out["mma_kinds"] = {k: _clean(v) for k, v in sorted(kinds.items())}
    return out


def _clean(x):
    return int(x) if float(x).is_integer() else round(x, 3)


# -- dependent round trips -----------------------------------------------------------------

_REGISTER = re.compile(r"\bR(\d+)(?:\.64)?\b")
_NO_DESTINATION = ("ST", "STG", "STS", "STSM", "STL", "RED", "REDG", "BAR", "BRA", "MEMBAR",
                   "CCTL", "FENCE", "EXIT", "DEPBAR", "BSYNC", "BSSY", "WARPSYNC", "ERRBAR")


def _registers(token_text):
    found = set()
    for m in _REGISTER.finditer(token_text):
        base = int(m.group(1))
        found.add(base)
        if m.group(0).endswith(".64"):
            found.add(base + 1)
    return found


def _operands(ins):
    body = _PREDICATE.sub("", ins["text"])
    parts = body.split(None, 1)
    return [p.strip() for p in parts[1].split(",")] if len(parts) > 1 else []


def _global_load_destination(ins):
    """Registers a global load (or an atomic returning a value) writes, else None."""
    head = ins["op"].split(".")[0]
    operands = _operands(ins)
    if head in ("LDG", "LD") and operands:
        first = _REGISTER.match(operands[0])
        if first:
            base = int(first.group(1))
            return set(range(base, base + max(1, _access_bytes(ins["op"]) // 4)))
    if head in ("ATOMG", "ATOM") and operands:
        for operand in operands[:2]:  # ATOMG PT, Rd, [addr], Rv: Rd after an optional PT
            m = _REGISTER.fullmatch(operand)
            if m:
                return {int(m.group(1))}
    return None


def _sources(ins):
    operands = _operands(ins)
    if ins["op"].split(".")[0] in _NO_DESTINATION:
        return _registers(" ".join(operands))
    return _registers(" ".join(operands[1:]))


def dependent_round_trips(instructions, weights):
    """Global-memory round trips per step that execute one after another. Issue is in
    order: an instruction that reads a register an outstanding global load (or returning
    atomic) will write waits for it, and by then every load issued before that instruction
    has arrived too (they left within a few cycles of each other). Each such wait is one
    round trip, counted as often as the loads it waits for run (the largest weight among
    them); loads still outstanding at the end of the body count as one more wait (their use
    is in the next iteration)."""
    pending = []   # (registers, weight) of outstanding loads, in issue order
    trips = 0.0
    for ins, w in zip(instructions, weights):
        if pending:
            used = _sources(ins)
            waited = [weight for regs, weight in pending if regs & used]
            if waited:
                trips += max(waited)
                pending = []
        if w:
            dest = _global_load_destination(ins)
            if dest:
                pending.append((dest, w))
    if pending:
        trips += max(weight for _, weight in pending)
    return _clean(trips)


# -- the time loop --------------------------------------------------------------------------

def _contains(outer, inner):
    return outer["head"] <= inner["head"] and inner["tail"] <= outer["tail"] and outer is not inner


def _trips_by_source(loops):
    """{source line: trips per step} of `loops`; a list where one line has several loops."""
    found = {}
    for lp in loops:
        found.setdefault(lp["source"] or str(lp["head"]), []).append(lp["trips"])
    return {src: counts[0] if len(counts) == 1 else counts for src, counts in found.items()}


def time_loop_report(sass, num_warps, trips):
    """Per-step, per-program counts of a kernel's time loop (see the module docstring).

    sass: nvdisasm output (with -g for line information); num_warps: the launch's warps;
    trips: {loop iterable source text or loop variable: iterations per time step} for the
    loops nested in the time loop; a list gives the loops of one source text (a function
    inlined more than once) their counts in program order. Returns a flat dict
    (JSON-ready), or {"time_loop": None} when the kernel has no loop."""
    instructions, labels = parse(sass)
    loops = find_loops(instructions, labels)
    if not loops:
        return {"time_loop": None}
    outermost = [lp for lp in loops if not any(_contains(o, lp) for o in loops)]

    def stores(lp):
        return sum(_classify(ins["op"]) == "stg" for ins in instructions[lp["head"]:lp["tail"] + 1])
    time_loop = max(outermost, key=lambda lp: (stores(lp), lp["tail"] - lp["head"]))
    inner = sorted((lp for lp in loops if _contains(time_loop, lp)), key=lambda lp: lp["head"])
    unknown, resolved, taken = [], [], {}
    for lp in inner:
        key = lp["iter"] if lp["iter"] in trips else lp["var"]
        count = trips.get(key)
        if isinstance(count, (list, tuple)):  # the next of this text's loops
            taken[key] = taken.get(key, 0) + 1
            count = count[taken[key] - 1] if taken[key] <= len(count) else None
        if lp["kind"] == "while":
            lp["trips"] = 0
        elif count is not None:
            lp["trips"] = count
        else:
            lp["trips"] = 1
            unknown.append(lp["source"] or f"loop at SASS index {lp['head']}")
        resolved.append(lp)
    body = instructions[time_loop["head"]:time_loop["tail"] + 1]
    weights = []
    for i in range(time_loop["head"], time_loop["tail"] + 1):
        w = 1.0
        for lp in resolved:
            if lp["head"] <= i <= lp["tail"]:
                w *= lp["trips"]
        weights.append(w)
    report = _tally(body, weights, num_warps)
    # Global loads issued inside nested loops (not waits): data streamed every step.
    nested = [1.0 if any(lp["head"] <= i <= lp["tail"] and lp["kind"] != "while"
                         for lp in resolved) else 0.0
              for i in range(time_loop["head"], time_loop["tail"] + 1)]
    nested_w = [w * n for w, n in zip(weights, nested)]
    nested_loads = _tally(body, nested_w, num_warps)
    spin = [1.0 if any(lp["head"] <= i <= lp["tail"] and lp["kind"] == "while"
                       for lp in resolved) else 0.0
            for i in range(time_loop["head"], time_loop["tail"] + 1)]
    per_spin = _tally(body, spin, num_warps)
    tl_source = time_loop["source"] or f"SASS index {time_loop['head']}"
    report.update(
        time_loop=f"{tl_source} {time_loop['kind']} {time_loop['var'] or ''}".strip(),
        dependent_round_trips=dependent_round_trips(body, weights),
        nested_loop_ldg_instr=nested_loads["ldg_instr"],
        nested_loop_ldg_bytes=nested_loads["ldg_bytes"],
        nested_loop_loads_global=nested_loads["ldg_instr"] > 0,
        wait_loops=sum(lp["kind"] == "while" for lp in resolved),
        per_extra_spin={k: v for k, v in per_spin.items()
                        if k.endswith("_instr") and v and k != "mma_kinds"},
        inner_loops=_trips_by_source(resolved),
        unknown_trip_loops=unknown)
    return report


# The columns a one-line summary shows (compile report table, bench.model).
SUMMARY = (("ldg_instr", "LDG"), ("ldg_bytes", "LDG B"), ("stg_bytes", "STG B"),
           ("lds_bytes", "LDS B"), ("sts_bytes", "STS B"), ("ldl_bytes", "LDL B"),
           ("hmma_instr", "HMMA/w"), ("hgmma_instr", "HGMMA/wg"), ("bar_instr", "BAR"),
           ("membar_instr", "MEMBAR"), ("atom_instr", "ATOM"), ("red_instr", "RED"),
           ("cctl_instr", "CCTL"))
