"""Accuracy of single-label classification (XNLI, PAWS-X, MLDoc), in percent.

Example:
    >>> accuracy(["entailment", "neutral"], ["entailment", "contradiction"])
    {'accuracy': 50.0, 'correct': 1, 'total': 2}
"""

from __future__ import annotations

import numbers
from typing import Any, Sequence

from es_zoo.metrics._common import MetricInputError, as_list, percent, same_length


def _kind(label: Any) -> str:
    if isinstance(label, str):
        return "str"
    if isinstance(label, numbers.Integral) and not isinstance(label, bool):  # numpy integers included
        return "int"
    raise MetricInputError(f"labels must be integers (class ids) or strings (class names), got "
                           f"{type(label).__name__} {label!r}")


def accuracy(predictions: Sequence[int | str], references: Sequence[int | str]) -> dict:
    """Percentage of predictions equal to their reference: ``{"accuracy", "correct", "total"}``.

    Labels are class ids (int) or class names (str), the same kind on both sides: comparing ids with
    names would score 0 without saying why, so it is an error, as are lists of different lengths.
    """
    preds, refs = as_list(predictions, "predictions"), as_list(references, "references")
    same_length(preds, refs)
    kinds = {"predictions": {_kind(p) for p in preds}, "references": {_kind(r) for r in refs}}
    for side, found in kinds.items():
        if len(found) > 1:
            raise MetricInputError(f"{side} mix integer and string labels; use one kind")
    if kinds["predictions"] != kinds["references"]:
        raise MetricInputError(f"predictions are {kinds['predictions'].pop()} labels but references are "
                               f"{kinds['references'].pop()} labels; map both to class ids or both to names")
    if kinds["references"] == {"int"}:  # numpy integers -> int, so the counts are plain Python numbers
        preds, refs = [int(p) for p in preds], [int(r) for r in refs]
    correct = sum(p == r for p, r in zip(preds, refs))
    return {"accuracy": percent(correct, len(refs)), "correct": correct, "total": len(refs)}
