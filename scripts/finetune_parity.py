"""Step-for-step replica of `./tornado-lora finetune` with transformers 5.18 + PEFT 0.21 + torch.optim.AdamW.

The model is the class of its config.json (AutoModelForCausalLM): Llama, Qwen2, Qwen3, Mistral or Gemma.

Train mode (the default):
  finetune_parity.py --model DIR --data D.safetensors|D.jsonl --init-adapter PEFT_DIR --steps N [--batch B]
      [--grad-accum A] [--lr LR] [--weight-decay WD] [--schedule constant|cosine] [--warmup-steps W]
      [--max-grad-norm G] [--quantize-base] [--float64] [--json LOG.json] [--adapter-out A.safetensors]

  D.jsonl / D.json (with --max-length S [--packing] [--assistant-only-loss]): the examples prepared by TRL 1.13's
  own SFTTrainer (scripts/chat_golden.py's sft_rows, DIR's tokenizer and chat template), padded to S: padded rows
  with an attention mask, packed rows with the padding-free collator's position_ids and labels.
  D.safetensors holds input_ids I64 (or I32) [N, S] and optionally labels [N, S] (-100 ignored; absent: labels = input_ids);
  with position_ids and example_ids (as `tornado-lora data` writes them) the examples are kept apart as transformers
  keeps them: packed rows (position ids restarting) get position_ids and no attention mask, so transformers builds
  the block-diagonal causal mask of packed sequences; padded rows get attention_mask = example_ids != -1.
  Data order (finetune --shuffle false): optimizer step i (0-based) uses rows (i*B*A + j) mod N for
  j = 0 .. B*A-1, as A micro-batches of B rows in order.
  Loss (transformers' num_items_in_batch normalisation): with n = the number of counted label tokens of the
  whole step after the shift (labels[:, 1:] != -100), the step loss is
      L = (sum over micro-batches of the summed token cross-entropies) / n,
  and each micro-batch backpropagates its summed cross-entropy / n (= its mean loss * its count / n).
  Then: grad norm = the global L2 norm of all adapter gradients (logged before clipping); with
  --max-grad-norm G > 0, torch.nn.utils.clip_grad_norm_(adapters, G); torch.optim.AdamW(adapters, lr,
  betas (0.9, 0.999), eps 1e-8, weight_decay WD) steps; the scheduler steps.
  Schedules (multiplier of --lr at step i, W = --warmup-steps, N = --steps):
      cosine   (transformers' get_cosine_schedule_with_warmup, num_cycles 0.5; torchtune's is the same formula):
               i < W: i / max(1, W);  else max(0, 0.5 * (1 + cos(pi * (i - W) / max(1, N - W))))
      constant (transformers' get_constant_schedule_with_warmup): i < W: i / max(1, W); else 1
  (so with W > 0, step 0 runs with lr 0, as in torchtune).
  The base model is in eval mode (no dropout: the init adapter must have lora_dropout 0). With
  --quantize-base every q/k/v/o/gate/up/down weight is replaced by dequantize(to_nf4(W)) (block 64, scaler
  block 256; scripts/golden.py's reference). Arithmetic in float32 (the Java side's) or --float64.
  Output JSON: {"config": {...}, "steps": [{"step", "loss", "lr", "grad_norm", "tokens"}...]}; the final
  adapters under PEFT keys (F32) in --adapter-out.

Eval mode:    finetune_parity.py --model DIR --eval OUT/peft --eval-data E.safetensors [--quantize-base]
  PeftModel.from_pretrained (no warning allowed) and the loss on all of E as one batch (same normalisation:
  summed cross-entropy / counted tokens); prints {"eval_loss": ...}.

Merged mode:  finetune_parity.py --merged OUT/merged --input X.safetensors [--logits-out O.safetensors]
      [--model DIR --against-peft OUT/peft [--quantize-base]]
  transformers' plain AutoModelForCausalLM.from_pretrained(OUT/merged), the family's class (no warning allowed); logits F32
  [B, S, V] of X's input_ids to --logits-out; with --against-peft also the logits of DIR + the PEFT adapter
  (unmerged) and their relative difference max|a-b|/max|b|. Prints a JSON summary.

Several modes in one call (train, then eval, then merged; one interpreter and one torch + transformers import
instead of several, as the parity tests call it): the JSON is {"train": ..., "eval": ..., "merged": ...} with the
modes given; a single mode writes its own JSON as above.

Run with the oracle environment: PY=$(scripts/oracle-venv.sh | tail -1); $PY scripts/finetune_parity.py ...
"""
import argparse
import json
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from llama_golden import PROJECTIONS, nf4_dequantized, no_warnings, peft_file_key  # noqa: E402

