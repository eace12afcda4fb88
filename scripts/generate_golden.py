"""Greedy continuations from transformers 5.18 generate(do_sample=False) (+ PEFT 0.21 for the adapter) on the golden
models of scripts/llama_golden.py and scripts/family_golden.py (Llama, Qwen2, Qwen3, Mistral and Qwen2 with sliding
windows, Gemma), for GeneratorTest (issue 21).

For each model, without and with its adapter: a random prompt, then generate(max_new_tokens=32, do_sample=False)
in float64 with the config's eos_token_id (generation stops there, the EOS id included). The smallest gap between
the best and the second-best logit over the steps is recorded: a gap near 0 would make argmax fragile in fp32.

Run:  .venv-oracle/bin/python scripts/generate_golden.py   (writes src/core/src/test/resources/golden/generate.json)
"""
import json
import sys
from pathlib import Path

import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM
from transformers.utils import logging as hf_logging

ROOT = Path(__file__).resolve().parent.parent / "src/core/src/test/resources/golden"
MODELS = ["llama/gqa2_bf16_attn", "families/qwen2_tied_attn", "families/qwen3_head_dim", "families/qwen3_qlora_tied",
          # sliding windows of 5 and 4 (< prompt + 32 new tokens: the window moves during decoding), Gemma's parts
          "families/mistral_window_gqa", "families/qwen2_sliding_layers", "families/gemma_tied_geglu"]
NEW_TOKENS = 32


def main():
    torch.set_num_threads(1)
    hf_logging.disable_progress_bar()
    cases = []
    for i, name in enumerate(MODELS):
        case = json.loads((ROOT / name / "case.json").read_text())
        if case["quantize_base"]:
            continue  # the reference would need the NF4-dequantized base; the fp32 cases cover generation
        for adapter in (False, True):
            gen = torch.Generator().manual_seed(1000 + 2 * i + adapter)
            model = AutoModelForCausalLM.from_pretrained(ROOT / name / "model", dtype=torch.float32,
                                                         attn_implementation="sdpa").double().eval()
            if adapter:
                model = PeftModel.from_pretrained(model, ROOT / name / "adapter").double().eval()
            vocab = model.config.vocab_size
            prompt = torch.randint(0, vocab, (1, 5 + i), generator=gen)
            with torch.no_grad():
                out = model.generate(input_ids=prompt, attention_mask=torch.ones_like(prompt), do_sample=False,
                                     max_new_tokens=NEW_TOKENS, output_scores=True, return_dict_in_generate=True)
            ids = out.sequences[0, prompt.shape[1]:].tolist()
            gap = min((s[0].topk(2).values[0] - s[0].topk(2).values[1]).item() for s in out.scores)
            cases.append({"model": name, "adapter": adapter, "prompt": prompt[0].tolist(), "generated": ids,
                          "eos_token_id": model.config.eos_token_id, "min_top2_gap": gap})
            print(f"{name:28s} adapter={adapter!s:5s} {len(ids):2d} tokens, min top-2 gap {gap:.3g}")
    (ROOT / "generate.json").write_text(json.dumps({
        "reference": "transformers 5.18 generate(do_sample=False, max_new_tokens=32) in float64 (+ PEFT 0.21 "
                     "PeftModel.from_pretrained for adapter=true), batch 1, no padding",
        "cases": cases}, indent=1) + "\n")


if __name__ == "__main__":
    sys.exit(main())
