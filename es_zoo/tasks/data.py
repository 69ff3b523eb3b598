"""Load a task's data into a typed ``datasets.DatasetDict``: from the published files under a data
folder, from es-zoo's shipped fixtures, from parquet files, or from a Hub dataset id (parquet, one
config per task; dataset loading scripts no longer run in datasets 5).

Example:
    >>> from es_zoo.tasks.definitions import load_task
    >>> data = load_task_data(load_task("pos"), source="shipped")
    >>> sorted(data.dataset), data.dataset["train"].features["upos"].feature.names[4]
    (['test', 'train'], 'CCONJ')
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from es_zoo.resources import DATA_DIR
from es_zoo.tasks import readers
from es_zoo.tasks.datasets import SEQ2SEQ_COLUMNS, quiet_datasets, to_dataset_dict
from es_zoo.tasks.definitions import SUITES, TaskDef, TaskError, is_split_name, load_task
from es_zoo.tasks.hub_sources import fetch, is_local_snapshot_root, load_hub_splits, offline_reason

EMBEDDED_TASK_DIR = DATA_DIR / "tasks"
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
LABEL_COLUMNS = {"pair": "label", "document": "label", "ner": "ner_tags", "pos": "upos", "parsing": "upos"}


@dataclass
class TaskData:
    """A task's splits and where they came from (recorded in results.json and the model card)."""

    dataset: Any  # datasets.DatasetDict
    source: str  # the task source it stands for (its licence and metric apply)
    origin: str  # "files", "parquet" or "hub:ORG/NAME"
    files: dict[str, list[str]] = field(default_factory=dict)
    license: str = ""
    labels: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    citation: str = ""
    hub: dict[str, Any] = field(default_factory=dict)  # per split: Hub id, config, revision, files
    changed: dict[str, Any] = field(default_factory=dict)  # splits whose size is not the published one

    def describe(self) -> dict[str, Any]:
        out = {"source": self.source, "origin": self.origin, "files": self.files, "license": self.license,
               "citation": self.citation, "sizes": {k: len(v) for k, v in self.dataset.items()}, "notes": self.notes}
        if self.hub:
            out["hub"] = self.hub
        if self.changed:
            out["changed"] = self.changed
        return out


def read_split(task: TaskDef, fmt: str, paths: list[Path], labels: list[str], fields: dict | None = None,
               notes: list[str] | None = None) -> list[dict]:
    """The rows of one split: its files read in order and concatenated (``parallel``: the files come
    in (source, target) pairs)."""
    if fmt == "parallel":
        if len(paths) % 2:
            raise TaskError(f"task '{task.name}': a parallel split needs (source file, target file) pairs, got "
                            f"{len(paths)} files: {', '.join(str(p) for p in paths)}")
        rows = []
        for src, tgt in zip(paths[::2], paths[1::2]):
            rows.extend(readers.read_parallel(src, tgt))
        return rows
    rows = []
    for p in paths:
        rows.extend(read_file(fmt, p, labels, kind=task.kind, fields=fields, notes=notes))
    return rows


def _generative_qa(rows: list[dict], path: Path, notes: list[str] | None) -> list[dict]:
    """SQuAD questions as generative QA: the answer texts are the references, the first the target.
    Empty answer strings (2,355 alternates of SQuAD-es v1.1 dev small are empty, a translation
    artefact) are not references; how many were left out is noted. A question with no non-empty
    answer is an error."""
    out, dropped = [], 0
    for r in rows:
        texts = list(dict.fromkeys(t for t in r["answers"]["text"] if t.strip()))
        dropped += sum(1 for t in r["answers"]["text"] if not t.strip())
        if not texts:
            raise readers.FormatError(path, None, f"question {r['id']!r} has no non-empty answer to generate")
        out.append({"id": r["id"], "question": r["question"], "context": r["context"], "answers": texts})
    if dropped and notes is not None:
        notes.append(f"{path.name}: {dropped} empty answer strings are not used as references")
    return out


