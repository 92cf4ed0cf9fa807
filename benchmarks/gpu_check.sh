#!/usr/bin/env bash
# The CUDA paths end to end on a GPU machine without a package registry (benchmarks/README.md, "GPU: the demo"):
# 1. `tools/demo.py --device cuda --fp16` (every step of the product on the GPU, AMP training), 2. the CUDA-only test,
# 3. the whole test suite with CUDA visible (xdist), each under its own time cap so one slow part cannot eat the rest.
# Needs .gpu_deps/wheels (cp312 wheels, `pip download --no-deps`) and .gpu_deps/site/yolox (a copy of YOLOX 0.3.0).
#     OUT=/some/folder [DEMO_ARGS=--quick] bash benchmarks/gpu_check.sh [demo_seconds] [suite_seconds]
set -u
cd "$(dirname "$0")/.."
OUT="${OUT:-/tmp/gpu_check}"
DEMO_S="${1:-360}"
SUITE_S="${2:-110}"
PY="${PY:-python3}"
mkdir -p "$OUT"
SITE=/tmp/gpu_site
"$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" \
    .gpu_deps/wheels/*.whl || exit 1
cp -r .gpu_deps/site/yolox "$SITE/"
export PYTHONPATH="$SITE:$PWD" PYTHONUNBUFFERED=1
{
    date -u +"%F %T UTC"
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
    "$PY" -c "import sys, torch, numpy, cv2; print('python', sys.version.split()[0], 'torch', torch.__version__,
'numpy', numpy.__version__, 'cv2', cv2.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0))"
    nproc
} 2>&1 | tee "$OUT/machine.txt"

echo "=== 1. the demo on CUDA with AMP (cap ${DEMO_S} s)"
start=$(date +%s)
timeout "$DEMO_S" "$PY" tools/demo.py --out /tmp/demo_gpu --device cuda --fp16 ${DEMO_ARGS:-} > "$OUT/demo.log" 2>&1
echo "demo exit $? after $(( $(date +%s) - start )) s" | tee -a "$OUT/demo.log"
tail -25 "$OUT/demo.log"
cp /tmp/demo_gpu/demo_summary.json /tmp/demo_gpu/runs/demo/metrics.jsonl /tmp/demo_gpu/runs/demo/tracking/sweep/sweep.md \
    "$OUT/" 2>/dev/null
nvidia-smi --query-gpu=memory.used --format=csv,noheader | tee -a "$OUT/machine.txt"

echo "=== 2. CUDA-only test" | tee "$OUT/pytest_cuda.log"
timeout 60 "$PY" -m pytest -q -p no:cacheprovider tests/training/test_checkpoint.py -k "run_on_a_gpu" 2>&1 \
    | tail -15 | tee -a "$OUT/pytest_cuda.log"

echo "=== 3. the test suite with CUDA visible (cap ${SUITE_S} s)"
timeout "$SUITE_S" "$PY" -m pytest -q -p no:cacheprovider -n 14 --maxfail 30 --timeout 100 > "$OUT/pytest_all.log" 2>&1
echo "suite exit $?" | tee -a "$OUT/pytest_all.log"
tail -30 "$OUT/pytest_all.log"
