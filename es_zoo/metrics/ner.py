"""Entity-level precision, recall and F1 of IOB tagging (CoNLL-2002 NER), as conlleval computes them.

Entities are extracted by ``seqeval`` in its default mode (no ``mode="strict"``, no scheme), which
follows conlleval's chunk rules: an ``I-X`` after ``O``, after the end of a sentence or after a tag of
another type starts a new ``X`` entity; an entity is correct when its type, first and last token all
match. Checked against the official ``conlleval`` perl script (see docs/metrics.md). Values are
percentages; F1 is computed from the precision and recall percentages, as conlleval does.

Example:
    >>> scores = ner_f1([["B-PER", "I-PER", "O"]], [["B-PER", "I-PER", "O"]])
    >>> scores["f1"], scores["per_type"]["PER"]["number"]
    (100.0, 1)
"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Sequence

from es_zoo.metrics._common import MetricInputError, nested, percent, same_length

# IOB1 and IOB2: conlleval and seqeval's default mode agree on these. IOBES (E-, S-) is refused: the
# two disagree on it (conlleval has no S- rule).
TAG = re.compile(r"O|[BI]-\S+")


def _prf(correct: int, predicted: int, gold: int) -> tuple[float, float, float]:
    precision, recall = percent(correct, predicted), percent(correct, gold)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return precision, recall, f1


def ner_f1(predictions: Sequence[Sequence[str]], references: Sequence[Sequence[str]]) -> dict:
    """conlleval's scores of IOB tag sequences, one list of tags per sentence.

    Returns ``{"precision", "recall", "f1", "accuracy", "tokens", "number", "predicted", "correct",
    "per_type"}``: overall entity-level precision/recall/F1, token-level accuracy (tags equal), the
    number of tokens, of gold entities, of predicted entities and of correct ones; ``per_type`` maps
    every entity type found on either side to ``{"precision", "recall", "f1", "number", "predicted",
    "correct"}`` (``number`` is the gold count, as in seqeval's report; conlleval prints
    ``predicted``).

    Raises :class:`MetricInputError` when the sentence counts differ, a sentence has a different
    number of tags on the two sides (the message names its index), or a tag is not ``O``, ``B-TYPE``
    or ``I-TYPE``.
    """
    from seqeval.metrics.sequence_labeling import get_entities

    preds, refs = nested(predictions, "predictions"), nested(references, "references")
    same_length(preds, refs, what="sentences")
    for i, (p, r) in enumerate(zip(preds, refs)):
        if len(p) != len(r):
            raise MetricInputError(f"sentence {i}: {len(p)} predicted tags for {len(r)} reference tags")
        for side, tags in (("predictions", p), ("references", r)):
            for j, tag in enumerate(tags):
                if not isinstance(tag, str) or not TAG.fullmatch(tag):
                    raise MetricInputError(f"{side}[{i}][{j}]: tag {tag!r} is not O, B-TYPE or I-TYPE (IOB1/IOB2; "
                                           "map class ids to tag names first)")
    tokens = sum(len(r) for r in refs)
    if tokens == 0:
        raise MetricInputError(f"{len(refs)} sentences but no tokens to score")
    gold: dict[str, set] = defaultdict(set)
    found: dict[str, set] = defaultdict(set)
    for kind, start, end in get_entities(refs):  # seqeval puts an O between sentences, as conlleval does
        gold[kind].add((start, end))
    for kind, start, end in get_entities(preds):
        found[kind].add((start, end))
    per_type = {}
    for kind in sorted(set(gold) | set(found)):
        correct = len(gold[kind] & found[kind])
        precision, recall, f1 = _prf(correct, len(found[kind]), len(gold[kind]))
        per_type[kind] = {"precision": precision, "recall": recall, "f1": f1, "number": len(gold[kind]),
                          "predicted": len(found[kind]), "correct": correct}
    number = sum(len(v) for v in gold.values())
    predicted = sum(len(v) for v in found.values())
    correct = sum(t["correct"] for t in per_type.values())
    precision, recall, f1 = _prf(correct, predicted, number)
    same = sum(pt == rt for p, r in zip(preds, refs) for pt, rt in zip(p, r))
    return {"precision": precision, "recall": recall, "f1": f1, "accuracy": percent(same, tokens),
            "tokens": tokens, "number": number, "predicted": predicted, "correct": correct,
            "per_type": per_type}
