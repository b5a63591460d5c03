#!/usr/bin/env bash
# The local cluster against one process on the same model and the same work: rounds alternating
# between `moe up` layouts (each driven by `moe loadgen`) and `moe bench`, medians and ratios as a
# Markdown table.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

usage() {
  cat <<'EOF'
Usage: scripts/bench-cluster.sh --model DIR [--layout "MOE UP FLAGS" ...] [options]

Each round runs, in this order:
  for every layout: moe up --model DIR LAYOUT; an unmeasured loadgen (--warmup requests); the
                    measured moe loadgen --concurrency B --requests R --prompt-tokens P
                    --max-tokens N; moe down
  moe bench --model DIR --batch B --prompt-tokens P --new-tokens N --threads T --rounds 1
and prints, per layout, the medians over the rounds of:
  loadgen tok/s     generated tokens over the measured run's wall time (prefill included)
  gap p50 ms        loadgen's median gap between two tokens of one stream: one decode step
  / bench decode    loadgen tok/s over moe bench's decode tok/s at batch B (decode only: the
                    issue's measure; with P > 1 the cluster's figure also pays the prompts)
  / bench e2e       loadgen tok/s over moe bench's B*N tokens over its prefill + decode time
                    (the same work as one wave of B requests)
  step ratio        moe bench's ms/step over loadgen's gap p50 (decode steps alone)
  TTFT p50 ms       loadgen's median time to the first token, against moe bench's time for the
                    B*P prompt tokens at its prefill rate (one wave's prefill in one process)
The table also goes to RUN_DIR/table.md; every run's output stays in RUN_DIR, and
--table RUN_DIR prints an earlier run's table again.

Options:
  --model DIR         the model (required)
  --layout FLAGS      moe up flags of one layout, quoted (repeatable; default: "" = moe up's defaults)
  --rounds N          rounds (default 3)
  --batch B           loadgen's concurrency and moe bench's batch (default 8)
  --requests R        measured requests per layout (default 32: four waves of 8)
  --warmup R          unmeasured requests before them (default 48)
  --prompt-tokens P   prompt length (default 32; 1 leaves prefill out of both sides)
  --new-tokens N      tokens per request (default 64)
  --threads T         moe bench's compute threads (default 2; moe up's come from the layout)
  --vocab V           prompt ids drawn from [3, V) (default: the model's vocab_size)
  --work DIR          where results go (default /tmp/bench-cluster)
  --table RUN_DIR     print the table of an earlier run (nothing is run)
  -h, --help          this text

Example (the README's cluster table):
  ./moe model make-random --arch mixtral --preset bench --dtype bf16 --seed 1 /tmp/bench-mixtral
  scripts/bench-cluster.sh --model /tmp/bench-mixtral --rounds 3 \
      --layout "" --layout "--no-embedded-router"
EOF
}

die() { echo "bench-cluster: $*" >&2; exit 2; }

model="" layouts=() rounds=3 batch=8 requests=32 warmup=48 prompt=32 new=64 threads=2 vocab="" work=/tmp/bench-cluster
table_only=""
while [ $# -gt 0 ]; do
  case "$1" in
    --model) model="${2:?--model needs a directory}"; shift 2 ;;
    --layout) [ $# -ge 2 ] || die "--layout needs its flags (\"\" for the defaults)"; layouts+=("$2"); shift 2 ;;
    --rounds) rounds="${2:?}"; shift 2 ;;
    --batch) batch="${2:?}"; shift 2 ;;
    --requests) requests="${2:?}"; shift 2 ;;
    --warmup) warmup="${2:?}"; shift 2 ;;
    --prompt-tokens) prompt="${2:?}"; shift 2 ;;
    --new-tokens) new="${2:?}"; shift 2 ;;
    --threads) threads="${2:?}"; shift 2 ;;
    --vocab) vocab="${2:?}"; shift 2 ;;
    --work) work="${2:?}"; shift 2 ;;
    --table) table_only="${2:?--table needs a run directory}"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown option '$1'" ;;
  esac
done
for v in rounds batch requests prompt new threads; do
  [[ "${!v}" =~ ^[1-9][0-9]*$ ]] || die "--${v//_/-} must be a positive whole number, got '${!v}'"
