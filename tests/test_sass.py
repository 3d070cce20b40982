"""bench/sass.py on a small hand-written SASS listing whose line information points at a
Python file with a time loop, a nested reduction loop and a wait loop: which loop is the time
loop, trip-count weighting, byte widths, MMA FLOPs, and waits counted as satisfied at once.
(The compiled kernels' columns are checked in tests/test_compile.py.)"""
from bench import sass

SOURCE = """def kernel():
    for step in range(T):
        for k0 in range(0, K, BLOCK_KC):
            pass
        while seen < target:
            pass
"""

LISTING = """
	//## File "{path}", line 2
        /*0000*/                   MOV R1, R2 ;
.L_x_0:
        /*0010*/                   LDG.E.128 R4, desc[UR4][R2.64] ;
.L_x_1:
	//## File "{path}", line 3
        /*0020*/                   LDG.E R8, desc[UR4][R2.64] ;
        /*0030*/                   LDSM.16.M88.4 R12, [R3] ;
        /*0040*/                   HMMA.16816.F32 R8, R4, R6, R8 ;
        /*0050*/              @!P1 BRA `(.L_x_1) ;
.L_x_2:
	//## File "{path}", line 5
        /*0060*/                   LDG.E.STRONG.GPU R9, desc[UR4][R2.64] ;
        /*0070*/                   CCTL.IVALL ;
        /*0080*/              @!P2 BRA `(.L_x_2) ;
	//## File "{path}", line 2
        /*0090*/               @P0 STG.E.U16 desc[UR4][R2.64], R9 ;
        /*00a0*/                   HGMMA.64x16x16.F32 R24, gdesc[UR8], RZ, !UPT ;
        /*00b0*/                   BAR.SYNC.DEFER_BLOCKING 0x0 ;
        /*00c0*/                   MEMBAR.ALL.GPU ;
        /*00c8*/                   MEMBAR.ALL.CTA ;
        /*00d0*/                   REDG.E.ADD.STRONG.GPU desc[UR8][R6.64], R3 ;
        /*00e0*/               @P3 BRA `(.L_x_0) ;
        /*00f0*/                   EXIT ;
.L_x_3:
        /*0100*/                   BRA `(.L_x_3);
"""


def test_time_loop_counts(tmp_path):
    path = tmp_path / "kernel.py"
    path.write_text(SOURCE)
    listing = LISTING.format(path=path)
    warps, threads = 8, 256
    r = sass.time_loop_report(listing, warps, {"range(0, K, BLOCK_KC)": 3})
    assert r["time_loop"] == "kernel.py:2 for step"
    assert r["inner_loops"] == {"kernel.py:3": 3, "kernel.py:5": 0}
    assert r["unknown_trip_loops"] == []
    # global loads: one 16-byte load per step, a 4-byte load 3 times; the wait loop's poll
    # counts once it spins (per_extra_spin), not per step
    assert r["ldg_instr"] == 1 + 3
    assert r["ldg_bytes"] == (16 + 3 * 4) * threads
    assert r["nested_loop_loads_global"] and r["nested_loop_ldg_bytes"] == 3 * 4 * threads
    assert r["lds_instr"] == 3 and r["lds_bytes"] == 3 * 16 * threads  # ldmatrix .4: 16 B
    assert r["stg_instr"] == 1 and r["stg_bytes"] == 2 * threads
    assert r["mma_kinds"] == {"HMMA.16816": 3, "HGMMA.64x16x16": 1}
    # HMMA m16n8k16 on every warp; HGMMA 64x16x16 once per warpgroup (2 of them)
    assert r["mma_flops"] == 3 * 2 * 16 * 8 * 16 * warps + 2 * 64 * 16 * 16 * 2
    assert r["hgmma_smem_bytes"] == (64 * 16 + 16 * 16) * 2 * 2  # A and B from smem, fp16
    assert (r["bar_instr"], r["membar_instr"], r["red_instr"], r["cctl_instr"]) == (1, 1, 1, 0)
    assert r["membar_cta_instr"] == 1  # shared-memory ordering only: not a GPU-scope fence
    assert r["wait_loops"] == 1 and r["per_extra_spin"] == {"ldg_instr": 1, "cctl_instr": 1}
    # the HMMA waits for the nested loop's load (3 times a step), the 16-byte load having
    # arrived by then; the STG reads the poll's register, whose load only runs when spinning
    assert r["dependent_round_trips"] == 3
    # every instruction a warp issues a step: the 16-byte load, the nested loop's 4 three
    # times, the 7 after the wait loop (whose 3 only run when it spins)
    assert r["instructions"] == 1 + 3 * 4 + 7


