#!/usr/bin/env bash
# Side by side with llama.cpp on the same model: decode at batch 1 and batch 8, prefill, BF16 and
# 8-bit weights, rounds alternating between the engines; medians and ratios as a Markdown table.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

usage() {
  cat <<'EOF'
Usage: scripts/bench-vs-llamacpp.sh --llama-build DIR --model DIR [--model DIR ...] [options]

Measures llama.cpp and moe side by side on the same Mixtral checkpoint(s), on the CPU:
  1. converts each model to GGUF with llama.cpp's own gguf-py (scripts/safetensors_to_gguf.py:
     BF16, bit for bit, and Q8_0), checking every tensor of the written files against the checkpoint;
  2. quantises ours to int8 with 'moe model quantize --format int8' when this build has that
     command (otherwise our int8 column says n/a);
  3. runs N rounds; each round runs, in alternating order (llama.cpp first in odd rounds, moe
     first in even ones):
       llama-bench -p PROMPT -n NEW -r 1 -o jsonl        batch-1 decode (tg) and one prompt (pp)
       llama-batched-bench -npp PROMPT -ntg NEW -npl B   B parallel sequences (decode and prefill)
       (both for the BF16 and the Q8_0 file)
       moe bench --batch 1,B --prompt-tokens PROMPT --new-tokens NEW (BF16, --vs our int8)
     with the same thread count everywhere;
  4. prints medians, ratios (ours / llama.cpp) and the share of the read-bandwidth roofline at
     batch 1 that moe bench measures, as a Markdown table (also written to RUN_DIR/table.md).

Options:
  --llama-build DIR   llama.cpp build directory with bin/llama-bench and bin/llama-batched-bench
                      (cmake -DGGML_NATIVE=ON -DGGML_CUDA=OFF -DLLAMA_CURL=OFF -DCMAKE_BUILD_TYPE=Release;
                      cmake --build build --target llama-bench llama-batched-bench llama-quantize)
  --llama-src DIR     llama.cpp source directory, for gguf-py (default: the build directory's parent)
  --model DIR         our Mixtral model directory (repeatable; BF16, F16 or F32 safetensors)
  --rounds N          rounds (default 3)
  --threads N         compute threads for both engines (default 2)
  --batch N           parallel sequences for the batched case (default 8)
  --prompt-tokens N   prompt length (default 32)
  --new-tokens N      tokens decoded per sequence (default 64)
  --q8-with TOOL      gguf-py (default: gguf.quants, as convert_hf_to_gguf.py --outtype q8_0)
                      or llama-quantize (from the BF16 file; faster on big models)
  --no-q8             leave out the 8-bit rows (Q8_0 and our int8)
  --llama-arg ARG     one more argument for llama-bench and llama-batched-bench (repeatable), e.g.
                      --llama-arg --poll --llama-arg 0 (threads sleep instead of spinning: kinder to a
                      busy machine, slower on a quiet one); default: llama.cpp's defaults
  --work DIR          where converted models and results go (default /tmp/bench-vs-llamacpp);
                      converted files are reused while newer than the checkpoint
  -h, --help          this text

Example:
  ./moe model make-random --arch mixtral --preset bench --dtype bf16 --seed 1 /tmp/bench-mixtral
  scripts/bench-vs-llamacpp.sh --llama-build /tmp/llama.cpp/build --model /tmp/bench-mixtral --rounds 3
EOF
}

die() { echo "bench-vs-llamacpp: $*" >&2; exit 2; }

