"""Score a predictions file against a task's gold split (the file ``es-zoo finetune`` writes, or one
made by any other system in the same shape).

A predictions file has one JSON object per line, ``{"id": ..., "prediction": ...}``, one line per gold
example: a label for classification, a list of tags per word for NER and POS, ``[heads, relations]``
for parsing, the answer text for QA, the generated text for a seq2seq task. Every gold example must have exactly one prediction; a missing,
extra or duplicated id, or a file of the wrong length, is an error that names it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from es_zoo.tasks.data import load_task_data
from es_zoo.tasks.definitions import TaskError, load_task
from es_zoo.tasks.readers import FormatError, json_lines


def read_predictions(path: str | Path) -> list[tuple[str, Any]]:
    rows = []
    for number, obj in json_lines(path, '"id" and "prediction"'):
        if "id" not in obj or "prediction" not in obj:
            raise FormatError(path, number, "expected an object with \"id\" and \"prediction\"")
        rows.append((str(obj["id"]), obj["prediction"]))
    return rows


def score_file(task_name: str, predictions: str | Path, split: str = "test", source: str | None = None,
               data_dir: str | Path | None = None, files: dict[str, list[str]] | None = None) -> dict:
    """The task's metric for a predictions file on ``split`` of the task's data."""
    from es_zoo.tasks.finetune import score

    task = load_task(task_name)
    data = load_task_data(task, source=source, data_dir=data_dir, files=files)
    if split not in data.dataset:
        raise TaskError(f"task '{task.name}' (source '{data.source}') has no {split} split; it has "
                        f"{', '.join(data.dataset)}")
    gold = data.dataset[split]
    rows = read_predictions(predictions)
    if len(rows) != len(gold):
        raise TaskError(f"{predictions}: {len(rows)} predictions, but the {split} split has {len(gold)} examples")
    by_id: dict[str, Any] = {}
    for number, (ident, pred) in enumerate(rows, start=1):
        if ident in by_id:
            raise TaskError(f"{predictions}: id {ident!r} appears twice (second time on prediction {number})")
        by_id[ident] = pred
    ordered = []
    if task.head == "seq2seq":
        if any(not isinstance(p, str) for p in by_id.values()):
            raise TaskError(f"{predictions}: a seq2seq prediction must be a string (the generated text)")
        from es_zoo.tasks.seq2seq import score as score_text
        from es_zoo.tasks.seq2seq import texts_for

        texts = texts_for(task, data.source, gold, task.hparams.replace(prefix=""), "t5")
        for ident in texts.ids:
            if ident not in by_id:
                raise TaskError(f"{predictions}: no prediction for gold example {ident!r}")
        return score_text(task, task.metric_for(data.source), [by_id[i] for i in texts.ids], texts)
    for row in gold:
        if row["id"] not in by_id:
            raise TaskError(f"{predictions}: no prediction for gold example {row['id']!r}")
        pred = by_id[row["id"]]
        if task.kind == "parsing":
            pred = (pred[0], pred[1])
        ordered.append(pred)
    return score(task, task.metric_for(data.source), ordered, gold)
