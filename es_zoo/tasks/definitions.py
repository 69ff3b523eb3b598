"""Task definitions as data: ``recipes/tasks/<name>.yaml``, one file per GLUES task.

A definition says what a task is (its kind, the model head, its label set, the metric that scores it,
the published number it is compared with), where its data comes from (one or more *sources*, each a
published format with the files of each split, its licence and citation, and its Hub home) and the
default hyperparameters of a fine-tune. It is read strictly, by the converter recipes use
(:mod:`es_zoo.schema`, through the file schema at the end of this module): an unknown key (with "did you
mean"), a wrong type or a broken cross-field rule is one error naming the file and the key path.

File paths of a source are relative to ``--data-dir``; each entry of a split is one file, given as a
list of alternative names (the first that exists is read: published distributions name the same file
differently). ``embedded:NAME`` is a small redistributable fixture shipped in ``es_zoo/data/tasks``.

Example:
    >>> t = load_task("ner")
    >>> t.head, t.metric["main"], t.labels[:3]
    ('token', 'f1', ['O', 'B-PER', 'I-PER'])
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import typing
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, Mapping, Optional, Union

from es_zoo.errors import EsZooError
from es_zoo.resources import recipes_dir
from es_zoo.safeyaml import YamlLimitError, load_yaml, short
from es_zoo.schema import Mismatch, read_strings, to_dataclass

Head = Literal["sequence", "token", "parser", "qa", "seq2seq"]
Format = Literal["conll2002", "conllu", "xnli", "pawsx", "mldoc", "squad", "jsonl", "parallel", "miam"]
# GLUES kinds, then the seq2seq kinds (``pair`` and ``document`` also serve text-to-text classification)
Kind = Literal["pair", "document", "ner", "pos", "parsing", "qa",
               "summarization", "split_rephrase", "generative_qa", "dialogue", "translation"]
MetricName = Literal["accuracy", "ner_f1", "attachment", "squad_v1", "mlqa",
                     "rouge", "sari", "generative_qa", "dialogue", "translation"]
HEADS = typing.get_args(Head)
FORMATS = typing.get_args(Format)
KINDS = typing.get_args(Kind)
METRICS = typing.get_args(MetricName)
FAMILIES = ("bart", "t5", "bert2bert")
LABELLED_KINDS = ("pair", "document", "ner", "pos", "parsing")

# The suites es-zoo evaluates: GLUES (Cañete et al. 2020) and the tasks of "Sequence-to-Sequence Spanish
# Pre-trained Language Models" (Araujo et al. 2024).
GLUES_TASKS = ("xnli", "pawsx", "ner", "pos", "parsing", "mldoc", "qa")
SEQ2SEQ_TASKS = ("summarization", "split_rephrase", "generative_qa", "dialogue", "translation", "mldoc_t2t",
                 "xnli_t2t")
SUITES = {"glues": GLUES_TASKS, "seq2seq": SEQ2SEQ_TASKS}


class TaskError(EsZooError):
    """A task definition, a task name or task data that cannot be used."""


@dataclass(frozen=True)
class Hyperparameters:
    """One fine-tuning setting. ``stride`` is the overlap, in sub-word tokens, between the windows of a
    sequence longer than ``max_length`` (nothing is truncated: long inputs become several windows)."""

    batch_size: int = 32
    learning_rate: float = 5e-5
    epochs: int = 3
    max_length: int = 128
    stride: int = 32
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    seed: int = 42
    # parser head (Dozat & Manning 2017): MLP sizes, dropout and the head's own learning rate
    head_learning_rate: float | None = None
    arc_dim: int = 500
    rel_dim: int = 100
    head_dropout: float = 0.33
    # extractive QA
    max_answer_length: int = 30
    n_best: int = 20
    # seq2seq: ``max_length`` is the source limit in tokens; a longer source (target) is an error unless
    # truncation is switched on, and every truncation is counted in the results
    max_target_length: int = 128
    truncate_source: bool = False
    truncate_target: bool = False
    truncation_side: Literal["left", "right"] = "right"  # "left" drops the oldest turns of a dialogue first
    label_smoothing: float = 0.0
    prefix: str | None = None  # None: the task's prefix for the model family (``input.prefix``)
    # seq2seq generation (evaluation): beam search, batched and sorted by length
    num_beams: int = 4
    length_penalty: float = 1.0
    max_new_tokens: int = 128
    min_new_tokens: int = 0
    no_repeat_ngram_size: int = 0
    eval_batch_size: int = 32

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.epochs < 1 or self.learning_rate <= 0:
            raise ValueError("batch_size >= 1, epochs >= 1 and learning_rate > 0 are required")
        if self.max_length < 16 or not 0 <= self.stride < self.max_length // 2:
            raise ValueError(f"max_length must be >= 16 and 0 <= stride < max_length / 2 "
                             f"(got max_length={self.max_length}, stride={self.stride})")
        if not 0.0 <= self.warmup_ratio < 1.0:
            raise ValueError("warmup_ratio must be in [0, 1)")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError("label_smoothing must be in [0, 1)")
        if self.num_beams < 1 or self.max_new_tokens < 1 or self.max_target_length < 2 or self.eval_batch_size < 1:
            raise ValueError("num_beams, max_new_tokens and eval_batch_size must be >= 1, max_target_length >= 2")
        if self.truncation_side not in ("left", "right"):
            raise ValueError("truncation_side must be left or right")
        if self.min_new_tokens > self.max_new_tokens or self.min_new_tokens < 0 or self.no_repeat_ngram_size < 0:
            raise ValueError("0 <= min_new_tokens <= max_new_tokens and no_repeat_ngram_size >= 0 are required")

    def updated(self, changes: Mapping[str, Any], path: str = "hparams") -> Hyperparameters:
        """These settings with ``changes`` (a task file's or a recipe run's ``hparams``, ``--set``) applied,
        checked by :mod:`es_zoo.schema`: an unknown name (with "did you mean"), a wrong type or a broken
        rule raises :class:`~es_zoo.schema.Mismatch` naming ``path.NAME``. A string is read as its field's
        type first (:func:`~es_zoo.schema.read_strings`: YAML 1.1 reads ``--set learning_rate=2e-3`` as
        one)."""
        return to_dataclass(Hyperparameters, {**self.to_dict(), **read_strings(Hyperparameters, changes)}, path)

    def replace(self, **changes: Any) -> Hyperparameters:
        """:meth:`updated`, failing with a :class:`TaskError` (``hparams.NAME: what is wrong``)."""
        try:
            return self.updated(changes)
        except Mismatch as exc:
            raise TaskError(f"{exc.path}: {exc.message}") from None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


SPLIT_NAMES = ("train", "validation", "test")


def is_split_name(name: str) -> bool:
    """train, validation, test, or an extra test set ``test_<name>`` (e.g. ``test_flores200``)."""
    return name in SPLIT_NAMES or (name.startswith("test_") and name[5:].replace("-", "_").isidentifier())


@dataclass(frozen=True)
class HubSplit:
    """One split of a source's Hub home (:mod:`es_zoo.tasks.hub_sources` reads it)."""

    split: str  # es-zoo's split name
    repo: str
    revision: str
    files: tuple[str, ...]  # glob patterns at the revision
    rows: int | None  # published size
    config: str = ""
    columns: tuple[tuple[str, str], ...] = ()  # this split's column map, over the source's


