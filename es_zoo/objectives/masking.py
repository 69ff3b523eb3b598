"""BERT's masked-LM objective with whole-word masking, vectorized over the batch.

This follows ``create_masked_lm_predictions`` in google-research/bert's
``create_pretraining_data.py`` (the version with ``--do_whole_word_mask``), which is how BETO was
pretrained:

* the units that can be masked are words: a WordPiece whose string starts with ``##`` belongs to
  the word before it; special tokens and padding are never units;
* the units are visited in a uniformly random order;
* ``num_to_predict = min(max_predictions, max(1, round(n_tokens * mlm_probability)))`` where
  ``n_tokens`` counts every non-padding token, ``[CLS]`` and ``[SEP]`` included;
* a unit that would push the count past ``num_to_predict`` is skipped and the visit goes on, so a
  later, shorter word can still fill the budget;
* each chosen token, independently: 80% ``[MASK]``, 10% a token drawn uniformly from the whole
  vocabulary, 10% left as it is.

Google's loop runs once per sequence in Python. Here the greedy visit is done for the whole batch
at once: units get random keys, are sorted by key per row, and the prefix whose cumulative length
fits the budget is exactly what the greedy accepts first; the few units the greedy accepts after
its first skip are found by "fill-up" rounds, each accepting, per row, the next unit (in visiting
order) that still fits. Every round lowers the remaining budget, which starts below the length of
the skipped unit, so there are at most a handful of rounds.

Masking is dynamic (RoBERTa-style) when the caller passes a fresh ``numpy.random.Generator`` state
for every batch, instead of Google's static masks duplicated ``dupe_factor`` times.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["MaskedBatch", "whole_word_mask"]

IGNORE_INDEX = -100


@dataclass
class MaskedBatch:
    """The output of :func:`whole_word_mask`, in Google BERT's sparse layout.

    Attributes:
        input_ids: ``(B, L)`` int64, a corrupted copy of the input.
        masked_positions: ``(B, P)`` int64, ascending positions of the tokens to predict, padded
            with 0 (``P`` is ``max_predictions``).
        masked_labels: ``(B, P)`` int64, the original ids at ``masked_positions``, ``-100`` where
            padded.

    Example:
        >>> import numpy as np
        >>> b = MaskedBatch(np.array([[2, 4, 3]]), np.array([[1, 0]]), np.array([[7, -100]]))
        >>> b.num_masked.tolist(), b.dense_labels().tolist()
        ([1], [[-100, 7, -100]])
    """

    input_ids: np.ndarray
    masked_positions: np.ndarray
    masked_labels: np.ndarray

    @property
    def num_masked(self) -> np.ndarray:
        """``(B,)`` number of tokens to predict in each row.

        Example:
            >>> MaskedBatch(np.zeros((1, 3)), np.zeros((1, 2)), np.array([[5, -100]])).num_masked
            array([1])
        """
        return np.count_nonzero(self.masked_labels != IGNORE_INDEX, axis=1)

    def dense_labels(self) -> np.ndarray:
        """``(B, L)`` labels in the layout transformers' MLM heads expect: -100 except where masked.

        Example:
            >>> b = MaskedBatch(np.zeros((1, 3)), np.array([[2, 0]]), np.array([[9, -100]]))
            >>> b.dense_labels().tolist()
            [[-100, -100, 9]]
        """
        labels = np.full(self.input_ids.shape, IGNORE_INDEX, dtype=np.int64)
        valid = self.masked_labels != IGNORE_INDEX
        rows = np.nonzero(valid)[0]
        labels[rows, self.masked_positions[valid]] = self.masked_labels[valid]
        return labels


def whole_word_mask(
    input_ids: np.ndarray,
    *,
    rng: np.random.Generator,
    is_special: np.ndarray,
    is_continuation: np.ndarray,
    mask_token_id: int,
    vocab_size: int,
    pad_token_id: int | None = None,
    mlm_probability: float = 0.15,
    max_predictions: int = 20,
    mask_replace_prob: float = 0.8,
    random_replace_prob: float = 0.1,
    whole_word: bool = True,
) -> MaskedBatch:
    """Choose and corrupt the tokens BERT learns to predict, for a whole batch at once.

    Args:
        input_ids: ``(B, L)`` integer token ids; left unchanged.
        rng: the source of randomness; pass a fresh state per batch for dynamic masking.
        is_special: ``(V,)`` bool, True for ids that are never masked (``[CLS]``, ``[SEP]``...).
        is_continuation: ``(V,)`` bool, True for ``##`` WordPieces, which join the previous word.
        mask_token_id: the ``[MASK]`` id.
        vocab_size: random replacements are drawn uniformly from ``range(vocab_size)``.
        pad_token_id: padding is never masked and does not count towards ``num_to_predict``.
        mlm_probability: the fraction of tokens to predict (Google's ``masked_lm_prob``).
        max_predictions: the cap on predictions per row (Google's ``max_predictions_per_seq``);
            also the width of ``masked_positions``.
        mask_replace_prob: chance that a chosen token becomes ``[MASK]``.
        random_replace_prob: chance that a chosen token becomes a random id; the rest is unchanged.
        whole_word: False masks WordPieces independently (Google's default flag).

    A ``##`` piece that follows a special token or padding starts a unit of its own (Google would
    attach it to the word before the ``[SEP]``); a BERT tokenizer never produces that, but a packed
    chunk that starts mid-word can.

    Example:
        >>> import numpy as np
        >>> vocab = ["[PAD]", "[CLS]", "[SEP]", "[MASK]", "casa", "##s", "de", "la", "sol"]
        >>> is_special = np.isin(np.arange(len(vocab)), [0, 1, 2, 3])
        >>> is_cont = np.array([t.startswith("##") for t in vocab])
        >>> ids = np.array([[1, 4, 5, 6, 7, 8, 2, 0]])
        >>> out = whole_word_mask(ids, rng=np.random.default_rng(0), is_special=is_special,
        ...                       is_continuation=is_cont, mask_token_id=3, vocab_size=len(vocab),
        ...                       pad_token_id=0, mlm_probability=0.3, max_predictions=4)
        >>> out.num_masked.tolist()  # round(7 non-padding tokens * 0.3) = 2
        [2]
        >>> bool(np.all(out.masked_labels[0, :2] == ids[0, out.masked_positions[0, :2]]))
        True
    """
    ids = _check_input(input_ids, is_special, is_continuation)
    _check_probabilities(mlm_probability, mask_replace_prob, random_replace_prob, max_predictions)
    if vocab_size < 1:
        raise ValueError(f"vocab_size must be positive, got {vocab_size}")

    units = _find_units(ids, is_special, is_continuation, pad_token_id, whole_word)
    budget = _num_to_predict(units.n_tokens, mlm_probability, max_predictions)
    # One key per unit slot; ranking the keys gives a uniformly random visiting order per row.
    keys = rng.integers(0, 2**_KEY_BITS, size=units.lengths.shape, dtype=np.uint64)
    selected = _greedy_select(units, keys, budget)
    return _corrupt(ids, selected, rng, mask_token_id, vocab_size, max_predictions,
                    mask_replace_prob, random_replace_prob)


# --- internals (tests drive them directly with a known visiting order) -------------------------

_KEY_BITS = 32  # random bits per unit; ties (about W**2 / 2**33 per row) fall back to text order


@dataclass
class _Units:
    candidate: np.ndarray  # (B, L) bool, tokens that belong to a unit
    unit_of_token: np.ndarray  # (B, L) int32, index of the token's unit in its row; -1: not a unit
    flat_unit: np.ndarray  # (B, L) int64, row * W + unit_of_token, meaningful where candidate
    lengths: np.ndarray  # (B, W) int64, tokens per unit; slots past a row's last unit hold L + 1
    n_units: np.ndarray  # (B,) int64
    n_tokens: np.ndarray  # (B,) int64, non-padding tokens (Google's len(tokens))


def _check_input(input_ids, is_special, is_continuation) -> np.ndarray:
    ids = np.asarray(input_ids)
    if ids.ndim != 2 or not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(f"input_ids must be a 2-D integer array, got {ids.dtype} {ids.shape}")
    for name, table in (("is_special", is_special), ("is_continuation", is_continuation)):
        if not (isinstance(table, np.ndarray) and table.ndim == 1 and table.dtype == np.bool_):
            raise ValueError(f"{name} must be a 1-D bool array over the vocabulary")
    if ids.size and (ids.min() < 0 or ids.max() >= min(len(is_special), len(is_continuation))):
        raise ValueError(
            f"input_ids must lie in [0, {min(len(is_special), len(is_continuation))}) to index the "
            f"lookup tables; got range [{ids.min()}, {ids.max()}]"
        )
    return ids


def _check_probabilities(mlm_probability, mask_replace_prob, random_replace_prob, max_predictions):
    for name, p in (("mlm_probability", mlm_probability), ("mask_replace_prob", mask_replace_prob),
                    ("random_replace_prob", random_replace_prob)):
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"{name} must be in [0, 1], got {p}")
    if mask_replace_prob + random_replace_prob > 1.0:
        raise ValueError(
            f"mask_replace_prob + random_replace_prob must not exceed 1, got "
            f"{mask_replace_prob} + {random_replace_prob}"
        )
    if max_predictions < 1:
        raise ValueError(f"max_predictions must be at least 1, got {max_predictions}")


def _num_to_predict(n_tokens, mlm_probability: float, max_predictions: int) -> np.ndarray:
    # np.rint rounds half to even, as Python 3's round() in Google's int(round(...)) does.
    target = np.rint(np.asarray(n_tokens, dtype=np.float64) * mlm_probability).astype(np.int64)
    return np.minimum(max_predictions, np.maximum(1, target))


def _find_units(ids, is_special, is_continuation, pad_token_id, whole_word) -> _Units:
    B, L = ids.shape
    candidate = ~is_special[ids]
    if pad_token_id is not None:
        not_pad = ids != pad_token_id
        candidate &= not_pad
        n_tokens = np.count_nonzero(not_pad, axis=1)
    else:
        n_tokens = np.full(B, L, dtype=np.int64)

    if whole_word:
        starts = candidate.copy()
        # A ## piece continues a word only when the token before it is itself part of a word.
        # (The lookup runs on the contiguous array: a column slice makes it ~3x slower.)
        starts[:, 1:] &= ~(is_continuation[ids][:, 1:] & candidate[:, :-1])
    else:
        starts = candidate
    unit_of_token = np.cumsum(starts, axis=1, dtype=np.int32)
    n_units = unit_of_token[:, -1].astype(np.int64) if L else np.zeros(B, np.int64)
    unit_of_token -= 1
    unit_of_token[~candidate] = -1

    W = int(n_units.max()) if B and L else 0
    flat_unit = unit_of_token + (np.arange(B, dtype=np.int64) * W)[:, None]
    lengths = np.bincount(flat_unit[candidate], minlength=B * W).reshape(B, W)
    # Empty slots must never fit any budget (budgets are at most L), so the fill-up rounds ignore
    # them without a separate validity mask.
    lengths[np.arange(W)[None, :] >= n_units[:, None]] = L + 1
    return _Units(candidate, unit_of_token, flat_unit, lengths, n_units, n_tokens)


def _greedy_select(units: _Units, keys: np.ndarray, budget: np.ndarray) -> np.ndarray:
    """Return the ``(B, L)`` bool mask of chosen tokens; units are visited in increasing key order.

    ``keys[b, u]`` (an integer in ``[0, 2**32)``) ranks unit ``u`` (left-to-right index) of row
    ``b``; equal keys are visited left to right. Only the first ``n_units[b]`` keys of a row are
    read.
    """
    B, W = units.lengths.shape
    if W == 0:
        return np.zeros(units.candidate.shape, dtype=bool)
    # Sorting one uint64 per unit, key in the high bits and unit index in the low bits, is a plain
    # value sort (about 3x faster than a stable argsort) that still yields the visiting order.
    shift = np.uint64(max(1, (W - 1).bit_length()))
    index = np.arange(W, dtype=np.uint64)
    packed = np.asarray(keys)[:, :W].astype(np.uint64)  # a copy: the caller's keys stay intact
    packed <<= shift
    packed |= index
    empty = np.arange(W)[None, :] >= units.n_units[:, None]
    packed[empty] = np.uint64(1 << 63)  # empty slots go last...
    packed |= index  # ...and keep their index, so every slot still maps somewhere
    packed.sort(axis=1)
    order = (packed & np.uint64((1 << int(shift)) - 1)).astype(np.int64)
    order += (np.arange(B, dtype=np.int64) * W)[:, None]
    lengths = units.lengths.ravel()[order]

    # The greedy accepts every unit until the first one that does not fit; that prefix is where
    # the running total stays within the budget.
    total = np.cumsum(lengths, axis=1)
    accepted = total <= budget[:, None]
    n_prefix = np.count_nonzero(accepted, axis=1)
    used = np.where(n_prefix > 0, total[np.arange(B), np.maximum(n_prefix - 1, 0)], 0)
    remaining = budget - used

    # After the first skip the greedy accepts a later unit only if it fits what is left. A unit it
    # has skipped was longer than the remainder then, and the remainder only shrinks, so "the
    # first not-yet-accepted unit that fits" is always the greedy's next acceptance.
    rows = np.nonzero(remaining > 0)[0]
    while rows.size:
        fits = (lengths[rows] <= remaining[rows, None]) & ~accepted[rows]
        found = fits.any(axis=1)
        rows = rows[found]
        if not rows.size:
            break
        first = fits[found].argmax(axis=1)
        accepted[rows, first] = True
        remaining[rows] -= lengths[rows, first]
        rows = rows[remaining[rows] > 0]

    accepted_unit = np.empty(B * W, dtype=bool)
    accepted_unit[order.ravel()] = accepted.ravel()
    return accepted_unit[units.flat_unit] & units.candidate


def _corrupt(ids, selected, rng, mask_token_id, vocab_size, max_predictions,
             mask_replace_prob, random_replace_prob) -> MaskedBatch:
    B, L = ids.shape
    # Flat, row-major indices: positions come out ascending within each row, as Google sorts them,
    # and 1-D fancy indexing is several times cheaper than (row, column) pairs.
    flat = np.flatnonzero(selected)
    rows = flat // max(L, 1)
    counts = np.bincount(rows, minlength=B)
    first_of_row = np.cumsum(counts) - counts
    slot = rows * max_predictions + (np.arange(flat.size) - first_of_row[rows])

    positions = np.zeros(B * max_predictions, dtype=np.int64)
    labels = np.full(B * max_predictions, IGNORE_INDEX, dtype=np.int64)
    positions[slot] = flat - rows * L
    out = ids.astype(np.int64).ravel()  # astype copies, so the caller's array is never written
    labels[slot] = out[flat]

    u = rng.random(flat.size)
    out[flat[u < mask_replace_prob]] = mask_token_id
    to_random = flat[(u >= mask_replace_prob) & (u < mask_replace_prob + random_replace_prob)]
    out[to_random] = rng.integers(0, vocab_size, size=to_random.size)
    return MaskedBatch(out.reshape(B, L), positions.reshape(B, max_predictions),
                       labels.reshape(B, max_predictions))
