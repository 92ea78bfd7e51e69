#!/bin/bash
# The issue-13 GPU run in one device call: the product's recipe trained by four hospitals split by site at
# 64 px with the paper-size models (the `paper` preset of npm run experiment: G 128 / D 32 channels, batch 64,
# 200 local steps a round, quality probed every 5 rounds), on the lent GPU through Node + Dawn + the WebGPU
# fast path, for a fixed time budget, writing what a second call or the report needs under $OUT.
#
# Prepare here (no GPU needed):  bash ../shared/gpu/prepare-carry.sh && npm run device:prepare
# Device call:                   run, carry [".device-run"], timeout_s 600:  bash experiments/deviceRun.sh
# A session with 15 minutes of device time gets one such call. To measure issue 19 in the same call, prepare
# with `node --import tsx bench/ganBundle.ts && npm run device:prepare -- --bench` (56.7 MB carried) and call
#   DEADLINE_S=555 RESERVE_S=100 QUALITY_EVERY=3 bash experiments/deviceRun.sh
# (the benchmark first, each part under a hard timeout, then training for what is left of the 555 s).
# Then here, on the files that came back:
#   npm run evaluate -- --checkpoint <files_at>/run/checkpoint-best.fgw --real-train ../shared/data/crc-msi/train \
#     --real-test ../shared/data/crc-msi/test --per-class 500 --out out/gpu-report
#
# Settings (environment): DEADLINE_S (unset: when set, MINUTES is what is left of it after the benchmark, less
# RESERVE_S, 90), BENCH (1: run the benchmark when carried), BENCH_CASES, GAN (acgan), PARTITION (site), MINUTES (7: the training budget; the run stops after
# the first round that ends past it, probes it and writes its outputs), ROUNDS (100: the cap), LOCAL_STEPS
# (200), QUALITY_EVERY (5), QUALITY_PER_CLASS (64), SIZE (64, as prepared), G_CHANNELS (128), D_CHANNELS (32),
# BATCH (64), SEED (42). The same script runs on this machine's SwiftShader Vulkan for a check:
#   VK_DRIVER_FILES=/usr/lib/chromium/vk_swiftshader_icd.json NO_UNPACK=1 NODE=node MINUTES=1 ROUNDS=1 LOCAL_STEPS=1 \
#     QUALITY_EVERY=1 QUALITY_PER_CLASS=4 G_CHANNELS=16 D_CHANNELS=8 BATCH=8 OUT=/tmp/device-check bash experiments/deviceRun.sh
# (a narrow model at batch 8: SwiftShader takes minutes for one paper-size step; the code path is the same).
# Writes into $OUT: run.log and run/ (summary.json, checkpoint.fgw, checkpoint-best.fgw, samples.png): at most
# 8 files of 16 MiB come back, and a 64 px paper-size checkpoint with its EMA is about 10 MB.
# A second call goes on where the first stopped: prepare with `npm run device:prepare -- --resume
# <files_at>/run` (the folder that came back), which carries it in .device-run/resume/; this script then
# trains from its last round (`simulate --resume`: the same figures as one call that never stopped) for
# another MINUTES, up to ROUNDS, with the same settings (any other is refused).
set -u -o pipefail
OUT=${OUT:-/tmp/out}
d=.device-run
mkdir -p "$OUT"
log="$OUT/run.log"
[ -f "$d/simulate.mjs" ] || { echo "no $d/simulate.mjs: run npm run device:prepare here and carry [\".device-run\"]" | tee "$log"; exit 2; }
if [ "${NO_UNPACK:-0}" != 1 ]; then
  for f in "$d"/libvulkan1_*.deb; do dpkg -x "$f" /; done
  ldconfig
  mkdir -p /tmp/gpu
  xz -dc "$d/node.xz" > /tmp/gpu/node && chmod +x /tmp/gpu/node
  xz -dc "$d/dawn.node.xz" > /tmp/gpu/dawn.node
  NODE=${NODE:-/tmp/gpu/node}
  export DAWN_NODE=/tmp/gpu/dawn.node
  # As in bench/ganGpuRun.sh: on the H200 machine the NVIDIA Vulkan ICD as installed found no driver; the same
  # driver's EGL library works headless.
  egl=/usr/local/nvidia/lib64/libEGL_nvidia.so.0
  if [ -e "$egl" ] && [ -z "${VK_DRIVER_FILES:-}" ]; then
    printf '{"file_format_version":"1.0.1","ICD":{"library_path":"%s","api_version":"1.3.0"}}' "$egl" > /tmp/icd_egl.json
    export VK_DRIVER_FILES=/tmp/icd_egl.json LD_LIBRARY_PATH=/usr/local/nvidia/lib64:${LD_LIBRARY_PATH:-}
  fi
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | tee -a "$log"
else
  NODE=${NODE:-node}
  # A check away from the device: Dawn from the carried package, unpacked beside it, and the carried
  # Vulkan loader where this machine has none (both unpacked under /tmp, not into / or the carried folder).
  [ -n "${DAWN_NODE:-}" ] || [ -f /tmp/device-check-dawn.node ] || xz -dc "$d/dawn.node.xz" > /tmp/device-check-dawn.node
  if ! ldconfig -p | grep -q 'libvulkan.so.1 '; then
    dpkg -x "$d"/libvulkan1_*.deb /tmp/vulkan-check
    export LD_LIBRARY_PATH=/tmp/vulkan-check/usr/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}
  fi
  export DAWN_NODE=${DAWN_NODE:-/tmp/device-check-dawn.node}
