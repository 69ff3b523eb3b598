"""The command line: instant help, catalogue and recipe verbs, clear errors without tracebacks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from es_zoo.cli import cli


def run(*args: str):
    return CliRunner().invoke(cli, list(args))


def test_import_and_help_do_not_import_torch() -> None:
    code = (
        "import sys, es_zoo, es_zoo.cli\n"
        "from click.testing import CliRunner\n"
        "r = CliRunner().invoke(es_zoo.cli.cli, ['--help'])\n"
        "assert r.exit_code == 0, r.output\n"
        "heavy = [m for m in ('torch', 'transformers', 'gradio', 'datasets', 'accelerate') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_python_dash_m_works() -> None:
    out = subprocess.run([sys.executable, "-m", "es_zoo", "--help"], capture_output=True, text=True, check=True)
    assert "reproduce" in out.stdout and "list" in out.stdout


def test_list_and_filters() -> None:
    r = run("list")
    assert r.exit_code == 0 and "beto-base-cased" in r.output and "dccuchile/bert-base-spanish-wwm-cased" in r.output
    r = run("list", "beto*", "--json")
    data = json.loads(r.output)
    assert data and all(d["name"].startswith("beto") for d in data)
    r = run("list", "--family", "t5", "--json")
    assert {d["family"] for d in json.loads(r.output)} == {"t5"}


def test_show_prints_published_scores_and_suggests() -> None:
    r = run("show", "beto-base-cased")
    assert r.exit_code == 0
    assert "published scores" in r.output and "82.01" in r.output and "xnli" in r.output
    r = run("show", "beto-base-casde")
    assert r.exit_code == 1 and "Did you mean: beto-base-cased" in r.output
    assert "Traceback" not in r.output


def test_recipes_verbs(tmp_path: Path) -> None:
    r = run("recipes", "list")
    assert r.exit_code == 0 and "beto" in r.output
    r = run("recipes", "show", "beto")
    assert r.exit_code == 0 and "presets:" in r.output
    r = run("recipes", "show", "beto", "--preset", "paper")
    assert "global_batch_size: 2048" in r.output
    r = run("recipes", "cp", "beto", str(tmp_path))
    assert r.exit_code == 0 and (tmp_path / "beto.yaml").is_file()
    r = run("recipes", "validate", str(tmp_path / "beto.yaml"))
    assert r.exit_code == 0 and r.output.startswith("ok")
    (tmp_path / "beto.yaml").write_text((tmp_path / "beto.yaml").read_text().replace("seed: 42", "sead: 42", 1))
    r = run("recipes", "validate", str(tmp_path / "beto.yaml"))
    assert r.exit_code == 1 and "sead" in r.output and "did you mean 'seed'" in r.output
    assert "Traceback" not in r.output


def test_reproduce_rejects_bad_override_before_doing_anything(tmp_path: Path) -> None:
    out = tmp_path / "run"
    r = run("reproduce", "beto", "--output-dir", str(out), "training.learning_rate=abc")
    assert r.exit_code == 1 and "training.learning_rate: expected a number" in r.output
    assert not out.exists()
    r = run("reproduce", "beto", "--output-dir", str(out), "model.layers=3")
    assert r.exit_code == 1 and "unknown key" in r.output and not out.exists()


def _reproduce_cli(*args: str):
    from tests.conftest import MICRO

    return run("reproduce", "beto", *args, *MICRO)


def _one_clear_error(r, *needles: str) -> None:
    assert r.exit_code != 0
    # progress lines may come first (`preparing ...`); the error is one line, the last
    assert "Traceback" not in r.output and r.output.count("error: ") == 1
    assert r.output.strip().splitlines()[-1].startswith("error: ")
    for n in needles:
        assert n in r.output, r.output


def test_bad_inputs_give_one_clear_message(tmp_path: Path) -> None:
    out = tmp_path / "run"
    _one_clear_error(_reproduce_cli("--corpus", str(tmp_path / "missing.jsonl"), "--output-dir", str(out)),
                     "missing.jsonl")
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    _one_clear_error(_reproduce_cli("--corpus", str(empty), "--output-dir", str(out)), "empty.txt")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "Hola."}\nnot json\n')
    _one_clear_error(_reproduce_cli("--corpus", str(bad), "--output-dir", str(tmp_path / "r2")), "bad.jsonl:2")
    assert not (tmp_path / "r2").exists()  # a corpus error in a new run leaves nothing behind
    small = tmp_path / "small.txt"
    small.write_text("Hola, ¿qué tal?\n\nMuy bien.\n")
    _one_clear_error(_reproduce_cli("--corpus", str(small), "--output-dir", str(tmp_path / "r3")))
    _one_clear_error(_reproduce_cli("--corpus", "nadie/no-existe", "--output-dir", str(tmp_path / "r4")),
                     "nadie/no-existe", "local")
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "a.txt").write_text("mine")
    _one_clear_error(_reproduce_cli("--output-dir", str(notes)), "not an es-zoo run folder")
    assert (notes / "a.txt").read_text() == "mine"
