#!/usr/bin/python3
"""Golden data for tornado-lora's training pieces, computed by PyTorch.

Writes into src/core/src/test/resources/golden/train/ (safetensors, read by the Java tests):

  optim_<case>.safetensors   an optimizer run over two parameters with fixed gradients:
      p<i>.init, then for every step k = 1..K: p<i>.grad.<k> (the gradient given before
      step k) and p<i>.step.<k> (the parameter after step k).  torch.optim.AdamW / SGD
      with foreach=False.  __metadata__: optimizer, lr, hyper-parameters, steps.
  sched_<case>.safetensors   lr: the learning rate before scheduler step k (k = 0..K) of
      torch.optim.lr_scheduler.LambdaLR with torchtune's cosine-with-warm-up lambda.
  clip_<case>.safetensors    g<i> before, g<i>.clipped after clip_grad_norm_, total_norm.
  loss_mse / loss_ce         pred/target (logits/targets I64, -100 ignored), loss, grad
      (float64 autograd of F.mse_loss / F.cross_entropy, mean reduction).
  seq_<act>.safetensors      a Sequential fc1 (LoRALinear, bias) -> act -> fc2 (LoRALinear):
      fc1.weight, fc1.bias, fc1.lora_a.weight, ..., x, dy, y, dx, and the adapter
      gradients as <key>.grad (float64 autograd, L = sum(y * dy)).
      __metadata__: fc1.alpha, fc2.alpha, activation.
  tt_adapter.safetensors     the adapters of seq_silu alone, torchtune keys (what
      torchtune's get_adapter_state_dict saves): loads into Java's model of seq_silu.
  trainloop.safetensors      a whole training loop: the seq_silu model, inputs x [N,12],
      targets t [N,6], MSE loss, clip_grad_norm_(max 0.5), AdamW(lr 0.02), cosine schedule
      (warm-up 2, total 8); per step k: loss.<k>, lr.<k>, grad_norm.<k>; final adapters as
      final.<key>.  float32 throughout, as a real run.
  merge_dense_in / merge_dense_out   get_merged_lora_ckpt: W += alpha/rank * B @ A, adapter
      keys removed, other tensors unchanged (float32).
  merge_nf4_in / merge_nf4_out      the same with fc1's base stored as an NF4 record:
      out holds fc1.weight = dequantized + alpha/rank * B @ A, and fc1.requantized.* =
      the NF4 record of that merged weight (reference quantizer of golden.py).

Run: /usr/bin/python3 scripts/golden_train.py [--out DIR]   (needs torch only)
"""
import argparse
import json
import math
import sys
import zlib
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from golden import load_safetensors, save_safetensors, to_nf4_reference, dequantize_nf4_reference  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
NF4_PARTS = ("quantized_data", "quantized_scalers", "quantization_factor", "scaler_mean")


def seed_for(name):
    torch.manual_seed(zlib.crc32(name.encode("utf-8")))


def save(out, name, tensors, metadata=None):
    path = out / f"{name}.safetensors"
    save_safetensors(path, tensors, metadata)
    back, meta = load_safetensors(path)
    assert back.keys() == tensors.keys() and all(torch.equal(back[k], tensors[k]) for k in tensors), path
    print(f"  {path.name:32s} {len(tensors):4d} tensors")


# ----------------------------------------------------------------------------
# Optimizers, schedules, clipping, losses
# ----------------------------------------------------------------------------
OPTIM_CASES = [  # name, class, kwargs
    ("adamw_default", "adamw", dict(lr=1e-3)),
    ("adamw_custom", "adamw", dict(lr=0.05, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1)),
    ("adamw_no_decay", "adamw", dict(lr=0.01, weight_decay=0.0)),
    ("sgd_plain", "sgd", dict(lr=0.1)),
    ("sgd_momentum", "sgd", dict(lr=0.05, momentum=0.9)),
    ("sgd_dampening_decay", "sgd", dict(lr=0.05, momentum=0.8, dampening=0.3, weight_decay=0.01)),
    ("sgd_nesterov", "sgd", dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.001)),
]
OPTIM_STEPS = 6


