"""The GLUES suite: fine-tune and score one encoder on several tasks, and the GLUES grid search.

``evaluate_suite`` runs :func:`es_zoo.tasks.finetune.finetune` per task into ``OUTPUT/<task>/`` and
gathers ``OUTPUT/results.json``: per task the metric values, the split they were measured on, the data
source and files, the hyperparameters, the number of examples and the seed. ``grid_search`` runs the
published protocol (batch size x learning rate x epochs, chosen on dev, reported on test) one setting
at a time, appending one JSON line per finished run to ``OUTPUT/<task>/grid.jsonl``; a rerun skips the
settings already there and resumes the interrupted one from its checkpoint.
"""

from __future__ import annotations

import itertools
import json
import shutil
from pathlib import Path
from typing import Any

from es_zoo.catalog import all_models, find_model
from es_zoo.locking import output_folder
from es_zoo.tasks.data import load_task_data
from es_zoo.tasks.definitions import GLUES_TASKS, SEQ2SEQ_TASKS, SUITES, TaskDef, TaskError, list_tasks, load_task
from es_zoo.tasks.finetune import check_model, finetune

__all__ = ["GLUES_TASKS", "SEQ2SEQ_TASKS", "SUITES", "evaluate_suite", "grid_search", "published_for"]


def _key(hp: dict) -> str:
    return f"bs{hp['batch_size']}-lr{hp['learning_rate']:g}-ep{hp['epochs']}"


