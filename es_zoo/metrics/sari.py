"""SARI, the text-simplification metric of Xu et al. (2016), "Optimizing Statistical Machine Translation
for Text Simplification" (TACL 4), in percent.

SARI compares a system output with its source sentence *and* with the references, n-gram order by
order (n = 1..4), and rewards three operations:

- **add**: n-grams of the output that are not in the source; F1 of those that some reference also has
  (types, not counts: a set comparison);
- **keep**: n-grams of the source that the output keeps; F1 against the source n-grams the references
  keep. Counts of the source and of the output are multiplied by the number of references, so an
  n-gram kept by only some references earns partial credit;
- **delete**: n-grams of the source that the output drops; **precision only** (the fraction not in the
  references), as in the paper and in both reference implementations.

For each operation the four orders are averaged; a sentence scores ``(add + keep + delete) / 3``; the
corpus score is the **mean of the sentence scores** (``add``, ``keep`` and ``delete`` are averaged over
sentences the same way). Tokens are the text split on single spaces (``str.split(" ")``), as both
reference implementations do it, after the optional lower-casing and tokenization.

Two reference implementations, two definitions (``variant``)
-------------------------------------------------------------
``variant="evaluate"`` (the default) is the SARI of Hugging Face ``evaluate`` (``metrics/sari``, taken
from tensor2tensor's ``sari_hook.py``); ``variant="original"`` is the authors' ``SARI.py``
(github.com/cocoxu/simplification). They use the same n-grams and the same reference-count
weighting but differ in two places:

1. **Empty sets (0/0).** When an operation has nothing to score at some order (the output keeps no
   source n-gram, deletes none, adds none; or a sentence is shorter than n tokens, so it has no n-grams of
   that order), the original sets that precision or recall to 0, ``evaluate`` to 1. So under
   ``"original"`` a sentence of fewer than 4 tokens can never score 100 (the higher orders are 0; see
   cocoxu/simplification issue #17), and a copy of the source gets delete = 0; under ``"evaluate"`` a
   perfect output scores 100, and sentences of 1-3 tokens get free credit at the missing orders.
2. **Keep recall.** The original averages, over the source n-gram *types* that the references keep, the
   ratio kept-by-the-output / kept-by-the-references; ``evaluate`` divides the summed counts
   (kept by both) by the summed counts (kept by the references), i.e. Eq. 5 of the paper as read in
   cocoxu/simplification issue #6 (still open; ``evaluate`` calls the original an "alleged bug"). The
   two agree when the references keep every such n-gram the same number of times (for instance one
   reference and no repeated n-grams) and drift apart with several references that keep different
   parts of the source. Keep precision is the same per-type average in both.

Both compute a deletion recall that they never use (the original's has a typo, summing the precision
numerator); here it is not computed. Apart from 1. and 2. the formulas are the same in both: n = 1..4,
the same n-gram extraction, counts of source and output multiplied by the number of references, add on
n-gram types, delete precision only, the four orders and the three operations averaged with equal
weights.

Pre-processing: the original always lower-cases (``str.lower()``) and splits on spaces, so it expects
pre-tokenized text; ``evaluate`` lower-cases and runs sacreBLEU's ``13a`` tokenizer first (the EASSE
convention), then splits on spaces. Here ``lowercase`` and ``tokenize`` choose that step for either
variant:

- ``sari(...)`` (``variant="evaluate", tokenize="13a", lowercase=True``) reproduces ``evaluate``'s
  ``sari.compute(...)`` exactly (same floats, in the same order of operations);
- ``sari(..., variant="original", tokenize="none")`` reproduces ``SARIsent`` of ``SARI.py`` averaged over
  the sentences exactly. The original cannot switch lower-casing off, so ``lowercase=False`` matches it
  only on text that is already lower case.
- ``tokenize="intl"`` (sacreBLEU's international tokenizer) is what ``evaluate``'s ``normalize`` does
  with ``tokenizer="intl"`` (not reachable from ``compute``). For Spanish it is the better choice:
  ``13a`` leaves ``¿ ¡ « »`` glued to their words (``"¿Qué"`` stays one token), ``intl`` splits them.

Bug compatibility kept on purpose: splitting on single spaces means an empty prediction is the one
token ``""`` (an added unigram that only an empty reference shares), and with ``tokenize="none"``
doubled, leading or trailing spaces make empty tokens too; both references do this, so the numbers
match theirs. No Unicode normalisation is applied (a precomposed and a decomposed ``é`` are different
tokens), as in both. Checked against both reference implementations (see docs/metrics.md).

Example:
    >>> src = ["About 95 species are currently accepted ."]
    >>> refs = [["About 95 species are currently known .", "About 95 species are now accepted .",
    ...          "95 species are now accepted ."]]
    >>> round(sari(src, ["About 95 you now get in ."], refs)["sari"], 6)
    26.953602
"""

