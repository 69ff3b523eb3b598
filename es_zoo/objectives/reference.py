"""Slow per-row oracles of the objectives: what the vectorised code in :mod:`.denoising` and
:mod:`.span_corruption` is checked and benchmarked against.

:func:`bart_denoise_reference` follows fairseq's ``DenoisingDataset`` one row at a time;
:func:`span_corrupt_reference` transcribes T5's ``random_spans_noise_mask`` and
``noise_span_to_unique_sentinel`` one example at a time. Same arguments, checks and result
distribution as :func:`~es_zoo.objectives.denoising.bart_denoise` and
:func:`~es_zoo.objectives.span_corruption.span_corrupt`; they read the random generator
differently, so they agree in distribution, not draw for draw (and exactly given the same spans or
``noise_mask``). Used by ``tests/test_denoising.py``, ``tests/test_span_corruption.py`` and
``benchmarks/bench_denoising.py`` / ``bench_span_corruption.py``; the fast modules never import
this one (an import-linter contract says so), so training never runs it.
"""

from __future__ import annotations

import numpy as np

from es_zoo.errors import ObjectiveError
from es_zoo.objectives.denoising import DenoisedBatch, _ceil_product, _check
from es_zoo.objectives.span_corruption import (
    SpanCorruptedBatch,
    _check_call,
    _check_sentinel_budget,
    _feasible_counts,
)

__all__ = ["bart_denoise_reference", "span_corrupt_reference"]


def _pad_rows(rows: list[np.ndarray], pad_token_id: int) -> tuple[np.ndarray, np.ndarray]:
    lengths = np.array([len(r) for r in rows], dtype=np.int64)
    out = np.full((len(rows), int(lengths.max(initial=0))), pad_token_id, dtype=np.int64)
    for i, r in enumerate(rows):
        out[i, : len(r)] = r
    return out, lengths


# --- BART denoising ------------------------------------------------------------------------------


