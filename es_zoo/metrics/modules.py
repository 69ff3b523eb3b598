"""The GLUES metrics as offline ``evaluate`` modules.

Each module is a one-file ``evaluate.Metric`` under ``es_zoo/metrics/evaluate_modules/<name>/<name>.py``
whose ``_compute`` calls the es_zoo function, so ``evaluate.load`` of its folder needs no network
(``HF_HUB_OFFLINE=1``) and gives the same numbers as calling the function.

Example:
    >>> seqeval = load_metric("es_zoo_seqeval")  # doctest: +SKIP
    >>> seqeval.compute(predictions=[["B-PER", "O"]], references=[["B-PER", "O"]])["f1"]  # doctest: +SKIP
    100.0
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from es_zoo.metrics._common import MetricInputError

MODULES_DIR = Path(__file__).resolve().parent / "evaluate_modules"
# module name -> the es_zoo function its _compute calls
EVALUATE_MODULES = {
    "es_zoo_accuracy": "es_zoo.metrics.accuracy",
    "es_zoo_seqeval": "es_zoo.metrics.ner_f1",
    "es_zoo_ud_attachment": "es_zoo.metrics.attachment_scores",
    "es_zoo_squad_v1": "es_zoo.metrics.squad_v1",
    "es_zoo_mlqa": "es_zoo.metrics.mlqa",
    "es_zoo_rouge": "es_zoo.metrics.generation.rouge",
    "es_zoo_sari": "es_zoo.metrics.sari.sari",
}


def module_path(name: str) -> Path:
    """The local folder of evaluate module ``name`` (one of :data:`EVALUATE_MODULES`)."""
    if name not in EVALUATE_MODULES:
        raise MetricInputError(f"no es_zoo evaluate module {name!r}; available: {sorted(EVALUATE_MODULES)}")
    path = MODULES_DIR / name
    if not (path / f"{name}.py").is_file():  # pragma: no cover - a broken install
        raise MetricInputError(f"{path / (name + '.py')} is missing from this installation of es_zoo")
    return path


def load_metric(name: str, **kwargs: Any):
    """``evaluate.load`` of the local module ``name``; works offline. ``kwargs`` go to ``evaluate.load``
    (``keep_in_memory=True``, ``experiment_id=...`` for parallel runs, ...)."""
    import evaluate

    return evaluate.load(str(module_path(name)), **kwargs)
