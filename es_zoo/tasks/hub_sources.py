"""Task sources read from their Hub homes: each task source in ``recipes/tasks/*.yaml`` may carry a
``hub`` block naming the dataset that holds it on the Hugging Face Hub, pinned to a revision, with the
parquet files of each es-zoo split, the columns that map into the task's features and the published
split sizes. Loading downloads exactly those files (``huggingface_hub.snapshot_download``, so they
sit in the Hub cache and load offline afterwards), reads them with ``datasets``' parquet builder (its
cache), converts each row into the record the file readers produce and runs the same checks on it:
labels inside the task's set (ClassLabel ids are mapped by *name*, never by position), answers at
their offsets, trees that are trees. A row that fails names the dataset, its split and the row.

The ``hub`` block of a source::

    hub:
      id: facebook/xnli                  # dataset repo
      config: es                         # the config the files belong to (shown, used for downloads)
      revision: 1e5c3f1...               # a commit, or the parquet conversion ref of a script dataset
      from: "dataset card (dataset_info), https://huggingface.co/datasets/facebook/xnli"
      columns: {sentence1: premise, sentence2: hypothesis, label: label}
      labels: {"0": entailment}          # optional: Hub label name -> task label, where names differ
      splits:
        train: {files: [es/train-*.parquet], rows: 392702}
        test: {files: [es/test-*.parquet], rows: 5010, id: OTHER/REPO, revision: ...}  # per-split overrides

or ``hub: {unavailable: "why there is no Hub copy"}`` (MLDoc: the Reuters texts are not
redistributable). The block is checked with its task file (``HubFile`` in :mod:`es_zoo.tasks.definitions`,
which also holds :class:`HubSource`); this module fetches and converts.

Offline (``HF_HUB_OFFLINE=1`` / ``HF_DATASETS_OFFLINE=1``) or with the endpoint unreachable, only what
is cached is used; a missing dataset is one message with the ``hf download`` command to run elsewhere.
A folder given as ``--data-dir`` that holds ``ORG/NAME/`` (what ``hf download --local-dir DIR/ORG/NAME``
or ``es-zoo data download --local-dir DIR`` writes) is read instead of the cache.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Iterable

from es_zoo.loading import endpoint_unreachable
from es_zoo.safeyaml import short
from es_zoo.tasks.datasets import quiet_datasets
# the hub block's schema and its objects live with the task definitions (read with the task file)
from es_zoo.tasks.definitions import HubSource, HubSplit, TaskError
from es_zoo.tasks.readers import UD_RELATIONS, answer_problem, dialogue_turns, tree_problem

# The columns each task kind reads from a Hub row (``id`` is optional everywhere: ``SPLIT:ROW`` when absent).
KIND_COLUMNS = {
    "pair": ("sentence1", "sentence2", "label"),
    "ner": ("tokens", "ner_tags", "pos_tags"),
    "pos": ("tokens", "upos"),
    "parsing": ("tokens", "upos", "head", "deprel"),
    "qa": ("context", "question", "answers"),
    "generative_qa": ("context", "question", "answers"),
    "summarization": ("text", "summary"),
    "split_rephrase": ("source", "target"),
    "translation": ("source", "target"),
    "dialogue": ("speaker", "utterance", "dialogue"),
}
_OPTIONAL = {"id", "title", "pos_tags"}


class HubDataError(TaskError):
    """A Hub task source that cannot be loaded or does not agree with what es-zoo expects of it."""


# ------------------------------------------------------------------------------------------- fetching
def offline_reason() -> str | None:
    """Why the Hub cannot be reached now (offline settings, or the endpoint does not accept a connection
    within a few seconds; probed once per process), or None."""
    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
        if os.environ.get(var, "").strip().upper() in ("1", "ON", "YES", "TRUE"):
            return f"{var}={os.environ[var]}"

    return endpoint_unreachable()


def download_command(repo: str, revision: str, patterns: Iterable[str], local_dir: str = "DIR") -> str:
    include = " ".join(f"--include '{p}'" for p in patterns)
    return f"hf download --repo-type dataset {repo} --revision {revision} {include} --local-dir {local_dir}/{repo}"


def _match(folder: Path, patterns: Iterable[str]) -> list[Path]:
    files = []
    for pattern in patterns:
        hits = sorted(p for p in folder.glob(pattern) if p.is_file())
        if not hits:
            return []
        files.extend(hits)
    return files


def fetch(repo: str, revision: str, patterns: tuple[str, ...], local_root: Path | None = None,
          offline: str | None = None, local_dir: Path | None = None) -> Path:
    """The folder holding ``patterns`` of ``repo`` at ``revision``: ``local_root/ORG/NAME`` when it has
    them, else the Hub cache (downloaded when online). ``local_dir`` downloads into ``local_dir/ORG/NAME``."""
    if local_root is not None and _match(local_root / repo, patterns):
        return local_root / repo
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    how = (f"On a machine with network run `{download_command(repo, revision, patterns)}`, copy DIR here and "
           "pass --data-dir DIR (or run `es-zoo data download --local-dir DIR` there)")
    target = {"local_dir": str(local_dir / repo)} if local_dir is not None else {}
    try:
        folder = Path(snapshot_download(repo, repo_type="dataset", revision=revision, allow_patterns=list(patterns),
                                        local_files_only=offline is not None, **target))
    except LocalEntryNotFoundError:
        raise HubDataError(f"{repo}@{revision}: not in the local Hub cache and the Hub cannot be reached ({offline}). "
                           + how) from None
    except HfHubHTTPError as exc:
        status = getattr(getattr(exc, "response", None), "status_code", None)
        raise HubDataError(f"{repo}@{revision}: the Hub answered {status or type(exc).__name__} "
                           f"({short(str(exc).splitlines()[0], 160)}). " + how) from None
    except (OSError, ValueError) as exc:
        raise HubDataError(f"{repo}@{revision}: download failed ({type(exc).__name__}: "
                           f"{short(str(exc).splitlines()[0] if str(exc) else '', 160)}). " + how) from None
    if not _match(folder, patterns):
        missing = [p for p in patterns if not _match(folder, [p])]
        state = "is cached without" if offline else "has no file matching"
        raise HubDataError(f"{repo}@{revision} {state} {', '.join(missing)}" + (f" ({offline}). " + how if offline else
                           "; the dataset's layout changed since es-zoo pinned it"))
    return folder


# ----------------------------------------------------------------------------------------- converting
class _Rows:
    """One split of a Hub dataset, with what is needed to convert its rows and to name a bad one."""

    def __init__(self, hub: HubSource, spec: HubSplit, part: Any, task: Any, labels: list[str]) -> None:
        self.hub, self.spec, self.part, self.task, self.labels = hub, spec, part, task, labels
        self.where = f"{spec.repo}" + (f" (config {spec.config})" if spec.config else "") + f", split '{spec.split}'"

    def fail(self, index: int | None, message: str) -> HubDataError:
        return HubDataError(f"{self.where}" + (f", row {index}" if index is not None else "") + f": {message}")

    def column(self, name: str) -> str:
        return dict(self.spec.columns).get(name, self.hub.columns.get(name, name))

    def feature(self, name: str) -> Any:
        feat: Any = self.part.features
        for p in self.column(name).split("."):
            try:
                feat = feat[p]
            except (KeyError, TypeError):
                return None
        return feat

    def names(self, name: str) -> list[str] | None:
        """The ClassLabel names of a column (or of its items), or None for a text column."""
        feat = self.feature(name)
        feat = getattr(feat, "feature", feat)
        return list(feat.names) if hasattr(feat, "names") else None

    def label(self, value: Any, names: list[str] | None, index: int, what: str) -> str:
        name = names[value] if names is not None and isinstance(value, int) and 0 <= value < len(names) else value
        if names is not None and not isinstance(value, int):
            raise self.fail(index, f"{what} {short(str(value))}: expected a class id")
        name = self.hub.labels.get(str(name), str(name))
        if name not in self.labels:
            raise self.fail(index, f"{what} {short(name)} is not in the task's label set {self.labels}")
        return name

    def get(self, row: dict, name: str, index: int) -> Any:
        value: Any = row
        for p in self.column(name).split("."):
            if not isinstance(value, dict) or p not in value:
                raise self.fail(index, f"no column {self.column(name)!r} (the task's {name})")
            value = value[p]
        return value

    def text(self, row: dict, name: str, index: int) -> str:
        value = self.get(row, name, index)
        if not isinstance(value, str) or not value.strip():
            raise self.fail(index, f"column {self.column(name)!r} (the task's {name}) is empty or not text")
        return value

    def rows(self) -> Iterable[tuple[int, dict]]:
        for index, row in enumerate(self.part):
            yield index, row

    def ident(self, row: dict, index: int) -> str:
        if self.column("id").split(".")[0] in row:
            value = self.get(row, "id", index)
            if value not in (None, ""):
                return str(value)
        return f"{self.spec.split}:{index}"


def _pair(r: _Rows) -> list[dict]:
    names = r.names("label")
    out = []
    for i, row in r.rows():
        out.append({"id": r.ident(row, i), "sentence1": r.text(row, "sentence1", i),
                    "sentence2": r.text(row, "sentence2", i),
                    "label": r.label(r.get(row, "label", i), names, i, "label")})
    return out


def _ner(r: _Rows) -> list[dict]:
    tag_names, pos_names = r.names("ner_tags"), None
    has_pos = "pos_tags" in r.part.features or "pos_tags" in r.hub.columns
    if has_pos:
        pos_names = r.names("pos_tags")
    out = []
    for i, row in r.rows():
        tokens, tags = r.get(row, "tokens", i), r.get(row, "ner_tags", i)
        pos = r.get(row, "pos_tags", i) if has_pos else ["-"] * len(tokens)
        if not tokens:
            continue  # the Hub copies of CoNLL-2002 keep the empty sentence left by each -DOCSTART- line
        if not (len(tokens) == len(tags) == len(pos)) or not all(isinstance(t, str) and t for t in tokens):
            raise r.fail(i, f"{len(tokens)} tokens, {len(tags)} tags and {len(pos)} POS tags; expected one "
                            "non-empty token per tag")
        out.append({"id": r.ident(row, i), "tokens": list(tokens),
                    "pos_tags": [pos_names[p] if pos_names and isinstance(p, int) else str(p) for p in pos],
                    "ner_tags": [r.label(t, tag_names, i, "tag") for t in tags]})
    return out


def _ud(r: _Rows, parsing: bool) -> list[dict]:
    """UD sentences: rows whose UPOS is a drop label (multiword-token ranges, which carry "_") are not
    words and are left out, as the CoNLL-U reader leaves them out; heads are then checked as a tree."""
    upos_names = r.names("upos")
    out = []
    for i, row in r.rows():
        tokens, tags = r.get(row, "tokens", i), r.get(row, "upos", i)
        heads = r.get(row, "head", i) if parsing or "head" in r.part.features else [None] * len(tokens)
        rels = r.get(row, "deprel", i) if parsing or "deprel" in r.part.features else [None] * len(tokens)
        if not (len(tokens) == len(tags) == len(heads) == len(rels)):
            raise r.fail(i, f"{len(tokens)} tokens, {len(tags)} UPOS, {len(heads)} heads, {len(rels)} relations; "
                            "expected one of each per token")
        words, upos, head, deprel = [], [], [], []
        for t, tag, h, rel in zip(tokens, tags, heads, rels):
            name = upos_names[tag] if upos_names and isinstance(tag, int) and 0 <= tag < len(upos_names) else tag
            if str(name) in r.hub.drop_labels:
                continue
            if not isinstance(t, str) or not t:
                raise r.fail(i, f"word {len(words) + 1}: an empty form")
            words.append(t)
            upos.append(r.label(tag, upos_names, i, "UPOS"))
            if parsing:
                try:
                    head.append(int(h))
                except (TypeError, ValueError):
                    raise r.fail(i, f"word {len(words)}: HEAD {short(str(h))}, expected a word id (0 for the root)") from None
                if str(rel).split(":")[0] not in UD_RELATIONS:
                    raise r.fail(i, f"word {len(words)}: DEPREL {short(str(rel))} is not a UD relation")
                if (head[-1] == 0) != (rel == "root"):
                    raise r.fail(i, f"word {len(words)}: HEAD {head[-1]} with DEPREL {short(str(rel))}; the root "
                                    "(HEAD 0) and only it has DEPREL root")
                deprel.append(str(rel))
        if not words:
            raise r.fail(i, "a sentence with no words")
        rec = {"id": r.ident(row, i), "tokens": words, "upos": upos}
        if parsing:
            problem = tree_problem(head)
            if problem is not None:
                raise r.fail(i, problem[1])
            rec.update(head=head, deprel=deprel)
        out.append(rec)
    return out


def _qa(r: _Rows) -> list[dict]:
    out, seen = [], set()
    for i, row in r.rows():
        ident, context, question = r.ident(row, i), r.text(row, "context", i), r.text(row, "question", i)
        if ident in seen:
            raise r.fail(i, f"question {short(ident)} appears twice")
        seen.add(ident)
        answers = r.get(row, "answers", i)
        if isinstance(answers, list):  # a sequence of {text, answer_start} dicts
            answers = {"text": [a.get("text") for a in answers], "answer_start": [a.get("answer_start") for a in answers]}
        texts, starts = list(answers.get("text") or []), list(answers.get("answer_start") or [])
        if not texts or len(texts) != len(starts):
            raise r.fail(i, f"question {short(ident)}: expected answers with as many texts as answer_start values")
        for text, start in zip(texts, starts):
            if not isinstance(text, str) or not isinstance(start, int):
                raise r.fail(i, f"question {short(ident)}: an answer needs `text` and an integer `answer_start`")
            problem = answer_problem(context, text, start)
            if problem:
                raise r.fail(i, f"question {short(ident)}: {problem}")
        title = r.get(row, "title", i) if ("title" in r.part.features or "title" in r.hub.columns) else ""
        out.append({"id": ident, "title": title or "", "context": context, "question": question,
                    "answers": {"text": texts, "answer_start": starts}, "is_impossible": False})
    return out


def _generative_qa(r: _Rows, notes: list[str]) -> list[dict]:
    out, dropped = [], 0
    for i, rec in enumerate(_qa(r)):
        texts = list(dict.fromkeys(t for t in rec["answers"]["text"] if t.strip()))
        dropped += sum(1 for t in rec["answers"]["text"] if not t.strip())
        if not texts:
            raise r.fail(i, f"question {rec['id']!r} has no non-empty answer to generate")
        out.append({"id": rec["id"], "question": rec["question"], "context": rec["context"], "answers": texts})
    if dropped:
        notes.append(f"{r.where}: {dropped} empty answer strings are not used as references")
    return out


def _text_columns(r: _Rows, columns: tuple[str, ...]) -> list[dict]:
    out = []
    for i, row in r.rows():
        rec = {"id": r.ident(row, i)}
        for c in columns:
            value = r.get(row, c, i)
            if isinstance(value, list):  # several references: the first is the target
                if not value or not all(isinstance(v, str) and v.strip() for v in value):
                    raise r.fail(i, f"column {r.column(c)!r} (the task's {c}): expected non-empty strings")
                value = value[0]
            elif not isinstance(value, str) or not value.strip():
                raise r.fail(i, f"column {r.column(c)!r} (the task's {c}) is empty or not text")
            rec[c] = value
        out.append(rec)
    return out


def _dialogue(r: _Rows) -> list[dict]:
    def utterances():
        for i, row in r.rows():
            yield str(r.get(row, "speaker", i)), r.text(row, "utterance", i), str(r.get(row, "dialogue", i))

    out = dialogue_turns(utterances())
    if not out:
        raise r.fail(None, "no dialogue with two turns")
    return out


def convert(task: Any, hub: HubSource, spec: HubSplit, part: Any, labels: list[str], notes: list[str]) -> list[dict]:
    """The rows of one Hub split as the task's records, checked as the file readers check them."""
    r = _Rows(hub, spec, part, task, labels)
    kind = task.kind
    features = set(part.features)
    missing = [c for c in KIND_COLUMNS.get(kind, ()) if c not in _OPTIONAL
               and r.column(c).split(".")[0] not in features]
    if missing:
        raise r.fail(None, f"no column {', '.join(repr(r.column(c)) for c in missing)} (the task's "
                           f"{', '.join(missing)}); columns found: {', '.join(sorted(features))}")
    for column in ("label", "ner_tags", "upos"):
        if column in KIND_COLUMNS.get(kind, ()) and r.names(column) is not None:
            unknown = [n for n in r.names(column) if hub.labels.get(n, n) not in labels and n not in hub.drop_labels]
            if unknown:
                raise r.fail(None, f"column {r.column(column)!r} has labels {unknown} that task '{task.name}' does "
                                   f"not have ({labels}); map them by name with hub.labels")
    if kind == "pair":
        rows = _pair(r)
    elif kind == "ner":
        rows = _ner(r)
    elif kind in ("pos", "parsing"):
        rows = _ud(r, parsing=kind == "parsing")
    elif kind == "qa":
        rows = _qa(r)
    elif kind == "generative_qa":
        rows = _generative_qa(r, notes)
    elif kind == "dialogue":
        rows = _dialogue(r)
    elif kind in KIND_COLUMNS:
        rows = _text_columns(r, KIND_COLUMNS[kind])
    else:
        raise r.fail(None, f"es-zoo has no Hub converter for task kind '{kind}'")
    if not rows:
        raise r.fail(None, "no rows")
    return rows


