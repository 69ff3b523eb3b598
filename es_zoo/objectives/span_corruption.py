"""T5's span-corruption objective, vectorized over the batch.

This follows the ``span_corruption`` preprocessor of T5
(google-research/text-to-text-transfer-transformer, ``t5/data/preprocessors.py``), the objective
of Raffel et al. (2020) that T5 and its Spanish descendants were pretrained with:

* a raw text of ``length`` tokens (no ``</s>`` yet) gets
  ``num_noise_tokens = round(length * noise_density)``, kept within ``[1, length - 1]``, and
  ``num_noise_spans = max(1, round(num_noise_tokens / mean_noise_span_length))``; Python's
  ``round`` rounds half to even, as ``tf.round`` does (T5 computes the product in float32, which
  could only differ on a product within float32's precision of ``k + 0.5``);
* the noise tokens and the kept tokens are each split into ``num_noise_spans`` non-empty spans, the
  split being a uniformly random composition (T5 shuffles ``num_spans - 1`` "a span starts here"
  flags among the ``num_items - 1`` gaps between items), and the spans alternate kept, noise, kept,
  noise..., so a mask always starts with a kept token and ends with a noise token, and every mask
  with those counts is equally likely;
* the inputs are the kept tokens with each noise span replaced by one sentinel; the targets are the
  noise tokens with each kept span replaced by one sentinel; both end with ``</s>``. Sentinels
  count down from ``<extra_id_0>``, the highest id in T5's vocabulary layout, so the k-th span
  (0-based) of each side gets ``sentinel_start_id - k``, and the sentinel in front of noise span k
  in the targets is the one that replaced it in the inputs.

Every row of a batch has the same raw length, hence the same counts, so every row's inputs and
targets have the same length: the whole batch is one boolean selection reshaped to a rectangle,
with no Python loop over examples. :func:`compute_input_and_target_lengths` says which raw length
yields a wanted inputs length (T5's ``random_spans_helper``): 568 raw tokens give 512 inputs and
114 targets at the paper's settings.

:func:`es_zoo.objectives.reference.span_corrupt_reference` is a plain per-example transcription of
the same steps; the tests check the vectorized code against it, and
``benchmarks/bench_span_corruption.py`` times it beside a nanoT5-shaped anchor
(``DataCollatorForT5MLM``'s algorithm).

Example:
    >>> import numpy as np
    >>> from es_zoo.objectives.span_corruption import (
    ...     compute_input_and_target_lengths, span_corrupt)
    >>> compute_input_and_target_lengths(512)
    (568, 114)
    >>> tokens = np.arange(100, 108)[None, :]       # one raw text of 8 tokens, no </s>
    >>> mask = np.array([[0, 0, 1, 1, 0, 0, 0, 1]], dtype=bool)
    >>> out = span_corrupt(tokens, rng=np.random.default_rng(0), eos_token_id=1,
    ...                    sentinel_start_id=32099, noise_mask=mask)
    >>> out.input_ids.tolist()                      # <extra_id_0> is 32099, <extra_id_1> 32098
    [[100, 101, 32099, 104, 105, 106, 32098, 1]]
    >>> out.labels.tolist()
    [[32099, 102, 103, 32098, 107, 1]]
    >>> batch = np.random.default_rng(1).integers(2, 32000, size=(4, 568))
    >>> out = span_corrupt(batch, rng=np.random.default_rng(0), eos_token_id=1,
    ...                    sentinel_start_id=32099)
    >>> out.input_ids.shape, out.labels.shape
    ((4, 512), (4, 114))
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from es_zoo.errors import ObjectiveError

__all__ = [
    "SpanCorruptedBatch",
    "compute_input_and_target_lengths",
    "noise_span_counts",
    "random_spans_noise_mask",
    "span_corrupt",
]


@dataclass
class SpanCorruptedBatch:
    """The output of :func:`span_corrupt`.

    Attributes:
        input_ids: ``(B, inputs_length)`` int64: the kept tokens, one sentinel in place of each
            noise span, then ``</s>``.
        labels: ``(B, targets_length)`` int64: one sentinel in place of each kept span, each
            followed by the noise span it precedes, then ``</s>``.
        noise_mask: ``(B, raw_length)`` bool, True on the tokens that were hidden from the encoder.

    Example:
        >>> b = SpanCorruptedBatch(np.array([[7, 99, 1]]), np.array([[99, 8, 1]]),
        ...                        np.array([[False, True]]))
        >>> b.input_ids.shape, b.labels.shape
        ((1, 3), (1, 3))
    """

    input_ids: np.ndarray
    labels: np.ndarray
    noise_mask: np.ndarray


def noise_span_counts(length: int, noise_density: float,
                      mean_noise_span_length: float) -> tuple[int, int]:
    """``(num_noise_tokens, num_noise_spans)`` for a raw text of ``length`` tokens, as T5 sets them.

    The noise count is kept within ``[1, length - 1]`` and the span count is at least 1, as in
    T5's ``random_spans_noise_mask``; whether the counts can actually be split into that many
    non-empty spans is checked when a mask is drawn.

    Example:
        >>> noise_span_counts(568, 0.15, 3.0)
        (85, 28)
        >>> noise_span_counts(10, 0.15, 3.0)  # 1.5 rounds to 2 (half to even), 2 / 3 to 1
        (2, 1)
    """
    _check_settings(noise_density, mean_noise_span_length)
    length = _check_length(length)
    num_noise_tokens = min(max(round(length * noise_density), 1), length - 1)
    num_noise_spans = max(round(num_noise_tokens / mean_noise_span_length), 1)
    return num_noise_tokens, num_noise_spans


def compute_input_and_target_lengths(inputs_length: int, noise_density: float = 0.15,
                                     mean_noise_span_length: float = 3.0) -> tuple[int, int]:
    """The raw length that span-corrupts to ``inputs_length`` tokens, and the targets' length.

    Both lengths count the final ``</s>``. This is T5's ``random_spans_helper`` with one sentinel
    per span on each side: starting from ``inputs_length - 1`` raw tokens, the raw length grows
    while one more token still fits the inputs; the first raw length that does not fit ends the
    search. The same quirk as T5 is kept at ``noise_density == 0.5``: when the targets come out
    longer than the inputs, both the raw length and the targets lose one token, so the targets
    match the (usually round) inputs length.

    Unlike :func:`noise_span_counts`, T5's helper does not clamp the counts; at the usual settings
    (lengths in the tens or more) the two agree, and the shapes :func:`span_corrupt` returns on the
    raw length are exactly ``(inputs_length, targets_length)``.

    Example:
        >>> compute_input_and_target_lengths(512)
        (568, 114)
        >>> compute_input_and_target_lengths(512, noise_density=0.5)  # 767 would give 513 targets
        (766, 512)
    """
    _check_settings(noise_density, mean_noise_span_length)
    if isinstance(inputs_length, bool) or not isinstance(inputs_length, (int, np.integer)):
        raise ObjectiveError(f"inputs_length must be an integer, got {inputs_length!r}")
    inputs_length = int(inputs_length)

    def lengths(raw: int) -> tuple[int, int]:
        # Unclamped, like T5's helper: inputs keep the non-noise tokens plus a sentinel per noise
        # span, targets the noise tokens plus a sentinel per kept span; both gain </s>.
        noise = round(raw * noise_density)
        spans = round(noise / mean_noise_span_length)
        return raw - noise + spans + 1, noise + spans + 1

    raw = inputs_length - 1
    while lengths(raw + 1)[0] <= inputs_length:
        raw += 1
    _, targets_length = lengths(raw)
    if noise_density == 0.5 and targets_length > inputs_length:
        raw -= 1
        targets_length -= 1
    if raw < 2:
        raise ObjectiveError(
            f"inputs_length={inputs_length} leaves room for {max(raw, 0)} raw token(s); span "
            f"corruption needs a text of at least 2 tokens (one kept token plus one noise span)"
        )
    return raw, targets_length


def random_spans_noise_mask(batch_size: int, length: int, *, rng: np.random.Generator,
                            noise_density: float = 0.15,
                            mean_noise_span_length: float = 3.0) -> np.ndarray:
    """Draw ``(batch_size, length)`` T5 noise masks at once, independently per row.

    Each row holds exactly ``num_noise_tokens`` True values in ``num_noise_spans`` runs (see
    :func:`noise_span_counts`), starts with a kept token and ends with a noise token; among the
    masks with those properties every one is equally likely.

    Example:
        >>> m = random_spans_noise_mask(3, 20, rng=np.random.default_rng(0))
        >>> m.shape, m.sum(axis=1).tolist(), bool(m[:, 0].any()), bool(m[:, -1].all())
        ((3, 20), [3, 3, 3], False, True)
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) \
            or batch_size < 0:
        raise ObjectiveError(f"batch_size must be a non-negative integer, got {batch_size!r}")
    batch_size = int(batch_size)
    num_noise, num_spans = _feasible_counts(length, noise_density, mean_noise_span_length)
    return _draw_masks(rng, batch_size, int(length), num_noise, num_spans)


