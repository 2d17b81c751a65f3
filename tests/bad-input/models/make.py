#!/usr/bin/env python3
"""Writes the broken model folders of the bad-input corpus (tests/bad-input/models/<case>/).

Each case holds only the files that differ from the valid tiny classifier
(tests/fixtures/model/tiny-cls); the test copies that folder, lays the case's files over it and
runs `savant predict` on it, expecting the error in expected.txt. A file named `<name>.absent`
removes `<name>` instead. Deterministic: rerun it and git shows no change.

    python3 tests/bad-input/models/make.py
"""
import json
import shutil
import struct
from pathlib import Path

HERE = Path(__file__).resolve().parent
BASE = HERE.parent.parent / "fixtures" / "model" / "tiny-cls"


def safetensors_parts():
    raw = (BASE / "model.safetensors").read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8 : 8 + n])
    return header, raw[8 + n :]


def pack(header, data, length=None):
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h) if length is None else length) + h + data


def config():
    return json.loads((BASE / "config.json").read_text())


def tokenizer():
    return json.loads((BASE / "tokenizer.json").read_text())


cases = {}


def case(name, files):
    cases[name] = files


header, data = safetensors_parts()
W = "bert.embeddings.word_embeddings.weight"

# --- safetensors -----------------------------------------------------------------------------
case("st_empty", {"model.safetensors": b""})
case("st_short", {"model.safetensors": b"\x10\x00\x00"})
case("st_header_claims_1_eib", {"model.safetensors": struct.pack("<Q", 1 << 60) + b"{}"})
case("st_header_past_end", {"model.safetensors": struct.pack("<Q", 4096) + b'{"a":1}'})
case("st_header_not_json", {"model.safetensors": struct.pack("<Q", 16) + b"not json at all!"})
case("st_header_not_utf8", {"model.safetensors": struct.pack("<Q", 8) + b"\xff\xfe{}\xff\xff\xff\xff"})
h = json.loads(json.dumps(header))
h[W]["data_offsets"] = [3584, 10_000_000]
case("st_offsets_past_end", {"model.safetensors": pack(h, data)})
h = json.loads(json.dumps(header))
h[W]["shape"] = [148, 64]
case("st_shape_disagrees_with_offsets", {"model.safetensors": pack(h, data)})
h = json.loads(json.dumps(header))
h[W]["data_offsets"] = [0, 18944]
case("st_offsets_overlap", {"model.safetensors": pack(h, data)})
case("st_truncated_data", {"model.safetensors": pack(header, data[: len(data) // 2])})
h = json.loads(json.dumps(header))
h[W]["dtype"] = "I32"  # the same bytes, read as integers
case("st_dtype_confusion", {"model.safetensors": pack(h, data)})
h = json.loads(json.dumps(header))
h[W]["shape"] = [32, 148]
case("st_transposed_shape", {"model.safetensors": pack(h, data)})

def without(name):
    """The file without tensor `name`: its bytes cut out, the later offsets moved down."""
    start, end = header[name]["data_offsets"]
    h = {k: json.loads(json.dumps(v)) for k, v in header.items() if k != name}
    for k, v in h.items():
        if k != "__metadata__" and v["data_offsets"][0] >= end:
            v["data_offsets"] = [v["data_offsets"][0] - (end - start), v["data_offsets"][1] - (end - start)]
    return pack(h, data[:start] + data[end:])


case("st_missing_tensor", {"model.safetensors": without("bert.encoder.layer.1.attention.self.key.weight")})
nan = bytearray(data)
start, end = header["bert.encoder.layer.0.attention.self.query.weight"]["data_offsets"]
nan[start : start + 16] = struct.pack("<4f", float("nan"), 1.0, float("inf"), 2.0)
case("st_nan_weights", {"model.safetensors": pack(header, bytes(nan))})
case("st_dtype_unknown", {"model.safetensors": pack({**header, W: {**header[W], "dtype": "Q42"}}, data)})
case("st_negative_shape", {"model.safetensors": pack({**header, W: {**header[W], "shape": [-148, 32]}}, data)})
case("weights_absent", {"model.safetensors.absent": b""})

# --- config.json -----------------------------------------------------------------------------
def cfg(**changes):
    c = config()
    for k, v in changes.items():
        if v is None:
            c.pop(k, None)
        else:
            c[k] = v
    return json.dumps(c, indent=2).encode()


case("config_not_json", {"config.json": b"{ this is not json"})
case("config_array", {"config.json": b"[1, 2, 3]"})
case("config_empty", {"config.json": b""})
case("config_negative_hidden", {"config.json": cfg(hidden_size=-32)})
case("config_absurd_hidden", {"config.json": cfg(hidden_size=10**12)})
case("config_zero_heads", {"config.json": cfg(num_attention_heads=0)})
case("config_heads_do_not_divide", {"config.json": cfg(num_attention_heads=5)})
case("config_absurd_layers", {"config.json": cfg(num_hidden_layers=10**9)})
case("config_absurd_positions", {"config.json": cfg(max_position_embeddings=10**12)})
case("config_zero_vocab", {"config.json": cfg(vocab_size=0)})
case("config_vocab_disagrees", {"config.json": cfg(vocab_size=200)})
case("config_missing_hidden", {"config.json": cfg(hidden_size=None)})
case("config_hidden_is_text", {"config.json": cfg(hidden_size="32")})
case("config_gpt2", {"config.json": cfg(model_type="gpt2", architectures=["GPT2LMHeadModel"])})
case("config_unknown_activation", {"config.json": cfg(hidden_act="swishy")})
case("config_labels_disagree", {"config.json": cfg(id2label={"0": "a", "1": "b", "2": "c", "3": "d"}, label2id={"a": 0, "b": 1, "c": 2, "d": 3})})
case("config_larger_than_the_weights", {"config.json": cfg(hidden_size=4096, intermediate_size=16384)})
case("config_absent", {"config.json.absent": b""})

# --- int8 folders (savant quantize) and other quantisations ---------------------------------
INT8 = {"quant_method": "savant-int8", "version": 1, "bits": 8}
case("config_quant_gptq", {"config.json": cfg(quantization_config={"quant_method": "gptq", "bits": 4, "group_size": 128})})
case("config_quant_version_2", {"config.json": cfg(quantization_config={**INT8, "version": 2})})
case("config_quant_no_method", {"config.json": cfg(quantization_config={"bits": 8})})
case("int8_config_over_f32_weights", {"config.json": cfg(quantization_config=INT8)})


def repack(tensors):
    """A safetensors file of `name: (dtype, shape, bytes)`, in name order."""
    h, out = {}, b""
    for name in sorted(tensors):
        dtype, shape, b = tensors[name]
        h[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(out), len(out) + len(b)]}
        out += b
    return pack(h, out)


Q = "bert.encoder.layer.0.attention.self.query.weight"


def int8_query(minus_128=False):
    """The file with layer 0's query projection as savant quantize stores it (I8 + weight_scale)."""
    tensors = {k: (v["dtype"], v["shape"], data[v["data_offsets"][0] : v["data_offsets"][1]]) for k, v in header.items() if k != "__metadata__"}
    _, (d_out, d_in), b = tensors[Q]
    w = struct.unpack(f"<{d_out * d_in}f", b)
    q, scales = [], []
    for o in range(d_out):
        row = w[o * d_in : (o + 1) * d_in]
        s = max(abs(x) for x in row) / 127
        scales.append(s)
        q += [max(-127, min(127, round(x / s))) for x in row]
    if minus_128:
        q[0] = -128
    tensors[Q] = ("I8", [d_out, d_in], struct.pack(f"<{len(q)}b", *q))
    tensors[Q + "_scale"] = ("F32", [d_out], struct.pack(f"<{d_out}f", *scales))
    return repack(tensors)


case("int8_weights_without_quantization_config", {"model.safetensors": int8_query()})
case("int8_weight_minus_128", {"model.safetensors": int8_query(minus_128=True), "config.json": cfg(quantization_config=INT8)})

# --- tokenizer -------------------------------------------------------------------------------
def tok(mutate):
    t = tokenizer()
    mutate(t)
    return json.dumps(t).encode()


def drop_specials(t):
    for s in ("[CLS]", "[SEP]"):
        t["model"]["vocab"].pop(s, None)
    t["added_tokens"] = [a for a in t.get("added_tokens", []) if a["content"] not in ("[CLS]", "[SEP]")]


def big_ids(t):
    t["model"]["vocab"]["zzzz"] = 100_000


case("tokenizer_not_json", {"tokenizer.json": b"not a tokenizer", "vocab.txt.absent": b""})
case("tokenizer_empty", {"tokenizer.json": b"", "vocab.txt.absent": b""})
case("tokenizer_no_cls_sep", {"tokenizer.json": tok(drop_specials), "vocab.txt.absent": b""})
case("tokenizer_ids_past_vocab", {"tokenizer.json": tok(big_ids), "vocab.txt.absent": b""})
case("tokenizer_unknown_model", {"tokenizer.json": tok(lambda t: t["model"].update(type="Magic")), "vocab.txt.absent": b""})
case("tokenizer_absent", {"tokenizer.json.absent": b"", "vocab.txt.absent": b""})
case("vocab_only_empty", {"tokenizer.json.absent": b"", "vocab.txt": b""})

for name in sorted(p.name for p in HERE.iterdir() if p.is_dir()):
    if name not in cases:
        shutil.rmtree(HERE / name)
for name, files in cases.items():
    d = HERE / name
    if d.exists():
        shutil.rmtree(d)
    d.mkdir()
    for f, content in files.items():
        (d / f).write_bytes(content)
print(f"{len(cases)} cases in {HERE}")
