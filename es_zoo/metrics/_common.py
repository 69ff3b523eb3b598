"""What every GLUES metric shares: the error class and the input checks.

All metrics return percentages (0-100), as conlleval, ``conll18_ud_eval.py`` (x100 when printed), and
the SQuAD and MLQA scripts report them.
"""

from __future__ import annotations

from typing import Any, Sequence

from es_zoo.errors import EsZooError


class MetricInputError(EsZooError):
    """Predictions and references that cannot be scored together (different lengths, wrong types,
    labels outside the scheme, ids that do not match); the message says what and where."""


def percent(part: float, whole: float) -> float:
    """``100 * part / whole``, 0.0 for an empty ``whole`` (as the official scripts print it)."""
    return 100.0 * part / whole if whole else 0.0


def as_list(values: Any, name: str) -> list:
    """``values`` (a list, tuple or numpy array) as a Python list; a string or a mapping is an error."""
    if hasattr(values, "tolist") and not isinstance(values, (list, tuple)):  # numpy / torch arrays
        values = values.tolist()
    if isinstance(values, (str, bytes)) or isinstance(values, dict) or not isinstance(values, Sequence):
        raise MetricInputError(f"{name} must be a list, got {type(values).__name__}")
    return list(values)


def same_length(predictions: Sequence, references: Sequence, what: str = "examples") -> None:
    """Both sequences hold the same number of items, and at least one."""
    if len(predictions) != len(references):
        raise MetricInputError(f"{len(predictions)} predictions for {len(references)} references; every "
                               f"reference needs exactly one prediction ({what} are compared one to one)")
    if not references:
        raise MetricInputError(f"no {what} to score: predictions and references are empty")


def nested(values: Any, name: str) -> list[list]:
    """A list of per-sentence lists."""
    outer = as_list(values, name)
    return [as_list(inner, f"{name}[{i}]") for i, inner in enumerate(outer)]
