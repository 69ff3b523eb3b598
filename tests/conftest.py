"""Shared fixtures. Every test runs offline: the Hub is never contacted."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# The tests' models are tiny: a second OpenMP thread mostly waits, and one thread per process leaves the
# other core to the documented runs that share the machine (below).
os.environ.setdefault("OMP_NUM_THREADS", "1")

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"

# A BERT small enough that a few optimizer steps take well under a second on a CPU.
MICRO = [
    "tokenizer.vocab_size=600",
    "model.hidden_size=32",
    "model.num_hidden_layers=2",
    "model.num_attention_heads=2",
    "model.intermediate_size=64",
    "model.max_position_embeddings=128",
    "training.phases=[{max_steps: 6, seq_len: 32, global_batch_size: 8}, {max_steps: 3, seq_len: 64, global_batch_size: 4, max_predictions: 10}]",
    "training.micro_batch_size=2",
    "training.warmup_steps=2",
    "training.log_every=1",
    "training.save_every=3",
    "evaluation.seq_len=32",
    "evaluation.max_sequences=32",
    "evaluation.batch_size=16",
    "corpus.heldout_fraction=0.1",
    "glues.runs=[]",
]
# Dropout draws differ between one process and two, so runs compared across layouts turn it off.
NO_DROPOUT = ["model.hidden_dropout_prob=0.0", "model.attention_probs_dropout_prob=0.0"]


@pytest.fixture(scope="session")
def small_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """~250 k characters of the embedded novels as a JSONL corpus of ~20-paragraph documents."""
    from es_zoo.corpus import EMBEDDED_FILE

    out = tmp_path_factory.mktemp("corpus") / "small.jsonl"
    docs, total = [], 0
    with gzip.open(EMBEDDED_FILE, "rt", encoding="utf-8") as fh:
        for line in fh:
            rec = json.loads(line)
            if rec["split"] != "train":
                continue
            paras = rec["text"].split("\n")
            for i in range(0, len(paras), 20):
                text = "\n".join(paras[i : i + 20])
                docs.append(text)
                total += len(text)
                if total > 250_000:
                    break
            if total > 250_000:
                break
    out.write_text("".join(json.dumps({"text": d}, ensure_ascii=False) + "\n" for d in docs), encoding="utf-8")
    return out


# The shared micro runs below are made once per session and only read by the tests (a test that must
# change one copies it first): one per family, plus the published pair that ends in fine-tunes.
MICRO_BETO = MICRO + ["model.max_position_embeddings=512"]


@pytest.fixture(scope="session")
def micro_beto(tmp_path_factory: pytest.TempPathFactory, small_corpus: Path) -> Path:
    """A micro BETO run folder (seconds to make): pretraining tests read it, fine-tunes start from it."""
    from es_zoo.reproduce import reproduce

    out = tmp_path_factory.mktemp("micro-beto") / "run"
    reproduce("beto", output_dir=out, corpus=str(small_corpus), overrides=MICRO_BETO)
    return out


_TRAIN = [
    "training.micro_batch_size=2",
    "training.warmup_steps=2",
    "training.log_every=1",
    "training.save_every=3",
    "evaluation.max_sequences=16",
    "evaluation.batch_size=8",
    "corpus.heldout_fraction=0.1",
    "seq2seq.runs=[]",  # the fine-tunes that end a tiny reproduction are in published_runs
]
MICRO_BART = _TRAIN + [
    "tokenizer.vocab_size=600",
    "model.d_model=32",
    "model.encoder_layers=1",
    "model.decoder_layers=1",
    "model.encoder_attention_heads=2",
    "model.decoder_attention_heads=2",
    "model.encoder_ffn_dim=64",
    "model.decoder_ffn_dim=64",
    "model.max_position_embeddings=128",
    "training.phases=[{max_steps: 6, seq_len: 64, global_batch_size: 8}]",
    "evaluation.seq_len=64",
    # Two copy warm-up steps: resume (interrupted after 4) and two processes cross the switch to denoising.
    "objective.copy_warmup_steps=2",
    "objective.copy_warmup_length=16",
]
MICRO_T5 = _TRAIN + [
    "tokenizer.vocab_size=800",
    "model.d_model=32",
    "model.d_kv=16",
    "model.d_ff=64",
    "model.num_layers=1",
    "model.num_decoder_layers=1",
    "model.num_heads=2",
    "training.phases=[{max_steps: 6, seq_len: 64, global_batch_size: 8}]",
    "evaluation.seq_len=64",
]
MICRO_B2B = _TRAIN + [
    "training.phases=[{max_steps: 6, seq_len: 32, global_batch_size: 8}]",
    "evaluation.seq_len=32",
]
MICROS = {"barto": MICRO_BART, "t5s": MICRO_T5}


@pytest.fixture(scope="session")
def micro_seq2seq(tmp_path_factory: pytest.TempPathFactory, small_corpus: Path) -> dict[str, Path]:
    """Micro BARTO and T5S run folders (no fine-tunes), made once: generation, resume and task tests read them."""
    from es_zoo.reproduce import reproduce

    root = tmp_path_factory.mktemp("micro-seq2seq")
    for name, overrides in MICROS.items():
        reproduce(name, output_dir=root / name, corpus=str(small_corpus), overrides=overrides)
    return {name: root / name for name in MICROS}


# A micro RoBERTa run (es_zoo.families.roberta) ending in one GLUES fine-tune, as `es-zoo reproduce roberta` does.
MICRO_ROBERTA = [o for o in MICRO if not o.startswith(("model.max_position_embeddings", "glues."))] + [
    "model.max_position_embeddings=514",
    "glues.runs=[{task: pos, hparams: {epochs: 2, batch_size: 16, learning_rate: 2.0e-3, max_length: 64, stride: 16}}]",
]


@pytest.fixture(scope="session")
def micro_roberta(tmp_path_factory: pytest.TempPathFactory, small_corpus: Path) -> Path:
    from es_zoo.reproduce import reproduce

    out = tmp_path_factory.mktemp("micro-roberta") / "run"
    reproduce("roberta", output_dir=out, corpus=str(small_corpus), overrides=MICRO_ROBERTA)
    return out


# Publishing (test_publish.py, test_publish_hub.py) shares these: made once per session.
# The tiny T5S recipe's two fine-tunes (translation, generative QA) with micro settings.
T5_RUNS = ("seq2seq.runs=[{task: translation, hparams: {epochs: 1, batch_size: 32, learning_rate: 1.0e-3, "
           "max_length: 1024, max_target_length: 1024, num_beams: 1, max_new_tokens: 6, eval_batch_size: 64}}, "
           "{task: generative_qa, hparams: {epochs: 1, batch_size: 16, learning_rate: 1.0e-3, max_length: 256, "
           "truncate_source: true, max_new_tokens: 6, eval_batch_size: 64}}]")
BETO_RUNS = "glues.runs=[{task: pos, hparams: {epochs: 1, batch_size: 16, learning_rate: 1.0e-3, max_length: 64, stride: 16}}]"


@pytest.fixture(scope="session")
def published_runs(tmp_path_factory: pytest.TempPathFactory, small_corpus: Path) -> dict[str, Path]:
    """Runs made by `es-zoo reproduce`, with a fine-tune each so their cards carry a model-index."""
    from es_zoo.reproduce import reproduce

    root = tmp_path_factory.mktemp("publish-runs")
    reproduce("t5s", output_dir=root / "t5s", corpus=str(small_corpus), overrides=MICRO_T5 + [T5_RUNS])
    reproduce("beto", output_dir=root / "beto", corpus=str(small_corpus),
              overrides=[o for o in MICRO_BETO if not o.startswith("glues.")] + [BETO_RUNS])
    return {"t5s": root / "t5s", "beto": root / "beto", "pos": root / "beto" / "glues" / "pos"}


@pytest.fixture(scope="session")
def suite_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A GLUES suite dataset built from three shipped fixtures (`es-zoo datasets build`)."""
    from es_zoo.hub_datasets import build_dataset

    out = tmp_path_factory.mktemp("datasets") / "glues"
    build_dataset("glues", out, source_names={"pos": "shipped", "parsing": "shipped", "pawsx": "shipped"},
                  echo=lambda s: None)
    return out


