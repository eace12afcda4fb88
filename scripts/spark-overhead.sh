#!/usr/bin/env bash
# The per-step overhead of data parallelism on the 2-layer test model (docs/spark.md): the same QLoRA finetune
# (global batch 2 x 2 rows of 16 tokens) as one process, then as 2 replicas in local[2] and, given a cluster URL,
# on a standalone cluster, each with the peer mesh (the default) and with the driver's all-gather
# (-Dspark.tornadolora.collective=driver, the collective before issue 24). Prints the mean step time over the
# second half of the steps (log.json's elapsed_s: the first steps of a fresh executor JVM are its JIT warm-up,
# 0.1-1.4 s each) and the overhead against the single process; first, the mesh's all-reduce alone between two processes (PeerMeshBench). Measure
# on a quiet machine: every replica computes, and load shows as overhead.
#
#   scripts/spark-overhead.sh [spark://127.0.0.1:17077]     # STEPS (default 100) optimizer steps per run
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
cluster=${1:-}
steps=${STEPS:-100}
py=$(scripts/oracle-venv.sh | tail -1)
model=src/core/src/test/resources/golden/llama/qlora_mha/model
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$py" - "$tmp/train.safetensors" <<'EOF'
import sys, numpy as np
from safetensors.numpy import save_file
rng = np.random.default_rng(11)
save_file({"input_ids": rng.integers(0, 128, size=(64, 16), dtype=np.int64)}, sys.argv[1])
EOF
common=(--model "$model" --data "$tmp/train.safetensors" --steps "$steps" --batch 2 --grad-accum 2 --shuffle false
  --quantize-base --lora-modules q_proj,v_proj --lora-mlp --lr 2e-3 --warmup-steps 3 --save-every 1000000
  --device jvm --quiet)

mean_ms() {  # mean step time over the second half of the steps, from OUT/log.json
  "$py" - "$1/log.json" <<'EOF'
import json, sys
s = json.load(open(sys.argv[1]))["steps"]
h = len(s) // 2
print(f"{(s[-1]['elapsed_s'] - s[h - 1]['elapsed_s']) / (len(s) - h) * 1e3:.1f}")
EOF
}

run() {  # run NAME JAVA_OPTS FINETUNE-ARGS...
  local name=$1 jopts=$2; shift 2
  TORNADO_LORA_JAVA_OPTS="$jopts" ./tornado-lora finetune "${common[@]}" --output "$tmp/$name" "$@" > "$tmp/$name.txt" 2>&1 \
    || { cat "$tmp/$name.txt" >&2; exit 1; }
  mean_ms "$tmp/$name"
}

echo "load: $(uptime)"
# the mesh's all-reduce alone, 2 processes over loopback, for this model's 20,480 gradient floats
. bin/jdk.sh
(cd src/spark && env -u TORNADOVM_HOME mvn -q -B -ntp -o test-compile) >&2
bench_cp=src/spark/target/classes:src/spark/target/test-classes
for r in 0 1; do
  mkdir -p "$tmp/rendezvous"
  "$JAVA_HOME/bin/java" -cp "$bench_cp" dev.tornadolora.spark.PeerMeshBench $r 2 20480 2000 "$tmp/rendezvous" > "$tmp/bench-$r.txt" &
done
wait
cat "$tmp/bench-0.txt"
solo=$(run solo "")
printf '%-44s %8s ms per step\n' "single process" "$solo"
report() {  # report NAME LABEL JAVA_OPTS SPARK-ARGS...
  local name=$1 label=$2 jopts=$3; shift 3
  local ms
  ms=$(run "$name" "$jopts" "$@")
  printf '%-44s %8s ms per step, overhead %+.1f ms (%s)\n' "$label" "$ms" "$(echo "$ms - $solo" | bc -l)" \
    "$(grep -o 'all-reduce [0-9]* bytes sent' "$tmp/$name.txt" || true)"
}
report local-mesh "local[2], peer mesh" "" --spark 'local[2]' --workers 2
report local-driver "local[2], driver all-gather" "-Dspark.tornadolora.collective=driver" --spark 'local[2]' --workers 2
if [ -n "$cluster" ]; then
  report cluster-mesh "$cluster, peer mesh" "" --spark "$cluster" --workers 2
  report cluster-driver "$cluster, driver all-gather" "-Dspark.tornadolora.collective=driver" --spark "$cluster" --workers 2
fi
echo "load: $(uptime)"
