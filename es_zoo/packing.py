"""Token streams, token shards and packed sequences for pretraining.

A tokenized split is a *stream*: documents one after another, each followed by a separator token, so
document boundaries are kept. On disk a stream is one or more *shards* (``NAME.bin`` raw little-endian
tokens in the smallest unsigned dtype the vocabulary allows, uint16 below 65,536 entries; a
``NAME.json`` sidecar written last; for BART-style objectives ``NAME.starts``, one bit per token, set
where a sentence of the text begins). :class:`TokenStream` is the virtual concatenation of a split's
shards, memory-mapped: nothing is read until a batch asks for its rows.

A phase of length ``L`` cuts the stream into blocks of ``L - 2`` tokens framed as ``[CLS] block [SEP]``
(:class:`PackedSequences`): every sequence is full, so no step computes on padding. Which sequences form
the global batch of step ``s`` is a pure function of ``(seed, phase, s)`` (:class:`EpochSampler`, a keyed
permutation computed on the fly, so it costs neither time nor memory however large the corpus):
resuming at step ``s`` replays exactly the data an uninterrupted run would have seen, and every process
can read just its own slices of the same global batch.

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
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from es_zoo.errors import CorpusError

SHARD_FORMAT = "es-zoo-tokens/1"


def token_dtype(vocab_size: int) -> np.dtype:
    """The smallest little-endian unsigned dtype that holds every id of a ``vocab_size`` vocabulary.

    Example:
        >>> token_dtype(31002), token_dtype(65536), token_dtype(250002)
        (dtype('uint16'), dtype('uint16'), dtype('uint32'))
    """
    if vocab_size < 1:
        raise ValueError(f"vocab_size must be >= 1, got {vocab_size}")
    return np.dtype("<u2") if vocab_size <= 1 << 16 else np.dtype("<u4")


# --------------------------------------------------------------------------------------------------
# Writing and reading shards
# --------------------------------------------------------------------------------------------------


def _fsync(fh: Any) -> None:
    fh.flush()
    os.fsync(fh.fileno())


class ShardWriter:
    """Writes one shard: tokens, optional sentence-start bits, a sidecar, and per-token counts.

    Everything goes to ``*.tmp`` files first; :meth:`close` syncs them, renames them into place and
    writes the sidecar (``PATH.json``) last, so a shard without its sidecar is incomplete and a crash
    at any moment never leaves a shard that looks finished. ``vocab_size`` (optional) also counts how
    often each id occurs (the unigram baseline of the evaluation reads these counts instead of the
    whole stream).

    Example:
        >>> import tempfile, numpy as np
        >>> path = Path(tempfile.mkdtemp()) / "t.bin"
        >>> w = ShardWriter(path, separator_id=5, dtype=np.uint16)
        >>> w.add(np.array([7, 8, 9])); w.add(np.array([10]))
        >>> w.close()["tokens"], read_token_file(path).tolist()
        (6, [7, 8, 9, 5, 10, 5])
    """

    def __init__(self, path: str | Path, separator_id: int, dtype: Any = np.uint32,
                 with_starts: bool = False, vocab_size: int | None = None) -> None:
        self.path = Path(path)
        self.dtype = np.dtype(dtype).newbyteorder("<")
        if self.dtype.kind != "u":
            raise ValueError(f"token shards hold unsigned ids, not {self.dtype}")
        self.separator = np.array([separator_id], dtype=self.dtype)
        self.with_starts = with_starts
        self.counts = np.zeros(vocab_size, dtype=np.int64) if vocab_size else None
        self.tokens = self.documents = 0
        self._tmp = self.path.with_name(self.path.name + ".tmp")
        self._fh = open(self._tmp, "wb")
        self._bits_tmp = Path(str(self.path) + ".starts.tmp")
        self._bits = open(self._bits_tmp, "wb") if with_starts else None
        self._pending = np.zeros(0, dtype=bool)  # start flags not yet packed into whole bytes
        self._limit = np.iinfo(self.dtype).max

    def add(self, ids: Sequence[int] | np.ndarray, starts: np.ndarray | None = None) -> None:
        """Append one document (its ids, then the separator). Empty documents are skipped."""
        ids = np.asarray(ids)
        if len(ids) == 0:
            return
        if ids.min() < 0 or ids.max() > self._limit:
            raise CorpusError(f"{self.path}: token id {int(ids.max())} does not fit {self.dtype.name}")
        if self.with_starts:
            if starts is None or len(starts) != len(ids):
                got = "none" if starts is None else len(starts)
                raise CorpusError(f"{self.path}: {got} sentence flags for {len(ids)} tokens")
            flags = np.concatenate([self._pending, np.asarray(starts, dtype=bool), [False]])
            whole = len(flags) // 8 * 8
            self._bits.write(np.packbits(flags[:whole], bitorder="little").tobytes())
            self._pending = flags[whole:]
        elif starts is not None:
            raise CorpusError(f"{self.path}: sentence flags given to a shard that does not store them")
        self._fh.write(ids.astype(self.dtype, copy=False).tobytes())
        self._fh.write(self.separator.tobytes())
        if self.counts is not None:
            self.counts += np.bincount(ids, minlength=len(self.counts))[: len(self.counts)]
            self.counts[int(self.separator[0])] += 1
        self.tokens += len(ids) + 1
        self.documents += 1

    def close(self, extra: dict | None = None) -> dict:
        """Finish the shard atomically; returns its sidecar."""
        _fsync(self._fh)
        self._fh.close()
        if self._bits is not None:
            if len(self._pending):
                self._bits.write(np.packbits(self._pending, bitorder="little").tobytes())
            _fsync(self._bits)
            self._bits.close()
            os.replace(self._bits_tmp, Path(str(self.path) + ".starts"))
        os.replace(self._tmp, self.path)
        if self.counts is not None:
            counts_tmp = Path(str(self.path) + ".counts.tmp.npy")
            np.save(counts_tmp, self.counts)
            os.replace(counts_tmp, Path(str(self.path) + ".counts.npy"))
        meta = {"format": SHARD_FORMAT, "tokens": self.tokens, "documents": self.documents,
                "dtype": self.dtype.name, "sentence_starts": self.with_starts,
                "unigram_counts": self.counts is not None, **(extra or {})}
        sidecar_tmp = Path(str(self.path) + ".json.tmp")
        sidecar_tmp.write_text(json.dumps(meta))
        os.replace(sidecar_tmp, Path(str(self.path) + ".json"))
        return meta

    def abort(self) -> None:
        """Close and remove the temporary files (nothing is left that looks like a shard)."""
        for fh in (self._fh, self._bits):
            if fh is not None and not fh.closed:
                fh.close()
        for p in (self._tmp, self._bits_tmp):
            p.unlink(missing_ok=True)


def write_token_file(documents: Iterable, path: str | Path, separator_id: int, dtype: Any = np.uint32,
                     vocab_size: int | None = None) -> int:
    """Write ``documents`` as one shard (see :class:`ShardWriter`); returns the token count.

    Documents may also be ``(ids, sentence_starts)`` pairs (what ``tokenize_documents(...,
    with_sentences=True)`` yields): the flags then go to ``PATH.starts``, read back by
    :func:`read_sentence_starts`.
    """
    writer: ShardWriter | None = None
    try:
        for item in documents:
            ids, starts = item if isinstance(item, tuple) else (item, None)
            if writer is None:
                writer = ShardWriter(path, separator_id, dtype, with_starts=starts is not None,
                                     vocab_size=vocab_size)
            writer.add(ids, starts)
        if writer is None:
            writer = ShardWriter(path, separator_id, dtype, vocab_size=vocab_size)
        return writer.close()["tokens"]
    except BaseException:
        if writer is not None:
            writer.abort()
        raise


def shard_problem(path: str | Path, expected: dict | None = None) -> str | None:
    """Why the shard at ``path`` cannot be used (missing, half-written, truncated), or None if it is whole.

    ``expected`` (what a manifest recorded: tokens, dtype) must then match too.
    """
    path = Path(path)
    meta_path = Path(str(path) + ".json")
    if not meta_path.is_file():
        return f"{path}: no sidecar {meta_path.name} (the shard was never finished)"
    try:
        meta = json.loads(meta_path.read_text())
        count, dtype = int(meta["tokens"]), np.dtype(meta.get("dtype", "int32"))
    except (ValueError, KeyError, TypeError) as exc:
        return f"{meta_path}: not an es-zoo shard sidecar ({exc})"
    if not path.is_file():
        return f"{path}: missing (its sidecar says {count:,} tokens)"
    size = path.stat().st_size
    if size != count * dtype.itemsize:
        return (f"{path}: {size:,} bytes, expected {count * dtype.itemsize:,} ({count:,} {dtype.name} tokens): "
                "the file is truncated or was changed")
    if meta.get("sentence_starts"):
        bits = Path(str(path) + ".starts")
        want = (count + 7) // 8
        if not bits.is_file() or bits.stat().st_size != want:
            return f"{bits}: missing or not {want:,} bytes (one bit per token)"
    if expected is not None:
        for key in ("tokens", "dtype", "documents"):
            if key in expected and expected[key] != meta.get(key):
                return f"{meta_path}: {key} is {meta.get(key)!r}, the manifest recorded {expected[key]!r}"
    return None


def _sidecar(path: Path) -> dict | None:
    if shard_problem(path) is not None:
        return None
    meta = json.loads(Path(str(path) + ".json").read_text())
    meta.setdefault("dtype", "int32")  # shards of es-zoo 0.1 (before uint16 shards) were int32
    return meta


def read_token_file(path: str | Path) -> np.ndarray | None:
    """The tokens of one shard (memory-mapped, in its stored dtype), or None if it is incomplete."""
    path = Path(path)
    meta = _sidecar(path)
    if meta is None:
        return None
    dtype = np.dtype(meta["dtype"])
    if meta["tokens"] == 0:
        return np.zeros(0, dtype=dtype)
    return np.memmap(path, dtype=dtype, mode="r", shape=(meta["tokens"],))


def read_sentence_starts(path: str | Path) -> "BitArray | None":
    """The sentence-start flags stored beside a shard (one bit per token), or None."""
    meta = _sidecar(Path(path))
    if meta is None or not meta.get("sentence_starts"):
        return None
    return BitArray(Path(str(path) + ".starts"), meta["tokens"])


class BitArray:
    """A memory-mapped packed bit array (``np.packbits(..., bitorder="little")``), read as bools.

    Supports ``len``, slices and :meth:`take_blocks` (what :class:`PackedSequences` needs).
    """

    def __init__(self, path: str | Path, length: int) -> None:
        self.length = length
        size = (length + 7) // 8
        self.bytes = np.memmap(path, dtype=np.uint8, mode="r", shape=(size,)) if size else np.zeros(0, np.uint8)
        self.dtype = np.dtype(bool)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, key: slice) -> np.ndarray:
        if not isinstance(key, slice):
            raise TypeError("BitArray supports slices and take_blocks only")
        start, stop, step = key.indices(self.length)
        if step != 1:
            raise TypeError("BitArray slices must be contiguous")
        if stop <= start:
            return np.zeros(0, dtype=bool)
        raw = np.unpackbits(np.asarray(self.bytes[start // 8 : (stop + 7) // 8]), bitorder="little")
        return raw[start % 8 : start % 8 + stop - start].astype(bool)

    def take_blocks(self, starts: np.ndarray, width: int) -> np.ndarray:
        """``(len(starts), width)`` bools: the flags from each start on."""
        starts = np.asarray(starts, dtype=np.int64)
        nbytes = (width + 7) // 8 + 1
        padded = np.concatenate([np.asarray(self.bytes), np.zeros(nbytes, dtype=np.uint8)])
        rows = np.lib.stride_tricks.sliding_window_view(padded, nbytes)[starts // 8]
        bits = np.unpackbits(rows, axis=1, bitorder="little")
        cols = (starts % 8)[:, None] + np.arange(width)[None, :]
        return np.take_along_axis(bits, cols, axis=1).astype(bool)


class TokenStream:
    """The concatenation of several arrays (token shards, or their bit flags), read lazily.

    Behaves like a 1-D array for what the pipeline needs: ``len``, ``dtype``, contiguous slices and
    :meth:`take_blocks`; blocks that straddle two shards are joined. ``np.asarray(stream)`` reads
    everything (only for small streams and tests).

    Example:
        >>> s = TokenStream([np.arange(5), np.arange(10, 13)])
        >>> len(s), s[3:7].tolist(), s.take_blocks(np.array([0, 4]), 3).tolist()
        (8, [3, 4, 10, 11], [[0, 1, 2], [4, 10, 11]])
    """

    def __init__(self, parts: list[Any]) -> None:
        self.parts = [p for p in parts if len(p)] or list(parts[:1])
        lengths = np.array([len(p) for p in self.parts], dtype=np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(lengths)])
        self.dtype = self.parts[0].dtype if self.parts else np.dtype(np.uint32)

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = self[0 : len(self)]
        return out.astype(dtype) if dtype is not None else out

    def __getitem__(self, key: slice) -> np.ndarray:
        if not isinstance(key, slice):
            raise TypeError("TokenStream supports slices and take_blocks only")
        start, stop, step = key.indices(len(self))
        if step != 1:
            raise TypeError("TokenStream slices must be contiguous")
        pieces = []
        k = max(0, int(np.searchsorted(self.offsets, start, side="right")) - 1)
        while start < stop:
            lo = start - self.offsets[k]
            take = min(stop, self.offsets[k + 1]) - start
            pieces.append(np.asarray(self.parts[k][lo : lo + take]))
            start += take
            k += 1
        if not pieces:
            return np.zeros(0, dtype=self.dtype)
        return pieces[0] if len(pieces) == 1 else np.concatenate(pieces)

    def take_blocks(self, starts: np.ndarray, width: int) -> np.ndarray:
        """``(len(starts), width)``: the ``width`` entries from each start (starts + width <= len)."""
        starts = np.asarray(starts, dtype=np.int64)
        out = np.empty((len(starts), width), dtype=self.dtype)
        if len(starts) == 0:
            return out
        shard = np.searchsorted(self.offsets, starts, side="right") - 1
        inside = starts + width <= self.offsets[shard + 1]
        for k in np.unique(shard[inside]):
            rows = np.flatnonzero(inside & (shard == k))
            out[rows] = take_blocks(self.parts[k], starts[rows] - self.offsets[k], width)
        for row in np.flatnonzero(~inside):  # the rare block that straddles a shard boundary
            out[row] = self[int(starts[row]) : int(starts[row]) + width]
        return out


def take_blocks(array: Any, starts: np.ndarray, width: int) -> np.ndarray:
    """``(len(starts), width)`` rows ``array[s : s + width]``, for an ndarray, memmap, :class:`TokenStream`
    or :class:`BitArray`."""
    if hasattr(array, "take_blocks"):
        return array.take_blocks(starts, width)
    array = np.asarray(array) if not isinstance(array, np.ndarray) else array
    if len(starts) == 0:
        return np.empty((0, width), dtype=array.dtype)
    return np.lib.stride_tricks.sliding_window_view(array, width)[np.asarray(starts, dtype=np.int64)]


def open_stream(paths: list[str | Path]) -> tuple[TokenStream, TokenStream | None]:
    """The tokens (and sentence-start flags, if every shard has them) of shards in this order.

    Raises CorpusError naming the first shard that is missing or incomplete.
    """
    tokens, flags = [], []
    for path in paths:
        problem = shard_problem(path)
        if problem is not None:
            raise CorpusError(problem)
        tokens.append(read_token_file(path))
        flags.append(read_sentence_starts(path))
    have = [f is not None for f in flags]
    if any(have) and not all(have):
        raise CorpusError(f"sentence flags are stored for some shards only ({sum(have)} of {len(have)})")
    return TokenStream(tokens), (TokenStream(flags) if all(have) and flags else None)


# --------------------------------------------------------------------------------------------------
# Packed sequences and the sampler
# --------------------------------------------------------------------------------------------------


class PackedSequences:
    """Fixed-length sequences cut from a token stream (no padding).

    With ``cls_id``/``sep_id`` every sequence is framed (BERT ``[CLS] ... [SEP]``, BART ``<s> ... </s>``)
    around ``seq_len - 2`` stream tokens; with both None (T5's raw spans) it is ``seq_len`` stream tokens.
    ``stream`` is an ndarray, a memmap or a :class:`TokenStream`; only the rows asked for are read.
    """

    def __init__(self, stream: Any, seq_len: int, cls_id: int | None, sep_id: int | None) -> None:
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
        out = self.aligned(self.stream, indices, 0).astype(np.int64)
        if self.framed:
            out[:, 0] = self.cls_id
            out[:, -1] = self.sep_id
        return out

    def aligned(self, array: Any, indices: np.ndarray, fill: int | bool) -> np.ndarray:
        """The entries of ``array`` (aligned with the stream, e.g. sentence-start flags) at the
        positions of the sequences at ``indices``; frame positions get ``fill``."""
        indices = np.asarray(indices, dtype=np.int64)
        body = take_blocks(array, indices * self.body, self.body)
        if not self.framed:
            return body
        out = np.full((len(indices), self.seq_len), fill, dtype=body.dtype)
        out[:, 1:-1] = body
        return out


_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def _mix(x: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser: a bijective scramble of uint64 values (the Feistel round function)."""
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def keyed_permutation(positions: np.ndarray, n: int, key: Sequence[int]) -> np.ndarray:
    """``perm[positions]`` of a pseudo-random permutation of ``range(n)`` chosen by ``key``, without
    materialising the permutation: a 4-round Feistel network over the smallest power of four that holds
    ``n``, cycle-walked back into ``range(n)`` (Black & Rogaway's construction). Any ``positions`` can
    be asked for in any order: O(len(positions)) time and memory, whatever ``n``.

    Example:
        >>> p = keyed_permutation(np.arange(10), 10, key=[1, 2, 3])
        >>> sorted(p.tolist()) == list(range(10))
        True
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    half = max(1, (int(n - 1).bit_length() + 1) // 2)
    mask = np.uint64((1 << half) - 1)
    keys = np.random.default_rng(list(key)).integers(0, 1 << 63, size=4, dtype=np.uint64) | np.uint64(1)
    shift = np.uint64(half)

    def rounds(v: np.ndarray) -> np.ndarray:
        left, right = v >> shift, v & mask
        for k in keys:
            left, right = right, left ^ (_mix(right ^ k) & mask)
        return (left << shift) | right

    out = rounds(np.asarray(positions, dtype=np.uint64))
    outside = out >= np.uint64(n)
    while outside.any():  # cycle walking: at most a few rounds, the domain is < 4n
        out[outside] = rounds(out[outside])
        outside = out >= np.uint64(n)
    return out.astype(np.int64)


class EpochSampler:
    """Global batches drawn without replacement, epoch after epoch, keyed by ``(seed, phase, epoch)``.

    Each epoch is a fresh pseudo-random permutation of the sequences (:func:`keyed_permutation`), so the
    global batch of any step is computed directly from the step number, in microseconds and without
    memory that grows with the corpus.
    """

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

    def batch(self, step: int) -> np.ndarray:
        """Sequence indices of the global batch at ``step`` (0-based within the phase)."""
        pos = step * self.g + np.arange(self.g, dtype=np.int64)
        epochs, within = np.divmod(pos, self.n)
        out = np.empty(self.g, dtype=np.int64)
        for e in np.unique(epochs):
            sel = epochs == e
            out[sel] = keyed_permutation(within[sel], self.n, (self.seed, self.phase, int(e), 0x5EED))
        return out

    def epoch_of(self, step: int) -> float:
        return step * self.g / self.n
