#!/usr/bin/env bash
# The GPU check: everything about the cuda backend that needs a GPU, in one run of a few minutes,
# with a Markdown report. Planned for an H200 host (compute capability 9.0) with CUDA 13.0, driver
# 580, NVIDIA's libraries in a Python environment's wheels (/opt/torch/.venv) and PyTorch there,
# and no Java: it runs the runtime and jar that scripts/gpu-payload.sh puts in target/gpu-check/.
#
#   scripts/gpu-payload.sh                       # here, once: target/gpu-check/{jre,moe-classes}.tar.xz
#   scripts/gpu-check.sh [--out DIR] [--device N] [--no-bench]
#
# Through the device tool, from the repository root, carrying the payload:
#   run(command="bash scripts/gpu-check.sh", carry=["target/gpu-check"], timeout_s=540)
# The report lands in $OUT (the tool's output folder), else in --out, else target/gpu-check-out.
#
# Steps (each with its own time limit; the whole run stops itself after 7.5 minutes):
#   1. host: GPU (nvidia-smi), Python, PyTorch, NVIDIA wheel folders;
#   2. Java (io.moecluster.cuda.check.GpuCheck): libraries found and versions; every kernel compiled
#      by NVRTC for sm_90 (CUBIN and PTX, no GPU needed); then the first calls that need a GPU:
#      device attributes; each kernel against a CPU reference; a cuBLASLt BF16 GEMM; every expert
#      FFN of the golden models on the GPU against the CPU backend (BF16 tolerance 2e-2 per row);
#      engines with --device cuda against the float64 reference logits (5e-2) and the CPU engine's
#      greedy tokens; a one-rank NCCL send/recv to itself; the expert FFN benchmark at
#      RakutenAI-2.0-8x7B's shapes;
#   3. the moe command: `moe logits --device cuda` on every golden case against the reference
#      logits (and --device cpu beside it); `moe generate --device cuda` against --device cpu;
#   4. PyTorch: torch.matmul on the same shapes, and the table of both.
# Without a usable GPU the Java step stops at its first GPU call (exit 3) and the rest is skipped:
# that is the dry run. Exit status: 0 all passed, 1 a check failed, 2 libraries missing, 3 no GPU,
# 4 the payload or Java is missing.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here" || exit 4
out="${OUT:-}"
device=0
bench=1
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out="$2"; shift 2 ;;
    --device) device="$2"; shift 2 ;;
    --no-bench) bench=0; shift ;;
    -h|--help) sed -n '2,31p' "$0"; exit 0 ;;
    *) echo "gpu-check: unknown argument $1" >&2; exit 2 ;;
  esac
done
out="${out:-$here/target/gpu-check-out}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
report="$out/gpu-check-report.md"
start=$(date +%s)
deadline=$((start + 450))
golden="$here/core/src/test/resources/golden"
payload="$here/target/gpu-check"
exec > >(tee -a "$out/gpu-check.log") 2>&1

left() { echo $((deadline - $(date +%s))); }
# limit SECONDS CMD...: runs CMD with at most SECONDS, never past the deadline.
limit() {
  local s="$1"; shift
  local l; l=$(left)
  [ "$l" -lt "$s" ] && s="$l"
  if [ "$s" -le 5 ]; then echo "gpu-check: out of time, skipped: $*"; return 124; fi
  timeout --kill-after=10 "$s" "$@"
}
say() { echo "$*" | tee -a "$report"; }

: > "$report"
say "# GPU check of the cuda backend"
say ""
say "Run $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(hostname), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)."
[ -f "$payload/PAYLOAD.txt" ] && say "Payload: $(head -1 "$payload/PAYLOAD.txt")."
say ""
say "## Host"
say ""
say "- $(uname -srm)"
if command -v nvidia-smi >/dev/null 2>&1; then
  say "- nvidia-smi: $(limit 30 nvidia-smi --query-gpu=index,name,driver_version,memory.total,compute_cap --format=csv,noheader 2>&1 | tr '\n' ';')"
else
  say "- nvidia-smi: not found"
fi
py=""
for p in "${MOE_PYTHON:-}" /opt/torch/.venv/bin/python python3; do
  if [ -n "$p" ] && command -v "$p" >/dev/null 2>&1; then py="$p"; break; fi
