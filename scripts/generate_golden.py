"""Greedy continuations from transformers 5.18 generate(do_sample=False) (+ PEFT 0.21 for the adapter) on the golden
models of scripts/llama_golden.py and scripts/family_golden.py (Llama, Qwen2, Qwen3, Mistral and Qwen2 with sliding
windows, Gemma), for GeneratorTest (issue 21); the sampling warpers on fixed logits (SamplerTest); and the `generate`
command's cases on the chat golden model of scripts/chat_golden.py (GenerateCommandTest).

For each model, without and with its adapter: a random prompt, then generate(max_new_tokens=32, do_sample=False)
in float64 with the config's eos_token_id (generation stops there, the EOS id included). The smallest gap between
the best and the second-best logit over the steps is recorded: a gap near 0 would make argmax fragile in fp32.

warpers.json: transformers' TemperatureLogitsWarper -> TopKLogitsWarper -> TopPLogitsWarper (the order and the
conditions of GenerationMixin._get_logits_processor for do_sample=True, min_tokens_to_keep=1) applied to fixed fp32
logits, some with ties; the warped scores (null where -inf) and softmax of them, the probabilities sampled from.

chat/generate.json (src/data): on the chat model (byte-level BPE tokenizer, llama3's template), without and with its
adapter: a text prompt tokenized as tokenizer(text) (BOS added) and a conversation rendered by
apply_chat_template(add_generation_prompt=True, tokenize=True); greedy generate(max_new_tokens=32) and the text
tokenizer.decode(generated, skip_special_tokens=True).

chat/sentencepiece/: a Llama-2-style tokenizer.json (BPE with byte fallback, "▁" for spaces, the decoder
Replace -> ByteFallback -> Fuse -> Strip(1 leading space)) trained with `tokenizers` on a few lines, and
decode.json: a text with multi-byte characters, its ids and tokenizer.decode(ids), for StreamingDetokenizerTest.

Run:  .venv-oracle/bin/python scripts/generate_golden.py   (writes src/core/src/test/resources/golden/generate.json,
      .../golden/warpers.json and src/data/src/test/resources/golden/chat/generate.json)
"""
import json
import sys
from pathlib import Path

import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM, AutoTokenizer
from transformers.generation.logits_process import TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper
from transformers.utils import logging as hf_logging

ROOT = Path(__file__).resolve().parent.parent / "src/core/src/test/resources/golden"
MODELS = ["llama/gqa2_bf16_attn", "families/qwen2_tied_attn", "families/qwen3_head_dim", "families/qwen3_qlora_tied",
          # sliding windows of 5 and 4 (< prompt + 32 new tokens: the window moves during decoding), Gemma's parts
          "families/mistral_window_gqa", "families/qwen2_sliding_layers", "families/gemma_tied_geglu"]
NEW_TOKENS = 32
CHAT = ROOT.parent.parent.parent.parent.parent / "data/src/test/resources/golden/chat"
# (temperature, top_k, top_p): each warper alone, together, and edge values (k = 1, k > vocab, small p)
WARPER_SETTINGS = [(0.7, 0, 1.0), (1.0, 5, 1.0), (1.0, 0, 0.9), (0.7, 10, 0.8), (1.5, 3, 0.5), (1.0, 1, 1.0),
                   (2.0, 0, 0.3), (1.0, 100, 1.0), (0.5, 7, 0.95), (1.0, 0, 0.05)]


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
    warpers()
    chat()
    sentencepiece()


def sentencepiece():
    from tokenizers import Tokenizer, models, decoders, trainers, normalizers
    tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    tok.normalizer = normalizers.Sequence([normalizers.Prepend("\u2581"), normalizers.Replace(" ", "\u2581")])
    tok.decoder = decoders.Sequence([decoders.Replace("\u2581", " "), decoders.ByteFallback(), decoders.Fuse(),
                                     decoders.Strip(" ", 1, 0)])
    corpus = ["the quick brown fox jumps over the lazy dog", "hello world, hello there", "a cafe in the town"] * 20
    tok.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=120, special_tokens=["<unk>", "<s>", "</s>"],
                                                        show_progress=False))
    spec = json.loads(tok.to_str())
    vocab = spec["model"]["vocab"]
    for b in range(256):  # Llama's byte-fallback pieces <0x00>..<0xFF>, for characters the merges do not cover
        vocab[f"<0x{b:02X}>"] = len(vocab)
    tok = Tokenizer.from_str(json.dumps(spec))
    out = CHAT / "sentencepiece"
    out.mkdir(exist_ok=True)
    tok.save(str(out / "tokenizer.json"))
    text = "hello world caf\u00e9 \u65e5\u672c \U0001F600 the fox"
    ids = tok.encode(text).ids
    (out / "decode.json").write_text(json.dumps({
        "reference": "tokenizers Tokenizer.decode(ids) (skip_special_tokens=True)", "vocab_size": tok.get_vocab_size(),
        "text": text, "ids": ids, "pieces": [tok.id_to_token(i) for i in ids], "decoded": tok.decode(ids)},
        indent=1, ensure_ascii=False) + "\n")
    print(f"sentencepiece: {len(ids)} ids")


