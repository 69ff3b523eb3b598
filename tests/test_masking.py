"""Whole-word masking: exactness against Google's per-sequence loop, and its statistics.

Statistical checks use fixed seeds and 5-sigma bounds, so a correct implementation fails them with
probability well below one in a million while a biased one (say 85/10/5 instead of 80/10/10, or a
first-words-first order) fails them by tens of sigmas.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from es_zoo.objectives.masking import (
    MaskedBatch,
    _find_units,
    _greedy_select,
    _num_to_predict,
    whole_word_mask,
)

# A synthetic WordPiece vocabulary: 4 specials, 36 word-initial pieces, 20 "##" pieces.
PAD, CLS, SEP, MASK = 0, 1, 2, 3
V = 60
FIRST_WORD, FIRST_CONT = 4, 40
IS_SPECIAL = np.zeros(V, dtype=bool)
IS_SPECIAL[[PAD, CLS, SEP, MASK]] = True
IS_CONT = np.zeros(V, dtype=bool)
IS_CONT[FIRST_CONT:] = True

TABLES = dict(is_special=IS_SPECIAL, is_continuation=IS_CONT, pad_token_id=PAD)
MASKING = dict(TABLES, mask_token_id=MASK, vocab_size=V)


def random_batch(rng, batch, length, *, max_word=6, long_word_rate=0.03, pad=True):
    """Rows of [CLS] words [SEP] words [SEP] [PAD]...; words of 1..max_word pieces, a few longer."""
    rows = np.full((batch, length), PAD, dtype=np.int64)
    for r in range(batch):
        n = int(rng.integers(3, length + 1)) if pad else length
        row = [CLS]
        while len(row) < n - 1:
            if rng.random() < 0.03:
                row.append(SEP)
                continue
            long_word = rng.random() < long_word_rate
            k = int(rng.integers(8, 16)) if long_word else int(rng.integers(1, max_word + 1))
            row.append(int(rng.integers(FIRST_WORD, FIRST_CONT)))
            row.extend(int(x) for x in rng.integers(FIRST_CONT, V, size=k - 1))
        row = row[: n - 1] + [SEP]
        rows[r, : len(row)] = row
    return rows


def dense_batch(rng, batch, length, continuation_rate=0.4):
    """Unpadded [CLS] ... [SEP] rows, each inner piece a ## piece with continuation_rate."""
    cont = rng.random((batch, length)) < continuation_rate
    ids = np.where(cont, rng.integers(FIRST_CONT, V, size=(batch, length)),
                   rng.integers(FIRST_WORD, FIRST_CONT, size=(batch, length)))
    ids[:, 0], ids[:, -1] = CLS, SEP
    return ids


def reference_units(row, *, is_special, is_continuation, pad_token_id, whole_word=True):
    """Google's candidate units: lists of positions, a ## piece joining the word before it."""
    units, prev_in_word = [], False
    for i, t in enumerate(row.tolist()):
        if is_special[t] or (pad_token_id is not None and t == pad_token_id):
            prev_in_word = False
            continue
        if whole_word and prev_in_word and is_continuation[t]:
            units[-1].append(i)
        else:
            units.append([i])
        prev_in_word = True
    return units


def reference_select(row, keys, *, is_special, is_continuation, pad_token_id, mlm_probability,
                     max_predictions, whole_word=True):
    """create_masked_lm_predictions' selection loop for one row, visiting units by ascending key."""
    units = reference_units(row, is_special=is_special, is_continuation=is_continuation,
                            pad_token_id=pad_token_id, whole_word=whole_word)
    order = sorted(range(len(units)), key=lambda u: keys[u])  # stable, as the numpy side
    n_tokens = len(row) if pad_token_id is None else int(np.count_nonzero(row != pad_token_id))
    num_to_predict = min(max_predictions, max(1, int(round(n_tokens * mlm_probability))))
    masked, covered = [], set()
    for u in order:
        index_set = units[u]
        if len(masked) >= num_to_predict:
            break
        if len(masked) + len(index_set) > num_to_predict:
            continue
        if any(i in covered for i in index_set):
            continue
        covered.update(index_set)
        masked.extend(index_set)
    return sorted(masked)


