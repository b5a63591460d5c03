#!/usr/bin/env python3
"""Reads the raw results scripts/bench-vs-llamacpp.sh leaves in a run directory and prints the
medians over rounds and the ratios as a Markdown table.

The run directory holds, per model label M and round R:
  M/llama-bf16-rR.jsonl          llama-bench -o jsonl: a pp record (n_prompt > 0) and a tg record (n_gen > 0)
  M/llama-bf16-batched-rR.jsonl  llama-batched-bench --output-format jsonl: one record (pl sequences)
  M/llama-q8_0-rR.jsonl, M/llama-q8_0-batched-rR.jsonl   the same for Q8_0 (absent: not measured)
  M/moe-rR.txt                   moe bench output: model a = BF16, model b = our int8 (if any)
and M/meta.json (label, threads, batch, prompt tokens, int8 reason when there is none).

Usage: bench_vs_llamacpp_table.py RUN_DIR
"""
import glob
import json
import os
import re
import statistics
import sys

ROW = re.compile(r"^\s*(\d+)\s+([0-9.]+)\s+([0-9.]+)\s+([0-9.]+)\s+([0-9.]+)(?:\s+([ab])\s+(\d+))?\s*$")
ROOFLINE = re.compile(r"read bandwidth \([^)]*\): ([0-9.]+) GB/s -> roofline for batch 1: (.*)$")
ACTIVE = re.compile(r"active weights per token ([0-9.]+) MiB")


def median(values):
    return statistics.median(values) if values else None


def read_jsonl(path):
    records = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line.startswith("{"):
                records.append(json.loads(line))
    return records


def llama_bench(path):
    """(tg tokens/s, pp tokens/s, build commit) from one llama-bench jsonl file."""
    tg = pp = commit = None
    for r in read_jsonl(path):
        commit = r.get("build_commit", commit)
        if r.get("n_gen", 0) > 0 and r.get("n_prompt", 0) == 0:
            tg = float(r["avg_ts"])
        elif r.get("n_prompt", 0) > 0 and r.get("n_gen", 0) == 0:
            pp = float(r["avg_ts"])
    return tg, pp, commit


def llama_batched(path):
    """(decode tokens/s of all sequences, prefill tokens/s of all prompts) from llama-batched-bench."""
    recs = read_jsonl(path)
    if not recs:
        return None, None
    return float(recs[-1]["speed_tg"]), float(recs[-1]["speed_pp"])


def moe_bench(path, batch):
    """Per model label ('a', 'b'): decode tokens/s at batch 1 and `batch`, prefill tokens/s at
    batch 1 and `batch`; plus bandwidth (GB/s), rooflines (tokens/s per label), active MiB/token."""
    out = {"bandwidth": None, "roofline": {}, "active_mib": []}
    with open(path) as f:
        for line in f:
            m = ACTIVE.search(line)
            if m:
                out["active_mib"].append(float(m.group(1)))
            m = ROOFLINE.search(line)
            if m:
                out["bandwidth"] = float(m.group(1))
                for i, part in enumerate(m.group(2).split(",")):
                    v = re.search(r"([0-9.]+) tokens/s(?: \(([ab])\))?", part)
                    if v:
                        out["roofline"][v.group(2) or "ab"[i]] = float(v.group(1))
                continue
            m = ROW.match(line)
            if m:
                b, prefill, decode = int(m.group(1)), float(m.group(2)), float(m.group(3))
                label = m.group(6) or "a"
                rec = out.setdefault(label, {})
                rec[("decode", b)] = decode
                rec[("prefill", b)] = prefill
    return out


def fmt(v, digits=1):
    return "n/a" if v is None else f"{v:.{digits}f}"


def ratio(ours, theirs):
    return "n/a" if ours is None or theirs is None or theirs == 0 else f"{ours / theirs:.2f}"


def share(v):
    return "n/a" if v is None else f"{100 * v:.0f}%"