def warp(scores, temperature, top_k, top_p):
    """generate(do_sample=True)'s warpers, in _get_logits_processor's order and conditions."""
    if temperature != 1.0:
        scores = TemperatureLogitsWarper(temperature)(None, scores)
    if top_k != 0:
        scores = TopKLogitsWarper(top_k=top_k, min_tokens_to_keep=1)(None, scores)
    if top_p < 1.0:
        scores = TopPLogitsWarper(top_p=top_p, min_tokens_to_keep=1)(None, scores)
    return scores


def warpers():
    gen = torch.Generator().manual_seed(7)
    rows = [torch.randn(1, 50, generator=gen) * 3,                       # distinct values
            (torch.randn(1, 50, generator=gen) * 2).round(decimals=0),   # many ties
            torch.randn(1, 50, generator=gen) * 0.1]                     # nearly flat
    cases = []
    for r, logits in enumerate(rows):
        logits = logits.float()
        for temperature, top_k, top_p in WARPER_SETTINGS:
            w = warp(logits.clone(), temperature, top_k, top_p)
            p = torch.softmax(w, dim=-1)
            cases.append({"row": r, "temperature": temperature, "top_k": top_k, "top_p": top_p,
                          "warped": [None if v == float("-inf") else v for v in w[0].tolist()],
                          "probabilities": p[0].tolist()})
    (ROOT / "warpers.json").write_text(json.dumps({
        "reference": "transformers 5.18 TemperatureLogitsWarper -> TopKLogitsWarper -> TopPLogitsWarper "
                     "(min_tokens_to_keep=1) on fp32 logits; warped null = -inf; probabilities = softmax(warped)",
        "logits": [row[0].float().tolist() for row in rows], "cases": cases}, indent=1) + "\n")
    print(f"warpers.json: {len(cases)} cases")


def chat():
    tok = AutoTokenizer.from_pretrained(CHAT / "model")
    text = "What is the colour of the sky? été 😀"
    messages = [{"role": "system", "content": "You answer briefly."},
                {"role": "user", "content": "Name a colour, café 日本."}]
    prompts = {"prompt": tok(text)["input_ids"],
               "messages": list(tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=True,
                                                        return_dict=True)["input_ids"])}
    cases = []
    for adapter in (False, True):
        model = AutoModelForCausalLM.from_pretrained(CHAT / "model", dtype=torch.float32,
                                                     attn_implementation="sdpa").double().eval()
        if adapter:
            model = PeftModel.from_pretrained(model, CHAT / "adapter").double().eval()
        for kind, ids in prompts.items():
            prompt = torch.tensor([ids])
            with torch.no_grad():
                out = model.generate(input_ids=prompt, attention_mask=torch.ones_like(prompt), do_sample=False,
                                     max_new_tokens=NEW_TOKENS, output_scores=True, return_dict_in_generate=True)
            gen = out.sequences[0, prompt.shape[1]:].tolist()
            gap = min((s[0].topk(2).values[0] - s[0].topk(2).values[1]).item() for s in out.scores)
            cases.append({"input": kind, "adapter": adapter, "prompt_ids": ids, "generated": gen,
                          "text": tok.decode(gen, skip_special_tokens=True), "min_top2_gap": gap})
            print(f"chat {kind:8s} adapter={adapter!s:5s} {len(gen):2d} tokens, min top-2 gap {gap:.3g}")
    (CHAT / "generate.json").write_text(json.dumps({
        "reference": "transformers 5.18 generate(do_sample=False, max_new_tokens=32) in float64 (+ PEFT 0.21), "
                     "tokenizer(text) / apply_chat_template(add_generation_prompt=True), "
                     "decode(skip_special_tokens=True)",
        "prompt": text, "messages": messages, "cases": cases}, indent=1, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    sys.exit(main())
