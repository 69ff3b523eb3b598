"""The wheel carries the recipes, model-card templates and embedded data, and works outside a checkout."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(REPO)],
        capture_output=True, text=True, timeout=600,
    )
    if done.returncode != 0:
        pytest.fail(f"building the wheel failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    (whl,) = out.glob("es_zoo-*.whl")
    return whl


def test_wheel_holds_the_shipped_data(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for needed in ("es_zoo/_recipes/beto.yaml", "es_zoo/_recipes/accelerate/multi_gpu.yaml",
                   "es_zoo/_model_cards/model_card.md", "es_zoo/data/eltec-es-sample.jsonl.gz",
                   "es_zoo/data/catalog.yaml", "es_zoo/data/NOTICE.md", "es_zoo/cli.py"):
        assert needed in names, needed
    entry = next(n for n in names if n.endswith("entry_points.txt"))
    assert "es-zoo = es_zoo.cli:main" in zipfile.ZipFile(wheel).read(entry).decode()
    assert not any(n.startswith(("tests/", "benchmarks/")) for n in names)


def test_installed_wheel_works_outside_a_checkout(wheel: Path, tmp_path: Path) -> None:
    target = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(target)  # a wheel is a zip of the installed tree
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(target)
    code = (
        "import es_zoo, es_zoo.resources as r, es_zoo.recipes as rec, es_zoo.catalog as c\n"
        "assert str(r.PACKAGE_DIR).startswith(%r), r.PACKAGE_DIR\n"
        "assert r.recipes_dir().name == '_recipes' and r.model_cards_dir().name == '_model_cards'\n"
        "print(rec.list_recipes(), rec.load_recipe('beto').training.total_steps, len(c.list_models()))\n"
    ) % str(target)
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "'beto'" in out.stdout.split(']')[0]
