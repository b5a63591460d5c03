#!/usr/bin/env bash
# Checks that llama.cpp, on the GGUF scripts/safetensors_to_gguf.py writes, computes the logits our
# engine computes: same tokens through both, max |difference| and argmax agreement per position.
# On a golden test model (a cases.json beside it) the float64 reference is compared too.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

usage() {
  cat <<'EOF'
Usage: scripts/check-gguf-logits.sh --llama-build DIR --model DIR [--llama-src DIR] [--type f32|bf16|q8_0]
                                    [--tokens 1,72,101,...] [--work DIR]
Converts the model (default --type f32, so that only the engines differ), compiles
scripts/llama_logits.c against the llama.cpp build (libllama), runs the tokens through llama.cpp and
through 'moe logits', and prints per-position max |difference| and whether the argmax agrees.
Exit 1 when an argmax differs by more than a near-tie (top two closer than twice the difference).
EOF
}
die() { echo "check-gguf-logits: $*" >&2; exit 2; }

llama_build="" llama_src="" model="" type=f32 tokens="" work=/tmp/check-gguf-logits
while [ $# -gt 0 ]; do
  case "$1" in
    --llama-build) llama_build="${2:?}"; shift 2 ;;
    --llama-src) llama_src="${2:?}"; shift 2 ;;
    --model) model="${2:?}"; shift 2 ;;
    --type) type="${2:?}"; shift 2 ;;
    --tokens) tokens="${2:?}"; shift 2 ;;
    --work) work="${2:?}"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done
[ -n "$llama_build" ] && [ -n "$model" ] || die "--llama-build and --model are required (see --help)"
llama_build="$(cd "$llama_build" && pwd)"
[ -n "$llama_src" ] || llama_src="$(dirname "$llama_build")"
lib="$(dirname "$(find "$llama_build" -name 'libllama.so*' -print -quit)")"
[ -n "$lib" ] && [ "$lib" != . ] || die "no libllama.so under $llama_build"
mkdir -p "$work"

cc -O2 -I "$llama_src/include" -I "$llama_src/ggml/include" "$here/scripts/llama_logits.c" \
  -L "$lib" -lllama -Wl,-rpath,"$lib" -o "$work/llama_logits"
python3 "$here/scripts/safetensors_to_gguf.py" --llama-src "$llama_src" --model "$model" \
  --out "$work/model-$type.gguf" --type "$type" --verify --stub-merges
if [ -z "$tokens" ] && [ -f "$model/cases.json" ]; then
  tokens="$(python3 -c 'import json,sys; print(",".join(map(str, json.load(open(sys.argv[1]))["cases"][-1]["tokens"])))' "$model/cases.json")"
fi
if [ -z "$tokens" ]; then
  # Prompt-like ids below the vocabulary size: BOS then the bytes of a sentence.
  tokens="$(python3 -c 'print(",".join(["1"] + [str(3 + b) for b in b"The quick brown fox jumps over the lazy dog"]))')"
fi
"$work/llama_logits" "$work/model-$type.gguf" "$tokens" "$work/llama.npy"
MOE_LOG_LEVEL=warn "$here/moe" logits --model "$model" --tokens "$tokens" --out "$work/moe.npy" >/dev/null
python3 - "$work/llama.npy" "$work/moe.npy" "$model" "$tokens" <<'EOF'
import json, os, sys
import numpy as np
llama, ours, model, tokens = np.load(sys.argv[1]), np.load(sys.argv[2]), sys.argv[3], sys.argv[4]
refs = [("ours", ours)]
cases = os.path.join(model, "cases.json")
if os.path.exists(cases):
    for c in json.load(open(cases))["cases"]:
        if ",".join(map(str, c["tokens"])) == tokens:
            refs.append(("golden float64 reference", np.load(os.path.join(model, c["logits"]))))
bad = False
for name, ref in refs:
    if ref.shape != llama.shape:
        sys.exit(f"shapes differ: llama.cpp {llama.shape}, {name} {ref.shape}")
    diff = np.abs(llama - ref).max(axis=1)
    agree = (llama.argmax(axis=1) == ref.argmax(axis=1))
    # A differing argmax is a near-tie when the reference's top two are closer than twice the
    # difference seen at that position (random-weight models have many); otherwise a real mismatch.
    top2 = np.sort(ref, axis=1)[:, -2:]
    tie = (top2[:, 1] - top2[:, 0]) < 2 * diff
    real = ~agree & ~tie
    bad |= bool(real.any())
    print(f"llama.cpp vs {name}: {llama.shape[0]} positions, max |logit difference| {diff.max():.3g} "
          f"(median over positions {np.median(diff):.3g}; logits spread {np.abs(ref).max():.3g}), "
          f"argmax agrees at {agree.sum()}/{agree.size}"
          + (f" ({(~agree & tie).sum()} near-tie(s))" if (~agree & tie).any() else "")
          + (f"; MISMATCH at positions {np.nonzero(real)[0].tolist()}" if real.any() else ""))
sys.exit(1 if bad else 0)
EOF
