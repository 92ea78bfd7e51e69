#!/bin/bash
# One device call for the WebGPU training step (issues 8 and 19): PyTorch eager on THIS project's models
# (bench/torch_gan.py), then stock tfjs-webgpu and this project's fast path (bench/ganNode.ts, bundled as
# .gpu-carry/gan-bench.mjs by bench/ganBundle.ts), with and without its own convolution kernels, and with
# tuned tiles, on the same card in one run; every row of the speed table gets its share of PyTorch.
# Prepare here: bash ../shared/gpu/prepare-carry.sh && node --import tsx bench/ganBundle.ts
# Device call (carry [".gpu-carry"], timeout_s 600): bash bench/ganGpuRun.sh
# Writes into $OUT: run.log (everything printed), torch.log, bench.json, bench-profile.json, prof.tar.gz.
# QUICK=1: 64 px batch 64 only (ACGAN and WGAN-GP, CNN and ViT), about 2 minutes after the machine starts.
# EXTRA=1: also the ablations of issue 8 and the stock layers-model baseline of ../shared/gpu/baseline.
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
if [ "${QUICK:-0}" = 1 ]; then
  cases="acgan:64:64,wgan-gp:64:64,acgan:64:64:vit,wgan-gp:64:64:vit"
else
  cases="acgan:64:64,acgan:64:256,acgan:128:64,wgan-gp:64:64,wgan-gp:64:256,wgan-gp:128:64,acgan:64:64:vit,wgan-gp:64:64:vit"
fi
source "$(dirname "${BASH_SOURCE[0]}")/benchSteps.sh"
variants='stock;fast;tuned={"tune":true};no-conv-gemm={"convGemm":false}'
pvariants='fast;no-conv-gemm={"convGemm":false}'
bench_steps node "$B" "$log" "$cases" "${VARIANTS:-$variants}" acgan:64:64,wgan-gp:64:64 "${PVARIANTS:-$pvariants}" "$OUT/prof" 60 "${T1:-300}" "${T2:-150}" "${STEPS:-5}"
tar -czf "$OUT/prof.tar.gz" -C "$OUT" prof 2>/dev/null && rm -rf "$OUT/prof"
if [ "${EXTRA:-0}" = 1 ]; then
  step "4. ablations at 64px b64: the fast path with one part switched off at a time, and a larger submit batch"
  timeout "${T2B:-120}" node "$B" --cases acgan:64:64,wgan-gp:64:64 --steps "${STEPS:-5}" --warmup 2 --out "$OUT/bench-ablation.json" --variants \
    'fast;no-dispatch-path={"dispatch":false};no-fused-layers={"fusedLayers":false,"movingAverage":false};no-fused-losses={"losses":false};no-layer-norm={"layerNorm":false};submit-256={"submitBatch":256}' 2>&1 | tee -a "$log"
  step "5. PyTorch, the baseline's ACGAN (ganstep.js), and stock tfjs-webgpu with its tfjs-layers model, 64px b64"
  (cd /tmp/gpu/baseline && timeout 30 python3 torch_bench.py 20 64 64 && timeout "${T4:-25}" /tmp/gpu/bin/node node_bench.cjs /tmp/gpu webgpu 5 64 64) 2>&1 | tee -a "$log"
fi
step "done"
grep -E "^(adapter|\| |RESULT|===|NVIDIA|tuned)" "$log" | tail -120
