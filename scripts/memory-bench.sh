#!/usr/bin/env bash
# The memory table of docs/benchmarks.md: for one model folder (scripts/make_random_llama.py) and one set of
# finetune options, the smallest -Xmx of a list under which `finetune` runs, the peak resident set of that run
# (/usr/bin/time's maximum RSS: heap, JVM, memory-mapped checkpoint pages) and its seconds per step (median of the
# steps after the first, from log.json).
#
#   scripts/memory-bench.sh MODEL_DIR "XMX..." [finetune options...]
#   scripts/memory-bench.sh /tmp/tinyllama "1200m 1600m 2g 3g" --quantize-base --activation-checkpointing
#
# Each try is a fresh JVM running $STEPS (default 3) optimizer steps of batch 1 on MODEL_DIR/tokens.safetensors
# (its rows fix the sequence length), evaluating on its first row (eval.safetensors). A heap below finetune's
# estimate is refused before loading (the tries below were measured with that refusal switched off). -Xmx and RSS do not depend
# on the machine's load; s/step does: quote it only from a quiet machine. Output: one line per try, then the
# table row "model | options | -Xmx | peak RSS | s/step | peak heap | finetune's estimate".
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
model=$1 xmxs=$2
shift 2
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
result="$(basename "$model") | ${*:-defaults} | none of $xmxs passed | | | |"
for xmx in $xmxs; do
  rm -rf "$out/run"
  if TORNADO_LORA_JAVA_OPTS="-Xmx$xmx ${TORNADO_LORA_JAVA_OPTS:-}" /usr/bin/time -f "%M" -o "$out/time" \
      "$root/tornado-lora" finetune --model "$model" --data "$model/tokens.safetensors" --output "$out/run" \
      --eval-data "$model/eval.safetensors" --steps "${STEPS:-3}" --batch 1 --quiet "$@" > "$out/stdout" 2> "$out/stderr"; then
    rss_kib=$(tail -1 "$out/time")
    read -r s_step heap est < <(python3 -c '
import json, statistics, sys
log = json.load(open(sys.argv[1]))
steps = [s for s in log["steps"] if "tokens_per_s" in s]
print("%.2f" % statistics.median(s["tokens"] / s["tokens_per_s"] for s in steps[1:] or steps),
      log["summary"].get("peak_heap_mib"), log["summary"].get("memory_estimate_mib"))' "$out/run/log.json")
    rss=$(printf '%.2f GB' "$(echo "$rss_kib / 1000000" | bc -l)")
    echo "$(basename "$model") -Xmx$xmx: ok, peak RSS $rss, $s_step s/step, peak heap $heap MiB (estimate $est MiB)"
    result="$(basename "$model") | ${*:-defaults} | -Xmx$xmx | $rss | $s_step | $heap MiB | $est MiB"
    break
  else
    echo "$(basename "$model") -Xmx$xmx: failed: $(grep -v '^\s*$' "$out/stderr" | tail -1)"
  fi
done
echo "$result"
