"""Runs `./tornado-lora forward` on cases in scripts/llama_golden.py's layout and compares with expected.safetensors.

  PY=$(scripts/oracle-venv.sh | tail -1)
  $PY scripts/llama_golden.py --out /tmp/cases --random 1 --random 2 --random 3          # or the committed fixtures
  $PY scripts/llama_golden.py --out /tmp/cases --random 4 --quantize-base
  $PY scripts/forward_parity.py /tmp/cases/* [--device jvm] [--launcher ./tornado-lora]

For each CASE dir: forward --model CASE/model --input CASE/input.safetensors --adapter CASE/adapter
[--quantize-base when case.json says so] --output TMP, then max|a-b|/max|b| of the logits and of every adapter
gradient (<peft key>.grad) against transformers + PEFT (float64), and |a-b|/|b| of the loss. Tolerances (issue 14):
1e-4 logits and gradients, 1e-5 loss. Prints one line per case; exits 1 when any case misses a tolerance or
forward fails.
"""
import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from safetensors.torch import load_file

REPO_ROOT = Path(__file__).resolve().parent.parent


def rel_max(a, b):
    return ((a.double() - b.double()).abs().max() / b.double().abs().max().clamp_min(1e-30)).item()


def check(case, launcher, device, tmp):
    meta = json.loads((case / "case.json").read_text())
    out = Path(tmp) / f"{case.name}.safetensors"
    cmd = [str(launcher), "forward", "--model", str(case / "model"), "--input", str(case / "input.safetensors"),
           "--adapter", str(case / "adapter"), "--output", str(out), "--device", device]
    if meta["quantize_base"]:
        cmd.append("--quantize-base")
    run = subprocess.run(cmd, capture_output=True, text=True)
    if run.returncode != 0:
        return False, f"forward exited {run.returncode}: {run.stderr.strip()[-400:]}"
    got, want = load_file(out), load_file(case / "expected.safetensors")
    missing = sorted(set(want) - set(got))
    if missing:
        return False, f"missing in the output: {missing}"
    tol = meta["tolerance"]
    logits = rel_max(got["logits"], want["logits"])
    loss = abs(got["loss"].item() - want["loss"].item()) / abs(want["loss"].item())
    grads = {k: rel_max(got[k], want[k]) for k in want if k.endswith(".grad")}
    worst = max(grads, key=grads.get)
    ok = logits <= tol["logits"] and loss <= tol["loss"] and grads[worst] <= tol["grad"]
    return ok, (f"logits {logits:.1e}  loss {loss:.1e}  grads max {grads[worst]:.1e} ({len(grads)} tensors; "
                f"worst {worst.removeprefix('base_model.model.')})")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("cases", nargs="+", type=Path)
    ap.add_argument("--launcher", type=Path, default=REPO_ROOT / "tornado-lora")
    ap.add_argument("--device", default="jvm")
    args = ap.parse_args()
    failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        for case in args.cases:
            if not (case / "case.json").is_file():
                continue
            ok, text = check(case, args.launcher, args.device, tmp)
            failed += not ok
            print(f"{'ok  ' if ok else 'FAIL'} {case.name:28s} {text}", flush=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
