"""Random Llama checkpoints of real architectures, for the memory benchmark (benchmarks/memory_bench.py).

transformers builds the model from its own LlamaConfig with its own initialisation (normal(0, 0.02)), in BF16, and
saves it as a Hugging Face folder (config.json + model.safetensors shards of at most 1 GB); next to it,
tokens.safetensors holds random pre-tokenized rows (input_ids I64 [rows, seq]) that `finetune --data` reads, and
eval.safetensors the first of them (`--eval-data`).

    .venv-oracle/bin/python scripts/make_random_llama.py tinyllama-1.1b OUT/tinyllama --seq 512 --rows 8
"""
import argparse
import os

import torch
from safetensors.torch import save_file
from transformers import LlamaConfig, LlamaForCausalLM

SHAPES = {
    # TinyLlama/TinyLlama-1.1B-Chat-v1.0's config.json
    "tinyllama-1.1b": dict(vocab_size=32000, hidden_size=2048, intermediate_size=5632, num_hidden_layers=22,
                           num_attention_heads=32, num_key_value_heads=4, max_position_embeddings=2048,
                           rms_norm_eps=1e-5, rope_theta=10000.0, tie_word_embeddings=False),
    # meta-llama/Llama-3.2-1B's config.json
    "llama-3.2-1b": dict(vocab_size=128256, hidden_size=2048, intermediate_size=8192, num_hidden_layers=16,
                         num_attention_heads=32, num_key_value_heads=8, head_dim=64, max_position_embeddings=131072,
                         rms_norm_eps=1e-5, rope_theta=500000.0, tie_word_embeddings=True,
                         rope_scaling=dict(rope_type="llama3", factor=32.0, low_freq_factor=1.0,
                                           high_freq_factor=4.0, original_max_position_embeddings=8192)),
    # the Llama step benchmark's configuration (docs/benchmarks.md)
    "bench": dict(vocab_size=8192, hidden_size=1024, intermediate_size=2816, num_hidden_layers=4,
                  num_attention_heads=16, num_key_value_heads=4, max_position_embeddings=2048,
                  rms_norm_eps=1e-5, rope_theta=10000.0, tie_word_embeddings=False),
}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("shape", choices=sorted(SHAPES))
    p.add_argument("out")
    p.add_argument("--seq", type=int, default=512)
    p.add_argument("--rows", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    torch.manual_seed(a.seed)
    config = LlamaConfig(bos_token_id=1, eos_token_id=2, **SHAPES[a.shape])
    torch.set_default_dtype(torch.bfloat16)
    model = LlamaForCausalLM(config).to(torch.bfloat16)
    torch.set_default_dtype(torch.float32)
    os.makedirs(a.out, exist_ok=True)
    model.save_pretrained(a.out, max_shard_size="1GB", safe_serialization=True)
    ids = torch.randint(3, config.vocab_size, (a.rows, a.seq), dtype=torch.int64)
    save_file({"input_ids": ids}, os.path.join(a.out, "tokens.safetensors"))
    save_file({"input_ids": ids[:1].clone()}, os.path.join(a.out, "eval.safetensors"))
    print(f"{a.out}: {a.shape}, {sum(t.numel() for t in model.parameters()) / 1e9:.2f} B parameters (BF16),"
          f" tokens.safetensors [{a.rows}, {a.seq}]")


if __name__ == "__main__":
    main()