def read_file(fmt: str, path: Path, labels: list[str], kind: str | None = None, fields: dict | None = None,
              notes: list[str] | None = None) -> list[dict]:
    """One published file through the reader of its format."""
    if fmt == "jsonl":
        columns = SEQ2SEQ_COLUMNS.get(kind or "", {})
        return readers.read_jsonl(path, fields or {c: c for c in columns})
    if fmt == "miam":
        return readers.read_miam(path, fields=fields)
    if fmt == "squad" and kind == "generative_qa":
        return _generative_qa(readers.read_squad(path, allow_unanswerable=False), path, notes)
    if fmt == "conll2002":
        return readers.read_conll2002(path, labels=labels)
    if fmt == "conllu":
        return readers.read_conllu(path, upos=labels)
    if fmt == "xnli":
        return readers.read_xnli(path, labels=labels)
    if fmt == "pawsx":
        return readers.read_pawsx(path, labels=labels)
    if fmt == "mldoc":
        return readers.read_mldoc(path, labels=labels)
    if fmt == "squad":
        return readers.read_squad(path)
    raise TaskError(f"no reader for format '{fmt}'")


def _resolve(entry: list[str], data_dir: Path | None) -> tuple[Path | None, list[Path]]:
    """The first existing file among an entry's alternatives, and every path tried."""
    tried = []
    for name in entry:
        if name.startswith("embedded:"):
            p = EMBEDDED_TASK_DIR / name.split(":", 1)[1]
        elif data_dir is None:
            continue
        else:
            p = data_dir / name
        tried.append(p)
        if p.is_file():
            return p, tried
    return None, tried


def config_name(task: str, source: str) -> str:
    """The config of a task source in an es-zoo suite dataset (``es-zoo datasets build``): the task name
    for the task's first-listed source, ``TASK-SOURCE`` for the others."""
    return task if source == load_task(task).default_source else f"{task}-{source}"


def load_task_data(task: TaskDef, source: str | None = None, data_dir: str | Path | None = None,
                   files: dict[str, list[str]] | None = None, accept_changed: bool = False) -> TaskData:
    """The task's splits as a typed DatasetDict.

    Without ``data_dir`` a source with a Hub home (``hub`` in its YAML) is read from the Hub at its
    pinned revision (see :mod:`es_zoo.tasks.hub_sources`); ``accept_changed`` scores a Hub copy whose
    split sizes are not the published ones (marked in the results) instead of refusing it.

    ``data_dir`` is a folder holding the published files (paths as the task definition lists them), a
    folder holding Hub snapshots as ``ORG/NAME/`` (``es-zoo data download --local-dir``), a
    folder of parquet files (``<config>/<split>*.parquet``, as ``es-zoo datasets build`` writes them) or
    a Hub dataset id with those configs (see :func:`config_name`). ``files`` (``{split: [path, ...]}``) names the files
    directly and wins over both. A split whose files are all absent is left out (and noted); a split
    with only some of its files present is an error, because scoring on part of a split would be
    silently wrong.
    """
    src = task.source(source)
    labels = task.labels_for(source)
    if files:
        return _from_files(task, src, labels, {split: [Path(f) for f in paths] for split, paths in files.items()},
                           notes=[])
    if data_dir is not None:
        d = Path(str(data_dir)).expanduser()
        if d.is_dir() and is_local_snapshot_root(d, src.hub):
            return _from_hub_source(task, src, labels, d, accept_changed)
        config = config_name(task.name, src.name)
        parquet_root = d / config if (d / config).is_dir() else d
        if d.is_dir() and (any(parquet_root.glob("*.parquet")) or any(parquet_root.glob("*/*.parquet"))):
            if parquet_root == d and (d / "es_zoo_dataset.json").is_file():  # built by `es-zoo datasets build`
                raise TaskError(f"{d}: this es-zoo dataset has no config '{config}' (task '{task.name}', source "
                                f"'{src.name}'); configs: {', '.join(sorted(x.name for x in d.iterdir() if x.is_dir()))}")
            return _from_parquet(task, parquet_root, labels, src)
        if not d.is_dir():
            if _HUB_ID.match(str(data_dir)):
                return _from_hub(task, str(data_dir), labels, src, config)
            raise TaskError(f"--data-dir {data_dir}: no such folder (and not a Hub dataset id ORG/NAME)")
    else:
        d = None
        if src.hub is not None and not src.hub.unavailable and not src.embedded:
            return _from_hub_source(task, src, labels, None, accept_changed)
    found: dict[str, list[Path]] = {}
    notes: list[str] = []
    missing_report = []
    for split, entries in src.files.items():
        resolved = [_resolve(e, d) for e in entries]
        present = [p for p, _ in resolved if p is not None]
        if present and len(present) < len(entries):
            absent = [" or ".join(str(t) for t in tried) for p, tried in resolved if p is None]
            raise TaskError(f"task '{task.name}' (source '{src.name}'): the {split} split is {len(entries)} files "
                            f"and only {len(present)} were found; missing: {'; '.join(absent)}")
        if present:
            found[split] = present
        else:
            tried = [str(t) for _, ts in resolved for t in ts]
            missing_report.append(f"{split}: {', '.join(tried) or '(no --data-dir given)'}")
            notes.append(f"no {split} split found")
    if not found:
        hub = f" (no Hub copy: {src.hub.unavailable})" if src.hub is not None and src.hub.unavailable else ""
        raise TaskError(f"task '{task.name}' (source '{src.name}'): no data found{hub}. Looked for "
                        + "; ".join(missing_report)
                        + ". Pass --data-dir with the published files, or name them with --train/--validation/--test.")
    return _from_files(task, src, labels, found, notes)


