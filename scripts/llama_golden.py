"""Golden fixtures for the Llama model (issue 14) from transformers 5.18 + PEFT 0.21.

For every case a folder <out>/<case>/ with
  model/                  config.json + model.safetensors (or shards + model.safetensors.index.json)
                          + generation_config.json, exactly as LlamaForCausalLM.save_pretrained writes
                          them (F32, or BF16 where case.json says so); one folder also holds a
                          tokenizer.json (WordLevel, trained with `tokenizers` on data.jsonl's text)
  adapter/                adapter_config.json + adapter_model.safetensors from PEFT's save_pretrained
                          (LoraConfig + get_peft_model; lora_A and lora_B both random, so that the
                          gradients of A are non-zero)
  case.json               target_modules, r, lora_alpha, use_rslora, quantize_base, dtype, sharded, notes
  input.safetensors       input_ids I64 [B, S], labels I64 [B, S] (some -100)
  expected.safetensors    logits F32 [B, S, V]; loss F32 []; for every adapter tensor <peft key>.grad F32
                          (<peft key> as in adapter_model.safetensors, e.g.
                          base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight)

The reference: transformers' LlamaForCausalLM loaded from model/ in float64 (sdpa attention), the adapter
loaded by PeftModel.from_pretrained (which must emit no warning), eval mode (no dropout). transformers itself
keeps RMSNorm statistics and the RoPE tables in float32 whatever the model dtype, so "float64" holds
everywhere else (matmuls, softmax, loss); the resulting error is ~1e-7 relative, far inside the 1e-4
tolerance. The loss is transformers' causal-LM loss (shift by one, ignore_index -100, mean over counted
tokens), recomputed in float64 from the float64 logits and checked against model(labels=...).loss.
Gradients: d(loss)/d(adapter tensor) by autograd.

quantize_base cases: the reference replaces every q/k/v/o/gate/up/down projection weight by
dequantize(to_nf4(W)) with block 64 and scaler block 256 (scripts/golden.py's reference, which the Java
side matches bit for bit); model.safetensors holds the ORIGINAL weights (the Java side quantizes them
itself). Embeddings, norms and lm_head stay full precision, as in torchtune's QLoRA builders.

Run:  PY=$(scripts/oracle-venv.sh | tail -1); $PY scripts/llama_golden.py [--out DIR]
      $PY scripts/llama_golden.py --out /tmp/cases --random 1 --random 2 [--quantize-base]   (random cases)
Default --out: src/core/src/test/resources/golden/llama when src/core exists, else
src/test/resources/golden/llama. The output is deterministic (fixed seeds, one thread).
"""
import argparse
import contextlib
import io
import json
import logging
import math
import os
import shutil
import sys
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from golden import dequantize_nf4_reference, to_nf4_reference  # noqa: E402

from peft import LoraConfig, PeftModel, get_peft_model  # noqa: E402
from safetensors.torch import load_file, save_file  # noqa: E402
from transformers import LlamaConfig, LlamaForCausalLM  # noqa: E402
from transformers.utils import logging as hf_logging  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
NF4_BLOCK, NF4_SCALER_BLOCK = 64, 256
PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
LLAMA3 = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
          "original_max_position_embeddings": 8}

