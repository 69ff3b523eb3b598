"""Suite datasets for the Hub: the GLUES or seq2seq task data, read by the suites' own readers, as one
parquet dataset with one config per task source, typed features and a dataset card.

datasets 5 no longer runs dataset scripts; a parquet dataset with ``configs`` in its card loads with
``datasets.load_dataset(REPO, CONFIG)`` and with ``es-zoo evaluate --data-dir REPO_OR_FOLDER``.

Layout written by :func:`build_dataset`::

    OUTPUT/README.md                      dataset card (metadata through DatasetCardData)
    OUTPUT/es_zoo_dataset.json            config -> task, source, licence, split sizes, files read
    OUTPUT/<config>/<split>-NNNNN-of-NNNNN.parquet

Example:
    >>> build_dataset("glues", "datasets/glues", source_names={"pos": "shipped"})  # doctest: +SKIP
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any, Callable

from es_zoo import __version__
from es_zoo.cards import _METRIC_NOTE, card_state, sign_card
from es_zoo.errors import EsZooError
from es_zoo.publish import DATASET_ALLOW, Plan, check_repo_id, collect, publish_files
from es_zoo.resources import model_cards_dir
from es_zoo.tasks.data import LABEL_COLUMNS, config_name, load_task_data
from es_zoo.tasks.datasets import features_for, quiet_datasets
from es_zoo.tasks.definitions import SUITES, TaskError, load_task
from es_zoo.tasks.hub_sources import HubDataError

MANIFEST = "es_zoo_dataset.json"
SHARD_ROWS = 50_000

# Licence texts of the task sources -> the Hub's licence ids (first match wins; longest names first).
_LICENSES = [
    (r"CC BY-NC-SA 4\.0", "cc-by-nc-sa-4.0"), (r"CC BY-NC-SA 3\.0", "cc-by-nc-sa-3.0"),
    (r"CC BY-NC 4\.0", "cc-by-nc-4.0"), (r"CC BY-SA 4\.0", "cc-by-sa-4.0"), (r"CC BY-SA 3\.0", "cc-by-sa-3.0"),
    (r"CC BY 4\.0", "cc-by-4.0"), (r"CC BY 2\.0", "cc-by-2.0"), (r"GPL-3\.0", "gpl-3.0"),
]
_TASK_CATEGORIES = {"pair": "text-classification", "document": "text-classification", "ner": "token-classification",
                    "pos": "token-classification", "parsing": "token-classification", "qa": "question-answering",
                    "summarization": "summarization", "translation": "translation",
                    "split_rephrase": "text2text-generation", "generative_qa": "text2text-generation",
                    "dialogue": "text2text-generation"}


class DatasetBuildError(EsZooError):
    """A suite dataset that cannot be built or does not agree with its own description."""


def license_ids(text: str) -> list[str]:
    """The Hub licence ids named in a source's licence text (``["other"]`` when none is recognised)."""
    ids = []
    for pattern, hub in _LICENSES:
        if re.search(pattern, text or "") and hub not in ids:
            ids.append(hub)
    return ids or ["other"]


def non_commercial(text: str) -> bool:
    return bool(re.search(r"non-commercial|\bNC\b|BY-NC", text or "", re.IGNORECASE))


def redistributable(text: str) -> bool:
    """Whether a source's licence text lets a copy of its data be published: not when it says so, when it
    limits use to a shared task or research setting (CoNLL-2002), when the data has no licence as a
    dataset (BiSECT) or when the licence is unknown."""
    return not re.search(r"not redistributable|research use in the context|not licensed as a dataset|^unknown$",
                         (text or "").strip(), re.IGNORECASE)


def _runs(suite: str, tasks: list[str] | None, source_names: dict[str, str] | None) -> list[tuple[str, str]]:
    """``(task, source)`` pairs to try: the named sources, else every source of every task of the suite
    except the shipped fixtures (named with ``--source TASK=shipped``)."""
    if suite not in SUITES:
        raise DatasetBuildError(f"unknown suite '{suite}'; suites: {', '.join(SUITES)}")
    names = list(tasks or SUITES[suite])
    for n in source_names or {}:
        if n not in names:
            names.append(n)
    out = []
    for n in names:
        task = load_task(n)
        if task.suite != suite:
            raise DatasetBuildError(f"task '{n}' belongs to the {task.suite} suite, not {suite}")
        if source_names and n in source_names:
            task.source(source_names[n])  # an unknown source is an error naming the known ones
            out.append((n, source_names[n]))
        elif not source_names or tasks:
            out += [(n, s) for s in task.sources if s != "shipped"]
    return out


