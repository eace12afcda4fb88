#!/usr/bin/python3
"""Golden-data generator for tornado-lora (LoRALinear, NF4, QLoRA on the JVM).

Writes small safetensors fixtures that the Java tests compare against:

  lora_<case>.safetensors   LoRALinear forward/backward (torchtune semantics):
      weight [out,in], bias [out] (optional), lora_a.weight [rank,in],
      lora_b.weight [out,rank], x [...,in], dy [...,out], mask [...,in]
      (only when dropout > 0; 0/1 keep mask), y [...,out], dx [...,in],
      lora_a.weight.grad, lora_b.weight.grad.
      y = x W^T + b + (alpha/rank) * (drop(x) A^T) B^T, drop(x) = x*mask/(1-p),
      L = sum(y * dy); W and b are frozen.  Computed by autograd in float64 from
      the stored float32 inputs, stored as F32.
      __metadata__: alpha, rank, dropout, use_bias, description.
  nf4_<case>.safetensors    NF4 quantization in torchao's to_nf4 layout:
      weight [rows,cols] F32 (input), weight.quantized_data U8 [numel/2],
      weight.quantized_scalers I8 [n_blocks], weight.quantization_factor F32
      [n_scaler_blocks], weight.scaler_mean F32 [], weight.dequantized F32.
      __metadata__: block_size, scaler_block_size, description.
  qlora_<case>.safetensors  LoRA on an NF4 base: as lora_* but the base is the
      NF4 record (weight.quantized_* ...) plus weight.dequantized (no `weight`);
      y/dx/grads use the dequantized weight.

NF4 reference (independent implementation, see to_nf4_reference):
  s_b = max|w| per block; mu = mean(s) (torch float32 mean); per scaler block
  qf = 256 / (2 * max|s - mu|); q = clamp(round_half_even((s - mu) * qf),
  -128, 127); code = first argmin_i |w/s_b - NF4[i]| in float32; blocks with
  s_b == 0 get code 7 (0.0) everywhere (deviation: torchao produces NaN-driven
  codes there); bytes = code[2i] << 4 | code[2i+1]; dequantized =
  NF4[code] * (q / qf + mu), all float32.

Run (needs only torch; uses no torchtune/torchao/safetensors):
  /usr/bin/python3 scripts/golden.py [--out src/core/src/test/resources/golden]
Relative --out paths are resolved against the repository root.  Every file is
re-read with the reader below and checked after writing.
"""
import argparse
import json
import os
import struct
import sys
import tempfile
import zlib
from pathlib import Path

import torch

REPO_ROOT = Path(__file__).resolve().parent.parent

# ----------------------------------------------------------------------------
# Minimal safetensors writer / reader
# ----------------------------------------------------------------------------
DTYPES = {  # safetensors name -> (torch dtype, bytes per element)
    "F32": (torch.float32, 4), "F16": (torch.float16, 2), "BF16": (torch.bfloat16, 2),
    "U8": (torch.uint8, 1), "I8": (torch.int8, 1), "I32": (torch.int32, 4),
    "I64": (torch.int64, 8),
}
TORCH_TO_ST = {dt: name for name, (dt, _) in DTYPES.items()}
assert sys.byteorder == "little", "raw tensor bytes are written in native (little-endian) order"


def _tensor_bytes(t):
    t = t.detach().cpu().contiguous()
    if t.dtype == torch.bfloat16:  # numpy has no bfloat16: reinterpret as int16
        t = t.view(torch.int16)
    return t.numpy().tobytes()


