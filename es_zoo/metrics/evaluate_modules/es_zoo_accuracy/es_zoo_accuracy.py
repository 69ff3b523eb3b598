"""es_zoo accuracy as an offline ``evaluate`` module: calls :func:`es_zoo.metrics.accuracy` (percent)."""

import datasets
import evaluate

from es_zoo.metrics import accuracy

_DESCRIPTION = "Percentage of predictions equal to their reference (XNLI, PAWS-X, MLDoc), 0-100."
_KWARGS_DESCRIPTION = """
Args:
    predictions: predicted labels, class ids (int) or class names (str).
    references: gold labels of the same kind and number.
Returns:
    accuracy (percent), correct, total.
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class EsZooAccuracy(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION, citation="", inputs_description=_KWARGS_DESCRIPTION,
            features=[
                datasets.Features({"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}),
                datasets.Features({"predictions": datasets.Value("string"), "references": datasets.Value("string")}),
            ],
        )

    def _compute(self, predictions, references):
        return accuracy(predictions, references)
