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
from typing import Any

from es_zoo.safeyaml import short
from es_zoo.tasks.checks import check_predictions
from es_zoo.tasks.data import load_task_data
from es_zoo.tasks.definitions import TaskError, load_task
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


def score_file(task_name: str, predictions: str | Path, split: str = "test", source: str | None = None,
               data_dir: str | Path | None = None, files: dict[str, list[str]] | None = None) -> dict:
    """The task's metric for a predictions file on ``split`` of the task's data."""
    from es_zoo.tasks.task_heads import get_head  # lazy: importing the scorer does not import torch

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
