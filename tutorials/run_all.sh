#!/usr/bin/env bash
# Re-execute every tutorial in place in its full setting (FU_TUTORIAL_FAST=0), the outputs that get committed,
# printing each notebook's wall time. Run from anywhere:
#
#     bash tutorials/run_all.sh                 # all notebooks, in order
#     bash tutorials/run_all.sh 03 05           # only those whose names start with 03 or 05
#     TIMEOUT=3600 bash tutorials/run_all.sh    # a longer per-cell limit (seconds; default 1200)
#     OMP_NUM_THREADS=2 bash tutorials/run_all.sh  # torch threads (default 1, as the committed outputs)
#
# The notebooks import the library from this checkout (PYTHONPATH), not from an installed copy.
# A notebook that fails is left unchanged (nbconvert writes only after a successful run) and run once more: now and
# then the kernel goes idle without answering a cell (seen with ipykernel 7.4.0 and 6.31.0, in notebooks with
# widgets; see tutorials/conftest.py), which the per-cell limit turns into a failure. One that fails twice is
# named at the end and the script exits non-zero.
set -u
cd "$(dirname "$0")"
ROOT="$(cd .. && pwd)"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
export FU_TUTORIAL_FAST=0 FEATURE_UNLEARNING_PROGRESS=0 GRADIO_ANALYTICS_ENABLED=False
# one torch thread unless told otherwise: the committed outputs were made so, and a run on another thread count
# differs in the last bits (notebook 05: 2.0% vs 1.6% 8s left by the judge on one vs two threads)
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
TIMEOUT="${TIMEOUT:-1200}"  # the longest cell of the full setting takes a few minutes on one thread

notebooks=()
for nb in [0-9][0-9]_*.ipynb; do
    if [ $# -eq 0 ]; then notebooks+=("$nb"); continue; fi
    for prefix in "$@"; do [[ "$nb" == "$prefix"* ]] && notebooks+=("$nb"); done
done
[ ${#notebooks[@]} -gt 0 ] || { echo "no notebook matches: $*" >&2; exit 2; }

failed=()
echo "$(date -u +%FT%TZ) on $(getconf _NPROCESSORS_ONLN) CPU cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
for nb in "${notebooks[@]}"; do
    start=$(date +%s)
    status=""
    for try in 1 2; do
        if jupyter nbconvert --to notebook --execute --inplace --ExecutePreprocessor.timeout="$TIMEOUT" "$nb" \
                > "/tmp/run_all_${nb%.ipynb}.log" 2>&1; then
            status=ok; [ "$try" = 2 ] && status="ok (second try)"
            break
        fi
    done
    if [ -n "$status" ]; then
        # the widgets' saved state (click grids, sliders) is large and only shows what the run drew: dropped
        # (nbclient cannot run interact() with store_widget_state=False, so it is removed afterwards)
        python -c "import nbformat, sys; nb = nbformat.read(sys.argv[1], 4); nb.metadata.pop('widgets', None); nbformat.write(nb, sys.argv[1])" "$nb"
    else
        status="FAILED (log: /tmp/run_all_${nb%.ipynb}.log)"
        failed+=("$nb")
    fi
    printf '%-36s %6d s  %s\n' "$nb" $(( $(date +%s) - start )) "$status"
done
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
if [ ${#failed[@]} -gt 0 ]; then echo "failed: ${failed[*]}" >&2; exit 1; fi