@dataclass(frozen=True)
class HubSource:
    """A source's Hub home (the ``hub`` block of its task file), or why it has none (``unavailable``)."""

    repo: str = ""
    config: str = ""
    revision: str = ""
    splits: dict[str, HubSplit] = field(default_factory=dict)
    columns: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    drop_labels: tuple[str, ...] = ()  # Hub token labels that mark rows which are not words (UD's "_")
    where: str = ""
    note: str = ""
    unavailable: str = ""
    format: str = "parquet"  # or "published": the repo holds the source's own files, read by its file reader

    def repos(self) -> list[tuple[str, str, tuple[str, ...]]]:
        """``(repo, revision, patterns)`` of every repo the splits read, in split order."""
        out: dict[tuple[str, str], dict[str, None]] = {}  # dicts keep the patterns' order, once each
        for s in self.splits.values():
            out.setdefault((s.repo, s.revision), {}).update(dict.fromkeys(s.files))
        return [(r, rev, tuple(ps)) for (r, rev), ps in out.items()]

    def describe(self) -> str:
        if self.unavailable:
            return f"no Hub copy: {self.unavailable}"
        repos = self.repos()
        return "; ".join(f"{r}@{rev}" + (f" ({', '.join(s for s, x in self.splits.items() if x.repo == r)})"
                                         if len(repos) > 1 else "") for r, rev, _ in repos)


