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


@pytest.fixture(scope="session")
def micro_beto(tmp_path_factory: pytest.TempPathFactory, small_corpus: Path) -> Path:
    """A micro BETO run folder (seconds to make) to fine-tune on the GLUES fixtures."""
    from es_zoo.reproduce import reproduce

    out = tmp_path_factory.mktemp("micro-beto") / "run"
    reproduce("beto", output_dir=out, corpus=str(small_corpus), overrides=MICRO + ["model.max_position_embeddings=512"])
    return out


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
T5_RUNS = ("seq2seq.runs=[{task: translation, hparams: {epochs: 1, batch_size: 32, learning_rate: 1.0e-3, "
           "max_length: 1024, max_target_length: 1024, num_beams: 1, max_new_tokens: 6, eval_batch_size: 64}}]")
BETO_RUNS = "glues.runs=[{task: pos, hparams: {epochs: 1, batch_size: 16, learning_rate: 1.0e-3, max_length: 64, stride: 16}}]"


@pytest.fixture(scope="session")
def published_runs(tmp_path_factory: pytest.TempPathFactory, small_corpus: Path) -> dict[str, Path]:
    """Runs made by `es-zoo reproduce`, with a fine-tune each so their cards carry a model-index."""
    from es_zoo.reproduce import reproduce
    from tests.test_seq2seq_pretraining import MICRO_T5

    root = tmp_path_factory.mktemp("publish-runs")
    reproduce("t5s", output_dir=root / "t5s", corpus=str(small_corpus), overrides=MICRO_T5 + [T5_RUNS])
    reproduce("beto", output_dir=root / "beto", corpus=str(small_corpus),
              overrides=[o for o in MICRO if not o.startswith("glues.")] + ["model.max_position_embeddings=512", BETO_RUNS])
    return {"t5s": root / "t5s", "beto": root / "beto", "pos": root / "beto" / "glues" / "pos"}


@pytest.fixture(scope="session")
def suite_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A GLUES suite dataset built from three shipped fixtures (`es-zoo datasets build`)."""
    from es_zoo.hub_datasets import build_dataset

    out = tmp_path_factory.mktemp("datasets") / "glues"
    build_dataset("glues", out, source_names={"pos": "shipped", "parsing": "shipped", "pawsx": "shipped"},
                  echo=lambda s: None)
    return out
