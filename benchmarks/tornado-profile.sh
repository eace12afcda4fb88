#!/usr/bin/env bash
# Per-task kernel times and end-to-end milliseconds of the TornadoVM backend on the SDK's default device
# (TornadoProfile), over in = out = 1024 and 4096, rank 16, 1 and 512 tokens, fp32 and both NF4 variants,
# forward and forward+backward. Needs TORNADOVM_HOME and a built tornado-tasks (./setup-tornado.sh).
#   benchmarks/tornado-profile.sh [reps]          (about 5 minutes on PoCL with 2 cores)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$root/bin/jdk.sh"
: "${TORNADOVM_HOME:?set TORNADOVM_HOME to a TornadoVM SDK (see ./setup-tornado.sh)}"
reps=${1:-5}
cp="$root/src/cli/target/tornado-lora.jar:$root/src/cli/target/lib/*:$root/tornado-tasks/target/tornado-lora-tasks.jar"
run() {
  "$JAVA_HOME/bin/java" @"$TORNADOVM_HOME/tornado-argfile" -Dtornado.enable.fma=False -Dtornado.recover.bailout=False \
    --add-modules jdk.incubator.vector -Xmx12g -cp "$cp" dev.tornadolora.tornado.TornadoProfile "$@" 2>&1 \
    | grep -v -E '^WARNING|GridScheduler'
}
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
for dim in 1024 4096; do
  for tokens in 512 1; do
    for pass in forward backward; do
      run "$dim" "$tokens" fp32 FUSED "$pass" "$reps"
      run "$dim" "$tokens" nf4 FUSED "$pass" "$reps"
      run "$dim" "$tokens" nf4 DEQUANTIZE_TASK "$pass" "$reps"
    done
  done
done
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