@dataclass(frozen=True)
class Source:
    """Where one task's data comes from: a published format and the files of each split."""

    name: str
    format: str
    files: dict[str, list[list[str]]]
    license: str
    url: str | None = None
    citation: str | None = None
    note: str | None = None
    labels: list[str] | None = None  # overrides the task's label set (e.g. UD v2 tags in a v1 task)
    metric: dict[str, str] | None = None  # overrides the task's metric (MLQA's normalisation)
    fields: dict[str, str] | None = None  # JSONL / CSV formats: the task's column -> the file's field
    input: dict[str, Any] | None = None  # seq2seq: overrides the task's input template or target
    hub: HubSource | None = None  # the source's Hub home (or why it has none)

    @property
    def embedded(self) -> bool:
        """Whether the source is one of es-zoo's shipped fixtures (``embedded:`` files)."""
        return any(n.startswith("embedded:") for entries in self.files.values() for e in entries for n in e)


@dataclass(frozen=True)
class InputSpec:
    """How a seq2seq task turns a row into model input and target text.

    ``template`` is a ``str.format`` template over the row's columns; ``target`` names the column the
    model learns to produce (a list column: its first item; every item is a reference); ``prefix`` is
    put before the input per model family (the seq2seq paper used none, T5 included: it is explicit
    here and can be changed with ``--set prefix=...``); ``verbalizer`` maps class labels to the words
    a text-to-text classifier generates.
    """

    template: str
    target: str
    prefix: dict[str, str] = field(default_factory=dict)
    verbalizer: dict[str, str] | None = None

    def prefix_for(self, family: str) -> str:
        return self.prefix.get(family, "")


@dataclass(frozen=True)
class TaskDef:
    name: str
    description: str
    kind: str
    head: str
    metric: dict[str, str]
    sources: dict[str, Source]
    labels: list[str] = field(default_factory=list)
    published: dict[str, str] | None = None
    hparams: Hyperparameters = field(default_factory=Hyperparameters)
    grid: dict[str, list[Any]] = field(default_factory=dict)
    path: str = ""
    input: InputSpec | None = None  # seq2seq tasks only

    @property
    def suite(self) -> str:
        return "seq2seq" if self.head == "seq2seq" else "glues"

    @property
    def default_source(self) -> str:
        return next(iter(self.sources))

    def source(self, name: str | None) -> Source:
        if name is None:
            return self.sources[self.default_source]
        if name not in self.sources:
            raise TaskError(f"task '{self.name}' has no source '{name}'; its sources: {', '.join(self.sources)}")
        return self.sources[name]

    def comparable(self, source: str, changed: Any = None) -> bool:
        """Whether a score on ``source`` stands beside the published numbers: they were measured on the
        task's first source (the paper's data), unchanged."""
        return source == self.default_source and not changed

    def labels_for(self, source: str | None) -> list[str]:
        return list(self.source(source).labels or self.labels)

    def metric_for(self, source: str | None) -> dict[str, str]:
        return dict(self.source(source).metric or self.metric)

    def input_for(self, source: str | None) -> InputSpec:
        """The input spec of a seq2seq task, with the source's overrides applied."""
        if self.input is None:
            raise TaskError(f"task '{self.name}' is not a seq2seq task")
        override = self.source(source).input or {}
        return dataclasses.replace(self.input, **override) if override else self.input


