"""BART's denoising objective (sentence permutation + text infilling), vectorized over the batch.

The semantics are those of fairseq's ``DenoisingDataset`` (``fairseq/data/denoising_dataset.py``)
with the arguments BART-large was pretrained with: ``--mask 0.3 --mask-random 0.1 --insert 0
--permute-sentences 1.0 --rotate 0 --mask-length span-poisson --poisson-lambda 3.5
--replace-length 1``. Each row ``<s> body </s>`` is corrupted in this order:

1. **Sentence permutation.** The body (everything between ``<s>`` and ``</s>``) is cut into
   sentences at the ``sentence_start`` flags (position 1 always starts one). With ratio ``p``,
   ``ceil(n * p)`` of the ``n`` sentences are picked at random and shuffled among the slots they
   occupied; ``p = 1`` is a uniformly random order of all of them. Word-start flags travel with
   their tokens.
2. **Text infilling.** Words are the word starts of the permuted body. ``num_to_mask =
   ceil(words * mask_ratio)``; span lengths (in words) are drawn i.i.d. from a truncated
   Poisson(``poisson_lambda``) until they add up to ``num_to_mask``, the last one cut so the sum is
   exact. Zero-length spans become insertions; each other span starts at a distinct, uniformly
   chosen word start and covers that word and the following ones, up to (never including) ``</s>``.
   A span's first token becomes one ``<mask>`` (or, with probability ``random_ratio`` per span, a
   token drawn from ``random_token_ids``); the rest of the span is deleted. Spans may overlap: a
   token inside another span's tail is deleted even if it starts a span of its own.
3. **Insertion.** The zero-length spans, plus ``ceil(len * insert_ratio)`` more when
   ``insert_ratio > 0``, become new tokens at uniformly random distinct positions strictly between
   ``<s>`` and ``</s>``; ``ceil(n * random_ratio)`` of each group of ``n`` are random tokens, the
   others ``<mask>``.

The target is always the original row.

Where fairseq's behaviour is an accident rather than a choice, this module does the clean thing:

* Sentences come from ``sentence_start`` (computed from the text by the caller), not from a
  full-stop token id: a "." inside "3.5" or "Sr." is not a boundary, and "?" or "!" are.
* Random tokens come from ``random_token_ids``. fairseq draws ``randint(1, len(vocab))``, which can
  produce ``<pad>``, ``</s>``, ``<unk>`` and ``<mask>`` itself.
* The zero-length spans become exactly that many insertions. fairseq passes the ratio
  ``k / len`` and recomputes ``ceil(len * (k / len))``, which floating point can push to ``k + 1``.
* Every ``ceil(n * ratio)`` is the exact decimal one. fairseq computes ``num_to_mask`` in float32,
  where ``ceil(50 * 0.3)`` is 16 instead of 15 (124 of the word counts below 3000 are off by one).
* The span-length distribution is cut where fairseq cuts it (after the first term below 1e-7, at
  most 128 terms) for ``poisson_lambda`` below ~16; above that fairseq's cut falls on ``k = 0`` and
  its sampler never stops, so here the cut only applies past the mode.
* The two insertion passes (zero-length spans, then ``insert_ratio``) are one draw here. That is
  equal in distribution: placing ``a`` items uniformly and then ``b`` more uniformly gives a uniform
  interleaving of the ``a + b`` items with the rest, and which of them are random tokens is a
  uniform choice of ``ceil(a * r) + ceil(b * r)`` of them either way.

Rows with no maskable word come out of step 2 unchanged, as in fairseq. Every row of ``tokens`` has
the same length (a packed block); the noised rows differ in length and are right-padded.

:func:`bart_denoise` does all of this for the whole batch with array operations: sentence order
via random keys per sentence and a scatter of each sentence to its new offset, span coverage via a
difference array over global word numbers, compaction and insertion via one scatter of every kept
token to its final column. :func:`es_zoo.objectives.reference.bart_denoise_reference` is the same
algorithm one row at a time, in numpy; the tests check the vectorized code against it, and
``benchmarks/bench_denoising.py`` times it beside a fairseq-shaped anchor (torch per example, as
fairseq's ``DenoisingDataset``). The two consume the random generator differently, so they agree in
distribution, not draw for draw.

Example:
    >>> import numpy as np
    >>> # <s>=0 <pad>=1 </s>=2 <mask>=3. Six words (10 11 | 12 | 13 14 15 | 16 | 17 | 18 19) in
    >>> # two sentences (10 .. 15 and 16 .. 19); ceil(6 * 0.3) = 2 words are masked.
    >>> tokens = np.array([[0, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 2]])
    >>> word_start = np.array([[1, 1, 0, 1, 1, 0, 0, 1, 1, 1, 0, 1]], dtype=bool)
    >>> sentence_start = np.zeros_like(word_start)
    >>> sentence_start[0, [1, 7]] = True
    >>> out = bart_denoise(tokens, rng=np.random.default_rng(0), word_start=word_start,
    ...                    sentence_start=sentence_start, mask_token_id=3, pad_token_id=1,
    ...                    random_token_ids=np.arange(4, 10))
    >>> out.input_ids.tolist(), out.input_lengths.tolist()  # swapped; "12 13 14 15" -> one <mask>
    ([[0, 16, 17, 18, 19, 10, 11, 3, 2]], [9])
    >>> out.labels.tolist() == tokens.tolist()
    True
"""