def _from_files(task: TaskDef, src: Any, labels: list[str], files: dict[str, list[Path]], notes: list[str]) -> TaskData:
    for split in files:
        if not is_split_name(split):
            raise TaskError(f"split '{split}' is not train, validation, test or test_<name>")
    splits = {split: read_split(task, src.format, paths, labels, src.fields, notes) for split, paths in files.items()}
    ds = to_dataset_dict(splits, task.kind, labels)
    return TaskData(ds, src.name, "files", {k: [_shown(p) for p in v] for k, v in files.items()}, src.license, labels,
                    notes, citation=src.citation or "")


def _from_hub_source(task: TaskDef, src: Any, labels: list[str], local_root: Path | None,
                     accept_changed: bool) -> TaskData:
    def read_published(files: list[Path], notes: list[str]) -> list[dict]:
        return read_split(task, src.format, files, labels, src.fields, notes)

    splits, notes, provenance = load_hub_splits(task, src, labels, local_root, accept_changed, read_published)
    ds = to_dataset_dict(splits, task.kind, labels)
    origin = "hub:" + src.hub.describe() + (" (local snapshot)" if local_root is not None else "")
    return TaskData(ds, src.name, origin, {}, src.license, labels, notes, citation=src.citation or "",
                    hub=provenance["hub"], changed=provenance["changed"])


def _shown(p: Path) -> str:
    """A path as recorded in results: shipped fixtures by name, never a machine-specific prefix."""
    try:
        return "embedded:" + str(p.resolve().relative_to(EMBEDDED_TASK_DIR.resolve()))
    except ValueError:
        return p.name if p.is_absolute() else str(p)


def _check_features(task: TaskDef, ds: Any, labels: list[str], where: str) -> None:
    column = LABEL_COLUMNS.get(task.kind)
    for split, part in ds.items():
        if column is None:
            continue
        if column not in part.features:
            raise TaskError(f"{where}: split '{split}' has no '{column}' column (columns: {list(part.features)})")
        feat = part.features[column]
        feat = getattr(feat, "feature", feat)
        names = getattr(feat, "names", None)
        if names != labels:
            raise TaskError(f"{where}: split '{split}' column '{column}' has labels {names}, but task "
                            f"'{task.name}' declares {labels}")