# name, config, lora, batch, seq, save options, notes
CASES = [
    dict(name="gqa1_tied_tokenizer",
         config=dict(vocab_size=96, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                     num_attention_heads=4, num_key_value_heads=4, head_dim=8, tie_word_embeddings=True),
         lora=dict(target_modules=["q_proj", "v_proj"], r=4, lora_alpha=8.0, use_rslora=False),
         batch=2, seq=16, dtype="float32", tokenizer=True,
         notes="GQA 1:1, tied embeddings (no lm_head.weight in the file), torchtune's default LoRA placement "
               "(q_proj, v_proj); model/ also holds a WordLevel tokenizer.json trained on data.jsonl's text "
               "(<unk>=0, <s>=1, </s>=2 = bos/eos of config.json; no post-processor, so no BOS is added)"),
    dict(name="gqa2_bf16_attn",
         config=dict(vocab_size=128, hidden_size=48, intermediate_size=80, num_hidden_layers=2,
                     num_attention_heads=4, num_key_value_heads=2, head_dim=12, tie_word_embeddings=False,
                     rope_theta=500000.0),
         lora=dict(target_modules=["q_proj", "k_proj", "v_proj", "o_proj"], r=8, lora_alpha=16.0,
                   use_rslora=False),
         batch=2, seq=12, dtype="bfloat16",
         notes="GQA 2:1, untied, weights saved in BF16 (the reference widens them exactly), LoRA on all four "
               "attention projections, rope_theta 500000"),
    dict(name="gqa4_llama3_mlp_sharded",
         config=dict(vocab_size=112, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                     num_attention_heads=8, num_key_value_heads=2, head_dim=8, tie_word_embeddings=False,
                     max_position_embeddings=64, rope_scaling=LLAMA3),
         lora=dict(target_modules=["q_proj", "v_proj", "gate_proj", "up_proj", "down_proj"], r=4,
                   lora_alpha=16.0, use_rslora=False),
         batch=2, seq=16, dtype="float32", max_shard_size="100KB",
         notes="GQA 4:1, rope_parameters llama3 (factor 8, low 1, high 4, original_max_position_embeddings 8: "
               "head_dim 8 with theta 10000 puts one frequency in each llama3 branch), LoRA on q,v and the MLP, "
               "sharded (model.safetensors.index.json + model-0000i-of-0000n.safetensors)"),
    dict(name="odd_heads_rslora_lm_head",
         config=dict(vocab_size=100, hidden_size=48, intermediate_size=72, num_hidden_layers=2,
                     num_attention_heads=3, num_key_value_heads=1, head_dim=8, tie_word_embeddings=False,
                     rms_norm_eps=1e-5),
         lora=dict(target_modules=["v_proj", "o_proj", "lm_head"], r=4, lora_alpha=8.0, use_rslora=True),
         batch=3, seq=10, dtype="float32",
         notes="3 heads, 1 KV head, head_dim 8 given explicitly (3*8 != hidden 48; transformers 5.18 wants hidden % heads == 0), rsLoRA (scale alpha/sqrt(r) "
               "= 4), LoRA on v_proj, o_proj and lm_head (apply_lora_to_output), rms_norm_eps 1e-5"),
    dict(name="qlora_mha",
         config=dict(vocab_size=128, hidden_size=128, intermediate_size=128, num_hidden_layers=2,
                     num_attention_heads=4, num_key_value_heads=4, head_dim=32, tie_word_embeddings=False),
         lora=dict(target_modules=["q_proj", "v_proj"], r=8, lora_alpha=16.0, use_rslora=False),
         batch=2, seq=16, dtype="float32", quantize_base=True,
         notes="quantize_base: every q/k/v/o/gate/up/down weight NF4 (block 64, scaler block 256; each numel "
               "is a multiple of 64*256) in the reference, LoRA'd or not; model.safetensors holds the original "
               "F32 weights; embeddings, norms, lm_head full precision"),
    dict(name="qlora_gqa2_all_bf16",
         config=dict(vocab_size=128, hidden_size=128, intermediate_size=128, num_hidden_layers=2,
                     num_attention_heads=8, num_key_value_heads=4, head_dim=32, tie_word_embeddings=True),
         lora=dict(target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
                   r=4, lora_alpha=8.0, use_rslora=True),
         batch=2, seq=12, dtype="bfloat16", quantize_base=True,
         notes="quantize_base on BF16 weights (NF4 of the exactly widened BF16 values), GQA 2:1, tied "
               "embeddings, LoRA on every attention and MLP projection, rsLoRA"),
    dict(name="dora_q_v_down",
         config=dict(vocab_size=96, hidden_size=48, intermediate_size=80, num_hidden_layers=2,
                     num_attention_heads=4, num_key_value_heads=2, head_dim=12, tie_word_embeddings=False),
         lora=dict(target_modules=["q_proj", "v_proj", "down_proj"], r=4, lora_alpha=8.0, use_rslora=False,
                   use_dora=True),
         batch=2, seq=12, dtype="float32",
         notes="DoRA (use_dora): magnitude m per output row, W' = m (W + s B A) / ||W + s B A||, the norm detached "
               "in backward; m random around the row norms; PEFT's common target_modules [q_proj, v_proj, "
               "down_proj] (part of the MLP)"),
    dict(name="dora_qlora_all_linear",
         config=dict(vocab_size=128, hidden_size=128, intermediate_size=128, num_hidden_layers=2,
                     num_attention_heads=4, num_key_value_heads=4, head_dim=32, tie_word_embeddings=False),
         lora=dict(target_modules="all-linear", r=4, lora_alpha=8.0, use_rslora=True, use_dora=True),
         batch=2, seq=12, dtype="float32", quantize_base=True,
         notes="DoRA on an NF4 base (the norm of the dequantized weight), target_modules \"all-linear\" (PEFT "
               "writes the chosen modules' full names; lm_head excluded), rsLoRA"),
    dict(name="regex_k_up_lm_head",
         config=dict(vocab_size=80, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                     num_attention_heads=4, num_key_value_heads=2, head_dim=8, tie_word_embeddings=False),
         lora=dict(target_modules=r"model\.layers\.1\.(self_attn\.k_proj|mlp\.up_proj)|lm_head", r=2,
                   lora_alpha=4.0, use_rslora=False),
         batch=2, seq=10, dtype="float32",
         notes="target_modules as a regex (PEFT's re.fullmatch on the full module name): k_proj and up_proj of "
               "layer 1 only, and lm_head"),
    dict(name="patterns_q_v",
         config=dict(vocab_size=64, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                     num_attention_heads=4, num_key_value_heads=4, head_dim=8, tie_word_embeddings=True),
         lora=dict(target_modules=["q_proj", "v_proj"], r=4, lora_alpha=8.0, use_rslora=False,
                   rank_pattern={"layers.1.self_attn.v_proj": 2}, alpha_pattern={"q_proj": 12.0}),
         batch=2, seq=8, dtype="float32",
         notes="rank_pattern (layer 1's v_proj has r 2) and alpha_pattern (every q_proj has alpha 12), matched by "
               "PEFT's get_pattern_key rule (.*\\.)?(key)$ on the full module name"),
]

