#!/usr/bin/env bash
# Build the Binder environment from binder/ in a fresh virtual environment, as repo2docker would, and
# run the tour in it. Not part of the default test run (it installs everything: a few minutes).
#
#   bash scripts/check_binder.sh [NOTEBOOK ...]     # default: notebooks/00_tour.ipynb
#   KEEP=1 bash scripts/check_binder.sh             # keep the environment (its path is printed)
#
# What differs from mybinder.org: the CPU torch comes from this machine's local wheel (pip's
# find-links) instead of download.pytorch.org, so the --extra-index-url line is dropped; the Python is
# this machine's python3 (binder/runtime.txt asks for 3.11). Everything else is binder/ as committed:
# requirements.txt installed from the repository root (so its "." line is this project, installed
# like a user would, not editable), then binder/postBuild, then the notebook run top to bottom on CPU
# with no API key through binder/start (as the server is started on Binder), its wall time and the
# peak memory of the kernel reported against Binder's 2 GB.
set -euo pipefail

cd "$(dirname "$0")/.."
REPO=$(pwd)
PYTHON=${PYTHON:-python3}
NOTEBOOKS=("$@")
[ ${#NOTEBOOKS[@]} -eq 0 ] && NOTEBOOKS=(notebooks/00_tour.ipynb)

WORK=$(mktemp -d "${TMPDIR:-/tmp}/wb-binder.XXXXXX")
if [ -z "${KEEP:-}" ]; then trap 'rm -rf "$WORK"' EXIT; else echo "keeping $WORK"; fi

echo "== fresh virtual environment in $WORK/venv ($($PYTHON --version))"
"$PYTHON" -m venv "$WORK/venv"
export PATH="$WORK/venv/bin:$PATH"
export VIRTUAL_ENV="$WORK/venv"
unset PYTHONPATH

echo "== pip install -r binder/requirements.txt (CPU index line dropped: the local torch wheel is used)"
grep -v -- '^--extra-index-url' binder/requirements.txt > "$WORK/requirements.txt"
# "." in the file means the directory pip runs in: the repository root, as in repo2docker
python -m pip install --quiet -r "$WORK/requirements.txt"
python -c "import torch; v = torch.__version__; print('torch', v); assert '+cpu' in v or not torch.cuda.is_available()"

echo "== binder/postBuild"
bash binder/postBuild

# the installed package, not this checkout, must be what the notebooks import
(cd "$WORK" && python -c "import workbench, sys; p = workbench.__file__; print('workbench from', p); sys.exit('$REPO/' in p)")

status=0
for nb in "${NOTEBOOKS[@]}"; do
  echo "== run $nb (no API key, CPU)"
  # through binder/start, as on Binder (HOME is a scratch folder here, so runs/ lands in $WORK)
  mkdir -p "$WORK/home"
  env -u ANTHROPIC_API_KEY -u WORKBENCH_NOTEBOOK_DIR HOME="$WORK/home" CUDA_VISIBLE_DEVICES= \
    bash binder/start python - "$nb" "$WORK/out" <<'PY' || status=1
import sys, threading, time
from pathlib import Path

import nbformat
import psutil
from nbclient import NotebookClient

nb_path, out = Path(sys.argv[1]), Path(sys.argv[2])
nb = nbformat.read(nb_path, as_version=4)
peak, running = [0], [True]


def sample():  # the kernel (and anything it starts): peak of their summed resident memory
    me = psutil.Process()
    while running[0]:
        rss = 0
        for child in me.children(recursive=True):
            try:
                rss += child.memory_info().rss
            except psutil.Error:
                pass
        peak[0] = max(peak[0], rss)
        time.sleep(0.2)


threading.Thread(target=sample, daemon=True).start()
t = time.perf_counter()
try:
    NotebookClient(nb, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(nb_path.parent)}}).execute()
finally:
    running[0] = False
    wall = time.perf_counter() - t
    out.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, out / nb_path.name)
peak_mb = peak[0] / 2**20
print(f"{nb_path}: ran in {wall:.0f} s, kernel peak memory {peak_mb:.0f} MB (Binder gives 2048 MB)")
sys.exit(1 if peak_mb > 2048 else 0)
PY
done
if ! find "$WORK/home/runs" -name ontology.yaml 2>/dev/null | grep -q .; then
  echo "binder/start did not make the notebooks keep their workspace in \$HOME/runs"; status=1
fi
[ $status -eq 0 ] && echo "== Binder environment OK" || echo "== FAILED"
exit $status