done
[[ "$warmup" =~ ^[0-9]+$ ]] || die "--warmup must be a whole number, got '$warmup'"
[ ${#layouts[@]} -gt 0 ] || layouts=("")

print_table() { # RUN_DIR: reads its params.txt and layouts.txt
  python3 - "$1" <<'PY'
import re, statistics, sys
run = sys.argv[1]
params = dict(line.split("=", 1) for line in open(f"{run}/params.txt").read().split())
rounds, batch, prompt, new = (int(params[k]) for k in ("rounds", "batch", "prompt", "new"))
layouts = open(f"{run}/layouts.txt").read().split("\n")[:-1]

def num(pattern, text, what):
    m = re.search(pattern, text, re.M)
    if not m:
        sys.exit(f"bench-cluster: no {what} in {run}")
    return float(m.group(1))

bench = []  # per round: (prefill tok/s, decode tok/s, ms/step)
for r in range(1, rounds + 1):
    t = open(f"{run}/bench-r{r}.txt").read()
    m = re.search(rf"^\s+{batch}\s+([0-9.]+)\s+([0-9.]+)\s+([0-9.]+)", t, re.M)
    if not m:
        sys.exit(f"bench-cluster: no batch-{batch} row in {run}/bench-r{r}.txt")
    bench.append(tuple(float(g) for g in m.groups()))

def e2e(prefill, decode):
    # One wave of `batch` sequences: batch*prompt prompt tokens at the prefill rate, then
    # batch*new tokens at the decode rate (the first new token comes with the prefill).
    return batch * new / (batch * prompt / prefill + batch * new / decode)

med = statistics.median
print("| layout (`moe up` flags) | loadgen tok/s | gap p50 ms | / bench decode | / bench e2e | step ratio | TTFT p50 ms |")
print("| --- | --- | --- | --- | --- | --- | --- |")
for i, layout in enumerate(layouts):
    tps, gaps, ttfts, r_dec, r_e2e, r_step = [], [], [], [], [], []
    for r in range(1, rounds + 1):
        t = open(f"{run}/layout{i}-r{r}.txt").read()
        tp = num(r"throughput\s+([0-9.]+)", t, "throughput")
        gap = num(r"inter-token\s+p50\s+([0-9.]+)", t, "inter-token p50")
        ttfts.append(num(r"time to 1st token\s+p50\s+([0-9.]+)", t, "time to first token p50"))
        prefill, decode, step = bench[r - 1]
        tps.append(tp); gaps.append(gap)
        r_dec.append(tp / decode); r_e2e.append(tp / e2e(prefill, decode)); r_step.append(step / gap)
    name = f"`{layout}`" if layout else "defaults"
    print(f"| {name} | {med(tps):.1f} | {med(gaps):.2f} | {med(r_dec):.2f} | {med(r_e2e):.2f} | {med(r_step):.2f} | {med(ttfts):.0f} |")
pre = med(b[0] for b in bench); dec = med(b[1] for b in bench); step = med(b[2] for b in bench)
print(f"| `moe bench --batch {batch}` | decode {dec:.1f}, e2e {med(e2e(b[0], b[1]) for b in bench):.1f} "
      f"| {step:.2f} per step | 1 | | 1 | {med(1000 * batch * prompt / b[0] for b in bench):.0f} (prefill) |")
print(f"\n{rounds} rounds; medians of per-round ratios; {batch} streams of {prompt} prompt + {new} new tokens; "
      f"moe bench prefill median {pre:.1f} tok/s.")
PY
}

if [ -n "$table_only" ]; then
  [ -f "$table_only/params.txt" ] || die "$table_only is not a bench-cluster run directory (no params.txt)"
  print_table "$table_only"
  exit 0
fi
[ -n "$model" ] || { usage >&2; die "--model is required"; }
[ -f "$model/config.json" ] || die "$model has no config.json"
if [ -z "$vocab" ]; then
  vocab=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["vocab_size"])' "$model/config.json") \
    || die "cannot read vocab_size from $model/config.json; pass --vocab"
fi

run="$work/run-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$run"
export MOE_STATE_DIR="$run/state" MOE_LOG_LEVEL="${MOE_LOG_LEVEL:-warn}"
trap '"$here/moe" down >/dev/null 2>&1 || true' EXIT
printf '%s\n' "${layouts[@]}" >"$run/layouts.txt"
echo "rounds=$rounds batch=$batch prompt=$prompt new=$new" >"$run/params.txt"
echo "bench-cluster: $rounds rounds, layouts: $(printf '[%s] ' "${layouts[@]}"), results in $run" >&2

for r in $(seq 1 "$rounds"); do
  echo "round $r (load $(cut -d' ' -f1-3 /proc/loadavg))" >&2
  for i in "${!layouts[@]}"; do
    out="$run/layout$i-r$r.txt"
    rm -rf "$MOE_STATE_DIR"
    # shellcheck disable=SC2086 # a layout is a list of flags
    "$here/moe" up --model "$model" ${layouts[$i]} >"$run/layout$i-r$r.up.log" 2>&1 \
      || { cat "$run/layout$i-r$r.up.log" >&2; die "moe up ${layouts[$i]} failed"; }
    if [ "$warmup" -gt 0 ]; then
      "$here/moe" loadgen --concurrency "$batch" --requests "$warmup" --prompt-tokens "$prompt" \
        --max-tokens "$new" --vocab "$vocab" >"$run/layout$i-r$r.warmup.txt" 2>&1 \
        || { cat "$run/layout$i-r$r.warmup.txt" >&2; die "warm-up loadgen failed on [${layouts[$i]}]"; }
    fi
    "$here/moe" loadgen --concurrency "$batch" --requests "$requests" --prompt-tokens "$prompt" \
      --max-tokens "$new" --vocab "$vocab" >"$out" 2>&1 \
      || { cat "$out" >&2; die "loadgen failed on [${layouts[$i]}]"; }
    "$here/moe" down >/dev/null 2>&1 || true
    echo "  [${layouts[$i]}] $(grep -E 'throughput' "$out" | tr -s ' ')" >&2
  done
  "$here/moe" bench --model "$model" --batch "$batch" --threads "$threads" --rounds 1 --prompt-tokens "$prompt" \
    --new-tokens "$new" --bandwidth-mib 0 >"$run/bench-r$r.txt" 2>"$run/bench-r$r.log" \
    || { cat "$run/bench-r$r.log" >&2; die "moe bench failed"; }
  echo "  moe bench: $(grep -E "^ +$batch " "$run/bench-r$r.txt" | tr -s ' ')" >&2
done

print_table "$run" | tee "$run/table.md"