def select_with_keys(ids, keys, *, mlm_probability, max_predictions, whole_word=True, **tables):
    units = _find_units(ids, tables["is_special"], tables["is_continuation"],
                        tables["pad_token_id"], whole_word)
    budget = _num_to_predict(units.n_tokens, mlm_probability, max_predictions)
    return _greedy_select(units, keys, budget)


def chosen_mask(batch: MaskedBatch) -> np.ndarray:
    chosen = np.zeros(batch.input_ids.shape, dtype=bool)
    valid = batch.masked_labels != -100
    chosen[np.nonzero(valid)[0], batch.masked_positions[valid]] = True
    return chosen


def mask(ids, seed=0, **kwargs):
    return whole_word_mask(ids, rng=np.random.default_rng(seed), **{**MASKING, **kwargs})


# --- exactness ------------------------------------------------------------------------------------


@pytest.mark.parametrize("whole_word", [True, False])
@pytest.mark.parametrize("mlm_probability,max_predictions",
                         [(0.15, 20), (0.15, 3), (0.4, 80), (1.0, 25)])
def test_selection_matches_googles_loop_given_the_same_order(
    whole_word, mlm_probability, max_predictions
):
    rng = np.random.default_rng(1234)
    for length in (7, 40, 97):
        ids = random_batch(rng, 48, length)
        # Keys drawn from {0..3} tie a lot: both sides must break ties left to right.
        distinct = rng.integers(0, 2**32, size=(48, length))
        for keys in (distinct, rng.integers(0, 4, size=(48, length))):
            got = select_with_keys(ids, keys, mlm_probability=mlm_probability,
                                   max_predictions=max_predictions, whole_word=whole_word,
                                   **TABLES)
            for r in range(len(ids)):
                want = reference_select(ids[r], keys[r], mlm_probability=mlm_probability,
                                        max_predictions=max_predictions, whole_word=whole_word,
                                        **TABLES)
                assert np.flatnonzero(got[r]).tolist() == want, (r, ids[r].tolist())


def test_skipped_long_word_lets_a_later_short_word_fill_the_budget():
    # [CLS] a ##b ##c d e ##f [SEP]: 8 tokens * 0.25 = 2. Visiting abc (3, skipped), ef (2, fits).
    ids = np.array([[CLS, 4, 40, 41, 5, 6, 42, SEP]])
    keys = np.array([[1, 9, 2, 0, 0, 0, 0, 0]])
    got = select_with_keys(ids, keys, mlm_probability=0.25, max_predictions=20, **TABLES)
    assert np.flatnonzero(got[0]).tolist() == [5, 6]
    # Same order but "d" before "ef": d fills one, ef no longer fits, nothing else does.
    keys = np.array([[1, 2, 9, 0, 0, 0, 0, 0]])
    got = select_with_keys(ids, keys, mlm_probability=0.25, max_predictions=20, **TABLES)
    assert np.flatnonzero(got[0]).tolist() == [4]


def test_edge_rows():
    ids = np.array([
        [PAD] * 8,                                   # all padding
        [CLS, SEP, PAD, PAD, PAD, PAD, PAD, PAD],     # no candidates
        [CLS, 40, 41, 4, 42, SEP, 43, PAD],           # ## after a special starts a word
        [CLS, 4, 40, 41, 42, 43, 44, SEP],            # one word longer than the budget
        [4, 5, 6, 7, 8, 9, 10, 11],                   # no specials at all
    ])
    units = _find_units(ids, IS_SPECIAL, IS_CONT, PAD, True)
    assert units.unit_of_token[2].tolist() == [-1, 0, 0, 1, 1, -1, 2, -1]
    assert units.n_units.tolist() == [0, 0, 3, 1, 8]
    out = mask(ids, mlm_probability=0.25)
    assert out.num_masked[[0, 1, 3, 4]].tolist() == [0, 0, 0, 2]
    assert 1 <= out.num_masked[2] <= 2
    for r, row in enumerate(ids):
        assert reference_units(row, **TABLES) == [
            np.flatnonzero(units.unit_of_token[r] == u).tolist() for u in range(units.n_units[r])
        ]


