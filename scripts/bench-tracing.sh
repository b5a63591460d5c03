#!/usr/bin/env bash
# Decode tokens/s of a whole cluster (one JVM) with tracing off, full and sampled, side by side.
# Usage: scripts/bench-tracing.sh [MODEL_DIR] [option=value ...]   (options: see TracingOverhead)
exec "$(dirname "${BASH_SOURCE[0]}")/bench-one-jvm.sh" TracingOverhead "$@"
