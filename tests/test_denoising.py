"""BART denoising: exactness of the vectorized pieces against the per-row reference, and statistics.

The vectorized ``bart_denoise`` and the per-row ``bart_denoise_reference`` read the random
generator differently, so they are compared in two ways: the deterministic pieces (span walk,
sentence reordering, insertion scatter) get the same random choices and must agree token for
token; the whole transforms get the same inputs and must agree in distribution. Statistical checks
use fixed seeds and 5-sigma bounds: a correct implementation fails one with probability well below
one in a million, while a wrong span-length law, a biased permutation or a miscount of inserts
misses by tens of sigmas.
"""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import numpy as np
import pytest

from es_zoo.errors import ObjectiveError
from es_zoo.objectives.denoising import (
    DenoisedBatch,
    _apply_sentence_order,
    _bart_denoise,
    _ceil_product,
    _distinct_draws,
    _draw_span_lengths,
    _mask_spans,
    _scatter,
    _sentence_ids,
    _sentence_ordering,
    bart_denoise,
    poisson_span_probabilities,
)
from es_zoo.objectives.reference import (
    _bart_denoise_reference,
    _reference_place,
    _reference_reorder,
    _reference_sentence_starts,
    _reference_span_walk,
    bart_denoise_reference,
)

BOS, PAD, EOS, MASK = 0, 1, 2, 3
RANDOM_IDS = np.arange(10, 20)  # disjoint from the body ids (>= 100), so a random token is visible
FIRST_BODY = 100
IMPLS = {"vectorized": _bart_denoise, "reference": _bart_denoise_reference}


def make_rows(rng, batch, length, *, word_density=0.75, sentence_rate=1 / 30):
    """Rows <s> body </s>, body ids unique within a row (100 + column), random word/sentence starts.

    A sentence starts only at a word start, as it would in text.
    """
    tokens = np.tile(np.arange(length, dtype=np.int64) + FIRST_BODY, (batch, 1))
    tokens[:, 0], tokens[:, -1] = BOS, EOS
    word_start = rng.random((batch, length)) < word_density
    word_start[:, [0, -1]] = True  # specials are word starts; the objective ignores them anyway
    sentence_start = word_start & (rng.random((batch, length)) < sentence_rate)
    return tokens, word_start, sentence_start


def run(impl, tokens, word_start, sentence_start, seed, **kwargs):
    trace: dict = {}
    out = IMPLS[impl](
        tokens, rng=np.random.default_rng(seed), word_start=word_start,
        sentence_start=sentence_start, mask_token_id=MASK, pad_token_id=PAD,
        random_token_ids=RANDOM_IDS, trace=trace,
        **{"mask_ratio": 0.3, "random_ratio": 0.1, "poisson_lambda": 3.5,
           "permute_sentence_ratio": 1.0, "insert_ratio": 0.0, **kwargs},
    )
    return out, trace


def ceil_exact(n, ratio) -> int:
    return math.ceil(Fraction(str(ratio)) * n)