def save_safetensors(path, tensors, metadata=None):
    """Write {name: tensor} (in insertion order) and optional {str: str} metadata atomically."""
    header, chunks, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    for name, t in tensors.items():
        if t.dtype not in TORCH_TO_ST:
            raise TypeError(f"{name}: unsupported dtype {t.dtype}")
        raw = _tensor_bytes(t)
        header[name] = {"dtype": TORCH_TO_ST[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    hdr = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hdr += b" " * (-len(hdr) % 8)  # pad with spaces to a multiple of 8
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(struct.pack("<Q", len(hdr)))
            f.write(hdr)
            for raw in chunks:
                f.write(raw)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def load_safetensors(path):
    """Return ({name: tensor} in data order, metadata dict); validates the layout strictly."""
    blob = Path(path).read_bytes()
    (n,) = struct.unpack("<Q", blob[:8])
    if 8 + n > len(blob):
        raise ValueError(f"{path}: header length {n} exceeds file size")
    header = json.loads(blob[8:8 + n].decode("utf-8"))
    data = blob[8 + n:]
    metadata = header.pop("__metadata__", {}) or {}
    entries = sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0])
    tensors, expected = {}, 0
    for name, info in entries:
        dtype, size = DTYPES[info["dtype"]]
        shape = [int(d) for d in info["shape"]]
        begin, end = info["data_offsets"]
        numel = 1
        for d in shape:
            numel *= d
        if begin != expected or end - begin != numel * size:
            raise ValueError(f"{path}: bad data_offsets for {name}: {info}")
        expected = end
        if numel == 0:
            tensors[name] = torch.empty(shape, dtype=dtype)
            continue
        raw = bytearray(data[begin:end])
        if dtype == torch.bfloat16:
            t = torch.frombuffer(raw, dtype=torch.int16).view(torch.bfloat16)
        else:
            t = torch.frombuffer(raw, dtype=dtype)
        tensors[name] = t.reshape(shape)
    if expected != len(data):
        raise ValueError(f"{path}: {len(data) - expected} trailing bytes in data section")
    return tensors, metadata


# ----------------------------------------------------------------------------
# NF4 reference (torchao to_nf4 layout)
# ----------------------------------------------------------------------------
NF4_CODEBOOK = torch.tensor([
    -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453,
    -0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0.0,
    0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
    0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0], dtype=torch.float32)
ZERO_CODE = 7  # index of 0.0 in the codebook