# ------------------------------------------------------------------------ the documented reproductions
# `es-zoo reproduce beto|barto|t5s` as the README runs them (tiny preset, embedded corpus) take minutes
# each. They start when the session begins, one thread each, below every test in CPU priority, so they use
# the cycles the rest of the suite leaves idle (much of it waits on subprocesses, servers and files) without
# slowing it down; their tests run last and wait for them. BETO's run (pretraining and four fine-tunes) is
# the longest, so it gets those cycles first (nice 19) and the two seq2seq runs get what is left (Linux's idle
# scheduling class): the two then share both cores at the end instead of BETO finishing alone on one.
# BARTO and T5S skip the fine-tunes that end their commands, to keep CI short: the same code runs with
# micro models in test_seq2seq_tasks.py, and the full commands are timed in docs/seq2seq-tasks.md.
DOCUMENTED = {
    "test_the_readme_main_command_learns_spanish": lambda item: ("beto", []),
    "test_the_default_tiny_recipe_learns_and_generates_spanish":
        lambda item: (item.callspec.params["name"], ["seq2seq.runs=[]"]),
}
FIRST = "beto"


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list) -> None:
    last = [item for item in items if getattr(item, "originalname", None) in DOCUMENTED]
    items[:] = [item for item in items if item not in last] + last


def documented_env() -> dict[str, str]:
    return dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", GRADIO_ANALYTICS_ENABLED="False",
                OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false", PYTHONPATH=str(REPO))


def _nice() -> None:
    os.nice(19)


def _idle() -> None:
    """Run only on cycles nothing else wants (Linux's idle scheduling class; elsewhere nice 19)."""
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    except (AttributeError, OSError):
        os.nice(19)


@pytest.fixture(scope="session", autouse=True)
def documented_runs(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """{recipe: (process, run folder, stdout file, stderr file)} for the documented runs the session selected,
    all started at low priority when the session's first test begins; a test waits for its own with
    :func:`finished`."""
    import subprocess
    import sys

    wanted = dict(DOCUMENTED[item.originalname](item) for item in request.session.items
                  if getattr(item, "originalname", None) in DOCUMENTED)
    runs = {}
    if wanted:
        root = tmp_path_factory.mktemp("documented-runs")
        for name, extra in sorted(wanted.items()):
            with open(root / f"{name}.out", "w") as stdout, open(root / f"{name}.err", "w") as stderr:
                proc = subprocess.Popen([sys.executable, "-m", "es_zoo", "reproduce", name, "--output-dir",
                                         str(root / name), *extra], env=documented_env(), stdout=stdout,
                                        stderr=stderr, stdin=subprocess.DEVNULL,
                                        preexec_fn=_nice if name == FIRST else _idle)
            runs[name] = (proc, root / name, root / f"{name}.out", root / f"{name}.err")
    yield runs
    for proc, *_ in runs.values():
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def finished(runs: dict, name: str, timeout: float = 2400):
    """Wait for the documented run ``name``; its CompletedProcess (stdout and stderr as text) and folder."""
    import subprocess

    proc, out, stdout, stderr = runs[name]
    code = proc.wait(timeout=timeout)
    return subprocess.CompletedProcess(proc.args, code, stdout.read_text(), stderr.read_text()), out
