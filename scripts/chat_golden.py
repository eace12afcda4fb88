"""Golden data for instruction/chat fine-tuning (issue 25) from TRL 1.13 + transformers 5.18, written under
src/data/src/test/resources/golden/chat/:

  tokenizer/           a byte-level BPE tokenizer.json (trained with `tokenizers` on the conversations below) with
                       every listed template's special tokens, and BOS added by its post-processor (as Llama's)
  templates/NAME.jinja TRL's chat templates (trl/chat_templates/), originals and `_training` variants
  render.json          per template and conversation, with and without add_generation_prompt: transformers'
                       apply_chat_template text (or the exception it raises), and under a generation-tagged
                       template the ids and assistant_masks of return_assistant_tokens_mask=True
  data/*.jsonl         one file per dataset type (language modeling, prompt-completion, conversational,
                       conversational prompt-completion, alpaca)
  sft.json             per (dataset, template, options): TRL SFTTrainer's prepared rows (input_ids, labels, and
                       with packing seq_lengths + the collator's position_ids / labels)
  model/, adapter/     a small random Llama on this tokenizer (llama3's template) and a PEFT adapter with
                       non-zero B, for finetune's parity with transformers + PEFT on chat data

Run with the oracle environment: PY=$(scripts/oracle-venv.sh | tail -1); $PY scripts/chat_golden.py
"""
import json
import shutil
import sys
import warnings
from pathlib import Path

import trl
from datasets import Dataset
from tokenizers import Tokenizer, models, pre_tokenizers, decoders, trainers, processors
from transformers import AutoTokenizer
from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

ROOT = Path(__file__).resolve().parent.parent / "src/data/src/test/resources/golden/chat"
TEMPLATES_DIR = Path(trl.__file__).parent / "chat_templates"
TEMPLATES = ["llama3", "llama3_1", "llama3_2", "qwen2_5", "qwen3", "phi3", "gemma", "gemma3"]
TRAINING = {t: t + "_training" for t in TEMPLATES if (TEMPLATES_DIR / (t + "_training.jinja")).exists()}
SPECIALS = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>",
            "<|eom_id|>", "<|python_tag|>", "<|im_start|>", "<|im_end|>", "<|endoftext|>", "<|system|>",
            "<|user|>", "<|assistant|>", "<|end|>", "<bos>", "<eos>", "<pad>", "<start_of_turn>", "<end_of_turn>",
            "<think>", "</think>", "<tool_call>", "</tool_call>", "<start_of_image>"]
# bos/eos/pad per template family, as the real models' tokenizer_config.json name them
TOKENS = {
    "llama3": ("<|begin_of_text|>", "<|eot_id|>"), "llama3_1": ("<|begin_of_text|>", "<|eot_id|>"),
    "llama3_2": ("<|begin_of_text|>", "<|eot_id|>"), "qwen2_5": (None, "<|im_end|>"),
    "qwen3": (None, "<|im_end|>"), "phi3": ("<|begin_of_text|>", "<|end|>"), "gemma": ("<bos>", "<eos>"),
    "gemma3": ("<bos>", "<end_of_turn>"),
}
DATE = {"date_string": "26 Jul 2024"}  # llama3_2 would otherwise print today's date

CONVERSATIONS = [
    [{"role": "user", "content": "What is 2 + 2?"}, {"role": "assistant", "content": "It is 4."}],
    [{"role": "system", "content": "You answer briefly."}, {"role": "user", "content": "Name a colour."},
     {"role": "assistant", "content": "Blue."}, {"role": "user", "content": "  Another one?  "},
     {"role": "assistant", "content": "Green, or maybe red."}],
    [{"role": "user", "content": "Héllo ✓ 日本語 — quotes \"x\" and 'y'\nnew line"}],
    [{"role": "user", "content": "Think first."},
     {"role": "assistant", "content": "<think>\nTwo and two.\n</think>\n\nFour — 四 ✓."}],
    [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}],
]


def tokenizer_json(path):
    corpus = [m["content"] for c in CONVERSATIONS for m in c] + [
        "The quick brown fox jumps over the lazy dog.", "Below is an instruction that describes a task.",
        "### Instruction:\n### Input:\n### Response:\n", "system user assistant model tool"] * 3
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=420, special_tokens=SPECIALS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(corpus, trainer)
    bos = tok.token_to_id("<|begin_of_text|>")
    tok.post_processor = processors.TemplateProcessing(single="<|begin_of_text|> $A",
                                                       pair="<|begin_of_text|> $A <|begin_of_text|> $B",
                                                       special_tokens=[("<|begin_of_text|>", bos)])
    tok.save(str(path))