def write_optim(out, name, kind, kwargs):
    seed_for("optim_" + name)
    params = [torch.randn(4, 10).requires_grad_(), torch.randn(10, 3).requires_grad_()]
    t = {f"p{i}.init": p.detach().clone() for i, p in enumerate(params)}
    if kind == "adamw":
        opt = torch.optim.AdamW(params, foreach=False, **kwargs)
    else:
        opt = torch.optim.SGD(params, foreach=False, **kwargs)
    for k in range(1, OPTIM_STEPS + 1):
        for i, p in enumerate(params):
            g = torch.randn_like(p) * (0.1 if i == 0 else 2.0)
            p.grad = g.clone()
            t[f"p{i}.grad.{k}"] = g
        opt.step()
        for i, p in enumerate(params):
            t[f"p{i}.step.{k}"] = p.detach().clone()
    g = opt.param_groups[0]
    meta = {"optimizer": kind, "steps": str(OPTIM_STEPS), "lr": repr(g["lr"]),
            "weight_decay": repr(g["weight_decay"])}
    if kind == "adamw":
        meta.update(beta1=repr(g["betas"][0]), beta2=repr(g["betas"][1]), eps=repr(g["eps"]))
    else:
        meta.update(momentum=repr(g["momentum"]), dampening=repr(g["dampening"]),
                    nesterov=str(g["nesterov"]).lower())
    save(out, "optim_" + name, t, meta)


def cosine_lambda(warmup, total, cycles):
    """torchtune's get_cosine_schedule_with_warmup lambda, written from its documented formula."""
    def f(step):
        if step < warmup:
            return step / max(1, warmup)
        progress = (step - warmup) / max(1, total - warmup)
        return max(0.0, 0.5 * (1.0 + math.cos(math.pi * cycles * 2.0 * progress)))
    return f


SCHED_CASES = [  # name, base lr, warmup, total, cycles, scheduler steps
    ("cosine_warmup", 0.1, 3, 10, 0.5, 14),
    ("cosine_no_warmup_1cycle", 2e-4, 0, 8, 1.0, 10),
    ("cosine_all_warmup", 1.0, 5, 5, 0.5, 7),
]


def write_sched(out, name, lr, warmup, total, cycles, steps):
    p = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([p], lr=lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, cosine_lambda(warmup, total, cycles))
    lrs = [opt.param_groups[0]["lr"]]
    for _ in range(steps):
        opt.step()
        sched.step()
        lrs.append(opt.param_groups[0]["lr"])
    save(out, "sched_" + name, {"lr": torch.tensor(lrs, dtype=torch.float64).float()},
         {"base_lr": repr(lr), "warmup": str(warmup), "total": str(total), "cycles": repr(cycles),
          "steps": str(steps)})


def write_clip(out, name, max_norm):
    seed_for("clip_" + name)
    grads = [torch.randn(5, 7), torch.randn(3) * 4, torch.randn(2, 2, 2) * 0.1]
    params = [torch.zeros_like(g, requires_grad=True) for g in grads]
    for p, g in zip(params, grads):
        p.grad = g.clone()
    total = torch.nn.utils.clip_grad_norm_(params, max_norm)
    t = {f"g{i}": g for i, g in enumerate(grads)}
    t.update({f"g{i}.clipped": p.grad for i, p in enumerate(params)})
    t["total_norm"] = total.reshape(())
    save(out, "clip_" + name, t, {"max_norm": repr(max_norm)})


