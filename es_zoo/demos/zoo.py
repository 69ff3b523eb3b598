"""The zoo demo's data: the catalogue as a table, and a leaderboard of published scores (from the
catalogue) beside measured ones (from ``results.json`` files of ``es-zoo evaluate`` or ``es-zoo reproduce``)."""

from __future__ import annotations

import json
from pathlib import Path

from es_zoo.catalog import all_models
from es_zoo.demos.predict import DemoError

CATALOGUE_COLUMNS = ["name", "family", "kind", "hub id", "parameters", "licence", "recipe"]
BOARD_COLUMNS = ["model", "task", "dataset", "metric", "value", "origin"]


def catalogue_rows(query: str = "", family: str = "all") -> list[list]:
    q = (query or "").strip().lower()
    rows = []
    for r in all_models():
        if family != "all" and r.family != family:
            continue
        p = r.architecture.get("parameters_m")
        row = [r.name, r.family, r.kind, r.hub_id or "(warm start)", f"{p}M" if p else "?", r.license or "-", r.recipe or "-"]
        if q and not any(q in str(v).lower() for v in row):
            continue
        rows.append(row)
    return rows


def families() -> list[str]:
    return ["all", *sorted({r.family for r in all_models()})]


def measured_rows(paths: list[str | Path]) -> list[list]:
    """Rows from results files: an ``es-zoo evaluate`` output (``tasks``) or a reproduce run
    (``glues`` / ``seq2seq``). ``paths`` are files or folders (searched for ``results.json``)."""
    rows = []
    for p in paths:
        p = Path(p)
        files = [p] if p.is_file() else sorted(p.rglob("results.json")) if p.is_dir() else []
        for f in files:
            try:
                data = json.loads(f.read_text(encoding="utf-8"))
            except json.JSONDecodeError as exc:
                raise DemoError(f"{f}: line {exc.lineno}, column {exc.colno}: {exc.msg}; expected the JSON "
                                "results file es-zoo writes (results.json)") from None
            except (OSError, UnicodeDecodeError) as exc:
                raise DemoError(f"{f}: cannot be read as an es-zoo results file ({exc})") from None
            if not isinstance(data, dict):
                raise DemoError(f"{f}: expected a JSON object (an es-zoo results.json), found {type(data).__name__}")
            model = str(data.get("model") or data.get("recipe") or f.parent.name)
            model = Path(model).name if "/" in model and Path(model).exists() else model
            entries = dict(data.get("tasks") or {})
            for suite in ("glues", "seq2seq"):
                entries.update(data.get(suite) or {})
            for key, r in entries.items():
                if not isinstance(r, dict) or "main" not in r or "metric" not in r:
                    continue
                source = r.get("source") or (r.get("data") or {}).get("source", "")
                rows.append([model, key.split("/")[0], source, r["metric"]["main"], round(float(r["main"]), 2),
                             "measured"])
    return rows


def published_rows() -> list[list]:
    rows = []
    for r in all_models():
        for s in r.scores:
            try:
                value = round(float(s.value), 2)
            except (TypeError, ValueError):
                continue
            rows.append([r.name, s.task, s.dataset, s.metric, value, "published" if s.own else f"published by {s.by}"])
    return rows


def leaderboard(paths: list[str | Path], task: str = "all") -> list[list]:
    rows = published_rows() + measured_rows(paths)
    if task != "all":
        rows = [r for r in rows if r[1] == task]
    # rows that can be compared (task, dataset, metric) stand together, best first
    return sorted(rows, key=lambda r: (r[1], r[2], r[3], -r[4]))


def board_tasks(paths: list[str | Path]) -> list[str]:
    return ["all", *sorted({r[1] for r in published_rows() + measured_rows(paths)})]