from __future__ import annotations

import functools
import itertools
import math
from dataclasses import dataclass

import numpy as np

from es_zoo.errors import ObjectiveError

__all__ = [
    "DenoisedBatch",
    "bart_denoise",
    "poisson_span_probabilities",
]

# fairseq stops adding Poisson terms after the first one below this probability.
_POISSON_TAIL = 1e-7


@dataclass
class DenoisedBatch:
    """The output of :func:`bart_denoise`.

    Attributes:
        input_ids: ``(B, M)`` int64, the noised sources, right-padded with ``pad_token_id`` to the
            longest one.
        input_lengths: ``(B,)`` int64, the true length of each noised source.
        labels: ``(B, L)`` int64, the original rows (``<s> ... </s>``), never permuted or masked.

    Example:
        >>> import numpy as np
        >>> b = DenoisedBatch(np.array([[0, 3, 2, 1]]), np.array([3]), np.array([[0, 5, 6, 2]]))
        >>> b.attention_mask().tolist()
        [[1, 1, 1, 0]]
    """

    input_ids: np.ndarray
    input_lengths: np.ndarray
    labels: np.ndarray

    def attention_mask(self) -> np.ndarray:
        """``(B, M)`` int64, 1 on the tokens of each noised source and 0 on its padding.

        Example:
            >>> import numpy as np
            >>> DenoisedBatch(np.zeros((2, 3)), np.array([1, 3]), np.zeros((2, 3))).attention_mask()
            array([[1, 0, 0],
                   [1, 1, 1]])
        """
        width = self.input_ids.shape[1]
        return (np.arange(width)[None, :] < self.input_lengths[:, None]).astype(np.int64)