llama_build="" llama_src="" models=() rounds=3 threads=2 batch=8 prompt=32 new=64 q8_with=gguf-py q8=1
work=/tmp/bench-vs-llamacpp llama_extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --llama-build) llama_build="${2:?--llama-build needs a directory}"; shift 2 ;;
    --llama-src) llama_src="${2:?--llama-src needs a directory}"; shift 2 ;;
    --model) models+=("${2:?--model needs a directory}"); shift 2 ;;
    --rounds) rounds="${2:?}"; shift 2 ;;
    --threads) threads="${2:?}"; shift 2 ;;
    --batch) batch="${2:?}"; shift 2 ;;
    --prompt-tokens) prompt="${2:?}"; shift 2 ;;
    --new-tokens) new="${2:?}"; shift 2 ;;
    --q8-with) q8_with="${2:?}"; shift 2 ;;
    --no-q8) q8=0; shift ;;
    --work) work="${2:?}"; shift 2 ;;
    --llama-arg) llama_extra+=("${2:?}"); shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done
[ -n "$llama_build" ] || die "--llama-build is required (see --help)"
[ ${#models[@]} -gt 0 ] || die "--model is required (see --help)"
for n in "$rounds" "$threads" "$batch" "$prompt" "$new"; do
  [[ "$n" =~ ^[1-9][0-9]*$ ]] || die "--rounds, --threads, --batch, --prompt-tokens and --new-tokens take positive integers, got '$n'"
done
case "$q8_with" in gguf-py|llama-quantize) ;; *) die "--q8-with is gguf-py or llama-quantize, got '$q8_with'" ;; esac
llama_build="$(cd "$llama_build" && pwd)" || die "--llama-build $llama_build: not a directory"
[ -n "$llama_src" ] || llama_src="$(dirname "$llama_build")"
[ -d "$llama_src/gguf-py/gguf" ] || die "--llama-src $llama_src: no gguf-py/gguf in it"
bin="$llama_build/bin"
for tool in llama-bench llama-batched-bench; do
  [ -x "$bin/$tool" ] || die "$bin/$tool not found (build the targets llama-bench llama-batched-bench)"
done
if [ "$q8" = 1 ] && [ "$q8_with" = llama-quantize ] && [ ! -x "$bin/llama-quantize" ]; then
  die "$bin/llama-quantize not found (build it or use --q8-with gguf-py)"
fi
for m in "${models[@]}"; do
  [ -f "$m/config.json" ] || die "--model $m: no config.json (a Hugging Face model directory?)"
done

log() { echo "[$(date -u +%H:%M:%S)] $*" >&2; }
# Newer than every file of the checkpoint: a converted file is reused only then.
fresh() { [ -e "$1" ] && [ -z "$(find "$2" -maxdepth 1 -type f -newer "$1" -print -quit)" ]; }

have_quantize=0
int8_missing=""
if [ "$q8" = 1 ]; then
  # 'moe model quantize --help' alone would not tell: picocli answers --help on the parent command.
  if "$here/moe" model --help 2>/dev/null | grep -Eq '^  quantize( |$)'; then
    have_quantize=1
  else
    int8_missing="this build has no 'moe model quantize'"
  fi
else
  int8_missing="--no-q8"
fi

run="$work/run-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$run"
log "results in $run"

# --- Convert (and quantise) every model once -------------------------------------------------
labels=()
for m in "${models[@]}"; do
  m="$(cd "$m" && pwd)"
  label="$(basename "$m")"
  labels+=("$label")
  d="$work/models/$label"
  mkdir -p "$d" "$run/$label"
  if ! fresh "$d/bf16.gguf" "$m"; then
    log "$label: converting to GGUF BF16"
    python3 "$here/scripts/safetensors_to_gguf.py" --llama-src "$llama_src" --model "$m" \
      --out "$d/bf16.gguf" --type bf16 --verify >&2
  fi
  if [ "$q8" = 1 ] && ! fresh "$d/q8_0.gguf" "$m"; then
    log "$label: converting to GGUF Q8_0 ($q8_with)"
    if [ "$q8_with" = gguf-py ]; then
      python3 "$here/scripts/safetensors_to_gguf.py" --llama-src "$llama_src" --model "$m" \
        --out "$d/q8_0.gguf" --type q8_0 --verify >&2
    else
      "$bin/llama-quantize" "$d/bf16.gguf" "$d/q8_0.gguf.part" Q8_0 "$threads" >"$d/quantize.log" 2>&1 \
        || { cat "$d/quantize.log" >&2; die "llama-quantize failed"; }
      mv "$d/q8_0.gguf.part" "$d/q8_0.gguf"
    fi
  fi
  vs=()
  if [ "$have_quantize" = 1 ]; then
    if ! fresh "$d/int8/config.json" "$m"; then
      log "$label: quantising ours to int8"
      rm -rf "$d/int8"
      "$here/moe" model quantize --format int8 "$m" "$d/int8" >&2
    fi
    vs=(--vs "$d/int8")
  fi
  printf '%s\n' "${vs[@]+"${vs[@]}"}" >"$run/$label/vs.args"
  python3 - "$run/$label/meta.json" "$label" "$threads" "$batch" "$prompt" "$new" "$int8_missing" "$m" <<'EOF'
