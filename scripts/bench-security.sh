#!/usr/bin/env bash
# Decode tokens/s of a whole cluster (one JVM) with the security layers off (plain), with the data
# plane signed (mac), and with TLS, mutual TLS and a bearer token on top (mac+tls), side by side.
# Usage: scripts/bench-security.sh [MODEL_DIR] [option=value ...]   (options: see SecurityOverhead)
exec "$(dirname "${BASH_SOURCE[0]}")/bench-one-jvm.sh" SecurityOverhead "$@"