from __future__ import annotations

import functools
from collections import Counter
from typing import Callable, Sequence

from es_zoo.metrics._common import MetricInputError, as_list

MAX_ORDER = 4
TOKENIZERS = ("13a", "intl", "none")
VARIANTS = ("evaluate", "original")


@functools.cache
def _tokenizer(name: str) -> Callable[[str], str]:
    if name == "none":
        return lambda text: text
    if name == "13a":
        from sacrebleu.tokenizers.tokenizer_13a import Tokenizer13a
        return Tokenizer13a()
    from sacrebleu.tokenizers.tokenizer_intl import TokenizerV14International
    return TokenizerV14International()


def _ngram_counts(tokens: list[str], n: int) -> Counter:
    """Counts of the n-grams of ``tokens`` in order of first occurrence (an empty Counter when there
    are fewer than ``n`` tokens)."""
    return Counter(tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1))


def _f1(precision: float, recall: float) -> float:
    if precision > 0 or recall > 0:
        return 2 * precision * recall / (precision + recall)
    return 0


def _order_scores(source: Counter, output: Counter, refs: Counter, n_refs: int,
                  original: bool) -> tuple[float, float, float]:
    """(keep F1, delete precision, add F1) at one n-gram order.

    ``refs`` sums the counts over all references. Source and output counts are scaled by ``n_refs``.
    ``empty`` is what a ratio with an empty denominator is worth in each variant.
    """
    empty = 0 if original else 1
    src = Counter({g: c * n_refs for g, c in source.items()})
    out = Counter({g: c * n_refs for g, c in output.items()})

    # keep: source n-grams the output keeps, against those the references keep. The sums run in the
    # order of first occurrence in the source, one addition at a time, as both references add them.
    kept = src & out
    kept_by_refs = src & refs
    kept_well = kept & refs
    precision_sum = recall_sum = 0
    for g, count in kept_well.items():
        precision_sum += count / kept[g]
        recall_sum += count / kept_by_refs[g] if original else count
    precision = precision_sum / len(kept) if kept else empty
    if not kept_by_refs:
        recall = empty
    else:
        recall = recall_sum / (len(kept_by_refs) if original else sum(kept_by_refs.values()))
    keep = _f1(precision, recall)

    # delete: source n-grams the output drops; the share of them the references drop too
    dropped = src - out
    delete_sum = 0
    for g, count in (dropped - refs).items():
        delete_sum += count / dropped[g]
    delete = delete_sum / len(dropped) if dropped else empty

    # add: n-gram types of the output that are not in the source, against the references' new types
    added = set(output) - set(source)
    added_by_refs = set(refs) - set(source)
    hits = len(added & set(refs))
    add = _f1(hits / len(added) if added else empty, hits / len(added_by_refs) if added_by_refs else empty)
    return keep, delete, add