from peft import PeftModel  # noqa: E402
from safetensors.torch import load_file, save_file  # noqa: E402
from transformers import (AutoModelForCausalLM, get_constant_schedule_with_warmup,  # noqa: E402
                          get_cosine_schedule_with_warmup)
from transformers.utils import logging as hf_logging  # noqa: E402


def fail(msg):
    print(f"finetune_parity: {msg}", file=sys.stderr)
    sys.exit(1)


def load_base(model_dir, quantize_base, dtype):
    """transformers' model from DIR (sdpa attention), NF4-dequantized projections with --quantize-base."""
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32, attn_implementation="sdpa")
    if quantize_base:
        with torch.no_grad():
            for name, mod in model.named_modules():
                if name.rsplit(".", 1)[-1] in PROJECTIONS:
                    mod.weight.copy_(nf4_dequantized(mod.weight))
    return model.to(dtype).eval()


def load_peft(model_dir, adapter_dir, quantize_base, dtype, trainable):
    base = load_base(model_dir, quantize_base, dtype)
    with no_warnings(f"PeftModel.from_pretrained({adapter_dir})"):
        model = PeftModel.from_pretrained(base, adapter_dir, is_trainable=trainable)
    model = model.to(dtype).eval()
    cfg = model.peft_config["default"]
    if trainable and cfg.lora_dropout != 0:
        fail(f"{adapter_dir}: lora_dropout {cfg.lora_dropout}; step-for-step parity needs dropout 0")
    return model


def adapter_params(model):
    """{PEFT file key: parameter} of the trainable adapter tensors, in the model's order."""
    return {peft_file_key(name): p for name, p in model.named_parameters() if p.requires_grad}


def trl_rows(path, model_dir, max_length, packing, assistant_only):
    """TRL 1.13's own SFTTrainer preprocessing of a .jsonl / .json dataset (chat_golden.sft_rows, with DIR's
    tokenizer and chat template) as tensors [N, max_length]: padded rows with example_ids (-1 at padding) for the
    attention mask; packed rows with the padding-free collator's position_ids and labels."""
    from chat_golden import sft_rows
    text = path.read_text(encoding="utf-8")
    examples = ([json.loads(line) for line in text.splitlines() if line.strip()] if path.suffix == ".jsonl"
                else json.loads(text))
    rows = sft_rows(model_dir, examples, max_length, packing, assistant_only)
    if not rows:
        fail(f"{path}: TRL's preprocessing left no rows")
    n = len(rows)
    ids = torch.zeros(n, max_length, dtype=torch.long)  # padding: never attended to by a real token, never in the loss
    labels = torch.full((n, max_length), -100, dtype=torch.long)
    position_ids = torch.zeros(n, max_length, dtype=torch.long)
    example_ids = torch.full((n, max_length), -1, dtype=torch.long)
    for i, r in enumerate(rows):
        k = len(r["input_ids"])
        if k > max_length:
            fail(f"{path}: TRL made a row of {k} tokens, more than --max-length {max_length}")
        ids[i, :k] = torch.tensor(r["input_ids"])
        labels[i, :k] = torch.tensor(r["collated_labels"] if packing else r["labels"])
        if packing:
            position_ids[i, :k] = torch.tensor(r["position_ids"])
        else:
            position_ids[i] = torch.arange(max_length)
        example_ids[i, :k] = i
    return ids, labels, position_ids, example_ids


def read_data(path, vocab, args=None):
    if path.suffix in (".jsonl", ".json"):
        if not args or not args.max_length:
            fail(f"{path}: .jsonl / .json data needs --max-length S (TRL's max_length, the row length)")
        return trl_rows(path, args.model, args.max_length, args.packing, args.assistant_only_loss)
    t = load_file(path)
    if "input_ids" not in t:
        fail(f"{path}: no input_ids tensor (has {sorted(t)})")
    ids = t["input_ids"]
    if ids.dtype not in (torch.int64, torch.int32) or ids.dim() != 2:
        fail(f"{path}: input_ids must be I64 or I32 [N, S], got {ids.dtype} {list(ids.shape)}")
    ids = ids.long()
    labels = t["labels"].long() if "labels" in t else ids.clone()
    if labels.shape != ids.shape:
        fail(f"{path}: labels {list(labels.shape)} and input_ids {list(ids.shape)} differ in shape")
    if ids.min() < 0 or ids.max() >= vocab:
        fail(f"{path}: input_ids outside [0, {vocab})")
    bad = (labels != -100) & ((labels < 0) | (labels >= vocab))
    if bad.any():
        fail(f"{path}: labels outside [0, {vocab}) other than -100")
    position_ids = t["position_ids"].long() if "position_ids" in t else None
    example_ids = t["example_ids"].long() if "example_ids" in t else None
    return ids, labels, position_ids, example_ids


