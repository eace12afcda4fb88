#!/usr/bin/python3
"""Side-by-side comparison: PyTorch (Debian python3-torch, OpenBLAS) vs tornado-lora's JVM backend.

Run it through the build script, which builds the benchmark jar first:

    ./build compare [--seconds S] [--rounds R] [--blas auto|default|CORE] [--json FILE] [--threads N] [WORKLOAD ...]

Workloads are BASE-PASS-DIMxTOKENS with BASE fp32|nf4, PASS fwd|fwdbwd (forward + backward), e.g.
nf4-fwd-4096x1; the default set is every combination of fp32/nf4, fwd/fwdbwd, 4096/1024 and 1/512 tokens,
rank 16, alpha 32. Both sides run the same layer math:

  y  = x·Wᵀ + (alpha/rank)·(x·Aᵀ)·Bᵀ           (torchtune's LoRALinear, no bias, no dropout)
  fwdbwd: y, then backward of sum(y·dy): dx, dA, dB (W frozen)

PyTorch's QLoRA baseline does what torchao's linear_nf4 does: dequantize the whole NF4 weight (codes ->
code book -> times the double-quantized block scale), then F.linear; its backward dequantizes again and
computes dy @ W.  PyTorch's forward-only runs under no_grad (its fastest path); the JVM forward keeps the
activations for backward, as in training.

Timing protocol, identical on both sides: warm up for a third of the budget (at least 3 runs, and on until
a run is within 15% of the fastest so far: the JVM's vector kernels run interpreted until compiled), then repeat
until the budget (--seconds, default 1.5) and at least 5 runs; a workload's time is the median.  The two sides
alternate workload by workload (the JVM side is one process serving commands), for --rounds rounds (default
2), and each side keeps its best round: on a shared machine a burst of load then costs a round, not the
comparison.  Both sides use the same number of threads (default: all cores; PyTorch via
torch.set_num_threads, the JVM via -Dtornadolora.threads).

OpenBLAS: Debian's OpenBLAS 0.3.21 does not recognise every current CPU and then falls back to its generic
SSE3 "Prescott" kernels, which are several times slower than its AVX-512 ones; some machines also set
OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE in the environment.  With --blas auto (the default) the harness runs
PyTorch on the best OpenBLAS kernel for the CPU's flags (SkylakeX with AVX-512, Haswell with AVX2), with
OPENBLAS_L2_SIZE unset, after checking that kernel's results against float64; --blas default keeps the
environment as it is; --blas NAME forces a core.  The core that ran is printed and stored in the JSON.

Decode (issue 21): the workloads decode-fp32 and decode-nf4 (run them alone: ./build compare decode-fp32 decode-nf4)
compare greedy generation with a KV cache on a random-weight checkpoint of a real architecture (BF16 on disk,
scripts/make_random_llama.py; --decode-shape tinyllama-1.1b by default, made under benchmarks/target/ on first use,
or --decode-model DIR): transformers' generate(do_sample=False, max_new_tokens=N, min_new_tokens=N) in fp32 (sdpa,
KV cache) against tornado-lora's Generator on the same weights, 16-bit as stored (decode-fp32: fp32 arithmetic) or
with NF4 projections (decode-nf4: read as NF4, decoded in registers); the first --decode-prompt ids of the folder's
tokens.safetensors as the prompt. Decode tokens/s counts the N-1 one-token steps after the prefill (transformers:
timestamps of a streamer). Targets: decode-fp32 >= 3x transformers, decode-nf4 >= 1.5x our decode-fp32.

Also measured: the machine's fp32 peak (a register-only FMA loop in the JVM on all threads); the table shows
the share of it each side reaches.  Results go to benchmarks/target/compare.json (or --json).
"""
import argparse
import ctypes
import json
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RANK, ALPHA = 16, 32.0
DEFAULT_WORKLOADS = [f"{b}-{p}-{d}x{t}" for d in (4096, 1024) for b in ("fp32", "nf4")
                     for p in ("fwd", "fwdbwd") for t in (512, 1)]
# (label, workload, kind, target): kind "speedup" = PyTorch ms / JVM ms >= target;
# "decode" = JVM NF4 1-token ms <= target x PyTorch fp32 1-token ms.
TARGETS = [
    ("fp32 forward, 512 tokens", "fp32-fwd-4096x512", "speedup", 1.0),
    ("NF4 forward, 512 tokens", "nf4-fwd-4096x512", "speedup", 2.0),
    ("NF4 decode, 1 token (vs PyTorch fp32)", "nf4-fwd-4096x1", "decode", 0.25),
    ("fp32 forward + backward, 512 tokens", "fp32-fwdbwd-4096x512", "speedup", 1.0),
    ("NF4 forward + backward, 512 tokens", "nf4-fwdbwd-4096x512", "speedup", 1.5),
    ("issue 14: Llama fp32 step, LoRA q,v", "llama-fp32-step", "speedup", 1.0),
    ("issue 14: Llama fp32 step, LoRA all", "llama-fp32-step-all", "speedup", 1.0),
    ("issue 14: Llama QLoRA step, LoRA q,v", "llama-qlora-step", "speedup", 1.5),
    ("issue 14: Llama QLoRA step, LoRA all", "llama-qlora-step-all", "speedup", 1.5),
    ("issue 15: finetune step fp32, LoRA q,v", "llama-fp32-finetune", "speedup", 1.0),
    ("issue 15: finetune step fp32, LoRA all", "llama-fp32-finetune-all", "speedup", 1.0),
    ("issue 15: finetune step QLoRA, LoRA q,v", "llama-qlora-finetune", "speedup", 1.5),
    ("issue 15: finetune step QLoRA, LoRA all", "llama-qlora-finetune-all", "speedup", 1.5),
]
# QLoRA peak heap target (issue 14): <= 1.3 x (NF4 weights + activations), see llama_memory_model.
HEAP_TARGET = 1.3


