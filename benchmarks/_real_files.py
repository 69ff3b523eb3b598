"""What the real-files benchmarks share: their command-line options and per-task settings."""

from __future__ import annotations

import argparse
from pathlib import Path

DEFAULT_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"


def parser(doc: str, model_help: str, output: str, tasks: str, set_example: str) -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help=model_help)
    ap.add_argument("--data", default=str(DEFAULT_DATA), help="the shared data folder [../shared/data]")
    ap.add_argument("--output", default=output)
    ap.add_argument("--tasks", default=tasks)
    ap.add_argument("--max-train", type=int, default=None, help="cap on training examples per task (CPU budget)")
    ap.add_argument("--set", nargs="*", default=[], metavar="TASK.KEY=VALUE", help=f"hyperparameters, e.g. {set_example}")
    return ap


def task_settings(items: list[str]) -> dict[str, dict]:
    """``TASK.KEY=VALUE`` items (``all.KEY`` for every task) as ``{task: {key: value}}``; numbers and
    booleans are typed by the task's hyperparameters."""
    import yaml

    settings: dict[str, dict] = {}
    for item in items:
        key, value = item.split("=", 1)
        task, name = key.split(".", 1)
        settings.setdefault(task, {})[name] = yaml.safe_load(value)
    return settings