def write_losses(out):
    seed_for("loss_mse")
    pred, target = torch.randn(3, 5), torch.randn(3, 5)
    p64 = pred.double().requires_grad_()
    loss = F.mse_loss(p64, target.double())
    loss.backward()
    save(out, "loss_mse", {"pred": pred, "target": target, "loss": loss.detach().float().reshape(()),
                           "grad": p64.grad.float()})

    seed_for("loss_ce")
    logits = torch.randn(2, 4, 7) * 3
    targets = torch.randint(0, 7, (2, 4))
    targets[1, 2] = -100  # torch's default ignore_index
    z64 = logits.double().requires_grad_()
    loss = F.cross_entropy(z64.reshape(-1, 7), targets.reshape(-1))
    loss.backward()
    save(out, "loss_ce", {"logits": logits, "targets": targets, "loss": loss.detach().float().reshape(()),
                          "grad": z64.grad.float()})


# ----------------------------------------------------------------------------
# Sequential of LoRA layers
# ----------------------------------------------------------------------------
SEQ = [("fc1", 12, 16, 4, 8.0, True), ("fc2", 16, 6, 2, 3.0, False)]  # name, in, out, rank, alpha, bias
ACTS = {"relu": F.relu, "silu": F.silu}


def seq_params(tag):
    seed_for("seq_" + tag)
    t = {}
    for name, d_in, d_out, rank, _, bias in SEQ:
        bound = 1.0 / d_in ** 0.5
        t[f"{name}.weight"] = torch.empty(d_out, d_in).uniform_(-bound, bound)
        if bias:
            t[f"{name}.bias"] = torch.empty(d_out).uniform_(-bound, bound)
        t[f"{name}.lora_a.weight"] = torch.empty(rank, d_in).uniform_(-bound, bound)
        t[f"{name}.lora_b.weight"] = torch.randn(d_out, rank) * 0.3
    return t


def seq_forward(t, x, act, adapters):
    """The chain fc1 -> act -> fc2; `adapters` maps key -> tensor used for lora_a/lora_b."""
    h = x
    for i, (name, _, _, rank, alpha, bias) in enumerate(SEQ):
        y = h @ t[f"{name}.weight"].T.to(h.dtype)
        if bias:
            y = y + t[f"{name}.bias"].to(h.dtype)
        a, b = adapters[f"{name}.lora_a.weight"], adapters[f"{name}.lora_b.weight"]
        h = y + (alpha / rank) * ((h @ a.T) @ b.T)
        if i < len(SEQ) - 1:
            h = act(h)
    return h


def seq_metadata(act):
    m = {"activation": act}
    for name, _, _, rank, alpha, bias in SEQ:
        m[f"{name}.alpha"] = repr(alpha)
    return m


def write_seq(out, act):
    t = seq_params(act)
    x = torch.randn(2, 3, 12)
    dy = torch.randn(2, 3, 6)
    x64 = x.double().requires_grad_()
    ad = {k: v.double().requires_grad_() for k, v in t.items() if "lora" in k}
    y = seq_forward({k: v.double() for k, v in t.items()}, x64, ACTS[act], ad)
    (y * dy.double()).sum().backward()
    t.update(x=x, dy=dy, y=y.detach().float(), dx=x64.grad.float())
    t.update({f"{k}.grad": v.grad.float() for k, v in ad.items()})
    save(out, "seq_" + act, t, seq_metadata(act))
    return t


def write_tt_adapter(out, seq_t):
    adapter = {k: v for k, v in seq_t.items() if "lora" in k and not k.endswith(".grad")}
    save(out, "tt_adapter", adapter)


def write_trainloop(out):
    t = seq_params("trainloop")
    seed_for("trainloop_data")
    x, target = torch.randn(10, 12), torch.randn(10, 6)
    t.update(x=x, t=target)
    ad = {k: v.clone().requires_grad_() for k, v in t.items() if "lora" in k}
    params = list(ad.values())
    opt = torch.optim.AdamW(params, lr=0.02, foreach=False)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, cosine_lambda(2, 8, 0.5))
    for k in range(1, 9):
        lr = opt.param_groups[0]["lr"]
        opt.zero_grad()
        loss = F.mse_loss(seq_forward(t, x, F.silu, ad), target)
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(params, 0.5)
        opt.step()
        sched.step()
        t[f"loss.{k}"] = loss.detach().reshape(())
        t[f"lr.{k}"] = torch.tensor(lr, dtype=torch.float32)
        t[f"grad_norm.{k}"] = norm.detach().reshape(())
    t.update({f"final.{k}": v.detach().clone() for k, v in ad.items()})
    meta = seq_metadata("silu")
    meta.update(lr="0.02", max_norm="0.5", warmup="2", total="8", steps="8")
    save(out, "trainloop", t, meta)


