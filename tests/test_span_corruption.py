"""T5 span corruption: exact counts and lengths against T5's formulas, the layout of inputs and
labels, agreement with the per-example reference, and the distribution of span lengths.

Statistical checks use fixed seeds and 5-sigma bounds on binomial counts or on sample means whose
standard error is known (from the exact distribution) or estimated from thousands of rows, so a
correct implementation fails them with probability well below one in a million, while a biased
segmentation (say iid geometric spans, or spans filled left to right) misses by tens of sigmas.
"""

from __future__ import annotations

import doctest
import itertools
import math

import numpy as np
import pytest

from es_zoo.errors import ObjectiveError
from es_zoo.objectives import reference as oracle
from es_zoo.objectives import span_corruption as sc
from es_zoo.objectives.reference import span_corrupt_reference
from es_zoo.objectives.span_corruption import (
    SpanCorruptedBatch,
    compute_input_and_target_lengths,
    noise_span_counts,
    random_spans_noise_mask,
    span_corrupt,
)

EOS = 1
START = 32099  # <extra_id_0> in T5's 32100-token layout; <extra_id_99> is 32000
N_SENT = 100
IDS = dict(eos_token_id=EOS, sentinel_start_id=START)
IMPLS = [span_corrupt, span_corrupt_reference]


# --- direct transcriptions of T5's arithmetic (t5/data/preprocessors.py) ----------------------

def t5_counts(length, noise_density, mean_noise_span_length):
    """random_spans_noise_mask's counts (length already >= 2)."""
    num_noise_tokens = int(round(length * noise_density))
    num_noise_tokens = min(max(num_noise_tokens, 1), length - 1)
    num_noise_spans = int(round(num_noise_tokens / mean_noise_span_length))
    num_noise_spans = max(num_noise_spans, 1)
    return num_noise_tokens, num_noise_spans


def t5_helper(inputs_length, noise_density, mean_noise_span_length):
    """random_spans_helper with one extra token per span on each side."""
    def to_lengths(tokens_length):
        num_noise_tokens = int(round(tokens_length * noise_density))
        num_nonnoise_tokens = tokens_length - num_noise_tokens
        num_noise_spans = int(round(num_noise_tokens / mean_noise_span_length))
        return (num_nonnoise_tokens + num_noise_spans + 1, num_noise_tokens + num_noise_spans + 1)

    tokens_length = inputs_length - 1
    while to_lengths(tokens_length + 1)[0] <= inputs_length:
        tokens_length += 1
    inputs_length, targets_length = to_lengths(tokens_length)
    if noise_density == 0.5 and targets_length > inputs_length:
        tokens_length -= 1
        targets_length -= 1
    return tokens_length, targets_length


# --- helpers -----------------------------------------------------------------------------------

def raw_tokens(rng, batch, length, dtype=np.int64):
    """Ids below the sentinel block and never </s>, so sentinels can be told apart when parsing."""
    return rng.integers(2, 32000, size=(batch, length)).astype(dtype)


def run_lengths(mask):
    """(B, R) lengths of the runs of each row, for masks whose rows all have R runs."""
    B, L = mask.shape
    change = np.flatnonzero(mask[:, 1:] != mask[:, :-1])
    n_changes = change.size // B
    assert change.size == B * n_changes, "rows have different numbers of runs"
    pos = (change % (L - 1)).reshape(B, n_changes) + 1
    return np.diff(pos, axis=1, prepend=0, append=L)


def runs_of(row):
    return [(bool(k), len(list(g))) for k, g in itertools.groupby(row.tolist())]


def composition_pmf(n, m):
    """Exact P(part = k), k = 1..n-m+1, of a uniformly random composition of n into m parts."""
    if m == 1:
        return {n: 1.0}
    total = math.comb(n - 1, m - 1)
    return {k: math.comb(n - k - 1, m - 2) / total for k in range(1, n - m + 2)}


