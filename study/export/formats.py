"""``kdtune convert`` and ``kdtune distill --formats``: ONNX and INT8 students, re-audited.

:func:`convert_and_audit` writes the formats beside a ``kdtune distill`` student
(:func:`kdtune.objectives.distillation.compress.convert_student`),
measures the float student and each
format on the test split (:func:`kdtune.objectives.distillation.compress.measure_formats`:
accuracy, sigma
against the teacher with intervals, sigma against the float student, agreement, size,
latency at batch 1 and 32, phi_cnf), writes ``formats.json`` and puts the table into the
model card (``README.md``) between two markers, so converting again replaces it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kdtune.errors import UsageError

CARD_START, CARD_END = "<!-- kdtune-formats:start -->", "<!-- kdtune-formats:end -->"


def convert_and_audit(student_dir: Path, formats: tuple[str, ...], threads: int = 1,
                      progress: bool = False) -> dict[str, Any]:
    """Convert, measure, record (module docstring); returns the report."""
    from kdtune.objectives.distillation.compress import convert_student, measure_formats

    student_dir = Path(student_dir)
    if not formats:
        raise UsageError("--formats: name at least one of onnx, int8")
    if not student_dir.is_dir():
        raise UsageError(f"{student_dir}: no such student directory")
    convert_student(student_dir, formats)
    shown = (lambda name, row: print(f"  {name}: accuracy {row['accuracy']:.4f}, sigma "
                                     f"{row['sigma']:.4f}", flush=True)) if progress else None
    report = measure_formats(student_dir, formats, threads, progress=shown)
    card = student_dir / "README.md"
    text = card.read_text() if card.exists() else ""
    if CARD_START in text:
        before, rest = text.split(CARD_START, 1)
        text = before.rstrip() + "\n\n" + rest.split(CARD_END, 1)[1].lstrip()
    card.write_text(text.rstrip() + "\n\n" + card_section(report) + "\n")
    return report


def card_section(report: dict[str, Any]) -> str:
    """The model card's table of formats."""

    def ci(row: dict, key: str) -> str:
        low, high = row[f"{key}_ci"]
        return f"{row[key]:.4f} [{low:.4f}, {high:.4f}]"

    rows = report["formats"]
    base = rows["float"]
    lines = [CARD_START, "## Compressed formats, re-audited against the teacher", "",
             f"Test split ({report['n']} inputs, which no trial read), {report['threads']} "
             f"CPU thread(s); intervals are 95% paired bootstrap; quantisation: "
             f"{report['quantisation']}. phi_cnf: sigma <= {report['kappa']:g} (upper: the "
             "interval's upper end).", "",
             "| format | accuracy | sigma vs teacher | sigma vs float | agreement | phi_cnf "
             "(upper) | size | latency b1 / b32 (ms per input) |",
             "|---|---|---|---|---|---|---|---|"]
    for name, r in rows.items():
        size = f"{r['size_bytes'] / 1e6:.1f} MB ({r['size_bytes'] / base['size_bytes']:.2f}x)"
        lines.append(
            f"| {name} | {ci(r, 'accuracy')} | {ci(r, 'sigma')} | {r['sigma_vs_float']:.4f} | "
            f"{r['agreement']:.1%} | {'yes' if r['phi_cnf'] else 'no'} "
            f"({'yes' if r['phi_cnf_upper'] else 'no'}) | {size} | "
            f"{r['latency_ms_b1']:.2f} / {r['latency_ms_b32']:.2f} |")
    lines.append(CARD_END)
    return "\n".join(lines)
