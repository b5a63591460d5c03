#!/usr/bin/env python3
"""Converts one of our Mixtral checkpoints (Hugging Face layout: config.json, *.safetensors,
tokenizer.json) to a GGUF file llama.cpp loads, with llama.cpp's own gguf-py.

Why not llama.cpp's convert_hf_to_gguf.py: it imports torch (and transformers for the vocabulary),
which a benchmark machine need not have. This script does for Mixtral what that one does, with
numpy alone:
  * architecture "llama" with expert_count / expert_used_count (llama.cpp's Mixtral);
  * q_proj / k_proj rows permuted from Hugging Face's half-split RoPE layout to llama.cpp's
    interleaved one (LlamaModel.permute in convert_hf_to_gguf.py);
  * experts stacked per layer into blk.N.ffn_{gate,down,up}_exps ([experts, out, in]);
  * norms and the router (ffn_gate_inp) in F32, every other matrix in the output type (BF16 or
    Q8_0, quantised with gguf.quants exactly as convert_hf_to_gguf.py --outtype q8_0 does);
  * the byte-level BPE tokenizer as a "gpt2" vocabulary with its merges (gguf.SpecialVocab).

--verify reads the written file back (gguf.GGUFReader) and checks every tensor against the
checkpoint: BF16 bit for bit (after the same permutation), Q8_0 within half a quantisation step of
each block, F32 exactly.

Usage: safetensors_to_gguf.py --llama-src DIR --model DIR --out FILE.gguf [--type bf16|q8_0|f32] [--verify] [--stub-merges]
"""
import argparse
import json
import os
import struct
import sys

import numpy as np

SAFETENSORS_DTYPES = {"BF16": np.uint16, "F16": np.float16, "F32": np.float32}


def fail(msg):
    print("safetensors_to_gguf: " + msg, file=sys.stderr)
    sys.exit(1)


class Checkpoint:
    """The tensors of model.safetensors or of the shards model.safetensors.index.json names,
    read lazily through memory maps (no copy until a tensor is used)."""

    def __init__(self, model_dir):
        index = os.path.join(model_dir, "model.safetensors.index.json")
        if os.path.exists(index):
            with open(index) as f:
                files = sorted(set(json.load(f)["weight_map"].values()))
        else:
            files = ["model.safetensors"]
        self.tensors = {}
        for name in files:
            path = os.path.join(model_dir, name)
            if not os.path.exists(path):
                fail(f"{path}: not found (is {model_dir} a Hugging Face model directory?)")
            with open(path, "rb") as f:
                (header_len,) = struct.unpack("<Q", f.read(8))
                header = json.loads(f.read(header_len))
            data_start = 8 + header_len
            for tname, info in header.items():
                if tname == "__metadata__":
                    continue
                dtype = info["dtype"]
                if dtype not in SAFETENSORS_DTYPES:
                    fail(f"{path}: tensor {tname} has dtype {dtype}; only BF16, F16 and F32 are converted")
                begin, end = info["data_offsets"]
                self.tensors[tname] = (path, dtype, tuple(info["shape"]), data_start + begin, end - begin)

    def dtype(self, name):
        return self._info(name)[1]

    def raw(self, name):
        """The stored elements (BF16 as uint16 bit patterns), shaped, memory-mapped."""
        path, dtype, shape, offset, nbytes = self._info(name)
        np_dtype = SAFETENSORS_DTYPES[dtype]
        count = int(np.prod(shape)) if shape else 1
        if count * np.dtype(np_dtype).itemsize != nbytes:
            fail(f"{path}: tensor {name} has {nbytes} bytes for shape {shape} of {dtype}")
        return np.memmap(path, dtype=np_dtype, mode="r", offset=offset, shape=shape)

    def f32(self, name):
        return to_f32(self.raw(name), self.dtype(name))

    def _info(self, name):
        if name not in self.tensors:
            fail(f"tensor {name} is missing from the checkpoint")
        return self.tensors[name]


def to_f32(a, dtype):
    if dtype == "BF16":
        return (np.asarray(a, dtype=np.uint32) << 16).view(np.float32)
    return np.asarray(a, dtype=np.float32)


def permute_rope(w, n_head):
    """convert_hf_to_gguf.py's LlamaModel.permute: the rows of each head from [first half, second
    half] to interleaved pairs, as llama.cpp's (non-NeoX) RoPE for arch llama expects."""
    return (w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:])
            .swapaxes(1, 2)
            .reshape(w.shape))


