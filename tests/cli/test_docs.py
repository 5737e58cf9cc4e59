"""The README and docs/ show only commands and flags that exist, and the README stays short.

Every ``kdtune ...`` line of their code blocks is resolved against the real command tree:
the command path must exist and every ``--flag`` it shows must be one of that command's
options (or a global one); ``--help`` of each command shown must parse.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from kdtune.study.cli.root import app

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
GLOBAL = {"--debug", "--help", "-h", "--version"}


def _shown(text: str) -> list[str]:
    """The ``kdtune`` command lines of a markdown text's fenced code blocks."""
    lines = []
    for block in re.findall(r"```[^\n]*\n(.*?)```", text, flags=re.S):
        for raw in block.splitlines():
            line = raw.strip().removeprefix("$ ")
            line = re.split(r"\s+#\s", line)[0]  # a trailing comment
            if line.startswith("kdtune "):
                lines.append(line)
    return lines


def _resolve(root, words: list[str]):
    """(command, path) for the longest command path at the start of ``words``."""
    command, path = root, []
    for word in words:
        sub = getattr(command, "commands", {}).get(word)
        if sub is None:
            break
        command, path = sub, [*path, word]
    return command, path


def _flags(command) -> set[str]:
    return {opt for p in command.params for opt in (*p.opts, *p.secondary_opts)}


SHOWN = [(doc.relative_to(ROOT).as_posix(), line) for doc in DOCS
         for line in _shown(doc.read_text())]


def test_the_docs_show_commands():
    assert len(SHOWN) >= 20
    assert any(doc == "README.md" for doc, _ in SHOWN)


@pytest.mark.parametrize(("doc", "line"), SHOWN)
def test_each_shown_command_exists_with_its_flags(doc, line):
    root = typer.main.get_command(app)
    words = shlex.split(line)[1:]
    words = [w for w in words if w not in GLOBAL]
    command, path = _resolve(root, words)
    leaf = bool(path) and not hasattr(command, "commands")
    assert leaf or words[len(path):] == [], f"{doc}: {line!r}: no such command"
    flags = {w.split("=", 1)[0] for w in words[len(path):] if w.startswith("-")}
    unknown = flags - _flags(command) - GLOBAL
    assert unknown == set(), f"{doc}: {line!r}: {sorted(unknown)} not options of " \
                             f"kdtune {' '.join(path)}"


def test_help_of_each_shown_command_parses():
    root = typer.main.get_command(app)
    paths = {tuple(_resolve(root, shlex.split(line)[1:])[1]) for _, line in SHOWN}
    runner = CliRunner()
    for path in sorted(paths):
        result = runner.invoke(app, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
        assert "Usage:" in result.output


def test_the_readme_is_short():
    assert len((ROOT / "README.md").read_text().splitlines()) <= 200


def test_every_design_link_names_a_section():
    """``Why: docs/design.md, "<section>"`` in a module names a section that exists."""
    design = (ROOT / "docs" / "design.md").read_text()
    sections = {line[4:].strip() for line in design.splitlines() if line.startswith("### ")}
    links = []
    for folder in ("kdtune", "storage", "objectives", "study"):
        for path in (ROOT / folder).rglob("*.py"):
            for m in re.finditer(r'Why: docs/design\.md,((?:\s*"[^"]+",?)+)', path.read_text()):
                links += [(path.name, name) for name in re.findall(r'"([^"]+)"', m.group(1))]
    assert len(links) >= 40
    assert [(f, name) for f, name in links if name not in sections] == []


def test_readme_links_resolve():
    text = (ROOT / "README.md").read_text()
    targets = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text)
    assert targets
    assert [t for t in targets if not t.startswith("http") and not (ROOT / t).exists()] == []