def _from_parquet(task: TaskDef, root: Path, labels: list[str], src: Any) -> TaskData:
    from datasets import load_dataset

    data_files: dict[str, list[str]] = {}
    shards = [(p.stem.split("-")[0].split(".")[0], p) for p in root.glob("*.parquet")]
    shards += [(d.name, p) for d in root.iterdir() if d.is_dir() for p in d.glob("*.parquet")]
    for split, p in sorted(shards, key=lambda x: str(x[1])):
        if not is_split_name(split):
            raise TaskError(f"{p}: a parquet shard must be named <split>[-NNNNN...].parquet (or sit in a <split>/ "
                            "folder) with split train, validation, test or test_<name>")
        data_files.setdefault(split, []).append(str(p))
    if not data_files:
        raise TaskError(f"{root}: parquet files must be named train*/validation*/test*.parquet")

    with quiet_datasets():
        ds = load_dataset("parquet", data_files=data_files)
    _check_features(task, ds, labels, str(root))
    return TaskData(ds, src.name, "parquet", {k: [Path(p).name for p in v] for k, v in data_files.items()},
                    src.license, labels)


def _from_hub(task: TaskDef, repo_id: str, labels: list[str], src: Any, config: str) -> TaskData:
    from datasets import load_dataset

    try:
        ds = load_dataset(repo_id, config)
    except Exception as exc:  # noqa: BLE001 - offline, no such repo or config: one clear message
        raise TaskError(
            f"could not load config '{config}' of the Hub dataset '{repo_id}' ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0][:200]}). Offline, download it elsewhere with `hf download {repo_id} "
            "--repo-type dataset --local-dir DIR` and pass --data-dir DIR."
        ) from None
    _check_features(task, ds, labels, repo_id)
    return TaskData(ds, src.name, f"hub:{repo_id}", {}, src.license, labels)



def download_suite(suite: str, tasks: list[str] | None, sources: dict[str, str] | None, local_dir: str | None,
                   accept_changed: bool, echo: Any = print) -> int:
    """``es-zoo data download``: fetch every Hub home of the suite's task sources (each repo once), load
    and check each source as ``evaluate`` would, print where the files went; returns how many failed."""
    if suite not in SUITES:
        raise TaskError(f"unknown suite '{suite}'; suites: {', '.join(SUITES)}")
    root = Path(local_dir).expanduser() if local_dir else None
    offline = offline_reason()
    failed, shown = 0, set()
    for name in tasks or SUITES[suite]:
        task = load_task(name)
        if task.suite != suite:
            raise TaskError(f"task '{name}' belongs to the {task.suite} suite, not {suite}")
        for sname, src in task.sources.items():
            if (sources or {}).get(name) not in (None, sname):
                continue
            if src.hub is None or src.hub.unavailable:
                if sname != "shipped":
                    echo(f"{name}/{sname}: no Hub copy" + (f" ({src.hub.unavailable})" if src.hub else "")
                         + "; pass --data-dir with the published files")
                continue
            try:
                for repo, revision, patterns in src.hub.repos():  # a repo two sources share: its files once
                    folder = fetch(repo, revision, patterns, None, offline, local_dir=root)
                    if (repo, revision) not in shown:
                        shown.add((repo, revision))
                        echo(f"{repo}@{revision}: {folder}")
                data = load_task_data(task, source=sname, data_dir=root, accept_changed=accept_changed)
            except TaskError as exc:
                failed += 1
                echo(f"{name}/{sname}: {exc}")
                continue
            sizes = ", ".join(f"{k} {len(v):,}" for k, v in data.dataset.items())
            echo(f"{name}/{sname}: checked ({sizes}); licence: {src.license}")
    if root is not None:
        echo(f"files under {root}; on the offline machine pass --data-dir {root}")
    else:
        from huggingface_hub import constants

        echo(f"files in the Hub cache ({constants.HF_HUB_CACHE}); `es-zoo evaluate` without --data-dir reads them "
             "there, also offline")
    return failed
