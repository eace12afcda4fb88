#!/usr/bin/python3
"""Memory of fine-tuning real-size architectures (issue 20): tornado-lora's `finetune` beside transformers + PEFT.

    python3 benchmarks/memory_bench.py [--models DIR] [--steps N] [--threads N] [--sides jvm,torch]
                                       [--xmx CONFIG=LIST]... [--bisect] [--json FILE] [CONFIG ...]

CONFIG is MODEL-BASE[-ckpt]: MODEL tinyllama (TinyLlama-1.1B's architecture) or llama32 (Llama-3.2-1B's: vocab
128256, tied embeddings, llama3 RoPE), BASE qlora (NF4 projections) or fp32 (fp32 LoRA on the BF16 weights kept
16-bit), -ckpt with activation checkpointing; default: all six of tinyllama-qlora, llama32-qlora, tinyllama-fp32,
each with and without -ckpt. Each runs batch 1 × 512 tokens (the rows of DIR/MODEL/tokens.safetensors), LoRA r 8,
alpha 16 on q_proj, v_proj, AdamW (lr 3e-4, weight decay 0.01), gradient clipping 1.0: finetune's defaults.

The models are random BF16 checkpoints that transformers makes with its own LlamaConfig and initialisation
(scripts/make_random_llama.py, run here under .venv-oracle's python when DIR/MODEL is missing; 2.2-2.5 GB each).

JVM side, per configuration: `./tornado-lora finetune` in a fresh JVM for each -Xmx of the list (--xmx
CONFIG=1200m,1400m,...; "default" is the launcher's own sizing, no -Xmx), smallest first, until one runs --steps
optimizer steps (default 2); with --bisect, then halving between the largest failing and the smallest passing
heap down to 64 MiB. Reported: that -Xmx, the peak resident set of the run that passed (the kernel's maximum RSS of
the process: heap, JVM, code, threads), s/step (median of the steps after the first, from log.json), the peak heap
(log.json) and finetune's estimate.

PyTorch side, per configuration: one process (.venv-oracle's python: PyTorch 2.13, transformers 5.18, PEFT 0.21;
torch.set_num_threads as the JVM's threads, OMP_WAIT_POLICY=PASSIVE) running the same steps with
model.gradient_checkpointing_enable() for -ckpt: fp32 loads the checkpoint with from_pretrained(dtype=float32);
qlora quantizes each projection weight to an NF4 record in torchao's layout (block 64, scaler block 256, int8
scalers) as it reads it from the checkpoint (read, not memory-mapped), and runs it as torchao's linear_nf4 (dequantize in forward and
backward, then F.linear; neither torchao nor bitsandbytes is installed here), embeddings, norms and lm_head fp32.
Reported: peak RSS and s/step.

Peak RSS and the passing -Xmx do not depend on the machine's load; s/step does: quote times from a quiet machine
only. Results: a Markdown table on stdout and --json (default benchmarks/target/memory.json).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from compare import nf4_types

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
MODELS = {"tinyllama": "tinyllama-1.1b", "llama32": "llama-3.2-1b"}  # scripts/make_random_llama.py's shapes
CONFIGS = ["tinyllama-qlora-ckpt", "tinyllama-qlora", "llama32-qlora-ckpt", "llama32-qlora", "tinyllama-fp32-ckpt",
           "tinyllama-fp32"]
# Heaps tried smallest first, until one runs (issue 20's targets first: 1200m, 1600m, 3g).
XMX = {"tinyllama-qlora-ckpt": "1200m,1400m,1600m,2g", "tinyllama-qlora": "1400m,1600m,2g,3g",
       "llama32-qlora-ckpt": "1600m,2g,2400m,3g", "llama32-qlora": "2g,2400m,3g,4g",
       "tinyllama-fp32-ckpt": "3g,3400m,4g,default", "tinyllama-fp32": "3g,4g,5g,default"}
LORA = dict(r=8, lora_alpha=16, lora_dropout=0.0, target_modules=["q_proj", "v_proj"])
LR, WEIGHT_DECAY, MAX_GRAD_NORM = 3e-4, 0.01, 1.0


def parse_config(name):
    p = name.split("-")
    if len(p) not in (2, 3) or p[0] not in MODELS or p[1] not in ("qlora", "fp32") or (len(p) == 3 and p[2] != "ckpt"):
        raise SystemExit(f"memory_bench: expected MODEL-BASE[-ckpt] (MODEL {'|'.join(MODELS)}, BASE qlora|fp32) "
                         f"but got {name}")
    return p[0], p[1], len(p) == 3


def mib(text):
    """-Xmx text (1200m, 3g) -> MiB."""
    return int(text[:-1]) * (1024 if text[-1] in "gG" else 1) if text[-1] in "gGmM" else int(text) >> 20


def run_measured(cmd, env, cwd=None):
    """Runs cmd; returns (exit status, peak RSS in bytes, seconds): the kernel's maximum resident set of the child
    (wait4's ru_maxrss, as /usr/bin/time reports it)."""
    start = time.time()
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read().decode(errors="replace")
    return proc.returncode, usage.ru_maxrss * 1024, time.time() - start, text


def ensure_model(args, model):
    path = Path(args.models) / model
    if not (path / "tokens.safetensors").is_file():
        print(f"memory_bench: making {path} (random BF16 {MODELS[model]} with transformers)", file=sys.stderr)
        subprocess.run([args.python, str(ROOT / "scripts" / "make_random_llama.py"), MODELS[model], str(path),
                        "--seq", "512", "--rows", "4"], check=True)
    return path


# ---------------------------------------------------------------- JVM side

def jvm_try(args, config, path, xmx):
    _, base, ckpt = parse_config(config)
    with tempfile.TemporaryDirectory(prefix="memory-bench-") as out:
        opts = os.environ.get("TORNADO_LORA_JAVA_OPTS", "")
        env = dict(os.environ, TORNADO_LORA_JAVA_OPTS=(opts + ("" if xmx == "default" else f" -Xmx{xmx}")).strip())
        cmd = [str(ROOT / "tornado-lora"), "finetune", "--model", str(path), "--data", str(path / "tokens.safetensors"),
               "--eval-data", str(path / "eval.safetensors"), "--output", out + "/run", "--steps", str(args.steps),
               "--batch", "1", "--device", "jvm", "--quiet"] + (["--quantize-base"] if base == "qlora" else []) + \
              (["--activation-checkpointing"] if ckpt else [])
        status, rss, wall, text = run_measured(cmd, env)
        r = {"xmx": xmx, "ok": status == 0, "peak_rss_bytes": rss, "wall_s": wall}
        if status != 0:
            r["error"] = ([line for line in text.splitlines() if line.strip()] or ["exit %d" % status])[-1]
            return r
        log = json.loads(Path(out, "run", "log.json").read_text())
        steps = [s["tokens"] / s["tokens_per_s"] for s in log["steps"] if "tokens_per_s" in s]
        r.update(s_per_step=statistics.median(steps[1:] or steps), first_step_s=steps[0] if steps else None,
                 peak_heap_mib=log["summary"].get("peak_heap_mib"),
                 estimate_mib=log["summary"].get("memory_estimate_mib"))
        return r


def jvm_side(args, config, path):
    tries = []
    xmxs = (args.xmx.get(config) or XMX[config]).split(",")
    passed = failed = None
    for xmx in xmxs:
        r = jvm_try(args, config, path, xmx)
        tries.append(r)
        report_try(config, r)
        if r["ok"]:
            passed = r
            break
        failed = xmx
    if args.bisect and passed and passed["xmx"] != "default":
        lo = mib(failed) if failed and failed != "default" else 0
        hi = mib(passed["xmx"])
        while hi - lo > 64:
            mid = (lo + hi) // 2
            r = jvm_try(args, config, path, f"{mid}m")
            tries.append(r)
            report_try(config, r)
            if r["ok"]:
                hi, passed = mid, r
            else:
                lo = mid
    return {"tries": tries, "passed": passed,
            "failed_below": max((t["xmx"] for t in tries if not t["ok"] and t["xmx"] != "default"), key=mib,
                                default=None)}


def report_try(config, r):
    what = (f"runs, peak RSS {r['peak_rss_bytes'] / 1e9:.2f} GB, {r['s_per_step']:.1f} s/step, peak heap "
            f"{r['peak_heap_mib']} MiB, estimate {r['estimate_mib']} MiB") if r["ok"] else f"fails: {r['error']}"
    print(f"  jvm   {config:22s} -Xmx {r['xmx']:>8s}: {what}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- PyTorch side

def torch_side(args, config, path):
    env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE")
    cmd = [args.python, str(Path(__file__).resolve()), "--torch-child", config, str(path), str(args.steps),
           str(args.threads)]
    status, rss, wall, text = run_measured(cmd, env)
    r = {"ok": status == 0, "peak_rss_bytes": rss, "wall_s": wall}
    lines = [line for line in text.splitlines() if line.strip()]
    if status != 0 or not lines:
        r["error"] = (lines or ["exit %d" % status])[-1]
    else:
        r.update(json.loads(lines[-1]))
        steps = r["step_s"]
        r["s_per_step"] = statistics.median(steps[1:] or steps)
    what = f"peak RSS {rss / 1e9:.2f} GB, {r['s_per_step']:.1f} s/step" if r["ok"] else f"fails: {r['error']}"
    print(f"  torch {config:22s}: {what}", file=sys.stderr, flush=True)
    return r


def torch_child(config, path, steps, threads):
    """One PyTorch run (see the module comment); prints {"step_s": [...], "loss": [...]} as its last line."""
    import torch
    import torch.nn.functional as F
    from peft import LoraConfig, get_peft_model
    from safetensors.torch import load_file
    from transformers import AutoConfig, LlamaForCausalLM
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    torch.set_num_threads(threads)
    _, base, ckpt = parse_config(config)
    path = Path(path)
    if base == "fp32":
        model = LlamaForCausalLM.from_pretrained(path, dtype=torch.float32, attn_implementation="sdpa")
    else:
        model = nf4_model(torch, F, AutoConfig, LlamaForCausalLM, path)
    if ckpt:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.config.use_cache = False
    model = get_peft_model(model, LoraConfig(bias="none", task_type="CAUSAL_LM", **LORA))
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=LR, weight_decay=WEIGHT_DECAY)
    rows = load_file(str(path / "tokens.safetensors"))["input_ids"]
    times, losses = [], []
    for step in range(steps):
        ids = rows[step % rows.shape[0]].unsqueeze(0)
        start = time.perf_counter()
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, MAX_GRAD_NORM)
        opt.step()
        opt.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - start)
        losses.append(loss.item())
    print(json.dumps({"step_s": times, "loss": losses, "torch": torch.__version__}))


PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def nf4_model(torch, F, AutoConfig, LlamaForCausalLM, path, block=64, scaler_block=256):
    """LlamaForCausalLM with every projection an NF4 record in torchao's layout, built without a full-precision copy
    of the model: the skeleton on the meta device, each projection quantized as it is read from the checkpoint,
    the other tensors (embeddings, norms, lm_head) read as fp32."""
    Nf4, LinearNf4 = nf4_types(torch, F)

    class Nf4Linear(torch.nn.Linear):
        """A frozen projection holding an NF4 record, run as torchao's linear_nf4 (compare.py's)."""

        def __init__(self, w):
            torch.nn.Module.__init__(self)
            self.out_features, self.in_features = w.shape
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
            self.nf4 = Nf4.quantize(w, block, scaler_block)
            self.qweight = self.nf4.codes  # GPTQ's name, which PEFT reads for the device of the adapters it adds

        def forward(self, x):
            return LinearNf4.apply(x, self.nf4)

    config = AutoConfig.from_pretrained(path)
    with torch.device("meta"):
        model = LlamaForCausalLM(config)
    index = path / "model.safetensors.index.json"
    files = sorted(set(json.loads(index.read_text())["weight_map"].values())) if index.is_file() else \
        ["model.safetensors"]
    rest = {}
    for f in files:
        for name, tensor in read_tensors(torch, path / f):
            module, _, leaf = name.rpartition(".")
            if module.split(".")[-1] in PROJECTIONS:
                parent, _, child = module.rpartition(".")
                setattr(model.get_submodule(parent), child, Nf4Linear(tensor.float()))
            else:
                rest[name] = tensor.float()
            del tensor
    model.load_state_dict(rest, strict=False, assign=True)
    model.tie_weights()
    model.model.rotary_emb = type(model.model.rotary_emb)(config=config)  # its buffers were made on meta
    left = [n for n, p in list(model.named_parameters()) + list(model.named_buffers()) if p.device.type == "meta"]
    assert not left, f"not read from the checkpoint: {left}"
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def read_tensors(torch, file):
    """The tensors of a .safetensors file one at a time, read rather than memory-mapped (as the JVM side reads
    them): the checkpoint's pages do not stay in the resident set."""
    dtypes = {"BF16": torch.bfloat16, "F16": torch.float16, "F32": torch.float32}
    with open(file, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(n))
        for name, info in header.items():
            if name == "__metadata__":
                continue
            start, end = info["data_offsets"]
            f.seek(8 + n + start)
            data = bytearray(f.read(end - start))
            yield name, torch.frombuffer(data, dtype=dtypes[info["dtype"]]).reshape(info["shape"])


