"""Golden fixtures for the model families beside Llama (issue 21) from transformers 5.18 + PEFT 0.21.

The same layout, reference and checks as scripts/llama_golden.py (whose write_case this calls with each family's
transformers classes): logits, loss and every adapter gradient in float64, fp32 and quantize_base, plus the
independent float64 forward (biases, q_norm/k_norm) as a cross-check.

  qwen2_tied_attn        Qwen2ForCausalLM: q/k/v biases, rope_theta 1e6, tied embeddings, GQA 2:1,
                         LoRA on q/k/v/o (the biases stay frozen base parameters)
  qwen2_qlora_mlp        Qwen2 with quantize_base (NF4 weights, fp32 biases), untied, LoRA on q, v and the MLP
  qwen3_head_dim         Qwen3ForCausalLM: q_norm/k_norm, head_dim 16 != hidden 32 / 4 heads, untied, LoRA on
                         q/k/v/o and lm_head
  qwen3_qlora_tied       Qwen3 with quantize_base, tied, head_dim 64 != 128 / 4, LoRA on every projection
  qwen2_sliding_layers   Qwen2 with use_sliding_window, sliding_window 4, max_window_layers 1: layer 0 full,
                         layer 1 sliding (Qwen2Config's layer_types); seq 12 > 4; LoRA on k and the MLP's gate
  mistral_window_gqa     MistralForCausalLM: sliding_window 5 < seq 14 on every layer, GQA 2:1, untied, LoRA on
                         q, v and down_proj
  mistral_qlora_bf16     Mistral quantize_base on BF16 weights, sliding_window 6 < seq 12, head_dim 64 != 128 / 4
                         (as Mistral Nemo's), LoRA on k, o, gate and up
  gemma_tied_geglu       GemmaForCausalLM: embeddings x sqrt(hidden), RMSNorm (1 + w), GeGLU (gelu_pytorch_tanh),
                         tied lm_head, multi-query (1 KV head), head_dim 16, LoRA on q, v and the MLP
  gemma_qlora_head256    Gemma quantize_base, head_dim 256 (Gemma's), 2 heads / 1 KV head, LoRA on every projection

Run:  .venv-oracle/bin/python scripts/family_golden.py [--out DIR] [--case NAME]
      .venv-oracle/bin/python scripts/family_golden.py --out /tmp/cases --family mistral --random 1 --random 2 \
          [--quantize-base]                  (random cases of a family, for scripts/forward_parity.py)
Default --out: src/core/src/test/resources/golden/families.

Random cases draw the Llama-shaped part as scripts/llama_golden.py --random does (sizes, GQA, head_dim, tying, rope,
dtype, LoRA on a subset of projections, rank, alpha, rsLoRA, batch, length), then the family's own fields: Qwen2/Qwen3
use_sliding_window with a window shorter than the rows and max_window_layers (or not), Mistral a sliding_window
shorter than the rows (or null), Gemma nothing more (its parts are fixed). llama3 rope scaling is dropped for the
families (their checkpoints use default rope).
"""
import argparse
import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import llama_golden  # noqa: E402
from transformers import (GemmaConfig, GemmaForCausalLM, MistralConfig, MistralForCausalLM,  # noqa: E402
                          Qwen2Config, Qwen2ForCausalLM, Qwen3Config, Qwen3ForCausalLM)
from transformers.utils import logging as hf_logging  # noqa: E402

ATTN = ["q_proj", "k_proj", "v_proj", "o_proj"]
MLP = ["gate_proj", "up_proj", "down_proj"]