def test_empty_and_tiny_shapes():
    for shape in [(0, 5), (3, 0), (1, 1)]:
        out = mask(np.full(shape, 4, dtype=np.int64))
        assert out.input_ids.shape == shape
        assert out.masked_positions.shape == (shape[0], 20)
    assert mask(np.array([[7]])).num_masked.tolist() == [1]


def test_num_to_predict_rounds_like_python3_round():
    n = np.arange(0, 700)
    for p in (0.15, 0.1, 0.2, 0.25, 0.5, 1 / 3):
        for cap in (1, 20, 76, 1000):
            want = [min(cap, max(1, int(round(k * p)))) for k in n.tolist()]
            assert _num_to_predict(n, p, cap).tolist() == want


# --- invariants -----------------------------------------------------------------------------------


@pytest.mark.parametrize("whole_word", [True, False])
def test_count_is_num_to_predict_whenever_single_token_units_suffice(whole_word):
    rng = np.random.default_rng(7)
    ids = random_batch(rng, 400, 128, max_word=2)
    out = mask(ids, seed=8, whole_word=whole_word)
    n_tokens = np.count_nonzero(ids != PAD, axis=1)
    budget = np.minimum(20, np.maximum(1, np.rint(n_tokens * 0.15))).astype(int)
    singles = np.array([
        sum(len(u) == 1 for u in reference_units(r, whole_word=whole_word, **TABLES)) for r in ids
    ])
    counts = out.num_masked
    assert np.all(counts <= budget) and np.all(counts <= 20)
    enough = singles >= budget
    assert enough.mean() > 0.9  # the check below is not vacuous
    np.testing.assert_array_equal(counts[enough], budget[enough])


def test_never_exceeds_max_predictions_even_at_high_probability():
    ids = random_batch(np.random.default_rng(9), 200, 200, max_word=2)
    out = mask(ids, mlm_probability=0.9, max_predictions=30)
    assert out.masked_positions.shape == (200, 30)
    assert out.num_masked.max() == 30


def test_only_whole_words_and_never_specials_or_padding():
    rng = np.random.default_rng(11)
    ids = random_batch(rng, 300, 64)
    out = mask(ids, seed=12, mlm_probability=0.3)
    chosen = chosen_mask(out)
    assert not np.any(chosen & IS_SPECIAL[ids])
    assert not np.any(chosen & (ids == PAD))
    partial = 0
    for r in range(len(ids)):
        for unit in reference_units(ids[r], **TABLES):
            partial += 0 < chosen[r, unit].sum() < len(unit)
    assert partial == 0
    # Multi-piece words were masked, so the check above had something to check.
    assert np.any(chosen & IS_CONT[ids])


def test_labels_positions_and_untouched_tokens():
    ids = random_batch(np.random.default_rng(13), 100, 50)
    before = ids.copy()
    out = mask(ids, seed=14)
    np.testing.assert_array_equal(ids, before)  # no in-place edits
    assert out.input_ids.dtype == out.masked_positions.dtype == out.masked_labels.dtype == np.int64
    valid = out.masked_labels != -100
    rows = np.nonzero(valid)[0]
    np.testing.assert_array_equal(out.masked_labels[valid], ids[rows, out.masked_positions[valid]])
    assert np.all(out.masked_positions[~valid] == 0)
    # Valid slots come first and hold strictly ascending positions, as Google's sorted masked_lms.
    assert np.all(valid[:, :-1] >= valid[:, 1:])
    gaps = np.diff(out.masked_positions, axis=1)[valid[:, 1:]]
    assert np.all(gaps > 0)
    # Outside the chosen positions the corrupted copy equals the input.
    chosen = chosen_mask(out)
    np.testing.assert_array_equal(out.input_ids[~chosen], ids[~chosen])
    dense = out.dense_labels()
    np.testing.assert_array_equal(dense[chosen], ids[chosen])
    assert np.all(dense[~chosen] == -100)