class OutTensor:
    """One GGUF tensor: its name, numpy shape, type, and how to make its source elements (stored
    dtype kept where possible, so BF16 stays bit-exact)."""

    def __init__(self, name, shape, qtype, source):
        self.name, self.shape, self.qtype, self.source = name, shape, qtype, source


def plan(ckpt, cfg, out_qtype, gguf):
    T = gguf.GGMLQuantizationType
    n_head, n_kv = cfg["num_attention_heads"], cfg.get("num_key_value_heads", cfg["num_attention_heads"])
    n_exp = cfg["num_local_experts"]
    out = []

    def direct(hf, gname, qtype, transform=None):
        shape = ckpt.tensors.get(hf, (None, None, None))[2]
        if shape is None:
            fail(f"tensor {hf} is missing from the checkpoint")

        def source():
            a = ckpt.raw(hf)
            return (transform(a) if transform else a), ckpt.dtype(hf)
        out.append(OutTensor(gname, shape, qtype, source))

    direct("model.embed_tokens.weight", "token_embd.weight", out_qtype)
    for b in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{b}."
        direct(p + "input_layernorm.weight", f"blk.{b}.attn_norm.weight", T.F32)
        direct(p + "self_attn.q_proj.weight", f"blk.{b}.attn_q.weight", out_qtype,
               lambda a: permute_rope(np.asarray(a), n_head))
        direct(p + "self_attn.k_proj.weight", f"blk.{b}.attn_k.weight", out_qtype,
               lambda a: permute_rope(np.asarray(a), n_kv))
        direct(p + "self_attn.v_proj.weight", f"blk.{b}.attn_v.weight", out_qtype)
        direct(p + "self_attn.o_proj.weight", f"blk.{b}.attn_output.weight", out_qtype)
        direct(p + "post_attention_layernorm.weight", f"blk.{b}.ffn_norm.weight", T.F32)
        direct(p + "block_sparse_moe.gate.weight", f"blk.{b}.ffn_gate_inp.weight", T.F32)
        for wid, gname in (("w1", "ffn_gate_exps"), ("w2", "ffn_down_exps"), ("w3", "ffn_up_exps")):
            names = [f"{p}block_sparse_moe.experts.{x}.{wid}.weight" for x in range(n_exp)]
            for n in names:
                if n not in ckpt.tensors:
                    fail(f"tensor {n} is missing from the checkpoint")
            shape = (n_exp, *ckpt.tensors[names[0]][2])

            def stacked(names=names):
                dtypes = {ckpt.dtype(n) for n in names}
                if len(dtypes) != 1:
                    fail(f"experts of {names[0]} have mixed dtypes {sorted(dtypes)}")
                return np.stack([ckpt.raw(n) for n in names]), dtypes.pop()
            out.append(OutTensor(f"blk.{b}.{gname}.weight", shape, out_qtype, stacked))
    direct("model.norm.weight", "output_norm.weight", T.F32)
    if cfg.get("tie_word_embeddings", False):
        pass  # llama.cpp uses token_embd when output.weight is absent
    else:
        direct("lm_head.weight", "output.weight", out_qtype)
    return out


def encode(t, gguf):
    """The tensor's bytes in its GGUF type (uint8 for BF16 and Q8_0, float32 for F32)."""
    T = gguf.GGMLQuantizationType
    a, dtype = t.source()
    if t.qtype == T.F32:
        return np.ascontiguousarray(to_f32(a, dtype))
    if t.qtype == T.BF16 and dtype == "BF16":
        return np.ascontiguousarray(a, dtype=np.uint16).view(np.uint8)  # bit-exact copy
    f = to_f32(a, dtype)
    if t.qtype == T.Q8_0 and f.ndim == 3:
        # Row by row the same bytes as quantising the whole stack; one expert at a time bounds memory.
        return np.stack([gguf.quants.quantize(np.ascontiguousarray(e), t.qtype) for e in f])
    return gguf.quants.quantize(np.ascontiguousarray(f), t.qtype)


