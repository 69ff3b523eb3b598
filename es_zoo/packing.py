"""Token streams and packed sequences for pretraining.

The corpus is tokenized once into a flat ``int32`` file (``tokens.bin``): documents one after another,
each followed by a separator token, so document boundaries are kept. A phase of length ``L`` cuts that
stream into blocks of ``L - 2`` tokens framed as ``[CLS] block [SEP]``: every sequence is full, so no
step computes on padding. Which sequences form the global batch of step ``s`` is a pure function of
``(seed, phase, s)``: resuming at step ``s`` replays exactly the data an uninterrupted run would have
seen, and every process can take its own slice of the same global batch.

Example:
    >>> import numpy as np
    >>> stream = np.arange(10, 30, dtype=np.int32)
    >>> packed = PackedSequences(stream, seq_len=8, cls_id=4, sep_id=5)
    >>> packed[np.array([0])].tolist()
    [[4, 10, 11, 12, 13, 14, 15, 5]]
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from es_zoo.errors import CorpusError


def write_token_file(documents: Iterable[np.ndarray], path: str | Path, separator_id: int) -> int:
    """Append every document's ids and a separator to ``path`` (written atomically); returns the count.

    The file is raw little-endian int32 with a JSON sidecar (``path + '.json'``) holding the count and
    the number of documents, written last: a file without its sidecar is incomplete and rebuilt.
    """
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    count = docs = 0
    sep = np.array([separator_id], dtype="<i4")
    with open(tmp, "wb") as fh:
        for ids in documents:
            if len(ids) == 0:
                continue
            fh.write(np.asarray(ids, dtype="<i4").tobytes())
            fh.write(sep.tobytes())
            count += len(ids) + 1
            docs += 1
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    Path(str(path) + ".json").write_text(json.dumps({"tokens": count, "documents": docs}))
    return count


def read_token_file(path: str | Path) -> np.ndarray | None:
    """The token stream written by :func:`write_token_file` (memory-mapped), or None if incomplete."""
    path = Path(path)
    meta = Path(str(path) + ".json")
    if not path.is_file() or not meta.is_file():
        return None
    count = json.loads(meta.read_text())["tokens"]
    if path.stat().st_size != 4 * count:
        return None
    if count == 0:
        return np.zeros(0, dtype=np.int32)
    return np.memmap(path, dtype="<i4", mode="r", shape=(count,))


class PackedSequences:
    """Fixed-length ``[CLS] ... [SEP]`` sequences cut from a token stream (no padding)."""

    def __init__(self, stream: np.ndarray, seq_len: int, cls_id: int, sep_id: int) -> None:
        self.stream = stream
        self.seq_len = seq_len
        self.body = seq_len - 2
        self.cls_id = cls_id
        self.sep_id = sep_id
        self.num_sequences = len(stream) // self.body

    def __len__(self) -> int:
        return self.num_sequences

    def __getitem__(self, indices: np.ndarray) -> np.ndarray:
        """The sequences at ``indices`` as a ``(len(indices), seq_len)`` int64 array."""
        indices = np.asarray(indices, dtype=np.int64)
        out = np.empty((len(indices), self.seq_len), dtype=np.int64)
        out[:, 0] = self.cls_id
        out[:, -1] = self.sep_id
        offsets = indices[:, None] * self.body + np.arange(self.body)[None, :]
        out[:, 1:-1] = self.stream[offsets]
        return out


class EpochSampler:
    """Global batches drawn without replacement, epoch after epoch, keyed by ``(seed, phase, epoch)``."""

    def __init__(self, num_sequences: int, global_batch_size: int, seed: int, phase: int) -> None:
        if num_sequences < global_batch_size:
            raise CorpusError(
                f"the corpus gives {num_sequences} training sequences at this length, fewer than one "
                f"global batch of {global_batch_size}: use a larger corpus or a smaller "
                "training.phases[*].global_batch_size"
            )
        self.n = num_sequences
        self.g = global_batch_size
        self.seed = seed
        self.phase = phase
        self._perms: dict[int, np.ndarray] = {}

    def _perm(self, epoch: int) -> np.ndarray:
        if epoch not in self._perms:
            if len(self._perms) > 2:
                self._perms.pop(min(self._perms))
            rng = np.random.default_rng([self.seed, self.phase, epoch, 0x5EED])
            self._perms[epoch] = rng.permutation(self.n)
        return self._perms[epoch]

    def batch(self, step: int) -> np.ndarray:
        """Sequence indices of the global batch at ``step`` (0-based within the phase)."""
        pos = step * self.g + np.arange(self.g, dtype=np.int64)
        epochs, within = np.divmod(pos, self.n)
        out = np.empty(self.g, dtype=np.int64)
        for e in np.unique(epochs):
            sel = epochs == e
            out[sel] = self._perm(int(e))[within[sel]]
        return out

    def epoch_of(self, step: int) -> float:
        return step * self.g / self.n