def parse_args():
    ap = argparse.ArgumentParser(description="PyTorch vs tornado-lora, side by side")
    ap.add_argument("workloads", nargs="*", default=DEFAULT_WORKLOADS)
    ap.add_argument("--seconds", type=float, default=1.5, help="measuring budget per workload, side and round")
    ap.add_argument("--rounds", type=int, default=2, help="alternating rounds; each side keeps its best")
    ap.add_argument("--blas", default="auto", help="auto | default | an OPENBLAS_CORETYPE name")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--jar", default=str(HERE / "target" / "benchmarks.jar"))
    ap.add_argument("--java", default=os.path.join(os.environ.get("JAVA_HOME", "/usr"), "bin", "java"))
    ap.add_argument("--json", default=str(HERE / "target" / "compare.json"))
    ap.add_argument("--python", help="interpreter of the PyTorch side (default: this one; the llama-* workloads "
                    "need transformers + PEFT and then default to .venv-oracle/bin/python, see scripts/oracle-venv.sh)")
    ap.add_argument("--omp-wait-policy", default="auto", choices=["auto", "passive", "active", "default"],
                    help="OMP_WAIT_POLICY of the PyTorch side; auto: passive when a llama-* workload runs (idle OpenMP "
                    "threads sleep, as the JVM pool's do: spinning ones run PyTorch 2.13's Llama step 3-4x slower when "
                    "other processes share the cores), else the environment's")
    ap.add_argument("--no-memory", action="store_true", help="skip the QLoRA heap check of the llama-qlora-* workloads")
    ap.add_argument("--decode-shape", default="tinyllama-1.1b",
                    help="decode-*: scripts/make_random_llama.py's shape, made under benchmarks/target/decode-SHAPE on "
                    "first use (tinyllama-1.1b; bench: a small one that runs in seconds)")
    ap.add_argument("--decode-model", help="decode-*: an HF folder to use instead of --decode-shape's")
    ap.add_argument("--decode-prompt", type=int, default=16, help="decode-*: prompt tokens")
    ap.add_argument("--decode-tokens", type=int, default=32, help="decode-*: new tokens per generation")
    ap.add_argument("--skip-blas-check", action="store_true", help=argparse.SUPPRESS)
    return ap.parse_args()


# ---------------------------------------------------------------- OpenBLAS kernel choice (before torch loads)

def best_core():
    flags = ""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("flags"):
                flags = line.split(":", 1)[1].split()
                break
    except OSError:
        return None
    if "avx512f" in flags and "avx512bw" in flags and "avx512vl" in flags:
        return "SkylakeX"
    if "avx2" in flags and "fma" in flags:
        return "Haswell"
    return None


def choose_blas(args):
    """Re-executes this script once with the OpenBLAS environment the --blas choice asks for."""
    if os.environ.get("_TL_COMPARE_BLAS_SET"):
        return
    env = dict(os.environ, _TL_COMPARE_BLAS_SET="1")
    if args.blas != "default":
        core = best_core() if args.blas == "auto" else args.blas
        env.pop("OPENBLAS_L2_SIZE", None)
        if core:
            env["OPENBLAS_CORETYPE"] = core
        else:
            env.pop("OPENBLAS_CORETYPE", None)
    os.execve(sys.executable, [sys.executable] + sys.argv, env)


def openblas_core():
    for line in open("/proc/self/maps"):
        path = line.split()[-1] if len(line.split()) >= 6 else ""
        if "openblas" in path and ".so" in path:
            try:
                lib = ctypes.CDLL(path)
                fn = lib.openblas_get_corename
                fn.restype = ctypes.c_char_p
                return fn().decode()
            except (OSError, AttributeError):
                continue
    return "unknown (no OpenBLAS loaded)"


# ---------------------------------------------------------------- PyTorch side