def add_metadata(w, cfg, model_dir, out_qtype, gguf, stub_merges):
    T, F = gguf.GGMLQuantizationType, gguf.LlamaFileType
    w.add_type(gguf.GGUFType.MODEL)
    w.add_name(os.path.basename(os.path.normpath(model_dir)))
    w.add_vocab_size(cfg["vocab_size"])
    w.add_block_count(cfg["num_hidden_layers"])
    w.add_context_length(cfg.get("max_position_embeddings", 4096))
    w.add_embedding_length(cfg["hidden_size"])
    w.add_feed_forward_length(cfg["intermediate_size"])
    w.add_head_count(cfg["num_attention_heads"])
    w.add_head_count_kv(cfg.get("num_key_value_heads", cfg["num_attention_heads"]))
    w.add_rope_freq_base(cfg.get("rope_theta", 10000.0))
    w.add_layer_norm_rms_eps(cfg.get("rms_norm_eps", 1e-6))
    w.add_expert_count(cfg["num_local_experts"])
    w.add_expert_used_count(cfg["num_experts_per_tok"])
    head_dim = cfg.get("head_dim")
    if head_dim is not None:
        w.add_key_length(head_dim)
        w.add_value_length(head_dim)
    w.add_rope_dimension_count(head_dim or cfg["hidden_size"] // cfg["num_attention_heads"])
    w.add_file_type({T.F32: F.ALL_F32, T.BF16: F.MOSTLY_BF16, T.Q8_0: F.MOSTLY_Q8_0}[out_qtype])
    w.add_quantization_version(gguf.GGML_QUANT_VERSION)

    # The vocabulary as convert_hf_to_gguf.py's _set_vocab_gpt2 writes it, from tokenizer.json
    # directly (it goes through transformers' AutoTokenizer, which we need not have).
    with open(os.path.join(model_dir, "tokenizer.json"), encoding="utf-8") as f:
        tok = json.load(f)
    model = tok.get("model", {})
    if model.get("type") != "BPE":
        fail(f"{model_dir}/tokenizer.json: model.type {model.get('type')!r}; only byte-level BPE is converted")
    by_id = {i: s for s, i in model["vocab"].items()}
    special = {}
    for a in tok.get("added_tokens", []):
        by_id[a["id"]] = a["content"]
        special[a["id"]] = a.get("special", False)
    tokens, types = [], []
    for i in range(cfg["vocab_size"]):
        if i not in by_id:
            tokens.append(f"[PAD{i}]")
            types.append(gguf.TokenType.UNUSED)
        else:
            tokens.append(by_id[i])
            types.append(gguf.TokenType.CONTROL if special.get(i) else
                         gguf.TokenType.USER_DEFINED if i in special else gguf.TokenType.NORMAL)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("default")  # GPT-2's pre-tokenizer regex, as the ByteLevel pre-tokenizer uses
    w.add_token_list(tokens)
    w.add_token_types(types)
    special_vocab = gguf.SpecialVocab(model_dir, load_merges=True, n_vocab=len(tokens))
    if not special_vocab.merges:
        if not stub_merges:
            fail(f"{model_dir}/tokenizer.json has no merges, and llama.cpp refuses a BPE vocabulary without"
                 " them (--stub-merges writes a placeholder, for feeding token ids only)")
        # Two byte symbols whose join is no token: loadable, and unused when ids are given directly.
        special_vocab.merges = ["\u0120 \u0120"]
    special_vocab.add_to_gguf(w)


def convert(args, gguf):
    with open(os.path.join(args.model, "config.json")) as f:
        cfg = json.load(f)
    if cfg.get("model_type") != "mixtral":
        fail(f"{args.model}/config.json: model_type {cfg.get('model_type')!r}; only mixtral is converted")
    T = gguf.GGMLQuantizationType
    out_qtype = {"f32": T.F32, "bf16": T.BF16, "q8_0": T.Q8_0}[args.type]
    ckpt = Checkpoint(args.model)
    tensors = plan(ckpt, cfg, out_qtype, gguf)
    w = gguf.GGUFWriter(args.out + ".part", "llama")
    add_metadata(w, cfg, args.model, out_qtype, gguf, args.stub_merges)
    for t in tensors:
        if t.qtype == T.F32:
            w.add_tensor_info(t.name, t.shape, np.dtype(np.float32), int(np.prod(t.shape)) * 4)
        else:
            byte_shape = gguf.quant_shape_to_byte_shape(t.shape, t.qtype)
            w.add_tensor_info(t.name, byte_shape, np.dtype(np.uint8), int(np.prod(byte_shape)), raw_dtype=t.qtype)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    total = 0
    for t in tensors:
        data = encode(t, gguf)
        total += data.nbytes
        w.write_tensor_data(data)
    w.close()
    os.replace(args.out + ".part", args.out)
    print(f"wrote {args.out}: {len(tensors)} tensors, {total / 2**20:.1f} MiB of tensor data, {args.type}")
    return ckpt, cfg, tensors


def verify(args, gguf, ckpt, cfg, tensors):
    """Reads the GGUF back and checks every tensor against the checkpoint."""
    T = gguf.GGMLQuantizationType
    reader = gguf.GGUFReader(args.out)
    found = {t.name: t for t in reader.tensors}
    if set(found) != {t.name for t in tensors}:
        fail(f"verify: tensor names differ: {sorted(set(found) ^ {t.name for t in tensors})}")
    worst = 0.0
    for t in tensors:
        r = found[t.name]
        if r.tensor_type != t.qtype:
            fail(f"verify: {t.name} is {r.tensor_type.name}, expected {t.qtype.name}")
        # GGUF lists dimensions innermost first.
        if tuple(int(d) for d in reversed(r.shape)) != tuple(t.shape):
            fail(f"verify: {t.name} has shape {list(reversed(r.shape))}, expected {list(t.shape)}")
        a, dtype = t.source()
        if t.qtype == T.BF16:
            got = np.asarray(r.data).view(np.uint16).reshape(t.shape)
            if dtype == "BF16":
                same = np.array_equal(got, np.asarray(a))
            else:
                same = np.array_equal(got, gguf.quants.quantize(to_f32(a, dtype), T.BF16).view(np.uint16).reshape(t.shape))
            if not same:
                fail(f"verify: {t.name} differs from the checkpoint")
        elif t.qtype == T.F32:
            if not np.array_equal(np.asarray(r.data).reshape(t.shape), to_f32(a, dtype)):
                fail(f"verify: {t.name} differs from the checkpoint")
        else:
            ref = to_f32(a, dtype)
            rows = ref.reshape(-1, ref.shape[-1])
            got = gguf.quants.dequantize(np.asarray(r.data), t.qtype).reshape(rows.shape)
            blocks = rows.reshape(-1, 32)
            step = np.abs(blocks).max(axis=1, keepdims=True) / 127
            # Q8_0 stores the scale in F16, so allow its rounding on top of half a step.
            err = np.abs(got.reshape(-1, 32) - blocks) / np.maximum(step, 1e-30)
            worst = max(worst, float(err.max()))
            if err.max() > 0.5 + 127 * 2.0 ** -10:
                fail(f"verify: {t.name} is off by {err.max():.3f} quantisation steps")
    note = f", Q8_0 within {worst:.3f} of a quantisation step" if worst else ""
    print(f"verified {args.out}: {len(tensors)} tensors, names, shapes and types as planned, "
          f"values as in the checkpoint{note}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--llama-src", required=True, help="llama.cpp source directory (for its gguf-py)")
    ap.add_argument("--model", required=True, help="our Mixtral model directory")
    ap.add_argument("--out", required=True, help="GGUF file to write")
    ap.add_argument("--type", default="bf16", choices=["f32", "bf16", "q8_0"],
                    help="type of the matrices (default bf16; f32 for checking logits)")
    ap.add_argument("--stub-merges", action="store_true",
                    help="when tokenizer.json has no merges (the golden tiny models), write one placeholder merge "
                         "so that llama.cpp loads the vocabulary; text tokenization is then not faithful")
    ap.add_argument("--verify", action="store_true", help="read the file back and check every tensor")
    args = ap.parse_args()
    gguf_py = os.path.join(args.llama_src, "gguf-py")
    if not os.path.isdir(os.path.join(gguf_py, "gguf")):
        fail(f"--llama-src {args.llama_src}: no gguf-py/gguf in it (give llama.cpp's source directory)")
    sys.path.insert(0, gguf_py)
    import gguf  # noqa: E402  (llama.cpp's own, from --llama-src)
    ckpt, cfg, tensors = convert(args, gguf)
    if args.verify:
        verify(args, gguf, ckpt, cfg, tensors)


if __name__ == "__main__":
    main()