CORPUS = [
    "the quick brown fox jumps over the lazy dog",
    "a small model learns to predict the next word",
    "low rank adapters train a few parameters of a large model",
    "the frozen base stays in four bit normal float",
    "every step the optimizer moves the adapters a little",
    "the loss goes down when the model sees the same words again",
    "a cat sat on the mat and the dog sat on the log",
    "we count tokens and divide the summed loss by their number",
    "the teacher writes sentences and the student copies them",
    "rotary embeddings turn positions into angles",
    "grouped query attention shares keys and values between heads",
    "the quick dog and the lazy fox learn the next word",
]


def peft_file_key(param_name):
    """The key PEFT's save_pretrained gives a parameter: the adapter name dropped (and DoRA's magnitude
    ...lora_magnitude_vector.default.weight saved as ...lora_magnitude_vector)."""
    return param_name.replace(".default.", ".").replace("lora_magnitude_vector.weight", "lora_magnitude_vector")


def seed_for(name):
    return sum((i + 1) * ord(c) for i, c in enumerate(name)) % (2 ** 31)


def randomize_(model, gen):
    """Weights with unit-scale activations (std 1/sqrt(fan_in); embeddings std 2/sqrt(hidden); norms 1 + 0.1 N(0,1),
    Gemma's 0.1 N(0,1) since it scales by 1 + w), so that attention is peaked and every op matters; the default std
    0.02 would make everything near-linear."""
    gemma = model.config.model_type == "gemma"
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 2 and "embed_tokens" not in name:
                p.copy_(torch.randn(p.shape, generator=gen) / math.sqrt(p.shape[1]))
            elif p.dim() == 2:  # std 2/sqrt(hidden): tied logits std ~2, peaked but not saturated
                p.copy_(2 * torch.randn(p.shape, generator=gen) / math.sqrt(p.shape[1]))
            elif name.endswith(".bias"):  # Qwen2's q/k/v biases (Llama has none)
                p.copy_(0.5 * torch.randn(p.shape, generator=gen))
            else:
                p.copy_((0 if gemma else 1) + 0.1 * torch.randn(p.shape, generator=gen))


