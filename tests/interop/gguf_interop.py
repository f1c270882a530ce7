#!/usr/bin/env python3
"""GGUF interoperability: a file written by qforge's GGUF writer must be read
by llama.cpp's own Python package (gguf-py's GGUFReader) with the expected
metadata (types, values, order) and tensor bytes.

Usage: gguf_interop.py <path to qf_gguf_selftest_write> <work folder>
Exits non-zero (a ctest failure, never a skip) when `gguf` or `numpy` is not
installed: `pip install gguf numpy`.
"""
import os
import subprocess
import sys

try:
    import numpy as np
    import gguf
    from gguf import GGUFReader, GGUFValueType as VT, GGMLQuantizationType as QT
except ImportError as e:  # a missing dependency is a failure, not a skip
    print(f"FAIL: Python dependency missing ({e}); run: pip install gguf numpy", file=sys.stderr)
    sys.exit(1)


def pattern(n, j):
    k = np.arange(n, dtype=np.uint64)
    return ((k * 31 + j * 7 + 3) & 0xFF).astype(np.uint8).tobytes()


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    exe, work = sys.argv[1], sys.argv[2]
    os.makedirs(work, exist_ok=True)
    path = os.path.join(work, "selftest.gguf")
    subprocess.run([exe, path], check=True)

    r = GGUFReader(path)
    failures = []

    def check(cond, what):
        if not cond:
            failures.append(what)

    expected = [
        ("general.architecture", [VT.STRING], "llama"),
        ("general.name", [VT.STRING], "qforge-selftest"),
        ("general.alignment", [VT.UINT32], 64),
        ("llama.block_count", [VT.UINT32], 2),
        ("llama.context_length", [VT.UINT32], 256),
        ("llama.rope.freq_base", [VT.FLOAT32], 10000.0),
        ("test.u8", [VT.UINT8], 200),
        ("test.i8", [VT.INT8], -100),
        ("test.u16", [VT.UINT16], 60000),
        ("test.i16", [VT.INT16], -30000),
        ("test.u32", [VT.UINT32], 4000000000),
        ("test.i32", [VT.INT32], -2000000000),
        ("test.f32", [VT.FLOAT32], 3.25),
        ("test.bool", [VT.BOOL], True),
        ("test.u64", [VT.UINT64], 9223372036854775813),
        ("test.i64", [VT.INT64], -4611686018427387904),
        ("test.f64", [VT.FLOAT64], -1e300),
        ("test.str", [VT.STRING], "h\u00e9llo w\u00f6rld \u2713"),
        ("test.arr_i32", [VT.ARRAY, VT.INT32], [1, -2, 3]),
        ("test.arr_f32", [VT.ARRAY, VT.FLOAT32], [0.5, 1.5]),
        ("test.arr_u8", [VT.ARRAY, VT.UINT8], [1, 2, 255]),
        ("test.arr_bool", [VT.ARRAY, VT.BOOL], [True, False]),
        ("test.arr_f64", [VT.ARRAY, VT.FLOAT64], [1.5, -2.25]),
        ("test.arr_u64", [VT.ARRAY, VT.UINT64], [0, 18446744073709551615]),
        ("test.arr_str", [VT.ARRAY, VT.STRING], ["a", "bb", ""]),
        ("general.file_type", [VT.UINT32], 7),
    ]
    keys = [k for k in r.fields if not k.startswith("GGUF.")]
    check(keys == [e[0] for e in expected], f"key order {keys}")
    check(r.fields["GGUF.version"].contents() == 3, "version")
    for key, types, value in expected:
        field = r.fields.get(key)
        if field is None:
            failures.append(f"missing key {key}")
            continue
        check(list(field.types) == types, f"{key}: types {field.types}, want {types}")
        got = field.contents()
        if isinstance(value, list):
            got = list(got)
            if types[1] in (VT.BOOL,):
                got = [bool(x) for x in got]
        check(got == value, f"{key}: value {got!r}, want {value!r}")

    check(r.alignment == 64, f"alignment {r.alignment}")
    check(r.data_offset % 64 == 0, f"data offset {r.data_offset}")

    tensors = [
        ("token_embd.weight", QT.F32, [8, 4], 8 * 4 * 4),
        ("blk.0.attn_q.weight", QT.F16, [16, 2], 64),
        ("output_norm.weight", QT.BF16, [8], 16),
        ("blk.0.ffn_up.weight", QT.Q8_0, [64, 3], 2 * 34 * 3),
        ("blk.0.ffn_down.weight", QT.Q4_K, [256, 2, 1], 288),
        ("blk.1.counts", QT.I32, [5], 20),
    ]
    check(len(r.tensors) == len(tensors), f"{len(r.tensors)} tensors")
    running = 0
    for j, (t, (name, qt, shape, nbytes)) in enumerate(zip(r.tensors, tensors)):
        check(t.name == name, f"tensor {j} name {t.name}")
        check(t.tensor_type == qt, f"{name}: type {t.tensor_type!r}")
        check([int(x) for x in t.shape] == shape, f"{name}: shape {list(t.shape)}")
        check(int(t.n_bytes) == nbytes, f"{name}: n_bytes {t.n_bytes}")
        offset = int(t.data_offset) - r.data_offset
        check(offset == running, f"{name}: offset {offset}, want {running}")
        running += (nbytes + 63) // 64 * 64
        data = np.asarray(t.data).tobytes()
        if qt == QT.F32:
            want = (np.arange(32, dtype=np.float32) * 0.5 - 3.0).astype("<f4").tobytes()
        elif qt == QT.I32:
            want = (np.arange(5, dtype=np.int32) * 1000 - 2000).astype("<i4").tobytes()
        else:
            want = pattern(nbytes, j)
        check(data == want, f"{name}: tensor bytes differ")
    check(os.path.getsize(path) == r.data_offset + running, "file size")

    if failures:
        for f in failures:
            print("FAIL:", f, file=sys.stderr)
        return 1
    try:
        from importlib.metadata import version
        ver = version("gguf")
    except Exception:
        ver = "?"
    print(f"gguf interop OK: gguf-py {ver} read {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
