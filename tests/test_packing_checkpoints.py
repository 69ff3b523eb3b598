"""Packed sequences, the deterministic sampler, and checkpoints that survive a crash."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from es_zoo import checkpoints
from es_zoo.errors import CorpusError
from es_zoo.packing import EpochSampler, PackedSequences, read_token_file, write_token_file


def test_token_file_round_trip_and_incomplete_detection(tmp_path: Path) -> None:
    docs = [np.array([7, 8, 9]), np.array([], dtype=np.int32), np.array([10, 11])]
    n = write_token_file(iter(docs), tmp_path / "t.bin", separator_id=5)
    assert n == 7
    assert read_token_file(tmp_path / "t.bin").tolist() == [7, 8, 9, 5, 10, 11, 5]
    (tmp_path / "t.bin.json").unlink()  # a crash before the sidecar: treated as absent, rebuilt
    assert read_token_file(tmp_path / "t.bin") is None


def test_packing_has_no_padding_and_keeps_order() -> None:
    stream = np.arange(100, 200, dtype=np.int32)
    packed = PackedSequences(stream, seq_len=12, cls_id=4, sep_id=5)
    assert len(packed) == 10  # 100 // (12 - 2)
    seqs = packed[np.array([0, 3])]
    assert seqs.shape == (2, 12)
    assert seqs[0].tolist() == [4] + list(range(100, 110)) + [5]
    assert seqs[1, 1:-1].tolist() == list(range(130, 140))


def test_sampler_is_deterministic_and_covers_each_epoch() -> None:
    s = EpochSampler(num_sequences=10, global_batch_size=4, seed=3, phase=0)
    again = EpochSampler(num_sequences=10, global_batch_size=4, seed=3, phase=0)
    first = np.concatenate([s.batch(i) for i in range(5)])  # 20 draws = 2 epochs
    assert np.array_equal(first, np.concatenate([again.batch(i) for i in range(5)]))
    assert sorted(first[:10]) == list(range(10)) and sorted(first[10:]) == list(range(10))
    assert not np.array_equal(first[:10], first[10:]), "each epoch is reshuffled"
    other = EpochSampler(10, 4, seed=4, phase=0)
    assert not np.array_equal(first[:4], other.batch(0))
    # Random access equals sequential access (what resume relies on).
    assert np.array_equal(EpochSampler(10, 4, 3, 0).batch(3), first[12:16])


def test_sampler_refuses_a_corpus_smaller_than_one_batch() -> None:
    with pytest.raises(CorpusError, match="fewer than one global batch"):
        EpochSampler(num_sequences=3, global_batch_size=8, seed=0, phase=0)


def _accelerator_and_model():
    import torch
    from accelerate import Accelerator

    acc = Accelerator(cpu=True)
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.AdamW(model.parameters())
    model, opt = acc.prepare(model, opt)
    return acc, model


def test_checkpoints_are_atomic_pruned_and_skip_incomplete(tmp_path: Path) -> None:
    import torch

    acc, model = _accelerator_and_model()
    root = tmp_path / "checkpoints"
    for step in (1, 2, 3):
        with torch.no_grad():
            model.weight.fill_(float(step))
        checkpoints.save_checkpoint(acc, root, {"step": step, "tokens_seen": 0, "elapsed": 0.0}, keep=2)
    done = checkpoints.complete_checkpoints(root)
    assert [p.name for p in done] == ["step-00000002", "step-00000003"]
    assert all((p / "model.safetensors").is_file() and (p / "COMPLETE").is_file() for p in done)
    assert not list(root.glob(".tmp-*"))
    # A crash while writing step 4 leaves a temporary folder; a folder without marker is incomplete too.
    (root / ".tmp-step-00000004").mkdir()
    (root / "step-00000005").mkdir()
    assert checkpoints.latest_checkpoint(root).name == "step-00000003"
    assert {p.name for p in checkpoints.incomplete_checkpoints(root)} == {".tmp-step-00000004", "step-00000005"}
    with torch.no_grad():
        model.weight.fill_(99.0)
    state = checkpoints.load_checkpoint(acc, checkpoints.latest_checkpoint(root))
    assert state["step"] == 3 and float(model.weight[0, 0].detach()) == 3.0
