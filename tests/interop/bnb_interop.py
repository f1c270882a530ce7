#!/usr/bin/env python3
"""bitsandbytes checkpoint interop: a qforge NF4 (double-quant) and an int8
checkpoint of a small generated model, read back with the official
`safetensors` package, must have exactly the key set, dtypes and shapes
transformers expects (bitsandbytes spec §6.1, §6.4), a quant_state JSON with
the documented keys in order, a config.json quantization_config as
BitsAndBytesConfig.to_dict writes it, and weights that dequantize (in numpy,
independently of qforge) to the originals within NF4 / int8 error.

usage: bnb_interop.py QFORGE_CLI
"""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
from safetensors.numpy import load_file, save_file

NF4 = np.array([-1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453,
                -0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0.0,
                0.07958029955625534, 0.16093020141124725, 0.24611230194568634,
                0.33791524171829224, 0.44070982933044434, 0.5626170039176941,
                0.7229568362236023, 1.0], dtype=np.float32)


def fail(msg):
    print("FAIL:", msg)
    sys.exit(1)


def make_model(d):
    rng = np.random.default_rng(7)
    H, I, V, L = 64, 128, 96, 2
    t = {"model.embed_tokens.weight": rng.standard_normal((V, H), dtype=np.float32) * 0.02,
         "model.norm.weight": np.ones(H, np.float32),
         "lm_head.weight": rng.standard_normal((V, H), dtype=np.float32) * 0.02}
    shapes = {"self_attn.q_proj": (H, H), "self_attn.k_proj": (H, H), "self_attn.v_proj": (H, H),
              "self_attn.o_proj": (H, H), "mlp.gate_proj": (I, H), "mlp.up_proj": (I, H),
              "mlp.down_proj": (H, I)}
    for l in range(L):
        for m, s in shapes.items():
            t[f"model.layers.{l}.{m}.weight"] = rng.standard_normal(s, dtype=np.float32) * 0.05
        t[f"model.layers.{l}.input_layernorm.weight"] = np.ones(H, np.float32)
        t[f"model.layers.{l}.post_attention_layernorm.weight"] = np.ones(H, np.float32)
    os.makedirs(d)
    save_file(t, os.path.join(d, "model.safetensors"), metadata={"format": "pt"})
    cfg = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": H,
           "intermediate_size": I, "num_hidden_layers": L, "num_attention_heads": 4,
           "num_key_value_heads": 4, "vocab_size": V, "rms_norm_eps": 1e-5,
           "torch_dtype": "float32", "tie_word_embeddings": False}
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f)
    return t