# The published GLUES protocol: batch {16, 32, 64}, learning rate 1e-5 .. 5e-5, epochs {2, 3, 4}.
GLUES_GRID = {"batch_size": [16, 32, 64], "learning_rate": [1e-5, 2e-5, 3e-5, 4e-5, 5e-5], "epochs": [2, 3, 4]}


def tasks_dir() -> Path:
    return recipes_dir() / "tasks"


def list_tasks() -> list[str]:
    """Names of the shipped task definitions."""
    return sorted(p.stem for p in tasks_dir().glob("*.yaml"))


def load_task(name_or_path: str | Path) -> TaskDef:
    """A shipped task by name (``es-zoo tasks``) or a task YAML by path, validated."""
    p = Path(name_or_path)
    if p.suffix not in (".yaml", ".yml"):
        p = tasks_dir() / f"{name_or_path}.yaml"
        if not p.is_file():
            names = list_tasks()
            close = difflib.get_close_matches(str(name_or_path), names, n=2)
            hint = f" Did you mean: {', '.join(close)}?" if close else ""
            raise TaskError(f"unknown task '{name_or_path}'. Tasks: {', '.join(names)}.{hint}")
    if not p.is_file():
        raise TaskError(f"{p}: no such task file")
    try:
        data = load_yaml(p.read_bytes(), str(p))
    except OSError as exc:
        raise TaskError(f"{p}: cannot read: {exc.strerror or exc}") from None
    except YamlLimitError as exc:
        raise TaskError(str(exc)) from None
    if not isinstance(data, dict):
        raise TaskError(f"{p}: expected a mapping at the top level")
    try:
        return to_dataclass(TaskFile, data).to_task(str(p))
    except Mismatch as exc:
        raise TaskError(exc.line(str(p))) from None


# --------------------------------------------------------------------------------------------------
# The file schema of recipes/tasks/*.yaml, read by es_zoo.schema. Each class checks what the converter
# cannot (rules between keys) and names the key; TaskFile.to_task builds the objects above.
# --------------------------------------------------------------------------------------------------

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def _hub_id_problem(value: str) -> str | None:
    return None if _HUB_ID.match(value) and ".." not in value else f"{short(value)} is not a Hub dataset id ORG/NAME"


def _split_problem(name: str) -> str | None:
    return None if is_split_name(name) else f"'{name}' is not train, validation, test or test_<name> (an extra test set)"


@dataclass
class MetricFile:
    __schema_name__ = "a mapping {name: METRIC, main: KEY}"

    name: MetricName  # the metric that scores the task
    main: str  # the key of its result that is the task's score

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "main": self.main}


@dataclass
class PublishedFile:
    __schema_name__ = "a mapping {task: CATALOGUE TASK, metric: NAME}"

    task: str  # the task name of the catalogue's published scores
    metric: str  # the metric those scores report