CASES = [
    (Qwen2Config, Qwen2ForCausalLM, dict(
        name="qwen2_tied_attn",
        config=dict(vocab_size=96, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                    num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True, rope_theta=1e6,
                    max_position_embeddings=64),
        lora=dict(target_modules=ATTN, r=4, lora_alpha=8.0, use_rslora=False),
        batch=2, seq=14, dtype="float32",
        notes="Qwen2: q/k/v biases (frozen, not adapted), rope_theta 1e6, tied, GQA 2:1, LoRA on q/k/v/o")),
    (Qwen2Config, Qwen2ForCausalLM, dict(
        name="qwen2_qlora_mlp",
        config=dict(vocab_size=128, hidden_size=128, intermediate_size=128, num_hidden_layers=2,
                    num_attention_heads=4, num_key_value_heads=4, tie_word_embeddings=False, rope_theta=1e6,
                    max_position_embeddings=64),
        lora=dict(target_modules=["q_proj", "v_proj"] + MLP, r=4, lora_alpha=16.0, use_rslora=False),
        batch=2, seq=12, dtype="bfloat16", quantize_base=True,
        notes="Qwen2 quantize_base on BF16 weights: every projection weight NF4, the q/k/v biases full precision; "
              "untied; LoRA on q, v and the MLP")),
    (Qwen3Config, Qwen3ForCausalLM, dict(
        name="qwen3_head_dim",
        config=dict(vocab_size=100, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                    num_attention_heads=4, num_key_value_heads=2, head_dim=16, tie_word_embeddings=False,
                    rope_theta=1e6, max_position_embeddings=64),
        lora=dict(target_modules=ATTN + ["lm_head"], r=4, lora_alpha=8.0, use_rslora=True),
        batch=3, seq=10, dtype="float32",
        notes="Qwen3: q_norm/k_norm (per-head RMSNorm before RoPE), head_dim 16 != 32/4, GQA 2:1, untied, "
              "rsLoRA on q/k/v/o and lm_head")),
    (Qwen3Config, Qwen3ForCausalLM, dict(
        name="qwen3_qlora_tied",
        config=dict(vocab_size=128, hidden_size=128, intermediate_size=128, num_hidden_layers=2,
                    num_attention_heads=4, num_key_value_heads=2, head_dim=64, tie_word_embeddings=True,
                    rope_theta=1e6, max_position_embeddings=64),
        lora=dict(target_modules=ATTN + MLP, r=4, lora_alpha=8.0, use_rslora=False),
        batch=2, seq=12, dtype="float32", quantize_base=True,
        notes="Qwen3 quantize_base, tied, head_dim 64 != 128/4, LoRA on every projection")),
    (Qwen2Config, Qwen2ForCausalLM, dict(
        name="qwen2_sliding_layers",
        config=dict(vocab_size=80, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                    num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=False, rope_theta=1e6,
                    use_sliding_window=True, sliding_window=4, max_window_layers=1, max_position_embeddings=64),
        lora=dict(target_modules=["k_proj", "gate_proj"], r=4, lora_alpha=8.0, use_rslora=False),
        batch=2, seq=12, dtype="float32",
        notes="Qwen2 use_sliding_window, sliding_window 4, max_window_layers 1: layer_types [full, sliding]; "
              "seq 12 > 4; LoRA on k_proj and gate_proj")),
    (MistralConfig, MistralForCausalLM, dict(
        name="mistral_window_gqa",
        config=dict(vocab_size=96, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                    num_attention_heads=4, num_key_value_heads=2, sliding_window=5, tie_word_embeddings=False,
                    max_position_embeddings=64),
        lora=dict(target_modules=["q_proj", "v_proj", "down_proj"], r=4, lora_alpha=8.0, use_rslora=False),
        batch=2, seq=14, dtype="float32",
        notes="Mistral: sliding_window 5 < seq 14 on every layer, GQA 2:1, untied, LoRA on q, v, down_proj")),
    (MistralConfig, MistralForCausalLM, dict(
        name="mistral_qlora_bf16",
        config=dict(vocab_size=128, hidden_size=128, intermediate_size=128, num_hidden_layers=2,
                    num_attention_heads=4, num_key_value_heads=2, head_dim=64, sliding_window=6,
                    tie_word_embeddings=False, max_position_embeddings=64),
        lora=dict(target_modules=["k_proj", "o_proj", "gate_proj", "up_proj"], r=4, lora_alpha=16.0, use_rslora=True),
        batch=2, seq=12, dtype="bfloat16", quantize_base=True,
        notes="Mistral quantize_base on BF16 weights, sliding_window 6 < seq 12, head_dim 64 != 128/4, rsLoRA on "
              "k, o, gate, up")),
    (GemmaConfig, GemmaForCausalLM, dict(
        name="gemma_tied_geglu",
        config=dict(vocab_size=96, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                    num_attention_heads=4, num_key_value_heads=1, head_dim=16, max_position_embeddings=64),
        lora=dict(target_modules=["q_proj", "v_proj"] + MLP, r=4, lora_alpha=8.0, use_rslora=False),
        batch=2, seq=12, dtype="float32",
        notes="Gemma: embeddings x sqrt(hidden), RMSNorm (1 + w), GeGLU gelu_pytorch_tanh, tied lm_head (the "
              "default), 4 heads / 1 KV head, head_dim 16 != 32/4, LoRA on q, v and the MLP")),
    (GemmaConfig, GemmaForCausalLM, dict(
        name="gemma_qlora_head256",
        config=dict(vocab_size=128, hidden_size=128, intermediate_size=128, num_hidden_layers=2,
                    num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=64),
        lora=dict(target_modules=ATTN + MLP, r=4, lora_alpha=8.0, use_rslora=False),
        batch=2, seq=12, dtype="float32", quantize_base=True,
        notes="Gemma quantize_base, head_dim 256 (GemmaConfig's default), 2 heads / 1 KV head, tied, LoRA on "
              "every projection")),
]


