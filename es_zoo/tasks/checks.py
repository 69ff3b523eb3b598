"""Does each prediction fit its gold example? The one check behind ``es-zoo score``
(``es_zoo.tasks.scoring``) and the fine-tuning heads (``TaskHead.check`` in ``es_zoo.tasks.task_heads``);
it sits below both so that scoring -> task_heads stays one-way."""

from __future__ import annotations

from typing import Any, Callable

from es_zoo.safeyaml import short
from es_zoo.tasks.definitions import TaskError


def _label_names(split: Any, column: str) -> list[str]:
    f = split.features[column]
    return list(getattr(f, "feature", f).names)


def check_predictions(task: Any, split: Any, predictions: list[Any],
                      where: Callable[[int], str] | None = None) -> list[Any]:
    """Check that each prediction fits its gold example: the task's label set, one tag per word of that
    sentence, heads within the sentence, text where text is expected. The first misfit is a
    :class:`TaskError` naming it (``where(i)``: the file and line, or the example); nothing is scored
    as merely wrong that cannot be aligned. Returns the predictions, parses as ``(heads, relations)``.
    Runs for ``es-zoo score`` and inside fine-tuning before a score is written."""
    ids = list(split["id"]) if "id" in split.column_names else None
    if where is None:
        def where(i: int) -> str:
            return f"prediction {i + 1}" + (f" (gold id {ids[i]!r})" if ids is not None else "")
    if len(predictions) != len(split):
        raise TaskError(f"{len(predictions)} predictions for {len(split)} examples")

    def fail(i: int, what: str, got: Any) -> TaskError:
        return TaskError(f"{where(i)}: expected {what}, got {short(got)}")

    out: list[Any] = []
    if task.head == "sequence":
        labels = _label_names(split, "label")
        allowed = set(labels)
        for i, p in enumerate(predictions):
            if not isinstance(p, str) or p not in allowed:
                raise fail(i, f"one of the task's labels {short(labels, 120)}", p)
        return list(predictions)
    if task.kind in ("ner", "pos"):
        column = "ner_tags" if task.kind == "ner" else "upos"
        labels = _label_names(split, column)
        allowed = set(labels)
        for i, (p, gold) in enumerate(zip(predictions, split[column])):
            if not isinstance(p, list) or len(p) != len(gold):
                raise fail(i, f"a list of {len(gold)} tags (one per word of that sentence)", p)
            for t in p:
                if not isinstance(t, str) or t not in allowed:
                    raise fail(i, f"tags from the task's set {short(labels, 120)}", t)
        return list(predictions)
    if task.kind == "parsing":
        labels = _label_names(split, "deprel")
        allowed = set(labels)
        for i, (p, gold_heads) in enumerate(zip(predictions, split["head"])):
            n = len(gold_heads)
            what = f"[heads, relations]: two lists of {n} entries (one per word of that sentence)"
            if not isinstance(p, (list, tuple)) or len(p) != 2 or not all(isinstance(x, list) and len(x) == n
                                                                         for x in p):
                raise fail(i, what, p)
            heads, rels = p
            for h in heads:
                if isinstance(h, bool) or not isinstance(h, int) or not 0 <= h <= n:
                    raise fail(i, f"heads that are integers from 0 (the root) to {n}", h)
            for r in rels:
                if not isinstance(r, str) or r not in allowed:
                    raise fail(i, f"relations from the task's set {short(labels, 120)}", r)
            out.append((heads, rels))
        return out
    for i, p in enumerate(predictions):  # extractive QA and seq2seq: the answer or generated text
        if not isinstance(p, str):
            raise fail(i, "a string (the answer text)" if task.head != "seq2seq" else "a string (the generated text)", p)
    return list(predictions)
