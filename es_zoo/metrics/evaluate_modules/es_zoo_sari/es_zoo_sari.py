"""es_zoo SARI as an offline ``evaluate`` module: calls :func:`es_zoo.metrics.sari.sari` (percent), which
reproduces HF evaluate's sari (default) and, with ``variant="original", tokenize="none"``, the original
SARI.py of Xu et al. (2016)."""

import datasets
import evaluate

from es_zoo.metrics.sari import sari

_DESCRIPTION = "SARI (Xu et al. 2016): mean of the add, keep and delete scores over n-gram orders 1-4, 0-100."
_KWARGS_DESCRIPTION = """
Args:
    sources: the source sentences.
    predictions: the system outputs.
    references: a list of reference sentences per source.
    lowercase, tokenize ("13a", "intl", "none"), variant ("evaluate", "original").
Returns:
    sari, add, keep, delete (percent), sentences, variant, tokenize, lowercase.
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class EsZooSari(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION, citation="", inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"sources": datasets.Value("string"),
                                        "predictions": datasets.Value("string"),
                                        "references": datasets.List(datasets.Value("string"))}),
        )

    def _compute(self, sources, predictions, references, lowercase=True, tokenize="13a", variant="evaluate"):
        return sari(sources, predictions, references, lowercase=lowercase, tokenize=tokenize, variant=variant)