def span_corrupt(tokens: np.ndarray, *, rng: np.random.Generator, eos_token_id: int,
                 sentinel_start_id: int, num_sentinels: int = 100, noise_density: float = 0.15,
                 mean_noise_span_length: float = 3.0,
                 noise_mask: np.ndarray | None = None) -> SpanCorruptedBatch:
    """Span-corrupt a batch of raw texts of equal length, T5-style, without a loop over rows.

    Args:
        tokens: ``(B, raw_length)`` integer ids of raw text, without ``</s>``; left unchanged.
        rng: the source of randomness for the noise masks (unused when ``noise_mask`` is given);
            a fresh state per batch gives dynamic corruption.
        eos_token_id: ``</s>``, appended to the inputs and to the labels.
        sentinel_start_id: the id of ``<extra_id_0>``; span k gets ``sentinel_start_id - k``.
        num_sentinels: how many sentinel ids the vocabulary has (T5: 100); a text that needs more
            spans is an error, never a silent reuse of ids.
        noise_density: the fraction of raw tokens to hide.
        mean_noise_span_length: the average length of a hidden span.
        noise_mask: ``(B, raw_length)`` bool to use instead of drawing one, for instance one drawn
            by the reference (:mod:`es_zoo.objectives.reference`). Any mask is accepted as long as
            every row gives inputs of one length and labels of one length; runs of True become
            sentinels in the inputs and runs of False sentinels in the labels, numbered per side
            in order, exactly as T5's
            ``noise_span_to_unique_sentinel`` / ``nonnoise_span_to_unique_sentinel`` do (so the
            two sides only pair up when a row starts with a kept token, as drawn masks do).

    Returns:
        A :class:`SpanCorruptedBatch`; for a drawn mask the widths are
        ``raw_length - num_noise_tokens + num_noise_spans + 1`` and
        ``num_noise_tokens + num_noise_spans + 1``.

    Raises:
        ObjectiveError: tokens that are not a 2-D integer array with at least one row and two
            columns, a sentinel range that collides with ``eos_token_id`` or falls below 0,
            settings whose spans need more than ``num_sentinels`` sentinels, or a ``noise_mask``
            of the wrong shape or type or whose rows would give outputs of different lengths.

    Example:
        >>> import numpy as np
        >>> tokens = np.arange(100, 120)[None, :]
        >>> out = span_corrupt(tokens, rng=np.random.default_rng(0), eos_token_id=1,
        ...                    sentinel_start_id=32099)
        >>> int(out.noise_mask.sum()), out.input_ids.shape, out.labels.shape  # 3 noise, 1 span
        (3, (1, 19), (1, 5))
        >>> bool(out.labels[0, 0] == 32099 and 32099 in out.input_ids[0])
        True
    """
    ids, mask, drawn = _prepare(tokens, rng, eos_token_id, sentinel_start_id, num_sentinels,
                                noise_density, mean_noise_span_length, noise_mask)
    batch, length = ids.shape

    # A noise token is dropped from the inputs when the token before it is noise too (the first
    # token of each noise run becomes the sentinel); a kept token is dropped from the labels when
    # the token before it is kept too. The first column always survives on both sides.
    prev, cur = mask[:, :-1], mask[:, 1:]
    keep_inputs = np.empty((batch, length), dtype=bool)
    keep_inputs[:, 0] = True
    np.logical_and(cur, prev, out=keep_inputs[:, 1:])
    np.logical_not(keep_inputs[:, 1:], out=keep_inputs[:, 1:])
    keep_labels = np.empty((batch, length), dtype=bool)
    keep_labels[:, 0] = True
    np.logical_or(cur, prev, out=keep_labels[:, 1:])

    if not drawn:
        _check_given_mask(mask, keep_inputs, keep_labels, num_sentinels)
    # Among the tokens a side keeps, the ones of the corrupted kind are exactly the first tokens
    # of their runs, i.e. the sentinel slots.
    input_ids = _assemble(ids, keep_inputs, mask, eos_token_id, sentinel_start_id,
                          sentinel_is_true=True)
    labels = _assemble(ids, keep_labels, mask, eos_token_id, sentinel_start_id,
                       sentinel_is_true=False)
    return SpanCorruptedBatch(input_ids, labels, mask)


