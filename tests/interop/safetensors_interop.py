#!/usr/bin/env python3
"""Interop check between qforge's safetensors I/O and the reference Python
`safetensors` package (plus numpy).

Usage: safetensors_interop.py PATH/TO/qf_st_selftest_write

1. qforge -> reference: runs `qf_st_selftest_write write DIR`, then verifies
   DIR/selftest.safetensors with safetensors.safe_open (names, dtypes,
   shapes, metadata; values through numpy where numpy has the dtype) and with
   an independent header parser (raw bytes of every tensor, header padding),
   and DIR/sharded/ (index text exactly as transformers writes it, each shard
   loaded by safetensors.numpy.load_file).
2. reference -> qforge: writes a file with safetensors.numpy.save_file and
   compares `qf_st_selftest_write check FILE` with what it wrote.

Exits non-zero on any mismatch, and also when python dependencies are
missing: CI must install them (pip install safetensors numpy).
"""
import json
import os
import struct
import subprocess
import sys
import tempfile

try:
    import numpy as np
    import safetensors
    from safetensors import safe_open
    from safetensors.numpy import load_file, save_file
except ImportError as exc:  # a missing dependency is a failure, not a skip
    print(f"safetensors_interop: FAIL: missing python dependency: {exc} "
          "(pip install safetensors numpy)", file=sys.stderr)
    sys.exit(1)

DTYPE_SIZE = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4,
              "I16": 2, "I8": 1, "U64": 8, "U32": 4, "U16": 2, "U8": 1,
              "BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1}
NUMPY_DTYPE = {"F64": np.float64, "F32": np.float32, "F16": np.float16,
               "I64": np.int64, "I32": np.int32, "I16": np.int16,
               "I8": np.int8, "U64": np.uint64, "U32": np.uint32,
               "U16": np.uint16, "U8": np.uint8, "BOOL": np.bool_}

# Keep in sync with k_single in tests/core_io/st_selftest_write.c.
SINGLE = [
    ("model.embed_tokens.weight", "F32", [4, 3]),
    ("f64", "F64", [3]),
    ("f16", "F16", [2, 5]),
    ("bf16", "BF16", [3, 2]),
    ("i64", "I64", [2]),
    ("i32", "I32", [2, 1, 2]),
    ("i16", "I16", [3]),
    ("i8", "I8", [7]),
    ("u64", "U64", [1]),
    ("u32", "U32", [2]),
    ("u16", "U16", [5]),
    ("u8", "U8", [9]),
    ("bool", "BOOL", [6]),
    ("f8_e4m3", "F8_E4M3", [4]),
    ("f8_e5m2", "F8_E5M2", [2, 2]),
    ("scalar", "F32", []),
    ("empty", "F16", [0, 4]),
]
# Keep in sync with `sharded` in st_selftest_write.c (limit 80 bytes).
SHARDED = [
    ("z.last", "F16", [4, 4]),
    ("layers.10.w", "F16", [4, 4]),
    ("layers.9.w", "F16", [4, 4]),
    ("layers.2.w", "F16", [16]),
    ("a.first", "F16", [2, 8]),
    ("m.mid", "F16", [8, 2]),
    ("m.end", "F16", [16]),
]

failures = []


def check(cond, msg):
    if not cond:
        failures.append(msg)
        print(f"FAIL: {msg}", file=sys.stderr)


def lcg_bytes(n, seed):
    """Same generator as iot_fill in tests/core_io/io_test_util.c."""
    x = (seed * 2654435761 + 12345) & 0xFFFFFFFF
    out = bytearray(n)
    for j in range(n):
        x = (x * 1664525 + 1013904223) & 0xFFFFFFFF
        out[j] = x >> 24
    return bytes(out)


def expected_bytes(dtype, shape, seed):
    n = DTYPE_SIZE[dtype]
    for d in shape:
        n *= d
    b = lcg_bytes(n, seed)
    if dtype == "BOOL":
        b = bytes(v & 1 for v in b)
    return b


def parse_raw(path):
    """An independent minimal safetensors parser: (header dict, data, hlen)."""
    with open(path, "rb") as f:
        raw = f.read()
    (hlen,) = struct.unpack("<Q", raw[:8])
    header_bytes = raw[8:8 + hlen]
    header = json.loads(header_bytes.decode("utf-8"))
    return header, raw[8 + hlen:], hlen, header_bytes


