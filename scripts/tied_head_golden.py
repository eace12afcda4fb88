"""Golden fixtures for tie_word_embeddings as transformers 5.18's from_pretrained resolves it (issue 23, class 6).

config.json says tie_word_embeddings: true, and the file holds:
  file_head    model.embed_tokens.weight AND a different lm_head.weight: transformers does NOT tie
               (PreTrainedModel.tie_weights: "both are present in the checkpoints with different values, so we
               will NOT tie them"): the logits use the file's lm_head.
  equal_head   both, with equal values: tied (the same values either way).
  head_only    only lm_head.weight: the tie is made the other way round (the source and target are swapped), so
               the embedding is the file's lm_head.
For each case <out>/<case>/ holds model/ (config.json + model.safetensors), input.safetensors (input_ids I64 [B, S])
and expected.safetensors (logits F32 [B, S, V] from transformers' LlamaForCausalLM.from_pretrained in float64).

Run:  PY=$(scripts/oracle-venv.sh | tail -1); $PY scripts/tied_head_golden.py [--out DIR]
Default --out: src/core/src/test/resources/golden/llama_tied. Deterministic (fixed seeds, one thread).
"""
import argparse
import json
import shutil
from pathlib import Path

import torch
from safetensors.torch import save_file
from transformers import LlamaConfig, LlamaForCausalLM

REPO_ROOT = Path(__file__).resolve().parent.parent
CONFIG = dict(vocab_size=40, hidden_size=16, intermediate_size=24, num_hidden_layers=1, num_attention_heads=2,
              num_key_value_heads=2, head_dim=8, tie_word_embeddings=True, max_position_embeddings=64,
              rms_norm_eps=1e-5, rope_theta=10000.0)


def weights(gen, cfg):
    """Random weights as a state dict (std 0.5 so that the head makes a visible difference in the logits)."""
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(**{**CONFIG, "tie_word_embeddings": False}))
    out = {}
    for k, v in model.state_dict().items():
        if k.endswith("norm.weight"):
            out[k] = 1 + 0.1 * torch.randn(v.shape, generator=gen)
        else:
            out[k] = 0.5 * torch.randn(v.shape, generator=gen)
    return {k: v.float().contiguous() for k, v in out.items()}


def write_case(out, name, w):
    d = out / name
    shutil.rmtree(d, ignore_errors=True)
    (d / "model").mkdir(parents=True)
    cfg = LlamaConfig(**CONFIG)
    cfg.architectures = ["LlamaForCausalLM"]
    (d / "model" / "config.json").write_text(json.dumps(cfg.to_dict(), indent=2, sort_keys=True))
    save_file(w, d / "model" / "model.safetensors", metadata={"format": "pt"})
    model = LlamaForCausalLM.from_pretrained(d / "model", dtype=torch.float64, attn_implementation="eager")
    model.eval()
    gen = torch.Generator().manual_seed(7)
    ids = torch.randint(0, CONFIG["vocab_size"], (2, 5), generator=gen, dtype=torch.int64)
    with torch.no_grad():
        logits = model(input_ids=ids).logits
    head = model.lm_head.weight.detach().float()
    emb = model.model.embed_tokens.weight.detach().float()
    tied = model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
    save_file({"input_ids": ids}, d / "input.safetensors")
    save_file({"logits": logits.float().contiguous()}, d / "expected.safetensors")
    (d / "case.json").write_text(json.dumps({"case": name, "transformers_tied": tied,
                                             "head_is_file_lm_head": bool("lm_head.weight" in w and torch.equal(head, w["lm_head.weight"])),
                                             "embedding_is_file_lm_head": bool("lm_head.weight" in w and torch.equal(emb, w["lm_head.weight"]))},
                                            indent=2, sort_keys=True) + "\n")
    print(name, "tied" if tied else "untied")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--out", type=Path, default=REPO_ROOT / "src/core/src/test/resources/golden/llama_tied")
    a = p.parse_args()
    torch.set_num_threads(1)
    gen = torch.Generator().manual_seed(23)
    w = weights(gen, CONFIG)
    write_case(a.out, "file_head", w)
    equal = dict(w)
    equal["lm_head.weight"] = w["model.embed_tokens.weight"].clone()
    write_case(a.out, "equal_head", equal)
    only = {k: v for k, v in w.items() if k != "model.embed_tokens.weight"}
    write_case(a.out, "head_only", only)


if __name__ == "__main__":
    main()