def bart_denoise_reference(
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
    """``bart_denoise`` one row at a time, in the shape of fairseq's ``DenoisingDataset``.

    Same arguments, same semantics and same result distribution; slow (Python loops per row and
    per step of the span walk). It exists to check and benchmark ``bart_denoise`` against.

    Example:
        >>> import numpy as np
        >>> tokens = np.array([[0, 10, 11, 12, 2]])
        >>> ws = np.ones(tokens.shape, dtype=bool)
        >>> out = bart_denoise_reference(tokens, rng=np.random.default_rng(0), word_start=ws,
        ...                              sentence_start=ws, mask_token_id=3, pad_token_id=1,
        ...                              random_token_ids=np.arange(4, 10))
        >>> sorted(out.input_ids[0, 1:-1].tolist()) != [10, 11, 12]  # ceil(3 * 0.3) = 1 word
        True
    """
    return _bart_denoise_reference(
        tokens, rng=rng, word_start=word_start, sentence_start=sentence_start,
        mask_token_id=mask_token_id, pad_token_id=pad_token_id, random_token_ids=random_token_ids,
        mask_ratio=mask_ratio, random_ratio=random_ratio, poisson_lambda=poisson_lambda,
        permute_sentence_ratio=permute_sentence_ratio, insert_ratio=insert_ratio,
    )


def _bart_denoise_reference(tokens, *, rng, word_start, sentence_start, mask_token_id,
                            pad_token_id, random_token_ids, mask_ratio, random_ratio,
                            poisson_lambda, permute_sentence_ratio, insert_ratio,
                            trace: dict | None = None) -> DenoisedBatch:
    """:func:`bart_denoise_reference`; ``trace`` as in :func:`.denoising._bart_denoise`."""
    x = _check(tokens, rng, word_start, sentence_start, mask_token_id, pad_token_id,
               random_token_ids, mask_ratio, random_ratio, poisson_lambda,
               permute_sentence_ratio, insert_ratio)
    probs = np.diff(np.concatenate([[0.0], x.cdf]))
    rows, records = [], []
    for b in range(x.tokens.shape[0]):
        record: dict = {}
        source, ws = x.tokens[b].copy(), x.word_start[b].copy()
        if permute_sentence_ratio > 0:
            starts = _reference_sentence_starts(x.sentence_start[b])
            ordering = _reference_sentence_ordering(rng, len(starts), permute_sentence_ratio)
            source, ws = _reference_reorder(source, ws, starts, ordering)
        if mask_ratio > 0:
            source = _reference_infill(source, ws, rng, mask_ratio, random_ratio, probs,
                                       mask_token_id, x.random_ids, record)
        if insert_ratio > 0:
            n = int(_ceil_product(len(source), insert_ratio))
            record["n_extra"] = n
            source = _reference_insert(source, n, random_ratio, rng, mask_token_id, x.random_ids)
        rows.append(source)
        records.append(record)
    input_ids, lengths = _pad_rows(rows, pad_token_id)
    if trace is not None:
        for key in ("n_words", "num_to_mask", "n_spans", "n_inserts", "n_deleted", "n_replaced",
                    "n_extra"):
            trace[key] = np.array([r.get(key, 0) for r in records], dtype=np.int64)
        for key in ("span_lengths", "drawn"):
            trace[key] = [r.get(key, np.zeros(0, np.int64)) for r in records]
    return DenoisedBatch(input_ids, lengths, x.tokens)


def _reference_sentence_starts(sentence_start) -> list[int]:
    L = len(sentence_start)
    return [1] + [i for i in range(2, L - 1) if sentence_start[i]]


def _reference_sentence_ordering(rng, n: int, ratio: float) -> np.ndarray:
    """fairseq's: a random subset of ``ceil(n * ratio)`` sentences swaps slots at random."""
    n_chosen = int(_ceil_product(n, ratio))
    chosen = rng.permutation(n)[:n_chosen]
    ordering = np.arange(n)
    ordering[chosen] = chosen[rng.permutation(n_chosen)]
    return ordering


def _reference_reorder(source, ws, starts, ordering):
    ends = starts[1:] + [len(source) - 1]
    pieces = [(source[starts[i]:ends[i]], ws[starts[i]:ends[i]]) for i in ordering]
    return (np.concatenate([source[:1]] + [p[0] for p in pieces] + [source[-1:]]),
            np.concatenate([ws[:1]] + [p[1] for p in pieces] + [ws[-1:]]))


def _reference_infill(source, ws, rng, mask_ratio, random_ratio, probs, mask_token_id,
                      random_ids, record):
    is_word_start = ws.copy()
    is_word_start[0] = is_word_start[-1] = False
    n_words = int(is_word_start.sum())
    num_to_mask = int(_ceil_product(n_words, mask_ratio))
    record.update(n_words=n_words, num_to_mask=num_to_mask, n_deleted=0)
    if num_to_mask == 0:
        return source

    # Draw span lengths num_to_mask at a time until they reach the budget, as fairseq does.
    lengths = rng.choice(probs.size, size=num_to_mask, p=probs)
    cumulative = np.cumsum(lengths)
    while cumulative[-1] < num_to_mask:
        lengths = np.concatenate([lengths, rng.choice(probs.size, size=num_to_mask, p=probs)])
        cumulative = np.cumsum(lengths)
    i = 0
    while cumulative[i] < num_to_mask:
        i += 1
    record["drawn"] = lengths[: i + 1].copy()
    lengths = lengths[: i + 1].copy()
    lengths[i] = num_to_mask - (cumulative[i - 1] if i > 0 else 0)
    record["span_lengths"] = lengths.copy()
    n_inserts = int(np.count_nonzero(lengths == 0))
    lengths = lengths[lengths > 0]

    candidates = np.flatnonzero(is_word_start)
    starts = candidates[rng.permutation(n_words)[: lengths.size]]
    use_random = rng.random(lengths.size) < random_ratio
    replacement = np.full(lengths.size, mask_token_id, dtype=np.int64)
    replacement[use_random] = random_ids[rng.integers(0, random_ids.size, size=use_random.sum())]
    masked, keep = _reference_span_walk(source, is_word_start, starts, lengths, replacement)
    record.update(n_spans=lengths.size, n_inserts=n_inserts, n_deleted=int((~keep).sum()),
                  n_replaced=int(np.count_nonzero(keep[starts])))
    masked = masked[keep]
    if n_inserts:
        masked = _reference_insert(masked, n_inserts, random_ratio, rng, mask_token_id, random_ids)
    return masked


def _reference_span_walk(source, is_word_start, starts, lengths, replacement):
    """fairseq's span walk: replace each start, then step right deleting while words remain.

    Returns ``(source with the replacements, keep)``.
    """
    source = source.copy()
    keep = np.ones(source.size, dtype=bool)
    source[starts] = replacement
    # Each word start ahead uses up one word of a span; </s> counts as more words than any span has.
    boundary = is_word_start.astype(np.int64)
    boundary[-1] = int(np.max(lengths, initial=0)) + 1
    position, remaining = np.asarray(starts).copy(), np.asarray(lengths) - 1
    while position.size:
        remaining = remaining - boundary[position + 1]
        going = remaining >= 0
        position, remaining = position[going] + 1, remaining[going]
        keep[position] = False
    return source, keep


def _reference_insert(source, n, random_ratio, rng, mask_token_id, random_ids):
    """fairseq's insertion noise with exactly ``n`` new tokens strictly inside the row."""
    if n == 0:
        return source
    total = source.size + n
    noise = rng.permutation(total - 2)[:n] + 1
    n_random = int(_ceil_product(n, random_ratio))
    values = np.full(n, mask_token_id, dtype=np.int64)
    values[:n_random] = random_ids[rng.integers(0, random_ids.size, size=n_random)]
    return _reference_place(source, noise, values)


def _reference_place(source, noise, values):
    """``source`` with ``values`` at the final positions ``noise`` and its tokens elsewhere."""
    result = np.empty(source.size + noise.size, dtype=np.int64)
    is_noise = np.zeros(result.size, dtype=bool)
    is_noise[noise] = True
    result[noise] = values
    result[~is_noise] = source
    return result


# --- T5 span corruption --------------------------------------------------------------------------


def span_corrupt_reference(tokens: np.ndarray, *, rng: np.random.Generator, eos_token_id: int,
                           sentinel_start_id: int, num_sentinels: int = 100,
                           noise_density: float = 0.15, mean_noise_span_length: float = 3.0,
                           noise_mask: np.ndarray | None = None) -> SpanCorruptedBatch:
    """``span_corrupt`` written one example at a time, in the shape of T5's own code.

    For every row: draw a mask with T5's per-example procedure (two shuffles of span-start flags,
    interleaved span lengths, a running count of span starts whose parity marks noise), then
    replace the first token of every noise run by its sentinel and drop the rest of the run, and
    the same on the labels side with the mask inverted; append ``</s>``; finally stack the rows.
    Same arguments, errors and output as ``span_corrupt``; given the same ``noise_mask`` the
    two return identical arrays. Draws from ``rng`` differ from ``span_corrupt``'s, so masks
    drawn here follow the same distribution but are not the same masks.

    Example:
        >>> import numpy as np
        >>> out = span_corrupt_reference(np.arange(100, 120)[None, :],
        ...                              rng=np.random.default_rng(0), eos_token_id=1,
        ...                              sentinel_start_id=32099)
        >>> out.input_ids.shape, out.labels.shape
        ((1, 19), (1, 5))
    """
    ids, given = _check_call(tokens, eos_token_id, sentinel_start_id, num_sentinels,
                             noise_density, mean_noise_span_length, noise_mask)
    batch, length = ids.shape
    if given is None:
        num_noise, num_spans = _feasible_counts(length, noise_density, mean_noise_span_length)
        _check_sentinel_budget(num_spans, num_sentinels, length, noise_density,
                               mean_noise_span_length)

    inputs, labels, masks = [], [], []
    for b in range(batch):
        row = ids[b]
        mask = (given[b] if given is not None
                else _reference_row_mask(rng, length, num_noise, num_spans))
        inputs.append(_reference_replace_runs(row, mask, sentinel_start_id, eos_token_id,
                                              num_sentinels))
        labels.append(_reference_replace_runs(row, ~mask, sentinel_start_id, eos_token_id,
                                              num_sentinels))
        masks.append(mask)
    for name, rows in (("input_ids", inputs), ("labels", labels)):
        widths = {len(r) for r in rows}
        if len(widths) > 1:
            raise ObjectiveError(
                f"noise_mask gives {name} of different lengths across rows ({sorted(widths)}); "
                f"every row must have the same number of noise tokens and of spans"
            )
    return SpanCorruptedBatch(np.stack(inputs), np.stack(labels), np.stack(masks))


def _reference_segment_lengths(rng, num_items, num_segments) -> np.ndarray:
    starts = np.arange(num_items - 1) < num_segments - 1
    rng.shuffle(starts)
    first_in_segment = np.concatenate([[False], starts])
    segment_id = np.cumsum(first_in_segment)
    return np.bincount(segment_id, minlength=num_segments)


def _reference_row_mask(rng, length, num_noise, num_spans) -> np.ndarray:
    noise_lengths = _reference_segment_lengths(rng, num_noise, num_spans)
    kept_lengths = _reference_segment_lengths(rng, length - num_noise, num_spans)
    interleaved = np.stack([kept_lengths, noise_lengths], axis=1).reshape(-1)
    starts = np.cumsum(interleaved)[:-1]
    indicator = np.zeros(length, dtype=np.int64)
    indicator[starts] = 1
    return np.cumsum(indicator) % 2 == 1


def _reference_replace_runs(row, runs_mask, sentinel_start_id, eos_token_id, num_sentinels):
    prev = np.concatenate([[False], runs_mask[:-1]])
    first = runs_mask & ~prev
    rest = runs_mask & prev
    if first.sum() > num_sentinels:
        raise ObjectiveError(
            f"noise_mask has a row with {int(first.sum())} spans to replace, which needs "
            f"{int(first.sum())} sentinel ids, but num_sentinels={num_sentinels}"
        )
    sentinels = sentinel_start_id + 1 - np.cumsum(first)
    replaced = np.where(first, sentinels, row.astype(np.int64))
    return np.concatenate([replaced[~rest], [eos_token_id]]).astype(np.int64)
