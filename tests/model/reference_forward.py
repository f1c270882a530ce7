#!/usr/bin/env python3
"""Independent reference forward pass for qforge's model runtime tests.

Reads an HF folder (config.json + safetensors, one file or sharded; F32,
F16 and BF16 decoded by hand with numpy) and runs the Llama-family equations
in float64 with torch: RMSNorm, rotary embeddings (rotate_half pairing,
default / linear / llama3 inverse frequencies), grouped-query causal
attention, SwiGLU, optional q/k/v biases, tied or separate lm_head.

Usage: reference_forward.py MANIFEST.json
The manifest is a list of {"dir": folder, "tokens": [[ids...], ...],
"out": file}; the logits [batch, len, vocab] are written to "out" as raw
little-endian float32. Exits non-zero (never skips) when torch or numpy is
missing.
"""
import json
import math
import os
import struct
import sys

try:
    import numpy as np
    import torch
except ImportError as e:  # the test must fail, not skip
    sys.stderr.write("reference_forward.py needs numpy and torch: %s\n" % e)
    sys.exit(2)


def read_safetensors(path):
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n].decode("utf-8"))
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        b, e = info["data_offsets"]
        raw = blob[base + b:base + e]
        dt = info["dtype"]
        if dt == "F32":
            a = np.frombuffer(raw, dtype="<f4").astype(np.float64)
        elif dt == "F16":
            a = np.frombuffer(raw, dtype="<f2").astype(np.float64)
        elif dt == "BF16":
            u = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
            a = u.view(np.float32).astype(np.float64)
        else:
            raise ValueError("unsupported dtype %s for %s" % (dt, name))
        out[name] = torch.from_numpy(a.reshape(info["shape"]).copy())
    return out


def load_weights(folder):
    index = os.path.join(folder, "model.safetensors.index.json")
    if os.path.exists(index):
        with open(index) as f:
            shards = sorted(set(json.load(f)["weight_map"].values()))
    else:
        shards = ["model.safetensors"]
    w = {}
    for s in shards:
        w.update(read_safetensors(os.path.join(folder, s)))
    return w


def inv_frequencies(cfg, hd):
    theta = cfg.get("rope_theta", 10000.0)
    i = torch.arange(0, hd, 2, dtype=torch.float64)
    inv = 1.0 / (theta ** (i / hd))
    rs = cfg.get("rope_scaling")
    if not rs:
        return inv
    kind = rs.get("rope_type", rs.get("type"))
    if kind == "linear":
        return inv / rs["factor"]
    if kind == "llama3":
        factor = rs["factor"]
        lo, hi = rs["low_freq_factor"], rs["high_freq_factor"]
        old = rs["original_max_position_embeddings"]
        low_wl, high_wl = old / lo, old / hi
        wl = 2 * math.pi / inv
        scaled = torch.where(wl > low_wl, inv / factor, inv)
        smooth = (old / wl - lo) / (hi - lo)
        mid = (1 - smooth) * scaled / factor + smooth * scaled
        is_mid = (wl >= high_wl) & (wl <= low_wl)
        return torch.where(is_mid, mid, scaled)
    return inv


def rms_norm(x, w, eps):
    return w * (x / torch.sqrt((x * x).mean(-1, keepdim=True) + eps))


def rotate(x, cos, sin):
    half = x.shape[-1] // 2
    rot = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * cos + rot * sin


def forward(folder, tokens):
    with open(os.path.join(folder, "config.json")) as f:
        cfg = json.load(f)
    w = load_weights(folder)
    H = cfg["hidden_size"]
    nh = cfg["num_attention_heads"]
    nkv = cfg.get("num_key_value_heads") or nh
    hd = cfg.get("head_dim") or H // nh
    eps = cfg.get("rms_norm_eps", 1e-6)
    ids = torch.tensor(tokens, dtype=torch.long)
    B, L = ids.shape
    x = w["model.embed_tokens.weight"][ids]
    ang = torch.arange(L, dtype=torch.float64)[:, None] * inv_frequencies(cfg, hd)[None, :]
    cos = torch.cat([torch.cos(ang)] * 2, dim=-1)
    sin = torch.cat([torch.sin(ang)] * 2, dim=-1)
    mask = torch.triu(torch.ones(L, L, dtype=torch.bool), diagonal=1)

    def lin(name, v):
        y = v @ w[name + ".weight"].T
        if name + ".bias" in w:
            y = y + w[name + ".bias"]
        return y

    for l in range(cfg["num_hidden_layers"]):
        p = "model.layers.%d." % l
        h = rms_norm(x, w[p + "input_layernorm.weight"], eps)
        q = lin(p + "self_attn.q_proj", h).view(B, L, nh, hd).transpose(1, 2)
        k = lin(p + "self_attn.k_proj", h).view(B, L, nkv, hd).transpose(1, 2)
        v = lin(p + "self_attn.v_proj", h).view(B, L, nkv, hd).transpose(1, 2)
        q, k = rotate(q, cos, sin), rotate(k, cos, sin)
        k = k.repeat_interleave(nh // nkv, dim=1)
        v = v.repeat_interleave(nh // nkv, dim=1)
        s = (q @ k.transpose(-1, -2)) / math.sqrt(hd)
        s = s.masked_fill(mask, float("-inf"))
        a = torch.softmax(s, dim=-1) @ v
        a = a.transpose(1, 2).reshape(B, L, nh * hd)
        x = x + lin(p + "self_attn.o_proj", a)
        h = rms_norm(x, w[p + "post_attention_layernorm.weight"], eps)
        g = lin(p + "mlp.gate_proj", h)
        u = lin(p + "mlp.up_proj", h)
        x = x + lin(p + "mlp.down_proj", torch.nn.functional.silu(g) * u)
    x = rms_norm(x, w["model.norm.weight"], eps)
    head = w.get("lm_head.weight")
    if cfg.get("tie_word_embeddings") or head is None:
        head = w["model.embed_tokens.weight"]
    return x @ head.T


def main():
    if len(sys.argv) != 2:
        sys.stderr.write(__doc__)
        return 2
    with open(sys.argv[1]) as f:
        cases = json.load(f)
    for c in cases:
        logits = forward(c["dir"], c["tokens"]).numpy().astype("<f4")
        with open(c["out"], "wb") as f:
            f.write(logits.tobytes())
    return 0


if __name__ == "__main__":
    sys.exit(main())