def _sentence_scores(source: str, prediction: str, references: list[str],
                     original: bool) -> tuple[float, float, float]:
    """(keep, delete, add) of one normalised sentence, each averaged over the orders 1-4."""
    src_tokens, out_tokens = source.split(" "), prediction.split(" ")
    ref_tokens = [r.split(" ") for r in references]
    per_order = []
    for n in range(1, MAX_ORDER + 1):
        refs = Counter()
        for tokens in ref_tokens:
            refs.update(_ngram_counts(tokens, n))
        per_order.append(_order_scores(_ngram_counts(src_tokens, n), _ngram_counts(out_tokens, n), refs,
                                       len(references), original))
    keep, delete, add = ([s[k] for s in per_order] for k in range(3))
    return sum(keep) / MAX_ORDER, sum(delete) / MAX_ORDER, sum(add) / MAX_ORDER


def _strings(values: object, name: str) -> list[str]:
    items = as_list(values, name)
    for i, item in enumerate(items):
        if not isinstance(item, str):
            raise MetricInputError(f"{name}[{i}] must be a string, got {type(item).__name__} {item!r:.80}")
    return items


def sari(sources: Sequence[str], predictions: Sequence[str], references: Sequence[Sequence[str]], *,
         lowercase: bool = True, tokenize: str = "13a", variant: str = "evaluate") -> dict:
    """Corpus SARI (mean of sentence SARI), in percent: ``{"sari", "add", "keep", "delete", "sentences",
    "variant", "tokenize", "lowercase"}`` (the last three echo the settings, so a stored score says how it
    was computed).

    ``sources[i]`` is simplified into ``predictions[i]``; ``references[i]`` lists one or more reference
    simplifications of it (the number may differ between sentences). ``lowercase`` and ``tokenize``
    (``"13a"``, ``"intl"`` or ``"none"`` for pre-tokenized text) say how every sentence is normalised
    before it is split on spaces; ``variant`` is ``"evaluate"`` (Hugging Face evaluate's SARI, the default)
    or ``"original"`` (the authors' ``SARI.py``); see the module docstring for how they differ.
    ``sari == (add + keep + delete) / 3`` up to rounding. An empty prediction is scored (as the one
    empty token, as both reference implementations do).
    """
    if tokenize not in TOKENIZERS:
        raise MetricInputError(f"tokenize={tokenize!r} is not supported; use one of {list(TOKENIZERS)}")
    if variant not in VARIANTS:
        raise MetricInputError(f"variant={variant!r} is not supported; use one of {list(VARIANTS)}")
    srcs, preds = _strings(sources, "sources"), _strings(predictions, "predictions")
    refs = [_strings(r, f"references[{i}]") for i, r in enumerate(as_list(references, "references"))]
    if not (len(srcs) == len(preds) == len(refs)):
        raise MetricInputError(f"{len(srcs)} sources, {len(preds)} predictions and {len(refs)} reference lists; "
                               "every source needs exactly one prediction and one list of references")
    if not srcs:
        raise MetricInputError("no sentences to score: sources, predictions and references are empty")
    for i, r in enumerate(refs):
        if not r:
            raise MetricInputError(f"references[{i}] is empty; sentence {i} needs at least one reference "
                                   f"({len(srcs)} sentences)")

    tokenizer = _tokenizer(tokenize)

    def normalise(text: str) -> str:
        return tokenizer(text.lower() if lowercase else text)

    original = variant == "original"
    keep = delete = add = total = 0.0
    for src, pred, sent_refs in zip(srcs, preds, refs):
        k, d, a = _sentence_scores(normalise(src), normalise(pred), [normalise(r) for r in sent_refs], original)
        keep += k
        delete += d
        add += a
        total += (k + d + a) / 3
    n = len(srcs)
    return {"sari": 100 * (total / n), "add": 100 * (add / n), "keep": 100 * (keep / n),
            "delete": 100 * (delete / n), "sentences": n, "variant": variant, "tokenize": tokenize,
            "lowercase": lowercase}