def model_dir(name, template_text):
    """A tokenizer folder for one template: the shared tokenizer.json + tokenizer_config.json."""
    d = ROOT / "models" / name
    d.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "tokenizer" / "tokenizer.json", d / "tokenizer.json")
    bos, eos = TOKENS[name.removesuffix("_training")]
    cfg = {"tokenizer_class": "PreTrainedTokenizerFast", "bos_token": bos, "eos_token": eos,
           "pad_token": None, "model_max_length": 4096, "chat_template": template_text}
    (d / "tokenizer_config.json").write_text(json.dumps(cfg, indent=2, ensure_ascii=False) + "\n")
    return d


def render_cases():
    out = {}
    for name in TEMPLATES + list(TRAINING.values()):
        text = (TEMPLATES_DIR / f"{name}.jinja").read_text(encoding="utf-8")
        (ROOT / "templates").mkdir(exist_ok=True)
        (ROOT / "templates" / f"{name}.jinja").write_text(text, encoding="utf-8")
        tok = AutoTokenizer.from_pretrained(model_dir(name, text))
        cases = []
        for ci, conv in enumerate(CONVERSATIONS):
            for gen in (False, True):
                case = {"conversation": ci, "add_generation_prompt": gen}
                try:
                    case["text"] = tok.apply_chat_template(conv, tokenize=False, add_generation_prompt=gen, **DATE)
                    if "{% generation %}" in text or "{%- generation %}" in text:
                        r = tok.apply_chat_template(conv, tokenize=True, return_dict=True, add_generation_prompt=gen,
                                                    return_assistant_tokens_mask=True, **DATE)
                        case["input_ids"] = list(r["input_ids"])
                        case["assistant_masks"] = list(r["assistant_masks"])
                except Exception as e:  # the template's raise_exception
                    case["error"] = str(e)
                cases.append(case)
        out[name] = cases
    return out


DATASETS = {
    "text": [{"text": "The quick brown fox."}, {"text": "Jumps over the lazy dog, twice over and over again."},
             {"text": "Héllo ✓"}, {"text": "short"}],
    "prompt_completion": [{"prompt": "What is 2 + 2?", "completion": " It is 4."},
                          {"prompt": "Name a colour:", "completion": " Blue, or green, or red."},
                          {"prompt": "Say hi", "completion": " hi"}],
    "messages": [{"messages": c} for c in CONVERSATIONS[:2] + [CONVERSATIONS[3]]] + [
        {"messages": [{"role": "user", "content": "Count to three."},
                      {"role": "assistant", "content": "One, two, three."},
                      {"role": "user", "content": "Now backwards."},
                      {"role": "assistant", "content": "Three, two, one."}]}],
    "conversational_prompt_completion": [
        {"prompt": [{"role": "user", "content": "What is 2 + 2?"}],
         "completion": [{"role": "assistant", "content": "It is 4."}]},
        {"prompt": [{"role": "user", "content": "Name a colour."}, {"role": "assistant", "content": "Blue."},
                    {"role": "user", "content": "Another?"}],
         "completion": [{"role": "assistant", "content": "Green."}]}],
}
# torchtune's alpaca prompt (torchtune.data.AlpacaToMessages), mapped to prompt-completion
ALPACA = [{"instruction": "Add the numbers.", "input": "2 and 2", "output": "4"},
          {"instruction": "Name a colour.", "input": "", "output": "Blue."}]


def alpaca_prompt(ex):
    if ex["input"]:
        return ("Below is an instruction that describes a task, paired with an input that provides further context. "
                "Write a response that appropriately completes the request.\n\n"
                f"### Instruction:\n{ex['instruction']}\n\n### Input:\n{ex['input']}\n\n### Response:\n")
    return ("Below is an instruction that describes a task. Write a response that appropriately completes the "
            f"request.\n\n### Instruction:\n{ex['instruction']}\n\n### Response:\n")