import json, sys
path, label, threads, batch, prompt, new, missing, model = sys.argv[1:]
json.dump({"label": label, "model": model, "threads": int(threads), "batch": int(batch),
           "prompt_tokens": int(prompt), "new_tokens": int(new), "int8_missing": missing or None},
          open(path, "w"), indent=1)
EOF
done

# --- Rounds, alternating ----------------------------------------------------------------------
# The 1-minute load average as each engine starts: the table reports it, as a busy machine
# (llama.cpp's threads spin at barriers, so they suffer most from oversubscription) shows there.
load() { echo "$1 $(cut -d' ' -f1 /proc/loadavg 2>/dev/null || echo nan)" >>"$run/$2/load-r$3.txt"; }
llama_round() { # label round
  local label="$1" r="$2" q
  load llama "$label" "$r"
  for q in bf16 q8_0; do
    [ "$q" = bf16 ] || [ "$q8" = 1 ] || continue
    local f="$work/models/$label/$q.gguf" out="$run/$label/llama-$q"
    "$bin/llama-bench" -m "$f" -p "$prompt" -n "$new" -t "$threads" -r 1 -o jsonl "${llama_extra[@]+"${llama_extra[@]}"}" \
      >"$out-r$r.jsonl" 2>"$out-r$r.log" || { cat "$out-r$r.log" >&2; die "llama-bench failed on $f"; }
    "$bin/llama-batched-bench" -m "$f" -c $((batch * (prompt + new))) -b 2048 -ub 512 \
      -npp "$prompt" -ntg "$new" -npl "$batch" -t "$threads" --output-format jsonl "${llama_extra[@]+"${llama_extra[@]}"}" \
      >"$out-batched-r$r.jsonl" 2>"$out-batched-r$r.log" \
      || { cat "$out-batched-r$r.log" >&2; die "llama-batched-bench failed on $f"; }
  done
}
moe_round() { # label round
  local label="$1" r="$2" m vs=()
  load moe "$label" "$r"
  m="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["model"])' "$run/$label/meta.json")"
  mapfile -t vs < <(grep . "$run/$label/vs.args" || true)
  MOE_LOG_LEVEL=warn "$here/moe" bench --model "$m" "${vs[@]+"${vs[@]}"}" --batch "1,$batch" \
    --prompt-tokens "$prompt" --new-tokens "$new" --threads "$threads" --rounds 1 \
    >"$run/$label/moe-r$r.txt" 2>"$run/$label/moe-r$r.log" \
    || { cat "$run/$label/moe-r$r.log" >&2; die "moe bench failed on $m"; }
}
for r in $(seq 1 "$rounds"); do
  for label in "${labels[@]}"; do
    log "$label: round $r of $rounds"
    if [ $((r % 2)) = 1 ]; then
      llama_round "$label" "$r"; moe_round "$label" "$r"
    else
      moe_round "$label" "$r"; llama_round "$label" "$r"
    fi
  done
done

python3 "$here/scripts/bench_vs_llamacpp_table.py" "$run" | tee "$run/table.md"