# ----------------------------------------------------------------------------
# Merge (get_merged_lora_ckpt semantics)
# ----------------------------------------------------------------------------
def merged_lora(state, rank, alpha):
    """W += alpha/rank * B @ A for every module with lora_a/lora_b; adapter keys removed."""
    out = dict(state)
    modules = {k[: -len(".lora_a.weight")] for k in state if k.endswith(".lora_a.weight")}
    for m in sorted(modules):
        a, b = out.pop(f"{m}.lora_a.weight"), out.pop(f"{m}.lora_b.weight")
        out[f"{m}.weight"] = out[f"{m}.weight"] + (alpha / rank) * b @ a
    return out


def merge_inputs(tag):
    seed_for("merge_" + tag)
    return {
        "fc1.weight": torch.randn(32, 64) * 0.05,
        "fc1.bias": torch.randn(32),
        "fc1.lora_a.weight": torch.randn(4, 64) * 0.1,
        "fc1.lora_b.weight": torch.randn(32, 4) * 0.1,
        "fc2.weight": torch.randn(16, 32) * 0.05,
        "fc2.lora_a.weight": torch.randn(4, 32) * 0.1,
        "fc2.lora_b.weight": torch.randn(16, 4) * 0.1,
        "norm.scale": torch.randn(16),
    }


def write_merge(out):
    rank, alpha = 4, 6.0
    meta = {"alpha": repr(alpha)}
    dense = merge_inputs("dense")
    save(out, "merge_dense_in", dense, meta)
    save(out, "merge_dense_out", merged_lora(dense, rank, alpha))

    state = merge_inputs("nf4")
    w = state.pop("fc1.weight")
    bs, sbs = 64, 32  # 32x64 = 32 blocks of 64: one scaler block of 32
    rec = to_nf4_reference(w, bs, sbs)
    deq = dequantize_nf4_reference(rec["quantized_data"], rec["quantized_scalers"],
                                   rec["quantization_factor"], rec["scaler_mean"], w.shape, bs, sbs)
    nf4_in = {f"fc1.weight.{p}": rec[p] for p in NF4_PARTS}
    nf4_in.update(state)
    nf4_meta = dict(meta, block_size=str(bs), scaler_block_size=str(sbs))
    nf4_meta["fc1.weight.shape"] = "[32, 64]"
    save(out, "merge_nf4_in", nf4_in, nf4_meta)
    merged = merged_lora(dict(state, **{"fc1.weight": deq}), rank, alpha)
    req = to_nf4_reference(merged["fc1.weight"], bs, sbs)
    merged.update({f"fc1.requantized.{p}": req[p] for p in NF4_PARTS})
    save(out, "merge_nf4_out", merged)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="src/core/src/test/resources/golden/train")
    out = Path(ap.parse_args().out)
    out = out if out.is_absolute() else REPO_ROOT / out
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    for case in OPTIM_CASES:
        write_optim(out, *case)
    for case in SCHED_CASES:
        write_sched(out, *case)
    write_clip(out, "active", 1.0)
    write_clip(out, "inactive", 100.0)
    write_losses(out)
    seq = write_seq(out, "silu")
    write_seq(out, "relu")
    write_tt_adapter(out, seq)
    write_trainloop(out)
    write_merge(out)
    print(f"written to {out}")


if __name__ == "__main__":
    main()
