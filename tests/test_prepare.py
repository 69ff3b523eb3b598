"""`es-zoo prepare`: the datatrove pipeline, its shards and manifest, resume, the fingerprint, bad input."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from es_zoo.errors import CorpusError, EsZooError
from es_zoo.prepare import open_prepared, prepare, read_manifest
from es_zoo.recipes import load_recipe
from tests.conftest import MICRO

QUIET = {"echo": lambda line: None}


def _cfg(corpus: Path | str, extra: list[str] = (), recipe: str = "beto"):
    return load_recipe(recipe, overrides=MICRO + [f"corpus.source={corpus}", *extra])


@pytest.fixture(scope="module")
def split_corpus(tmp_path_factory: pytest.TempPathFactory, small_corpus: Path) -> Path:
    """The small corpus as three files, the last repeating two documents of the first (duplicates that
    land in another task than their first copy)."""
    lines = small_corpus.read_text(encoding="utf-8").splitlines(keepends=True)
    folder = tmp_path_factory.mktemp("split") / "corpus"
    folder.mkdir()
    third = len(lines) // 3
    (folder / "a.jsonl").write_text("".join(lines[:third]), encoding="utf-8")
    (folder / "b.jsonl").write_text("".join(lines[third: 2 * third]), encoding="utf-8")
    (folder / "c.jsonl").write_text("".join(lines[2 * third:] + lines[:2]), encoding="utf-8")
    return folder


def _stream(folder: Path) -> np.ndarray:
    p = open_prepared(folder)
    return np.asarray(p.train), np.asarray(p.heldout)


def test_tasks_and_workers_do_not_change_what_is_prepared(tmp_path: Path, split_corpus: Path) -> None:
    from transformers import AutoTokenizer

    from es_zoo.corpus import open_corpus
    from es_zoo.tokenization import tokenize_documents

    cfg = _cfg(split_corpus)
    one = prepare(cfg, tmp_path / "one", workers=1, tasks=1, **QUIET)
    # 1 KB chunks: every file is cut at line starts into many tasks, run by two worker processes.
    many = prepare(cfg, tmp_path / "many", workers=2, chunk_bytes=20_000, **QUIET)
    assert one["tasks"] == 1 and many["tasks"] > 6
    assert one["fingerprint"] == many["fingerprint"]
    a, b = _stream(tmp_path / "one"), _stream(tmp_path / "many")
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    # ... and it is exactly the corpus as training reads it: cleaned, deduplicated (first copy kept), in order.
    tok = AutoTokenizer.from_pretrained(tmp_path / "one" / "tokenizer")
    docs = list(open_corpus(cfg.corpus).documents("train"))
    want = np.concatenate([np.append(ids, tok.sep_token_id) for ids in tokenize_documents(tok, docs)])
    assert np.array_equal(a[0], want)
    assert one["selection"]["dropped"]["duplicates"] == 2
    assert many["dtype"] == "uint16" and (tmp_path / "many" / "train" / "00000.bin").stat().st_size % 2 == 0
    counts = np.load(tmp_path / "many" / "train.counts.npy")
    assert np.array_equal(counts, np.bincount(want, minlength=len(counts)))


def test_tokenizer_sample_is_bounded_deterministic_and_spread(tmp_path: Path, split_corpus: Path) -> None:
    cfg = _cfg(split_corpus, ["tokenizer.max_training_chars=60000"])
    m = prepare(cfg, tmp_path / "a", workers=2, chunk_bytes=20_000, **QUIET)
    s = m["sample"]
    assert 0 < s["characters"] <= 60_000 and s["budget_chars"] == 60_000
    assert 0.1 < s["share_of_training_text"] < 0.4
    again = prepare(cfg, tmp_path / "b", workers=1, tasks=1, **QUIET)
    assert again["sample"]["characters"] == s["characters"]
    assert (tmp_path / "a" / "tokenizer" / "tokenizer.json").read_text() == \
        (tmp_path / "b" / "tokenizer" / "tokenizer.json").read_text()
    # Spread over the corpus, not its head: documents of all three files are in the sample.
    from es_zoo.prepare import _hashes

    texts = [json.loads(line)["text"] for line in (split_corpus / "b.jsonl").read_text().splitlines()]
    texts += [json.loads(line)["text"] for line in (split_corpus / "c.jsonl").read_text().splitlines()]
    threshold = int(s["key_threshold"])
    assert any(_hashes(t)[0] < threshold for t in texts[: len(texts) // 2])
    assert any(_hashes(t)[0] < threshold for t in texts[len(texts) // 2:])


def test_only_what_the_schedule_needs_and_a_clear_shortfall(tmp_path: Path, small_corpus: Path) -> None:
    # 6 steps x 8 x 30 + 3 steps x 4 x 62 = 2,184 tokens, at most one pass: a small part of the corpus.
    cfg = _cfg(small_corpus, ["corpus.max_epochs=1", "corpus.heldout_fraction=0.1"])
    m = prepare(cfg, tmp_path / "need", workers=1, **QUIET)
    need = m["selection"]["needed_tokens"]
    assert need == 6 * 8 * 30 + 3 * 4 * 62
    got = m["splits"]["train"]["tokens"]
    assert need <= got < m["selection"]["estimated_corpus_tokens"] / 2
    # A schedule that needs more than the corpus holds fails before tokenizing, saying how much is missing.
    big = _cfg(small_corpus, ["corpus.max_epochs=1",
                              "training.phases=[{max_steps: 5000, seq_len: 32, global_batch_size: 8}]"])
    with pytest.raises(CorpusError, match=r"schedule needs 1\.2M .* about [0-9.]+M tokens missing"):
        prepare(big, tmp_path / "short", workers=1, **QUIET)
    assert not list((tmp_path / "short").glob("train/*.bin"))


def test_a_rerun_resumes_and_keeps_finished_shards(tmp_path: Path, split_corpus: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import es_zoo.prepare as prep

    cfg = _cfg(split_corpus)
    out = tmp_path / "p"
    real = prep.TokenizeShards.run

    def dies_on_task_2(self, data=None, rank=0, world_size=1):
        if rank == 2:
            raise OSError("No space left on device")
        yield from real(self, data, rank, world_size)

    monkeypatch.setattr(prep.TokenizeShards, "run", dies_on_task_2)
    with pytest.raises(EsZooError, match=r"stage 'tokenize': task 2 failed .*No space left.*run the same command"):
        prepare(cfg, out, workers=1, chunk_bytes=20_000, **QUIET)
    assert not (out / "manifest.json").exists()
    done = {p.name: p.stat().st_mtime_ns for p in (out / "train").glob("*.bin")}
    assert "00000.bin" in done and "00002.bin" not in done
    monkeypatch.setattr(prep.TokenizeShards, "run", real)
    lines = []
    m = prepare(cfg, out, workers=1, chunk_bytes=20_000, echo=lines.append)
    assert "resuming" in lines[0]
    assert {p.name: p.stat().st_mtime_ns for p in (out / "train").glob("*.bin") if p.name in done} == done
    assert m["splits"]["train"]["tokens"] > 0 and read_manifest(out)["fingerprint"] == m["fingerprint"]
    # Done is done: a third run changes nothing.
    assert prepare(cfg, out, workers=1, chunk_bytes=20_000, **QUIET)["finished"] == m["finished"]


def test_other_settings_are_refused_with_what_differs(tmp_path: Path, small_corpus: Path) -> None:
    from es_zoo.prepare import check_compatible

    cfg = _cfg(small_corpus)
    prepare(cfg, tmp_path / "p", workers=1, **QUIET)
    manifest = read_manifest(tmp_path / "p")
    check_compatible(manifest, _cfg(small_corpus, ["training.learning_rate=1e-3"]), "p")  # shared by both
    with pytest.raises(EsZooError, match=r"prepared for other settings \(tokenizer\.vocab_size: 600 \(prepared\) vs 700"):
        check_compatible(manifest, _cfg(small_corpus, ["tokenizer.vocab_size=700"]), "p")
    with pytest.raises(EsZooError, match=r"corpus\.min_chars"):
        check_compatible(manifest, _cfg(small_corpus, ["corpus.min_chars=50"]), "p")
    with pytest.raises(EsZooError, match="holds a different preparation.*tokenizer.vocab_size"):
        prepare(_cfg(small_corpus, ["tokenizer.vocab_size=700"]), tmp_path / "p", workers=1, **QUIET)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(EsZooError, match="not an es-zoo prepared folder; nothing was changed"):
        prepare(cfg, tmp_path / "other", workers=1, **QUIET)
    assert os.listdir(tmp_path / "other") == ["notes.txt"]


def test_data_prepared_with_other_sentence_rules_is_refused_for_bart(small_corpus: Path) -> None:
    """BART's sentence permutation reads the sentence starts a prepared folder holds: a folder made with
    other splitter rules (the fingerprint names the rules' version) is refused, naming it."""
    from es_zoo.prepare import check_compatible, fingerprint, fingerprint_spec
    from es_zoo.sentences import RULES_VERSION

    barto = load_recipe("barto", overrides=[f"corpus.source={small_corpus}"])
    assert fingerprint_spec(barto)["sentence_starts"] == f"es_zoo.sentences v{RULES_VERSION}"
    assert fingerprint_spec(_cfg(small_corpus))["sentence_starts"] is False  # BETO's objective reads none
    old = dict(fingerprint_spec(barto), sentence_starts=True)  # as folders prepared before the rules had a version
    manifest = {"fingerprint": fingerprint(old), "fingerprint_of": old, "splits": {"train": {"tokens": 10**9}}}
    with pytest.raises(EsZooError, match=r'prepared for other settings \(sentence_starts: true \(prepared\) vs '
                                         r'"es_zoo\.sentences v'):
        check_compatible(manifest, barto, "p")
    current = fingerprint_spec(barto)
    check_compatible({**manifest, "fingerprint": fingerprint(current), "fingerprint_of": current}, barto, "p")


def test_damaged_or_unfinished_folders_get_one_clear_line(tmp_path: Path, small_corpus: Path) -> None:
    cfg = _cfg(small_corpus)
    out = tmp_path / "p"
    prepare(cfg, out, workers=1, **QUIET)
    shard = out / "train" / "00000.bin"
    data = shard.read_bytes()
    shard.write_bytes(data[: len(data) // 2])
    with pytest.raises(CorpusError, match=r"00000.bin: [0-9,]+ bytes, expected [0-9,]+ .* truncated"):
        open_prepared(out, cfg)
    shard.write_bytes(data)
    open_prepared(out, cfg)
    (out / "manifest.json").unlink()
    with pytest.raises(EsZooError, match="not a complete prepared folder.*run the same `es-zoo prepare` command"):
        read_manifest(out)
    with pytest.raises(EsZooError, match="no such folder"):
        read_manifest(tmp_path / "nope")


def test_executors_that_are_not_installed_say_what_to_install(tmp_path: Path, small_corpus: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    real_import = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name == "ray" or name.startswith("ray."):
            raise ImportError("No module named 'ray'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    with pytest.raises(EsZooError, match=r"pip install 'es-zoo\[ray\]'"):
        prepare(_cfg(small_corpus), tmp_path / "r", executor="ray", **QUIET)
    monkeypatch.setenv("PATH", str(tmp_path))  # no sbatch anywhere
    with pytest.raises(EsZooError, match="needs Slurm's sbatch on PATH"):
        prepare(_cfg(small_corpus), tmp_path / "s", executor="slurm", **QUIET)
    assert not (tmp_path / "r").exists() and not (tmp_path / "s").exists()


def test_a_corpus_error_in_a_task_names_the_file_and_line(tmp_path: Path, small_corpus: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    lines = small_corpus.read_text(encoding="utf-8").splitlines(keepends=True)
    bad.write_text("".join(lines[:5]) + '{"text": 3}\n' + "".join(lines[5:]), encoding="utf-8")
    with pytest.raises(CorpusError, match=r"bad.jsonl:6: expected a JSON object with a string field 'text'"):
        prepare(_cfg(bad), tmp_path / "p", workers=2, chunk_bytes=10_000, **QUIET)
    assert not (tmp_path / "p").exists()  # the corpus must be fixed (a new plan): nothing is left behind


def test_reproduce_from_prepared_data_never_tokenizes(tmp_path: Path, small_corpus: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    import es_zoo.prepare as prep
    from es_zoo.reproduce import reproduce

    data = tmp_path / "data"
    prepare(_cfg(small_corpus), data, workers=1, **QUIET)

    def no(*a, **k):
        raise AssertionError("reproduce --data must not prepare or tokenize")

    monkeypatch.setattr(prep, "prepare", no)
    monkeypatch.setattr("es_zoo.tokenization.tokenize_documents", no)
    r1 = reproduce("beto", output_dir=tmp_path / "a", overrides=MICRO + ["training.trackers=[tensorboard]"],
                   data=str(data))
    assert list((tmp_path / "a" / "tracking" / "beto-tiny").glob("events.out.tfevents.*"))  # --report-to
    r2 = reproduce("beto", output_dir=tmp_path / "b", overrides=MICRO + ["training.learning_rate=5e-4"],
                   data=str(data))
    assert r1["data"]["fingerprint"] == r2["data"]["fingerprint"]
    info = json.loads((tmp_path / "a" / "run_info.json").read_text())
    assert info["data"]["path"] == str(data.resolve()) and not (tmp_path / "a" / "data").exists()
    assert "corpus:" in (tmp_path / "a" / "recipe.yaml").read_text()
    assert str(small_corpus) in (tmp_path / "a" / "recipe.yaml").read_text()  # where the text came from
    with pytest.raises(EsZooError, match="differs from the corpus the --data folder was prepared from"):
        reproduce("beto", output_dir=tmp_path / "c", corpus="embedded", overrides=MICRO, data=str(data))
    assert not (tmp_path / "c").exists()
    shutil.rmtree(tmp_path / "a" / "model")


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:  # it has just ended
        return b""


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


@pytest.mark.slow
def test_a_killed_worker_is_one_clear_line_and_the_rerun_finishes(tmp_path: Path, small_corpus: Path) -> None:
    import signal
    import subprocess
    import sys
    import time

    from tests.test_pretraining import _env

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    text = small_corpus.read_text(encoding="utf-8")
    for i in range(8):  # eight files, eight tasks, a few seconds of tokenizing each
        (corpus / f"{i}.jsonl").write_text("".join(text.replace('{"text": "', f'{{"text": "{i}.{k} ')
                                                   for k in range(16)), encoding="utf-8")
    out = tmp_path / "p"
    cmd = [sys.executable, "-m", "es_zoo", "prepare", "beto", "--corpus", str(corpus), "--output", str(out),
           "--workers", "2", *[o for o in MICRO if o.startswith("tokenizer.")]]
    proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not list((out / "logs" / "tokenize" / "logs").glob("task_*.log")):
        time.sleep(0.1)
    workers: list[int] = []
    while time.monotonic() < deadline and not workers and proc.poll() is None:  # a tokenize worker, mid-task
        servers = [p for p in _descendants(proc.pid) if b"forkserver" in _cmdline(p)]
        workers = [p for server in servers for p in _descendants(server)]
        time.sleep(0.05)
    assert workers, "no worker process found"
    time.sleep(0.3)
    os.kill(workers[-1], signal.SIGKILL)
    try:
        stdout, stderr = proc.communicate(timeout=120)  # never a hang
    finally:
        os.killpg(proc.pid, signal.SIGKILL) if proc.poll() is None else None
    assert proc.returncode == 1, stdout + stderr
    assert "a worker process died" in stderr and "run the same command again" in stderr
    assert "Traceback" not in stderr and len(stderr.strip().splitlines()) == 1
    assert not (out / "manifest.json").exists()
    done = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "resuming" in done.stdout and read_manifest(out)["tasks"] == 8


def test_slurm_submits_dependent_job_arrays_that_prepare_the_same_data(tmp_path: Path, split_corpus: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """No cluster here: a fake sbatch records what es-zoo submits, then each job's tasks run as Slurm
    would run them (datatrove's pickled executor with SLURM_ARRAY_TASK_ID set)."""
    import dill

    from es_zoo.prepare import SlurmOptions

    bin_dir, record = tmp_path / "bin", tmp_path / "sbatch-calls"
    bin_dir.mkdir()
    record.mkdir()
    (bin_dir / "sbatch").write_text(
        "#!/bin/sh\nn=$(ls \"$REC\" | wc -l)\nid=$((1000 + n))\n"
        "{ for a in \"$@\"; do echo \"ARG $a\"; done; cat \"$(eval echo \\${$#})\"; } > \"$REC/$id\"\n"
        "echo \"Submitted batch job $id\"\n")
    (bin_dir / "squeue").write_text("#!/bin/sh\nexit 0\n")  # nothing queued any more
    (bin_dir / "scontrol").write_text("#!/bin/sh\necho localhost\n")  # inside a task: its node list
    for f in bin_dir.iterdir():
        f.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setenv("REC", str(record))
    cfg = _cfg(split_corpus)
    out = tmp_path / "slurm"
    sub = prepare(cfg, out, executor="slurm", chunk_bytes=60_000,
                  slurm=SlurmOptions(partition="cpu", cpus_per_task=8, sbatch_args={"account": "nlp"}), **QUIET)
    assert list(sub["submitted"]) == ["scan", "dedup", "tokenizer", "tokenize", "manifest"]
    calls = {int(p.name): p.read_text() for p in record.iterdir()}
    arrays = [calls[i] for i in sorted(calls) if "launch_pickled_pipeline" in calls[i]]
    assert len(arrays) == 5
    assert "--dependency" not in arrays[0]
    for stage, (before, after) in zip(list(sub["submitted"])[1:], zip(sub["submitted"].values(), arrays[1:])):
        assert f"ARG --dependency=afterok:{before}" in after, stage
    assert "#SBATCH --partition=cpu" in arrays[0] and "#SBATCH --cpus-per-task=8" in arrays[0]
    assert "#SBATCH --account=nlp" in arrays[0] and "#SBATCH --array=0-" in arrays[0]
    assert not (out / "manifest.json").exists()
    # What the cluster would do, stage after stage: each array task loads the pickled executor.
    monkeypatch.setenv("SLURM_NODELIST", "localhost")
    for stage in sub["submitted"]:
        with open(out / "logs" / stage / "executor.pik", "rb") as fh:
            executor = dill.load(fh)
        for rank in range(executor.tasks):
            monkeypatch.setenv("SLURM_ARRAY_TASK_ID", str(rank))
            executor.run()
    monkeypatch.delenv("SLURM_ARRAY_TASK_ID")
    local = prepare(cfg, tmp_path / "local", workers=1, chunk_bytes=60_000, **QUIET)
    assert read_manifest(out)["fingerprint"] == local["fingerprint"]
    assert np.array_equal(_stream(out)[0], _stream(tmp_path / "local")[0])


@pytest.mark.slow
def test_the_ray_executor_prepares_the_same_data(tmp_path: Path, split_corpus: Path) -> None:
    """datatrove's Ray executor on a local Ray cluster (2 CPUs) gives exactly what the local one gives."""
    ray = pytest.importorskip("ray", reason="Ray is in the dev extra: pip install -e '.[dev]'")
    cfg = _cfg(split_corpus)
    try:
        m = prepare(cfg, tmp_path / "ray", executor="ray", workers=2, chunk_bytes=60_000, **QUIET)
    finally:
        ray.shutdown()
    local = prepare(cfg, tmp_path / "local", workers=1, chunk_bytes=60_000, **QUIET)
    assert m["tasks"] == local["tasks"] > 1 and m["fingerprint"] == local["fingerprint"]
    assert np.array_equal(_stream(tmp_path / "ray")[0], _stream(tmp_path / "local")[0])
    assert np.array_equal(_stream(tmp_path / "ray")[1], _stream(tmp_path / "local")[1])


def test_two_preparations_never_write_one_folder(tmp_path: Path, small_corpus: Path) -> None:
    import fcntl

    out = tmp_path / "p"
    out.mkdir()
    with open(out / ".lock", "w") as other:  # as an `es-zoo prepare` running in another process holds it
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(EsZooError, match="is being written by .*wait for it to finish"):
            prepare(_cfg(small_corpus), out, workers=1, **QUIET)
    assert sorted(p.name for p in out.iterdir()) == [".lock"]
    prepare(_cfg(small_corpus), out, workers=1, **QUIET)  # once it is released
    assert read_manifest(out)


def test_bert2bert_prepares_with_its_betos_tokenizer(tmp_path: Path, small_corpus: Path, micro_beto: Path) -> None:
    """bert2bert trains no tokenizer: `es-zoo prepare` takes the warm-start BETO's, and a folder prepared
    with another BETO's tokenizer is refused by `reproduce --data`."""
    from click.testing import CliRunner

    from es_zoo.cli import cli
    from es_zoo.reproduce import reproduce
    from tests.conftest import MICRO_B2B

    data = tmp_path / "data"
    args = ["prepare", "bert2bert", "--corpus", str(small_corpus), "--output", str(data),
            f"model.encoder={micro_beto}", *MICRO_B2B]
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 0, r.output
    m = read_manifest(data)
    assert m["tokenizer"]["from"] == str(micro_beto / "model") and m["sample"]["characters"] == 0
    from transformers import AutoTokenizer

    assert AutoTokenizer.from_pretrained(data / "tokenizer").get_vocab() == \
        AutoTokenizer.from_pretrained(micro_beto / "model").get_vocab()
    out = reproduce("bert2bert", output_dir=tmp_path / "run", overrides=MICRO_B2B + [f"model.encoder={micro_beto}"],
                    data=str(data))
    assert out["heldout"]["loss"] < out["heldout_step0"]["loss"] and not (tmp_path / "run" / "data").exists()
    # Another BETO (a copy whose vocabulary differs in one entry) does not match the prepared tokens.
    other = tmp_path / "other-beto"
    shutil.copytree(micro_beto / "model", other)
    vocab = (other / "vocab.txt").read_text().splitlines()
    vocab[-1] = vocab[-1] + "x"
    (other / "vocab.txt").write_text("\n".join(vocab) + "\n")
    tok = json.loads((other / "tokenizer.json").read_text())
    last = max(tok["model"]["vocab"], key=tok["model"]["vocab"].get)
    tok["model"]["vocab"][last + "x"] = tok["model"]["vocab"].pop(last)
    (other / "tokenizer.json").write_text(json.dumps(tok))
    with pytest.raises(EsZooError, match="tokenized with another tokenizer than the BETO"):
        reproduce("bert2bert", output_dir=tmp_path / "run2", overrides=MICRO_B2B + [f"model.encoder={other}"],
                  data=str(data))
