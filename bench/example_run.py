"""The issue-23 time target: ``kdtune run`` of the example config (``kdtune init``) on this
machine, timed end to end (the search of ``n_trials``, then the front's test), on the demo
teacher (fitted if missing) and the embedded storage of $KDTUNE_HOME.

    .venv/bin/python bench/example_run.py --code <git archive> [--out DIR] [--teacher DIR]
                                          [--trials N] [--source CSV] [--set KEY=VALUE ...]

``--code DIR`` runs the kdtune of a source tree (bench/codebase.py), so edits to the checkout
do not leak into a running measurement. Writes ``kdtune.yaml``, ``run.log`` (the run's output
and wall time) and ``pareto.json`` (the front with its test figures) to ``--out``.
``--source`` and ``--teacher`` run the same journey on other data (the three-class study of
bench/RESULTS-students.md: ``--source three_class.csv --teacher <its fitted teacher>
--trials 6``); ``--set`` overrides a key of the config as ``kdtune run --set`` does.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from codebase import CODE_ENV, code_provenance, use_code  # noqa: E402


def kdtune(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kdtune.study.cli", *args], check=True, **kw)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--code", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=Path("bench-example-run"))
    ap.add_argument("--teacher", type=Path, default=None)
    ap.add_argument("--trials", type=int, default=None, help="default: the config's n_trials")
    ap.add_argument("--source", default=None, help="distill.data.source (default: polarity)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = ap.parse_args()
    if args.code and not os.environ.get(CODE_ENV):
        use_code(args.code, __file__)  # does not return
    from kdtune.objectives.teacher.registry import cached_teacher
    from kdtune.study.cli.demo import demo_teacher_config

    teacher = args.teacher or cached_teacher(demo_teacher_config(), progress=False)
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    code = code_provenance()
    name = f"example-run-{code['commit'] or 'local'}-{int(time.time())}"
    kdtune("init", "-o", str(out / "kdtune.yaml"), "--force")
    head = (f"code {code}, {os.cpu_count()} cores, load {os.getloadavg()}, "
            f"start {time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime())} UTC\n")
    t0 = time.perf_counter()
    run = kdtune("run", str(out / "kdtune.yaml"), "--workers", "2", "--set", f"name={name}",
                 "--set", f"distill.teacher={teacher}",
                 *(["--trials", str(args.trials)] if args.trials else []),
                 *(["--set", f"distill.data.source={args.source}"] if args.source else []),
                 *(x for kv in args.set for x in ("--set", kv)),
                 stdout=subprocess.PIPE, text=True)
    wall = time.perf_counter() - t0
    lines = [line for line in run.stdout.splitlines() if not line.startswith("trials ")]
    (out / "run.log").write_text(head + "\n".join(lines) + f"\nkdtune run wall {wall:.0f} s\n")
    with (out / "pareto.json").open("w") as fh:
        kdtune("pareto", "--study", name, "--test", "--format", "json", stdout=fh)
    print(f"kdtune run wall {wall:.0f} s; {out / 'run.log'}")


if __name__ == "__main__":
    main()