def model_rows(d):
    with open(os.path.join(d, "meta.json")) as f:
        meta = json.load(f)
    batch = meta["batch"]
    rounds = sorted(int(re.search(r"-r(\d+)\.txt$", p).group(1)) for p in glob.glob(os.path.join(d, "moe-r*.txt")))
    series = {}

    def add(key, v):
        if v is not None:
            series.setdefault(key, []).append(v)

    commit = None
    for r in rounds:
        for q in ("bf16", "q8_0"):
            p = os.path.join(d, f"llama-{q}-r{r}.jsonl")
            if os.path.exists(p):
                tg, pp, c = llama_bench(p)
                commit = c or commit
                add((q, "tg"), tg)
                add((q, "pp"), pp)
            p = os.path.join(d, f"llama-{q}-batched-r{r}.jsonl")
            if os.path.exists(p):
                tgb, ppb = llama_batched(p)
                add((q, "tgb"), tgb)
                add((q, "ppb"), ppb)
        m = moe_bench(os.path.join(d, f"moe-r{r}.txt"), batch)
        for label, q in (("a", "bf16"), ("b", "int8")):
            rec = m.get(label, {})
            add(("ours-" + q, "tg"), rec.get(("decode", 1)))
            add(("ours-" + q, "pp"), rec.get(("prefill", 1)))
            add(("ours-" + q, "tgb"), rec.get(("decode", batch)))
            add(("ours-" + q, "ppb"), rec.get(("prefill", batch)))
            if label in m["roofline"]:
                add(("roofline", q), m["roofline"][label])
        add(("bandwidth", ""), m["bandwidth"])
        if m["active_mib"]:
            meta.setdefault("active_mib", m["active_mib"][0])
        lp = os.path.join(d, f"load-r{r}.txt")
        if os.path.exists(lp):
            with open(lp) as f:
                for line in f:
                    parts = line.split()
                    if len(parts) == 2 and parts[1] != "nan":
                        series.setdefault(("load", ""), []).append(float(parts[1]))
    med = {k: median(v) for k, v in series.items()}
    n = {k: len(v) for k, v in series.items()}

    roof_bf16 = med.get(("roofline", "bf16"))
    roof_int8 = med.get(("roofline", "int8"))
    bw = med.get(("bandwidth", ""))
    active = meta.get("active_mib")
    # Q8_0 streams 34 bytes per 32 weights where BF16 streams 64: the same tokens cost 17/32 the bytes.
    roof_q8 = bw * 1e9 / (active * 1048576 * 17 / 32) if bw and active else None

    def sh(value, roof):
        return None if value is None or roof is None else value / roof

    size = ""
    cfg_path = os.path.join(meta["model"], "config.json")
    if os.path.exists(cfg_path):
        with open(cfg_path) as f:
            cfg = json.load(f)
        size = (f"hidden {cfg.get('hidden_size')}, FFN {cfg.get('intermediate_size')}, "
                f"{cfg.get('num_hidden_layers')} layers, ")
    first_label = f"{meta['label']} ({size}{fmt(active)} MiB/token)" if active else meta["label"]
    p, b = meta["prompt_tokens"], batch
    rows = []
    for q_llama, q_ours, name in (("bf16", "bf16", "BF16"), ("q8_0", "int8", "Q8_0 vs int8")):
        ours_missing = meta.get("int8_missing") if q_ours == "int8" else None
        for key, what in (("tg", "batch 1"), ("tgb", f"batch {b} ({b} sequences)"),
                          ("pp", f"prompt of {p} tokens"), ("ppb", f"{b} prompts of {p} tokens")):
            theirs = med.get((q_llama, key))
            ours = None if ours_missing else med.get(("ours-" + q_ours, key))
            if key == "tg":
                roof_l = roof_bf16 if q_llama == "bf16" else roof_q8
                roof_o = roof_bf16 if q_ours == "bf16" else roof_int8
                s = f"{share(sh(ours, roof_o))} / {share(sh(theirs, roof_l))}"
            else:
                s = ""
            label = meta["label"] if rows else first_label
            rows.append(f"| {label}, {name}, {what} | {fmt(theirs)} | "
                        f"{'n/a' if ours_missing else fmt(ours)} | {ratio(ours, theirs)} | {s} |")
    counts = sorted({c for k, c in n.items() if k[0] != "load"}) or [0]
    notes = [f"{meta['label']}: medians of {'/'.join(map(str, counts))} rounds, {meta['threads']} threads each; "
             f"read bandwidth {fmt(bw, 2)} GB/s (moe bench's measurement, median)"]
    loads = series.get(("load", ""))
    if loads:
        notes.append(f"{meta['label']}: 1-minute load average as each engine started: median {median(loads):.1f} "
                     f"({min(loads):.1f}-{max(loads):.1f}) on {os.cpu_count()} CPUs")
    if meta.get("int8_missing"):
        notes.append(f"{meta['label']}: our int8 n/a: {meta['int8_missing']}")
    return rows, notes, commit


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    run = sys.argv[1]
    dirs = sorted(os.path.dirname(p) for p in glob.glob(os.path.join(run, "*", "meta.json")))
    if not dirs:
        print(f"bench_vs_llamacpp_table: no results under {run}", file=sys.stderr)
        sys.exit(1)
    print("| model, weights, case | llama.cpp tok/s | ours tok/s | ratio (ours / llama.cpp) "
          "| share of bandwidth roofline (ours / llama.cpp) |")
    print("| --- | --- | --- | --- | --- |")
    notes, commits = [], set()
    for d in dirs:
        rows, n, c = model_rows(d)
        print("\n".join(rows))
        notes += n
        if c:
            commits.add(c)
    print()
    for line in notes:
        print("- " + line)
    if commits:
        print("- llama.cpp build " + ", ".join(sorted(commits))
              + (" (llama-bench reports 'unknown' for a build outside a git checkout)" if "unknown" in commits else ""))
    print("- roofline share at batch 1: decode tokens/s over (read bandwidth / weight bytes per token); "
          "llama.cpp Q8_0's bytes per token taken as 17/32 of BF16's (34 bytes per 32 weights)")


if __name__ == "__main__":
    main()
