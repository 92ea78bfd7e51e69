# The speed measurement of the WebGPU training step against PyTorch eager on the same card, as a function
# that bench/ganGpuRun.sh (its own call) and experiments/deviceRun.sh (before the issue-13 training, in the
# same call) both source, so the two calls measure the same way:
#   1. PyTorch eager on this project's models (bench/torch_gan.py), 20 steps a case, into $OUT/torch.log;
#   2. the bundled WebGPU bench (bench/ganNode.ts) on the same cases and variants, with a share-of-PyTorch
#      column, into $OUT/bench.json;
#   3. the profile (GPU calls and GPU time per program) on the profile cases, into $OUT/bench-profile.json.
# bench_steps NODE BUNDLE LOG CASES VARIANTS PROFILE_CASES PROFILE_VARIANTS PROFILE_DIR TORCH_TIMEOUT SPEED_TIMEOUT PROFILE_TIMEOUT STEPS
# Variant lists are passed as plain arguments: a "}" inside ${X:-…} would end the default early.
BENCH_DIR=$(dirname "${BASH_SOURCE[0]}")
bench_steps() {
  local node=$1 bundle=$2 log=$3 cases=$4 variants=$5 pcases=$6 pvariants=$7 pdir=$8 t0=$9 t1=${10} t2=${11} steps=${12}
  echo "=== bench 1: PyTorch eager, this project's models (bench/torch_gan.py), 20 steps a case ($(date -u +%T) UTC)" | tee -a "$log"
  local c gan size batch disc
  for c in ${cases//,/ }; do
    IFS=: read -r gan size batch disc <<<"$c"
    timeout "$t0" python3 "$BENCH_DIR/torch_gan.py" 20 "$gan" "${disc:-cnn}" "$batch" "$size"
  done 2>&1 | tee "$OUT/torch.log" | tee -a "$log"
  echo "=== bench 2: the WebGPU step, variants $variants ($(date -u +%T) UTC)" | tee -a "$log"
  timeout "$t1" "$node" "$bundle" --cases "$cases" --torch "$OUT/torch.log" --steps "$steps" --warmup 2 --out "$OUT/bench.json" \
    --variants "$variants" 2>&1 | tee -a "$log"
  echo "=== bench 3: GPU calls and GPU time per program, $pcases ($(date -u +%T) UTC)" | tee -a "$log"
  timeout "$t2" "$node" "$bundle" --cases "$pcases" --torch "$OUT/torch.log" --variants "$pvariants" \
    --steps 3 --warmup 2 --profile --profile-dir "$pdir" --out "$OUT/bench-profile.json" 2>&1 | tee -a "$log"
}
