"""Score a predictions file against a task's gold split (the file ``es-zoo finetune`` writes, or one
made by any other system in the same shape).

A predictions file has one JSON object per line, ``{"id": ..., "prediction": ...}``, one line per gold
example: a label for classification, a list of tags per word for NER and POS, ``[heads, relations]``
for parsing, the answer text for QA, the generated text for a seq2seq task. Every gold example must have
exactly one prediction; a missing, unknown or duplicated id, a prediction that does not fit its example
(a label outside the task's set, a sentence with the wrong number of tags, a head outside the sentence,
``null``) is an error that names the line. Nothing that cannot be aligned is scored.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from es_zoo.tasks.data import load_task_data
from es_zoo.tasks.definitions import TaskError, load_task
from es_zoo.safeyaml import short
from es_zoo.tasks.readers import FormatError, json_lines


def read_predictions(path: str | Path) -> list[tuple[str, Any, int]]:
    """(id, prediction, line number) of each line of a predictions file."""
    rows = []
    for number, obj in json_lines(path, '"id" and "prediction"'):
        if "id" not in obj or "prediction" not in obj:
            raise FormatError(path, number, "expected an object with \"id\" and \"prediction\"")
        if isinstance(obj["id"], bool) or not isinstance(obj["id"], (str, int)):
            raise FormatError(path, number, f"\"id\" must be a string or an integer, got {short(obj['id'])}")
        rows.append((str(obj["id"]), obj["prediction"], number))
    return rows


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


def score_file(task_name: str, predictions: str | Path, split: str = "test", source: str | None = None,
               data_dir: str | Path | None = None, files: dict[str, list[str]] | None = None) -> dict:
    """The task's metric for a predictions file on ``split`` of the task's data."""
    from es_zoo.tasks.task_heads import get_head

    task = load_task(task_name)
    data = load_task_data(task, source=source, data_dir=data_dir, files=files)
    if split not in data.dataset:
        raise TaskError(f"task '{task.name}' (source '{data.source}') has no {split} split; it has "
                        f"{', '.join(data.dataset)}")
    gold = data.dataset[split]
    rows = read_predictions(predictions)
    by_id: dict[str, Any] = {}
    line_of: dict[str, int] = {}
    for ident, pred, number in rows:
        if ident in by_id:
            raise TaskError(f"{predictions}:{number}: id {short(ident)} appears twice (first on line {line_of[ident]})")
        by_id[ident], line_of[ident] = pred, number
    if task.head == "seq2seq":
        from es_zoo.tasks.seq2seq import score as score_text
        from es_zoo.tasks.seq2seq import texts_for

        texts = texts_for(task, data.source, gold, task.hparams.replace(prefix=""), "t5")
        gold_ids = list(texts.ids)
    else:
        gold_ids = [str(x) for x in gold["id"]]
    known = set(gold_ids)
    for ident, _, number in rows:
        if ident not in known:
            raise TaskError(f"{predictions}:{number}: id {short(ident)} is not an example of the {split} split")
    for ident in gold_ids:
        if ident not in by_id:
            raise TaskError(f"{predictions}: no prediction for gold example {short(ident)} ({len(rows)} predictions "
                            f"for {len(gold_ids)} examples)")
    ordered = [by_id[i] for i in gold_ids]

    def where(i: int) -> str:
        return f"{predictions}:{line_of[gold_ids[i]]} (id {short(gold_ids[i])})"

    if task.head == "seq2seq":
        for i, p in enumerate(ordered):
            if not isinstance(p, str):
                raise TaskError(f"{where(i)}: expected a string (the generated text), got {short(p)}")
        return score_text(task, task.metric_for(data.source), ordered, texts)
    ordered = check_predictions(task, gold, ordered, where)
    return get_head(task.head).score(task, task.metric_for(data.source), ordered, gold)