def moments(pmf):
    mean = sum(k * p for k, p in pmf.items())
    var = sum((k - mean) ** 2 * p for k, p in pmf.items())
    mu4 = sum((k - mean) ** 4 * p for k, p in pmf.items())
    return mean, var, mu4


def reference_masks(rng, batch, length, noise_density=0.15, mean_noise_span_length=3.0):
    num_noise, num_spans = noise_span_counts(length, noise_density, mean_noise_span_length)
    return np.stack([oracle._reference_row_mask(rng, length, num_noise, num_spans)
                     for _ in range(batch)])


def is_sentinel(ids):
    return (ids >= START - N_SENT + 1) & (ids <= START)


def decode(input_ids, labels):
    """Rebuild the raw text and its mask from one row of inputs and labels, by sentinel."""
    assert input_ids[-1] == EOS and labels[-1] == EOS
    inp, lab = input_ids[:-1].tolist(), labels[:-1].tolist()
    # Labels: sentinel, noise span, sentinel, noise span, ... (rows start with a kept span).
    noise_spans, current = {}, None
    for t in lab:
        if is_sentinel(np.int64(t)):
            current = t
            noise_spans[current] = []
        else:
            noise_spans[current].append(t)
    text, mask = [], []
    for t in inp:
        if is_sentinel(np.int64(t)):
            text += noise_spans.pop(t)
            mask += [True] * (len(text) - len(mask))
        else:
            text.append(t)
            mask.append(False)
    assert not noise_spans, "a labels sentinel with no matching inputs sentinel"
    return np.array(text), np.array(mask)


# --- documentation -----------------------------------------------------------------------------

