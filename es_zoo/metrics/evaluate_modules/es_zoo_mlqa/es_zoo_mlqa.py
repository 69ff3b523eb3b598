"""es_zoo MLQA scores as an offline ``evaluate`` module: calls :func:`es_zoo.metrics.mlqa` (percent;
``missing`` counts questions without a prediction). ``compute(..., lang="es")`` picks the language."""

import datasets
import evaluate

from es_zoo.metrics import mlqa

_DESCRIPTION = ("Exact match and token F1 as MLQA's mlqa_evaluation_v1.py computes them (Unicode punctuation and "
                "the answer language's articles removed), 0-100.")
_KWARGS_DESCRIPTION = """
Args:
    predictions: {"id", "prediction_text"} records, one per reference (evaluate pairs rows; they are
        matched by id); prediction_text None for a question without a prediction (scored 0, counted
        in "missing").
    references: {"id", "answers": {"text": [...], "answer_start": [...]}} records.
    lang: answer language, "es" (default) or "en".
Returns:
    exact_match, f1 (percent), total, missing.
"""

PREDICTION = {"id": datasets.Value("string"), "prediction_text": datasets.Value("string")}
REFERENCE = {"id": datasets.Value("string"),
             "answers": {"text": datasets.List(datasets.Value("string")),
                         "answer_start": datasets.List(datasets.Value("int32"))}}


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class EsZooMlqa(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION, citation="", inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": PREDICTION, "references": REFERENCE}),
        )

    def _compute(self, predictions, references, lang="es"):
        answered = [p for p in predictions if p["prediction_text"] is not None]
        return mlqa(answered, references, lang=lang)
