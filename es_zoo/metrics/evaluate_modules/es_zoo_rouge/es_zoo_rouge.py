"""es_zoo ROUGE as an offline ``evaluate`` module: calls :func:`es_zoo.metrics.generation.rouge` (percent).
``compute(..., variant="spanish")`` (default: Unicode words, accents kept, no stemmer) or
``variant="paper"`` (rouge-score's default tokenizer, as HF evaluate's rouge; ``use_stemmer=True`` as the
seq2seq paper's scripts)."""

import datasets
import evaluate

from es_zoo.metrics.generation import rouge

_DESCRIPTION = ("ROUGE-1/2/L/Lsum F-measures averaged over examples, 0-100, through rouge-score's RougeScorer "
                "with a Spanish-aware tokenizer (default) or its default tokenizer (variant='paper').")
_KWARGS_DESCRIPTION = """
Args:
    predictions: generated texts.
    references: one reference text, or a list of references, per prediction.
    variant: "spanish" (default) or "paper".
    use_stemmer: the Porter stemmer (paper variant only).
    split_sentences: split texts without newlines into sentences for ROUGE-Lsum (default True).
Returns:
    rouge1, rouge2, rougeL, rougeLsum (percent), variant, tokenizer, use_stemmer, sentence_splitter, examples.
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class EsZooRouge(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION, citation="", inputs_description=_KWARGS_DESCRIPTION,
            features=[datasets.Features({"predictions": datasets.Value("string"),
                                         "references": datasets.List(datasets.Value("string"))}),
                      datasets.Features({"predictions": datasets.Value("string"),
                                         "references": datasets.Value("string")})],
        )

    def _compute(self, predictions, references, variant="spanish", use_stemmer=None, split_sentences=True):
        return rouge(predictions, references, variant=variant, use_stemmer=use_stemmer,
                     split_sentences=split_sentences)
