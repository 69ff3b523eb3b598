"""load_model / load_tokenizer: local folders, run folders, catalogue names, and a Hub that fails fast."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

import es_zoo
from es_zoo.errors import EsZooError, HubUnreachableError


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from transformers import BertConfig, BertForMaskedLM

    from es_zoo.tokenization import wordpiece_from_vocab
    from tests.conftest import SHARED_DATA

    d = tmp_path_factory.mktemp("model")
    vocab = SHARED_DATA / "beto" / "cased_2M" / "vocab.txt"
    if not vocab.is_file():
        pytest.skip("../shared/data/beto is not beside the checkout")
    tok = wordpiece_from_vocab(vocab, lowercase=False)
    cfg = BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                     intermediate_size=64, pad_token_id=1)
    BertForMaskedLM(cfg).save_pretrained(d)
    tok.save_pretrained(d)
    return d


def test_loads_a_local_folder_for_each_task(tiny_model_dir: Path) -> None:
    m = es_zoo.load_model(tiny_model_dir, task="fill-mask")
    assert type(m).__name__ == "BertForMaskedLM"
    m = es_zoo.load_model(str(tiny_model_dir), task="ner", num_labels=5)
    assert type(m).__name__ == "BertForTokenClassification" and m.config.num_labels == 5
    tok = es_zoo.load_tokenizer(tiny_model_dir)
    assert tok.mask_token_id == 0 and tok.pad_token_id == 1


def test_a_run_folder_resolves_to_its_model(tiny_model_dir: Path, tmp_path: Path) -> None:
    import shutil

    shutil.copytree(tiny_model_dir, tmp_path / "model")
    m = es_zoo.load_model(tmp_path, task="fill-mask")
    assert m.config.hidden_size == 32


def test_pickle_weights_are_refused(tiny_model_dir: Path, tmp_path: Path) -> None:
    import torch
    from safetensors.torch import load_file

    (tmp_path / "config.json").write_text((tiny_model_dir / "config.json").read_text())
    torch.save(load_file(tiny_model_dir / "model.safetensors"), tmp_path / "pytorch_model.bin")
    with pytest.raises(EsZooError):
        es_zoo.load_model(tmp_path, task="fill-mask")


def test_unknown_task_and_bad_names() -> None:
    with pytest.raises(EsZooError, match="unknown task"):
        es_zoo.load_model("beto-base-cased", task="poetry")
    with pytest.raises(EsZooError, match="no such folder"):
        es_zoo.load_model("./does/not/exist")
    with pytest.raises(EsZooError, match="warm-started"):
        es_zoo.load_model("beto2beto-base")


def test_offline_hub_fails_fast_with_local_path_advice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    t0 = time.monotonic()
    with pytest.raises(HubUnreachableError) as err:
        es_zoo.load_model("beto-base-cased", task="fill-mask")
    assert time.monotonic() - t0 < 10
    msg = str(err.value)
    assert "dccuchile/bert-base-spanish-wwm-cased" in msg and "local" in msg and "hf download" in msg


def test_unreachable_endpoint_fails_fast(tmp_path: Path) -> None:
    """Without offline mode, a Hub that refuses connections fails within seconds too."""
    import subprocess
    import sys

    code = (
        "import time, es_zoo\n"
        "from es_zoo.errors import HubUnreachableError\n"
        "t = time.monotonic()\n"
        "try:\n"
        "    es_zoo.load_tokenizer('dccuchile/bert-base-spanish-wwm-uncased')\n"
        "except HubUnreachableError as e:\n"
        "    print('OK', round(time.monotonic() - t, 1), e)\n"
    )
    env = {"PATH": "/usr/bin:/bin", "HF_ENDPOINT": "http://127.0.0.1:9", "HF_HOME": str(tmp_path),
           "HF_HUB_DISABLE_XET": "1", "HF_HUB_ETAG_TIMEOUT": "5", "HF_HUB_DOWNLOAD_TIMEOUT": "5"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert out.stdout.startswith("OK"), out.stdout + out.stderr
    assert float(out.stdout.split()[1]) < 15