def build_dataset(suite: str, output: str | Path, data_dir: str | Path | None = None, tasks: list[str] | None = None,
                  source_names: dict[str, str] | None = None, overwrite: bool = False,
                  echo: Callable[[str], Any] = print, accept_changed: bool = False) -> dict:
    """Read every task source of ``suite`` found under ``data_dir`` (or named in ``source_names``) with
    the suite's strict readers and write the parquet dataset and its card to ``output``. A source whose
    files are absent is skipped (listed); a malformed file stops the build with file and line."""
    out = Path(output).expanduser()
    if out.exists() and any(out.iterdir()):
        if not (out / MANIFEST).is_file():
            raise DatasetBuildError(f"--output {out}: the folder is not empty and holds no es-zoo dataset; choose "
                                    "an empty or new folder")
        if not overwrite:
            raise DatasetBuildError(f"--output {out} already holds an es-zoo dataset; pass --overwrite to rebuild it")
    explicit = set((source_names or {}).items())
    configs: dict[str, dict] = {}
    skipped: dict[str, str] = {}
    tmp = out.with_name(f".tmp-{out.name}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        for task_name, source in _runs(suite, tasks, source_names):
            task = load_task(task_name)
            name = config_name(task_name, source)
            try:
                data = load_task_data(task, source=source, data_dir=data_dir, accept_changed=accept_changed)
            except TaskError as exc:
                if (task_name, source) in explicit or not ("no data found" in str(exc) or isinstance(exc, HubDataError)):
                    raise
                skipped[name] = str(exc)
                continue
            if data.origin != "files" and not data.hub:
                raise DatasetBuildError(f"--data-dir {data_dir}: holds parquet files already (an es-zoo dataset?); "
                                        "build from the published files")
            echo(f"{name}: " + ", ".join(f"{k} {len(v)}" for k, v in data.dataset.items()))
            configs[name] = _write_config(tmp / name, task, data)
        if not configs:
            raise DatasetBuildError(f"no task of the {suite} suite has data"
                                    + (f" under {data_dir}" if data_dir else " (no --data-dir given)")
                                    + "; name shipped fixtures with --source TASK=shipped. Skipped: "
                                    + "; ".join(f"{k}: {v}" for k, v in skipped.items()))
        manifest = {"es_zoo_dataset": 1, "suite": suite, "es_zoo_version": __version__, "configs": configs,
                    "skipped": skipped}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        (tmp / "README.md").write_text(dataset_card_text(manifest), encoding="utf-8")
        shutil.rmtree(out, ignore_errors=True)
        tmp.replace(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return manifest


def _write_config(folder: Path, task: Any, data: Any) -> dict:
    folder.mkdir(parents=True)
    src = task.source(data.source)
    splits = {}
    for split, part in data.dataset.items():
        n = max(1, -(-len(part) // SHARD_ROWS))
        files = []
        for i in range(n):
            name = f"{split}-{i:05d}-of-{n:05d}.parquet"
            with quiet_datasets():
                part.shard(num_shards=n, index=i, contiguous=True).to_parquet(str(folder / name))
            files.append(name)
        splits[split] = {"rows": len(part), "files": files}
    return {"task": task.name, "source": data.source, "kind": task.kind, "head": task.head,
            "description": task.description, "license": data.license, "license_ids": license_ids(data.license),
            "non_commercial": non_commercial(data.license), "redistributable": redistributable(data.license),
            "citation": src.citation, "url": src.url, "metric": task.metric_for(data.source),
            "labels": data.labels, "splits": splits, "files_read": data.files, "notes": data.notes,
            "hub": data.hub, "changed": data.changed}


def dataset_card_text(manifest: dict, repo_id: str | None = None) -> str:
    """The dataset card: metadata (configs with their data files, features, licences, task categories)
    through ``DatasetCardData``, the body from ``model_cards/dataset_card.md``."""
    from huggingface_hub import DatasetCard, DatasetCardData

    configs = manifest["configs"]
    hub_configs = [{"config_name": name, "data_files": [{"split": split, "path": f"{name}/{split}-*.parquet"}
                                                         for split in c["splits"]]}
                   for name, c in configs.items()]
    info = []
    for name, c in configs.items():
        features = _features(c)
        entry = {"config_name": name, "splits": [{"name": s, "num_examples": v["rows"]} for s, v in c["splits"].items()]}
        if features is not None:
            entry["features"] = features._to_yaml_list()
        info.append(entry)
    licenses = sorted({i for c in configs.values() for i in c["license_ids"]})
    data = DatasetCardData(
        language=["es"], license=licenses, pretty_name=f"es-zoo {manifest['suite']} suite",
        tags=["es-zoo", manifest["suite"], "spanish"]
        + (["non-commercial"] if any(c["non_commercial"] for c in configs.values()) else []),
        task_categories=sorted({_TASK_CATEGORIES.get(c["kind"], "text2text-generation") for c in configs.values()}),
        configs=hub_configs, dataset_info=info,
    )
    rows = [{"name": name, **c, "metric_note": _METRIC_NOTE.get(c["metric"]["name"], c["metric"]["name"]),
             "sizes": ", ".join(f"{s} {v['rows']:,}" for s, v in c["splits"].items())} for name, c in configs.items()]
    card = DatasetCard.from_template(
        data, template_path=str(model_cards_dir() / "dataset_card.md"), suite=manifest["suite"], configs=rows,
        repo_id_or_path=repo_id or "PATH_TO_THIS_FOLDER", skipped=manifest.get("skipped", {}),
        version=manifest.get("es_zoo_version"),
    )
    return sign_card(str(card))


def _features(config: dict) -> Any:
    if config["kind"] == "parsing":
        return None  # the relation set is the data's own; the parquet schema carries it
    return features_for(config["kind"], config["labels"])


# --------------------------------------------------------------------------------------------------
# Checks before publishing
# --------------------------------------------------------------------------------------------------

def check_dataset(folder: str | Path) -> dict:
    """Check an es-zoo dataset folder before it is uploaded: every config's shards exist, their features
    name the labels the task declares, every label value is within its ClassLabel, row counts match the
    manifest, and no config is marked not redistributable. Returns the manifest."""
    import pyarrow.parquet as pq
    from datasets import Features

    root = Path(folder).expanduser()
    mpath = root / MANIFEST
    if not mpath.is_file():
        raise DatasetBuildError(f"{root}: not an es-zoo dataset (no {MANIFEST}); build one with `es-zoo datasets build`")
    try:
        manifest = json.loads(mpath.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DatasetBuildError(f"{mpath}: line {exc.lineno}: not valid JSON ({exc.msg})") from None
    if not (root / "README.md").is_file():
        raise DatasetBuildError(f"{root}: no README.md (the dataset card); rebuild with `es-zoo datasets build`")
    for name, c in manifest.get("configs", {}).items():
        if not c.get("redistributable", True):
            raise DatasetBuildError(f"config '{name}': its licence ({c['license']}) does not allow redistribution; "
                                    "rebuild without it (--tasks) before publishing")
        column = LABEL_COLUMNS.get(c["kind"])
        for split, s in c["splits"].items():
            rows = 0
            for f in s["files"]:
                path = root / name / f
                if not path.is_file():
                    raise DatasetBuildError(f"config '{name}': {path} is missing")
                try:
                    table = pq.read_table(path)
                except Exception as exc:  # noqa: BLE001 - any unreadable shard is one clear error
                    raise DatasetBuildError(f"{path}: not a readable parquet file ({exc})") from None
                rows += table.num_rows
                features = Features.from_arrow_schema(table.schema)
                if column is None:
                    continue
                if column not in features:
                    raise DatasetBuildError(f"{path}: no '{column}' column (task '{c['task']}' needs it)")
                feat = features[column]
                feat = getattr(feat, "feature", feat)
                names = getattr(feat, "names", None)
                if names != c["labels"]:
                    raise DatasetBuildError(f"{path}: column '{column}' has labels {names}, but config '{name}' "
                                            f"(task '{c['task']}', source '{c['source']}') declares {c['labels']}")
                values = table.column(column).combine_chunks()
                flat = values.flatten() if hasattr(values, "flatten") and str(values.type).startswith("list") else values
                bad = [v for v in flat.to_pylist() if v is None or not 0 <= v < len(names)]
                if bad:
                    raise DatasetBuildError(f"{path}: column '{column}' holds {len(bad)} value(s) outside its "
                                            f"{len(names)} labels (e.g. {bad[0]})")
            if rows != s["rows"]:
                raise DatasetBuildError(f"config '{name}' split '{split}': {rows} rows in the parquet shards, "
                                        f"{s['rows']} in {MANIFEST}")
    return manifest


def publish_dataset(folder: str | Path, repo_id: str, private: bool = False, revision: str | None = None,
                    create_pr: bool = False, dry_run: str | Path | None = None, overwrite_card: bool = False,
                    echo: Callable[[str], Any] = print) -> dict:
    """``es-zoo datasets publish``: check the folder, then upload its card (rendered with ``repo_id``),
    manifest and shards in one commit (see :func:`es_zoo.publish.publish_files`)."""
    import tempfile

    check_repo_id(repo_id)
    root = Path(folder).expanduser()
    manifest = check_dataset(root)
    files = collect(root, DATASET_ALLOW)
    with tempfile.TemporaryDirectory(prefix="es-zoo-publish-") as tmp:
        card = Path(tmp) / "README.md"
        if card_state((root / "README.md").read_text(encoding="utf-8")) == "es-zoo":
            card.write_text(dataset_card_text(manifest, repo_id), encoding="utf-8")
            files["README.md"] = card
        configs = manifest["configs"]
        plan = Plan(repo_id, "dataset", files,
                    f"es-zoo: publish the {manifest['suite']} suite dataset ({len(configs)} configs)",
                    "Configs: " + ", ".join(f"{k} ({v['source']})" for k, v in configs.items()), private, revision,
                    create_pr)
        return publish_files(plan, dry_run=dry_run, overwrite_card=overwrite_card, echo=echo)