def model_inputs(ids, position_ids, example_ids, rows):
    """transformers' inputs for the rows: packed rows by their position_ids, padded rows by an attention mask."""
    kw = {"input_ids": ids[rows]}
    if position_ids is not None:
        pos = position_ids[rows]
        if (torch.diff(pos, dim=-1) != 1).any():
            # use_cache=False as TRL's SFTTrainer.compute_loss sets it: with a cache transformers skips the
            # packed-sequence detection and lets every example attend to the ones before it
            kw.update(position_ids=pos, use_cache=False)
        elif example_ids is not None:
            kw["attention_mask"] = (example_ids[rows] != -1).long()
    return kw


def counted(labels):
    return int((labels[:, 1:] != -100).sum())


def summed_cross_entropy(logits, labels):
    """Summed token cross-entropy of transformers' causal-LM loss: shift by one, ignore -100."""
    return F.cross_entropy(logits[:, :-1, :].reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1),
                           ignore_index=-100, reduction="sum")


def train(args, dtype):
    model = load_peft(args.model, args.init_adapter, args.quantize_base, dtype, trainable=True)
    vocab = model.config.vocab_size
    ids, labels, position_ids, example_ids = read_data(args.data, vocab, args)
    n_rows = ids.shape[0]
    params = adapter_params(model)
    if not params:
        fail(f"{args.init_adapter}: no trainable adapter tensors")
    opt = torch.optim.AdamW(list(params.values()), lr=args.lr, betas=(0.9, 0.999), eps=1e-8,
                            weight_decay=args.weight_decay)
    if args.schedule == "cosine":  # the same formula as torchtune's get_cosine_schedule_with_warmup
        sched = get_cosine_schedule_with_warmup(opt, args.warmup_steps, args.steps, num_cycles=0.5)
    else:
        sched = get_constant_schedule_with_warmup(opt, args.warmup_steps)
    rows_per_step = args.batch * args.grad_accum
    steps = []
    checked_transformers_loss = False
    for step in range(args.steps):
        rows = [(step * rows_per_step + j) % n_rows for j in range(rows_per_step)]
        n = counted(labels[rows])
        if n == 0:
            fail(f"step {step}: rows {rows[0]}..{rows[-1]} have no counted label tokens")
        opt.zero_grad(set_to_none=True)
        total = 0.0
        for m in range(args.grad_accum):
            mb = rows[m * args.batch:(m + 1) * args.batch]
            out = model(**model_inputs(ids, position_ids, example_ids, mb))
            s = summed_cross_entropy(out.logits, labels[mb])
            if not checked_transformers_loss and dtype == torch.float32:
                # the same number through transformers' own loss path (num_items_in_batch)
                ref = model(**model_inputs(ids, position_ids, example_ids, mb), labels=labels[mb],
                            num_items_in_batch=n).loss
                if abs(ref.item() - s.item() / n) > 1e-6 * max(1.0, abs(ref.item())):
                    fail(f"own loss {s.item() / n} != transformers' num_items_in_batch loss {ref.item()}")
                checked_transformers_loss = True
            (s / n).backward()
            total += s.item()
        grads = [p.grad for p in params.values() if p.grad is not None]
        grad_norm = torch.nn.utils.get_total_norm(grads, norm_type=2.0).item()
        if args.max_grad_norm and args.max_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(list(params.values()), args.max_grad_norm)
        lr = opt.param_groups[0]["lr"]
        opt.step()
        sched.step()
        steps.append({"step": step, "loss": total / n, "lr": lr, "grad_norm": grad_norm, "tokens": n})
        if args.verbose:
            print(f"step {step:4d} loss {total / n:.8f} lr {lr:.3e} grad_norm {grad_norm:.6e}", file=sys.stderr)
    result = {"config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
              "steps": steps}
    if args.adapter_out:
        save_file({k: p.detach().float().contiguous() for k, p in params.items()}, args.adapter_out)
    return result


def evaluate(args, dtype):
    model = load_peft(args.model, args.eval, args.quantize_base, dtype, trainable=False)
    ids, labels, position_ids, example_ids = read_data(args.eval_data, model.config.vocab_size)
    n = counted(labels)
    if n == 0:
        fail(f"{args.eval_data}: no counted label tokens")
    with torch.no_grad():
        rows = list(range(ids.shape[0]))
        s = summed_cross_entropy(model(**model_inputs(ids, position_ids, example_ids, rows)).logits, labels)
    return {"eval_loss": s.item() / n, "tokens": n, "rows": ids.shape[0], "adapter": str(args.eval)}