def sft_rows(tok_dir, rows, max_length, packing, assistant_only, truncation_mode="keep_start"):
    """TRL's own preprocessing: SFTTrainer._prepare_dataset, then the collator per row when packing."""
    from trl import SFTConfig, SFTTrainer
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM
    tok = AutoTokenizer.from_pretrained(tok_dir)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=len(tok), hidden_size=16, intermediate_size=32,
                                         num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1))
    args = SFTConfig(output_dir="/tmp/chat-golden-sft", max_length=max_length, packing=packing,
                     assistant_only_loss=assistant_only, truncation_mode=truncation_mode, report_to=[],
                     dataset_num_proc=None, shuffle_dataset=False, use_cpu=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer = SFTTrainer(model=model, args=args, train_dataset=Dataset.from_list(rows), processing_class=tok)
    ds = trainer.train_dataset
    out = []
    for r in ds:
        row = {"input_ids": list(r["input_ids"]), "labels": list(r["labels"])}
        if packing:
            row["seq_lengths"] = list(r["seq_lengths"])
            b = trainer.data_collator([r])
            row["position_ids"] = b["position_ids"][0].tolist()
            row["collated_labels"] = b["labels"][0].tolist()
        out.append(row)
    return out


def main():
    if ROOT.exists():
        shutil.rmtree(ROOT)
    (ROOT / "tokenizer").mkdir(parents=True)
    tokenizer_json(ROOT / "tokenizer" / "tokenizer.json")
    (ROOT / "render.json").write_text(json.dumps(
        {"conversations": CONVERSATIONS, "date_string": DATE["date_string"], "cases": render_cases()},
        indent=1, ensure_ascii=False) + "\n")
    data = ROOT / "data"
    data.mkdir()
    for name, rows in DATASETS.items():
        (data / f"{name}.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    (data / "alpaca.json").write_text(json.dumps(ALPACA, indent=1, ensure_ascii=False) + "\n")
    alpaca_pc = [{"prompt": alpaca_prompt(e), "completion": e["output"]} for e in ALPACA]
    cases = []
    chat_templates = ["llama3", "llama3_1", "qwen2_5", "qwen3", "phi3", "gemma3"]
    plain = "llama3"  # the text datasets need no template; the tokenizer's BOS/EOS of llama3
    specs = []
    for packing, max_len in ((False, 24), (False, None), (True, 40)):
        specs.append(("text.jsonl", DATASETS["text"], plain, packing, max_len, False))
        specs.append(("prompt_completion.jsonl", DATASETS["prompt_completion"], plain, packing, max_len, False))
        specs.append(("alpaca.json", alpaca_pc, plain, packing, max_len, False))
        for t in chat_templates:
            specs.append(("messages.jsonl", DATASETS["messages"], t, packing, max_len, False))
            specs.append(("conversational_prompt_completion.jsonl", DATASETS["conversational_prompt_completion"],
                          t, packing, max_len, False))
            if t in TRAINING:
                specs.append(("messages.jsonl", DATASETS["messages"], t, packing, max_len, True))
    for file, rows, t, packing, max_len, assistant_only in specs:
        if t == "gemma3" and file == "messages.jsonl":  # the system turn in gemma3's tests is not ours to test
            rows = [r for r in rows if r["messages"][0]["role"] != "system"]
            file = "messages_no_system.jsonl"
            (data / file).write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
        for mode in (("keep_start", "keep_end") if max_len and not packing else ("keep_start",)):
            rows_t = rows
            tok_dir = ROOT / "models" / t
            cases.append({"data": file, "template": t, "packing": packing, "max_length": max_len,
                          "truncation_mode": mode, "assistant_only_loss": assistant_only,
                          "rows": sft_rows(tok_dir, rows_t, max_len, packing, assistant_only, mode)})
            print(f"{file} {t} packing={packing} max_length={max_len} {mode} assistant_only={assistant_only}: "
                  f"{len(cases[-1]['rows'])} rows", file=sys.stderr)
    (ROOT / "sft.json").write_text(json.dumps({"cases": cases}, separators=(",", ":")) + "\n")
    parity_model()


def parity_model():
    """model/: a small random Llama on the chat tokenizer (llama3's template) and adapter/: a PEFT adapter with
    non-zero B, for finetune's parity with transformers + PEFT on chat data (FinetuneChatParityTest)."""
    import math
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM
    d = ROOT / "model"
    d.mkdir()
    for f in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(ROOT / "models" / "llama3" / f, d / f)
    vocab = Tokenizer.from_file(str(d / "tokenizer.json")).get_vocab_size()
    torch.manual_seed(25)
    gen = torch.Generator().manual_seed(25)
    config = LlamaConfig(vocab_size=vocab, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                         rms_norm_eps=1e-6, rope_theta=10000.0, tie_word_embeddings=False, bos_token_id=0,
                         eos_token_id=4)
    model = LlamaForCausalLM(config).float()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(0.3 * torch.randn(p.shape, generator=gen) / math.sqrt(p.shape[-1]) if p.dim() > 1
                    else 1 + 0.1 * torch.randn(p.shape, generator=gen))
    model.save_pretrained(d)
    model.name_or_path = "../model"
    peft_model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                                                  lora_dropout=0.0, bias="none", task_type="CAUSAL_LM"))
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_A" in name or "lora_B" in name:
                p.copy_(0.5 * torch.randn(p.shape, generator=gen) / math.sqrt(p.shape[1]))
    peft_model.save_pretrained(ROOT / "adapter")


if __name__ == "__main__":
    main()