def test_unknown_nested_loop_is_listed(tmp_path):
    path = tmp_path / "kernel.py"
    path.write_text(SOURCE)
    r = sass.time_loop_report(LISTING.format(path=path), 4, {})
    assert r["unknown_trip_loops"] == ["kernel.py:3"]
    assert r["ldg_instr"] == 2  # the unknown loop counted once


def test_access_widths():
    assert [sass._access_bytes(op) for op in
            ("LDG.E.128", "LDG.E.64", "LDG.E.U16", "LDG.E", "STS.U8", "LDSM.16.MT88.2")] \
        == [16, 8, 2, 4, 1, 8]
    assert sass.mma_flops("HMMA.1688.F32.TF32") == 2 * 16 * 8 * 8
    assert sass.mma_flops("HGMMA.64x128x16.F32.BF16") == 2 * 64 * 128 * 16


TWICE = """
	//## File "{path}", line 2
        /*0000*/                   MOV R1, R2 ;
.L_x_0:
.L_x_1:
	//## File "{path}", line 3
        /*0010*/                   LDG.E R8, desc[UR4][R2.64] ;
        /*0020*/              @!P1 BRA `(.L_x_1) ;
.L_x_2:
	//## File "{path}", line 3
        /*0030*/                   LDG.E.64 R8, desc[UR4][R2.64] ;
        /*0040*/              @!P1 BRA `(.L_x_2) ;
	//## File "{path}", line 2
        /*0050*/                   STG.E desc[UR4][R2.64], R9 ;
        /*0060*/               @P3 BRA `(.L_x_0) ;
        /*0070*/                   EXIT ;
"""


def test_one_loop_inlined_twice_takes_its_counts_in_order(tmp_path):
    """A function inlined twice in the time loop (kernels/split.py's streaming loop, once
    for W_hh and once for W_hr) has two loops of one source line: a list of trips gives
    them their counts in program order, and a loop past the list's end is unknown."""
    path = tmp_path / "kernel.py"
    path.write_text(SOURCE)
    listing = TWICE.format(path=path)
    r = sass.time_loop_report(listing, 1, {"range(0, K, BLOCK_KC)": [3, 5]})
    assert r["inner_loops"] == {"kernel.py:3": [3, 5]} and r["unknown_trip_loops"] == []
    assert r["ldg_bytes"] == (3 * 4 + 5 * 8) * 32
    short = sass.time_loop_report(listing, 1, {"range(0, K, BLOCK_KC)": [3]})
    assert short["unknown_trip_loops"] == ["kernel.py:3"]


# A shuffle whose warps may have diverged gets an out-of-line fallback: BRA.DIV jumps to it,
# placed after the kernel's EXIT, and it branches back into the loop it left.
OUT_OF_LINE = """
	//## File "{path}", line 2
        /*0000*/                   MOV R1, R2 ;
.L_x_0:
        /*0010*/                   BRA.DIV UR4, `(.L_x_5) ;
        /*0020*/                   SHFL.BFLY PT, R5, R4, 0x1, 0x1f ;
.L_x_4:
        /*0030*/                   STG.E desc[UR4][R2.64], R5 ;
        /*0040*/               @P3 BRA `(.L_x_0) ;
        /*0050*/                   EXIT ;
.L_x_5:
        /*0060*/                   WARPSYNC.COLLECTIVE R6, `(.L_x_6) ;
        /*0070*/                   SHFL.BFLY P0, R5, R4, R7, R8 ;
.L_x_6:
        /*0080*/                   BRA `(.L_x_4) ;
.L_x_7:
        /*0090*/                   BRA `(.L_x_7);
"""


def test_branch_back_from_out_of_line_block_closes_no_loop(tmp_path):
    """The fallback's branch back is no loop (taken for one, it spanned the time loop's end
    and was picked as the time loop: bench/calibrate.py's exchange kernel, 2026-12-01)."""
    path = tmp_path / "kernel.py"
    path.write_text(SOURCE)
    listing = OUT_OF_LINE.format(path=path)
    loops = sass.find_loops(*sass.parse(listing))
    assert [(lp["head"], lp["tail"]) for lp in loops] == [(1, 4), (9, 9)]  # time loop, trap
    assert sass.time_loop_report(listing, 4, {})["time_loop"] == "kernel.py:2 for step"
