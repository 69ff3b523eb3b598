"""Task definitions as data: ``recipes/tasks/<name>.yaml``, one file per GLUES task.

A definition says what a task is (its kind, the model head, its label set, the metric that scores it,
the published number it is compared with), where its data comes from (one or more *sources*, each a
published format with the files of each split, its licence and citation) and the default
hyperparameters of a fine-tune. It is read strictly: an unknown key, a wrong type or a source without
files is an error naming the file.

File paths of a source are relative to ``--data-dir``; each entry of a split is one file, given as a
list of alternative names (the first that exists is read: published distributions name the same file
differently). ``embedded:NAME`` is a small redistributable fixture shipped in ``es_zoo/data/tasks``.

Example:
    >>> t = load_task("ner")
    >>> t.head, t.metric["main"], t.labels[:3]
    ('token', 'f1', ['O', 'B-PER', 'I-PER'])
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any


from es_zoo.errors import EsZooError
from es_zoo.resources import recipes_dir

HEADS = ("sequence", "token", "parser", "qa", "seq2seq")
FORMATS = ("conll2002", "conllu", "xnli", "pawsx", "mldoc", "squad", "jsonl", "parallel", "miam")
# GLUES kinds, then the seq2seq kinds (``pair`` and ``document`` also serve text-to-text classification)
KINDS = ("pair", "document", "ner", "pos", "parsing", "qa",
         "summarization", "split_rephrase", "generative_qa", "dialogue", "translation")
METRICS = ("accuracy", "ner_f1", "attachment", "squad_v1", "mlqa",
           "rouge", "sari", "generative_qa", "dialogue", "translation")
FAMILIES = ("bart", "t5", "bert2bert")

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
    truncation_side: str = "right"  # "left" drops the oldest turns of a dialogue first
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

    def replace(self, **changes: Any) -> "Hyperparameters":
        import dataclasses

        unknown = set(changes) - {f.name for f in fields(self)}
        if unknown:
            raise TaskError(f"unknown hyperparameter(s) {sorted(unknown)}; known: {[f.name for f in fields(self)]}")
        types = {f.name: str(f.type) for f in fields(self)}
        for key, value in list(changes.items()):
            # YAML 1.1 (``--set learning_rate=2e-3``) reads scientific notation as a string
            if isinstance(value, str) and types[key] == "bool":
                if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                    raise TaskError(f"hyperparameter {key}={value!r}: expected true or false")
                changes[key] = value.lower() in ("true", "1", "yes")
            elif isinstance(value, str) and ("float" in types[key] or "int" in types[key]):
                try:
                    changes[key] = float(value) if "float" in types[key] else int(value)
                except ValueError:
                    raise TaskError(f"hyperparameter {key}={value!r}: expected a number") from None
        try:
            return dataclasses.replace(self, **changes)
        except (ValueError, TypeError) as exc:
            raise TaskError(f"bad hyperparameters {changes}: {exc}") from None

    def to_dict(self) -> dict[str, Any]:
        import dataclasses

        return dataclasses.asdict(self)


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
    hub: Any = None  # es_zoo.tasks.hub_sources.HubSource: the source's Hub home (or why it has none)

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
        import dataclasses

        if self.input is None:
            raise TaskError(f"task '{self.name}' is not a seq2seq task")
        override = self.source(source).input or {}
        return dataclasses.replace(self.input, **override) if override else self.input


# The published GLUES protocol: batch {16, 32, 64}, learning rate 1e-5 .. 5e-5, epochs {2, 3, 4}.
GLUES_GRID = {"batch_size": [16, 32, 64], "learning_rate": [1e-5, 2e-5, 3e-5, 4e-5, 5e-5], "epochs": [2, 3, 4]}

_TASK_KEYS = {"name", "description", "kind", "head", "labels", "metric", "published", "sources", "hparams", "grid",
              "input"}
_SOURCE_KEYS = {"format", "files", "license", "url", "citation", "note", "labels", "metric", "fields", "input",
                "hub"}
_INPUT_KEYS = {"template", "target", "prefix", "verbalizer"}
SPLIT_NAMES = ("train", "validation", "test")


def is_split_name(name: str) -> bool:
    """train, validation, test, or an extra test set ``test_<name>`` (e.g. ``test_flores200``)."""
    return name in SPLIT_NAMES or (name.startswith("test_") and name[5:].replace("-", "_").isidentifier())


def _input_spec(path: Path, where: str, data: Any, partial: bool) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise _fail(path, f"{where}: expected a mapping with {', '.join(sorted(_INPUT_KEYS))}")
    _check_keys(path, where, data, _INPUT_KEYS)
    if not partial:
        for key in ("template", "target"):
            if not isinstance(data.get(key), str) or not data[key]:
                raise _fail(path, f"{where}.{key}: a non-empty string is required")
    prefix = data.get("prefix", {})
    if not isinstance(prefix, dict) or any(k not in FAMILIES for k in prefix):
        raise _fail(path, f"{where}.prefix: expected {{family: text}} for families {FAMILIES}")
    return {k: ({kk: str(vv or "") for kk, vv in v.items()} if k == "prefix" else v) for k, v in data.items()}


def tasks_dir() -> Path:
    return recipes_dir() / "tasks"


def list_tasks() -> list[str]:
    """Names of the shipped task definitions."""
    return sorted(p.stem for p in tasks_dir().glob("*.yaml"))


def _fail(path: Path, message: str) -> TaskError:
    return TaskError(f"{path}: {message}")


def _check_keys(path: Path, where: str, data: dict, allowed: set[str]) -> None:
    for key in data:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), sorted(allowed), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise _fail(path, f"{where}: unknown key '{key}'{hint}; allowed: {', '.join(sorted(allowed))}")


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
    from es_zoo.safeyaml import YamlLimitError, load_yaml

    try:
        data = load_yaml(p.read_bytes(), str(p))
    except OSError as exc:
        raise _fail(p, f"cannot read: {exc.strerror or exc}") from None
    except YamlLimitError as exc:
        raise TaskError(str(exc)) from None
    if not isinstance(data, dict):
        raise _fail(p, "expected a mapping at the top level")
    _check_keys(p, "task", data, _TASK_KEYS)
    for key in ("name", "description", "kind", "head", "metric", "sources"):
        if key not in data:
            raise _fail(p, f"missing required key '{key}'")
    if data["kind"] not in KINDS:
        raise _fail(p, f"kind '{data['kind']}' is not one of {KINDS}")
    if data["head"] not in HEADS:
        raise _fail(p, f"head '{data['head']}' is not one of {HEADS}")
    metric = data["metric"]
    if not isinstance(metric, dict) or metric.get("name") not in METRICS or "main" not in metric:
        raise _fail(p, f"metric must be {{name: one of {METRICS}, main: KEY}}")
    seq2seq = data["head"] == "seq2seq"
    labelled = data["kind"] in ("pair", "document", "ner", "pos", "parsing")
    if (labelled or data["head"] not in ("qa", "seq2seq")) and not data.get("labels"):
        raise _fail(p, "labels: a non-empty label list is required for this kind of task")
    spec = None
    if seq2seq:
        if "input" not in data:
            raise _fail(p, "input: a seq2seq task needs {template, target}")
        spec = InputSpec(**_input_spec(p, "input", data["input"], partial=False))
        if labelled and set(spec.verbalizer or {}) != set(data["labels"]):
            raise _fail(p, "input.verbalizer: a text-to-text classifier needs one output text per label "
                           f"({', '.join(data['labels'])})")
    elif "input" in data:
        raise _fail(p, "input: only seq2seq tasks have an input template")
    sources = {}
    if not isinstance(data["sources"], dict) or not data["sources"]:
        raise _fail(p, "sources: at least one source is required")
    for sname, s in data["sources"].items():
        if not isinstance(s, dict):
            raise _fail(p, f"sources.{sname}: expected a mapping")
        _check_keys(p, f"sources.{sname}", s, _SOURCE_KEYS)
        if s.get("format") not in FORMATS:
            raise _fail(p, f"sources.{sname}.format '{s.get('format')}' is not one of {FORMATS}")
        if not s.get("license"):
            raise _fail(p, f"sources.{sname}: a license is required (say 'unknown' if it is)")
        files = s.get("files")
        if not isinstance(files, dict) or not files:
            raise _fail(p, f"sources.{sname}.files: expected {{split: [file, ...]}}")
        norm: dict[str, list[list[str]]] = {}
        for split, entries in files.items():
            if not is_split_name(str(split)):
                raise _fail(p, f"sources.{sname}.files: split '{split}' is not train, validation, test or "
                               "test_<name> (an extra test set)")
            if not isinstance(entries, list) or not entries:
                raise _fail(p, f"sources.{sname}.files.{split}: expected a list of files")
            norm[split] = [[str(x) for x in e] if isinstance(e, list) else [str(e)] for e in entries]
        if s.get("metric") is not None and s["metric"].get("name") not in METRICS:
            raise _fail(p, f"sources.{sname}.metric.name must be one of {METRICS}")
        if s.get("fields") is not None and not (isinstance(s["fields"], dict)
                                                and all(isinstance(v, str) for v in s["fields"].values())):
            raise _fail(p, f"sources.{sname}.fields: expected {{column: field name in the file}}")
        source_input = None
        if s.get("input") is not None:
            if data["head"] != "seq2seq":
                raise _fail(p, f"sources.{sname}.input: only seq2seq tasks have an input template")
            source_input = _input_spec(p, f"sources.{sname}.input", s["input"], partial=True)
        hub = None
        if s.get("hub") is not None:
            from es_zoo.tasks.hub_sources import parse_hub

            hub = parse_hub(lambda m: _fail(p, m), f"sources.{sname}.hub", s["hub"], is_split_name)
        sources[sname] = Source(name=sname, format=s["format"], files=norm, license=str(s["license"]),
                                url=s.get("url"), citation=s.get("citation"), note=s.get("note"),
                                labels=s.get("labels"), metric=s.get("metric"), fields=s.get("fields"),
                                input=source_input, hub=hub)
    try:
        hp = Hyperparameters(**(data.get("hparams") or {}))
    except TypeError as exc:
        raise _fail(p, f"hparams: {exc}") from None
    except ValueError as exc:
        raise _fail(p, f"hparams: {exc}") from None
    grid = data.get("grid") or GLUES_GRID
    for key in grid:
        if key not in {f.name for f in fields(Hyperparameters)}:
            raise _fail(p, f"grid: '{key}' is not a hyperparameter")
    return TaskDef(name=str(data["name"]), description=str(data["description"]), kind=data["kind"],
                   head=data["head"], metric=dict(metric), sources=sources, labels=list(data.get("labels") or []),
                   published=data.get("published"), hparams=hp, grid={k: list(v) for k, v in grid.items()},
                   path=str(p), input=spec)
