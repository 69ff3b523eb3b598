"""A newcomer's first hour (issue 19): defaults that fit the model, failures that leave no debris."""

from __future__ import annotations

import json
import os

import pytest


@pytest.fixture(scope="module")
def cli():
    """`python -m es_zoo ARGS` run in CWD, each command its own process forked from a server that imported
    torch, transformers and datasets once (tests/forkserver.py)."""
    from tests.forkserver import ForkServer

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
    server = ForkServer(env, memory_limit=None, timeout=600)
    yield server.run
    server.close()


def test_a_tiny_run_is_fine_tuned_with_its_recipes_tiny_settings(micro_beto, tmp_path, cli) -> None:
    from es_zoo.recipes import load_recipe
    from es_zoo.tasks.definitions import load_task
    from es_zoo.tasks.finetune import recipe_hparams

    tiny = {r.task: r.hparams for r in load_recipe("beto", "tiny").glues.runs}
    base, where = recipe_hparams(str(micro_beto), load_task("pos"))
    assert base == tiny["pos"] and where == "the shipped beto recipe's tiny preset"
    assert base["learning_rate"] >= 1e-3  # not BETO-base's 5e-5, which leaves a tiny model near chance
    # a catalogue (paper-scale) model keeps the task's defaults, the paper's
    assert recipe_hparams("beto-base-cased", load_task("pos")) == ({}, None)
    # a task the recipe does not fine-tune: the defaults, and a warning that they are for a paper-scale model
    base, where = recipe_hparams(str(micro_beto), load_task("ner"))
    assert base == {} and "paper-scale" in where and "--learning-rate" in where
    proc = cli(["finetune", str(micro_beto), "--task", "pos", "--source", "shipped", "--epochs", "1",
                "--output-dir", str(tmp_path / "ft")], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "pos: fine-tuning settings from the shipped beto recipe's tiny preset (" in proc.stdout
    assert "; epochs as given" in proc.stdout
    # transformers' colour-coded LOAD REPORT goes to a log file, not the terminal
    assert "\x1b[" not in proc.stdout + proc.stderr and "LOAD REPORT" not in proc.stdout + proc.stderr
    report = (tmp_path / "ft" / "logs" / "load_report.txt").read_text()
    assert "LOAD REPORT" in report and "classifier" in report and "\x1b[" not in report
    hp = json.loads((tmp_path / "ft" / "results.json").read_text())["hyperparameters"]
    assert hp["learning_rate"] == tiny["pos"]["learning_rate"] and hp["batch_size"] == tiny["pos"]["batch_size"]
    assert hp["epochs"] == 1


def test_a_typod_model_path_is_a_path_and_leaves_nothing_behind(micro_beto, tmp_path, cli) -> None:
    (tmp_path / "runs" / "quick").mkdir(parents=True)
    out = tmp_path / "runs" / "finetune-pos"
    proc = cli(["finetune", "runs/quik", "--task", "pos", "--source", "shipped", "--output-dir", str(out)], tmp_path)
    assert proc.returncode == 1
    assert "runs/quik: no such folder (did you mean runs/quick?)" in proc.stderr
    assert "hf download" not in proc.stderr + proc.stdout and "Traceback" not in proc.stderr
    assert not out.exists()
    # evaluate checks the model before it downloads or writes anything
    proc = cli(["evaluate", "runs/quik", "--suite", "glues", "--output-dir", str(tmp_path / "ev")], tmp_path)
    assert proc.returncode == 1 and "runs/quik: no such folder" in proc.stderr and "skipping" not in proc.stdout
    assert not (tmp_path / "ev").exists()
    # so the corrected command is not refused by what the typo left
    proc = cli(["finetune", str(micro_beto), "--task", "pos", "--source", "shipped", "--epochs", "1",
                "--output-dir", str(out)], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_resume_with_other_settings_names_only_the_differing_keys() -> None:
    from es_zoo.recipes import load_recipe
    from es_zoo.reproduce import _diff

    diff = _diff(load_recipe("beto").to_dict()["config"], load_recipe("beto", max_steps=60).to_dict()["config"])
    assert diff == ["training.phases: 2 items -> 1 items", "training.warmup_steps: 100 -> 5"]
    diff = _diff(load_recipe("beto").to_dict()["config"],
                 load_recipe("beto", overrides=["training.phases.0.max_steps=70"]).to_dict()["config"])
    assert diff == ["training.phases.0.max_steps: 1200 -> 70"]


def test_a_short_run_says_how_its_schedule_changed_and_records_it(small_corpus, tmp_path, cli) -> None:
    import shlex

    from conftest import MICRO

    out = tmp_path / "short"
    args = ["reproduce", "beto", "--output-dir", str(out), "--corpus", str(small_corpus), "--max-steps", "5", *MICRO]
    proc = cli(args, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    note = "--max-steps 5: 5 optimizer steps instead of 9; phase(s) 2 (sequence length 64) dropped; warmup 2 -> 1 steps"
    assert proc.stdout.count(note) == 1
    info = json.loads((out / "run_info.json").read_text())
    assert note in info["schedule_changed"]
    # the command as typed, quoted so that it can be run again (overrides with spaces and brackets included)
    assert info["es_zoo_command"] == "es-zoo " + shlex.join(args)
    card = (out / "model" / "README.md").read_text()
    assert "**Schedule shortened**: " + note in card
    # the card shows a Spanish fill-mask example and its licence and limitations as text a visitor sees
    assert 'fill(f"Madrid es la {tokenizer.mask_token} de España.")' in card
    assert "No intended-use review and no bias analysis" in card
    # the summary: every published score on its own row, the same rows whatever the run fine-tuned, and
    # fixture fine-tunes never beside a published number
    from es_zoo.catalog import find_model
    from es_zoo.summary import summary_rows

    results = json.loads((out / "results.json").read_text())
    published = [r for r in summary_rows(results) if r[1] == "not measured here"]
    # the model's own published numbers; those others measured (MarIA's table) are for `es-zoo compare`
    assert len(published) == len(find_model("beto-base-cased").scores_for()) < len(find_model("beto-base-cased").scores)
    fake = {"metric": {"main": "accuracy"}, "source": "shipped", "split": "test", "examples": 300, "main": 63.0,
            "majority_baseline": 63.0}
    rows = summary_rows({**results, "glues": {"pawsx": fake}})
    assert [r for r in rows if r[1] == "not measured here"] == published
    assert ("GLUES pawsx accuracy on es-zoo's shipped fixture (test, 300 ex.)", "63.00",
            "not comparable (other data)") in rows
    assert ("  majority-class baseline (same split)", "63.00", "") in rows
    assert all(len(r[2]) <= 30 for r in rows)  # one number per cell


def test_loading_a_run_that_has_not_finished_says_so(small_corpus, tmp_path) -> None:
    import pytest

    import es_zoo
    from es_zoo.errors import EsZooError

    run = tmp_path / "unfinished"
    (run / "checkpoints" / "step-00000003").mkdir(parents=True)
    (run / "checkpoints" / "step-00000012").mkdir()
    (run / "recipe.yaml").write_text("recipe: beto\n")
    with pytest.raises(EsZooError, match=r"an es-zoo run that has not finished: it has no model/ folder yet; its "
                                         r"newest checkpoint is .*step-00000012"):
        es_zoo.load_model(str(run))


def test_skipped_tasks_say_why_in_a_few_words() -> None:
    from es_zoo.tasks.suite import skip_reason

    assert skip_reason("task 'mldoc' (source 'mldoc'): no data found (no Hub copy: the Reuters ...). Looked for") \
        == "no data (no Hub copy)"
    assert skip_reason("task 'xnli' (source 'xnli'): no train split found; name the training files") == "no train split"
    assert skip_reason("task 'xnli' (source 'xnli'): facebook/xnli@x: not in the local Hub cache and ...") \
        == "not downloaded"


def test_a_corpus_too_small_to_split_fails_before_the_tokenizer_and_leaves_nothing(tmp_path, cli) -> None:
    corpus = tmp_path / "two.txt"
    corpus.write_text("El perro ladra en el jardín.\n\nLa casa es blanca.\n", encoding="utf-8")
    out = tmp_path / "runs" / "two"
    proc = cli(["reproduce", "beto", "--corpus", str(corpus), "--output-dir", str(out)], tmp_path)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "2 document(s) left after cleaning" in proc.stderr and "hash of its text" in proc.stderr
    assert "add documents" in proc.stderr
    assert "tokenizer " not in proc.stdout  # stopped before training a tokenizer
    assert not out.exists() and not (tmp_path / "runs").exists()


def test_an_unreachable_hub_is_found_by_one_connection_not_by_retried_api_calls(monkeypatch) -> None:
    """huggingface_hub retries an API call for about 30 s when the network drops packets; es-zoo first
    tries one connection with a 3 s timeout."""
    import socket

    import huggingface_hub
    from huggingface_hub import constants

    from es_zoo import loading

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(loading, "_PROBED", {})

    def no_api_call(*a, **k):
        raise AssertionError("the API was called although the endpoint refuses connections")

    monkeypatch.setattr(huggingface_hub.HfApi, "model_info", no_api_call)
    err = loading._hub_probe("dccuchile/bert-base-spanish-wwm-cased", None)
    assert isinstance(err, ConnectionError) and "is unreachable" in str(err)
    # behind a proxy a direct connection proves nothing: no verdict from the probe
    monkeypatch.setattr(loading, "_PROBED", {})
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.invalid:3128")
    monkeypatch.setenv("NO_PROXY", "")
    assert loading.endpoint_unreachable() is None


def test_an_evaluation_stopped_by_a_signal_says_so(micro_beto, tmp_path, monkeypatch) -> None:
    from click.testing import CliRunner

    from es_zoo.cli import cli
    from es_zoo.tasks import suite

    monkeypatch.setattr(suite, "finetune", lambda *a, **k: {"stopped_early": True})  # SIGTERM mid-task
    res = CliRunner().invoke(cli, ["evaluate", str(micro_beto), "--tasks", "pawsx", "--source", "pawsx=shipped",
                                   "--output-dir", str(tmp_path / "ev")])
    assert res.exit_code == 0, res.output
    assert "stopped by a signal before every task was scored" in res.output and "--resume" in res.output
    assert "no task had data" not in res.output