def assert_same_mean(a, b, label):
    """Two-sample 5-sigma test on the means of independent samples."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    se = math.sqrt(a.var(ddof=1) / a.size + b.var(ddof=1) / b.size)
    assert se > 0, label
    z = (a.mean() - b.mean()) / se
    assert abs(z) < 5, (label, a.mean(), b.mean(), z)


def rows_of(out: DenoisedBatch):
    return [out.input_ids[b, : out.input_lengths[b]] for b in range(len(out.input_lengths))]


# --- the span-length distribution ---------------------------------------------------------------


def test_poisson_span_probabilities_follow_fairseq_truncation():
    p = poisson_span_probabilities(3.5)
    assert p.shape == (128,) and p.dtype == np.float64
    assert abs(p.sum() - 1) < 1e-12
    # fairseq keeps Poisson terms up to and including the first one below 1e-7.
    terms, k = [], 0
    while True:
        terms.append(math.exp(-3.5) * 3.5**k / math.factorial(k))
        if terms[-1] < 1e-7:
            break
        k += 1
    assert len(terms) == 19
    want = np.array(terms) / sum(terms)
    np.testing.assert_allclose(p[:19], want, rtol=1e-12)
    assert np.all(p[19:] == 0)
    # max_length caps the support.
    short = poisson_span_probabilities(3.5, max_length=5)
    assert short.shape == (5,)
    np.testing.assert_allclose(short, np.array(terms[:5]) / sum(terms[:5]), rtol=1e-12)
    # A large lambda: fairseq's cut would fall on k = 0; here it only applies past the mode.
    big = poisson_span_probabilities(30.0)
    assert big[0] > 0 and abs(big.sum() - 1) < 1e-12 and int(np.argmax(big)) in (29, 30)


@pytest.mark.parametrize("bad", [dict(poisson_lambda=0.0), dict(poisson_lambda=-1.0),
                                 dict(poisson_lambda=float("nan")),
                                 dict(poisson_lambda=float("inf")),
                                 dict(poisson_lambda=3.5, max_length=1)])
def test_poisson_span_probabilities_rejects_bad_settings(bad):
    with pytest.raises(ObjectiveError):
        poisson_span_probabilities(**bad)


@pytest.mark.parametrize("impl", IMPLS)
def test_drawn_span_lengths_follow_the_truncated_poisson(impl):
    # Pooled over rows, the draws up to and including the one that fills the budget are a
    # stopped i.i.d. sequence: by Wald's identities each bin count c_k has mean N p_k and variance
    # N p_k (1 - p_k), N the number of draws, exactly as if there were no stopping rule.
    tokens, ws, ss = make_rows(np.random.default_rng(1), 2500, 128)
    _, trace = run(impl, tokens, ws, ss, seed=2, permute_sentence_ratio=0.0)
    drawn = np.concatenate(trace["drawn"])
    n = drawn.size
    assert n > 15_000
    p = poisson_span_probabilities(3.5)
    counts = np.bincount(drawn, minlength=p.size)
    assert counts[p == 0].sum() == 0
    bins = [[k] for k in range(11)] + [list(range(11, p.size))]
    for ks in bins:
        pk = p[ks].sum()
        z = (counts[ks].sum() - n * pk) / math.sqrt(n * pk * (1 - pk))
        assert abs(z) < 5, (ks[0], counts[ks].sum() / n, pk)
    # In use, the draws are kept as they came except the last, which is cut to the budget.
    for drew, used in zip(trace["drawn"], trace["span_lengths"]):
        np.testing.assert_array_equal(drew[:-1], used[:-1])
        assert 1 <= used[-1] <= drew[-1]


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("ratio", [0.3, 0.15, 0.55])
def test_masked_words_add_up_to_ceil_of_words_times_ratio_exactly(impl, ratio):
    rng = np.random.default_rng(3)
    # 50 words * 0.3 is a float32 trap (fairseq's arithmetic), 100 words * 0.55 a float64 one.
    parts = [make_rows(rng, 150, length, word_density=d)
             for length, d in ((52, 1.0), (102, 1.0), (140, 0.75), (12, 0.4))]
    for tokens, ws, ss in parts:
        _, trace = run(impl, tokens, ws, ss, seed=4, mask_ratio=ratio)
        n_words = np.count_nonzero(ws[:, 1:-1], axis=1)
        np.testing.assert_array_equal(trace["n_words"], n_words)
        want = [ceil_exact(n, ratio) for n in n_words.tolist()]
        np.testing.assert_array_equal(trace["num_to_mask"], want)
        for b, spans in enumerate(trace["span_lengths"]):
            assert spans.sum() == want[b]
            assert np.count_nonzero(spans == 0) == trace["n_inserts"][b]
            assert np.count_nonzero(spans) == trace["n_spans"][b]
            assert spans.size == 0 or spans[-1] > 0
    # 50 words * 0.3: fairseq's float32 arithmetic says 16; the exact answer is 15.
    assert ceil_exact(50, 0.3) == 15


def test_ceil_product_is_exact_where_floating_point_is_not():
    n = np.arange(3000)
    for ratio in (0.3, 0.55, 0.1, 1 / 3, 0.15, 1.0, 0.0):
        want = [math.ceil(Fraction(str(ratio)) * k) for k in n.tolist()]
        np.testing.assert_array_equal(_ceil_product(n, ratio), want, err_msg=str(ratio))
    assert math.ceil(100 * 0.55) == 56  # what plain float64 would have said


def test_span_length_draws_read_further_when_the_first_block_falls_short():
    # Claiming a huge mean makes the first block of draws far too short for the budget.
    cdf = np.cumsum(poisson_span_probabilities(3.5))
    budget = np.array([0, 1, 40, 300])
    lengths, in_use, drawn = _draw_span_lengths(np.random.default_rng(5), budget, cdf,
                                                mean=1000.0, var=0.0)
    assert drawn.shape[1] > 20
    np.testing.assert_array_equal(lengths.sum(axis=1), budget)
    np.testing.assert_array_equal(np.count_nonzero(in_use, axis=1) > 0, budget > 0)
    assert np.all(lengths[~in_use] == 0)


# --- the vectorized pieces against the reference, given the same random choices -----------------


def test_span_walk_matches_the_reference_given_the_same_spans():
    rng = np.random.default_rng(6)
    for length, density in ((3, 1.0), (9, 0.5), (40, 0.75), (40, 0.2), (200, 0.9)):
        batch = 300
        tokens, ws, _ = make_rows(rng, batch, length, word_density=density)
        ws[::7, 1] = False  # bodies that open mid-word: those tokens belong to no word
        ws[::11, 1:-1] = False  # rows without a word
        n_words = np.count_nonzero(ws[:, 1:-1], axis=1)
        k = 8
        n_spans = np.minimum(rng.integers(0, k + 1, size=batch), n_words)
        active = np.arange(k)[None, :] < n_spans[:, None]
        start_word = _distinct_draws(rng, active, n_words)
        lengths = np.where(active, rng.integers(1, 9, size=(batch, k)), 0)  # overlaps, ends
        replacement = rng.integers(10, 20, size=(batch, k))
        got = tokens.copy()
        keep, n_replaced = _mask_spans(got, ws, start_word, lengths, replacement)
        for b in range(batch):
            is_word_start = ws[b].copy()
            is_word_start[[0, -1]] = False
            positions = np.flatnonzero(is_word_start)[start_word[b, active[b]] - 1]
            want, want_keep = _reference_span_walk(tokens[b], is_word_start, positions,
                                                   lengths[b, active[b]], replacement[b, active[b]])
            np.testing.assert_array_equal(keep[b], want_keep, err_msg=str(b))
            np.testing.assert_array_equal(got[b, keep[b]], want[want_keep], err_msg=str(b))
            assert n_replaced[b] == np.count_nonzero(want_keep[positions])
    # The walk did meet overlaps and spans running into </s>, so the comparison had teeth.
    assert np.any(~keep[:, -2])


def test_sentence_reordering_matches_the_reference_given_the_same_order():
    rng = np.random.default_rng(7)
    for length, rate, ratio in ((3, 0.5, 1.0), (20, 0.3, 1.0), (64, 0.1, 0.5), (64, 0.2, 0.0)):
        tokens, ws, ss = make_rows(rng, 200, length, sentence_rate=rate)
        sid = _sentence_ids(ss)
        ordering = _sentence_ordering(rng, sid[:, -1].astype(np.int64) + 1, ratio)
        got_tokens, got_ws = _apply_sentence_order(tokens, ws, sid, ordering)
        for b in range(len(tokens)):
            starts = _reference_sentence_starts(ss[b])
            n = len(starts)
            assert sorted(ordering[b, :n].tolist()) == list(range(n))
            want_tokens, want_ws = _reference_reorder(tokens[b], ws[b], starts, ordering[b, :n])
            np.testing.assert_array_equal(got_tokens[b], want_tokens)
            np.testing.assert_array_equal(got_ws[b], want_ws)  # word starts travel with tokens


def test_insertion_scatter_matches_the_reference_given_the_same_positions():
    rng = np.random.default_rng(8)
    batch, length = 300, 30
    tokens = rng.integers(100, 1000, size=(batch, length))
    keep = rng.random((batch, length)) < 0.6
    keep[:, [0, -1]] = True
    n_kept = np.count_nonzero(keep, axis=1)
    n_new = rng.integers(0, 12, size=batch)
    n_new[:5] = 0
    final = n_kept + n_new
    slots = np.arange(n_new.max())[None, :] < n_new[:, None]
    positions = _distinct_draws(rng, slots, final - 2)
    values = np.where(slots, rng.integers(3, 20, size=slots.shape), 0)
    out = _scatter(tokens, keep, positions, slots, values, final, PAD)
    assert out.shape == (batch, final.max())
    for b in range(batch):
        want = _reference_place(tokens[b, keep[b]], positions[b, slots[b]], values[b, slots[b]])
        np.testing.assert_array_equal(out[b, : final[b]], want)
        assert np.all(out[b, final[b]:] == PAD)


@pytest.mark.parametrize("max_rounds", [8, 0])
def test_distinct_draws_are_uniform_injections(max_rounds):
    # 3 entries into 1..5: all 60 injections equally likely, with the rejection rounds and with
    # the sort fallback alike (max_rounds=0 sends every colliding row to the fallback).
    n = 30_000
    active = np.zeros((n, 5), dtype=bool)
    active[:, [0, 2, 3]] = True
    got = _distinct_draws(np.random.default_rng(9), active, np.full(n, 5), max_rounds=max_rounds)
    assert np.all(got[:, [1, 4]] == 0)
    picks = got[:, [0, 2, 3]]
    assert np.all(np.sort(picks, axis=1)[:, 1:] != np.sort(picks, axis=1)[:, :-1])
    codes = (picks - 1) @ np.array([25, 5, 1])
    counts = np.bincount(codes, minlength=125)
    valid = [a * 25 + b * 5 + c for a, b, c in itertools.permutations(range(5), 3)]
    assert counts[valid].sum() == n
    p = 1 / 60
    assert np.all(np.abs(counts[valid] - n * p) < 5 * math.sqrt(n * p * (1 - p))), counts[valid]


def test_distinct_draws_fill_a_row_completely_and_stay_distinct_at_scale():
    rng = np.random.default_rng(10)
    full = _distinct_draws(rng, np.ones((50, 7), dtype=bool), np.full(50, 7))
    assert np.all(np.sort(full, axis=1) == np.arange(1, 8))
    active = np.arange(100)[None, :] < rng.integers(0, 101, size=(64, 1))
    upper = rng.integers(100, 800, size=64)
    got = _distinct_draws(rng, active, upper)
    for b in range(64):
        v = got[b, active[b]]
        assert np.unique(v).size == v.size
        assert v.size == 0 or (v.min() >= 1 and v.max() <= upper[b])


# --- the whole transform: framing, counts, reconstruction ---------------------------------------


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("settings", [{}, {"insert_ratio": 0.1}, {"random_ratio": 1.0},
                                      {"poisson_lambda": 0.5, "insert_ratio": 0.3}])
def test_framing_lengths_and_labels(impl, settings):
    tokens, ws, ss = make_rows(np.random.default_rng(11), 200, 77)
    before = (tokens.copy(), ws.copy(), ss.copy())
    out, trace = run(impl, tokens, ws, ss, seed=12, **settings)
    for arg, copy in zip((tokens, ws, ss), before):
        np.testing.assert_array_equal(arg, copy)  # no in-place edits
    assert out.input_ids.dtype == out.input_lengths.dtype == out.labels.dtype == np.int64
    np.testing.assert_array_equal(out.labels, tokens)
    assert out.input_ids.shape == (200, out.input_lengths.max())
    np.testing.assert_array_equal(out.input_lengths, np.count_nonzero(out.input_ids != PAD, axis=1))
    width = np.arange(out.input_ids.shape[1])
    assert np.all(out.input_ids[width[None, :] >= out.input_lengths[:, None]] == PAD)
    assert np.all(out.input_ids[:, 0] == BOS)
    assert np.all(out.input_ids[np.arange(200), out.input_lengths - 1] == EOS)
    for row in rows_of(out):
        assert np.count_nonzero(row == BOS) == 1 and np.count_nonzero(row == EOS) == 1
    np.testing.assert_array_equal(
        out.input_lengths, 77 - trace["n_deleted"] + trace["n_inserts"] + trace["n_extra"])
    if settings.get("insert_ratio"):
        masked_length = 77 - trace["n_deleted"] + trace["n_inserts"]
        np.testing.assert_array_equal(
            trace["n_extra"], [ceil_exact(m, settings["insert_ratio"]) for m in masked_length])
    if settings.get("random_ratio") == 1.0:
        assert not np.any(out.input_ids == MASK)
        n_random = np.count_nonzero(np.isin(out.input_ids, RANDOM_IDS), axis=1)
        np.testing.assert_array_equal(
            n_random, trace["n_replaced"] + trace["n_inserts"] + trace["n_extra"])


@pytest.mark.parametrize("impl", IMPLS)
def test_reconstruction_without_permutation(impl):
    # Body ids are unique per row, so each output token is either an original (at a known column)
    # or new (<mask> or a random id). The originals must come in order; between two consecutive
    # ones only new tokens may sit; a gap in the originals is whole words and holds at least the
    # <mask> (or random token) its first span left.
    tokens, ws, ss = make_rows(np.random.default_rng(13), 300, 90, word_density=0.6)
    out, trace = run(impl, tokens, ws, ss, seed=14, permute_sentence_ratio=0.0,
                     poisson_lambda=2.0, random_ratio=0.3)
    gaps = 0
    for b, row in enumerate(rows_of(out)):
        is_original = (row >= FIRST_BODY) | (row == BOS) | (row == EOS)
        column = np.where(row >= FIRST_BODY, row - FIRST_BODY, 0)
        column[row == EOS] = 89
        kept_at = np.flatnonzero(is_original)
        kept_col = column[kept_at]
        assert kept_col[0] == 0 and kept_col[-1] == 89
        assert np.all(np.diff(kept_col) > 0)
        new = row[~is_original]
        assert np.all((new == MASK) | np.isin(new, RANDOM_IDS))
        assert new.size == trace["n_replaced"][b] + trace["n_inserts"][b]
        for (a, ca), (z, cz) in zip(zip(kept_at, kept_col), zip(kept_at[1:], kept_col[1:])):
            if cz > ca + 1:  # columns ca+1 .. cz-1 were removed: whole words, and a mark left
                gaps += 1
                assert ws[b, ca + 1], (b, ca)
                assert ws[b, cz] or cz == 89, (b, cz)
                assert z - a >= 2, (b, ca, cz)
    assert gaps > 1000


@pytest.mark.parametrize("impl", IMPLS)
def test_zero_length_spans_become_extra_masks(impl):
    # lambda 0.2: most spans have 0 words, so the noised row is often longer than the original.
    tokens, ws, ss = make_rows(np.random.default_rng(15), 300, 12, word_density=1.0)
    out, trace = run(impl, tokens, ws, ss, seed=16, mask_ratio=1.0, poisson_lambda=0.2,
                     random_ratio=0.0, permute_sentence_ratio=0.0)
    n_mask = np.count_nonzero(out.input_ids == MASK, axis=1)
    np.testing.assert_array_equal(n_mask, trace["n_replaced"] + trace["n_inserts"])
    np.testing.assert_array_equal(out.input_lengths, 12 - trace["n_deleted"] + trace["n_inserts"])
    assert np.all(trace["num_to_mask"] == 10)
    assert np.mean(trace["n_inserts"] > 0) > 0.9
    assert np.any(out.input_lengths > 12) and out.input_ids.shape[1] > 12


@pytest.mark.parametrize("impl", IMPLS)
def test_insert_ratio_positions_are_uniform_inside_the_row(impl):
    # No masking, no permutation: ceil(12 * 0.1) = 2 new tokens among the 12 inner columns of a
    # 14-token row, each column new with chance 2/12; ceil(2 * 0.5) = 1 of them random.
    n = 6000
    tokens, ws, ss = make_rows(np.random.default_rng(17), n, 12)
    out, _ = run(impl, tokens, ws, ss, seed=18, mask_ratio=0.0, permute_sentence_ratio=0.0,
                 insert_ratio=0.1, random_ratio=0.5)
    assert np.all(out.input_lengths == 14)
    new = (out.input_ids == MASK) | np.isin(out.input_ids, RANDOM_IDS)
    assert np.all(np.count_nonzero(out.input_ids == MASK, axis=1) == 1)
    assert np.all(np.count_nonzero(np.isin(out.input_ids, RANDOM_IDS), axis=1) == 1)
    np.testing.assert_array_equal(out.input_ids[~new].reshape(n, 12), tokens)
    freq = new.sum(axis=0)
    assert freq[0] == freq[13] == 0
    p = 2 / 12
    assert np.all(np.abs(freq[1:13] - n * p) < 5 * math.sqrt(n * p * (1 - p))), freq
    # Which of the two is the random one is a fair coin, independent of the position.
    first_is_random = np.isin(out.input_ids[new].reshape(n, 2)[:, 0], RANDOM_IDS)
    assert abs(first_is_random.sum() - n / 2) < 5 * math.sqrt(n / 4)


# --- sentence permutation ------------------------------------------------------------------------


def three_sentence_rows(n):
    # <s> [a a a] [b b] [c] </s>: sentence lengths 3, 2, 1 tell the orders apart.
    tokens = np.tile(np.array([BOS, 101, 102, 103, 201, 202, 301, EOS]), (n, 1))
    ws = np.ones_like(tokens, dtype=bool)
    ss = np.zeros_like(ws)
    ss[:, [1, 4, 6]] = True
    return tokens, ws, ss


def sentence_order(row):
    return tuple(int(t) // 100 for t in row[1:-1] if t % 100 == 1)


@pytest.mark.parametrize("impl", IMPLS)
def test_full_permutation_is_uniform_over_orders(impl):
    n = 6000
    tokens, ws, ss = three_sentence_rows(n)
    out, _ = run(impl, tokens, ws, ss, seed=19, mask_ratio=0.0)
    assert np.all(out.input_lengths == 8)
    counts: dict = {}
    for row in out.input_ids:
        order = sentence_order(row)
        want = np.concatenate([[BOS]] + [tokens[0, {1: 1, 2: 4, 3: 6}[s]:{1: 4, 2: 6, 3: 7}[s]]
                                         for s in order] + [[EOS]])
        np.testing.assert_array_equal(row, want)  # whole sentences, <s> and </s> in place
        counts[order] = counts.get(order, 0) + 1
    assert sorted(counts) == sorted(itertools.permutations((1, 2, 3)))
    p = 1 / 6
    for order, c in counts.items():
        assert abs(c - n * p) < 5 * math.sqrt(n * p * (1 - p)), (order, c)


@pytest.mark.parametrize("impl", IMPLS)
def test_partial_permutation_swaps_ceil_n_p_sentences(impl):
    # 4 one-word sentences. p = 0.5 or 0.3: ceil(4p) = 2 chosen, swapped with chance 1/2, so the
    # row is unchanged half the time and each of the 6 pairs is swapped 1/12 of the time.
    # p = 0.25: one sentence chosen, which can only stay where it is.
    n = 6000
    tokens = np.tile(np.array([BOS, 101, 201, 301, 401, EOS]), (n, 1))
    ws = np.ones_like(tokens, dtype=bool)
    for p_perm in (0.5, 0.3):
        out, _ = run(impl, tokens, ws, ws, seed=20, mask_ratio=0.0, permute_sentence_ratio=p_perm)
        moved = out.input_ids[:, 1:-1] != tokens[:, 1:-1]
        n_moved = moved.sum(axis=1)
        assert set(n_moved.tolist()) == {0, 2}
        assert abs(np.count_nonzero(n_moved == 0) - n / 2) < 5 * math.sqrt(n / 4)
        pair = moved @ np.array([1, 2, 4, 8])
        for code in (3, 5, 6, 9, 10, 12):
            c = np.count_nonzero(pair == code)
            assert abs(c - n / 12) < 5 * math.sqrt(n / 12 * 11 / 12), (p_perm, code, c)
    out, _ = run(impl, tokens, ws, ws, seed=21, mask_ratio=0.0, permute_sentence_ratio=0.25)
    np.testing.assert_array_equal(out.input_ids, tokens)


@pytest.mark.parametrize("impl", IMPLS)
def test_no_permutation_and_no_masking_is_the_identity(impl):
    tokens, ws, ss = make_rows(np.random.default_rng(22), 50, 40, sentence_rate=0.3)
    out, _ = run(impl, tokens, ws, ss, seed=23, mask_ratio=0.0, permute_sentence_ratio=0.0)
    np.testing.assert_array_equal(out.input_ids, tokens)
    # Permutation alone keeps the multiset of sentences and moves something.
    out, _ = run(impl, tokens, ws, ss, seed=23, mask_ratio=0.0)
    for b, row in enumerate(out.input_ids):
        starts = _reference_sentence_starts(ss[b])
        ends = starts[1:] + [39]
        sentences = sorted(tuple(tokens[b, s:e]) for s, e in zip(starts, ends))
        cut = [1] + [i for i in range(2, 39) if (row[i] - FIRST_BODY) in starts] + [39]
        assert sorted(tuple(row[s:e]) for s, e in zip(cut[:-1], cut[1:])) == sentences
    assert not np.array_equal(out.input_ids, tokens)


# --- vectorized against reference, in distribution -----------------------------------------------


def test_vectorized_and_reference_agree_in_distribution():
    tokens, ws, ss = make_rows(np.random.default_rng(24), 2000, 96)
    stats = {}
    for impl in IMPLS:
        out, trace = run(impl, tokens, ws, ss, seed=25)
        stats[impl] = {
            "spans": trace["n_spans"],
            "inserts": trace["n_inserts"],
            "replaced": trace["n_replaced"],
            "removed or masked": (trace["n_deleted"] + trace["n_replaced"]) / 94,
            "length": out.input_lengths,
            "masks": np.count_nonzero(out.input_ids == MASK, axis=1),
            "random": np.count_nonzero(np.isin(out.input_ids, RANDOM_IDS), axis=1),
        }
    for key in stats["vectorized"]:
        assert_same_mean(stats["vectorized"][key], stats["reference"][key], key)
    # Inserts are rare (P(0) = e**-3.5 per span) but must show up in both.
    assert stats["vectorized"]["inserts"].sum() > 200 and stats["reference"]["inserts"].sum() > 200


def test_each_position_is_hit_as_often_as_in_the_reference():
    # One-token words, no permutation: ceil(20 * 0.3) = 6 of 20 words per row. A word is hit by a
    # span starting on it or a few words before it, so the first words are hit less often than
    # the rest; both implementations must have the same profile.
    n = 4000
    tokens = np.tile(np.arange(22) + FIRST_BODY, (n, 1))
    tokens[:, 0], tokens[:, -1] = BOS, EOS
    ws = np.ones_like(tokens, dtype=bool)
    hit = {}
    for impl in IMPLS:
        out, _ = run(impl, tokens, ws, ws, seed=26, permute_sentence_ratio=0.0)
        hit[impl] = np.zeros((n, 22), dtype=bool)
        for b, row in enumerate(rows_of(out)):
            survived = row[row >= FIRST_BODY] - FIRST_BODY
            hit[impl][b, 1:-1] = True
            hit[impl][b, survived] = False
    for col in range(1, 21):
        assert_same_mean(hit["vectorized"][:, col], hit["reference"][:, col], col)
    # Only a span starting on word 1 covers it; word 10 can be reached from words 1..10.
    rate = hit["vectorized"].mean(axis=0)
    assert rate[1] < rate[2] < rate[4] < rate[10]


# --- edge rows and bad input ---------------------------------------------------------------------


@pytest.mark.parametrize("impl", IMPLS)
def test_rows_without_words_are_left_alone(impl):
    tokens, ws, ss = make_rows(np.random.default_rng(27), 20, 30)
    ws[::2, 1:-1] = False
    out, trace = run(impl, tokens, ws, ss, seed=28, permute_sentence_ratio=0.0)
    np.testing.assert_array_equal(out.input_ids[::2, :30], tokens[::2])
    assert np.all(out.input_lengths[::2] == 30) and np.all(trace["num_to_mask"][::2] == 0)
    assert np.all(out.input_lengths[1::2] < 30)


@pytest.mark.parametrize("impl", IMPLS)
def test_shortest_rows(impl):
    tokens = np.tile(np.array([BOS, 150, EOS]), (500, 1))
    ws = np.ones_like(tokens, dtype=bool)
    out, trace = run(impl, tokens, ws, ws, seed=29)
    # ceil(1 * 0.3) = 1 word: the only word always goes.
    assert np.all(trace["num_to_mask"] == 1)
    assert not np.any(out.input_ids == 150)
    assert np.all(out.input_ids[:, 0] == BOS)
    empty = IMPLS[impl](np.zeros((0, 5), dtype=np.int64), rng=np.random.default_rng(0),
                        word_start=np.zeros((0, 5), bool), sentence_start=np.zeros((0, 5), bool),
                        mask_token_id=MASK, pad_token_id=PAD, random_token_ids=RANDOM_IDS,
                        mask_ratio=0.3, random_ratio=0.1, poisson_lambda=3.5,
                        permute_sentence_ratio=1.0, insert_ratio=0.1)
    assert empty.input_ids.shape == (0, 0) and empty.labels.shape == (0, 5)


def test_same_seed_same_noise_and_int32_input():
    tokens, ws, ss = make_rows(np.random.default_rng(30), 32, 64)
    kwargs = dict(word_start=ws, sentence_start=ss, mask_token_id=MASK, pad_token_id=PAD,
                  random_token_ids=RANDOM_IDS)
    a = bart_denoise(tokens, rng=np.random.default_rng(1), **kwargs)
    b = bart_denoise(tokens.astype(np.int32), rng=np.random.default_rng(1), **kwargs)
    c = bart_denoise(tokens, rng=np.random.default_rng(2), **kwargs)
    np.testing.assert_array_equal(a.input_ids, b.input_ids)
    assert b.input_ids.dtype == np.int64
    assert not np.array_equal(a.input_ids[:, :10], c.input_ids[:, :10])
    r = bart_denoise_reference(tokens, rng=np.random.default_rng(1), **kwargs)
    assert isinstance(r, DenoisedBatch) and r.labels.shape == tokens.shape
    np.testing.assert_array_equal(a.attention_mask().sum(axis=1), a.input_lengths)


def good_args():
    tokens, ws, ss = make_rows(np.random.default_rng(0), 2, 6)
    return dict(tokens=tokens, rng=np.random.default_rng(0), word_start=ws, sentence_start=ss,
                mask_token_id=MASK, pad_token_id=PAD, random_token_ids=RANDOM_IDS)


@pytest.mark.parametrize("fn", [bart_denoise, bart_denoise_reference])
@pytest.mark.parametrize("change,message", [
    (dict(tokens=np.array([[BOS, EOS]])), "nothing to corrupt"),
    (dict(tokens=np.zeros((2, 0), dtype=np.int64)), "nothing to corrupt"),
    (dict(tokens=np.array([BOS, 100, EOS])), "2-D integer"),
    (dict(tokens=np.zeros((2, 6))), "2-D integer"),
    (dict(word_start=np.ones((2, 5), dtype=bool)), "word_start must have the shape"),
    (dict(sentence_start=np.ones((3, 6), dtype=bool)), "sentence_start must have the shape"),
    (dict(word_start=np.ones((2, 6), dtype=np.int64)), "bool"),
    (dict(random_token_ids=np.array([], dtype=np.int64)), "non-empty"),
    (dict(random_token_ids=np.array([[10, 11]])), "non-empty 1-D"),
    (dict(mask_ratio=1.5), "mask_ratio"),
    (dict(random_ratio=-0.1), "random_ratio"),
    (dict(permute_sentence_ratio=float("nan")), "permute_sentence_ratio"),
    (dict(insert_ratio=2.0), "insert_ratio"),
    (dict(poisson_lambda=0.0), "poisson_lambda"),
    (dict(rng=np.random.RandomState(0)), "Generator"),
    (dict(mask_token_id=None), "mask_token_id"),
])
def test_rejects_bad_input(fn, change, message):
    args = {**good_args(), **change}
    with pytest.raises(ObjectiveError, match=message):
        fn(args.pop("tokens"), **args)
