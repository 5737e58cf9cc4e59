"""Render the ``formats.json`` of students converted by ``kdtune convert`` / ``kdtune
distill --formats onnx,int8`` as one Markdown table (issue 16's table in bench/RESULTS.md).

    kdtune demo
    kdtune distill kdtune-demo/best.yaml -o kdtune-demo/student --formats onnx,int8
    .venv/bin/python bench/formats_table.py kdtune-demo/student [more students ...]

Every figure comes from one ``measure_formats`` run per student: float, ONNX and INT8 on the
same tokenised test inputs, at the same thread count, one after the other.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def rows(student: Path) -> list[str]:
    report = json.loads((student / "formats.json").read_text())
    base = report["formats"]["float"]
    out = []
    for name, r in report["formats"].items():
        acc, sig = r["accuracy_ci"], r["sigma_ci"]
        out.append(
            f"| {student.name} | {name} | {r['accuracy']:.4f} [{acc[0]:.3f}, {acc[1]:.3f}] | "
            f"{r['sigma']:.4f} [{sig[0]:.3f}, {sig[1]:.3f}] | {r['sigma_vs_float']:.4f} | "
            f"{r['agreement']:.1%} | {'yes' if r['phi_cnf'] else 'no'} | "
            f"{r['size_bytes'] / 1e6:.1f} MB ({r['size_bytes'] / base['size_bytes']:.2f}x) | "
            f"{r['latency_ms_b1']:.2f} ({r['latency_ms_b1'] / base['latency_ms_b1']:.2f}x) | "
            f"{r['latency_ms_b32']:.2f} ({r['latency_ms_b32'] / base['latency_ms_b32']:.2f}x) |")
    return out


def main() -> None:
    students = [Path(a) for a in sys.argv[1:]]
    if not students:
        sys.exit("usage: formats_table.py STUDENT_DIR [STUDENT_DIR ...]")
    print("| student | format | test accuracy | sigma vs teacher | sigma vs float | agreement "
          "| phi_cnf | size | ms/input batch 1 | ms/input batch 32 |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for student in students:
        print("\n".join(rows(student)))


if __name__ == "__main__":
    main()