def bf16_round_(model):
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.bfloat16().float())


def nf4_dequantized(w):
    r = to_nf4_reference(w.float(), NF4_BLOCK, NF4_SCALER_BLOCK)
    return dequantize_nf4_reference(r["quantized_data"], r["quantized_scalers"], r["quantization_factor"],
                                    r["scaler_mean"], w.shape, NF4_BLOCK, NF4_SCALER_BLOCK)


def quantize_base_(model):
    """Replace each projection weight by its NF4-dequantized value (float32 arithmetic, as the Java side)."""
    with torch.no_grad():
        for name, mod in model.named_modules():
            if name.rsplit(".", 1)[-1] in PROJECTIONS:
                mod.weight.copy_(nf4_dequantized(mod.weight))


@contextlib.contextmanager
def no_warnings(what):
    """Fail when anything inside warns (warnings module or the transformers/peft loggers)."""
    buf = io.StringIO()
    handler = logging.StreamHandler(buf)
    loggers = [logging.getLogger("peft"), hf_logging.get_logger("transformers")]
    for lg in loggers:
        lg.addHandler(handler)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield
    finally:
        for lg in loggers:
            lg.removeHandler(handler)
    problems = [str(w.message) for w in caught] + [line for line in buf.getvalue().splitlines() if line]
    if problems:
        raise SystemExit(f"{Path(sys.argv[0]).stem}: {what} warned: {problems}")


def causal_lm_loss(logits, labels):
    """transformers' ForCausalLMLoss without its float32 cast: shift, ignore -100, mean over counted tokens."""
    shift_logits = logits[:, :-1, :].reshape(-1, logits.shape[-1])
    shift_labels = labels[:, 1:].reshape(-1)
    return F.cross_entropy(shift_logits, shift_labels, ignore_index=-100, reduction="mean")


