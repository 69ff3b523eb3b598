"""Packed sequences, the deterministic sampler, and checkpoints that survive a crash."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from es_zoo import checkpoints
from es_zoo.errors import CorpusError
from es_zoo.packing import EpochSampler, PackedSequences, read_token_file, write_token_file

REPO = Path(__file__).resolve().parents[1]


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


def test_sampler_is_a_uniform_permutation_at_any_size() -> None:
    from scipy import stats

    from es_zoo.packing import keyed_permutation

    for n in (1, 2, 3, 7, 64, 1000, 4097, 100_003):
        p = keyed_permutation(np.arange(n), n, key=[5, 0, 0])
        assert np.array_equal(np.sort(p), np.arange(n)), n
    # Where index 0 lands over 2,000 keys: uniform over 16 positions (chi-square, fixed keys).
    landed = np.array([keyed_permutation(np.array([0]), 16, key=[k])[0] for k in range(2000)])
    assert stats.chisquare(np.bincount(landed, minlength=16)).pvalue > 0.001
    # Neighbouring positions are not kept together: the correlation of position and value is ~0.
    n = 50_000
    p = keyed_permutation(np.arange(n), n, key=[1])
    assert abs(np.corrcoef(np.arange(n), p)[0, 1]) < 0.02
    # Random access in any order equals the whole permutation, and memory does not grow with n.
    huge = 3_000_000_000
    picks = keyed_permutation(np.array([5, 2_999_999_999, 17]), huge, key=[2])
    assert ((picks >= 0) & (picks < huge)).all() and len(set(picks.tolist())) == 3


def test_token_shards_use_the_smallest_dtype_and_keep_sentence_bits(tmp_path: Path) -> None:
    from es_zoo.packing import ShardWriter, TokenStream, open_stream, shard_problem, token_dtype

    assert token_dtype(65536) == np.uint16 and token_dtype(65537) == np.uint32
    rng = np.random.default_rng(0)
    docs = [rng.integers(6, 30000, size=n) for n in (5, 0, 17, 1, 40)]
    flags = [rng.random(len(d)) < 0.3 for d in docs]
    paths = []
    for k, (part_docs, part_flags) in enumerate(((docs[:3], flags[:3]), (docs[3:], flags[3:]))):
        w = ShardWriter(tmp_path / f"{k:05d}.bin", separator_id=2, dtype=token_dtype(32000), with_starts=True,
                        vocab_size=32000)
        for d, f in zip(part_docs, part_flags):
            w.add(d, f)
        meta = w.close()
        assert meta["dtype"] == "uint16"
        paths.append(tmp_path / f"{k:05d}.bin")
    tokens, starts = open_stream(paths)
    want = np.concatenate([np.append(d, 2) for d in docs if len(d)])
    want_flags = np.concatenate([np.append(f, False) for d, f in zip(docs, flags) if len(d)])
    assert np.array_equal(np.asarray(tokens), want) and np.array_equal(np.asarray(starts), want_flags)
    assert (tmp_path / "00000.bin").stat().st_size == 2 * (5 + 1 + 17 + 1)
    # Blocks anywhere, also across the shard boundary, equal slices of the whole stream.
    begin = np.arange(0, len(want) - 9)
    assert np.array_equal(tokens.take_blocks(begin, 9), np.stack([want[b:b + 9] for b in begin]))
    assert np.array_equal(starts.take_blocks(begin, 9), np.stack([want_flags[b:b + 9] for b in begin]))
    packed = PackedSequences(tokens, seq_len=8, cls_id=4, sep_id=5)
    assert packed[np.array([3])][0, 1:-1].tolist() == want[18:24].tolist()
    # A truncated shard is named with what was expected, never read as a shorter stream.
    with open(paths[1], "r+b") as fh:
        fh.truncate(10)
    assert "truncated" in shard_problem(paths[1])
    with pytest.raises(CorpusError, match="00001.bin: 10 bytes, expected"):
        open_stream(paths)
    assert len(TokenStream([np.arange(3), np.zeros(0, np.int64), np.arange(2)])) == 5


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


@pytest.mark.parametrize("damage", ["truncate", "flip", "delete", "state"])
def test_a_damaged_newest_checkpoint_falls_back_to_the_one_before(tmp_path: Path, damage: str) -> None:
    import torch

    acc, model = _accelerator_and_model()
    root = tmp_path / "checkpoints"
    for step in (1, 2):
        with torch.no_grad():
            model.weight.fill_(float(step))
        checkpoints.save_checkpoint(acc, root, {"step": step, "tokens_seen": 0, "elapsed": 0.0}, keep=2)
    newest = root / "step-00000002"
    record = json.loads((newest / "COMPLETE").read_text())["files"]
    assert {"model.safetensors", "optimizer.bin", "trainer_state.json"} <= set(record)
    weights = newest / "model.safetensors"
    if damage == "truncate":
        weights.write_bytes(weights.read_bytes()[:-7])
    elif damage == "flip":  # same size, one byte changed: only the checksum sees it
        data = bytearray(weights.read_bytes())
        data[-1] ^= 0xFF
        weights.write_bytes(bytes(data))
    elif damage == "delete":
        (newest / "optimizer.bin").unlink()
    else:
        (newest / "trainer_state.json").write_text("{}")
    assert checkpoints.verify(newest) is not None and checkpoints.verify(root / "step-00000001") is None
    said: list[str] = []
    with torch.no_grad():
        model.weight.fill_(99.0)
    path, state = checkpoints.load_latest_good(acc, root, said.append)
    assert path.name == "step-00000001" and state["step"] == 1 and float(model.weight[0, 0].detach()) == 1.0
    assert len(said) == 1 and "step-00000002 is damaged" in said[0] and "damaged-step-00000002" in said[0]
    assert (root / "damaged-step-00000002").is_dir() and not newest.exists()
    # and with no good checkpoint left, resuming stops with what was wrong with each
    (root / "step-00000001" / "model.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(Exception, match=r"no checkpoint .* can be resumed \(step-00000001: model.safetensors"):
        checkpoints.load_latest_good(acc, root, said.append)


_FULL_DISK = r'''
import json, sys, torch
from accelerate import Accelerator
from es_zoo import checkpoints
from es_zoo.errors import TrainingError
acc = Accelerator(cpu=True)
model, opt = acc.prepare(torch.nn.Linear(4, 4), torch.optim.AdamW(torch.nn.Linear(4, 4).parameters()))
root = sys.argv[1]
checkpoints.save_checkpoint(acc, root, {"step": 1, "tokens_seen": 0, "elapsed": 0.0}, keep=2)
big = torch.nn.Linear(1024, 1024)  # 4 MB of weights: past the file size limit
model2, opt2 = acc.prepare(big, torch.optim.AdamW(big.parameters()))
try:
    checkpoints.save_checkpoint(acc, root, {"step": 2, "tokens_seen": 0, "elapsed": 0.0}, keep=2)
except TrainingError as exc:
    print("ERROR", exc)
'''


def test_a_full_disk_during_a_save_is_one_line_and_keeps_the_last_good_checkpoint(tmp_path: Path) -> None:
    """RLIMIT_FSIZE stands in for a full disk (writes past it fail with EFBIG, SIGXFSZ ignored)."""
    import resource
    import signal
    import subprocess
    import sys

    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))

    root = tmp_path / "checkpoints"
    done = subprocess.run([sys.executable, "-c", _FULL_DISK, str(root)], capture_output=True, text=True,
                          timeout=300, preexec_fn=limit, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert "Traceback" not in done.stderr, done.stderr[-2000:]
    line = [x for x in done.stdout.splitlines() if x.startswith("ERROR")]
    assert len(line) == 1, done.stdout + done.stderr[-2000:]
    assert "could not write checkpoint step-00000002" in line[0] and "file size limit" in line[0]
    assert "the last good checkpoint is" in line[0] and "step-00000001" in line[0] and "--resume" in line[0]
    assert [p.name for p in root.iterdir()] == ["step-00000001"]  # the partial folder is gone
    assert checkpoints.verify(root / "step-00000001") is None
