"""es_zoo SQuAD v1.1 scores as an offline ``evaluate`` module: calls :func:`es_zoo.metrics.squad_v1`
(percent; ``missing`` counts questions without a prediction)."""

import datasets
import evaluate

from es_zoo.metrics import squad_v1

_DESCRIPTION = "Exact match and token F1 as SQuAD v1.1's evaluate-v1.1.py computes them (English normalisation), 0-100."
_KWARGS_DESCRIPTION = """
Args:
    predictions: {"id", "prediction_text"} records, one per reference (evaluate pairs rows; they are
        matched by id); prediction_text None for a question without a prediction (scored 0, counted
        in "missing").
    references: {"id", "answers": {"text": [...], "answer_start": [...]}} records.
Returns:
    exact_match, f1 (percent), total, missing.
"""

PREDICTION = {"id": datasets.Value("string"), "prediction_text": datasets.Value("string")}
REFERENCE = {"id": datasets.Value("string"),
             "answers": {"text": datasets.List(datasets.Value("string")),
                         "answer_start": datasets.List(datasets.Value("int32"))}}


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class EsZooSquadV1(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION, citation="", inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": PREDICTION, "references": REFERENCE}),
        )

    def _compute(self, predictions, references):
        answered = [p for p in predictions if p["prediction_text"] is not None]
        return squad_v1(answered, references)
