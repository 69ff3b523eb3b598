"""Reader records -> typed ``datasets`` objects (ClassLabel for every label, one schema per task kind).

Example:
    >>> from es_zoo.tasks.readers import read_conll2002, NER_LABELS
    >>> ds = to_dataset(read_conll2002("esp.testa"), "ner", NER_LABELS)  # doctest: +SKIP
    >>> ds.features["ner_tags"].feature.names[:3]  # doctest: +SKIP
    ['O', 'B-PER', 'I-PER']
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator, Mapping, Sequence

from es_zoo.tasks.definitions import KINDS
# the text columns of each seq2seq kind (besides ``id``); a list column holds several references
SEQ2SEQ_COLUMNS = {
    "summarization": {"text": "string", "summary": "string"},
    "split_rephrase": {"source": "string", "target": "string"},
    "translation": {"source": "string", "target": "string"},
    "generative_qa": {"question": "string", "context": "string", "answers": "list"},
    "dialogue": {"history": "list", "response": "string"},
}


def features_for(kind: str, labels: Sequence[str] = (), relations: Sequence[str] = ()):
    """The ``datasets.Features`` of a task kind; ``labels`` become a ``ClassLabel`` (token labels a
    sequence of them), ``relations`` the dependency-relation ``ClassLabel`` of parsing."""
    from datasets import ClassLabel, Features, List, Value

    text = Value("string")
    if kind == "pair":
        return Features({"id": text, "sentence1": text, "sentence2": text, "label": ClassLabel(names=list(labels))})
    if kind == "document":
        return Features({"id": text, "text": text, "label": ClassLabel(names=list(labels))})
    if kind == "ner":
        return Features({"id": text, "tokens": List(text), "pos_tags": List(text),
                         "ner_tags": List(ClassLabel(names=list(labels)))})
    if kind in ("pos", "parsing"):
        cols = {"id": text, "tokens": List(text), "upos": List(ClassLabel(names=list(labels)))}
        if kind == "parsing":
            cols.update(head=List(Value("int32")), deprel=List(ClassLabel(names=list(relations))))
        return Features(cols)
    if kind == "qa":
        return Features({"id": text, "title": text, "context": text, "question": text,
                         "answers": {"text": List(text), "answer_start": List(Value("int32"))},
                         "is_impossible": Value("bool")})
    if kind in SEQ2SEQ_COLUMNS:
        return Features({"id": text, **{c: (List(text) if t == "list" else text)
                                        for c, t in SEQ2SEQ_COLUMNS[kind].items()}})
    raise ValueError(f"unknown task kind {kind!r}; expected one of {KINDS}")


def to_dataset(records: list[dict], kind: str, labels: Sequence[str] = (), relations: Sequence[str] = ()):
    """One split as a ``datasets.Dataset`` with the kind's typed features (extra record keys dropped by
    schema, never labels: a label outside ``labels`` raises)."""
    from datasets import Dataset

    features = features_for(kind, labels, relations)
    rows = [{k: r[k] for k in features} for r in records]
    return Dataset.from_list(rows, features=features)


def to_dataset_dict(splits: Mapping[str, list[dict]], kind: str, labels: Sequence[str] = (),
                    relations: Sequence[str] | None = None):
    """Several splits as a ``datasets.DatasetDict`` sharing one schema. For parsing without a declared
    relation set, the ``ClassLabel`` takes every relation found in any split (sorted), so all splits
    agree on the ids."""
    from datasets import DatasetDict

    if kind == "parsing" and relations is None:
        relations = sorted({rel for rows in splits.values() for r in rows for rel in r["deprel"]})
    return DatasetDict({name: to_dataset(rows, kind, labels, relations or ()) for name, rows in splits.items()})


@contextmanager
def quiet_datasets() -> Iterator[None]:
    """``datasets``' own progress bars off (one per parquet shard read or written, which es-zoo's own
    lines already report), restored afterwards."""
    from datasets.utils import logging as dl

    was = dl.is_progress_bar_enabled()
    dl.disable_progress_bar()
    try:
        yield
    finally:
        if was:
            dl.enable_progress_bar()