FAMILIES = {"qwen2": (Qwen2Config, Qwen2ForCausalLM), "qwen3": (Qwen3Config, Qwen3ForCausalLM),
            "mistral": (MistralConfig, MistralForCausalLM), "gemma": (GemmaConfig, GemmaForCausalLM)}


def random_family_case(family, seed, quantize):
    """llama_golden.random_case's draw with the family's own fields (see the module docstring)."""
    import random
    case = llama_golden.random_case(seed, quantize)
    rng = random.Random(seed * 7919 + len(family))
    cfg = case["config"]
    cfg.pop("rope_scaling", None)
    seq = case["seq"]
    if family in ("qwen2", "qwen3") and rng.random() < 0.6:
        cfg.update(use_sliding_window=True, sliding_window=rng.randint(1, max(1, seq - 1)),
                   max_window_layers=rng.randint(0, cfg["num_hidden_layers"] - 1))
    elif family == "mistral":
        cfg["sliding_window"] = rng.randint(1, max(1, seq - 1)) if rng.random() < 0.8 else None
    case["name"] = f"{family}_{case['name']}"
    case["notes"] = f"random {family} case, seed {seed}: {cfg}"
    return case


def main():
    if os.environ.get("PYTHONHASHSEED") != "0":  # PEFT writes target_modules from a set: fix its order
        os.execve(sys.executable, [sys.executable] + sys.argv, {**os.environ, "PYTHONHASHSEED": "0"})
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", help="output directory (relative paths from the repo root)")
    ap.add_argument("--case", action="append", help="only these cases (repeatable)")
    ap.add_argument("--family", choices=sorted(FAMILIES), help="with --random: the family of the random cases")
    ap.add_argument("--random", type=int, action="append", metavar="SEED",
                    help="instead of the fixed cases: a random case of --family per seed")
    ap.add_argument("--quantize-base", action="store_true", help="with --random: quantize_base cases")
    args = ap.parse_args()
    if bool(args.random) != bool(args.family):
        ap.error("--random and --family go together")
    out = Path(args.out) if args.out else llama_golden.REPO_ROOT / "src/core/src/test/resources/golden/families"
    out = out if out.is_absolute() else llama_golden.REPO_ROOT / out
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    hf_logging.disable_progress_bar()
    total = 0
    cases = CASES
    if args.random:
        cases = [FAMILIES[args.family] + (random_family_case(args.family, s, args.quantize_base),) for s in args.random]
    for config_cls, model_cls, case in cases:
        if args.random or not args.case or case["name"] in args.case:
            total += llama_golden.write_case(out, case, config_cls, model_cls)
    print(f"{total / 2 ** 20:.2f} MiB in {out}")


if __name__ == "__main__":
    main()