def load_hub_splits(task: Any, src: Any, labels: list[str], local_root: Path | None = None,
                    accept_changed: bool = False,
                    read_published: Callable[[list[Path], list[str]], list[dict]] | None = None,
                    ) -> tuple[dict[str, list[dict]], list[str], dict]:
    """``({split: records}, notes, provenance)`` of a task source read from its Hub home.

    ``read_published(files, notes)`` reads a split of a ``format: published`` home with the source's file
    reader (es_zoo.tasks.data passes it; this module does not import the file loaders above it)."""
    from datasets import load_dataset

    hub: HubSource = src.hub
    offline = offline_reason() if local_root is None or not all(
        _match(local_root / r, p) for r, _, p in hub.repos()) else None
    folders: dict[tuple[str, str], Path] = {}
    errors = []
    for repo, revision, patterns in hub.repos():
        try:
            folders[(repo, revision)] = fetch(repo, revision, patterns, local_root, offline)
        except HubDataError as exc:
            errors.append(str(exc))
    if errors:
        raise HubDataError(f"task '{task.name}' (source '{src.name}'): " + " | ".join(errors))
    splits, notes, changed = {}, [], {}
    for split, spec in hub.splits.items():
        folder = folders[(spec.repo, spec.revision)]
        files = _match(folder, spec.files)
        if hub.format == "published":  # the source's own files: its reader, its checks, its row count
            if read_published is None:
                raise HubDataError(f"task '{task.name}' (source '{src.name}'): its Hub home holds the published "
                                   "files; load it with es_zoo.tasks.data.load_task_data")
            splits[split] = read_published(files, notes)
            n = len(splits[split])
        else:
            try:
                with quiet_datasets():
                    part = load_dataset("parquet", data_files={"rows": [str(f) for f in files]}, split="rows")
            except Exception as exc:  # noqa: BLE001 - a damaged or non-parquet file: one line naming it
                raise HubDataError(f"{spec.repo}@{spec.revision}, split '{split}': cannot read its parquet files "
                                   f"({type(exc).__name__}: {short(str(exc).splitlines()[0] if str(exc) else '', 200)});"
                                   f" expected parquet at {', '.join(spec.files)}") from None
            n = len(part)
            splits[split] = convert(task, hub, spec, part, labels, notes)
        if spec.rows is not None and n != spec.rows:
            changed[split] = {"rows": n, "published": spec.rows}
    if changed:
        what = "; ".join(f"{s} has {c['rows']:,} rows, published {c['published']:,}" for s, c in changed.items())
        if not accept_changed:
            raise HubDataError(f"task '{task.name}' (source '{src.name}', {hub.describe()}): the dataset is not the one "
                               f"es-zoo pinned: {what}. Scores on it would not be comparable; pass "
                               "--accept-changed-data to score it anyway (the results are marked CHANGED)")
        notes.append(f"CHANGED: {what}")
    provenance = {"hub": {s.split: {"id": s.repo, "config": s.config, "revision": s.revision,
                                    "files": [f for f in s.files]} for s in hub.splits.values()},
                  "changed": changed}
    return splits, notes, provenance


def is_local_snapshot_root(folder: Path, hub: HubSource | None) -> bool:
    """Whether ``folder`` holds the Hub files of ``hub`` as ``ORG/NAME/...`` (a downloaded snapshot)."""
    return bool(hub and not hub.unavailable and all(_match(folder / r, p) for r, _, p in hub.repos()))
