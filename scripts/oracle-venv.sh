#!/usr/bin/env bash
# Creates the Python oracle environment .venv-oracle/ in the repository root from wheels on disk (no index):
# PyTorch 2.13 (CPU), transformers 5.18, PEFT 0.21, TRL 1.13 (with datasets, jinja2: the SFT data oracle),
# tokenizers, safetensors, numpy.
# ORACLE_VENV overrides the environment directory.
# Idempotent: an existing environment that already imports the pinned versions is kept.
# Prints the environment's python path on stdout (the last line); messages go to stderr.
#   scripts/oracle-venv.sh            # create or verify
#   PY=$(scripts/oracle-venv.sh | tail -1)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${ORACLE_VENV:-$root/.venv-oracle}"
py="$venv/bin/python"
# ORACLE_WHEEL_DIRS (space-separated) overrides where the wheels are looked for.
read -r -a wheel_dirs <<< "${ORACLE_WHEEL_DIRS:-/opt/pypi/files /opt/pypi-more/files /opt/wheels}"
pins=(torch==2.13.0+cpu transformers==5.18.0 peft==0.21.0 trl==1.13.0 datasets jinja2 tokenizers safetensors numpy)
check='import torch, transformers, peft, trl, datasets, jinja2, tokenizers, safetensors, numpy
assert torch.__version__ == "2.13.0+cpu", torch.__version__
assert transformers.__version__ == "5.18.0", transformers.__version__
assert peft.__version__ == "0.21.0", peft.__version__
assert trl.__version__ == "1.13.0", trl.__version__'

if [[ -x "$py" ]] && "$py" -c "$check" 2>/dev/null; then
    echo "$py"
    exit 0
fi

links=()
for d in "${wheel_dirs[@]}"; do
    [[ -d "$d" ]] && links+=(--find-links "$d")
done
for w in 'torch-2.13.0+cpu-*.whl' 'transformers-5.18.0-*.whl' 'peft-0.21.0-*.whl' 'trl-1.13.0-*.whl' 'datasets-*.whl' 'tokenizers-*.whl' 'safetensors-*.whl'; do
    found=""
    for d in "${wheel_dirs[@]}"; do
        compgen -G "$d/$w" >/dev/null 2>&1 && found=yes
    done
    if [[ -z "$found" ]]; then
        echo "oracle-venv: no wheel $w in ${wheel_dirs[*]}; the Python oracle cannot be installed offline" >&2
        exit 2
    fi
done
command -v python3 >/dev/null || { echo "oracle-venv: python3 not found" >&2; exit 2; }

echo "oracle-venv: creating $venv" >&2
[[ -x "$py" ]] || python3 -m venv "$venv"
if ! "$venv/bin/pip" install --quiet --disable-pip-version-check --no-index "${links[@]}" "${pins[@]}" >&2; then
    echo "oracle-venv: pip install from ${wheel_dirs[*]} failed (a dependency wheel missing?)" >&2
    exit 3
fi
if ! "$py" -c "$check" >&2; then
    echo "oracle-venv: $venv does not import the pinned versions" >&2
    exit 3
fi
echo "$py"
