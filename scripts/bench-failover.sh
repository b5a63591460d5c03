#!/usr/bin/env bash
# Failover under load: a local cluster of real processes, expert 3 given a second replica, 8
# streaming clients, the replica SIGKILLed; prints the time to the first re-dispatched batch and
# tokens/s before, during and after.
# Usage: scripts/bench-failover.sh [MODEL_DIR] [SECONDS] [KILL_AT_S]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
. "$here/scripts/find-jdk25.sh"
model="${1:-$here/models/bench-mixtral}"
if [ ! -f "$model/config.json" ]; then
  "$here/moe" model make-random --arch mixtral --preset bench --dtype bf16 --seed 1 "$model"
fi
"$here/mvn25" -q -B -pl benchmarks -am package -DskipTests
exec "$JAVA_HOME/bin/java" "@$here/jvm.options" \
  -Dorg.slf4j.simpleLogger.defaultLogLevel=warn \
  -cp "$here/benchmarks/target/benchmarks.jar" io.moecluster.bench.FailoverBench "$model" "${2:-90}" "${3:-45}"