def make_inputs(case, gen):
    b, s, v = case["batch"], case["seq"], case["config"]["vocab_size"]
    ids = torch.randint(0, v, (b, s), generator=gen, dtype=torch.int64)
    ids[0, 0] = v - 1  # the last vocabulary row is used
    ids[-1, -1] = 0
    labels = ids.clone()
    prompt, pad = (3, 2) if s >= 6 else (1, 0)
    labels[0, :prompt] = -100       # a masked prompt
    labels[-1, s - pad:] = -100     # masked padding at the end
    if b > 2:
        labels[1, s // 2] = -100    # a hole in the middle
    assert (labels[:, 1:] != -100).any(), "no counted label token"
    return ids, labels


def train_tokenizer(vocab_size):
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    tok = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = trainers.WordLevelTrainer(vocab_size=vocab_size, special_tokens=["<unk>", "<s>", "</s>"])
    tok.train_from_iterator(CORPUS, trainer=trainer)
    assert tok.get_vocab_size() <= vocab_size, tok.get_vocab_size()
    assert tok.token_to_id("<s>") == 1 and tok.token_to_id("</s>") == 2
    return tok


def load_hf_weights(model_dir):
    index = model_dir / "model.safetensors.index.json"
    files = sorted(set(json.loads(index.read_text())["weight_map"].values())) if index.exists() else ["model.safetensors"]
    weights = {}
    for f in files:
        weights.update(load_file(model_dir / f))
    return {k: v.double() for k, v in weights.items()}


def module_scale(lora, name):
    """alpha/r (alpha/sqrt(r) with rsLoRA) of one module, rank_pattern/alpha_pattern applied as PEFT's
    get_pattern_key does: the first key k with re.match(rf"(.*\\.)?({k})$", name)."""
    import re
    r, alpha = lora["r"], lora["lora_alpha"]
    for k, v in lora.get("rank_pattern", {}).items():
        if re.match(rf"(.*\.)?({k})$", name):
            r = v
            break
    for k, v in lora.get("alpha_pattern", {}).items():
        if re.match(rf"(.*\.)?({k})$", name):
            alpha = v
            break
    return alpha / (math.sqrt(r) if lora["use_rslora"] else r)


def independent_forward(cfg, w, adapter, lora, ids):
    """A plain float64 Llama written from the architecture's equations (not transformers' code), as a
    cross-check of the fixture: RMSNorm, rotate_half RoPE (llama3 frequencies), GQA causal attention,
    SwiGLU, LoRA y = x W^T + b + s (x A^T) B^T on the adapted projections; the families' parts where their
    weights are there: q/k/v biases (Qwen2), per-head RMSNorm of q and k before RoPE (Qwen3's q_norm/k_norm); from
    config.json: sliding windows (a query sees keys j > i - W: Mistral's sliding_window, Qwen's sliding layers), and
    Gemma's sqrt(hidden)-scaled embeddings, (1 + w) norms and GeGLU with the tanh GELU."""
    gemma = cfg["model_type"] == "gemma"
    scale = lora["lora_alpha"] / (math.sqrt(lora["r"]) if lora["use_rslora"] else lora["r"])
    a = {k: v.double() for k, v in adapter.items()}

    def linear(x, name):
        bias = w[name + ".bias"] if name + ".bias" in w else 0.0  # Qwen2's q/k/v biases (frozen)
        key = "base_model.model." + name
        if key + ".lora_A.weight" not in a:
            return x @ w[name + ".weight"].T + bias
        s_mod = module_scale(lora, name)
        merged = w[name + ".weight"] + s_mod * a[key + ".lora_B.weight"] @ a[key + ".lora_A.weight"]
        if key + ".lora_magnitude_vector" in a:  # DoRA: each output row rescaled to its magnitude
            merged = a[key + ".lora_magnitude_vector"][:, None] * merged / merged.norm(dim=1, keepdim=True)
        return x @ merged.T + bias

    def rms(x, name):
        return x / torch.sqrt((x * x).mean(-1, keepdim=True) + cfg["rms_norm_eps"]) * ((1 if gemma else 0) + w[name + ".weight"])

    def act(g):
        if gemma:  # gelu, tanh approximation
            return 0.5 * g * (1 + torch.tanh(math.sqrt(2 / math.pi) * (g + 0.044715 * g ** 3)))
        return g / (1 + torch.exp(-g))

    def window(i):
        if cfg["model_type"] == "mistral":
            return cfg.get("sliding_window")
        if cfg.get("layer_types") and cfg["layer_types"][i] == "sliding_attention":
            return cfg["sliding_window"] if cfg.get("use_sliding_window") else None
        return None

    nh, nkv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    hd = cfg.get("head_dim") or cfg["hidden_size"] // nh
    rp = cfg["rope_parameters"]
    inv = 1.0 / rp["rope_theta"] ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd)
    if rp["rope_type"] == "llama3":
        lo, hi, f, old = rp["low_freq_factor"], rp["high_freq_factor"], rp["factor"], rp["original_max_position_embeddings"]
        wavelen = 2 * math.pi / inv
        smooth = (old / wavelen - lo) / (hi - lo)
        inv = torch.where(wavelen > old / lo, inv / f,
                          torch.where(wavelen < old / hi, inv, (1 - smooth) * inv / f + smooth * inv))
    else:
        assert rp["rope_type"] == "default", rp
    b, s = ids.shape
    ang = torch.arange(s, dtype=torch.float64)[:, None] * inv[None, :]
    cos, sin = torch.cat([ang.cos(), ang.cos()], -1), torch.cat([ang.sin(), ang.sin()], -1)

    def rope(t):  # [b, heads, s, hd]
        rot = torch.cat([-t[..., hd // 2:], t[..., :hd // 2]], -1)
        return t * cos + rot * sin

    x = w["model.embed_tokens.weight"][ids]
    if gemma:  # the normalizer, fp32 as torch.tensor(hidden ** 0.5) makes it
        x = x * float(torch.tensor(cfg["hidden_size"] ** 0.5, dtype=torch.float32))
    pos = torch.arange(s)
    for i in range(cfg["num_hidden_layers"]):
        visible = pos[None, :] <= pos[:, None]
        if window(i):
            visible &= pos[None, :] > pos[:, None] - window(i)
        mask = torch.zeros((s, s), dtype=torch.float64).masked_fill(~visible, float("-inf"))
        p = f"model.layers.{i}."
        h = rms(x, p + "input_layernorm")
        q = linear(h, p + "self_attn.q_proj").view(b, s, nh, hd)
        k = linear(h, p + "self_attn.k_proj").view(b, s, nkv, hd)
        if p + "self_attn.q_norm.weight" in w:
            q, k = rms(q, p + "self_attn.q_norm"), rms(k, p + "self_attn.k_norm")
        q, k = rope(q.transpose(1, 2)), rope(k.transpose(1, 2))
        v = linear(h, p + "self_attn.v_proj").view(b, s, nkv, hd).transpose(1, 2)
        k, v = k.repeat_interleave(nh // nkv, 1), v.repeat_interleave(nh // nkv, 1)
        att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(hd) + mask, -1) @ v
        x = x + linear(att.transpose(1, 2).reshape(b, s, nh * hd), p + "self_attn.o_proj")
        h = rms(x, p + "post_attention_layernorm")
        x = x + linear(act(linear(h, p + "mlp.gate_proj")) * linear(h, p + "mlp.up_proj"), p + "mlp.down_proj")
    x = rms(x, "model.norm")
    if "lm_head.weight" not in w:
        w = {**w, "lm_head.weight": w["model.embed_tokens.weight"]}
    return linear(x, "lm_head")


def write_case(out, case, config_cls=LlamaConfig, model_cls=LlamaForCausalLM):
    """One case folder; config_cls/model_cls: another family's transformers classes (scripts/family_golden.py)."""
    name = case["name"]
    root = out / name
    if root.exists():
        shutil.rmtree(root)
    (root / "model").mkdir(parents=True)
    gen = torch.Generator().manual_seed(seed_for(name))
    torch.manual_seed(seed_for(name))

    config = config_cls(**case["config"], bos_token_id=1, eos_token_id=2)
    model = model_cls(config).float()
    randomize_(model, gen)
    if case["dtype"] == "bfloat16":
        bf16_round_(model)
    save_kwargs = {"max_shard_size": case["max_shard_size"]} if "max_shard_size" in case else {}
    model.to(getattr(torch, case["dtype"])).save_pretrained(root / "model", **save_kwargs)
    model.float()
    if "max_shard_size" in case:
        assert (root / "model" / "model.safetensors.index.json").exists(), "expected a sharded checkpoint"
    if case.get("tokenizer"):
        train_tokenizer(config.vocab_size).save(str(root / "model" / "tokenizer.json"))
        (root / "data.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in CORPUS))

    lora = case["lora"]
    peft_config = LoraConfig(r=lora["r"], lora_alpha=lora["lora_alpha"], target_modules=lora["target_modules"],
                             lora_dropout=0.0, use_rslora=lora["use_rslora"], use_dora=lora.get("use_dora", False),
                             rank_pattern=lora.get("rank_pattern", {}), alpha_pattern=lora.get("alpha_pattern", {}),
                             bias="none", task_type="CAUSAL_LM")
    model.name_or_path = "../model"  # PEFT writes it as base_model_name_or_path
    with no_warnings(f"{name}: get_peft_model"):
        peft_model = get_peft_model(model, peft_config)
    with torch.no_grad():
        for pname, p in peft_model.named_parameters():
            if "lora_A" in pname or "lora_B" in pname:
                p.copy_(0.5 * torch.randn(p.shape, generator=gen) / math.sqrt(p.shape[1]))
            elif "lora_magnitude_vector" in pname:  # around the row norms PEFT initialised it to
                p.mul_(1 + 0.2 * torch.randn(p.shape, generator=gen))
    with no_warnings(f"{name}: save_pretrained"):
        # lm_head in target_modules would make PEFT also save the (frozen) lm_head weight, with a warning
        peft_model.save_pretrained(root / "adapter", save_embedding_layers=False)
    adapter = load_file(root / "adapter" / "adapter_model.safetensors")
    assert all(t.dtype == torch.float32 for t in adapter.values())

    ids, labels = make_inputs(case, gen)
    save_file({"input_ids": ids, "labels": labels}, root / "input.safetensors")

    # The reference: a fresh load of what was written, in float64.
    ref = model_cls.from_pretrained(root / "model", dtype=torch.float32, attn_implementation="sdpa")
    if case.get("quantize_base"):
        quantize_base_(ref)
    ref = ref.double().eval()
    with no_warnings(f"{name}: PeftModel.from_pretrained"):
        ref = PeftModel.from_pretrained(ref, root / "adapter", is_trainable=True)
    ref = ref.double().eval()
    params = {}
    for pname, p in ref.named_parameters():
        if p.requires_grad:
            params[peft_file_key(pname)] = p
    assert params.keys() == adapter.keys(), (sorted(params), sorted(adapter))
    for k, p in params.items():
        assert torch.equal(p.detach(), adapter[k].double()), k

    out_hf = ref(input_ids=ids, labels=labels)
    logits = out_hf.logits
    assert logits.dtype == torch.float64
    loss = causal_lm_loss(logits, labels)
    assert abs(loss.item() - out_hf.loss.item()) <= 1e-6 * abs(loss.item()), (loss.item(), out_hf.loss.item())
    loss.backward()
    w = load_hf_weights(root / "model")
    if case.get("quantize_base"):
        w = {k: nf4_dequantized(v.float()).double() if k.endswith(".weight") and k.rsplit(".", 2)[-2] in PROJECTIONS else v
             for k, v in w.items()}
    cfg = json.loads((root / "model" / "config.json").read_text())
    check = independent_forward(cfg, w, adapter, lora, ids)
    err = ((check - logits).abs().max() / logits.abs().max()).item()
    assert err < 1e-6, f"{name}: transformers and the independent float64 forward differ by {err:.2e}"
    expected = {"logits": logits.detach().float(), "loss": loss.detach().float().reshape(())}
    largest = max(p.grad.abs().max().item() for p in params.values())
    for k, p in params.items():
        # a gradient that is zero in exact arithmetic (rounding noise only) has no relative tolerance
        assert p.grad.abs().max() > 1e-8 * largest, f"{name}: (numerically) zero gradient for {k}"
        expected[k + ".grad"] = p.grad.float()
    save_file(expected, root / "expected.safetensors")

    scale = lora["lora_alpha"] / (math.sqrt(lora["r"]) if lora["use_rslora"] else lora["r"])
    counted = int((labels[:, 1:] != -100).sum())
    meta = {
        "target_modules": lora["target_modules"] if isinstance(lora["target_modules"], str)
        else sorted(lora["target_modules"]), "r": lora["r"], "lora_alpha": lora["lora_alpha"],
        "lora_dropout": 0.0, "use_rslora": lora["use_rslora"], "use_dora": lora.get("use_dora", False), "scale": scale,
        "quantize_base": bool(case.get("quantize_base")),
        "nf4": {"block_size": NF4_BLOCK, "scaler_block_size": NF4_SCALER_BLOCK} if case.get("quantize_base") else None,
        "dtype": case["dtype"], "sharded": "max_shard_size" in case, "tied": config.tie_word_embeddings,
        "batch": case["batch"], "seq": case["seq"], "counted_tokens": counted,
        "tokenizer": bool(case.get("tokenizer")),
        "tolerance": {"logits": 1e-4, "grad": 1e-4, "loss": 1e-5, "norm": "max|a-b| / max|b|"},
        "reference": f"transformers 5.18 {model_cls.__name__} (sdpa) + PEFT 0.21 PeftModel.from_pretrained, float64, "
                     "eval mode; loss = mean cross-entropy over labels[:,1:] != -100 of logits[:,:-1]",
        "notes": case["notes"],
    }
    (root / "case.json").write_text(json.dumps(meta, indent=2) + "\n")
    size = sum(f.stat().st_size for f in root.rglob("*") if f.is_file())
    print(f"{name:28s} loss {loss.item():.6f}  {len(params):3d} adapter tensors  {size / 1024:7.1f} KiB  "
          f"independent forward {err:.1e}")
    return size


def random_case(seed, quantize):
    """A random case in the same layout (for a reviewer's own checks, e.g. scripts/forward_parity.py): GQA ratio,
    head_dim, sizes, tying, llama3 rope, dtype, LoRA targets (as torchtune's knobs place them), rank, alpha,
    rsLoRA, batch and length drawn from seed. With quantize, sizes keep every projection's numel a multiple of 64·256 (NF4 block x scaler block)."""
    import random
    rng = random.Random(seed)
    # torchtune's knobs: a subset of the attention projections, the MLP all or nothing, lm_head (untied only)
    targets = [m for m in PROJECTIONS[:4] if rng.random() < 0.5]
    if rng.random() < 0.4 or not targets:
        targets += list(PROJECTIONS[4:])
    if quantize:
        hd, nkv = 32, rng.choice([4, 8])
        nh, hidden, inter = nkv * rng.choice([1, 2]), 128, rng.choice([128, 256])
    else:
        nkv, hd = rng.choice([1, 2, 3]), rng.choice([4, 6, 8, 12, 16])
        nh = nkv * rng.choice([1, 2, 4])
        hidden, inter = nh * rng.choice([2, 4, 6, 8]), rng.choice([16, 24, 40, 64, 96])
    tied = rng.random() < 0.4
    if not tied and rng.random() < 0.3:
        targets.append("lm_head")
    config = dict(vocab_size=rng.randint(32, 128), hidden_size=hidden, intermediate_size=inter,
                  num_hidden_layers=rng.choice([1, 2]), num_attention_heads=nh, num_key_value_heads=nkv, head_dim=hd,
                  tie_word_embeddings=tied, rms_norm_eps=rng.choice([1e-5, 1e-6]),
                  rope_theta=rng.choice([10000.0, 500000.0]), max_position_embeddings=64)
    if rng.random() < 0.5:
        config["rope_scaling"] = dict(LLAMA3, factor=rng.choice([2.0, 8.0]),
                                      original_max_position_embeddings=rng.choice([4, 8, 16]))
    r = rng.choice([1, 2, 4, 8])
    # seq >= 3: with 2 tokens only position 0's logits count, and it attends to itself alone (no gradient for k)
    return dict(name=f"random_{seed}{'_qlora' if quantize else ''}", config=config,
                lora=dict(target_modules=targets, r=r, lora_alpha=float(rng.choice([1, 8, 16, 32])),
                          use_rslora=rng.random() < 0.3),
                batch=rng.randint(1, 3), seq=rng.randint(3, 12), dtype=rng.choice(["float32", "bfloat16"]),
                quantize_base=quantize, notes=f"random case, seed {seed}")


def main():
    if os.environ.get("PYTHONHASHSEED") != "0":  # PEFT writes target_modules from a set: fix its order
        os.execve(sys.executable, [sys.executable] + sys.argv, {**os.environ, "PYTHONHASHSEED": "0"})
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", help="output directory (relative paths from the repo root)")
    ap.add_argument("--case", action="append", help="only these cases (repeatable)")
    ap.add_argument("--random", type=int, action="append", metavar="SEED",
                    help="instead of the fixed cases: a random case per seed (out/random_SEED), e.g. for a reviewer")
    ap.add_argument("--quantize-base", action="store_true", help="with --random: quantize_base cases")
    args = ap.parse_args()
    if args.out:
        out = Path(args.out)
        out = out if out.is_absolute() else REPO_ROOT / out
    elif (REPO_ROOT / "src" / "core" / "src").is_dir():
        out = REPO_ROOT / "src/core/src/test/resources/golden/llama"
    else:
        out = REPO_ROOT / "src/test/resources/golden/llama"
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    hf_logging.disable_progress_bar()
    total = 0
    cases = [random_case(seed, args.quantize_base) for seed in args.random] if args.random else CASES
    for case in cases:
        if args.random or not args.case or case["name"] in args.case:
            total += write_case(out, case)
    print(f"{total / 2 ** 20:.2f} MiB in {out}")


if __name__ == "__main__":
    main()
