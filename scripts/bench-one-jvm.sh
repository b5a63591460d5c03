#!/usr/bin/env bash
# Runs one of the benchmarks that start a whole cluster in one JVM (TracingOverhead,
# SecurityOverhead) on a model, making the bench-preset Mixtral model first if it is missing.
# Usage: scripts/bench-one-jvm.sh CLASS [MODEL_DIR] [option=value ...]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
. "$here/scripts/find-jdk25.sh"
class="$1"
shift
model="${1:-/tmp/bench-model}"
shift || true
if [ ! -f "$model/config.json" ]; then
  "$here/moe" model make-random --arch mixtral --preset bench --dtype bf16 --seed 1 "$model"
fi
"$here/mvn25" -q -B ${MVN_FLAGS:-} -pl benchmarks -am package -DskipTests
exec "$JAVA_HOME/bin/java" "@$here/jvm.options" \
  -Dorg.slf4j.simpleLogger.defaultLogLevel=warn \
  -cp "$here/benchmarks/target/benchmarks.jar" "io.moecluster.bench.$class" "$model" "$@"
