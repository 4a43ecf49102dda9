#!/usr/bin/env python3
"""Writes the seed corpus of fuzz_gguf (tests/fuzz/corpus/gguf/): a small valid GGUF v3 file
with every metadata value type, arrays of scalars and strings, general.alignment and tensors of
types F32, F16, BF16, Q8_0 and Q4_0, plus hostile variants (truncated, impossible counts, nested
array, bad alignment, overlapping tensors, duplicate key, unknown tensor type).
Layout from llama.cpp's ggml/docs/gguf.md. Run: python3 tests/fuzz/gguf_corpus.py
mmproj_tiny_f16.gguf (not written here) is a Qwen2.5-VL vision projector in llama.cpp's layout at
tiny widths (hidden 32, 2 blocks, merger to 64), written by ../shared/tools/llamacpp-anchor's
independent writer (gen_models.mmproj with VH, VL, VNH, VFF, OUT = 32, 2, 2, 64, 64; FULLATT [1])."""
import os
import struct

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "gguf")


def s(x):
    b = x.encode()
    return struct.pack("<Q", len(b)) + b


def kv(key, t, payload):
    return s(key) + struct.pack("<I", t) + payload


def build(align=64, kvs_extra=b"", n_kv_extra=0, tensors=None, version=3, dup=False,
          nested=False):
    kvs = [
        kv("general.architecture", 8, s("qwen2vl")),
        kv("general.alignment", 4, struct.pack("<I", align)),
        kv("u8", 0, b"\x07"), kv("i8", 1, b"\xf9"), kv("u16", 2, struct.pack("<H", 7)),
        kv("i16", 3, struct.pack("<h", -7)), kv("i32", 5, struct.pack("<i", -7)),
        kv("f32", 6, struct.pack("<f", 1e-6)), kv("bool", 7, b"\x01"),
        kv("u64", 10, struct.pack("<Q", 7)), kv("i64", 11, struct.pack("<q", -7)),
        kv("f64", 12, struct.pack("<d", 0.5)),
        kv("qwen2vl.rope.dimension_sections", 9, struct.pack("<IQ", 5, 4) +
           struct.pack("<4i", 16, 24, 24, 0)),
        kv("tokenizer.ggml.tokens", 9, struct.pack("<IQ", 8, 3) + s("a") + s("bc") + s("")),
    ]
    if dup:
        kvs.append(kv("u8", 0, b"\x01"))
    if nested:
        kvs.append(kv("nest", 9, struct.pack("<IQ", 9, 1) + struct.pack("<IQ", 0, 1) + b"\x00"))
    if tensors is None:  # name, dims (ggml order), type, bytes
        tensors = [("a.weight", [32, 2], 0, 256), ("b.weight", [32, 2], 1, 128),
                   ("c.weight", [32, 2], 30, 128), ("d.weight", [64, 2], 8, 136),
                   ("e.weight", [32, 3], 2, 54)]
    infos, off, offs = b"", 0, []
    for name, dims, t, nb in tensors:
        offs.append(off)
        infos += s(name) + struct.pack("<I", len(dims)) + b"".join(
            struct.pack("<Q", d) for d in dims) + struct.pack("<IQ", t, off)
        off += (nb + align - 1) // align * align
    body = b"".join(kvs) + kvs_extra
    head = b"GGUF" + struct.pack("<IQQ", version, len(tensors), len(kvs) + n_kv_extra)
    out = head + body + infos
    out += b"\x00" * ((-len(out)) % align)
    for (_, _, _, nb), o in zip(tensors, offs):
        out += bytes((i * 37 + 11) & 0xFF for i in range(nb))
        out += b"\x00" * ((-nb) % align)
    return out


def main():
    os.makedirs(OUT, exist_ok=True)
    good = build()
    seeds = {
        "valid.gguf": good,
        "valid_v2_align32.gguf": build(align=32, version=2),
        "truncated_header.gguf": good[:40],
        "truncated_data.gguf": good[:-100],
        "huge_counts.gguf": good[:8] + struct.pack("<QQ", 2**63, 2**62) + good[24:],
        "nested_array.gguf": build(nested=True),
        "bad_alignment.gguf": build(align=48),
        "duplicate_key.gguf": build(dup=True),
        "overlap.gguf": build(tensors=[("a", [32], 0, 128), ("b", [32], 0, 128)])
        .replace(struct.pack("<IQ", 0, 128), struct.pack("<IQ", 0, 64)),
        "unknown_type.gguf": build(tensors=[("a", [256], 23, 0)]),
        "q8_partial_block.gguf": build(tensors=[("a", [33, 1], 8, 34)]),
    }
    for name, data in seeds.items():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
