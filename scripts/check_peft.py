#!/usr/bin/python3
"""Checks a `tornado-lora train` output folder from the PyTorch side, without tornado-lora's code.

Reads, with plain torch and this repository's own safetensors parser (scripts/golden.py; no
safetensors/peft/torchtune packages):
  peft/adapter_config.json + peft/adapter_model.safetensors   the adapters in PEFT's layout
  base_model.safetensors    the frozen base (F32 weights or NF4 records, dequantized by the
                            reference in scripts/golden.py) and the architecture metadata
  sample.safetensors        inputs x and the outputs y that Java's trained model produced
rebuilds the model in torch with PEFT's LoRA semantics
  y = x W^T + b + (lora_alpha / r) * (x A^T) B^T     (r, lora_alpha per module from the config,
                                                      rank_pattern / alpha_pattern overriding)
and compares its output on x with Java's y.  Exits 0 when max|y_torch - y_java| / max|y_java|
is within --tolerance (default 1e-5), 1 otherwise (and on any inconsistency in the files).

Usage: /usr/bin/python3 scripts/check_peft.py OUT_DIR [--tolerance 1e-5]
"""
import argparse
import json
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from golden import dequantize_nf4_reference, load_safetensors  # noqa: E402

PEFT_PREFIX = "base_model.model."
ACTIVATIONS = {"silu": F.silu, "relu": F.relu}


def fail(msg):
    print(f"check_peft: FAIL: {msg}")
    sys.exit(1)


def base_weight(base, meta, name, out_dim, in_dim):
    key = f"{name}.weight"
    if key in base:
        return base[key].float()
    if f"{key}.quantized_data" not in base:
        fail(f"base_model.safetensors has neither {key} nor an NF4 record {key}.quantized_data")
    return dequantize_nf4_reference(
        base[f"{key}.quantized_data"], base[f"{key}.quantized_scalers"],
        base[f"{key}.quantization_factor"], base[f"{key}.scaler_mean"], (out_dim, in_dim),
        int(meta["block_size"]), int(meta["scaler_block_size"]))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("--tolerance", type=float, default=1e-5)
    args = ap.parse_args()
    out = args.out_dir

    config = json.loads((out / "peft" / "adapter_config.json").read_text())
    if config.get("peft_type") != "LORA" or config.get("bias") != "none":
        fail(f"adapter_config.json: expected peft_type LORA and bias none, got {config}")
    adapters, _ = load_safetensors(out / "peft" / "adapter_model.safetensors")
    base, meta = load_safetensors(out / "base_model.safetensors")
    sample, _ = load_safetensors(out / "sample.safetensors")
    arch = json.loads(meta["architecture"])

    targets = set(config["target_modules"])
    expected_keys = {f"{PEFT_PREFIX}{m}.lora_{ab}.weight" for m in targets for ab in "AB"}
    if set(adapters) != expected_keys:
        fail(f"adapter keys {sorted(adapters)} != expected {sorted(expected_keys)}")

    x = sample["x"].float()
    h = x
    for entry in arch:
        name, kind = entry["name"], entry["type"]
        if kind in ACTIVATIONS:
            h = ACTIVATIONS[kind](h)
            continue
        w = base_weight(base, meta, name, entry["out_dim"], entry["in_dim"])
        y = h @ w.T
        if f"{name}.bias" in base:
            y = y + base[f"{name}.bias"].float()
        if name in targets:
            r = config.get("rank_pattern", {}).get(name, config["r"])
            alpha = config.get("alpha_pattern", {}).get(name, config["lora_alpha"])
            a = adapters[f"{PEFT_PREFIX}{name}.lora_A.weight"].float()
            b = adapters[f"{PEFT_PREFIX}{name}.lora_B.weight"].float()
            if a.shape != (r, h.shape[-1]) or b.shape != (w.shape[0], r):
                fail(f"{name}: lora_A {tuple(a.shape)} / lora_B {tuple(b.shape)} do not match r={r}, W {tuple(w.shape)}")
            y = y + (alpha / r) * ((h @ a.T) @ b.T)
        h = y

    ref = sample["y"].float()
    if h.shape != ref.shape:
        fail(f"output shape {tuple(h.shape)} != Java's {tuple(ref.shape)}")
    err = ((h - ref).abs().max() / ref.abs().max()).item()
    status = "OK" if err <= args.tolerance else "FAIL"
    print(f"check_peft: {status}: {len(targets)} LoRA modules {sorted(targets)}, x {tuple(x.shape)}; "
          f"max|y_torch - y_java| / max|y_java| = {err:.3e} (tolerance {args.tolerance:g})")
    sys.exit(0 if status == "OK" else 1)


if __name__ == "__main__":
    main()
