#!/usr/bin/env python3
"""PyTorch's side of the GPU check's benchmark: the expert FFN of RakutenAI-2.0-8x7B's shapes
(hidden 4096, intermediate 14336, 8 experts, the same number of tokens per expert) with
torch.matmul on BF16 tensors, timed with CUDA events in the same run as ours. Two figures per size:
the two matmuls per expert alone, and the whole FFN (matmuls, SiLU gating). TFLOP/s counts the
GEMMs only (6 x tokens x hidden x intermediate per expert), as ours does."""
import argparse
import json
import sys

import torch
import torch.nn.functional as F

HIDDEN, FFN, EXPERTS = 4096, 14336, 8
SIZES = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512]


def timed(fn, iterations):
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(iterations):
        fn()
    end.record()
    end.synchronize()
    return start.elapsed_time(end) / iterations


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    dev = torch.device("cuda")
    torch.manual_seed(0)
    wgu = [torch.randn(2 * FFN, HIDDEN, device=dev, dtype=torch.bfloat16) * 0.03 for _ in range(EXPERTS)]
    wd = [torch.randn(HIDDEN, FFN, device=dev, dtype=torch.bfloat16) * 0.03 for _ in range(EXPERTS)]
    results = []
    print("| tokens per expert | torch.matmul ms | TFLOP/s | torch FFN ms | TFLOP/s |")
    for t in SIZES:
        xs = [torch.randn(t, HIDDEN, device=dev, dtype=torch.bfloat16) for _ in range(EXPERTS)]
        hs = [torch.randn(t, FFN, device=dev, dtype=torch.bfloat16) for _ in range(EXPERTS)]

        def matmuls():
            for e in range(EXPERTS):
                torch.matmul(xs[e], wgu[e].t())
                torch.matmul(hs[e], wd[e].t())

        def ffn():
            for e in range(EXPERTS):
                gu = torch.matmul(xs[e], wgu[e].t())
                g, u = gu.split(FFN, dim=-1)
                torch.matmul(F.silu(g) * u, wd[e].t())

        iterations = 20 if t >= 256 else 50
        flops = 6.0 * t * HIDDEN * FFN * EXPERTS
        mm = timed(matmuls, iterations)
        full = timed(ffn, iterations)
        r = {"tokensPerExpert": t, "matmulMs": mm, "matmulTflops": flops / (mm * 1e-3) / 1e12,
             "ffnMs": full, "ffnTflops": flops / (full * 1e-3) / 1e12}
        results.append(r)
        print(f"| {t} | {mm:.3f} | {r['matmulTflops']:.1f} | {full:.3f} | {r['ffnTflops']:.1f} |", flush=True)
    with open(args.out, "w") as f:
        json.dump({"torch": torch.__version__, "cuda": torch.version.cuda, "device": torch.cuda.get_device_name(0),
                   "results": results}, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