def poisson_span_probabilities(poisson_lambda: float, max_length: int = 128) -> np.ndarray:
    """The span-length distribution of ``--mask-length span-poisson``: P(k) for k = 0..max_length-1.

    Poisson(``poisson_lambda``) terms up to and including the first one past the mode that falls
    below 1e-7 (fairseq's cut), at most ``max_length`` of them, normalised; later entries are 0.

    Example:
        >>> p = poisson_span_probabilities(3.5)
        >>> p.shape, round(float(p.sum()), 12), int(np.flatnonzero(p)[-1])
        ((128,), 1.0, 18)
        >>> round(float(p[3]), 4)  # Poisson(3.5) at 3: e**-3.5 * 3.5**3 / 3!
        0.2158
    """
    lam = _check_lambda(poisson_lambda)
    if isinstance(max_length, bool) or not isinstance(max_length, (int, np.integer)) \
            or max_length < 2:
        raise ObjectiveError(
            f"max_length must be an integer >= 2 (spans of 0 words only would never fill the "
            f"budget), got {max_length!r}"
        )
    k = np.arange(max_length, dtype=np.float64)
    # Log space: lam**k and k! overflow long before k = 127 for large lambdas.
    log_factorial = np.concatenate([[0.0], np.cumsum(np.log(k[1:]))])
    pmf = np.exp(k * math.log(lam) - lam - log_factorial)
    tiny = np.flatnonzero((pmf < _POISSON_TAIL) & (k >= math.floor(lam)))
    stop = int(tiny[0]) + 1 if tiny.size else max_length
    probs = np.zeros(max_length, dtype=np.float64)
    probs[:stop] = pmf[:stop] / pmf[:stop].sum()
    return probs


def bart_denoise(
    tokens: np.ndarray,
    *,
    rng: np.random.Generator,
    word_start: np.ndarray,
    sentence_start: np.ndarray,
    mask_token_id: int,
    pad_token_id: int,
    random_token_ids: np.ndarray,
    mask_ratio: float = 0.3,
    random_ratio: float = 0.1,
    poisson_lambda: float = 3.5,
    permute_sentence_ratio: float = 1.0,
    insert_ratio: float = 0.0,
) -> DenoisedBatch:
    """Corrupt a batch of ``<s> ... </s>`` rows the way BART was pretrained (see the module doc).

    Args:
        tokens: ``(B, L)`` integer ids, ``L >= 3``; column 0 is ``<s>`` and column ``L-1`` is
            ``</s>`` in every row (the caller frames them). Left unchanged.
        rng: the source of randomness; pass a fresh state per batch for dynamic noise.
        word_start: ``(B, L)`` bool, True where a token begins a word (special tokens count as
            words, as in fairseq); columns 0 and ``L-1`` are ignored.
        sentence_start: ``(B, L)`` bool, True where a token begins a sentence; column 1 always
            does, columns 0 and ``L-1`` are ignored.
        mask_token_id: the ``<mask>`` id.
        pad_token_id: fills ``input_ids`` past each row's length.
        random_token_ids: non-empty 1-D ids a random replacement is drawn from, uniformly
            (normally the ordinary tokens of the vocabulary, without the special ones).
        mask_ratio: fraction of the words to mask (fairseq's ``--mask``).
        random_ratio: chance that a masked span or an insertion gets a random token instead of
            ``<mask>`` (``--mask-random``).
        poisson_lambda: mean span length in words (``--poisson-lambda``).
        permute_sentence_ratio: fraction of the sentences to shuffle (``--permute-sentences``).
        insert_ratio: extra insertions as a fraction of the noised length (``--insert``).

    Returns:
        A :class:`DenoisedBatch`.

    Raises:
        ObjectiveError: rows shorter than 3 tokens, flag arrays of the wrong shape or type, an
            empty ``random_token_ids``, or a ratio outside [0, 1].

    Example:
        >>> import numpy as np
        >>> tokens = np.array([[0] + list(range(10, 40)) + [2]] * 2)
        >>> ws = np.ones(tokens.shape, dtype=bool)
        >>> out = bart_denoise(tokens, rng=np.random.default_rng(1), word_start=ws,
        ...                    sentence_start=np.zeros_like(ws), mask_token_id=3, pad_token_id=1,
        ...                    random_token_ids=np.arange(4, 50), permute_sentence_ratio=0.0)
        >>> out.input_ids.shape[0], bool(np.all(out.input_lengths < 32))  # 30 words: 9 masked
        (2, True)
    """
    return _bart_denoise(
        tokens, rng=rng, word_start=word_start, sentence_start=sentence_start,
        mask_token_id=mask_token_id, pad_token_id=pad_token_id, random_token_ids=random_token_ids,
        mask_ratio=mask_ratio, random_ratio=random_ratio, poisson_lambda=poisson_lambda,
        permute_sentence_ratio=permute_sentence_ratio, insert_ratio=insert_ratio,
    )


