#!/bin/bash
# The issue-23 time target: `kdtune run` of the example config (kdtune init) on 2 cores,
# timed end to end (search of n_trials, then the front's test). Runs a `git archive` of
# HEAD, so edits to the checkout do not leak in, on the embedded storage of $KDTUNE_HOME.
#   bash bench/example_run.sh [TEACHER_DIR]   (default: the demo teacher, fitted if missing)
# Writes bench-example-run/<commit>/{kdtune.yaml,run.log,pareto.json} under $TMPDIR.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
PY=$REPO/.venv/bin/python
COMMIT=$(git -C "$REPO" rev-parse --short HEAD)
OUT=${TMPDIR:-/tmp}/bench-example-run/$COMMIT
rm -rf "$OUT"; mkdir -p "$OUT/snap" "$OUT/pkg"
git -C "$REPO" archive HEAD | tar -x -C "$OUT/snap"
cp -r "$OUT/snap/kdtune" "$OUT/pkg/kdtune"
for d in objectives study storage; do ln -s "$OUT/snap/$d" "$OUT/pkg/kdtune/$d"; done
k() { PYTHONPATH=$OUT/pkg PYTHONSAFEPATH=1 "$PY" -c 'from kdtune.study.cli import main; main()' "$@"; }
TEACHER=${1:-$(PYTHONPATH=$OUT/pkg PYTHONSAFEPATH=1 "$PY" -c 'from kdtune.study.cli.demo import demo_teacher_config
from kdtune.objectives.teacher.registry import cached_teacher
print(cached_teacher(demo_teacher_config(), progress=False))')}
cd "$OUT"
k init -o kdtune.yaml
echo "commit $COMMIT, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), start $(date -u +%FT%T)" | tee run.log
t0=$(date +%s)
k run kdtune.yaml --workers 2 --set "name=example-run-$COMMIT-$t0" --set "distill.teacher=$TEACHER" 2>&1 | grep -v '^trials ' | tee -a run.log
t1=$(date +%s)
echo "end $(date -u +%FT%T), kdtune run wall $((t1 - t0)) s" | tee -a run.log
k pareto --study "example-run-$COMMIT-$t0" --test --format json > pareto.json
