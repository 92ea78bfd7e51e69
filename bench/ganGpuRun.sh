#!/bin/bash
# One device call for issue 8 (WebGPU training step): this project's fast path and stock tfjs-webgpu
# (bench/ganNode.ts, bundled as .gpu-carry/gan-bench.mjs by bench/ganBundle.ts), the PyTorch baseline
# and the stock layers-model baseline of ../shared/gpu/baseline, on the same card, in one run.
# Prepare here: bash ../shared/gpu/prepare-carry.sh && node --import tsx bench/ganBundle.ts
# Device call (carry [".gpu-carry"]): bash bench/ganGpuRun.sh
# Writes into $OUT: run.log (everything printed), bench.json, bench-profile.json, prof.tar.gz.
# Quick mode (QUICK=1): only 64 px batch 64 in step 1, the profile of the fast path only, PyTorch at 64/64,
# and no layers-model baseline: about a minute and a half of device time after the machine starts.
set -u
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
log="$OUT/run.log"
step() { echo "=== $* ($(date +%T))" | tee -a "$log"; }
bash .gpu-carry/on-device.sh >>"$log" 2>&1 || { echo "on-device.sh failed" | tee -a "$log"; tail -20 "$log"; exit 1; }
export PATH=/tmp/gpu/bin:$PATH DAWN_NODE=/tmp/gpu/dawn.node
# On the H200 machine of 2026-11-27 the NVIDIA Vulkan ICD as installed (libGLX_nvidia.so.0) returned no
# vkCreateInstance ("Found no drivers!"); the same driver's libEGL_nvidia.so.0 works headless.
egl=/usr/local/nvidia/lib64/libEGL_nvidia.so.0
if [ -e "$egl" ]; then
  printf '{"file_format_version":"1.0.1","ICD":{"library_path":"%s","api_version":"1.3.0"}}' "$egl" > /tmp/icd_egl.json
  export VK_DRIVER_FILES=/tmp/icd_egl.json LD_LIBRARY_PATH=/usr/local/nvidia/lib64:${LD_LIBRARY_PATH:-}
fi
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader 2>&1 | tee -a "$log"
B=.gpu-carry/gan-bench.mjs
step "1. speed: ACGAN and WGAN-GP at 64px b64, 64px b256, 128px b64; stock vs fast"
if [ "${QUICK:-0}" = 1 ]; then cases=(--cases acgan:64:64,wgan-gp:64:64); pv='fast'; torch=("64 64"); else cases=(--full); pv='stock;fast;fast-tiled-dx={"convTransposeMM":true}'; torch=("64 64" "256 64" "64 128"); fi
timeout "${T1:-180}" node "$B" "${cases[@]}" --variants "${VARIANTS:-stock;fast}" --steps "${STEPS:-5}" --warmup 2 --out "$OUT/bench.json" 2>&1 | tee -a "$log"
step "2. profile at 64px b64: GPU calls per step, GPU time per program, host CPU profile"
timeout "${T2:-100}" node "$B" --cases acgan:64:64,wgan-gp:64:64 --variants "${PVARIANTS:-$pv}" \
  --steps 3 --warmup 2 --profile --profile-dir "$OUT/prof" --out "$OUT/bench-profile.json" 2>&1 | tee -a "$log"
tar -czf "$OUT/prof.tar.gz" -C "$OUT" prof 2>/dev/null && rm -rf "$OUT/prof"
if [ "${QUICK:-0}" != 1 ]; then
  step "2b. ablations at 64px b64: the fast path with one part switched off at a time, and a larger submit batch"
  timeout "${T2B:-120}" node "$B" --cases acgan:64:64,wgan-gp:64:64 --steps "${STEPS:-5}" --warmup 2 --out "$OUT/bench-ablation.json" --variants \
    'fast;no-dispatch-path={"dispatch":false};no-fused-layers={"fusedLayers":false,"movingAverage":false};no-fused-losses={"losses":false};no-layer-norm={"layerNorm":false};submit-256={"submitBatch":256}' 2>&1 | tee -a "$log"
fi
step "3. PyTorch eager baseline (same architecture as ganstep.js)"
(cd /tmp/gpu/baseline && for c in "${torch[@]}"; do timeout 30 python3 torch_bench.py 20 $c; done) 2>&1 | tee -a "$log"
[ "${QUICK:-0}" = 1 ] || step "4. stock tfjs-webgpu with the baseline's tfjs-layers model (README figure), 64px b64"
[ "${QUICK:-0}" = 1 ] || (cd /tmp/gpu/baseline && timeout "${T4:-25}" node node_bench.cjs /tmp/gpu webgpu 5 64 64) 2>&1 | tee -a "$log"
step "done"
grep -E "^(adapter|\| |RESULT|===|NVIDIA)" "$log" | tail -80
