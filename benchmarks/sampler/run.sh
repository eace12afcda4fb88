#!/usr/bin/env bash
# The Sampler before (BASE, default: the commit before the buffer rewrite) and now, side by side in one JVM:
#   benchmarks/sampler/run.sh [BASE]      (after: mvn -o -q -pl src/core -am package -DskipTests)
set -euo pipefail
cd "$(dirname "$0")/../.."
. bin/jdk.sh
base=${1:-b3eec5f}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
git show "$base:src/core/src/main/java/dev/tornadolora/llama/Sampler.java" | sed 's/\bSampler\b/OldSampler/g' > "$work/OldSampler.java"
jar=src/core/target/tornado-lora-core.jar
javac -d "$work" -cp "$jar" "$work/OldSampler.java" benchmarks/sampler/SamplerSideBySide.java
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
java -cp "$work:$jar" dev.tornadolora.llama.SamplerSideBySide
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