def verify_single(path):
    header, data, hlen, header_bytes = parse_raw(path)
    check(hlen % 8 == 0, f"{path}: header length {hlen} not a multiple of 8")
    text = header_bytes.decode("utf-8")
    stripped = text.rstrip(" ")
    check(stripped.endswith("}") and len(text) - len(stripped) < 8,
          f"{path}: header is not JSON followed by < 8 spaces of padding")
    check(text.startswith('{"__metadata__":'),
          f"{path}: __metadata__ is not first: {text[:40]!r}")
    names_in_order = [k for k in header if k != "__metadata__"]
    check(names_in_order == [n for n, _, _ in SINGLE],
          f"{path}: tensors not in insertion order: {names_in_order}")
    check(header.get("__metadata__") == {"format": "pt", "qforge_selftest": "1"},
          f"{path}: metadata {header.get('__metadata__')}")
    for seed, (name, dtype, shape) in enumerate(SINGLE):
        info = header[name]
        want = expected_bytes(dtype, shape, seed)
        b, e = info["data_offsets"]
        check(info["dtype"] == dtype, f"{name}: dtype {info['dtype']}")
        check(info["shape"] == shape, f"{name}: shape {info['shape']}")
        check(data[b:e] == want, f"{name}: raw bytes differ")

    # the reference reader (Rust) validates the whole header on open
    with safe_open(path, framework="numpy") as f:
        check(sorted(f.keys()) == sorted(n for n, _, _ in SINGLE),
              f"safe_open keys {sorted(f.keys())}")
        check(f.metadata() == {"format": "pt", "qforge_selftest": "1"},
              f"safe_open metadata {f.metadata()}")
        for seed, (name, dtype, shape) in enumerate(SINGLE):
            sl = f.get_slice(name)
            check(sl.get_dtype() == dtype,
                  f"safe_open {name}: dtype {sl.get_dtype()} != {dtype}")
            check(list(sl.get_shape()) == shape,
                  f"safe_open {name}: shape {sl.get_shape()} != {shape}")
            if dtype in NUMPY_DTYPE:
                arr = f.get_tensor(name)
                check(arr.dtype == NUMPY_DTYPE[dtype],
                      f"numpy {name}: dtype {arr.dtype}")
                check(list(arr.shape) == shape, f"numpy {name}: shape {arr.shape}")
                check(arr.tobytes() == expected_bytes(dtype, shape, seed),
                      f"numpy {name}: values differ")


def verify_sharded(folder):
    index_path = os.path.join(folder, "model.safetensors.index.json")
    with open(index_path, encoding="utf-8") as f:
        text = f.read()
    index = json.loads(text)
    # transformers: json.dumps(index, indent=2, sort_keys=True) + "\n"
    check(text == json.dumps(index, indent=2, sort_keys=True) + "\n",
          "index text is not what transformers writes")
    total = sum(len(expected_bytes(d, s, 0)) for _, d, s in SHARDED)
    check(index.get("metadata") == {"total_size": total},
          f"index metadata {index.get('metadata')} (want total_size {total})")
    # greedy split at 80 bytes: 32-byte tensors two by two
    n_shards = 4
    want_map = {}
    for i, (name, _, _) in enumerate(SHARDED):
        want_map[name] = f"model-{i // 2 + 1:05d}-of-{n_shards:05d}.safetensors"
    check(index.get("weight_map") == want_map,
          f"weight_map {index.get('weight_map')}")
    files = sorted(os.listdir(folder))
    check(files == sorted(set(want_map.values())) +
          ["model.safetensors.index.json"], f"sharded folder holds {files}")
    seen = {}
    for shard in sorted(set(want_map.values())):
        tensors = load_file(os.path.join(folder, shard))
        with safe_open(os.path.join(folder, shard), framework="numpy") as f:
            check(f.metadata() == {"format": "pt"},
                  f"{shard}: metadata {f.metadata()}")
        seen.update({k: (shard, v) for k, v in tensors.items()})
    for seed, (name, dtype, shape) in enumerate(SHARDED, start=100):
        shard, arr = seen.get(name, (None, None))
        check(shard == want_map[name], f"{name} found in {shard}")
        if arr is not None:
            check(arr.dtype == np.float16 and list(arr.shape) == shape,
                  f"{name}: {arr.dtype} {arr.shape}")
            check(arr.tobytes() == expected_bytes(dtype, shape, seed),
                  f"{name}: values differ")