# --- internals ------------------------------------------------------------------------------


def _check_settings(noise_density, mean_noise_span_length) -> None:
    # 1 is refused too: T5 would clamp it to all tokens but one, and the length search of
    # compute_input_and_target_lengths would never end for a long mean span.
    if not (isinstance(noise_density, (int, float, np.floating, np.integer))
            and 0.0 < noise_density < 1.0):
        raise ObjectiveError(f"noise_density must be in (0, 1), got {noise_density!r}")
    if not (isinstance(mean_noise_span_length, (int, float, np.floating, np.integer))
            and math.isfinite(mean_noise_span_length) and mean_noise_span_length > 0):
        raise ObjectiveError(
            f"mean_noise_span_length must be a positive number, got {mean_noise_span_length!r}"
        )


def _check_length(length) -> int:
    if isinstance(length, bool) or not isinstance(length, (int, np.integer)):
        raise ObjectiveError(f"length must be an integer, got {length!r}")
    if length < 2:
        raise ObjectiveError(
            f"a text of {length} token(s) is too short to span-corrupt: it needs at least 2 "
            f"(one kept token plus one noise span)"
        )
    return int(length)


def _feasible_counts(length, noise_density, mean_noise_span_length) -> tuple[int, int]:
    num_noise, num_spans = noise_span_counts(length, noise_density, mean_noise_span_length)
    num_kept = int(length) - num_noise
    # T5 would build a mask of the wrong length here (its segmentation assumes at least one item
    # per span); refuse instead.
    if num_spans > min(num_noise, num_kept):
        raise ObjectiveError(
            f"cannot split {length} tokens into {num_spans} noise spans and {num_spans} kept "
            f"spans: {num_noise} noise and {num_kept} kept tokens, and every span needs at least "
            f"one (noise_density={noise_density}, mean_noise_span_length="
            f"{mean_noise_span_length}); raise mean_noise_span_length or the length"
        )
    return num_noise, num_spans


