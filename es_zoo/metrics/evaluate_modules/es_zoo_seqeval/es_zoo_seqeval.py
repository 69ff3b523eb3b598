"""es_zoo NER scores as an offline ``evaluate`` module: calls :func:`es_zoo.metrics.ner_f1` (seqeval's
default, conlleval-compatible mode; percent)."""

import datasets
import evaluate

from es_zoo.metrics import ner_f1

_DESCRIPTION = ("Entity-level precision, recall and F1 of IOB tags as conlleval computes them (seqeval default "
                "mode), token accuracy and per-type scores, 0-100.")
_KWARGS_DESCRIPTION = """
Args:
    predictions: one list of IOB tags (O, B-TYPE, I-TYPE) per sentence.
    references: the gold tags, the same number per sentence.
Returns:
    precision, recall, f1, accuracy (percent), tokens, number (gold entities), predicted, correct, per_type.
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class EsZooSeqeval(evaluate.Metric):
    def _info(self):
        tags = datasets.List(datasets.Value("string"))
        return evaluate.MetricInfo(
            description=_DESCRIPTION, citation="", inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": tags, "references": tags}),
        )

    def _compute(self, predictions, references):
        return ner_f1(predictions, references)