def test_docstring_examples_run():
    result = doctest.testmod(sc, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 10 and result.failed == 0
    result = doctest.testmod(oracle, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted >= 6 and result.failed == 0


# --- counts and lengths ------------------------------------------------------------------------

def test_noise_span_counts_are_t5s():
    assert noise_span_counts(568, 0.15, 3.0) == (85, 28)
    # Half to even on both roundings, like tf.round: 10 * 0.25 = 2.5 -> 2, 9 / 2 = 4.5 -> 4.
    assert noise_span_counts(10, 0.25, 1.0) == (2, 2)
    assert noise_span_counts(60, 0.15, 2.0) == (9, 4)
    # The clamps: at least one noise token and span, at least one kept token.
    assert noise_span_counts(2, 0.01, 3.0) == (1, 1)
    assert noise_span_counts(5, 0.99, 1.0) == (4, 4)
    for length in range(2, 1200, 7):
        for density, mean in [(0.15, 3.0), (0.05, 2.0), (0.3, 8.0), (0.5, 3.0), (0.8, 1.5)]:
            assert noise_span_counts(length, density, mean) == t5_counts(length, density, mean)


def test_lengths_are_t5s():
    assert compute_input_and_target_lengths(512) == (568, 114)
    assert compute_input_and_target_lengths(512, 0.15, 3.0) == t5_helper(512, 0.15, 3.0)
    for inputs_length in [*range(3, 300), 512, 1024, 2048]:
        for density, mean in [(0.15, 3.0), (0.3, 3.0), (0.5, 3.0), (0.15, 8.0), (0.5, 2.0)]:
            assert (compute_input_and_target_lengths(inputs_length, density, mean)
                    == t5_helper(inputs_length, density, mean)), (inputs_length, density, mean)


@pytest.mark.parametrize("inputs_length", [128, 256, 512, 1024])
@pytest.mark.parametrize("density, mean", [(0.15, 3.0), (0.3, 3.0), (0.15, 8.0)])
def test_span_corrupting_the_derived_raw_length_gives_the_derived_shapes(inputs_length, density,
                                                                         mean):
    raw, targets = compute_input_and_target_lengths(inputs_length, density, mean)
    assert (raw, targets) == t5_helper(inputs_length, density, mean)
    tokens = raw_tokens(np.random.default_rng(0), 3, raw)
    for impl in IMPLS:
        # 1024 inputs at density 0.3 need 128 sentinels, more than T5's 100.
        out = impl(tokens, rng=np.random.default_rng(1), noise_density=density,
                   mean_noise_span_length=mean, num_sentinels=200, **IDS)
        assert out.input_ids.shape == (3, inputs_length)
        assert out.labels.shape == (3, targets)


def test_the_paper_lengths():
    raw, targets = compute_input_and_target_lengths(1024)
    assert raw > 1024 and (raw, targets) == t5_helper(1024, 0.15, 3.0)
    out = span_corrupt(raw_tokens(np.random.default_rng(0), 2, 568),
                       rng=np.random.default_rng(0), **IDS)
    assert out.input_ids.shape == (2, 512) and out.labels.shape == (2, 114)
    assert out.noise_mask.shape == (2, 568) and out.noise_mask.dtype == np.bool_


# --- masks: exact structure --------------------------------------------------------------------

SETTINGS = [(0.15, 3.0), (0.01, 3.0), (0.05, 1.0), (0.5, 3.0), (0.9, 1.0), (0.3, 10.0)]
LENGTHS = [2, 3, 4, 5, 7, 10, 33, 100, 568, 1000]


@pytest.mark.parametrize("length", LENGTHS)
@pytest.mark.parametrize("density, mean", SETTINGS)
def test_every_row_has_t5s_counts_and_interleaving(length, density, mean):
    num_noise, num_spans = t5_counts(length, density, mean)
    if num_spans > min(num_noise, length - num_noise):
        # T5 cannot split these counts into non-empty spans; es-zoo says so.
        with pytest.raises(ObjectiveError, match="cannot split"):
            random_spans_noise_mask(4, length, rng=np.random.default_rng(0),
                                    noise_density=density, mean_noise_span_length=mean)
        return
    rng = np.random.default_rng(length)
    masks = {
        "vectorized": random_spans_noise_mask(64, length, rng=rng, noise_density=density,
                                              mean_noise_span_length=mean),
        "reference": reference_masks(rng, 8, length, density, mean),
    }
    for name, mask in masks.items():
        assert mask.dtype == np.bool_ and mask.shape[1] == length, name
        assert np.all(mask.sum(axis=1) == num_noise), name
        assert not mask[:, 0].any() and mask[:, -1].all(), name  # kept first, noise last
        for row in mask:
            runs = runs_of(row)
            assert [kind for kind, _ in runs] == [False, True] * num_spans, (name, runs)
        # The overall noise ratio is exact, not just close.
        assert mask.sum() / mask.size == num_noise / length, name


def test_length_2_and_3_have_a_single_possible_mask():
    assert (random_spans_noise_mask(5, 2, rng=np.random.default_rng(0)).tolist()
            == [[False, True]] * 5)
    assert (random_spans_noise_mask(5, 3, rng=np.random.default_rng(0)).tolist()
            == [[False, False, True]] * 5)


def test_zero_rows():
    assert random_spans_noise_mask(0, 568, rng=np.random.default_rng(0)).shape == (0, 568)


def all_valid_masks(length, num_noise, num_spans):
    valid = []
    for bits in itertools.product([False, True], repeat=length):
        row = np.array(bits)
        if row.sum() == num_noise and [k for k, _ in runs_of(row)] == [False, True] * num_spans:
            valid.append(bits)
    return valid


@pytest.mark.parametrize("impl", ["vectorized", "reference"])
def test_every_valid_mask_is_equally_likely(impl):
    # 10 tokens, 4 noise in 2 spans: 5 ways to split the 6 kept tokens x 3 for the noise = 15.
    length, density, mean = 10, 0.4, 2.0
    assert t5_counts(length, density, mean) == (4, 2)
    valid = all_valid_masks(length, 4, 2)
    assert len(valid) == 15
    rng = np.random.default_rng(7)
    n = 30_000 if impl == "vectorized" else 6_000
    if impl == "vectorized":
        mask = random_spans_noise_mask(n, length, rng=rng, noise_density=density,
                                       mean_noise_span_length=mean)
    else:
        mask = reference_masks(rng, n, length, density, mean)
    codes = mask.astype(np.int64) @ (1 << np.arange(length))
    counts = np.bincount(codes, minlength=1 << length)
    valid_codes = [int(np.array(v, dtype=np.int64) @ (1 << np.arange(length))) for v in valid]
    assert counts.sum() == counts[valid_codes].sum()  # nothing outside the valid set
    p = 1 / len(valid)
    sigma = math.sqrt(n * p * (1 - p))
    assert np.all(np.abs(counts[valid_codes] - n * p) <= 5 * sigma), counts[valid_codes]


# --- masks: span-length distribution -----------------------------------------------------------

RAW = 568  # T5's paper length: 85 noise tokens and 483 kept tokens, each in 28 spans


@pytest.fixture(scope="module")
def span_lengths():
    """(kept, noise) run lengths, (B, 28) each, from both implementations."""
    rng = np.random.default_rng(2024)
    out = {}
    for name, mask in (("vectorized", random_spans_noise_mask(20_000, RAW, rng=rng)),
                       ("reference", reference_masks(rng, 3_000, RAW))):
        runs = run_lengths(mask)
        out[name] = (runs[:, 0::2], runs[:, 1::2])
    return out


def check_pmf(sample, pmf, label):
    n = sample.size
    counts = np.bincount(sample, minlength=max(pmf) + 1)
    big = [k for k, p in pmf.items() if n * p >= 100]  # bins where 5 sigma is a sound bound
    assert big, label
    rest_p = 1 - sum(pmf[k] for k in big)
    rest_count = n - counts[big].sum()
    for k, observed, p in [*((k, counts[k], pmf[k]) for k in big), ("rest", rest_count, rest_p)]:
        if n * p < 100 and k == "rest":
            assert observed <= n * p + 5 * math.sqrt(n * p) + 10, (label, k, observed, n * p)
            continue
        sigma = math.sqrt(n * p * (1 - p))
        assert abs(observed - n * p) <= 5 * sigma, (label, k, observed, n * p)


@pytest.mark.parametrize("impl", ["vectorized", "reference"])
@pytest.mark.parametrize("side", ["kept", "noise"])
def test_span_lengths_follow_a_uniform_random_composition(span_lengths, impl, side):
    kept, noise = span_lengths[impl]
    runs = kept if side == "kept" else noise
    n_items, m = (483, 28) if side == "kept" else (85, 28)
    assert np.all(runs.sum(axis=1) == n_items) and np.all(runs >= 1)
    pmf = composition_pmf(n_items, m)
    assert math.isclose(sum(pmf.values()), 1.0)
    mean, var, mu4 = moments(pmf)
    assert math.isclose(mean, n_items / m)
    # Every part of a uniform composition has the same law: the first, a middle and the last span.
    for index in (0, m // 2, m - 1):
        x = runs[:, index]
        check_pmf(x, pmf, (impl, side, index))
        n = x.size
        assert abs(x.mean() - mean) <= 5 * math.sqrt(var / n), (impl, side, index, x.mean())
        var_se = math.sqrt((mu4 - var**2) / n)
        assert abs(x.var() - var) <= 5 * var_se, (impl, side, index, x.var(), var)
    # The spread of span lengths within a row (their mean is exactly n/m by construction).
    within = ((runs - n_items / m) ** 2).mean(axis=1)
    se = within.std(ddof=1) / math.sqrt(within.size)
    assert abs(within.mean() - var) <= 5 * se, (impl, side, within.mean(), var)


@pytest.mark.parametrize("side", ["kept", "noise"])
def test_vectorized_and_reference_span_lengths_agree(span_lengths, side):
    i = 0 if side == "kept" else 1
    vec, ref = span_lengths["vectorized"][i], span_lengths["reference"][i]
    for index in (0, vec.shape[1] // 2):
        a, b = vec[:, index].astype(float), ref[:, index].astype(float)
        se = math.sqrt(a.var() / a.size + b.var() / b.size)
        assert abs(a.mean() - b.mean()) <= 5 * se, (side, index, a.mean(), b.mean())

        def var_se(x):
            c = x - x.mean()
            return ((c**4).mean() - x.var() ** 2) / x.size

        assert abs(a.var() - b.var()) <= 5 * math.sqrt(var_se(a) + var_se(b)), (side, index)
    wa = vec.var(axis=1)
    wb = ref.var(axis=1)
    se = math.sqrt(wa.var() / wa.size + wb.var() / wb.size)
    assert abs(wa.mean() - wb.mean()) <= 5 * se, (side, wa.mean(), wb.mean())


# --- inputs and labels ----------------------------------------------------------------------------

@pytest.mark.parametrize("impl", IMPLS, ids=["vectorized", "reference"])
@pytest.mark.parametrize("length", [2, 3, 20, 128, 568, 1137])
@pytest.mark.parametrize("dtype", [np.int64, np.int32])
def test_sentinel_order_and_exact_reconstruction(impl, length, dtype):
    rng = np.random.default_rng(length)
    tokens = raw_tokens(rng, 16, length, dtype)
    before = tokens.copy()
    out = impl(tokens, rng=rng, **IDS)
    assert isinstance(out, SpanCorruptedBatch)
    np.testing.assert_array_equal(tokens, before)  # the caller's array is untouched
    num_noise, num_spans = t5_counts(length, 0.15, 3.0)
    assert out.input_ids.dtype == np.int64 and out.labels.dtype == np.int64
    assert out.input_ids.shape == (16, length - num_noise + num_spans + 1)
    assert out.labels.shape == (16, num_noise + num_spans + 1)
    expected_sentinels = START - np.arange(num_spans)
    for b in range(16):
        inp, lab = out.input_ids[b], out.labels[b]
        # Sentinels count down from <extra_id_0>, the same ones in the same order on both sides,
        # and the labels open with one.
        np.testing.assert_array_equal(inp[is_sentinel(inp)], expected_sentinels)
        np.testing.assert_array_equal(lab[is_sentinel(lab)], expected_sentinels)
        assert lab[0] == START
        assert inp[-1] == EOS and lab[-1] == EOS and EOS not in inp[:-1] and EOS not in lab[:-1]
        # The target always reconstructs the source.
        text, mask = decode(inp, lab)
        np.testing.assert_array_equal(text, tokens[b])
        np.testing.assert_array_equal(mask, out.noise_mask[b])
    # Kept tokens in order in the inputs, noise tokens in order in the labels.
    keep = ~is_sentinel(out.input_ids[:, :-1])
    np.testing.assert_array_equal(out.input_ids[:, :-1][keep], tokens[~out.noise_mask])
    noise = ~is_sentinel(out.labels[:, :-1])
    np.testing.assert_array_equal(out.labels[:, :-1][noise], tokens[out.noise_mask])


def test_explicit_example():
    tokens = np.array([[10, 11, 12, 13, 14, 15, 16, 17],
                       [20, 21, 22, 23, 24, 25, 26, 27]])
    mask = np.array([[0, 0, 1, 1, 0, 0, 0, 1],
                     [0, 1, 0, 0, 1, 1, 0, 1]], dtype=bool)
    expected_inputs = [[10, 11, START, 14, 15, 16, START - 1, EOS],
                       [20, START, 22, 23, START - 1, 26, START - 2, EOS]]
    expected_labels = [[START, 12, 13, START - 1, 17, EOS],
                       [START, 21, START - 1, 24, 25, START - 2, 27, EOS]]
    # The rows differ in width, so only one row at a time is rectangular.
    for b in range(2):
        for impl in IMPLS:
            out = impl(tokens[b:b + 1], rng=np.random.default_rng(0), noise_mask=mask[b:b + 1],
                       **IDS)
            assert out.input_ids.tolist() == [expected_inputs[b]]
            assert out.labels.tolist() == [expected_labels[b]]


def test_same_mask_same_arrays_as_the_reference():
    rng = np.random.default_rng(5)
    tokens = raw_tokens(rng, 64, 568)
    ref = span_corrupt_reference(tokens, rng=rng, **IDS)
    vec = span_corrupt(tokens, rng=rng, noise_mask=ref.noise_mask, **IDS)
    for field in ("input_ids", "labels", "noise_mask"):
        np.testing.assert_array_equal(getattr(vec, field), getattr(ref, field))
    vec = span_corrupt(tokens, rng=rng, **IDS)
    ref = span_corrupt_reference(tokens, rng=rng, noise_mask=vec.noise_mask, **IDS)
    for field in ("input_ids", "labels", "noise_mask"):
        np.testing.assert_array_equal(getattr(vec, field), getattr(ref, field))
    assert not np.array_equal(vec.noise_mask, span_corrupt(tokens, rng=rng, **IDS).noise_mask)


def test_masks_t5_never_draws_are_handled_like_t5s_functions():
    rng = np.random.default_rng(6)
    tokens = raw_tokens(rng, 32, 100)
    # Mirrored masks start with noise and end with a kept token (as T5's random_roll can).
    mirrored = random_spans_noise_mask(32, 100, rng=rng)[:, ::-1]
    # Rows with different span counts but equal widths: inputs and labels are both 4 long + </s>.
    uneven = np.array([[1, 0, 0, 1, 1], [0, 0, 1, 1, 0]], dtype=bool)
    for tok, mask in ((tokens, mirrored), (tokens[:2, :5], uneven)):
        vec = span_corrupt(tok, rng=rng, noise_mask=mask, **IDS)
        ref = span_corrupt_reference(tok, rng=rng, noise_mask=mask, **IDS)
        np.testing.assert_array_equal(vec.input_ids, ref.input_ids)
        np.testing.assert_array_equal(vec.labels, ref.labels)
    t = tokens[:2, :5]
    assert vec.input_ids.tolist() == [[START, t[0, 1], t[0, 2], START - 1, EOS],
                                      [t[1, 0], t[1, 1], START, t[1, 4], EOS]]
    assert vec.labels.tolist() == [[t[0, 0], START, t[0, 3], t[0, 4], EOS],
                                   [START, t[1, 2], t[1, 3], START - 1, EOS]]


def test_same_seed_same_batch_and_fresh_draws_differ():
    tokens = raw_tokens(np.random.default_rng(0), 8, 568)
    a = span_corrupt(tokens, rng=np.random.default_rng(3), **IDS)
    b = span_corrupt(tokens, rng=np.random.default_rng(3), **IDS)
    np.testing.assert_array_equal(a.input_ids, b.input_ids)
    np.testing.assert_array_equal(a.labels, b.labels)
    rng = np.random.default_rng(3)
    c, d = (span_corrupt(tokens, rng=rng, **IDS) for _ in range(2))
    assert not np.array_equal(c.noise_mask, d.noise_mask)
    # Rows of one batch get independent masks.
    assert len({row.tobytes() for row in c.noise_mask}) == 8


def test_tokens_that_already_hold_sentinel_ids_are_passed_through():
    tokens = np.full((2, 40), START, dtype=np.int64)
    for impl in IMPLS:
        out = impl(tokens, rng=np.random.default_rng(0), **IDS)
        assert out.input_ids.shape == (2, 40 - 6 + 2 + 1)


def test_fewest_sentinels_that_suffice():
    tokens = raw_tokens(np.random.default_rng(0), 2, 568)
    for impl in IMPLS:
        out = impl(tokens, rng=np.random.default_rng(0), num_sentinels=28, **IDS)
        assert out.input_ids.shape == (2, 512)
    # eos just below the sentinel block is fine.
    span_corrupt(tokens, rng=np.random.default_rng(0), eos_token_id=START - N_SENT,
                 sentinel_start_id=START)


# --- bad input ---------------------------------------------------------------------------------

@pytest.mark.parametrize("impl", IMPLS, ids=["vectorized", "reference"])
def test_rejects_bad_input(impl):
    rng = np.random.default_rng(0)
    tokens = raw_tokens(rng, 2, 568)

    def call(tok=tokens, **kw):
        args = dict(IDS, rng=np.random.default_rng(0))
        args.update(kw)
        return impl(tok, **args)

    with pytest.raises(ObjectiveError, match=r"needs 28 sentinel ids.*num_sentinels=27"):
        call(num_sentinels=27)
    many = np.zeros((2, 20), dtype=bool)
    many[:, 1::2] = True  # 10 noise spans and 10 kept spans per row
    with pytest.raises(ObjectiveError, match="needs 10 sentinel ids"):
        call(tokens[:, :20], noise_mask=many, num_sentinels=9)
    for short in (tokens[:, :1], tokens[:, :0]):
        with pytest.raises(ObjectiveError, match="too short"):
            call(short)
    for bad in (tokens[0], tokens[None], tokens.astype(float), tokens.astype(bool)):
        with pytest.raises(ObjectiveError, match="2-D integer"):
            call(bad)
    with pytest.raises(ObjectiveError, match="no rows"):
        call(tokens[:0])
    for eos in (START, START - N_SENT + 1, START - 50):
        with pytest.raises(ObjectiveError, match="sentinel range"):
            call(eos_token_id=eos)
    with pytest.raises(ObjectiveError, match="negative ids"):
        call(sentinel_start_id=50)
    with pytest.raises(ObjectiveError, match="num_sentinels"):
        call(num_sentinels=0)
    with pytest.raises(ObjectiveError, match="noise_mask must be a bool array"):
        call(noise_mask=np.zeros((2, 567), dtype=bool))
    with pytest.raises(ObjectiveError, match="noise_mask must be a bool array"):
        call(noise_mask=np.zeros((2, 568), dtype=np.int64))
    ragged = np.zeros((2, 568), dtype=bool)
    ragged[0, -3:] = True
    ragged[1, -4:] = True
    with pytest.raises(ObjectiveError, match="different lengths across rows"):
        call(noise_mask=ragged)
    for density in (0.0, -0.1, 1.0, 1.5, float("nan")):
        with pytest.raises(ObjectiveError, match="noise_density"):
            call(noise_density=density)
    for mean in (0.0, -1.0, float("inf")):
        with pytest.raises(ObjectiveError, match="mean_noise_span_length"):
            call(mean_noise_span_length=mean)
    with pytest.raises(ObjectiveError, match="cannot split"):
        call(tokens[:, :3], noise_density=0.9, mean_noise_span_length=1.0)


def test_rejects_bad_settings_in_the_helpers():
    with pytest.raises(ObjectiveError, match="too short"):
        noise_span_counts(1, 0.15, 3.0)
    with pytest.raises(ObjectiveError, match="too short"):
        random_spans_noise_mask(2, 1, rng=np.random.default_rng(0))
    with pytest.raises(ObjectiveError, match="batch_size"):
        random_spans_noise_mask(-1, 10, rng=np.random.default_rng(0))
    with pytest.raises(ObjectiveError, match="at least 2 tokens"):
        compute_input_and_target_lengths(1)
    with pytest.raises(ObjectiveError, match="inputs_length must be an integer"):
        compute_input_and_target_lengths(512.0)
    with pytest.raises(ObjectiveError, match="noise_density"):
        compute_input_and_target_lengths(512, noise_density=0.0)
