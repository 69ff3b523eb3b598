"""The package's layering contracts (.importlinter, checked by import-linter over every import, those
inside functions included): what a lower layer must never import."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _lint(config: Path) -> subprocess.CompletedProcess:
    exe = shutil.which("lint-imports") or str(Path(sys.executable).with_name("lint-imports"))
    return subprocess.run([exe, "--config", str(config)], cwd=REPO, capture_output=True, text=True, timeout=300)


def test_the_layering_contracts_hold() -> None:
    config = REPO / ".importlinter"
    res = _lint(config)
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]
    declared = config.read_text().count("[importlinter:contract:")
    assert declared >= 11 and f"Contracts: {declared} kept, 0 broken." in res.stdout


def _probe(tmp_path: Path, contract: str, files: dict[str, str]) -> subprocess.CompletedProcess:
    """``contract`` of .importlinter checked over a copy of the package (found first on PYTHONPATH) with
    ``files`` appended to."""
    root = tmp_path / "src"
    shutil.copytree(REPO / "es_zoo", root / "es_zoo", ignore=shutil.ignore_patterns("__pycache__", "data"))
    for name, text in files.items():
        with open(root / name, "a", encoding="utf-8") as fh:
            fh.write(text)
    text = (REPO / ".importlinter").read_text()
    section = text[text.index(f"[importlinter:contract:{contract}]"):]
    section = section[:section.find("\n[") + 1 or len(section)]
    config = tmp_path / "probe.ini"
    config.write_text("[importlinter]\nroot_package = es_zoo\nexclude_type_checking_imports = True\n\n" + section)
    exe = shutil.which("lint-imports") or str(Path(sys.executable).with_name("lint-imports"))
    return subprocess.run([exe, "--config", str(config)], cwd=root, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(root)})


def test_the_old_import_cycles_stay_broken(tmp_path: Path) -> None:
    """The contracts that keep the cycles of es-zoo 0.x gone (task data, demos, scoring <-> heads) fail
    when one comes back."""
    back = "\n\ndef _probe():\n    from {} import {}  # noqa: F401\n"
    res = _probe(tmp_path, "task-data-one-way",
                 {"es_zoo/tasks/definitions.py": back.format("es_zoo.tasks.hub_sources", "fetch")})
    assert res.returncode == 1 and "es_zoo.tasks.definitions -> es_zoo.tasks.hub_sources" in res.stdout, res.stdout
    res = _probe(tmp_path / "2", "demos-below-package", {"es_zoo/demos/ui.py": back.format("es_zoo.demos", "DEMOS")})
    assert res.returncode == 1 and "es_zoo.demos.ui -> es_zoo.demos" in res.stdout, res.stdout
    res = _probe(tmp_path / "3", "scoring-over-heads",
                 {"es_zoo/tasks/task_heads.py": back.format("es_zoo.tasks.scoring", "score_file")})
    assert res.returncode == 1 and "es_zoo.tasks.task_heads -> es_zoo.tasks.scoring" in res.stdout, res.stdout


def test_a_contract_that_an_import_breaks_is_reported(tmp_path: Path) -> None:
    """The checker is live: a contract today's code breaks (recipes read the task definitions) fails."""
    config = tmp_path / "broken.ini"
    config.write_text("[importlinter]\nroot_package = es_zoo\n\n[importlinter:contract:x]\nname = probe\n"
                      "type = forbidden\nsource_modules =\n    es_zoo.recipes\nforbidden_modules =\n    es_zoo.tasks.definitions\n")
    res = _lint(config)
    assert res.returncode == 1 and "es_zoo.recipes -> es_zoo.tasks.definitions" in res.stdout
