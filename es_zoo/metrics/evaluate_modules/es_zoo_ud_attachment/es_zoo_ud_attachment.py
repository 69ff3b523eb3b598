"""es_zoo attachment scores as an offline ``evaluate`` module: calls
:func:`es_zoo.metrics.attachment_scores` (CoNLL 2018 UAS/LAS/CLAS with gold tokenization; percent)."""

import datasets
import evaluate

from es_zoo.metrics import attachment_scores

_DESCRIPTION = ("UAS, LAS (universal relation, subtypes ignored) and CLAS as the CoNLL 2018 evaluation computes "
                "them when the system keeps the gold words, 0-100.")
_KWARGS_DESCRIPTION = """
Args:
    pred_heads, gold_heads: one list of HEADs per sentence (1-based word ids, 0 for the root).
    pred_deprels, gold_deprels: one list of relations per sentence (subtypes allowed).
Returns:
    uas, las, clas (percent), words, uas_correct, las_correct, clas_correct, clas_gold, clas_system.
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class EsZooUdAttachment(evaluate.Metric):
    def _info(self):
        heads, rels = datasets.List(datasets.Value("int64")), datasets.List(datasets.Value("string"))
        return evaluate.MetricInfo(
            description=_DESCRIPTION, citation="", inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"pred_heads": heads, "pred_deprels": rels,
                                        "gold_heads": heads, "gold_deprels": rels}),
        )

    def _compute(self, pred_heads, pred_deprels, gold_heads, gold_deprels):
        return attachment_scores(pred_heads, pred_deprels, gold_heads, gold_deprels)