def test_accepts_int32_input_and_returns_int64():
    ids = random_batch(np.random.default_rng(15), 10, 30).astype(np.int32)
    a, b = mask(ids, seed=1), mask(ids.astype(np.int64), seed=1)
    assert a.input_ids.dtype == np.int64
    np.testing.assert_array_equal(a.input_ids, b.input_ids)


def test_padding_does_not_count_towards_the_budget():
    padded = np.array([[CLS] + [4] * 8 + [SEP] + [PAD] * 10])
    assert mask(padded).num_masked.tolist() == [2]  # round(10 * 0.15) = round(1.5) = 2
    # Without a pad id all 20 tokens count (Google's len(tokens)); [PAD] is still never chosen.
    out = mask(padded, pad_token_id=None)
    assert out.num_masked.tolist() == [3]
    assert not np.any(chosen_mask(out) & (padded == PAD))


@pytest.mark.parametrize("bad", [
    dict(mlm_probability=1.5), dict(mask_replace_prob=-0.1), dict(random_replace_prob=1.1),
    dict(mask_replace_prob=0.8, random_replace_prob=0.3), dict(max_predictions=0),
    dict(vocab_size=0),
])
def test_rejects_bad_settings(bad):
    with pytest.raises(ValueError):
        mask(np.array([[CLS, 4, SEP]]), **bad)


def test_rejects_bad_inputs():
    with pytest.raises(ValueError, match="2-D integer"):
        mask(np.array([CLS, 4, SEP]))
    with pytest.raises(ValueError, match="2-D integer"):
        mask(np.array([[1.0, 4.0]]))
    with pytest.raises(ValueError, match="lookup tables"):
        mask(np.array([[CLS, V]]))
    with pytest.raises(ValueError, match="bool array"):
        mask(np.array([[CLS, 4]]), is_special=[False] * V)


# --- statistics -----------------------------------------------------------------------------------


def five_sigma(n, p):
    return 5 * np.sqrt(n * p * (1 - p))


@pytest.mark.parametrize("mask_p,random_p", [(0.8, 0.1), (0.5, 0.4), (0.0, 0.3)])
def test_replacement_proportions(mask_p, random_p):
    ids = dense_batch(np.random.default_rng(21), 2000, 128)
    out = mask(ids, seed=22, mask_replace_prob=mask_p, random_replace_prob=random_p)
    chosen = chosen_mask(out)
    new, old = out.input_ids[chosen], ids[chosen]
    n = new.size
    assert n > 30_000
    # A random draw can land on [MASK] or on the original id, each with chance 1/V.
    expected = {
        "mask": mask_p + random_p / V,
        "kept": (1 - mask_p - random_p) + random_p / V,
        "random": random_p * (1 - 2 / V),
    }
    observed = {
        "mask": np.count_nonzero(new == MASK),
        "kept": np.count_nonzero(new == old),
        "random": np.count_nonzero((new != MASK) & (new != old)),
    }
    for k, p in expected.items():
        assert abs(observed[k] - n * p) <= five_sigma(n, p) + 1e-9, (k, observed[k] / n, p)


def test_all_mask_when_asked():
    ids = random_batch(np.random.default_rng(23), 50, 64)
    out = mask(ids, mask_replace_prob=1.0, random_replace_prob=0.0)
    assert np.all(out.input_ids[chosen_mask(out)] == MASK)


def test_random_replacements_are_uniform_over_the_whole_vocabulary():
    ids = dense_batch(np.random.default_rng(31), 1500, 128)
    out = mask(ids, seed=32, mask_replace_prob=0.0, random_replace_prob=1.0)
    draws = out.input_ids[chosen_mask(out)]
    counts = np.bincount(draws, minlength=V)
    n = draws.size
    chi2 = ((counts - n / V) ** 2 / (n / V)).sum()
    df = V - 1
    assert chi2 < df + 5 * np.sqrt(2 * df), chi2
    assert np.all(counts[[PAD, CLS, SEP, MASK]] > 0)  # specials too, as Google's vocab_words