def grid_search(model: str, task: TaskDef, output_dir: str | Path, grid: dict[str, list] | None = None,
                source: str | None = None, data_dir: str | Path | None = None,
                files: dict[str, list[str]] | None = None, hparams: dict | None = None,
                revision: str | None = None, data: Any = None) -> dict:
    """The GLUES protocol for one task: every setting of ``grid`` fine-tuned, scored on validation and
    test; the setting with the best validation score is reported with its test score."""
    grid = grid or task.grid
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    data = data or load_task_data(task, source=source, data_dir=data_dir, files=files)
    if "validation" not in data.dataset:
        raise TaskError(f"task '{task.name}': the grid chooses on the validation split, which source "
                        f"'{data.source}' does not have; name one with --validation FILE")
    lines_path = out / "grid.jsonl"
    done: dict[str, dict] = {}
    if lines_path.is_file():
        for number, line in enumerate(lines_path.read_text().splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                done[row["key"]] = row
            except (ValueError, KeyError):
                raise TaskError(f"{lines_path}:{number}: not a grid result line; fix or remove it") from None
    names = list(grid)
    for values in itertools.product(*(grid[n] for n in names)):
        setting = {**(hparams or {}), **dict(zip(names, values))}
        hp = task.hparams.replace(**setting).to_dict()
        key = _key(hp)
        if key in done:
            continue
        run_dir = out / "grid" / key
        resume = (run_dir / "finetune.json").is_file()
        r = finetune(model, task, run_dir, data=data, hparams=setting, resume=resume, save_model=False,
                     revision=revision, quiet=True)
        if r.get("stopped_early"):
            return {"stopped_early": True}
        row = {"key": key, "hyperparameters": hp,
               "validation": r["splits"]["validation"]["metrics"],
               "test": r["splits"].get("test", {}).get("metrics")}
        with open(lines_path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(row) + "\n")
        done[key] = row
        shutil.rmtree(run_dir, ignore_errors=True)  # the line holds what was measured; weights are not kept
    main = task.metric_for(data.source)["main"]
    best = max(done.values(), key=lambda r: r["validation"][main])
    reported = "test" if best["test"] else "validation"
    return {"task": task.name, "model": model, "grid": grid, "runs": len(done), "best": best,
            "split": reported, "metrics": best[reported], "main": best[reported][main],
            "metric": task.metric_for(data.source),
            "data": data.describe(), "hyperparameters": best["hyperparameters"],
            "seed": best["hyperparameters"]["seed"],
            "examples": len(data.dataset[reported])}


def published_for(model: str, task: TaskDef) -> list[dict]:
    """The catalogue's published numbers for ``task`` of the model (or of the model a run reproduces)."""
    rec = None
    p = Path(model)
    if p.is_dir():
        for candidate in (p / "results.json", p.parent / "results.json"):
            if candidate.is_file():
                rec = find_model(json.loads(candidate.read_text()).get("reproduces") or "")
                break
    else:
        rec = find_model(model)
    if rec is None or not task.published:
        return []
    found = [(rec.name, s) for s in rec.scores_for(task.published["task"])]
    if not found:  # the catalogue's fine-tunes of this model (e.g. BARTO's translation models and their cards)
        found = [(m.name, s) for m in all_models() if m.base_model == rec.name
                 for s in m.scores_for(task.published["task"])]
    # A number in another metric than the one the task's published scores use (F1 where GLUES reports
    # accuracy, exact match beside F1) is kept but never shown as the comparable one.
    want = task.published["metric"].lower()
    return [{"model": name, "dataset": s.dataset, "split": s.split, "metric": s.metric, "value": s.value,
             "source": s.source, "same_metric": s.metric.lower() == want} for name, s in found]


def suite_runs(suite: str, tasks: list[str] | None, sources: dict[str, str] | None) -> list[tuple[str, str | None, str]]:
    """``(key, task, source)`` of every run of a suite. GLUES runs each task once (its first source
    unless ``sources`` names one); the seq2seq suite runs every dataset of a task, as the paper's tables
    do, keyed ``task/source`` (except the ``shipped`` fixtures, which are run only when named)."""
    names = list(tasks) if tasks else list(SUITES[suite])
    runs = []
    for n in names:
        task = load_task(n)
        if task.suite != suite:
            raise TaskError(f"task '{n}' belongs to the {task.suite} suite, not {suite}")
        chosen = (sources or {}).get(n)
        if suite == "glues" or chosen is not None:
            runs.append((n if suite == "glues" else f"{n}/{task.source(chosen).name}", n, chosen))
            continue
        for src in task.sources:
            if src != "shipped" and "train" in task.sources[src].files:
                runs.append((f"{n}/{src}", n, src))
    return runs


def evaluate_suite(model: str, output_dir: str | Path, tasks: list[str] | None = None,
                   data_dir: str | Path | None = None, sources: dict[str, str] | None = None,
                   grid: bool = False, hparams: dict | None = None, resume: bool = False,
                   overwrite: bool = False, revision: str | None = None, save_models: bool = False,
                   echo: Any = print, suite: str = "glues", accept_changed: bool = False) -> dict:
    """Fine-tune and score ``model`` on each task of ``suite``; write ``OUTPUT/results.json`` and return it.

    Tasks named explicitly must have data; with the default (every task of the suite) a task whose data
    is not found is listed as skipped, with the reason, instead of stopping the others. Without
    ``data_dir`` each source is read from its Hub home (pinned revision, see ``es-zoo tasks TASK``).
    """
    if suite not in SUITES:
        raise TaskError(f"unknown suite '{suite}'; suites: {', '.join(SUITES)}")
    explicit = tasks is not None
    for n in list(tasks or []):
        if n not in list_tasks():
            load_task(n)  # raises the unknown-task error with suggestions
    runs = suite_runs(suite, tasks, sources)
    check_model(model, revision)  # a typo'd model fails before any data is downloaded or folder written
    out = Path(output_dir)
    with output_folder(out):  # removed again if the command fails before writing into it
        results_path = out / "results.json"
        previous = json.loads(results_path.read_text()) if results_path.is_file() else {}
        if previous and previous.get("model") != str(model) and not overwrite:
            raise TaskError(f"{results_path} holds results for {previous.get('model')}; choose another --output-dir "
                            "or pass --overwrite")
        results = {"model": str(model), "suite": suite, "tasks": dict(previous.get("tasks", {})) if resume else {},
                   "skipped": {}}
        for key, n, source in runs:
            task = load_task(n)
            if source is None and data_dir is None:
                source = hub_default(task, echo)
            try:
                data = load_task_data(task, source=source, data_dir=data_dir, accept_changed=accept_changed)
                if "train" not in data.dataset:
                    why = f" (its Hub copy has none: see `es-zoo tasks {n}`)" if data.hub else ""
                    raise TaskError(f"task '{n}' (source '{data.source}'): no train split found{why}; name the training "
                                    "files with --data-dir")
            except TaskError as exc:
                if explicit and (suite == "glues" or (sources or {}).get(n)):
                    raise
                results["skipped"][key] = str(exc)
                echo(f"skipping {key}: {exc}")
                continue
            if resume and key in results["tasks"]:
                echo(f"{key}: already scored, kept")
                continue
            echo(f"== {key} ({data.source}: " + ", ".join(f"{k} {v}" for k, v in data.describe()["sizes"].items())
                 + (f"; {data.origin}" if data.hub else "") + ")")
            for note in data.notes:
                if note.startswith("CHANGED"):
                    echo(f"   {note}: scores on it are marked CHANGED")
            run_dir = out / key.replace("/", "-")
            if grid:
                r = grid_search(model, task, run_dir, data=data, hparams=hparams, revision=revision)
            else:
                r = finetune(model, task, run_dir, data=data, hparams=hparams, resume=resume and (run_dir / "finetune.json").is_file(),
                             overwrite=overwrite and not resume, save_model=save_models, revision=revision)
            if r.get("stopped_early"):
                results["stopped_early"] = True
                break
            r["published"] = published_for(model, task)
            r["comparable"] = task.comparable(data.source, data.changed)
            results["tasks"][key] = r
            results_path.write_text(json.dumps(results, indent=2, ensure_ascii=False))
        results_path.write_text(json.dumps(results, indent=2, ensure_ascii=False))
        return results


def hub_default(task: TaskDef, echo: Any = print) -> str | None:
    """The source a task is scored on without --data-dir: its first source, unless that one has no Hub
    copy and another (not the shipped fixture) has; then that one, said aloud."""
    first = task.sources[task.default_source]
    if first.hub is None or not first.hub.unavailable:
        return None
    for name, src in task.sources.items():
        if name != "shipped" and src.hub is not None and not src.hub.unavailable:
            echo(f"{task.name}: source '{first.name}' has no Hub copy ({first.hub.unavailable}); scoring source "
                 f"'{name}' from the Hub instead ({src.note or src.hub.describe()})")
            return name
    return None


def data_rows(results: dict) -> list[tuple[str, ...]]:
    """Where each scored task's data came from, its licence and citation (under the suite table)."""
    rows = [("task", "data from", "licence", "citation")]
    for n, r in results["tasks"].items():
        d = r["data"]
        where = d.get("origin", "")
        if d.get("changed"):
            where += " CHANGED (" + "; ".join(f"{s} {c['rows']} rows, published {c['published']}"
                                               for s, c in d["changed"].items()) + ")"
        rows.append((n, where, d.get("license") or "unknown", d.get("citation") or "-"))
    return rows


def table_rows(results: dict) -> list[tuple[str, ...]]:
    """Rows of the suite table: measured beside published, one row per task (and per skipped task)."""
    rows = [("task", "source", "split", "metric", "measured", "published", "published for", "examples")]
    for n, r in results["tasks"].items():
        main = r["metric"]["main"]
        pub = r.get("published") or []
        same = [p for p in pub if p.get("same_metric", True)]
        other = sorted({p["metric"] for p in pub if not p.get("same_metric", True)})
        cell = ", ".join(f"{p['value']:g} ({p['metric']}{', ' + p['split'] if p['split'] else ''}"
                         f"{', ' + p['dataset'] if len(same) > 1 else ''})" for p in same)
        if cell and r.get("comparable") is False:
            cell = "not comparable (other data): " + cell
        if other:
            cell = (cell + " " if cell else "") + f"[other metrics, not comparable: {', '.join(other)}]"
        rows.append((n, r["data"]["source"], r["split"], main, f"{r['main']:.2f}", cell or "-",
                     pub[0]["model"] if pub else "-", str(r["examples"])))
    for n, why in results.get("skipped", {}).items():
        rows.append((n, "-", "-", "-", skip_reason(why), "-", "-", "-"))
    return rows


def skip_reason(why: str) -> str:
    """A skipped task's reason in a few words, for the table (the full reason is in results.json)."""
    if "no data found" in why:
        return "no data (no Hub copy)" if "no Hub copy" in why else "no data"
    for phrase, short in (("no train split", "no train split"), ("not the one es-zoo pinned", "changed data"),
                          ("not in the local Hub cache", "not downloaded"), ("unreachable", "Hub unreachable")):
        if phrase in why:
            return short
    return "not loaded (see results.json)"


def extra_rows(results: dict) -> list[tuple[str, ...]]:
    """Every other split a run scored (extra test sets such as FLORES-200 and Tatoeba, validation), with
    the main metric: the rows under the suite table."""
    rows = []
    for n, r in results["tasks"].items():
        main = r["metric"]["main"]
        for split, part in r.get("splits", {}).items():
            if split != r["split"] and main in part.get("metrics", {}):
                rows.append((n, split, main, f"{part['metrics'][main]:.2f}", str(part["examples"])))
    return rows
