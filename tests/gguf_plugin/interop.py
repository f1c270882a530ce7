#!/usr/bin/env python3
"""GGUF plugin interoperability: files that `qforge convert` / `qforge quantize
--method gguf` write are read by llama.cpp's own Python package (gguf-py):

  - GGUFReader sees the metadata llama.cpp expects, with its exact key types
    (u32 counts, f32 eps / rope base, string architecture), the llama.cpp
    tensor names, ggml types and shapes;
  - F16 tensor bytes are numpy's float16 of the HF weights, with attn_q /
    attn_k rows permuted exactly as convert_hf_to_gguf.py permutes them;
  - gguf.quants.dequantize of every quantized tensor equals qforge's own
    dequantization (`qforge convert x.gguf -o DIR`), once transformers'
    reverse permutation is applied to attn_q / attn_k.

Usage: interop.py <work folder>   (QF_CLI = the qforge binary, QFORGE_REGISTRY set)
Exits non-zero (a ctest failure, never a skip) when `gguf` or `numpy` is missing:
`pip install gguf numpy`.
"""
import json
import os
import shutil
import struct
import subprocess
import sys

try:
    import numpy as np
    import gguf
    from gguf import GGUFReader, GGUFValueType as VT, GGMLQuantizationType as QT
    from gguf.quants import dequantize
except ImportError as e:  # a missing dependency is a failure, not a skip
    print(f"FAIL: Python dependency missing ({e}); run: pip install gguf numpy", file=sys.stderr)
    sys.exit(1)

H, I, L, NH, NKV, V = 256, 512, 2, 4, 2, 320
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)