@dataclass
class InputFile:
    """``input`` of a seq2seq task (template and target required) or a source's overrides of it."""

    __schema_name__ = "a mapping {template, target, prefix, verbalizer}"

    template: Optional[str] = None
    target: Optional[str] = None
    prefix: Optional[dict[str, Optional[str]]] = None  # model family -> text (null: none)
    verbalizer: Optional[dict[str, str]] = None

    def __post_init__(self) -> None:
        for family in self.prefix or {}:
            if family not in FAMILIES:
                raise Mismatch(f"prefix.{family}", f"not a model family; expected {{family: text}} for families "
                                                   f"{', '.join(FAMILIES)}")

    def given(self) -> dict[str, Any]:
        """The keys the file set (a source's overrides), the prefix with texts for null."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}
        if "prefix" in out:
            out["prefix"] = {k: v or "" for k, v in out["prefix"].items()}
        return out


@dataclass
class HubSplitFile:
    __schema_name__ = "a mapping {files: [...], rows: N}"

    files: Union[str, list[str]]  # glob patterns in the repo
    rows: Optional[int] = None  # the published number of rows
    id: Optional[str] = None  # another repo, revision or config for this split
    revision: Optional[str] = None
    config: Optional[str] = None
    columns: dict[str, str] = field(default_factory=dict)  # over the source's column map

    def __post_init__(self) -> None:
        self.files = [self.files] if isinstance(self.files, str) else self.files
        if not self.files or not all(self.files):
            raise Mismatch("files", "expected a list of file patterns in the repo")
        if self.rows is not None and self.rows < 1:
            raise Mismatch("rows", "expected the published number of rows (a positive integer)")
        if self.id is not None and _hub_id_problem(self.id):
            raise Mismatch("id", _hub_id_problem(self.id))
        if any(".." in Path(f).parts or f.startswith("/") for f in self.files):
            raise Mismatch("files", "patterns are paths inside the repo (no '..', no leading '/')")


@dataclass
class HubFile:
    """A source's ``hub`` block (see :mod:`es_zoo.tasks.hub_sources`), or ``{unavailable: why}``."""

    __schema_name__ = "a mapping (id, revision, from, splits, columns) or {unavailable: why}"

    id: Optional[str] = None
    config: str = ""
    revision: Optional[str] = None
    from_: Optional[str] = field(default=None, metadata={"key": "from"})  # where the id, columns, sizes were read
    columns: dict[str, str] = field(default_factory=dict)  # task column -> Hub column
    labels: dict[str, str] = field(default_factory=dict)  # Hub label name -> task label
    drop_labels: list[str] = field(default_factory=list)
    splits: Optional[dict[str, HubSplitFile]] = None
    note: Optional[str] = None
    unavailable: Optional[str] = None
    format: Literal["parquet", "published"] = "parquet"

    def __post_init__(self) -> None:
        if self.unavailable is not None:
            others = (self.id, self.revision, self.from_, self.splits)
            if (any(x is not None for x in others) or self.columns or self.labels or self.drop_labels or self.config
                    or self.format != "parquet" or not self.unavailable):
                raise Mismatch("unavailable", "a reason (text), and no other keys but note")
            return
        for key, value in (("id", self.id), ("revision", self.revision), ("from", self.from_), ("splits", self.splits)):
            if not value:
                raise Mismatch(key, "required" + (" (where the id, columns and sizes were read)" if key == "from" else ""))
        if _hub_id_problem(self.id):
            raise Mismatch("id", _hub_id_problem(self.id))
        for split in self.splits:
            if _split_problem(split):
                raise Mismatch(f"splits.{split}", f"'{split}' is not train, validation, test or test_<name>")

    def to_hub(self) -> HubSource:
        if self.unavailable is not None:
            return HubSource(unavailable=self.unavailable, note=self.note or "")
        splits = {name: HubSplit(split=name, repo=s.id or self.id, revision=s.revision or self.revision,
                                 files=tuple(s.files), rows=s.rows,
                                 config=s.config if s.config is not None else self.config,
                                 columns=tuple(s.columns.items()))
                  for name, s in self.splits.items()}
        return HubSource(repo=self.id, config=self.config, revision=self.revision, splits=splits,
                         columns=dict(self.columns), labels=dict(self.labels), drop_labels=tuple(self.drop_labels),
                         where=self.from_, note=self.note or "", format=self.format)


@dataclass
class SourceFile:
    """One entry of ``sources``: a published format, the files of each split, licence and Hub home."""

    __schema_name__ = "a mapping (format, files, license, ...)"

    format: Format
    files: dict[str, list[Union[str, list[str]]]]  # split -> files, each a name or a list of alternatives
    license: Optional[str] = None  # required: say 'unknown' if it is
    url: Optional[str] = None
    citation: Optional[str] = None
    note: Optional[str] = None
    labels: Optional[list[str]] = None  # overrides the task's label set
    metric: Optional[MetricFile] = None  # overrides the task's metric
    fields: Optional[dict[str, str]] = None  # JSONL / CSV formats: the task's column -> the file's field
    input: Optional[InputFile] = None  # seq2seq: overrides of the task's input
    hub: Optional[HubFile] = None

    def __post_init__(self) -> None:
        if not self.license:
            raise Mismatch("license", "a license is required (say 'unknown' if it is)")
        if not self.files:
            raise Mismatch("files", "expected {split: [file, ...]}")
        for split, entries in self.files.items():
            if _split_problem(split):
                raise Mismatch(f"files.{split}", _split_problem(split))
            if not entries:
                raise Mismatch(f"files.{split}", "expected a list of files")
            for i, entry in enumerate(entries):
                if not entry:
                    raise Mismatch(f"files.{split}[{i}]", "expected a file name or a list of alternative names")

    def to_source(self, name: str) -> Source:
        files = {split: [[e] if isinstance(e, str) else list(e) for e in entries] for split, entries in self.files.items()}
        return Source(name=name, format=self.format, files=files, license=self.license, url=self.url,
                      citation=self.citation, note=self.note, labels=self.labels,
                      metric=self.metric.to_dict() if self.metric else None, fields=self.fields,
                      input=self.input.given() if self.input else None,
                      hub=self.hub.to_hub() if self.hub else None)


