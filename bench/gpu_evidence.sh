#!/usr/bin/env bash
# GPU evidence on a CUDA machine with no network.
#   bash bench/gpu_evidence.sh --quick OUT_DIR            the check that fits one short visit:
#       at most 8 minutes and 8 files, most important first (bench/gpu_quick.py; python3 or
#       $PYTHON). Add --dry-run to rehearse it on any machine without a GPU or a package index.
#   bash bench/gpu_evidence.sh OUT_DIR                    everything below (an hour or more;
#       FULL=1 for the full benchmark sweep)
# Writes into OUT_DIR: env.txt (GPU, driver, versions, commit), gpu_tests.log/.xml (the gpu
# test tier: parity in fp32/tf32/fp16/bf16 and every shipped launch configuration launched),
# compile_report.json (sm_90 and sm_80), tuning_table.json + tune.log (the tuner's winners on
# this GPU), bench/ (benchmark CSV + log) and plots/. Each step has its own time limit and a
# failing step does not stop the others; the exit status is that of the first failure.
set -uo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--quick" ]; then
    shift
    exec "${PYTHON:-python3}" -m bench.gpu_quick "$@"
fi
OUT=${1:?usage: bash bench/gpu_evidence.sh OUT_DIR}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
PY=${PYTHON:-python}
unset TRITON_INTERPRET            # compiled kernels, not the interpreter
export PYTHONUNBUFFERED=1
status=0
step() {  # step NAME SECONDS CMD...: run with a time limit, log to OUT/NAME.log
    local name=$1 limit=$2; shift 2
    echo "== $name (limit ${limit}s): $*" | tee -a "$OUT/steps.log"
    local start=$SECONDS
    timeout "$limit" "$@" > "$OUT/$name.log" 2>&1
    local rc=$?
    echo "   rc=$rc in $((SECONDS - start))s" | tee -a "$OUT/steps.log"
    tail -n 3 "$OUT/$name.log" | sed 's/^/   | /'
    [ $rc -ne 0 ] && [ $status -eq 0 ] && status=$rc
    return 0
}

# The package must be importable as tritonrnn.kernels: install it (offline, no deps) unless
# this checkout already is.
if ! "$PY" -c "import tritonrnn.kernels" 2>/dev/null; then
    "$PY" -m pip install -q --no-deps --no-build-isolation --no-index -e . > "$OUT/install.log" 2>&1 \
        || { echo "cannot install tritonrnn offline; see $OUT/install.log"; exit 1; }
fi

{
    date -u +%Y-%m-%dT%H:%M:%SZ
    git rev-parse HEAD 2>/dev/null || echo "commit unknown"
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv 2>&1
    "$PY" -c "import torch, triton; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'cudnn', torch.backends.cudnn.version()); print('triton', triton.__version__); print(torch.cuda.get_device_name())"
} > "$OUT/env.txt" 2>&1
cat "$OUT/env.txt"

step gpu_tests 900 "$PY" -m pytest -q -rs -m gpu --junitxml "$OUT/gpu_tests.xml"
step compile_report 900 "$PY" -m bench.compile_report --arch sm_90,sm_80 --json "$OUT/compile_report.json"
step tune 1200 "$PY" -m bench.tune --out "$OUT/tuning_table.json" \
    --hidden 128,256,768,1024,2048 --batch 1,16,64,256 --seq 128
# The benchmark uses the table just tuned.
export TRITONRNN_TUNING_TABLE="$OUT/tuning_table.json"
if [ "${FULL:-0}" = 1 ]; then bench_args=(); else bench_args=(--quick); fi
step bench 1800 "$PY" -m bench "${bench_args[@]}" --out "$OUT/bench" --plots-dir "$OUT/plots"
echo "evidence in $OUT (exit $status)"
exit $status