done
torch_ok=0
if [ -n "$py" ]; then
  info="$(limit 90 "$py" -c 'import sys, torch; print("Python", sys.version.split()[0], "PyTorch", torch.__version__, "CUDA", torch.version.cuda, "GPU", torch.cuda.is_available())' 2>&1 | tail -1)"
  say "- $py: $info"
  case "$info" in *"GPU True"*) torch_ok=1 ;; esac
  say "- NVIDIA wheel folders: $(limit 30 "$py" -c 'import glob, site, sys; print(" ".join(sorted({d for s in site.getsitepackages() + [site.getusersitepackages()] for d in glob.glob(s + "/nvidia/*/lib")})) or "none")' 2>&1 | tail -1)"
else
  say "- Python: not found"
fi
say "- MOE_CUDA_LIB_DIRS: ${MOE_CUDA_LIB_DIRS:-unset}"

# Java: the payload's runtime, else (a development machine) the JDK 25 the build uses.
java=""
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
# Unpacks a .tar.xz: with xz where the host has it, else with Python's tarfile (lzma), keeping modes.
untar_xz() {
  if command -v xz >/dev/null 2>&1; then
    tar -xJf "$1" -C "$2"
  elif [ -n "$py" ]; then
    "$py" -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])' "$1" "$2"
  else
    return 1
  fi
}
if [ -f "$payload/jre.tar.xz" ] && [ -f "$payload/moe-classes.tar.xz" ]; then
  untar_xz "$payload/jre.tar.xz" "$tmp" && java="$tmp/jre/bin/java"
  # The launcher's classes, unpacked: a directory on the class path works as the jar would.
  mkdir -p "$tmp/moe-classes" && untar_xz "$payload/moe-classes.tar.xz" "$tmp/moe-classes"
  jar="$tmp/moe-classes"
elif [ -f "$here/orchestration/target/moe.jar" ] && (. "$here/scripts/find-jdk25.sh") >/dev/null 2>&1; then
  # shellcheck disable=SC1091
  . "$here/scripts/find-jdk25.sh"
  # shellcheck disable=SC2031
  java="$JAVA_HOME/bin/java"
  jar="$here/orchestration/target/moe.jar"
fi
if [ -z "$java" ] || ! "$java" -version >/dev/null 2>&1; then
  say ""
  say "No Java: build the payload first (scripts/gpu-payload.sh) and carry target/gpu-check."
  exit 4
fi
say "- Java: $("$java" -version 2>&1 | head -1), $jar ($(du -sb "$jar" | cut -f1) bytes)"
jflags=("@$here/jvm.options" -Dorg.slf4j.simpleLogger.defaultLogLevel=warn)
check() { "$java" "${jflags[@]}" -cp "$jar" io.moecluster.cuda.check.GpuCheck "$@"; }
moe() { "$java" "${jflags[@]}" -cp "$jar" io.moecluster.cli.MoeCommand "$@"; }

say ""
echo "gpu-check: Java checks ($(left) s left)"
benchflag=(); [ "$bench" = 1 ] || benchflag=(--no-bench)
limit 300 "$java" "${jflags[@]}" -cp "$jar" io.moecluster.cuda.check.GpuCheck run --golden "$golden" --out "$out" \
  --device "$device" "${benchflag[@]}"
rc=$?
cat "$out/gpu-check-java.md" >> "$report" 2>/dev/null
if [ "$rc" = 2 ] || [ "$rc" = 3 ]; then
  say ""
  say "Stopped: $([ "$rc" = 2 ] && echo "NVIDIA's libraries are missing" || echo "no usable GPU (the first call that needs one failed)"); the moe command and PyTorch steps were skipped."
  say ""
  say "Elapsed: $(( $(date +%s) - start )) s."
  exit "$rc"
fi

say ""
say "## The moe command with --device cuda:$device"
say ""
for model in mixtral-tiny qwen2moe-tiny deepseek-v3-tiny deepseek-v3-tiny-fp8; do
  for case in short sentence; do
    tokens="$(check tokens --golden "$golden" --model "$model" --case "$case" 2>/dev/null)"
    for dev in "cuda:$device" cpu; do
      npy="$out/logits-$model-$case-${dev%%:*}.npy"
      if limit 60 moe logits --model "$golden/$model" --tokens "$tokens" --device "$dev" --out "$npy" 2>"$out/err.txt"; then
        tol=5e-2; [ "$dev" = cpu ] && tol=1e-4
        check compare-logits --golden "$golden" --model "$model" --case "$case" --npy "$npy" --tolerance "$tol" \
          --label "moe logits --device $dev" | tee -a "$report"
      else
        say "- **FAIL** moe logits --device $dev $model $case: $(tail -1 "$out/err.txt")"
      fi
    done
  done
  prompt="The quick brown fox jumps over"
  for dev in "cuda:$device" cpu; do
    limit 60 moe generate --model "$golden/$model" --prompt "$prompt" --max-tokens 32 --temperature 0 --ignore-eos \
      --device "$dev" > "$out/generate-$model-${dev%%:*}.txt" 2>"$out/err.txt" \
      || say "- **FAIL** moe generate --device $dev $model: $(tail -1 "$out/err.txt")"
  done
  if cmp -s "$out/generate-$model-cuda.txt" "$out/generate-$model-cpu.txt"; then
    say "- PASS moe generate --device cuda:$device $model, greedy, 32 tokens after \"$prompt\": the same text as --device cpu"
  else
    say "- **FAIL** moe generate --device cuda:$device $model: text differs from --device cpu (the Java section has the first divergence and the logit gap there); cuda: $(od -An -c "$out/generate-$model-cuda.txt" | tr -s ' ' | head -c 300)"
  fi
done

if [ "$bench" = 1 ]; then
  say ""
  say "## Expert FFN: ours against PyTorch on the same shapes"
  say ""
  if [ "$torch_ok" = 1 ]; then
    limit 150 "$py" "$here/scripts/gpu-check/torch_bench.py" --out "$out/bench-torch.json" \
      || say "- **FAIL** PyTorch benchmark (see gpu-check.log)"
  else
    say "- PyTorch with a GPU not found: ours alone."
  fi
  check bench-table --moe "$out/bench-moe.json" --torch "$out/bench-torch.json" | tee -a "$report"
fi

passed=$(grep -c '^- PASS' "$report")
failed=$(grep -c '^- \*\*FAIL' "$report")
say ""
say "## Summary"
say ""
say "$passed passed, $failed failed, in $(( $(date +%s) - start )) s."
[ "$failed" = 0 ]
