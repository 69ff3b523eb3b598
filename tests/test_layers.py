"""The package's layering contracts (.importlinter, checked by import-linter over every import, those
inside functions included): what a lower layer must never import."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _lint(config: Path) -> subprocess.CompletedProcess:
    exe = shutil.which("lint-imports") or str(Path(sys.executable).with_name("lint-imports"))
    return subprocess.run([exe, "--config", str(config)], cwd=REPO, capture_output=True, text=True, timeout=300)


def test_the_layering_contracts_hold() -> None:
    res = _lint(REPO / ".importlinter")
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]
    assert "Contracts: 6 kept, 0 broken." in res.stdout


def test_a_contract_that_an_import_breaks_is_reported(tmp_path: Path) -> None:
    """The checker is live: a contract today's code breaks (recipes read the task definitions) fails."""
    config = tmp_path / "broken.ini"
    config.write_text("[importlinter]\nroot_package = es_zoo\n\n[importlinter:contract:x]\nname = probe\n"
                      "type = forbidden\nsource_modules =\n    es_zoo.recipes\nforbidden_modules =\n    es_zoo.tasks.definitions\n")
    res = _lint(config)
    assert res.returncode == 1 and "es_zoo.recipes -> es_zoo.tasks.definitions" in res.stdout
