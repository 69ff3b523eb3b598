"""BETO reproduction end to end on a micro model: run folder, exact resume, SIGTERM, NaN, distributed."""

from __future__ import annotations

import json
import shutil
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

from es_zoo.errors import CorpusError, RunDirError, TrainingError
from es_zoo.reproduce import reproduce
from tests.conftest import MICRO, MICRO_BETO, NO_DROPOUT, REPO, finished


def _run(out: Path, corpus: Path, extra: list[str] = (), **kw):
    """The session's micro BETO recipe (tests/conftest.py micro_beto), with ``extra`` overrides."""
    return reproduce("beto", output_dir=out, corpus=str(corpus), overrides=MICRO_BETO + list(extra), **kw)


def _weights(run: Path) -> dict[str, np.ndarray]:
    return load_file(run / "model" / "model.safetensors")


def _losses(run: Path) -> list[float]:
    return [json.loads(line)["loss"] for line in (run / "logs" / "train.jsonl").read_text().splitlines()]


@pytest.fixture
def finished_run(micro_beto: Path) -> Path:
    """The session's micro BETO run, finished (read only: a test that changes it works on a copy)."""
    return micro_beto


def test_run_folder_is_complete_and_loads_with_transformers(finished_run: Path) -> None:
    import torch
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    for name in ("run_info.json", "recipe.yaml", "tokenizer", "data", "checkpoints", "logs/train.jsonl",
                 "loss_curve.png", "results.json", "model/model.safetensors", "model/config.json",
                 "model/README.md", "model/recipe.yaml", "model/loss_curve.png", "model/tokenizer.json"):
        assert (finished_run / name).exists(), name
    info = json.loads((finished_run / "run_info.json").read_text())
    assert info["versions"]["torch"] and info["processes"] == 1
    results = json.loads((finished_run / "results.json").read_text())
    assert results["training"]["steps"] == 9
    h = results["heldout"]
    assert 0 <= h["masked_accuracy"] <= 1 and h["perplexity"] > 1 and h["masked_tokens"] > 0
    tok = AutoTokenizer.from_pretrained(finished_run / "model")
    model = AutoModelForMaskedLM.from_pretrained(finished_run / "model")
    assert tok.mask_token_id == 0 and tok.pad_token_id == 1 and model.config.vocab_size == len(tok)
    enc = tok("El [MASK] de la Mancha.", return_tensors="pt")
    with torch.no_grad():
        logits = model(**enc).logits
    assert logits.shape == (1, enc["input_ids"].shape[1], len(tok))
    assert not list((finished_run / "model").glob("*.bin")) and not list((finished_run / "model").glob("*.pt"))
    # The log has one line per step (log_every=1), phases in order, lr warmed up.
    rows = [json.loads(x) for x in (finished_run / "logs" / "train.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(1, 10))
    assert [r["seq_len"] for r in rows] == [32] * 6 + [64] * 3
    assert rows[0]["lr"] < rows[1]["lr"] and all(r["tokens_per_s"] > 0 for r in rows)


def test_model_card_quotes_the_measured_numbers(finished_run: Path) -> None:
    from huggingface_hub import ModelCard

    card = ModelCard.load(finished_run / "model" / "README.md")
    assert card.data.language == "es" and card.data.license is None  # never guessed
    licence = card.text.split("## Licence")[1].split("## Citation")[0]  # visible text, not an HTML comment
    assert "No licence is set for these weights yet" in licence and "<!--" not in licence
    results = json.loads((finished_run / "results.json").read_text())
    assert f"{100 * results['heldout']['masked_accuracy']:.2f}%" in card.text
    assert "82.01" in card.text  # the published XNLI score beside it
    assert "tokenizer.vocab_size" in card.text  # non-default hyperparameters listed


def test_resume_after_interruption_is_bit_identical(tmp_path: Path, small_corpus: Path, finished_run: Path) -> None:
    from es_zoo.training import stop_after

    out = tmp_path / "interrupted"
    with stop_after(4):
        first = _run(out, small_corpus)
    assert first["stopped_early"]
    assert (out / "checkpoints" / "step-00000004" / "COMPLETE").is_file()
    assert not (out / "model").exists()
    # A crash while writing a later checkpoint must not disturb the resume.
    (out / "checkpoints" / ".tmp-step-00000005").mkdir()
    _run(out, small_corpus, resume=True)
    a, b = _weights(finished_run), _weights(out)
    assert a.keys() == b.keys()
    for k in a:
        assert np.array_equal(a[k], b[k]), k
    assert _losses(out) == _losses(finished_run)
    assert not (out / "checkpoints" / ".tmp-step-00000005").exists()


def _listing(folder: Path) -> list[tuple[str, int, int]]:
    """Every file's path, size and modification time, but the folder's lock file (each command takes it)."""
    return sorted((str(q.relative_to(folder)), q.stat().st_size, q.stat().st_mtime_ns) for q in folder.rglob("*")
                  if q.name != ".lock")


def test_an_existing_run_is_refused_and_left_as_it_was(small_corpus: Path, finished_run: Path) -> None:
    before = _listing(finished_run)
    with pytest.raises(RunDirError, match="already holds an es-zoo run"):
        _run(finished_run, small_corpus)
    with pytest.raises(RunDirError, match="different recipe"):
        _run(finished_run, small_corpus, ["training.seed=1"], resume=True)
    assert _listing(finished_run) == before


def test_overwrite_never_touches_a_folder_that_is_not_a_run(tmp_path: Path, small_corpus: Path) -> None:
    mine = tmp_path / "my-notes"
    mine.mkdir()
    (mine / "thesis.tex").write_text("precious")
    with pytest.raises(RunDirError, match="not an es-zoo run folder"):
        _run(mine, small_corpus, overwrite=True)
    assert os.listdir(mine) == ["thesis.tex"] and (mine / "thesis.tex").read_text() == "precious"


def test_resuming_a_finished_run_only_evaluates_and_exports_again(tmp_path: Path, small_corpus: Path,
                                                                   finished_run: Path) -> None:
    run = shutil.copytree(finished_run, tmp_path / "finished")
    _run(run, small_corpus, resume=True)
    before, after = _weights(finished_run), _weights(run)
    assert before.keys() == after.keys() and all(np.array_equal(before[k], after[k]) for k in before)
    assert _losses(run) == _losses(finished_run)  # no step trained again
    assert json.loads((run / "results.json").read_text())["heldout"] == \
        json.loads((finished_run / "results.json").read_text())["heldout"]


def test_overwrite_replaces_an_es_zoo_run(tmp_path: Path, small_corpus: Path) -> None:
    from es_zoo.training import stop_after

    out = tmp_path / "run"
    with stop_after(2):
        _run(out, small_corpus)
    (out / "checkpoints" / "marker-from-old-run").mkdir()
    _run(out, small_corpus, overwrite=True, max_steps=3)
    assert not (out / "checkpoints" / "marker-from-old-run").exists()
    assert json.loads((out / "results.json").read_text())["training"]["steps"] == 3


def test_nan_loss_stops_with_the_last_good_checkpoint(tmp_path: Path, small_corpus: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    import es_zoo.training as training

    real = training.train_step
    calls = {"n": 0}

    def poisoned(*args, **kwargs):
        loss, correct, counts = real(*args, **kwargs)  # device tensors: the loop reads them later
        calls["n"] += 1
        return (loss * float("nan") if calls["n"] == 5 else loss), correct, counts

    monkeypatch.setattr(training, "train_step", poisoned)
    out = tmp_path / "nan"
    # Logged every 4 steps, saved every 3: the NaN of step 5 is found before the save of step 6, named,
    # and the checkpoint of step 3 (from before it) is the last one.
    with pytest.raises(TrainingError, match=r"loss became nan at step 5.*step-00000003"):
        _run(out, small_corpus, ["training.log_every=4"])
    assert calls["n"] == 6
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step-00000003"]
    assert (out / "checkpoints" / "step-00000003" / "COMPLETE").is_file()
    assert [json.loads(x)["step"] for x in (out / "logs" / "train.jsonl").read_text().splitlines()] == [4]
    assert not (out / "model").exists()


def test_corpus_too_small_for_one_batch(tmp_path: Path) -> None:
    tiny = tmp_path / "tiny.txt"
    tiny.write_text("Hola mundo.\n\nAdiós mundo.\n" * 3)
    with pytest.raises(CorpusError):
        reproduce("beto", output_dir=tmp_path / "run", corpus=str(tiny), overrides=MICRO)


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    return env


@pytest.mark.slow
def test_sigterm_saves_at_a_step_boundary_and_resume_finishes(tmp_path: Path, small_corpus: Path) -> None:
    out = tmp_path / "sig"
    long = [o for o in MICRO if not o.startswith("training.phases")] + [
        "training.phases=[{max_steps: 400, seq_len: 32, global_batch_size: 8}]", "training.save_every=1000"]
    cmd = [sys.executable, "-m", "es_zoo", "reproduce", "beto", "--corpus", str(small_corpus),
           "--output-dir", str(out), *long]
    proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    log = out / "logs" / "train.jsonl"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and (not log.is_file() or len(log.read_text().splitlines()) < 3):
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, output
    assert "stop requested" in output and "--resume" in output
    ckpts = list((out / "checkpoints").glob("step-*"))
    assert len(ckpts) == 1 and (ckpts[0] / "COMPLETE").is_file()
    stopped_at = int(ckpts[0].name.split("-")[1])
    assert 3 <= stopped_at < 400
    done = subprocess.run(cmd + ["--resume"], env=_env(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads((out / "results.json").read_text())["training"]["steps"] == 400


@pytest.mark.slow
def test_two_processes_keep_the_global_batch_and_the_loss_curve(tmp_path: Path, small_corpus: Path) -> None:
    """The paper-scale flow at micro size: `es-zoo prepare` (two datatrove workers) once, then one process
    and two processes train from the prepared folder, each reading only its own slices."""
    data = tmp_path / "data"
    prep = subprocess.run([sys.executable, "-m", "es_zoo", "prepare", "beto", "--corpus", str(small_corpus),
                           "--output", str(data), "--workers", "2", "--chunk-mb", "1", *MICRO, *NO_DROPOUT],
                          env=_env(), capture_output=True, text=True, timeout=600)
    assert prep.returncode == 0, prep.stdout[-3000:] + prep.stderr[-3000:]
    single = tmp_path / "one"
    reproduce("beto", output_dir=single, overrides=MICRO + NO_DROPOUT, data=str(data))
    two = tmp_path / "two"
    # Exactly the documented command (accelerate 1.x alone would start one process; es-zoo starts two).
    accelerate = str(Path(sys.executable).parent / "accelerate")
    cmd = [accelerate, "launch", "--num_processes", "2", "--cpu", "-m", "es_zoo", "reproduce", "beto",
           "--data", str(data), "--output-dir", str(two), *MICRO, *NO_DROPOUT]
    done = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "preparing" not in done.stdout and not (two / "data").exists()  # never re-tokenized
    assert json.loads((two / "run_info.json").read_text())["processes"] == 2
    one_rows = [json.loads(x) for x in (single / "logs" / "train.jsonl").read_text().splitlines()]
    two_rows = [json.loads(x) for x in (two / "logs" / "train.jsonl").read_text().splitlines()]
    assert [r["step"] for r in one_rows] == [r["step"] for r in two_rows]
    assert [r["tokens_seen"] for r in one_rows] == [r["tokens_seen"] for r in two_rows]
    np.testing.assert_allclose([r["loss"] for r in two_rows], [r["loss"] for r in one_rows], rtol=1e-4, atol=1e-5)
    a, b = _weights(single), _weights(two)
    for k in a:
        np.testing.assert_allclose(a[k], b[k], rtol=1e-3, atol=1e-5)
    # Launched again into the finished run: the first process refuses, the second follows it (no hang).
    before = sorted(p.name for p in two.iterdir())
    again = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=300)
    assert again.returncode == 1 and "already holds an es-zoo run" in again.stderr
    assert sorted(p.name for p in two.iterdir()) == before


@pytest.mark.slow
def test_a_refused_two_process_launch_prints_one_line_and_changes_nothing(tmp_path: Path, small_corpus: Path) -> None:
    """Without --data the first process checks the folder (and would prepare the data) before any process
    group exists; when it refuses, the other process stops too, silently, and nothing is written."""
    foreign = tmp_path / "notes"
    foreign.mkdir()
    (foreign / "mine.txt").write_text("not a run")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "0",
           "-m", "es_zoo", "reproduce", "beto", "--corpus", str(small_corpus), "--output-dir", str(foreign), *MICRO]
    done = subprocess.run(cmd, env=_env() | {"ACCELERATE_USE_CPU": "1"}, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "is not an es-zoo run folder" in errors[0], done.stderr[-2000:]
    assert [p.name for p in foreign.iterdir()] == ["mine.txt"]


@pytest.mark.slow
def test_the_readme_main_command_learns_spanish(documented_runs: dict) -> None:
    """`es-zoo reproduce beto` as the README runs it: tiny preset, embedded corpus, CPU."""
    done, out = finished(documented_runs, "beto")  # started when the session began (tests/conftest.py)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "published (beto-base-cased)" in done.stdout and "unigram baseline" in done.stdout
    h = json.loads((out / "results.json").read_text())["heldout"]
    # Clearly better than chance on 9,728 held-out masked tokens: at these sizes the binomial noise
    # of an accuracy is about 0.3 points, so these margins are many standard errors wide.
    assert h["masked_tokens"] > 5000
    assert h["masked_accuracy"] > 1.6 * h["unigram_accuracy"]
    assert h["perplexity"] < 0.75 * h["unigram_perplexity"]
    # ... and ends with the recipe's GLUES fine-tunes on the shipped fixtures, each a Hub-ready folder.
    g = json.loads((out / "results.json").read_text())["glues"]
    assert set(g) == {"pos", "parsing", "pawsx", "qa"} and "GLUES pos accuracy" in done.stdout
    assert g["pos"]["main"] > 60 and g["pos"]["examples"] == 200  # 17 tags; NOUN alone is ~20% of words
    assert 25 < g["parsing"]["metrics"]["uas"] and g["parsing"]["metrics"]["las"] <= g["parsing"]["metrics"]["uas"]
    assert g["pawsx"]["examples"] == 300 and g["pawsx"]["majority_baseline"] == 63.0
    assert g["qa"]["metrics"]["total"] == 301 and g["qa"]["metrics"]["f1"] > 2
    for task in g:
        assert (out / "glues" / task / "model" / "README.md").is_file()
    assert "GLUES fine-tunes (measured by this run)" in (out / "model" / "README.md").read_text()


def test_a_corrupted_newest_checkpoint_resumes_from_the_one_before(tmp_path: Path, small_corpus: Path,
                                                                   finished_run: Path,
                                                                   capsys: pytest.CaptureFixture) -> None:
    """One byte flipped in the newest checkpoint's weights (same size: only its recorded sha256 sees it):
    --resume names it, moves it aside and resumes from the checkpoint before, to the same model."""
    from es_zoo.training import stop_after

    out = tmp_path / "corrupt"
    with stop_after(4):
        _run(out, small_corpus)
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step-00000003", "step-00000004"]
    weights = out / "checkpoints" / "step-00000004" / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))
    capsys.readouterr()
    _run(out, small_corpus, resume=True)
    said = capsys.readouterr().out
    assert "checkpoint step-00000004 is damaged: model.safetensors does not match the sha256" in said
    assert "resuming from checkpoints/step-00000003 (step 3)" in said
    assert (out / "checkpoints" / "damaged-step-00000004").is_dir()
    a, b = _weights(finished_run), _weights(out)
    for k in a:
        assert np.array_equal(a[k], b[k]), k
    assert _losses(out) == _losses(finished_run)