def check_nf4(cli, tmp, orig):
    out = os.path.join(tmp, "nf4")
    subprocess.run([cli, "quantize", os.path.join(tmp, "float"), "--method", "bnb", "--nf4",
                    "--double-quant", "--blocksize", "64", "-o", out], check=True)
    st = load_file(os.path.join(out, "model.safetensors"))
    qc = json.load(open(os.path.join(out, "config.json")))["quantization_config"]
    if qc.get("quant_method") != "bitsandbytes" or qc.get("load_in_4bit") is not True or \
            qc.get("bnb_4bit_quant_type") != "nf4" or qc.get("bnb_4bit_use_double_quant") is not True:
        fail(f"nf4 quantization_config: {qc}")
    raw = open(os.path.join(out, "config.json")).read()
    if '"llm_int8_threshold": 6.0' not in raw:
        fail("llm_int8_threshold must be written as 6.0")
    n_mod = 0
    for name, w in orig.items():
        if not name.startswith("model.layers.") or not name.endswith("_proj.weight"):
            if name not in st or st[name].dtype != w.dtype or st[name].shape != w.shape:
                fail(f"{name} must pass through unchanged")
            continue
        n_mod += 1
        N, K = w.shape
        nb = (N * K + 63) // 64
        want = {name: (np.uint8, ((N * K + 1) // 2, 1)),
                name + ".absmax": (np.uint8, (nb,)),
                name + ".quant_map": (np.float32, (16,)),
                name + ".nested_absmax": (np.float32, ((nb + 255) // 256,)),
                name + ".nested_quant_map": (np.float32, (256,))}
        for k, (dt, shape) in want.items():
            if k not in st:
                fail(f"missing {k}")
            if st[k].dtype != dt or tuple(st[k].shape) != shape:
                fail(f"{k}: {st[k].dtype}{st[k].shape}, expected {np.dtype(dt)}{shape}")
        js = st[name + ".quant_state.bitsandbytes__nf4"]
        if js.dtype != np.uint8 or js.ndim != 1:
            fail("quant_state must be a 1-D uint8 tensor")
        text = bytes(js).decode("utf-8")
        state = json.loads(text)
        keys = list(state.keys())
        if keys != ["quant_type", "blocksize", "dtype", "shape", "nested_blocksize",
                    "nested_dtype", "nested_offset"]:
            fail(f"quant_state keys/order: {keys}")
        if state["shape"] != [N, K] or state["blocksize"] != 64 or state["quant_type"] != "nf4":
            fail(f"quant_state values: {state}")
        if text != json.dumps(state):
            fail(f"quant_state bytes are not Python json.dumps' output: {text}")
        if not np.array_equal(st[name + ".quant_map"], NF4):
            fail("quant_map must be the NF4 table")
        # independent dequantization: nested absmax, then NF4 codes
        code = st[name + ".nested_quant_map"]
        nested = st[name + ".nested_absmax"]
        q8 = st[name + ".absmax"]
        absmax = (code[q8] * np.repeat(nested, 256)[:nb]).astype(np.float32) + \
            np.float32(state["nested_offset"])
        packed = st[name].reshape(-1)
        codes = np.empty(packed.size * 2, np.uint8)
        codes[0::2] = packed >> 4
        codes[1::2] = packed & 15
        vals = NF4[codes[:N * K]] * np.repeat(absmax, 64)[:N * K]
        err = np.abs(vals.reshape(N, K) - w).max()
        bound = np.abs(w).max() * 0.16 + 1e-3
        if err > bound:
            fail(f"{name}: NF4 dequantization error {err} > {bound}")
    if n_mod != 14:
        fail(f"expected 14 quantized linears, found {n_mod}")
    extra = set(st) - {k for k in st if any(k.startswith(n) for n in orig)}
    if extra:
        fail(f"unexpected keys {sorted(extra)[:5]}")


def check_int8(cli, tmp, orig):
    out = os.path.join(tmp, "int8")
    subprocess.run([cli, "quantize", os.path.join(tmp, "float"), "--method", "bnb", "--int8",
                    "-o", out], check=True)
    st = load_file(os.path.join(out, "model.safetensors"))
    qc = json.load(open(os.path.join(out, "config.json")))["quantization_config"]
    if qc.get("load_in_8bit") is not True:
        fail(f"int8 quantization_config: {qc}")
    for name, w in orig.items():
        if not (name.startswith("model.layers.") and name.endswith("_proj.weight")):
            continue
        prefix = name[:-len("weight")]
        q, scb = st.get(name), st.get(prefix + "SCB")
        if q is None or scb is None or q.dtype != np.int8 or q.shape != w.shape or \
                scb.dtype != np.float32 or scb.shape != (w.shape[0],):
            fail(f"{name}: int8 weight [N,K] and SCB [N] float32 expected")
        deq = q.astype(np.float32) * (scb[:, None] / 127.0)
        w16 = w.astype(np.float16).astype(np.float32)
        if np.abs(deq - w16).max() > np.abs(w16).max(axis=1).max() / 127.0 * 0.51 + 1e-6:
            fail(f"{name}: int8 dequantization error too large")


def main():
    if len(sys.argv) != 2:
        fail(__doc__)
    cli = sys.argv[1]
    with tempfile.TemporaryDirectory() as tmp:
        orig = make_model(os.path.join(tmp, "float"))
        check_nf4(cli, tmp, orig)
        check_int8(cli, tmp, orig)
    print("bnb interop: NF4 (double quant) and int8 checkpoints have transformers' layout")


if __name__ == "__main__":
    main()
