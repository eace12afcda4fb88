#!/usr/bin/env bash
# The memory table of docs/benchmarks.md: for one model folder (scripts/make_random_llama.py) and one set of
# finetune options, the smallest -Xmx of a list under which `finetune` runs, the peak resident set of that run
# (/usr/bin/time's maximum RSS: heap, JVM, memory-mapped checkpoint pages) and its seconds per step (median of the
# steps after the first, from log.json).
#
#   scripts/memory-bench.sh MODEL_DIR "XMX..." [finetune options...]
#   scripts/memory-bench.sh /tmp/tinyllama "1200m 1600m 2g 3g" --quantize-base --activation-checkpointing
#
# Each try is a fresh JVM running 3 optimizer steps of batch 1 on MODEL_DIR/tokens.safetensors (its rows fix the
# sequence length). -Xmx and RSS do not depend on the machine's load; s/step does: quote it only from a quiet
# machine. Output: one line per try, then the result line "model | options | -Xmx | peak RSS | s/step".
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
model=$1 xmxs=$2
shift 2
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
result="$(basename "$model") | ${*:-defaults} | none passed | | "
for xmx in $xmxs; do
  rm -rf "$out/run"
  if TORNADO_LORA_JAVA_OPTS="-Xmx$xmx ${TORNADO_LORA_JAVA_OPTS:-}" /usr/bin/time -f "%M" -o "$out/time" \
      "$root/tornado-lora" finetune --model "$model" --data "$model/tokens.safetensors" --output "$out/run" \
      --steps 3 --batch 1 --quiet "$@" > "$out/stdout" 2> "$out/stderr"; then
    rss_kib=$(tail -1 "$out/time")
    s_step=$(python3 -c '
import json, statistics, sys
steps = [s for s in json.load(open(sys.argv[1]))["steps"] if "tokens_per_s" in s]
print("%.2f" % statistics.median(s["tokens"] / s["tokens_per_s"] for s in steps[1:] or steps))' "$out/run/log.json")
    printf '%s -Xmx%s: ok, peak RSS %.2f GB, %s s/step\n' "$(basename "$model")" "$xmx" \
      "$(echo "$rss_kib / 1000000" | bc -l)" "$s_step"
    result=$(printf '%s | %s | -Xmx%s | %.2f GB | %s' "$(basename "$model")" "${*:-defaults}" "$xmx" \
      "$(echo "$rss_kib / 1000000" | bc -l)" "$s_step")
    break
  else
    echo "$(basename "$model") -Xmx$xmx: failed: $(grep -v '^\s*$' "$out/stderr" | tail -1)"
  fi
done
echo "$result"