def pytorch_side(args):
    """Imports torch (after the BLAS choice), checks the BLAS, and returns (workload factory, torch version)."""
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    # Refuse a BLAS kernel that computes wrong results (the reason some machines pin OPENBLAS_CORETYPE).
    a, b = torch.randn(200, 300), torch.randn(170, 300)
    err = ((F.linear(a, b).double() - a.double() @ b.double().t()).abs().max() / (a.double() @ b.double().t()).abs().max()).item()
    if err > 1e-4 and args.blas == "auto" and not args.skip_blas_check:
        print(f"OpenBLAS core {openblas_core()} gives relative error {err:.2e}; using the environment's default",
              file=sys.stderr)
        env = dict(os.environ)
        env.pop("OPENBLAS_CORETYPE", None)
        os.execve(sys.executable, [sys.executable] + sys.argv + ["--blas", "default"], env)

    nf4_table = torch.tensor([-1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453,
                              -0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0.0,
                              0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
                              0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0])

    class Nf4:
        """An NF4 record in torchao's layout (block 64, scaler block 256): packed codes, int8 scalers, factors, mean."""

        def __init__(self, rows, cols, block=64, scaler_block=256):
            n = rows * cols
            self.shape, self.block, self.scaler_block = (rows, cols), block, scaler_block
            self.codes = torch.randint(0, 256, (n // 2,), dtype=torch.uint8)
            self.scalers = torch.randint(-128, 128, (n // block,), dtype=torch.int8)
            self.factor = torch.rand(n // block // scaler_block) * 100 + 1000
            self.mean = torch.tensor(0.02)

        def dequantize(self):
            # torchao's get_original_weight: double-dequantize the scalers, unpack nibbles, look up, scale.
            scales = (self.scalers.float().view(-1, self.scaler_block) / self.factor.view(-1, 1)).flatten() + self.mean
            codes = torch.stack([self.codes >> 4, self.codes & 0xF], dim=-1).flatten().long()
            w = nf4_table[codes].view(-1, self.block) * scales.view(-1, 1)
            return w.view(self.shape)

    class LinearNf4(torch.autograd.Function):
        """torchao's linear_nf4: forward and backward each dequantize the whole weight."""

        @staticmethod
        def forward(ctx, x, w):
            ctx.w = w
            return F.linear(x, w.dequantize())

        @staticmethod
        def backward(ctx, dy):
            return dy @ ctx.w.dequantize(), None

    def make(name):
        if name.startswith("llama-"):
            return llama_workload(name, torch, Nf4, LinearNf4)
        base, kind, size = name.split("-")
        dim, tokens = (int(v) for v in size.split("x"))
        g = torch.Generator().manual_seed(1)
        w = Nf4(dim, dim) if base == "nf4" else torch.rand(dim, dim, generator=g) * 2 / dim ** 0.5 - 1 / dim ** 0.5
        a = (torch.rand(RANK, dim, generator=g) - 0.5) * 0.02
        b = (torch.rand(dim, RANK, generator=g) - 0.5) * 0.02
        a.requires_grad_(True)
        b.requires_grad_(True)
        x = torch.rand(tokens, dim, generator=g) * 2 - 1
        dy = torch.rand(tokens, dim, generator=g) * 2 - 1
        scale = ALPHA / RANK

        def layer(inp):
            base_out = LinearNf4.apply(inp, w) if base == "nf4" else F.linear(inp, w)
            return base_out + F.linear(F.linear(inp, a), b) * scale

        if kind == "fwd":
            def run():
                with torch.no_grad():
                    return layer(x)
        else:
            xg = x.clone().requires_grad_(True)

            def run():
                y = layer(xg)
                y.backward(dy)
                return xg.grad
        return run

    return make, torch.__version__


# ---------------------------------------------------------------- Llama step (issues 14 and 15)

# The benchmark configuration of issue 14: a 4-layer Llama, batch 2 x 256 tokens, LoRA r 16, alpha 32.
LLAMA_CONFIG = dict(vocab_size=8192, hidden_size=1024, intermediate_size=2816, num_hidden_layers=4,
                    num_attention_heads=16, num_key_value_heads=4, head_dim=64, max_position_embeddings=2048,
                    rms_norm_eps=1e-6, tie_word_embeddings=False)  # = LlamaProfile.benchmarkConfig() (JVM side)
LLAMA_BATCH, LLAMA_SEQ, LLAMA_ROWS = 2, 256, 8
LLAMA_PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
LLAMA_TARGETS = {"qv": ("q_proj", "v_proj"), "all": LLAMA_PROJECTIONS}
LLAMA_MAX_GRAD_NORM, LLAMA_LR = 1.0, 1e-4
LLAMA_WORKLOADS = [f"llama-{b}-{k}{t}" for k in ("step", "finetune") for t in ("", "-all") for b in ("fp32", "qlora")]


def parse_llama(name):
    """llama-fp32|qlora-step|finetune[-all] -> (base, kind, LoRA targets key)."""
    p = name.split("-")
    if len(p) not in (3, 4) or p[1] not in ("fp32", "qlora") or p[2] not in ("step", "finetune") \
            or (len(p) == 4 and p[3] != "all"):
        raise ValueError(f"workload: expected llama-fp32|qlora-step|finetune[-all] but got {name}")
    return p[1], p[2], "all" if len(p) == 4 else "qv"


def llama_workload(name, torch, Nf4, LinearNf4):
    """transformers' LlamaForCausalLM + PEFT LoRA, fp32 on the CPU (sdpa attention).
    step:     loss = model(input_ids, labels).loss (transformers' causal-LM loss); loss.backward()
    finetune: an optimizer step as finetune runs it: zero_grad, the next batch of rows, forward, backward,
              clip_grad_norm_(adapters, 1.0), torch.optim.AdamW.step()
    qlora:    every q/k/v/o/gate/up/down base weight becomes an NF4 record (torchao layout) whose forward and
              backward dequantize it and call F.linear (torchao's linear_nf4, as torchtune's FrozenNF4Linear)."""
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    base, kind, targets = parse_llama(name)
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(**LLAMA_CONFIG, attn_implementation="sdpa")).float()
    model = get_peft_model(model, LoraConfig(r=RANK, lora_alpha=ALPHA, target_modules=list(LLAMA_TARGETS[targets]),
                                             lora_dropout=0.0, bias="none", task_type="CAUSAL_LM"))
    with torch.no_grad():  # lora_B starts at zero (PEFT); give it values so the update is real arithmetic
        for pname, p in model.named_parameters():
            if "lora_B" in pname:
                p.uniform_(-0.01, 0.01)

    if base == "qlora":
        class FrozenNf4Linear(torch.nn.Module):
            def __init__(self, rows, cols):
                super().__init__()
                self.nf4 = Nf4(rows, cols)

            def forward(self, x):
                return LinearNf4.apply(x, self.nf4)

        for mname, mod in list(model.named_modules()):
            parts = mname.split(".")
            if isinstance(mod, torch.nn.Linear) and (parts[-1] in LLAMA_PROJECTIONS or (
                    parts[-1] == "base_layer" and parts[-2] in LLAMA_PROJECTIONS)):
                parent = model.get_submodule(".".join(parts[:-1]))
                setattr(parent, parts[-1], FrozenNf4Linear(mod.out_features, mod.in_features))
        assert not any(n.endswith("_proj.weight") or n.endswith("base_layer.weight")
                       for n, _ in model.named_parameters()), "a projection weight stayed fp32"
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    g = torch.Generator().manual_seed(3)
    rows = torch.randint(0, LLAMA_CONFIG["vocab_size"], (LLAMA_ROWS, LLAMA_SEQ), generator=g)
    if kind == "step":
        ids = rows[:LLAMA_BATCH]

        def run():
            loss = model(input_ids=ids, labels=ids).loss
            loss.backward()
            return loss
        return run

    opt = torch.optim.AdamW(params, lr=LLAMA_LR, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)
    state = {"step": 0}

    def run():
        i = state["step"]
        state["step"] += 1
        ids = rows[[(i * LLAMA_BATCH + j) % LLAMA_ROWS for j in range(LLAMA_BATCH)]]
        opt.zero_grad(set_to_none=True)
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, LLAMA_MAX_GRAD_NORM)
        opt.step()
        return loss
    return run


def llama_flops(name):
    """Multiply-adds x 2 of one step. Forward: every linear (projections and lm_head) 2·T·in·out, LoRA
    2·T·r·(in + out) per adapted projection, attention 2·2·B·heads·S²·head_dim per layer (QKᵀ and PV, the full
    square, as sdpa computes it). Backward: dx of every linear again (the base is frozen: no weight gradient),
    4·T·r·(in + out) per adapter (dA, dB, and dx through A and B), attention twice its forward."""
    _, _, targets = parse_llama(name)
    c = LLAMA_CONFIG
    t = LLAMA_BATCH * LLAMA_SEQ
    h, i, hd = c["hidden_size"], c["intermediate_size"], c["head_dim"]
    shapes = {"q_proj": (h, c["num_attention_heads"] * hd), "k_proj": (h, c["num_key_value_heads"] * hd),
              "v_proj": (h, c["num_key_value_heads"] * hd), "o_proj": (c["num_attention_heads"] * hd, h),
              "gate_proj": (h, i), "up_proj": (h, i), "down_proj": (i, h)}
    linear = sum(a * b for a, b in shapes.values()) * c["num_hidden_layers"] + h * c["vocab_size"]
    lora = sum(a + b for m, (a, b) in shapes.items() if m in LLAMA_TARGETS[targets]) * RANK * c["num_hidden_layers"]
    attn = 4 * LLAMA_BATCH * c["num_attention_heads"] * LLAMA_SEQ ** 2 * hd * c["num_hidden_layers"]
    forward = 2 * t * linear + 2 * t * lora + attn
    backward = 2 * t * linear + 4 * t * lora + 2 * attn
    return forward + backward


def llama_memory_model(name):
    """Bytes the QLoRA heap target is measured against (issue 14: peak heap <= 1.3 x (NF4 weights + activations)).
    NF4 weights: every projection in torchao's layout (numel/2 code bytes + numel/64 int8 scalers + 4 bytes per
    scaler block + 4 for the mean), embeddings, lm_head and norms fp32. Activations: the fp32 tensors a step's
    backward needs, per token: per layer the layer input, both RMSNorm outputs, the mid-layer residual (4 H),
    q, k, v after RoPE and the attention output (2 heads·head_dim + 2 kv_heads·head_dim), gate, up and
    silu(gate)·up (3 I), one log-sum-exp per head, x·Aᵀ per adapter (r); after the layers the final norm's input
    and output (2 H) and the logits (V). Attention probabilities [B, heads, S, S] are not counted: a step can
    recompute them from the log-sum-exp (flash-attention style), as the JVM model does."""
    _, _, targets = parse_llama(name)
    c = LLAMA_CONFIG
    h, i, hd, L, v = c["hidden_size"], c["intermediate_size"], c["head_dim"], c["num_hidden_layers"], c["vocab_size"]
    nh, nkv = c["num_attention_heads"], c["num_key_value_heads"]
    shapes = [nh * hd * h, nkv * hd * h, nkv * hd * h, h * nh * hd, i * h, i * h, h * i]
    nf4 = sum(n // 2 + n // 64 + 4 * (n // (64 * 256)) + 4 for n in shapes) * L
    dense = 4 * (2 * v * h + (2 * L + 1) * h)
    tokens = LLAMA_BATCH * LLAMA_SEQ
    n_adapters = len(LLAMA_TARGETS[targets])
    per_token = L * (4 * h + 2 * nh * hd + 2 * nkv * hd + 3 * i + nh + RANK * n_adapters) + 2 * h + v
    activations = 4 * tokens * per_token
    return {"nf4_weights": nf4 + dense, "nf4_projections": nf4, "dense_weights": dense, "activations": activations,
            "budget": HEAP_TARGET * (nf4 + dense + activations)}


def write_llama_folder(path):
    """The benchmark configuration as an HF folder (random weights, fp32), for the JVM's tensor-by-tensor load."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM
    from transformers.utils import logging as hf_logging
    hf_logging.disable_progress_bar()
    torch.manual_seed(0)
    LlamaForCausalLM(LlamaConfig(**LLAMA_CONFIG)).save_pretrained(path)


HEAP_LADDER = (1.3, 1.6, 2.0, 2.5, 3.2, 4.0)


def memory_checks(args, names):
    """For each QLoRA workload: JVMs (ParallelGC, as ./tornado-lora runs) with -Xmx = k x (NF4 weights +
    activations) for k = 1.3 (the target), 1.6, 2, 2.5, 3.2, 4 until one fits: it loads the model from an HF
    folder tensor by tensor and runs 1 + 2 steps (or reports the OutOfMemoryError). The smallest k that fits is
    the measured peak-heap ratio (to the ladder's resolution); the fitting JVM also reports the live heap after a
    full GC and the GC count/time of the 2 steps."""
    import tempfile
    results = {}
    with tempfile.TemporaryDirectory(dir=HERE / "target", prefix="llama-bench-") as tmp:
        write_llama_folder(tmp)
        for name in names:
            m = llama_memory_model(name)
            base = m["nf4_weights"] + m["activations"]
            r = {"model": m, "budget_mb": int(m["budget"] / 2 ** 20), "tries": []}
            for k in HEAP_LADDER:
                mb = int(k * base / 2 ** 20)
                jvm = JvmSide(args, xmx=f"{mb}m")
                try:
                    jvm.proc.stdin.write(f"memory {name} 2 {tmp}\n")
                    jvm.proc.stdin.flush()
                    answer = json.loads(jvm.proc.stdout.readline() or '{"error": "the JVM stopped"}')
                finally:
                    jvm.close()
                r["tries"].append({"factor": k, "xmx_mb": mb, **answer})
                print(f"  memory {name}: -Xmx{mb}m = {k} x (NF4 weights {m['nf4_weights'] / 2 ** 20:.1f} MB + "
                      f"activations {m['activations'] / 2 ** 20:.1f} MB): "
                      f"{answer.get('error') or 'fits, live %.1f MB' % answer['live_mb']}", file=sys.stderr, flush=True)
                if "error" not in answer:
                    r["fits_factor"], r["fits_xmx_mb"] = k, mb
                    break
            results[name] = r
    return results


def time_runs(run, seconds):
    """The protocol of the JVM side (Compare.time): warm up, then measure."""
    start = time.perf_counter()
    i, fastest, last = 0, float("inf"), float("inf")
    while (i < 3 or time.perf_counter() - start < seconds / 3
           or (last > 1.15 * fastest and time.perf_counter() - start < max(4 * seconds, 10))):
        t0 = time.perf_counter()
        run()
        last = time.perf_counter() - t0
        fastest = min(fastest, last)
        i += 1
    ms = []
    start = time.perf_counter()
    while (len(ms) < 5 or time.perf_counter() - start < seconds) and len(ms) < 1000:
        t0 = time.perf_counter()
        run()
        ms.append((time.perf_counter() - t0) * 1e3)
    return ms


# ---------------------------------------------------------------- JVM side

def thp_flag():
    """Transparent huge pages for the JVM heap where the kernel offers them (as ./tornado-lora does): the kernels
    stream whole weights, and 2 MiB pages spare the TLB (measured ~7% on the packed GEMM here)."""
    try:
        mode = Path("/sys/kernel/mm/transparent_hugepage/enabled").read_text()
    except OSError:
        return []
    return ["-XX:+UseTransparentHugePages"] if "[always]" in mode or "[madvise]" in mode else []


class JvmSide:
    """The JVM side (dev.tornadolora.benchmarks.Compare) as a server: one process, commands on stdin, JSON lines back."""

    def __init__(self, args, xmx="8g"):
        if not Path(args.jar).is_file():
            sys.exit(f"compare: {args.jar} not found; run ./build compare (it builds the jar)")
        cmd = [args.java, "--add-modules", "jdk.incubator.vector", "-XX:+UseParallelGC", f"-Xmx{xmx}"] + thp_flag() + [
               f"-Dtornadolora.threads={args.threads}", "-cp", args.jar, "dev.tornadolora.benchmarks.Compare"]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, bufsize=1)
        threading.Thread(target=self._relay_stderr, daemon=True).start()
        self.info = self._answer()

    def _relay_stderr(self):
        for line in self.proc.stderr:
            if "incubator modules" not in line:
                sys.stderr.write(line)

    def _answer(self):
        line = self.proc.stdout.readline()
        if not line:
            sys.exit(f"compare: the JVM side stopped (exit {self.proc.wait()})")
        reply = json.loads(line)
        if "error" in reply:
            sys.exit(f"compare: the JVM side failed: {reply['error']}")
        return reply

    def ask(self, command):
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return self._answer()

    def close(self):
        try:
            self.proc.stdin.write("quit\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            pass
        self.proc.wait(timeout=30)


# ---------------------------------------------------------------- report

def choose_python(args):
    """Re-executes this script under --python, or under .venv-oracle's python when this interpreter has no torch,
    or a llama-* workload is asked for and it lacks transformers/PEFT (Debian's torch 1.13 runs the layer
    workloads where it is installed)."""
    import importlib.util
    needs_hf = any(w.startswith("llama-") or w.startswith("decode-") for w in args.workloads)
    if args.python is None and (needs_hf or importlib.util.find_spec("torch") is None):
        if importlib.util.find_spec("torch") and (not needs_hf or (  # found without importing torch
                importlib.util.find_spec("peft") and importlib.util.find_spec("transformers"))):
            return
        args.python = str(ROOT / ".venv-oracle" / "bin" / "python")
        if not Path(args.python).exists():
            sys.exit(f"compare: {sys.executable} lacks torch{' + transformers + PEFT' if needs_hf else ''}: run "
                     "scripts/oracle-venv.sh first (or pass --python)")
    # Not resolved: a virtualenv's python is a link to the interpreter it was made from.
    if args.python and os.path.abspath(args.python) != os.path.abspath(sys.executable) \
            and not os.environ.get("_TL_COMPARE_PYTHON_SET"):
        os.execve(args.python, [args.python] + sys.argv, dict(os.environ, _TL_COMPARE_PYTHON_SET="1"))


# Issue 11's targets (the one-token backward): "ratio" = JVM forward+backward ms / JVM forward ms <= target;
# "speedup" as above (PyTorch+MKL: run the harness under a torch 2.13 interpreter, e.g. .venv-oracle's python).
ISSUE11_TARGETS = [
    ("fp32 fwd+bwd / fwd, 1 token", "fp32-fwdbwd-4096x1", "ratio", 2.5),
    ("NF4 fwd+bwd / fwd, 1 token", "nf4-fwdbwd-4096x1", "ratio", 2.5),
    ("fp32 forward + backward, 1 token", "fp32-fwdbwd-4096x1", "speedup", 1.5),
]


def issue11_targets(by_name, targets):
    print("targets (issue 11: the one-token backward; in = out = 4096, rank 16; on the medians):")
    for label, name, kind, goal in ISSUE11_TARGETS:
        if name not in by_name:
            continue
        if kind == "ratio":
            fwd = name.replace("-fwdbwd-", "-fwd-")
            if fwd not in by_name:
                continue
            value = by_name[name]["jvm_ms"] / by_name[fwd]["jvm_ms"]
            ok = value <= goal
            text = (f"{by_name[name]['jvm_ms']:.3f} ms / {by_name[fwd]['jvm_ms']:.3f} ms = {value:.2f}x "
                    f"(target <= {goal:g}x)")
        else:
            value = by_name[name]["speedup"]
            ok = value >= goal
            text = f"{value:.2f}x PyTorch (target >= {goal:g}x)"
        targets.append({"target": "issue 11: " + label, "workload": name, "value": value, "goal": goal, "met": ok})
        print(f"  {'MET   ' if ok else 'MISSED'} {label:40s} {text}")


DECODE_WORKLOADS = ["decode-fp32", "decode-nf4"]
DECODE_TARGETS = [("decode-fp32 vs transformers fp32", 3.0), ("decode-nf4 vs our decode-fp32", 1.5)]


def decode_model(args):
    """The checkpoint of the decode workloads: --decode-model, else --decode-shape's, made on first use."""
    if args.decode_model:
        return Path(args.decode_model)
    path = HERE / "target" / f"decode-{args.decode_shape}"
    if not (path / "config.json").is_file():
        seq = max(args.decode_prompt, 16)
        print(f"compare: making a random {args.decode_shape} checkpoint in {path}", file=sys.stderr, flush=True)
        subprocess.run([sys.executable, str(ROOT / "scripts" / "make_random_llama.py"), args.decode_shape, str(path),
                        "--seq", str(seq), "--rows", "1"], check=True)
    return path


def transformers_decode(path, args):
    """transformers' greedy generate in fp32 with its KV cache; returns (prefill tok/s, decode tok/s, ids)."""
    import torch
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM
    from transformers.generation.streamers import BaseStreamer
    from transformers.utils import logging as hf_logging
    hf_logging.set_verbosity_error()
    torch.set_num_threads(args.threads)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, attn_implementation="sdpa").eval()
    prompt = load_file(str(path / "tokens.safetensors"))["input_ids"][:1, :args.decode_prompt]

    class Clock(BaseStreamer):
        def __init__(self):
            self.times = []

        def put(self, value):
            self.times.append(time.perf_counter())

        def end(self):
            pass

    def run():
        clock = Clock()
        start = time.perf_counter()
        with torch.no_grad():
            out = model.generate(input_ids=prompt, attention_mask=torch.ones_like(prompt), do_sample=False,
                                 max_new_tokens=args.decode_tokens, min_new_tokens=args.decode_tokens,
                                 streamer=clock, pad_token_id=0)
        t = clock.times  # t[0]: the prompt is put before the prefill; t[1]: the first new token
        n = len(t) - 2
        return (prompt.shape[1] / (t[1] - start), n / (t[-1] - t[1]) if n > 0 else 0.0,
                out[0, prompt.shape[1]:].tolist())
    run()  # warm-up
    return run


def decode_main(args):
    path = decode_model(args)
    print(f"compare: decode on {path}, prompt {args.decode_prompt}, {args.decode_tokens} new tokens, "
          f"{args.threads} threads, {args.rounds} rounds; load average {os.getloadavg()[0]:.2f}",
          file=sys.stderr, flush=True)
    load = os.getloadavg()[0]
    torch_run = transformers_decode(path, args)
    import torch
    best = {}
    torch_best, torch_ids = None, None
    jvm = JvmSide(args, xmx="6g")
    for name in args.workloads:
        mode = name.split("-", 1)[1]
        for rnd in range(args.rounds):
            if mode == "fp32":
                pre, dec, ids = torch_run()
                torch_ids = ids
                if torch_best is None or dec > torch_best[1]:
                    torch_best = (pre, dec)
            j = jvm.ask(f"decode {mode} {path} {args.decode_prompt} {args.decode_tokens}")
            print(f"  round {rnd + 1}  {name:12s} " + (f"transformers {dec:7.2f} tok/s   " if mode == "fp32" else "")
                  + f"jvm {j['decode_tokens_per_second']:7.2f} tok/s   load {os.getloadavg()[0]:.2f}",
                  file=sys.stderr, flush=True)
            if name not in best or j["decode_tokens_per_second"] > best[name]["decode_tokens_per_second"]:
                best[name] = j
        jvm.ask(f"drop {name}")
    jvm.close()
    if torch_best is None:
        torch_best = torch_run()[:2]
    print()
    print(f"transformers {sys.modules['transformers'].__version__} / PyTorch {torch.__version__} fp32 vs tornado-lora "
          f"JVM ({jvm.info['java']}), {args.threads} threads; model {path}; load average {load:.2f} before, "
          f"{os.getloadavg()[0]:.2f} after")
    hdr = f"{'workload':12s} {'prefill tok/s':>14s} {'decode tok/s':>13s} {'vs transformers fp32':>21s}"
    print(hdr)
    print("-" * len(hdr))
    print(f"{'transformers':12s} {torch_best[0]:14.1f} {torch_best[1]:13.2f} {1.0:20.2f}x")
    rows = []
    for name in args.workloads:
        j = best[name]
        speedup = j["decode_tokens_per_second"] / torch_best[1]
        rows.append({"workload": name, "prefill_tokens_per_second": j["prefill_tokens_per_second"],
                     "decode_tokens_per_second": j["decode_tokens_per_second"], "speedup": speedup, "ids": j["ids"]})
        print(f"{name:12s} {j['prefill_tokens_per_second']:14.1f} {j['decode_tokens_per_second']:13.2f} "
              f"{speedup:20.2f}x")
    by = {r["workload"]: r for r in rows}
    if "decode-fp32" in by and torch_ids is not None:
        same = next((i for i, (a, b) in enumerate(zip(torch_ids, by["decode-fp32"]["ids"])) if a != b), len(torch_ids))
        print(f"greedy ids: decode-fp32 equals transformers for the first {same} of {len(torch_ids)} tokens")
    targets = []
    print("targets (issue 21):")
    for (label, goal), (num, den) in zip(DECODE_TARGETS, [("decode-fp32", None), ("decode-nf4", "decode-fp32")]):
        if num not in by or (den and den not in by):
            continue
        value = by[num]["decode_tokens_per_second"] / (by[den]["decode_tokens_per_second"] if den else torch_best[1])
        ok = value >= goal
        targets.append({"target": label, "value": value, "goal": goal, "met": ok})
        print(f"  {'MET   ' if ok else 'MISSED'} {label:36s} {value:.2f}x (target >= {goal:g}x)")
    report = {"machine": {"cpu": cpu_name(), "cores": os.cpu_count(), "load_before": load,
                          "load_after": os.getloadavg()[0]},
              "model": str(path), "prompt_tokens": args.decode_prompt, "new_tokens": args.decode_tokens,
              "threads": args.threads, "rounds": args.rounds, "jvm": jvm.info,
              "transformers": {"version": sys.modules["transformers"].__version__, "torch": torch.__version__,
                               "prefill_tokens_per_second": torch_best[0], "decode_tokens_per_second": torch_best[1]},
              "rows": rows, "targets": targets}
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(args.json + ".tmp")
    tmp.write_text(json.dumps(report, indent=2))
    tmp.replace(args.json)
    print(f"\nJSON: {args.json}")


def main():
    args = parse_args()
    decode = [w for w in args.workloads if w.startswith("decode-")]
    if decode:
        unknown = [w for w in decode if w not in DECODE_WORKLOADS]
        if unknown or len(decode) != len(args.workloads):
            sys.exit(f"compare: the decode workloads are {', '.join(DECODE_WORKLOADS)}, run alone (got "
                     f"{' '.join(args.workloads)})")
        choose_python(args)
        return decode_main(args)
    if args.workloads == ["llama"]:
        args.workloads = list(LLAMA_WORKLOADS)
    if any(w.startswith("llama-") for w in args.workloads) and args.threads != os.cpu_count():
        sys.exit(f"compare: the llama-* workloads run the JVM model on its own backend (all {os.cpu_count()} cores); "
                 f"--threads {args.threads} would compare unequal thread counts")
    choose_python(args)
    if args.blas != "default":
        choose_blas(args)
    policy = args.omp_wait_policy
    if policy == "auto":
        policy = "passive" if any(w.startswith("llama-") for w in args.workloads) else "default"
    if policy != "default":  # before torch (and its OpenMP runtime) loads
        assert "torch" not in sys.modules, "torch loaded before OMP_WAIT_POLICY was set"
        os.environ["OMP_WAIT_POLICY"] = policy.upper()
    load = os.getloadavg()[0]
    print(f"compare: {len(args.workloads)} workloads, {args.threads} threads, {args.seconds:g} s each, "
          f"{args.rounds} rounds; load average {load:.2f}", file=sys.stderr, flush=True)
    make, torch_version = pytorch_side(args)
    core = openblas_core()
    if "no OpenBLAS" in core and sys.modules["torch"].backends.mkl.is_available():
        core = "none: this PyTorch calls MKL"  # the wheels' torch 2.x; OPENBLAS_CORETYPE is then moot
    jvm = JvmSide(args)
    peak = jvm.ask("peak")["peak_gflops"]
    torch_runs, torch_results, jvm_results, profiles = {}, {}, {}, {}
    # Alternate the two sides workload by workload, for several rounds: each side keeps its best round, so a
    # burst of load from other processes costs a round, not the comparison. A Llama workload holds a model of
    # ~250 MB per side, so its rounds run back to back (still alternating the sides) and it is dropped after them.
    layer = [w for w in args.workloads if not w.startswith("llama-")]
    llama = [w for w in args.workloads if w.startswith("llama-")]
    schedule = [(rnd, name) for rnd in range(args.rounds) for name in layer] + \
               [(rnd, name) for name in llama for rnd in range(args.rounds)]
    for rnd, name in schedule:
        if name not in torch_runs:
            torch_runs[name] = make(name)
        ms = time_runs(torch_runs[name], args.seconds)
        t = {"ms": statistics.median(ms), "ms_min": min(ms), "runs": len(ms)}
        j = jvm.ask(f"run {name} {args.seconds}")
        print(f"  round {rnd + 1}  {name:24s} torch {t['ms']:9.3f} ms ({t['runs']} runs)   "
              f"jvm {j['ms']:9.3f} ms ({j['runs']} runs)   load {os.getloadavg()[0]:.2f}",
              file=sys.stderr, flush=True)
        for side, r in ((torch_results, t), (jvm_results, j)):
            best = side.get(name)
            fastest = min(r["ms_min"], best["ms_min"]) if best else r["ms_min"]
            if best is None or r["ms"] < best["ms"]:
                side[name] = dict(r)
            side[name]["ms_min"] = fastest
        if name in llama and rnd == args.rounds - 1:
            profiles[name] = jvm.ask(f"profile {name} 2")
            del torch_runs[name]
            jvm.ask(f"drop {name}")
    peak = max(peak, jvm.ask("peak")["peak_gflops"])
    jvm.close()
    jvm_info = jvm.info
    qlora = [w for w in llama if w.startswith("llama-qlora-") and not args.no_memory]
    memory = memory_checks(args, qlora) if qlora else {}
    load_after = os.getloadavg()[0]

    rows = []
    for name in args.workloads:
        t, j = torch_results[name], jvm_results[name]
        # A layer workload's FLOPs come from the JVM side (bench.Workload, the one formula); a Llama step's from
        # llama_flops.
        gf = (j["flops"] if "flops" in j else llama_flops(name)) / 1e9
        rows.append({
            "workload": name, "gflop": gf,
            "torch_ms": t["ms"], "torch_gflops": gf / t["ms"] * 1e3,
            "jvm_ms": j["ms"], "jvm_gflops": gf / j["ms"] * 1e3,
            "speedup": t["ms"] / j["ms"],
            "torch_ms_min": t["ms_min"], "jvm_ms_min": j["ms_min"],
            "speedup_min": t["ms_min"] / j["ms_min"],
            "torch_peak_share": gf / t["ms"] * 1e3 / peak if peak else None,
            "jvm_peak_share": gf / j["ms"] * 1e3 / peak if peak else None,
        })

    print()
    print(f"PyTorch {torch_version} (OpenBLAS core {core}, OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', 'unset')})"
          f", OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}"
          f" vs tornado-lora JVM ({jvm_info['java']}, {jvm_info['vector_lanes']} float lanes), {args.threads} threads")
    if peak:
        print(f"measured fp32 peak: {peak:.1f} GFLOP/s (register-only FMA loop on all threads; best of the "
              f"measurements before and after)")
    print(f"load average: {load:.2f} before, {load_after:.2f} after")
    print()
    hdr = (f"{'workload':22s} {'torch ms':>10s} {'GFLOP/s':>8s} {'%peak':>6s} {'jvm ms':>10s} {'GFLOP/s':>8s} "
           f"{'%peak':>6s} {'speedup':>8s} {'(fastest runs)':>14s}")
    print(hdr)
    print("-" * len(hdr))
    for r in rows:
        tp = f"{100 * r['torch_peak_share']:5.1f}%" if peak else "     -"
        jp = f"{100 * r['jvm_peak_share']:5.1f}%" if peak else "     -"
        print(f"{r['workload']:22s} {r['torch_ms']:10.3f} {r['torch_gflops']:8.1f} {tp} "
              f"{r['jvm_ms']:10.3f} {r['jvm_gflops']:8.1f} {jp} {r['speedup']:7.2f}x {r['speedup_min']:13.2f}x")

    print()
    print("(ms: median of a round's runs, best round; speedup = PyTorch ms / JVM ms; 'fastest runs' compares the")
    print(" fastest single run of each side, which other processes' load can only slow down)")
    print()
    print("targets (issue 4: in = out = 4096, rank 16; issues 14/15: the Llama step; on the medians):")
    targets = []
    by_name = {r["workload"]: r for r in rows}
    for label, name, kind, goal in TARGETS:
        if kind == "speedup" and name in by_name:
            value = by_name[name]["speedup"]
            ok = value >= goal
            text = f"{value:.2f}x PyTorch (target >= {goal:g}x)"
        elif kind == "decode" and name in by_name and "fp32-fwd-4096x1" in by_name:
            value = by_name[name]["jvm_ms"] / by_name["fp32-fwd-4096x1"]["torch_ms"]
            ok = value <= goal
            text = (f"{by_name[name]['jvm_ms']:.3f} ms = {value:.3f} of PyTorch fp32 1-token "
                    f"{by_name['fp32-fwd-4096x1']['torch_ms']:.3f} ms (target <= {goal:g})")
        else:
            continue
        targets.append({"target": label, "workload": name, "value": value, "goal": goal, "met": ok})
        print(f"  {'MET   ' if ok else 'MISSED'} {label:40s} {text}")
    issue11_targets(by_name, targets)

    if profiles:
        print()
        print("where the JVM step's time goes (OpTimer wall time per op, ms per step, share of the step):")
        ops = list(next(iter(profiles.values()))["op_ms"])
        print(f"{'workload':26s} {'step ms':>8s} " + " ".join(f"{o:>13s}" for o in ops))
        for name, p in profiles.items():
            if "op_ms" not in p:
                print(f"{name:26s} {p}")
                continue
            print(f"{name:26s} {p['step_ms']:8.1f} " + " ".join(
                f"{p['op_ms'][o]:7.1f} {100 * p['op_ms'][o] / p['step_ms']:4.1f}%" for o in ops))
    if memory:
        print()
        print(f"QLoRA heap (target: peak <= {HEAP_TARGET} x (NF4 weights + activations); see llama_memory_model; "
              f"measured as the smallest -Xmx of {HEAP_LADDER} x that sum in which the step runs):")
        for name, r in memory.items():
            m = r["model"]
            print(f"  {name}: NF4 weights {m['nf4_weights'] / 2 ** 20:.1f} MB (projections "
                  f"{m['nf4_projections'] / 2 ** 20:.1f}, embeddings+lm_head+norms {m['dense_weights'] / 2 ** 20:.1f}),"
                  f" activations {m['activations'] / 2 ** 20:.1f} MB")
            for t in r["tries"]:
                detail = (f"runs; live after GC {t['live_mb']:.1f} MB, {t['gc_count']} GCs, {t['gc_ms']} ms of GC "
                          f"in 2 steps" if "error" not in t else t["error"])
                print(f"    -Xmx{t['xmx_mb']}m ({t['factor']} x): {detail}")
            k = r.get("fits_factor")
            met = k is not None and k <= HEAP_TARGET
            targets.append({"target": f"issue 14: QLoRA peak heap ({name})", "workload": name, "value": k,
                            "goal": HEAP_TARGET, "met": met})
            print(f"  {'MET   ' if met else 'MISSED'} QLoRA peak heap {name}: "
                  f"{'fits in %.1f x' % k if k else 'does not fit in %.1f x' % HEAP_LADDER[-1]} "
                  f"(target <= {HEAP_TARGET} x)")

    report = {
        "machine": {"cpu": cpu_name(), "cores": os.cpu_count(), "platform": platform.platform(),
                    "load_before": load, "load_after": load_after},
        "pytorch": {"version": torch_version, "openblas_core": core,
                    "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE"), "blas_choice": args.blas,
                    "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY")},
        "jvm": jvm_info, "rounds": args.rounds,
        "threads": args.threads, "seconds": args.seconds, "peak_gflops": peak,
        "rows": rows, "targets": targets, "llama_profiles": profiles, "llama_memory": memory,
    }
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(args.json + ".tmp")
    tmp.write_text(json.dumps(report, indent=2))
    tmp.replace(args.json)
    print(f"\nJSON: {args.json}")


def cpu_name():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


if __name__ == "__main__":
    main()