def _check_nf4_sizes(numel, block_size, scaler_block_size):
    if numel % 2 or numel % block_size or (numel // block_size) % scaler_block_size:
        raise ValueError(f"numel {numel} incompatible with block_size {block_size}, "
                         f"scaler_block_size {scaler_block_size}")


def nf4_codes(w, block_size):
    """Per-element codebook index (int64, flat) and per-block absmax s (float32)."""
    blocks = w.float().reshape(-1, block_size)
    s = blocks.abs().amax(dim=1)
    v = blocks / s.unsqueeze(1)                                   # float32 division
    dist = (v.unsqueeze(-1) - NF4_CODEBOOK).abs()                 # float32
    codes = dist.argmin(dim=-1)                                   # first index on ties
    codes[s == 0] = ZERO_CODE                                     # documented deviation
    return codes.reshape(-1), s


def to_nf4_reference(w, block_size=64, scaler_block_size=256):
    """Quantize w to NF4; returns the torchao-style record (plus codes for checks)."""
    _check_nf4_sizes(w.numel(), block_size, scaler_block_size)
    codes, s = nf4_codes(w, block_size)
    mu = s.mean()                                                 # torch float32 mean
    centered = (s - mu).reshape(-1, scaler_block_size)
    qf = 256 / (2 * centered.abs().amax(dim=1))                   # float32
    q = (centered * qf.unsqueeze(1)).round().clamp(-128, 127).to(torch.int8).reshape(-1)
    packed = ((codes[0::2] << 4) | codes[1::2]).to(torch.uint8)
    return {"quantized_data": packed, "quantized_scalers": q,
            "quantization_factor": qf, "scaler_mean": mu, "codes": codes}


def dequantize_nf4_reference(quantized_data, quantized_scalers, quantization_factor,
                             scaler_mean, shape, block_size=64, scaler_block_size=256):
    """Inverse of to_nf4_reference: NF4[code] * (q / qf + mu), float32."""
    numel = quantized_data.numel() * 2
    _check_nf4_sizes(numel, block_size, scaler_block_size)
    data = quantized_data.to(torch.int64)
    codes = torch.stack([data >> 4, data & 0xF], dim=1).reshape(-1)
    scalers = (quantized_scalers.float().reshape(-1, scaler_block_size)
               / quantization_factor.unsqueeze(1) + scaler_mean).reshape(-1)
    values = NF4_CODEBOOK[codes].reshape(-1, block_size) * scalers.unsqueeze(1)
    return values.reshape(shape)


def nf4_record(prefix, w, block_size, scaler_block_size):
    """Tensors for a safetensors file: prefix.quantized_* ... prefix.dequantized."""
    r = to_nf4_reference(w, block_size, scaler_block_size)
    deq = dequantize_nf4_reference(r["quantized_data"], r["quantized_scalers"],
                                   r["quantization_factor"], r["scaler_mean"], w.shape,
                                   block_size, scaler_block_size)
    return {f"{prefix}.quantized_data": r["quantized_data"],
            f"{prefix}.quantized_scalers": r["quantized_scalers"],
            f"{prefix}.quantization_factor": r["quantization_factor"],
            f"{prefix}.scaler_mean": r["scaler_mean"],
            f"{prefix}.dequantized": deq}


def nf4_alternative_check(w, block_size):
    """Compare argmin codes with bucketize on float64 midpoints; return counts.

    Rounding of the two float32 distances is monotone, so the formulations can only
    disagree where float32 makes the two distances exactly equal (a tie)."""
    codes, s = nf4_codes(w, block_size)
    v = (w.float().reshape(-1, block_size) / s.unsqueeze(1)).reshape(-1)
    cb = NF4_CODEBOOK.double()
    alt = torch.bucketize(v.double(), (cb[:-1] + cb[1:]) / 2, right=False)
    alt[(s == 0).repeat_interleave(block_size)] = ZERO_CODE
    dist = (v.unsqueeze(-1) - NF4_CODEBOOK).abs()
    ties = ((dist == dist.min(dim=-1, keepdim=True).values).sum(-1) > 1)
    ties &= ~(s == 0).repeat_interleave(block_size)
    mism = codes != alt
    # at a float32 tie argmin must have picked the lower of the two nearest entries
    first = (dist == dist.min(dim=-1, keepdim=True).values).int().argmax(-1)
    assert torch.equal(codes[ties], first[ties])
    return {"elements": w.numel(), "ties": int(ties.sum()), "mismatches": int(mism.sum()),
            "mismatches_not_at_tie": int((mism & ~ties).sum())}


def nf4_tie_values():
    """Float32 values v in [-1, 1] with |v - NF4[i]| == |v - NF4[i+1]| exactly in float32.

    Candidates are the float32 values nearest to each real midpoint and their two
    neighbours.  All these subtractions are exact (Sterbenz), so only the 6 pairs
    whose real midpoint is representable in float32 yield ties."""
    cb, ties = NF4_CODEBOOK, []
    for i in range(15):
        m = ((cb[i].double() + cb[i + 1].double()) / 2).float()
        for c in (torch.nextafter(m, cb[i]), m, torch.nextafter(m, cb[i + 1])):
            if (c - cb[i]).abs() == (c - cb[i + 1]).abs() and float(c) not in ties:
                ties.append(float(c))
    return torch.tensor(ties, dtype=torch.float32)


def make_tie_tensor(rows, cols, block_size):
    """Blocks whose element 0 is +/-scale (so s_b = scale) and whose next half is
    tie_value * scale; the rest is U(-1,1) * scale.

    Even blocks: scale = 2^k, k = -6..3, so w / s_b reproduces the tie value exactly.
    Odd blocks: a random float32 scale; a slot gets fl(tie * scale) (or a float32
    neighbour of it) only if fl(w / scale) == tie exactly, else it keeps its random
    value -- this also exercises the float32 division w / s_b."""
    ties = nf4_tie_values()
    w = (torch.rand(rows * cols) * 2 - 1).reshape(-1, block_size)
    odd_scales = torch.rand(w.shape[0]) * 10 + 0.01
    for b in range(w.shape[0]):
        scale = torch.tensor(2.0 ** ((b // 2) % 10 - 6)) if b % 2 == 0 else odd_scales[b]
        w[b] *= scale
        w[b, 0] = scale if b % 4 < 2 else -scale
        for j in range(1, block_size // 2):
            tie = ties[(b + j) % len(ties)]
            cand = (tie * scale).float()
            for c in (cand, torch.nextafter(cand, -cand), torch.nextafter(cand, 2 * cand)):
                if c / scale == tie:
                    w[b, j] = c
                    break
    return w.reshape(rows, cols), len(ties)


def make_scaler_tie_tensor(rows, cols, block_size):
    """Block absmaxes s_b = 2 +/- d in symmetric pairs (d = 1 for the first pair,
    else (x + 0.5) / 128, x = 0..126), so mu = 2 exactly (all partial sums are exact
    in float32), A = 1, qf = 128 and (s_b - mu) * qf = +/-(x + 0.5): every
    scaler but two is an exact .5 case for round-half-even (needs one scaler block)."""
    n_blocks = rows * cols // block_size
    assert n_blocks % 2 == 0 and n_blocks <= 256
    d = torch.tensor([1.0] + [((p - 1) % 127 + 0.5) / 128 for p in range(1, n_blocks // 2)])
    s = torch.stack([2 + d, 2 - d], dim=1).reshape(-1)
    w = (torch.rand(n_blocks, block_size) * 2 - 1) * 0.99 * s.unsqueeze(1)
    pos = torch.randint(0, block_size, (n_blocks,))
    sign = torch.where(torch.rand(n_blocks) < 0.5, -1.0, 1.0)
    w[torch.arange(n_blocks), pos] = sign * s
    return w.reshape(rows, cols)


def nf4_scaler_stats(w, block_size, scaler_block_size):
    """Scaler double-quantization details that a reimplementation may trip over."""
    s = w.float().reshape(-1, block_size).abs().amax(dim=1)
    mu = s.mean()
    centered = (s - mu).reshape(-1, scaler_block_size)
    qf = 256 / (2 * centered.abs().amax(dim=1))
    scaled = centered * qf.unsqueeze(1)
    mu_exact = s.double().mean().float()  # correctly rounded mean
    c2 = (s - mu_exact).reshape(-1, scaler_block_size)
    q2 = (c2 * (256 / (2 * c2.abs().amax(dim=1))).unsqueeze(1)).round().clamp(-128, 127)
    q = scaled.round().clamp(-128, 127)
    return {"scaler_half_ties": int((scaled - scaled.floor() == 0.5).sum()),
            "mean_ulps_vs_exact": int(mu.view(torch.int32) - mu_exact.view(torch.int32)),
            "q_changed_with_exact_mean": int((q != q2).sum())}


# ----------------------------------------------------------------------------
# LoRA / QLoRA cases
# ----------------------------------------------------------------------------
#            name             in   out rank alpha bias  leading    dropout
LORA_CASES = [
    ("r1",             64,  96,  1,  1.0, False, [5],       0.0),
    ("r4_bias",        128, 64,  4,  8.0, True,  [2, 3],    0.0),
    ("r16",            96,  160, 16, 32.0, False, [2, 2, 3], 0.0),
    ("r64_bias",       192, 128, 64, 16.0, True, [7],       0.0),
    ("alpha_ne_rank",  64,  64,  8,  3.5, True,  [1, 4],    0.0),
    ("dropout",        128, 96,  4,  16.0, True, [3, 5],    0.25),
    ("dropout_nobias", 64,  128, 16, 16.0, False, [2, 2, 2], 0.5),
    ("tokens1",        320, 256, 32, 64.0, True, [1],       0.0),
    ("big",            320, 320, 8,  16.0, False, [4, 33],  0.1),
]
#            name           in    out  rank alpha bias  leading  dropout block sblock
QLORA_CASES = [
    ("sq256_r16_bias", 256,  256, 16, 32.0, True,  [2, 8], 0.0, 64, 256),
    ("in512_r4",       512,  256, 4,  4.0,  False, [1],    0.0, 64, 256),
    ("out512_r64_dropout", 256, 512, 64, 16.0, False, [3, 4], 0.1, 64, 256),
    ("in1024_r8_bs32", 1024, 128, 8,  16.0, True,  [5],    0.0, 32, 64),
]


def seed_for(name):
    torch.manual_seed(zlib.crc32(name.encode("utf-8")))


def lora_inputs(d_in, d_out, rank, bias, lead, p):
    bound = 1.0 / d_in ** 0.5
    t = {"weight": torch.empty(d_out, d_in).uniform_(-bound, bound)}
    if bias:
        t["bias"] = torch.empty(d_out).uniform_(-bound, bound)
    t["lora_a.weight"] = torch.empty(rank, d_in).uniform_(-bound, bound)
    t["lora_b.weight"] = torch.randn(d_out, rank) * 0.1
    t["x"] = torch.randn(*lead, d_in)
    t["dy"] = torch.randn(*lead, d_out)
    if p > 0:
        t["mask"] = torch.bernoulli(torch.full((*lead, d_in), 1.0 - p))
    return t


def lora_forward_backward(w, bias, a, b, x, dy, mask, alpha, rank, p):
    """Autograd in float64; returns F32 y, dx, dA, dB."""
    x64 = x.double().requires_grad_()
    a64 = a.double().requires_grad_()
    b64 = b.double().requires_grad_()
    xd = x64 * mask.double() / (1.0 - p) if p > 0 else x64
    y = x64 @ w.double().T + (alpha / rank) * ((xd @ a64.T) @ b64.T)
    if bias is not None:
        y = y + bias.double()
    (y * dy.double()).sum().backward()
    return {"y": y.detach().float(), "dx": x64.grad.float(),
            "lora_a.weight.grad": a64.grad.float(), "lora_b.weight.grad": b64.grad.float()}


def check_lora_closed_form(t, w, alpha, rank, p):
    """Independent closed-form forward/backward (no autograd) vs the stored F32 outputs."""
    x, dy, a, b = (t[k].double() for k in ("x", "dy", "lora_a.weight", "lora_b.weight"))
    w, s = w.double(), alpha / rank
    drop = t["mask"].double() / (1 - p) if p > 0 else torch.ones_like(x)
    h = (x * drop) @ a.T
    y = x @ w.T + s * h @ b.T + (t["bias"].double() if "bias" in t else 0)
    dx = dy @ w + s * ((dy @ b) @ a) * drop
    da = s * torch.einsum("...o,or,...i->ri", dy, b, x * drop)
    db = s * torch.einsum("...o,...r->or", dy, h)
    for name, ref in (("y", y), ("dx", dx), ("lora_a.weight.grad", da), ("lora_b.weight.grad", db)):
        torch.testing.assert_close(t[name].double(), ref, rtol=1e-6, atol=1e-6, msg=name)


def lora_metadata(alpha, rank, p, bias, desc):
    return {"alpha": repr(float(alpha)), "rank": str(rank), "dropout": repr(float(p)),
            "use_bias": "true" if bias else "false", "description": desc}


def write_lora(out, name, d_in, d_out, rank, alpha, bias, lead, p):
    seed_for("lora_" + name)
    t = lora_inputs(d_in, d_out, rank, bias, lead, p)
    t.update(lora_forward_backward(t["weight"], t.get("bias"), t["lora_a.weight"],
                                   t["lora_b.weight"], t["x"], t["dy"], t.get("mask"),
                                   alpha, rank, p))
    desc = (f"LoRALinear in={d_in} out={d_out} rank={rank} alpha={alpha} bias={bias} "
            f"x={list(t['x'].shape)} dropout={p}; float64 autograd, L=sum(y*dy)")
    path = out / f"lora_{name}.safetensors"
    save_safetensors(path, t, lora_metadata(alpha, rank, p, bias, desc))
    back, _ = load_safetensors(path)
    check_lora_closed_form(back, back["weight"], alpha, rank, p)
    return path, t


def write_qlora(out, name, d_in, d_out, rank, alpha, bias, lead, p, bs, sbs):
    seed_for("qlora_" + name)
    base = lora_inputs(d_in, d_out, rank, bias, lead, p)
    w = base.pop("weight")
    t = nf4_record("weight", w, bs, sbs)
    t.update(base)
    t.update(lora_forward_backward(t["weight.dequantized"], t.get("bias"), t["lora_a.weight"],
                                   t["lora_b.weight"], t["x"], t["dy"], t.get("mask"),
                                   alpha, rank, p))
    meta = lora_metadata(alpha, rank, p, bias,
                         f"QLoRA: NF4 base (block {bs}, scaler block {sbs}) in={d_in} "
                         f"out={d_out} rank={rank} alpha={alpha} bias={bias} "
                         f"x={list(t['x'].shape)} dropout={p}; y uses weight.dequantized")
    meta.update(block_size=str(bs), scaler_block_size=str(sbs))
    path = out / f"qlora_{name}.safetensors"
    save_safetensors(path, t, meta)
    back, _ = load_safetensors(path)
    check_nf4_record(back, "weight", (d_out, d_in), bs, sbs)
    check_lora_closed_form(back, back["weight.dequantized"], alpha, rank, p)
    return path, t


# ----------------------------------------------------------------------------
# NF4 cases
# ----------------------------------------------------------------------------
def nf4_cases():
    """Yield (name, weight, block_size, scaler_block_size, description)."""
    seed_for("nf4_randn")
    yield "randn_64x256", torch.randn(64, 256), 64, 256, "randn 64x256 (one scaler block)"
    seed_for("nf4_llm")
    yield "llm_64x512", torch.randn(64, 512) * 0.02, 64, 256, "randn*0.02 (LLM-like scale)"
    seed_for("nf4_zero_block")
    w = torch.randn(64, 256)
    w.view(-1)[37 * 64:38 * 64] = 0.0
    yield "zero_block_64x256", w, 64, 256, "randn with block 37 exactly zero (codes 7 there)"
    seed_for("nf4_custom")
    yield "custom_4x4096", torch.randn(4, 4096), 32, 128, "block_size 32, scaler_block_size 128"
    seed_for("nf4_uniform")
    yield "uniform100_16x1024", torch.rand(16, 1024) * 100, 64, 256, \
        "U[0,1)*100: all non-negative (codes 7..15 only)"
    seed_for("nf4_outliers")
    w = torch.randn(128, 256)
    idx = torch.randperm(w.numel())[:16]
    w.view(-1)[idx] *= 50
    yield "outliers_128x256", w, 64, 256, "randn with 16 entries scaled by 50"
    seed_for("nf4_odd_block")
    yield "odd_block_6x10", torch.randn(6, 10), 5, 3, (
        "block_size 5 (odd: bytes 2, 7, ... hold the last code of one block and the first of the "
        "next), scaler_block_size 3")
    seed_for("nf4_scaler_ties")
    yield "scaler_ties_64x256", make_scaler_tie_tensor(64, 256, 64), 64, 256, (
        "block absmax 2 +/- (x+0.5)/128 in pairs: mu = 2, qf = 128, (s - mu) * qf = "
        "+/-(x+0.5), so the int8 scalers exercise round-half-even")
    seed_for("nf4_ties")
    w, n_ties = make_tie_tensor(64, 256, 64)
    yield "ties_64x256", w, 64, 256, (
        f"{n_ties} float32 midpoints v between codebook entries with exactly equal float32 "
        "distances, times 2^k (even blocks) or a random scale with fl(w/s)==v (odd blocks); "
        "argmin takes the first (lower) index")


def check_nf4_record(t, prefix, shape, bs, sbs):
    """Stored dequantized == dequantize(stored record), bit for bit."""
    deq = dequantize_nf4_reference(t[f"{prefix}.quantized_data"], t[f"{prefix}.quantized_scalers"],
                                   t[f"{prefix}.quantization_factor"], t[f"{prefix}.scaler_mean"],
                                   shape, bs, sbs)
    assert torch.equal(deq, t[f"{prefix}.dequantized"]), prefix
    assert t[f"{prefix}.scaler_mean"].shape == torch.Size([])


def write_nf4(out, name, w, bs, sbs, desc):
    t = {"weight": w}
    t.update(nf4_record("weight", w, bs, sbs))
    path = out / f"nf4_{name}.safetensors"
    save_safetensors(path, t, {"block_size": str(bs), "scaler_block_size": str(sbs),
                               "description": desc})
    back, _ = load_safetensors(path)
    check_nf4_record(back, "weight", w.shape, bs, sbs)
    # error bound: |w - deq| <= s_b * (half the largest codebook gap) + scaler error
    s = w.reshape(-1, bs).abs().amax(1)
    s_deq = (back["weight.quantized_scalers"].float().reshape(-1, sbs)
             / back["weight.quantization_factor"].unsqueeze(1) + back["weight.scaler_mean"])
    err = (w - back["weight.dequantized"]).abs().reshape(-1, bs).amax(1)
    bound = s * 0.16 + (s - s_deq.reshape(-1)).abs() + 1e-6
    assert bool((err <= bound).all()), f"{name}: dequantization error too large"
    stats = nf4_alternative_check(w, bs)
    assert stats["mismatches_not_at_tie"] == 0, stats
    stats.update(nf4_scaler_stats(w, bs, sbs))
    return path, stats


# ----------------------------------------------------------------------------
def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="src/core/src/test/resources/golden",
                    help="output directory (relative paths are taken from the repo root)")
    out = Path(ap.parse_args().out)
    out = out if out.is_absolute() else REPO_ROOT / out
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)  # keep float32 reductions independent of the machine's cores

    # safetensors round trip over every supported dtype, including a scalar
    tmp = out / ".roundtrip_selftest.safetensors"
    probe = {name: torch.arange(-3, 3).to(dt).reshape(2, 3) for name, (dt, _) in DTYPES.items()
             if name != "U8"}
    probe["U8"] = torch.arange(250, 256, dtype=torch.uint8)
    probe["scalar"] = torch.tensor(1.5)
    save_safetensors(tmp, probe, {"k": "v"})
    back, meta = load_safetensors(tmp)
    assert meta == {"k": "v"} and all(torch.equal(back[k], v) for k, v in probe.items())
    tmp.unlink()

    written = []
    for case in LORA_CASES:
        written.append(write_lora(out, *case))
    for case in QLORA_CASES:
        written.append(write_qlora(out, *case))
    print("NF4 reference vs bucketize-on-midpoints alternative:")
    for name, w, bs, sbs, desc in nf4_cases():
        path, stats = write_nf4(out, name, w, bs, sbs, desc)
        written.append((path, load_safetensors(path)[0]))
        print(f"  {name:22s} {stats}")

    print("\nfile                                        tensors     bytes")
    total = 0
    for path, tensors in written:
        size = path.stat().st_size
        total += size
        back, _ = load_safetensors(path)  # final round trip: every tensor bit-identical
        assert back.keys() == tensors.keys()
        assert all(torch.equal(back[k], tensors[k]) for k in tensors), path
        print(f"{path.name:44s} {len(tensors):7d} {size:9d}")
    print(f"{len(written)} files, {total} bytes ({total / 2**20:.2f} MiB) in {out}")


if __name__ == "__main__":
    main()
