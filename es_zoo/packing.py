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


def write_token_file(documents: Iterable, path: str | Path, separator_id: int) -> int:
    """Append every document's ids and a separator to ``path`` (written atomically); returns the count.

    The file is raw little-endian int32 with a JSON sidecar (``path + '.json'``) holding the count and
    the number of documents, written last: a file without its sidecar is incomplete and rebuilt.
    Documents may also be ``(ids, sentence_starts)`` pairs (what ``tokenize_documents(...,
    with_sentences=True)`` yields): the flags then go to ``path + '.starts'`` (one byte per token, 1
    where a sentence begins, 0 on separators), read back by :func:`read_sentence_starts`.
    """
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    flags_path = Path(str(path) + ".starts")
    flags_tmp = flags_path.with_name(flags_path.name + ".tmp")
    count = docs = 0
    sep = np.array([separator_id], dtype="<i4")
    zero = np.zeros(1, dtype=np.uint8)
    flags_fh = None
    with open(tmp, "wb") as fh:
        for item in documents:
            ids, starts = item if isinstance(item, tuple) else (item, None)
            if len(ids) == 0:
                continue
            if starts is not None:
                if len(starts) != len(ids):
                    raise CorpusError(f"{path}: {len(starts)} sentence flags for {len(ids)} tokens")
                if flags_fh is None:
                    if count:
                        raise CorpusError(f"{path}: sentence flags for some documents only")
                    flags_fh = open(flags_tmp, "wb")
                flags_fh.write(np.asarray(starts, dtype=np.uint8).tobytes())
                flags_fh.write(zero.tobytes())
            elif flags_fh is not None:
                raise CorpusError(f"{path}: sentence flags for some documents only")
            fh.write(np.asarray(ids, dtype="<i4").tobytes())
            fh.write(sep.tobytes())
            count += len(ids) + 1
            docs += 1
        fh.flush()
        os.fsync(fh.fileno())
    if flags_fh is not None:
        flags_fh.flush()
        os.fsync(flags_fh.fileno())
        flags_fh.close()
        os.replace(flags_tmp, flags_path)
    os.replace(tmp, path)
    meta = {"tokens": count, "documents": docs, "sentence_starts": flags_fh is not None}
    Path(str(path) + ".json").write_text(json.dumps(meta))
    return count


def read_token_file(path: str | Path) -> np.ndarray | None:
    """The token stream written by :func:`write_token_file` (memory-mapped), or None if incomplete."""
    path = Path(path)
    meta = Path(str(path) + ".json")
    if not path.is_file() or not meta.is_file():
        return None
    info = json.loads(meta.read_text())
    count = info["tokens"]
    if path.stat().st_size != 4 * count:
        return None
    if info.get("sentence_starts"):
        flags = Path(str(path) + ".starts")
        if not flags.is_file() or flags.stat().st_size != count:
            return None
    if count == 0:
        return np.zeros(0, dtype=np.int32)
    return np.memmap(path, dtype="<i4", mode="r", shape=(count,))


def read_sentence_starts(path: str | Path) -> np.ndarray | None:
    """The sentence-start flags stored beside a token file (bool, memory-mapped), or None."""
    flags = Path(str(path) + ".starts")
    if read_token_file(path) is None or not flags.is_file():
        return None
    size = flags.stat().st_size
    if size == 0:
        return np.zeros(0, dtype=bool)
    return np.memmap(flags, dtype=np.bool_, mode="r", shape=(size,))


class PackedSequences:
    """Fixed-length sequences cut from a token stream (no padding).

    With ``cls_id``/``sep_id`` every sequence is framed (BERT ``[CLS] ... [SEP]``, BART ``<s> ... </s>``)
    around ``seq_len - 2`` stream tokens; with both None (T5's raw spans) it is ``seq_len`` stream tokens.
    """

    def __init__(self, stream: np.ndarray, seq_len: int, cls_id: int | None, sep_id: int | None) -> None:
        if (cls_id is None) != (sep_id is None):
            raise ValueError("cls_id and sep_id are both given or both None")
        self.stream = stream
        self.seq_len = seq_len
        self.framed = cls_id is not None
        self.body = seq_len - 2 if self.framed else seq_len
        self.cls_id = cls_id
        self.sep_id = sep_id
        self.num_sequences = len(stream) // self.body

    def __len__(self) -> int:
        return self.num_sequences

    def __getitem__(self, indices: np.ndarray) -> np.ndarray:
        """The sequences at ``indices`` as a ``(len(indices), seq_len)`` int64 array."""
        if not self.framed:
            return self.aligned(self.stream, indices, 0).astype(np.int64, copy=False)
        out = self.aligned(self.stream, indices, 0).astype(np.int64, copy=False)
        out[:, 0] = self.cls_id
        out[:, -1] = self.sep_id
        return out

    def aligned(self, array: np.ndarray, indices: np.ndarray, fill: int | bool) -> np.ndarray:
        """The entries of ``array`` (aligned with the stream, e.g. sentence-start flags) at the
        positions of the sequences at ``indices``; frame positions get ``fill``."""
        indices = np.asarray(indices, dtype=np.int64)
        offsets = indices[:, None] * self.body + np.arange(self.body)[None, :]
        if not self.framed:
            return np.asarray(array[offsets])
        out = np.full((len(indices), self.seq_len), fill, dtype=array.dtype)
        out[:, 1:-1] = array[offsets]
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