@dataclass
class TaskFile:
    """A task file, ``recipes/tasks/NAME.yaml``."""

    name: str
    description: str
    kind: Kind
    head: Head
    metric: MetricFile
    sources: dict[str, SourceFile]  # the first is the paper's data (the published numbers were measured on it)
    labels: Optional[list[str]] = None  # required for labelled kinds and for the sequence, token, parser heads
    published: Optional[PublishedFile] = None  # how the catalogue names the task's published scores
    hparams: Optional[dict[str, Any]] = None  # over the Hyperparameters defaults
    grid: Optional[dict[str, list[Any]]] = None  # the hyperparameter search (GLUES_GRID when absent)
    input: Optional[InputFile] = None  # seq2seq tasks only
    hp: Hyperparameters = field(init=False)

    def __post_init__(self) -> None:
        labels = self.labels or []
        seq2seq = self.head == "seq2seq"
        labelled = self.kind in LABELLED_KINDS
        if (labelled or self.head not in ("qa", "seq2seq")) and not labels:
            raise Mismatch("labels", "a non-empty label list is required for this kind of task")
        if seq2seq:
            if self.input is None:
                raise Mismatch("input", "a seq2seq task needs {template, target}")
            for key in ("template", "target"):
                if not getattr(self.input, key):
                    raise Mismatch(f"input.{key}", "a non-empty string is required")
            if labelled and set(self.input.verbalizer or {}) != set(labels):
                raise Mismatch("input.verbalizer", "a text-to-text classifier needs one output text per label "
                                                   f"({', '.join(labels)})")
        elif self.input is not None:
            raise Mismatch("input", "only seq2seq tasks have an input template")
        if not self.sources:
            raise Mismatch("sources", "at least one source is required")
        for name, source in self.sources.items():
            if source.input is not None and not seq2seq:
                raise Mismatch(f"sources.{name}.input", "only seq2seq tasks have an input template")
        self.hp = Hyperparameters().updated(self.hparams or {}, "hparams")
        known = [f.name for f in fields(Hyperparameters)]
        for key, values in (self.grid or {}).items():
            if key not in known:
                close = difflib.get_close_matches(key, known, n=1)
                raise Mismatch(f"grid.{key}", "not a hyperparameter" + (f" (did you mean '{close[0]}'?)" if close else ""))
            for i, value in enumerate(values):
                try:
                    self.hp.updated({key: value}, "")
                except Mismatch as exc:
                    raise Mismatch(f"grid.{key}[{i}]", exc.message) from None

    def to_task(self, path: str) -> TaskDef:
        spec = None
        if self.input is not None:
            given = self.input.given()
            spec = InputSpec(template=given["template"], target=given["target"], prefix=given.get("prefix", {}),
                             verbalizer=given.get("verbalizer"))
        grid = self.grid or GLUES_GRID
        return TaskDef(name=self.name, description=self.description, kind=self.kind, head=self.head,
                       metric=self.metric.to_dict(), sources={n: s.to_source(n) for n, s in self.sources.items()},
                       labels=list(self.labels or []),
                       published={"task": self.published.task, "metric": self.published.metric} if self.published else None,
                       hparams=self.hp, grid={k: list(v) for k, v in grid.items()}, path=path, input=spec)