def merged(args, dtype):
    with no_warnings(f"AutoModelForCausalLM.from_pretrained({args.merged})"):
        model = AutoModelForCausalLM.from_pretrained(args.merged, dtype=torch.float32, attn_implementation="sdpa")
    model = model.to(dtype).eval()
    ids = read_data(args.input, model.config.vocab_size)[0]
    with torch.no_grad():
        logits = model(input_ids=ids).logits
    result = {"merged": str(args.merged), "shape": list(logits.shape), "max_abs_logit": logits.abs().max().item()}
    if args.logits_out:
        save_file({"logits": logits.float().contiguous()}, args.logits_out)
    if args.against_peft:
        if not args.model:
            fail("--against-peft needs --model DIR (the base the adapter was trained on)")
        peft = load_peft(args.model, args.against_peft, args.quantize_base, dtype, trainable=False)
        with torch.no_grad():
            ref = peft(input_ids=ids).logits
        result["relative_diff_vs_peft"] = ((logits - ref).abs().max() / ref.abs().max()).item()
    return result


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--model", type=Path, help="Hugging Face model folder (any family)")
    ap.add_argument("--data", type=Path, help="pre-tokenized .safetensors (input_ids [N, S], optional labels), or"
                    " .jsonl / .json examples prepared by TRL's SFTTrainer (--max-length, --packing,"
                    " --assistant-only-loss)")
    ap.add_argument("--max-length", type=int, help=".jsonl / .json data: TRL's max_length, the row length")
    ap.add_argument("--packing", action="store_true", help=".jsonl / .json data: TRL's bfd packing")
    ap.add_argument("--assistant-only-loss", action="store_true", help=".jsonl / .json data: TRL's assistant_only_loss")
    ap.add_argument("--init-adapter", type=Path, help="PEFT adapter folder to start from")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--grad-accum", type=int, default=1)
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--weight-decay", type=float, default=0.0)
    ap.add_argument("--schedule", choices=["constant", "cosine"], default="cosine")
    ap.add_argument("--warmup-steps", type=int, default=0)
    ap.add_argument("--max-grad-norm", type=float, default=0.0, help="0 or absent: no clipping")
    ap.add_argument("--quantize-base", action="store_true")
    ap.add_argument("--float64", action="store_true", help="float64 arithmetic (default float32)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", type=Path, help="write the result JSON here (default: stdout)")
    ap.add_argument("--adapter-out", type=Path, help="final adapters (PEFT keys, F32) as .safetensors")
    ap.add_argument("--verbose", action="store_true")
    ap.add_argument("--eval", type=Path, metavar="PEFT_DIR", help="eval mode: the adapter to load")
    ap.add_argument("--eval-data", type=Path)
    ap.add_argument("--merged", type=Path, metavar="MERGED_DIR", help="merged mode: the merged checkpoint")
    ap.add_argument("--input", type=Path, help="merged mode: input_ids .safetensors")
    ap.add_argument("--logits-out", type=Path)
    ap.add_argument("--against-peft", type=Path, metavar="PEFT_DIR")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    hf_logging.disable_progress_bar()
    dtype = torch.float64 if args.float64 else torch.float32

    train_mode = bool(args.data or args.init_adapter)
    if not (train_mode or args.eval or args.merged):
        fail("nothing to do: give train options (--model, --data, --init-adapter), --eval or --merged")
    results = {}
    if train_mode:
        missing = [o for o, v in (("--model", args.model), ("--data", args.data),
                                  ("--init-adapter", args.init_adapter)) if not v]
        if missing:
            fail(f"train mode needs {', '.join(missing)}")
        for o, v in (("--steps", args.steps), ("--batch", args.batch), ("--grad-accum", args.grad_accum)):
            if v < 1:
                fail(f"{o} must be >= 1, got {v}")
        if args.warmup_steps < 0:
            fail(f"--warmup-steps must be >= 0, got {args.warmup_steps}")
        results["train"] = train(args, dtype)
    if args.eval:
        if not (args.model and args.eval_data):
            fail("--eval needs --model DIR and --eval-data E.safetensors")
        results["eval"] = evaluate(args, dtype)
    if args.merged:
        if not args.input:
            fail("--merged needs --input X.safetensors")
        results["merged"] = merged(args, dtype)
    # one mode: its own JSON; several in one call (one interpreter start instead of several): {mode: JSON}
    result = next(iter(results.values())) if len(results) == 1 else results
    text = json.dumps(result, indent=2) + "\n"
    if args.json:
        args.json.write_text(text)
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main()
