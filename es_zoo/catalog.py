"""The model catalogue: one record per published checkpoint, as data (``es_zoo/data/catalog.yaml``).

Example:
    >>> from es_zoo.catalog import list_models, get_model
    >>> "beto-base-cased" in list_models("beto*")
    True
    >>> get_model("beto-base-cased").hub_id
    'dccuchile/bert-base-spanish-wwm-cased'
"""

from __future__ import annotations

import difflib
import fnmatch
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal, Optional

import yaml

from es_zoo.errors import EsZooError
from es_zoo.resources import DATA_DIR
from es_zoo.schema import from_mapping
from es_zoo.tasks.definitions import TaskError, load_task

CATALOG_FILE = DATA_DIR / "catalog.yaml"
FAMILIES = ("bert", "roberta", "bart", "t5", "led", "bert2bert", "mbart", "mt5", "xlmr", "mbert", "albert", "distilbert",
            "gpt2", "longformer")
KINDS = ("pretrained", "finetuned", "warm-started", "baseline")


class UnknownModelError(EsZooError):
    """A name that is not in the catalogue."""


@dataclass(frozen=True)
class Score:
    """One published number: ``value`` of ``metric`` on ``dataset``/``split`` for ``task``.

    ``by`` names who measured it when that is not the model's own paper or card (MarIA's evaluation
    table also scores BETO and mBERT): such numbers are compared in ``es-zoo compare`` but never shown as
    the model's own published result. ``metric`` is the source's own metric (F1 stays F1 where GLUES uses
    accuracy); ``dataset`` names the evaluation as the source does, so two numbers are comparable only
    when task, dataset, split and metric all agree."""

    task: str
    dataset: str
    split: Optional[str]
    metric: str
    value: float
    source: str
    by: Optional[str] = None

    def __post_init__(self) -> None:
        for name in ("task", "dataset", "metric", "source"):
            if not getattr(self, name).strip():
                raise ValueError(f"{name}: expected a non-empty text (every number says what it is and where it comes from)")
        if not 0 <= self.value <= 100:
            raise ValueError(f"value: expected a score from 0 to 100 (as published, in percent), got {self.value}")

    @property
    def own(self) -> bool:
        """Whether the number is the model's own published result (its paper or card)."""
        return self.by is None

    def benchmark(self) -> tuple[str, str, str, str]:
        """What must agree for two numbers to be compared: task, dataset, split, metric."""
        return (self.task, self.dataset, self.split or "", self.metric)


@dataclass(frozen=True)
class ModelRecord:
    """A catalogued checkpoint (or a warm-started model, which has no ``hub_id`` of its own)."""

    name: str
    family: Literal[FAMILIES]
    kind: Literal[KINDS]
    hub_id: Optional[str]
    languages: list[str]
    architecture: dict[str, Any]
    tokenizer: dict[str, Any]
    license: Optional[str]
    paper: Optional[dict[str, Any]]
    recipe: Optional[str] = None
    base_model: Optional[str] = None
    encoder: Optional[str] = None
    task: Optional[str] = None
    scores: list[Score] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    notes: Optional[str] = None

    @property
    def vocab_size(self) -> Optional[int]:
        return self.tokenizer.get("vocab_size")

    def scores_for(self, task: str | None = None, own: bool = True) -> list[Score]:
        """Published numbers for ``task`` (every task when None): the model's own (its paper or card)
        unless ``own=False``, which adds those others measured (``Score.by``)."""
        return [s for s in self.scores if (task is None or s.task == task) and (s.own or not own)]

    def to_dict(self) -> dict[str, Any]:
        import dataclasses

        return dataclasses.asdict(self)


def _record(raw: Any, index: int) -> ModelRecord:
    """One catalogue entry, checked as recipes are (es_zoo.schema.from_mapping): unknown or missing keys,
    wrong types and bad scores are one line naming the entry and the key path."""
    where = f"{CATALOG_FILE.name}: models[{index}]" + (f" ({raw.get('name')})" if isinstance(raw, dict) else "")
    return from_mapping(ModelRecord, raw, where, error=EsZooError)


@lru_cache(maxsize=1)
def _catalog() -> dict[str, ModelRecord]:
    raw = yaml.safe_load(CATALOG_FILE.read_text(encoding="utf-8"))
    records: dict[str, ModelRecord] = {}
    for i, item in enumerate(raw["models"]):
        rec = _record(item, i)
        if rec.name in records:
            raise EsZooError(f"{CATALOG_FILE.name}: duplicate name {rec.name}")
        records[rec.name] = rec
    return records


def list_models(pattern: str | None = None, family: str | None = None, kind: str | None = None) -> list[str]:
    """Catalogue names, optionally filtered by a glob (``beto*``), a family and a kind."""
    out = []
    for name, rec in _catalog().items():
        if pattern and not fnmatch.fnmatch(name, pattern):
            continue
        if family and rec.family != family:
            continue
        if kind and rec.kind != kind:
            continue
        out.append(name)
    return out


def all_models() -> list[ModelRecord]:
    return list(_catalog().values())


def get_model(name: str) -> ModelRecord:
    """The record called ``name`` (also accepts its Hub id); unknown names suggest close matches."""
    cat = _catalog()
    if name in cat:
        return cat[name]
    for rec in cat.values():
        if rec.hub_id and rec.hub_id.lower() == name.lower():
            return rec
    close = difflib.get_close_matches(name, list(cat), n=3, cutoff=0.5)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    raise UnknownModelError(f"'{name}' is not in the catalogue.{hint} See `es-zoo list`.")


def find_model(name: str) -> ModelRecord | None:
    """Like :func:`get_model` but returns None for unknown names."""
    try:
        return get_model(name)
    except UnknownModelError:
        return None


def score_tasks() -> list[str]:
    """Every task some catalogued model has a published score for."""
    return sorted({s.task for r in _catalog().values() for s in r.scores})


def compare_scores(names: list[str], task: str | None = None) -> list[dict[str, Any]]:
    """The published scores of the models ``names`` side by side: one table per task, one row per
    :meth:`Score.benchmark` (task, dataset, split, metric), a cell per model that has that number. Each row
    says whether its metric is the es-zoo task's published metric (``metric_differs``)."""
    records = [get_model(n) for n in names]
    tasks = sorted({s.task for r in records for s in r.scores if task is None or s.task == task})
    tables = []
    for t in tasks:
        try:
            published = load_task(t).published
            task_metric = published["metric"] if published else None
        except TaskError:
            task_metric = None
        rows: dict[tuple, dict[str, Any]] = {}
        for r in records:
            for s in r.scores_for(t, own=False):
                row = rows.setdefault(s.benchmark(), {
                    "dataset": s.dataset, "split": s.split, "metric": s.metric, "task_metric": task_metric,
                    "metric_differs": task_metric is not None and s.metric.lower() != task_metric.lower(),
                    "values": {}})
                row["values"].setdefault(r.name, {"value": s.value, "by": s.by, "source": s.source})
        note = f"es-zoo task, published metric {task_metric}" if task_metric else "not an es-zoo task"
        tables.append({"task": t, "note": note, "rows": list(rows.values())})
    return tables
