"""The GLUES and seq2seq metrics, checked against the official scripts and reference implementations
(docs/metrics.md).

Pure Python (numpy and seqeval), no torch. Every metric returns **percentages (0-100)**, as conlleval,
``conll18_ud_eval.py`` (x100 when printed) and the SQuAD v1.1 and MLQA scripts report them. Inputs are
validated: predictions and references of different lengths, labels outside the scheme or ids that do
not match raise :class:`MetricInputError` (an :class:`~es_zoo.errors.EsZooError`) saying both counts and
where; nothing is dropped silently.

- :func:`accuracy`: XNLI, PAWS-X, MLDoc.
- :func:`ner_f1`: CoNLL-2002 NER, entity-level P/R/F1 (seqeval default mode = conlleval).
- :func:`attachment_scores`, :func:`evaluate_conllu`: UD parsing UAS/LAS/CLAS (CoNLL 2018, gold tokenization).
- :func:`squad_v1`, :func:`mlqa`: extractive QA exact match and F1 (SQuAD v1.1 and MLQA scripts).
- :func:`rouge` (Spanish-aware and paper-compatible), :func:`bleu` and :func:`chrf` (sacrebleu, with
  signatures), :func:`meteor` (as evaluate computes it, when nltk's data is installed), :func:`token_f1`
  and :func:`sari` (Xu et al. 2016; evaluate's and the original SARI.py): the seq2seq suite.
- :func:`load_metric`: the same as offline ``evaluate`` modules.

Example:
    >>> from es_zoo.metrics import accuracy
    >>> accuracy([0, 1, 1], [0, 1, 0])["accuracy"]  # doctest: +ELLIPSIS
    66.66...
"""

from __future__ import annotations

from es_zoo.metrics._common import MetricInputError
from es_zoo.metrics.classification import accuracy
from es_zoo.metrics.generation import MetricUnavailable, bleu, chrf, meteor, rouge, token_f1
from es_zoo.metrics.modules import EVALUATE_MODULES, load_metric, module_path
from es_zoo.metrics.ner import ner_f1
from es_zoo.metrics.parsing import CONTENT_RELATIONS, attachment_scores, evaluate_conllu
from es_zoo.metrics.qa import mlqa, normalize_mlqa, normalize_squad, squad_v1
from es_zoo.metrics.sari import sari

__all__ = ["MetricInputError", "accuracy", "ner_f1", "attachment_scores", "evaluate_conllu", "squad_v1", "mlqa",
           "normalize_squad", "normalize_mlqa", "CONTENT_RELATIONS", "load_metric", "module_path",
           "EVALUATE_MODULES", "rouge", "bleu", "chrf", "meteor", "token_f1", "sari", "MetricUnavailable"]
