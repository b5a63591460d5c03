#!/usr/bin/env bash
# Decode tokens/s of a whole cluster (one JVM) with tracing off, full and sampled, side by side.
# Usage: scripts/bench-tracing.sh [MODEL_DIR] [option=value ...]   (options: see TracingOverhead)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
. "$here/scripts/find-jdk25.sh"
model="${1:-/tmp/bench-model}"
shift || true
if [ ! -f "$model/config.json" ]; then
  "$here/moe" model make-random --arch mixtral --preset bench --dtype bf16 --seed 1 "$model"
fi
"$here/mvn25" -q -B -pl benchmarks -am package -DskipTests
exec "$JAVA_HOME/bin/java" "@$here/jvm.options" \
  -Dorg.slf4j.simpleLogger.defaultLogLevel=warn \
  -cp "$here/benchmarks/target/benchmarks.jar" io.moecluster.bench.TracingOverhead "$model" "$@"