# --- shared helpers ------------------------------------------------------------------------------


def _ceil_product(n, ratio: float) -> np.ndarray:
    """``ceil(n * ratio)`` as decimal arithmetic gives it, for integer ``n`` (int64 array).

    ``n * 0.3`` can land a few ulps above an integer (0.3 is not exact in binary); stepping down
    by a few ulps before the ceiling undoes that without touching any true fraction.
    """
    x = np.asarray(n, dtype=np.float64) * float(ratio)
    return np.ceil(x - 8 * np.spacing(x)).astype(np.int64)


def _check_lambda(poisson_lambda) -> float:
    try:
        lam = float(poisson_lambda)
    except (TypeError, ValueError):
        lam = float("nan")
    if not (math.isfinite(lam) and lam > 0):
        raise ObjectiveError(
            f"poisson_lambda must be a positive finite number, got {poisson_lambda!r}"
        )
    return lam


@dataclass
class _Inputs:
    tokens: np.ndarray  # (B, L) int64, a fresh copy
    word_start: np.ndarray  # (B, L) bool
    sentence_start: np.ndarray  # (B, L) bool
    random_ids: np.ndarray  # (R,) int64
    cdf: np.ndarray  # cumulative span-length probabilities
    mean: float  # of the span-length distribution
    var: float