# ---------------------------------------------------------------- driver

def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--torch-child":
        torch_child(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("configs", nargs="*", default=CONFIGS)
    ap.add_argument("--models", default=str(HERE / "target" / "models"), help="folder of the random checkpoints")
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--sides", default="jvm,torch")
    ap.add_argument("--xmx", action="append", default=[], metavar="CONFIG=LIST")
    ap.add_argument("--bisect", action="store_true")
    ap.add_argument("--python", default=str(ROOT / ".venv-oracle" / "bin" / "python"))
    ap.add_argument("--json", default=str(HERE / "target" / "memory.json"))
    args = ap.parse_args()
    args.xmx = dict(x.split("=", 1) for x in args.xmx)
    sides = args.sides.split(",")
    for c in args.configs:
        parse_config(c)
    if "jvm" in sides:
        if args.threads != os.cpu_count():
            sys.exit(f"memory_bench: finetune computes on all {os.cpu_count()} cores; --threads {args.threads} would "
                     "compare unequal thread counts")
        # The launcher builds its jar when the sources changed: do it here, outside the measured runs.
        subprocess.run([str(ROOT / "tornado-lora"), "--version"], check=True, stdout=subprocess.DEVNULL)
    load = os.getloadavg()[0]
    results = {}
    for config in args.configs:
        path = ensure_model(args, parse_config(config)[0])
        results[config] = {}
        if "jvm" in sides:
            results[config]["jvm"] = jvm_side(args, config, path)
        if "torch" in sides:
            results[config]["torch"] = torch_side(args, config, path)
    report = {"load_before": load, "load_after": os.getloadavg()[0], "steps": args.steps, "threads": args.threads,
              "results": results}
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(args.json + ".tmp")
    tmp.write_text(json.dumps(report, indent=2))
    tmp.replace(args.json)
    print_table(report)


def print_table(report):
    print(f"batch 1 x 512 tokens, LoRA r 8 on q,v, {report['steps']} steps, {report['threads']} threads; load average "
          f"{report['load_before']:.1f} before, {report['load_after']:.1f} after (s/step counts on a quiet machine only)")
    print()
    print("| configuration | -Xmx that runs | fails at | peak RSS | s/step | peak heap | estimate "
          "| PyTorch peak RSS | PyTorch s/step |")
    print("|---|---|---|---|---|---|---|---|---|")
    for config, r in report["results"].items():
        j, t = r.get("jvm"), r.get("torch")
        p = j and j["passed"]
        cells = [config]
        if j:
            cells += [p["xmx"] if p else "none tried", j["failed_below"] or "—"]
            cells += [f"{p['peak_rss_bytes'] / 1e9:.2f} GB", f"{p['s_per_step']:.1f}", f"{p['peak_heap_mib']} MiB",
                      f"{p['estimate_mib']} MiB"] if p else ["", "", "", ""]
        else:
            cells += [""] * 6
        if t:
            cells += [f"{t['peak_rss_bytes'] / 1e9:.2f} GB", f"{t['s_per_step']:.1f}"] if t["ok"] else \
                [f"fails: {t['error']}", ""]
        else:
            cells += ["", ""]
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