def _check_sentinel_budget(num_spans, num_sentinels, length, noise_density,
                           mean_noise_span_length) -> None:
    if num_spans > num_sentinels:
        raise ObjectiveError(
            f"span corruption of {length} tokens (noise_density={noise_density}, "
            f"mean_noise_span_length={mean_noise_span_length}) makes {num_spans} spans per side "
            f"and needs {num_spans} sentinel ids, but num_sentinels={num_sentinels}; use shorter "
            f"texts, a longer mean_noise_span_length or a vocabulary with more sentinels"
        )


def _check_call(tokens, eos_token_id, sentinel_start_id, num_sentinels, noise_density,
                mean_noise_span_length, noise_mask):
    """Validate everything but the counts; return the ids and the given mask (or None)."""
    ids = np.asarray(tokens)
    if ids.ndim != 2 or not np.issubdtype(ids.dtype, np.integer):
        raise ObjectiveError(
            f"tokens must be a 2-D integer array (batch, raw_length), got {ids.dtype} {ids.shape}"
        )
    if ids.shape[0] == 0:
        raise ObjectiveError("tokens holds no rows; span corruption needs at least one text")
    _check_length(ids.shape[1])
    _check_settings(noise_density, mean_noise_span_length)
    for name, value in (("eos_token_id", eos_token_id), ("sentinel_start_id", sentinel_start_id),
                        ("num_sentinels", num_sentinels)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise ObjectiveError(f"{name} must be an integer, got {value!r}")
    if num_sentinels < 1:
        raise ObjectiveError(f"num_sentinels must be at least 1, got {num_sentinels}")
    lowest = sentinel_start_id - num_sentinels + 1
    if lowest < 0:
        raise ObjectiveError(
            f"{num_sentinels} sentinels counting down from sentinel_start_id={sentinel_start_id} "
            f"would reach negative ids; sentinel_start_id must be the id of <extra_id_0>"
        )
    if lowest <= eos_token_id <= sentinel_start_id:
        raise ObjectiveError(
            f"eos_token_id={eos_token_id} lies in the sentinel range [{lowest}, "
            f"{sentinel_start_id}]; </s> and <extra_id_*> must be different tokens"
        )
    if noise_mask is None:
        return ids, None
    mask = np.asarray(noise_mask)
    if mask.dtype != np.bool_ or mask.shape != ids.shape:
        raise ObjectiveError(
            f"noise_mask must be a bool array of the tokens' shape {ids.shape}, got "
            f"{mask.dtype} {mask.shape}"
        )
    return ids, mask


def _prepare(tokens, rng, eos_token_id, sentinel_start_id, num_sentinels, noise_density,
             mean_noise_span_length, noise_mask):
    ids, mask = _check_call(tokens, eos_token_id, sentinel_start_id, num_sentinels,
                            noise_density, mean_noise_span_length, noise_mask)
    if mask is not None:
        return ids, mask, False
    batch, length = ids.shape
    num_noise, num_spans = _feasible_counts(length, noise_density, mean_noise_span_length)
    _check_sentinel_budget(num_spans, num_sentinels, length, noise_density,
                           mean_noise_span_length)
    return ids, _draw_masks(rng, batch, length, num_noise, num_spans), True


def _random_compositions(rng: np.random.Generator, batch: int, total: int,
                         parts: int) -> np.ndarray:
    """``(batch, parts)`` positive integers summing to ``total`` per row, uniformly at random.

    A composition is fixed by which of the ``total - 1`` gaps between items start a new part;
    shuffling ``parts - 1`` start flags among the gaps (T5's procedure) picks that set uniformly.
    ``Generator.permuted`` shuffles every row independently in one call.
    """
    if parts == 1:
        return np.full((batch, 1), total, dtype=np.int64)
    gaps = total - 1
    flags = rng.permuted(np.broadcast_to(np.arange(gaps) < parts - 1, (batch, gaps)), axis=1)
    # flatnonzero walks row-major, so each row's cut positions come out ascending and every row
    # has exactly parts - 1 of them.
    cuts = np.flatnonzero(flags).reshape(batch, parts - 1) % gaps
    # Gap g separates items g and g + 1, so a cut there starts a part at item g + 1.
    return np.diff(cuts + 1, axis=1, prepend=0, append=total)


def _draw_masks(rng, batch, length, num_noise, num_spans) -> np.ndarray:
    noise_lengths = _random_compositions(rng, batch, num_noise, num_spans)
    kept_lengths = _random_compositions(rng, batch, length - num_noise, num_spans)
    runs = np.empty((batch, 2 * num_spans), dtype=np.int64)
    runs[:, 0::2] = kept_lengths
    runs[:, 1::2] = noise_lengths
    # Each row is kept run, noise run, kept run, ...: expanding one False/True per run by its
    # length writes the whole batch in a single pass, and the runs of a row sum to `length`.
    kinds = np.zeros(2 * num_spans * batch, dtype=bool)
    kinds[1::2] = True
    return np.repeat(kinds, runs.ravel()).reshape(batch, length)


def _check_given_mask(mask, keep_inputs, keep_labels, num_sentinels) -> None:
    for name, keep, spans in (("input_ids", keep_inputs, mask), ("labels", keep_labels, ~mask)):
        widths = np.count_nonzero(keep, axis=1)
        if np.any(widths != widths[0]):
            raise ObjectiveError(
                f"noise_mask gives {name} of different lengths across rows "
                f"({sorted(set(widths.tolist()))}); every row must have the same number of noise "
                f"tokens and of spans"
            )
        # Sentinel slots on this side: the first token of each run of `spans`.
        runs = np.count_nonzero(spans & keep, axis=1)
        if runs.max() > num_sentinels:
            raise ObjectiveError(
                f"noise_mask has a row with {int(runs.max())} spans to replace in {name}, which "
                f"needs {int(runs.max())} sentinel ids, but num_sentinels={num_sentinels}"
            )


def _assemble(ids, keep, mask, eos_token_id, sentinel_start_id, *, sentinel_is_true: bool):
    batch = ids.shape[0]
    body = ids[keep].reshape(batch, -1)
    width = body.shape[1]
    slots = mask[keep].reshape(batch, width)
    if not sentinel_is_true:
        np.logical_not(slots, out=slots)
    out = np.empty((batch, width + 1), dtype=np.int64)
    out[:, :width] = body
    out[:, width] = eos_token_id
    per_row = np.count_nonzero(slots, axis=1)
    if np.all(per_row == per_row[0]):
        # The usual case (always, for drawn masks): every row numbers the same k spans, and a
        # boolean assignment fills the slots row by row, left to right.
        k = int(per_row[0])
        out[:, :width][slots] = np.tile(sentinel_start_id - np.arange(k, dtype=np.int64), batch)
    else:
        numbers = np.cumsum(slots, axis=1)
        np.subtract(sentinel_start_id + 1, numbers, out=numbers)
        np.copyto(out[:, :width], numbers, where=slots)
    return out