def _check(tokens, rng, word_start, sentence_start, mask_token_id, pad_token_id,
           random_token_ids, mask_ratio, random_ratio, poisson_lambda, permute_sentence_ratio,
           insert_ratio) -> _Inputs:
    if not isinstance(rng, np.random.Generator):
        raise ObjectiveError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    ids = np.asarray(tokens)
    if ids.ndim != 2 or not np.issubdtype(ids.dtype, np.integer):
        raise ObjectiveError(
            f"tokens must be a 2-D integer array (batch, length), got {ids.dtype} {ids.shape}"
        )
    if ids.shape[1] < 3:
        raise ObjectiveError(
            f"rows must hold <s>, at least one token and </s>; got length {ids.shape[1]}, "
            f"so there is nothing to corrupt"
        )
    flags = []
    for name, flag in (("word_start", word_start), ("sentence_start", sentence_start)):
        flag = np.asarray(flag)
        if flag.shape != ids.shape:
            raise ObjectiveError(
                f"{name} must have the shape of tokens {ids.shape}, got {flag.shape}"
            )
        if flag.dtype != np.bool_:
            raise ObjectiveError(f"{name} must be a bool array, got {flag.dtype}")
        flags.append(flag)
    rand = np.asarray(random_token_ids)
    if rand.ndim != 1 or rand.size == 0 or not np.issubdtype(rand.dtype, np.integer):
        raise ObjectiveError(
            f"random_token_ids must be a non-empty 1-D integer array (the ids a random "
            f"replacement is drawn from), got {rand.dtype} {rand.shape}"
        )
    for name, value in (("mask_token_id", mask_token_id), ("pad_token_id", pad_token_id)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise ObjectiveError(f"{name} must be an integer id, got {value!r}")
    for name, ratio in (("mask_ratio", mask_ratio), ("random_ratio", random_ratio),
                        ("permute_sentence_ratio", permute_sentence_ratio),
                        ("insert_ratio", insert_ratio)):
        if isinstance(ratio, bool) or not isinstance(ratio, (int, float, np.integer, np.floating)) \
                or not 0.0 <= ratio <= 1.0:
            raise ObjectiveError(f"{name} must be a number in [0, 1], got {ratio!r}")
    cdf, mean, var = _span_law(_check_lambda(poisson_lambda))
    return _Inputs(ids.astype(np.int64), flags[0], flags[1], rand.astype(np.int64), cdf, mean, var)


@functools.lru_cache(maxsize=16)
def _span_law(poisson_lambda: float) -> tuple[np.ndarray, float, float]:
    """The cumulative span-length probabilities (read-only), their mean and variance."""
    probs = poisson_span_probabilities(poisson_lambda)
    cdf = np.cumsum(probs)
    cdf[np.flatnonzero(probs)[-1]:] = 1.0  # u < 1 always lands inside the support
    cdf.flags.writeable = False
    k = np.arange(probs.size)
    mean = float(probs @ k)
    return cdf, mean, float(probs @ (k - mean) ** 2)


# --- vectorized ----------------------------------------------------------------------------------


def _bart_denoise(tokens, *, rng, word_start, sentence_start, mask_token_id, pad_token_id,
                  random_token_ids, mask_ratio, random_ratio, poisson_lambda,
                  permute_sentence_ratio, insert_ratio,
                  trace: dict | None = None) -> DenoisedBatch:
    """:func:`bart_denoise`; ``trace``, when given, receives per-row counts for the tests."""
    x = _check(tokens, rng, word_start, sentence_start, mask_token_id, pad_token_id,
               random_token_ids, mask_ratio, random_ratio, poisson_lambda,
               permute_sentence_ratio, insert_ratio)
    labels = x.tokens
    B, L = labels.shape
    src, ws = labels, x.word_start
    if permute_sentence_ratio > 0 and B:
        sid = _sentence_ids(x.sentence_start)
        ordering = _sentence_ordering(rng, sid[:, -1].astype(np.int64) + 1, permute_sentence_ratio)
        src, ws = _apply_sentence_order(src, ws, sid, ordering)

    # Columns 0 and L-1 are never words; the pseudo-word flags (see _mask_spans) are set there.
    n_words = np.count_nonzero(ws[:, 1:-1], axis=1)
    budget = _ceil_product(n_words, mask_ratio) if mask_ratio > 0 else np.zeros(B, np.int64)
    lengths, in_use, drawn = _draw_span_lengths(rng, budget, x.cdf, x.mean, x.var)
    is_span = in_use & (lengths > 0)
    n_inserts = np.count_nonzero(in_use, axis=1) - np.count_nonzero(is_span, axis=1)
    start_word = _distinct_draws(rng, is_span, n_words)
    replacement = _replacements(rng, is_span.shape, random_ratio, mask_token_id, x.random_ids)
    if src is labels:
        src = labels.copy()  # _mask_spans writes the replacements in place
    keep, n_replaced = _mask_spans(src, ws, start_word, np.where(is_span, lengths, 0), replacement)

    n_kept = np.count_nonzero(keep, axis=1)
    n_random = _ceil_product(n_inserts, random_ratio)
    n_extra = np.zeros(B, np.int64)
    if insert_ratio > 0:
        n_extra = _ceil_product(n_kept + n_inserts, insert_ratio)
        n_random += _ceil_product(n_extra, random_ratio)
    n_new = n_inserts + n_extra
    final_length = n_kept + n_new
    slots = np.arange(int(n_new.max(initial=0)))[None, :] < n_new[:, None]
    positions = _distinct_draws(rng, slots, final_length - 2)  # columns 1 .. final_length-2
    values = _insert_values(rng, slots, n_random, mask_token_id, x.random_ids)
    input_ids = _scatter(src, keep, positions, slots, values, final_length, pad_token_id)

    if trace is not None:
        trace.update(
            n_words=n_words, num_to_mask=budget, n_spans=np.count_nonzero(is_span, axis=1),
            n_inserts=n_inserts, n_deleted=L - n_kept, n_replaced=n_replaced, n_extra=n_extra,
            n_random_inserts=n_random,
            span_lengths=[lengths[b, in_use[b]] for b in range(B)],
            drawn=[drawn[b, : np.count_nonzero(in_use[b])] for b in range(B)],
        )
    return DenoisedBatch(input_ids, final_length, labels)


def _sentence_ids(sentence_start: np.ndarray) -> np.ndarray:
    """``(B, L-2)`` int32: the sentence number of each body token, from 0."""
    starts = sentence_start[:, 1:-1].copy()
    starts[:, 0] = True
    sid = np.cumsum(starts, axis=1, dtype=np.int32)
    sid -= 1
    return sid


def _sentence_ordering(rng, n_sentences: np.ndarray, ratio: float) -> np.ndarray:
    """``(B, S)``: the sentence each slot receives; slots past a row's sentence count keep theirs.

    ``ceil(n * ratio)`` sentences are chosen uniformly (the ones with the smallest random keys);
    their slots, in text order, receive them in a uniformly random order.
    """
    B = len(n_sentences)
    S = int(n_sentences.max(initial=0))
    slot = np.arange(S)
    valid = slot[None, :] < n_sentences[:, None]
    n_chosen = np.minimum(_ceil_product(n_sentences, ratio), n_sentences)
    # The chosen ones: a uniformly random subset, the n_chosen smallest of i.i.d. keys.
    rank = np.empty((B, S), dtype=np.int64)
    np.put_along_axis(rank, np.argsort(np.where(valid, rng.random((B, S)), 2.0), axis=1),
                      np.broadcast_to(slot, (B, S)), axis=1)
    chosen = rank < n_chosen[:, None]
    chosen_slots = np.argsort(np.where(chosen, slot, S + slot), axis=1)
    shuffled = np.argsort(np.where(chosen, rng.random((B, S)), 2.0 + slot), axis=1)
    ordering = np.broadcast_to(slot, (B, S)).copy()
    take = slot[None, :] < n_chosen[:, None]
    ordering[np.nonzero(take)[0], chosen_slots[take]] = shuffled[take]
    return ordering


def _apply_sentence_order(tokens, word_start, sid, ordering):
    """Move every body token to where its sentence lands; ``<s>`` and ``</s>`` stay."""
    B, L = tokens.shape
    S = ordering.shape[1]
    # Sentence S of each row stands for <s> and </s>: a frame that never moves. Including it lets
    # the final scatter read whole contiguous rows.
    flat_sid = np.empty((B, L), dtype=np.int64)
    flat_sid[:, 1:-1] = sid
    flat_sid[:, 0] = flat_sid[:, -1] = S
    flat_sid += (np.arange(B, dtype=np.int64) * (S + 1))[:, None]
    flat_sid = flat_sid.ravel()
    length = np.bincount(flat_sid, minlength=B * (S + 1)).reshape(B, S + 1)[:, :S]
    old_start = np.cumsum(length, axis=1) - length
    slot_length = np.take_along_axis(length, ordering, axis=1)
    new_start = np.empty_like(old_start)
    np.put_along_axis(new_start, ordering, np.cumsum(slot_length, axis=1) - slot_length, axis=1)
    # A token keeps its offset inside its sentence: it moves by its sentence's displacement.
    shift = np.zeros((B, S + 1), dtype=np.int64)
    shift[:, :S] = new_start - old_start
    dest = shift.ravel()[flat_sid]
    dest += np.arange(B * L, dtype=np.int64)
    out_tokens, out_ws = np.empty_like(tokens), np.empty_like(word_start)
    out_tokens.ravel()[dest] = tokens.ravel()
    out_ws.ravel()[dest] = word_start.ravel()
    return out_tokens, out_ws


def _draw_span_lengths(rng, budget: np.ndarray, cdf: np.ndarray, mean: float, var: float):
    """Span lengths (in words) per row, drawn i.i.d. until they reach ``budget``.

    Returns ``(lengths, in_use, drawn)``, all ``(B, K)``: the draws up to the one that reaches the
    budget are ``in_use``; in ``lengths`` that last one is cut so the row sums to its budget (and
    everything past it is 0); ``drawn`` holds the draws as they came.
    """
    B = len(budget)
    top = int(budget.max(initial=0))
    if top == 0:
        empty = np.zeros((B, 0), dtype=np.int64)
        return empty, empty.astype(bool), empty
    # Enough columns that the longest row nearly always fills its budget in one go: the number of
    # draws it needs is about top / mean, with standard deviation sqrt(top * var / mean**3).
    k = int(math.ceil(top / mean + 6 * math.sqrt(top * var / mean**3))) + 4
    drawn = np.searchsorted(cdf, rng.random((B, k)), side="right")
    total = np.cumsum(drawn, axis=1)
    while np.any(total[:, -1] < budget):
        # The draws are an endless i.i.d. sequence; rows that need more just read further.
        more = np.searchsorted(cdf, rng.random((B, k)), side="right")
        drawn = np.concatenate([drawn, more], axis=1)
        total = np.concatenate([total, total[:, -1:] + np.cumsum(more, axis=1)], axis=1)
    n_used = np.count_nonzero(total < budget[:, None], axis=1) + 1
    n_used[budget == 0] = 0
    in_use = np.arange(drawn.shape[1])[None, :] < n_used[:, None]
    lengths = np.where(in_use, drawn, 0)
    rows = np.flatnonzero(n_used)
    last = n_used[rows] - 1
    lengths[rows, last] = budget[rows] - (total[rows, last] - drawn[rows, last])
    return lengths, in_use, drawn


def _distinct_draws(rng, active: np.ndarray, upper: np.ndarray, max_rounds: int = 8) -> np.ndarray:
    """``(B, K)`` int64: for the active entries of row b, distinct values in ``1..upper[b]``.

    Every injection of a row's active entries into ``1..upper[b]`` is equally likely (each row
    needs ``upper[b]`` at least its active count); inactive entries hold 0.

    Entries draw uniformly; where two collide, all but one draw again, until none collide. Which
    entry keeps a value depends only on which entries are equal, never on the values, so the
    result's law is unchanged by any relabelling of ``1..upper[b]``; the injections form a single
    orbit under relabelling, hence the law is uniform. Rows still colliding after ``max_rounds``
    (many entries for few values) are redrawn from scratch by sorting random keys, which is
    uniform as well, and since the decision to do so also ignores the values, the mix is uniform.
    """
    B, K = active.shape
    values = np.zeros((B, K), dtype=np.int64)
    rows, cols = np.nonzero(active)
    if rows.size == 0:
        return values
    high = upper[rows].astype(np.int64)
    v = rng.integers(1, high + 1)
    stride = int(high.max()) + 1
    base = rows.astype(np.int64) * stride
    entry = np.arange(rows.size)
    owner = np.empty(B * stride, dtype=np.int64)  # only ever read where just written
    for attempt in itertools.count():
        key = base + v
        owner[key] = entry
        clash = owner[key] != entry
        if not clash.any():
            break
        if attempt == max_rounds:
            bad_rows = np.unique(rows[clash])
            redo = np.isin(rows, bad_rows)
            width = int(upper[bad_rows].max())
            keys = rng.random((bad_rows.size, width))
            keys[np.arange(width)[None, :] >= upper[bad_rows][:, None]] = 2.0
            order = np.argsort(keys, axis=1) + 1
            first = np.searchsorted(rows, rows[redo])  # rows is sorted: first entry of each row
            v[redo] = order[np.searchsorted(bad_rows, rows[redo]), np.flatnonzero(redo) - first]
            break
        v[clash] = rng.integers(1, high[clash] + 1)
    values[rows, cols] = v
    return values


def _replacements(rng, shape, random_ratio, mask_token_id, random_ids) -> np.ndarray:
    """What each span's first token becomes: ``<mask>``, or a random id with ``random_ratio``."""
    out = np.full(shape, mask_token_id, dtype=np.int64)
    if random_ratio > 0 and out.size:
        rand = rng.random(shape) < random_ratio
        out[rand] = random_ids[rng.integers(0, random_ids.size, size=int(rand.sum()))]
    return out


def _insert_values(rng, slots, n_random, mask_token_id, random_ids) -> np.ndarray:
    """The first ``n_random`` slots of each row are random ids, the others ``<mask>``.

    The positions are a uniformly random injection of the slots, so the random ones land on a
    uniformly random subset of the inserted positions.
    """
    out = np.full(slots.shape, mask_token_id, dtype=np.int64)
    rand = slots & (np.arange(slots.shape[1])[None, :] < n_random[:, None])
    out[rand] = random_ids[rng.integers(0, random_ids.size, size=int(rand.sum()))]
    return out


def _mask_spans(tokens, word_start, start_word, lengths, replacement):
    """Apply the spans to ``tokens`` in place; return ``(keep, n_replaced)``.

    ``start_word`` and ``lengths`` are ``(B, K)``: span ``k`` of row ``b`` starts at word number
    ``start_word[b, k]`` (1 = the first word start in columns 1..L-2) and covers ``lengths[b, k]``
    words (0: no span); ``replacement[b, k]`` is what its first token becomes if it survives.

    Words are numbered across the whole flattened batch, with columns 0 and L-1 counted as words
    of their own that no span starts at or covers: then every row's words are one contiguous
    range, a span is stopped at its row's ``</s>`` by capping its end there, and the coverage of
    the whole batch is one difference array and one cumulative sum.
    """
    B, L = tokens.shape
    is_word = word_start.copy()
    is_word[:, 0] = is_word[:, -1] = True
    word = np.cumsum(is_word.ravel(), dtype=np.int64)
    word -= 1  # the global word number of every token
    n_words = np.count_nonzero(is_word, axis=1) - 2
    first = np.cumsum(n_words + 2) - (n_words + 2)  # the global word number of each row's <s>

    rows, cols = np.nonzero(lengths)
    start = first[rows] + start_word[rows, cols]
    end = np.minimum(start + lengths[rows, cols], first[rows] + n_words[rows] + 1)
    n_total = int((n_words + 2).sum())
    # Words start+1 .. end-1 are a span's tail: every token of them goes.
    tail = np.cumsum(np.bincount(start + 1, minlength=n_total)
                     - np.bincount(end, minlength=n_total)) > 0
    code = tail.astype(np.int8)
    code[start] |= 2
    c = code[word].reshape(B, L)
    # A token goes if its word is in a tail, or if it continues (follows the first token of) a
    # span's first word. Columns 0 and L-1 are pseudo-words no span touches.
    keep = (c == 0) | ((c == 2) & is_word)
    survivors = ~tail[start]
    positions = np.flatnonzero(is_word)[start[survivors]]
    tokens.ravel()[positions] = replacement[rows[survivors], cols[survivors]]
    n_replaced = np.bincount(rows[survivors], minlength=B)
    return keep, n_replaced


def _scatter(tokens, keep, positions, slots, values, final_length, pad_token_id):
    """``(B, M)``: the kept tokens in order, with ``values`` at ``positions`` (final columns)."""
    B, L = tokens.shape
    width = int(final_length.max(initial=0))
    kept_index = np.cumsum(keep, axis=1)
    kept_index -= 1
    dest = kept_index
    if slots.any():
        # Insert i (in column order) has sorted_position[i] - i kept tokens ahead of it, so kept
        # token j moves right by the number of inserts whose count ahead is <= j.
        ordered = np.sort(np.where(slots, positions, np.iinfo(np.int64).max), axis=1)
        ahead = ordered - np.arange(slots.shape[1])
        rows = np.nonzero(slots)[0]
        shift = np.bincount(rows * (L + 1) + ahead[slots], minlength=B * (L + 1))
        shift = np.cumsum(shift.reshape(B, L + 1), axis=1).ravel()
        dest = kept_index + shift[kept_index + (np.arange(B, dtype=np.int64) * (L + 1))[:, None]]
    dest += (np.arange(B, dtype=np.int64) * width)[:, None]
    out = np.full((B, width), pad_token_id, dtype=np.int64)
    out.ravel()[dest[keep]] = tokens[keep]
    rows, cols = np.nonzero(slots)
    out[rows, positions[rows, cols]] = values[rows, cols]
    return out