fi
# With the benchmark carried (npm run device:prepare -- --bench), the same call first times the WebGPU
# training step against PyTorch eager on this project's models (issue 19; bench/benchSteps.sh, as
# bench/ganGpuRun.sh does, on the goals' cases), each part under a hard timeout, into $OUT/bench.json,
# torch.log, bench-profile.json.
if [ -f "$d/gan-bench.mjs" ] && [ "${BENCH:-1}" != 0 ]; then
  cases=${BENCH_CASES:-acgan:64:64,wgan-gp:64:64,acgan:64:256,acgan:128:64}
  source "$(dirname "${BASH_SOURCE[0]}")/../bench/benchSteps.sh"
  variants='fast;tuned={"tune":true};no-conv-gemm={"convGemm":false}'
  bench_steps "$NODE" "$d/gan-bench.mjs" "$log" "$cases" "${BENCH_VARIANTS:-$variants}" "${BENCH_PROFILE_CASE:-acgan:64:64}" \
    'fast;no-conv-gemm={"convGemm":false}' /tmp/bench-prof 45 "${BENCH_T1:-150}" "${BENCH_T2:-60}" "${BENCH_STEPS:-5}"
fi
# DEADLINE_S: the whole script must end within this many seconds of its start; the training budget is what
# is left after the benchmark, less RESERVE_S for the last round, its probe and the writes.
if [ -n "${DEADLINE_S:-}" ]; then
  MINUTES=$(awk -v d="$DEADLINE_S" -v e="$SECONDS" -v r="${RESERVE_S:-90}" 'BEGIN { m = (d - e - r) / 60; if (m < 0.5) m = 0.5; printf "%.2f", m }')
fi
SIZE=${SIZE:-64}
extra=()
if [ -f "$d/resume/summary.json" ]; then
  mkdir -p "$OUT/run"
  cp -r "$d/resume/." "$OUT/run/"
  extra=(--resume)
  echo "=== resuming the run carried in $d/resume" | tee -a "$log"
fi
echo "=== training $(date -u +%T) UTC: ${GAN:-acgan}, ${PARTITION:-site}, ${SIZE} px, ${MINUTES:-7} min budget" | tee -a "$log"
"$NODE" "$d/simulate.mjs" --data "$d/train-$SIZE" --out "$OUT/run" --clients 4 --partition "${PARTITION:-site}" \
  --gan "${GAN:-acgan}" --image-size "$SIZE" --g-channels "${G_CHANNELS:-128}" --d-channels "${D_CHANNELS:-32}" \
  --batch-size "${BATCH:-64}" --local-steps "${LOCAL_STEPS:-200}" --rounds "${ROUNDS:-100}" --config "$d/recipe.json" \
  --quality-every "${QUALITY_EVERY:-5}" --quality-per-class "${QUALITY_PER_CLASS:-64}" --seed "${SEED:-42}" \
  --time-budget-minutes "${MINUTES:-7}" ${extra[@]+"${extra[@]}"} 2>&1 | sed -u 's/\r/\n/g' | grep --line-buffered -v '^training \[' | tee -a "$log"
rc=${PIPESTATUS[0]}
echo "=== done $(date -u +%T) UTC, exit $rc; files:" | tee -a "$log"
ls -la "$OUT/run" 2>&1 | tee -a "$log"
exit $rc