def fnv1a(b):
    h = 0xcbf29ce484222325
    for v in b:
        h ^= v
        h = (h * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


def verify_reference_to_qforge(tool, folder):
    rng = np.random.default_rng(7)
    tensors = {
        "w.f32": rng.standard_normal((3, 4)).astype(np.float32),
        "w.f16": rng.standard_normal((5,)).astype(np.float16),
        "w.f64": rng.standard_normal((2, 2)).astype(np.float64),
        "i.i64": rng.integers(-2**40, 2**40, (3,), dtype=np.int64),
        "i.i32": rng.integers(-2**30, 2**30, (2, 3), dtype=np.int32),
        "i.i16": rng.integers(-2**14, 2**14, (4,), dtype=np.int16),
        "i.i8": rng.integers(-100, 100, (7,), dtype=np.int8),
        "u.u64": rng.integers(0, 2**60, (2,), dtype=np.uint64),
        "u.u32": rng.integers(0, 2**31, (3,), dtype=np.uint32),
        "u.u16": rng.integers(0, 2**15, (3,), dtype=np.uint16),
        "u.u8": rng.integers(0, 255, (1, 2, 3), dtype=np.uint8),
        "b.bool": rng.integers(0, 2, (5,)).astype(np.bool_),
        "s.scalar": np.array(2.5, dtype=np.float32),
        "e.empty": np.zeros((0, 3), dtype=np.float16),
    }
    names = {np.dtype(np.float32): "F32", np.dtype(np.float16): "F16",
             np.dtype(np.float64): "F64", np.dtype(np.int64): "I64",
             np.dtype(np.int32): "I32", np.dtype(np.int16): "I16",
             np.dtype(np.int8): "I8", np.dtype(np.uint64): "U64",
             np.dtype(np.uint32): "U32", np.dtype(np.uint16): "U16",
             np.dtype(np.uint8): "U8", np.dtype(np.bool_): "BOOL"}
    path = os.path.join(folder, "from_python.safetensors")
    save_file(tensors, path, metadata={"format": "np", "who": "python"})
    out = subprocess.run([tool, "check", path], capture_output=True, text=True)
    check(out.returncode == 0, f"check failed: {out.stderr.strip()}")
    got_t, got_m, order = {}, {}, []
    for line in out.stdout.splitlines():
        parts = line.split("\t")
        if parts[0] == "tensor":
            got_t[parts[1]] = tuple(parts[2:])
            order.append(parts[1])
        elif parts[0] == "meta":
            got_m[parts[1]] = parts[2]
    want_t = {}
    for name, arr in tensors.items():
        b = np.ascontiguousarray(arr).tobytes()
        want_t[name] = (names[arr.dtype], ",".join(str(d) for d in arr.shape),
                        str(len(b)), fnv1a(b))
    check(got_t == want_t, f"qforge read {got_t}\nexpected {want_t}")
    check(got_m == {"format": "np", "who": "python"}, f"metadata {got_m}")
    header, _, _, _ = parse_raw(path)
    by_offset = sorted((v["data_offsets"][0], v["data_offsets"][1], k)
                       for k, v in header.items() if k != "__metadata__")
    # zero-size tensors may share an offset; compare the non-empty order
    nonempty = [k for b, e, k in by_offset if e > b]
    check([k for k in order if k in nonempty] == nonempty,
          f"qforge data order {order} vs offsets {nonempty}")


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    tool = sys.argv[1]
    base = os.environ.get("QF_BUILD_DIR") or None
    with tempfile.TemporaryDirectory(prefix="qf-interop-", dir=base) as tmp:
        out = subprocess.run([tool, "write", tmp], capture_output=True, text=True)
        if out.returncode != 0:
            print(f"FAIL: {tool} write: {out.stderr.strip()}", file=sys.stderr)
            return 1
        verify_single(os.path.join(tmp, "selftest.safetensors"))
        verify_sharded(os.path.join(tmp, "sharded"))
        verify_reference_to_qforge(tool, tmp)
    if failures:
        print(f"safetensors_interop: {len(failures)} failure(s)", file=sys.stderr)
        return 1
    print(f"safetensors_interop: OK (safetensors {safetensors.__version__}, "
          f"numpy {np.__version__})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