def test_dynamic_masking():
    ids = random_batch(np.random.default_rng(41), 64, 64)
    a, b, c = mask(ids, seed=1), mask(ids, seed=1), mask(ids, seed=2)
    for field in ("input_ids", "masked_positions", "masked_labels"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    assert not np.array_equal(a.masked_positions, c.masked_positions)
    # One generator threaded through successive calls re-draws the mask each epoch.
    rng = np.random.default_rng(3)
    first = whole_word_mask(ids, rng=rng, **MASKING)
    second = whole_word_mask(ids, rng=rng, **MASKING)
    assert not np.array_equal(first.masked_positions, second.masked_positions)


@pytest.mark.parametrize("whole_word", [True, False])
def test_every_word_has_the_same_chance_wherever_it_sits(whole_word):
    # 40 one-piece words: round(42 * 0.15) = 6 of them per row, each with chance 6/40.
    row = np.array([CLS] + list(range(FIRST_WORD, FIRST_WORD + 36)) + [4, 5, 6, 7] + [SEP])
    n = 20_000
    out = mask(np.tile(row, (n, 1)), seed=51, whole_word=whole_word)
    assert np.all(out.num_masked == 6)
    freq = chosen_mask(out).sum(axis=0)[1:-1]
    p = 6 / 40
    assert np.all(np.abs(freq - n * p) <= five_sigma(n, p)), freq


def test_words_of_equal_length_are_equally_likely_at_any_position():
    rng = np.random.default_rng(61)
    lengths = rng.permutation([1] * 12 + [2] * 8 + [3] * 6 + [5] * 3)
    row, starts = [CLS], []
    for k in lengths:
        starts.append(len(row))
        row += [FIRST_WORD] + [FIRST_CONT] * (k - 1)
    row.append(SEP)
    n = 20_000
    out = mask(np.tile(np.array(row), (n, 1)), seed=62, mlm_probability=0.2)
    freq = chosen_mask(out).sum(axis=0)[starts]
    for k in (1, 2, 3, 5):
        f = freq[lengths == k]
        p = f.mean() / n
        assert 0 < p < 1
        assert np.all(np.abs(f - n * p) <= five_sigma(n, p)), (k, f)


# --- real vocabulary ------------------------------------------------------------------------------

BETO_VOCAB = Path("/work/shared/data/beto/cased_2M/vocab.txt")


@pytest.mark.skipif(not BETO_VOCAB.exists(), reason="BETO vocabulary not available")
def test_whole_words_with_the_beto_tokenizer():
    from transformers import BertTokenizerFast

    # transformers 5 silently ignores vocab_file= here (a 5-token vocabulary); vocab= loads it.
    tok = BertTokenizerFast(vocab=str(BETO_VOCAB), do_lower_case=False)
    assert len(tok) == 31002
    vocab = tok.convert_ids_to_tokens(list(range(len(tok))))
    is_special = np.zeros(len(vocab), dtype=bool)
    is_special[tok.all_special_ids] = True
    is_cont = np.array([t.startswith("##") for t in vocab])
    text = ("El ornitorrinco desembarcó en Valparaíso, inesperadamente, con sus hermanos "
            "electroencefalografistas y anticonstitucionalísimos.")
    enc = tok(text)
    ids = np.tile(np.array(enc["input_ids"]), (300, 1))
    out = whole_word_mask(ids, rng=np.random.default_rng(71), is_special=is_special,
                          is_continuation=is_cont, mask_token_id=tok.mask_token_id,
                          vocab_size=len(vocab), pad_token_id=tok.pad_token_id,
                          mlm_probability=0.25)
    chosen = chosen_mask(out)
    word_ids = np.array([-1 if w is None else w for w in enc.word_ids()])
    assert not chosen[:, word_ids == -1].any()
    multi_piece_masked = 0
    for w in set(word_ids.tolist()) - {-1}:
        cols = word_ids == w
        per_row = chosen[:, cols].sum(axis=1)
        assert np.all((per_row == 0) | (per_row == cols.sum())), tok.decode(ids[0, cols])
        multi_piece_masked += int(cols.sum() > 1 and per_row.any())
    assert multi_piece_masked > 0
    budget = min(20, max(1, round(ids.shape[1] * 0.25)))
    assert out.num_masked.max() == budget