def write_safetensors(path, tensors):
    header, off, blobs = {}, 0, []
    for name, a in tensors.items():
        b = np.ascontiguousarray(a).tobytes()
        dt = {np.dtype(np.float32): "F32", np.dtype(np.float16): "F16"}[a.dtype]
        header[name] = {"dtype": dt, "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    header["__metadata__"] = {"format": "pt"}
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        dt = {"F32": np.float32, "F16": np.float16}[e["dtype"]]
        b, t = e["data_offsets"]
        out[name] = np.frombuffer(data[b:t], dtype=dt).reshape(e["shape"])
    return out


def hf_model(folder):
    rng = np.random.default_rng(7)
    t = {"model.embed_tokens.weight": rng.standard_normal((V, H)).astype(np.float32)}
    hd = H // NH
    for l in range(L):
        p = f"model.layers.{l}."
        t[p + "input_layernorm.weight"] = (1 + 0.1 * rng.standard_normal(H)).astype(np.float32)
        t[p + "self_attn.q_proj.weight"] = (0.05 * rng.standard_normal((NH * hd, H))).astype(np.float32)
        t[p + "self_attn.k_proj.weight"] = (0.05 * rng.standard_normal((NKV * hd, H))).astype(np.float32)
        t[p + "self_attn.v_proj.weight"] = (0.05 * rng.standard_normal((NKV * hd, H))).astype(np.float32)
        t[p + "self_attn.o_proj.weight"] = (0.05 * rng.standard_normal((H, NH * hd))).astype(np.float32)
        t[p + "post_attention_layernorm.weight"] = (1 + 0.1 * rng.standard_normal(H)).astype(np.float32)
        t[p + "mlp.gate_proj.weight"] = (0.05 * rng.standard_normal((I, H))).astype(np.float32)
        t[p + "mlp.up_proj.weight"] = (0.05 * rng.standard_normal((I, H))).astype(np.float32)
        t[p + "mlp.down_proj.weight"] = (0.05 * rng.standard_normal((H, I))).astype(np.float32)
    t["model.norm.weight"] = np.ones(H, np.float32)
    t["lm_head.weight"] = (0.05 * rng.standard_normal((V, H))).astype(np.float32)
    os.makedirs(folder, exist_ok=True)
    write_safetensors(os.path.join(folder, "model.safetensors"), t)
    cfg = {"model_type": "llama", "architectures": ["LlamaForCausalLM"], "hidden_size": H,
           "intermediate_size": I, "num_hidden_layers": L, "num_attention_heads": NH,
           "num_key_value_heads": NKV, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
           "max_position_embeddings": 2048, "vocab_size": V, "tie_word_embeddings": False,
           "torch_dtype": "float32"}
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(cfg, f)
    return t


# convert_hf_to_gguf.py's LlamaModel.permute and transformers' reverse permute
def permute(w, n_head):
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def reverse_permute(w, n_head):
    return w.reshape(n_head, w.shape[0] // n_head // 2, 2, *w.shape[1:]).swapaxes(2, 1).reshape(w.shape)


GG_TO_HF = {"attn_norm": "input_layernorm", "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj",
            "attn_v": "self_attn.v_proj", "attn_output": "self_attn.o_proj",
            "ffn_norm": "post_attention_layernorm", "ffn_gate": "mlp.gate_proj",
            "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj"}
GLOBAL = {"token_embd.weight": "model.embed_tokens.weight", "output_norm.weight": "model.norm.weight",
          "output.weight": "lm_head.weight"}


def hf_name(gg):
    if gg in GLOBAL:
        return GLOBAL[gg], 0
    _, layer, mod, kind = gg.split(".")
    heads = NH if mod == "attn_q" else NKV if mod == "attn_k" else 0
    return f"model.layers.{layer}.{GG_TO_HF[mod]}.{kind}", heads


def field(r, key):
    f = r.get_field(key)
    check(f is not None, f"missing key {key}")
    return f


def check_metadata(r, file_type):
    expect = [("general.architecture", VT.STRING, "llama"), ("llama.block_count", VT.UINT32, L),
              ("llama.context_length", VT.UINT32, 2048), ("llama.embedding_length", VT.UINT32, H),
              ("llama.feed_forward_length", VT.UINT32, I), ("llama.attention.head_count", VT.UINT32, NH),
              ("llama.attention.head_count_kv", VT.UINT32, NKV),
              ("llama.rope.dimension_count", VT.UINT32, H // NH), ("llama.vocab_size", VT.UINT32, V),
              ("llama.rope.freq_base", VT.FLOAT32, 10000.0),
              ("llama.attention.layer_norm_rms_epsilon", VT.FLOAT32, np.float32(1e-5)),
              ("general.file_type", VT.UINT32, file_type), ("general.quantization_version", VT.UINT32, 2)]
    for key, vt, want in expect:
        f = field(r, key)
        if f is None:
            continue
        check(f.types == [vt], f"{key}: types {f.types}, expected [{vt}]")
        got = f.contents()
        check(got == want, f"{key} = {got!r}, expected {want!r}")


def run(*args):
    cli = os.environ.get("QF_CLI")
    if not cli:
        print("FAIL: QF_CLI is not set", file=sys.stderr)
        sys.exit(1)
    p = subprocess.run([cli, *args], capture_output=True, text=True)
    if p.returncode != 0:
        print(f"FAIL: qforge {' '.join(args)}: {p.stderr}", file=sys.stderr)
        sys.exit(1)


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    work = sys.argv[1]
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    src = os.path.join(work, "hf")
    hf = hf_model(src)

    # F16: bytes are numpy's float16 of the (permuted) HF weights
    f16 = os.path.join(work, "f16.gguf")
    run("convert", src, "-o", f16, "--type", "F16")
    r = GGUFReader(f16)
    check_metadata(r, 1)
    names = {t.name for t in r.tensors}
    check(len(names) == 3 + 9 * L, f"{len(names)} tensors")
    for t in r.tensors:
        name, heads = hf_name(t.name)
        w = hf[name]
        check(list(t.shape) == list(reversed(w.shape)), f"{t.name}: shape {list(t.shape)}")
        if w.ndim == 1:
            check(t.tensor_type == QT.F32 and np.array_equal(t.data, w), f"{t.name}: F32 norm")
            continue
        exp = (permute(w, heads) if heads else w).astype(np.float16)
        check(t.tensor_type == QT.F16, f"{t.name}: type {t.tensor_type!r}")
        check(np.array_equal(np.asarray(t.data).view(np.uint16), exp.view(np.uint16)),
              f"{t.name}: F16 bytes differ")

    # quantized files: gguf-py's dequantization equals ours
    for ftype, ftid, args in (("Q4_K_M", 15, ["quantize", src, "--method", "gguf", "--type", "Q4_K_M"]),
                              ("Q8_0", 7, ["convert", src, "--type", "Q8_0"]),
                              ("Q5_0", 8, ["convert", src, "--type", "Q5_0"])):
        path = os.path.join(work, f"{ftype}.gguf")
        back = os.path.join(work, f"{ftype}-hf")
        run(*args, "-o", path)
        run("convert", path, "-o", back)
        r = GGUFReader(path)
        check_metadata(r, ftid)
        ours = read_safetensors(os.path.join(back, "model.safetensors"))
        types = set()
        for t in r.tensors:
            name, heads = hf_name(t.name)
            d = dequantize(t.data, t.tensor_type).reshape(hf[name].shape)
            if heads:
                d = reverse_permute(d, heads)
            types.add(t.tensor_type.name)
            check(name in ours and np.array_equal(d, ours[name]),
                  f"{ftype} {t.name} ({t.tensor_type.name}): gguf-py dequantization differs")
        if ftype == "Q4_K_M":
            check({"Q4_K", "Q6_K", "F32"} <= types, f"Q4_K_M types {types}")
            check(r.get_tensor(0).name == "output.weight" and r.get_tensor(0).tensor_type == QT.Q6_K,
                  "Q4_K_M output.weight is Q6_K and first")
        with open(os.path.join(back, "config.json")) as f:
            cfg = json.load(f)
        check(cfg.get("model_type") == "llama" and cfg.get("num_key_value_heads") == NKV and
              cfg.get("tie_word_embeddings") is False, f"{ftype}: config.json {cfg}")

    if failures:
        for f in failures:
            print("FAIL:", f, file=sys.stderr)
        return 1
    print(f"gguf_plugin interop: OK (gguf-py {getattr(gguf, '__version__', '?')})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
