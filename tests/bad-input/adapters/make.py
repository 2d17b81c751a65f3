#!/usr/bin/env python3
"""Writes the broken PEFT adapter folders of the bad-input corpus (tests/bad-input/adapters/).

`valid/` is a LoRA adapter (r=2 on query/value, and the classifier) for the tiny classifier
tests/fixtures/model/tiny-cls, with seeded values; every other case is a copy of it with one thing
wrong. The test runs `savant predict --model tiny-cls --adapter <case>` on each, expecting the
error in expected.txt (and success on `valid`). Deterministic: rerun it and git shows no change.

    python3 tests/bad-input/adapters/make.py
"""
import json
import random
import shutil
import struct
from pathlib import Path

HERE = Path(__file__).resolve().parent
MODEL = HERE.parent.parent / "fixtures" / "model" / "tiny-cls"
P = "base_model.model."


def tensors(hidden=32, r=2, labels=3, layers=2, targets=("query", "value")):
    rng = random.Random(7)
    out = {}
    for layer in range(layers):
        for t in targets:
            name = f"{P}bert.encoder.layer.{layer}.attention.self.{t}"
            out[f"{name}.lora_A.weight"] = ([r, hidden], [rng.uniform(-0.1, 0.1) for _ in range(r * hidden)])
            out[f"{name}.lora_B.weight"] = ([hidden, r], [rng.uniform(-0.1, 0.1) for _ in range(hidden * r)])
    out[f"{P}classifier.bias"] = ([labels], [0.0] * labels)
    out[f"{P}classifier.weight"] = ([labels, hidden], [rng.uniform(-0.1, 0.1) for _ in range(labels * hidden)])
    return out


def safetensors(ts, dtype="F32"):
    header, data = {"__metadata__": {"format": "pt"}}, b""
    for name in sorted(ts):
        shape, values = ts[name]
        raw = struct.pack(f"<{len(values)}f", *values)
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + data


def adapter_config(**changes):
    c = {
        "base_model_name_or_path": "tiny-cls",
        "bias": "none",
        "fan_in_fan_out": False,
        "inference_mode": True,
        "lora_alpha": 16.0,
        "lora_dropout": 0.1,
        "modules_to_save": ["classifier"],
        "peft_type": "LORA",
        "r": 2,
        "target_modules": ["query", "value"],
        "task_type": "SEQ_CLS",
        "use_dora": False,
        "use_rslora": False,
    }
    for k, v in changes.items():
        if v is None:
            c.pop(k, None)
        else:
            c[k] = v
    return json.dumps(c, indent=2).encode()


config = (MODEL / "config.json").read_bytes()
valid = {"adapter_config.json": adapter_config(), "adapter_model.safetensors": safetensors(tensors()), "config.json": config}
cases = {"valid": valid}


def case(name, **files):
    cases[name] = {**valid, **{k.replace("__", "."): v for k, v in files.items()}}


# Trained for another base model (hidden 64, three layers), and other mismatches.
case("another_base_model", adapter_model__safetensors=safetensors(tensors(hidden=64, layers=3)))
case("rank_disagrees", adapter_model__safetensors=safetensors(tensors(r=4)))
case("labels_disagree", adapter_model__safetensors=safetensors(tensors(labels=5)))
case("targets_absent_from_model", adapter_config__json=adapter_config(target_modules=["c_attn"]))
case("weights_for_other_targets", adapter_model__safetensors=safetensors(tensors(targets=("key",))))
case("int_weights", adapter_model__safetensors=safetensors(tensors()).replace(b'"F32"', b'"I32"'))
case("nan_weights", adapter_model__safetensors=safetensors({**tensors(), f"{P}classifier.bias": ([3], [float("nan"), 0.0, 0.0])}))
case("weights_truncated", adapter_model__safetensors=safetensors(tensors())[:-100])
case("weights_empty", adapter_model__safetensors=b"")
case("config_not_json", adapter_config__json=b"{'r': 2}")
case("config_rank_zero", adapter_config__json=adapter_config(r=0))
case("config_rank_negative", adapter_config__json=adapter_config(r=-2))
case("config_rank_absurd", adapter_config__json=adapter_config(r=10**9))
case("config_alpha_text", adapter_config__json=adapter_config(lora_alpha="sixteen"))
case("config_not_lora", adapter_config__json=adapter_config(peft_type="PREFIX_TUNING"))
case("config_dora", adapter_config__json=adapter_config(use_dora=True))
case("config_missing_r", adapter_config__json=adapter_config(r=None))
cases["config_absent"] = {k: v for k, v in valid.items() if k != "adapter_config.json"}
cases["weights_absent"] = {k: v for k, v in valid.items() if k != "adapter_model.safetensors"}

for p in HERE.iterdir():
    if p.is_dir():
        shutil.rmtree(p)
for name, files in cases.items():
    d = HERE / name
    d.mkdir()
    for f, content in files.items():
        (d / f).write_bytes(content)
print(f"{len(cases)} folders in {HERE}")
