"""Exact match and token F1 of extractive question answering, as the SQuAD v1.1 and MLQA scripts
compute them.

Both scripts lower-case an answer, delete punctuation, delete articles, split on whitespace, and take
for each question the best score over its gold answers; exact match and F1 are averaged over every
question of the references (x100). They differ in what they delete:

- SQuAD v1.1 (``evaluate-v1.1.py``, English): the 32 ASCII characters of ``string.punctuation`` and the
  words ``a an the``. Spanish ``¿ ¡ « » “ ” —`` and articles stay, so ``"el Prado"`` against
  ``"Prado"`` is no exact match.
- MLQA (``mlqa_evaluation_v1.py``, ``lang="es"``): every Unicode character of a punctuation category
  (``P*``) plus ``string.punctuation``, and the words ``un una unos unas el la los las``
  (``lo`` is not deleted).

Articles are deleted as whole words (regex ``\\b``, Unicode-aware), after punctuation. A question with no
prediction scores 0, as in both scripts; here the count comes back as ``"missing"`` (and a warning is
issued) so a half-empty prediction file cannot pass unnoticed. A prediction for a question that is not
in the references is an error. A gold answer that normalises to the empty string (2,357 of the 6,583
questions of SQuAD-es v1.1 dev have one: ``""`` at ``answer_start`` -1) makes an empty prediction an exact
match, as in both scripts; a warning says how many questions have one. Checked against both official
scripts (see docs/metrics.md).

Example:
    >>> refs = {"q1": ["el Museo del Prado"]}
    >>> squad_v1({"q1": "Museo del Prado"}, refs)["exact_match"], mlqa({"q1": "Museo del Prado"}, refs)["exact_match"]
    (0.0, 100.0)
"""

from __future__ import annotations

import functools
import re
import string
import sys
import unicodedata
import warnings
from collections import Counter
from typing import Any, Callable, Mapping, Sequence

from es_zoo.metrics._common import MetricInputError

ASCII_PUNCTUATION = frozenset(string.punctuation)
ARTICLES = {
    "en": re.compile(r"\b(a|an|the)\b"),
    "es": re.compile(r"\b(un|una|unos|unas|el|la|los|las)\b"),
}

Predictions = Mapping[str, str] | Sequence[Mapping[str, Any]]
References = Mapping[str, Sequence[str]] | Sequence[Mapping[str, Any]]


@functools.cache
def unicode_punctuation() -> frozenset:
    """MLQA's punctuation: every code point below ``sys.maxunicode`` whose Unicode category starts with
    ``P`` (in this Python's ``unicodedata``), plus ``string.punctuation`` (which adds ``$ + < = > ^ ` | ~``)."""
    return frozenset(chr(c) for c in range(sys.maxunicode)
                     if unicodedata.category(chr(c)).startswith("P")) | ASCII_PUNCTUATION


def _normalize(text: str, punctuation: frozenset, articles: re.Pattern) -> str:
    text = "".join(ch for ch in text.lower() if ch not in punctuation)
    return " ".join(articles.sub(" ", text).split())


def normalize_squad(text: str) -> str:
    """SQuAD v1.1's answer normalisation (English)."""
    return _normalize(text, ASCII_PUNCTUATION, ARTICLES["en"])


def normalize_mlqa(text: str, lang: str = "es") -> str:
    """MLQA's answer normalisation for a whitespace-tokenized language (``es`` or ``en``)."""
    if lang not in ARTICLES:
        raise MetricInputError(f"MLQA normalisation for {lang!r} is not implemented; use one of {sorted(ARTICLES)}")
    return _normalize(text, unicode_punctuation(), ARTICLES[lang])


def _f1(prediction: str, truth: str) -> float:
    pred, gold = prediction.split(), truth.split()
    same = sum((Counter(pred) & Counter(gold)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred), same / len(gold)
    return 2 * precision * recall / (precision + recall)


def _predictions(predictions: Predictions) -> dict[str, str]:
    if isinstance(predictions, Mapping):
        items = list(predictions.items())
    elif isinstance(predictions, Sequence) and not isinstance(predictions, (str, bytes)):
        items = []
        for i, rec in enumerate(predictions):
            if not isinstance(rec, Mapping) or "id" not in rec or "prediction_text" not in rec:
                raise MetricInputError(f"predictions[{i}]: expected a record {{'id', 'prediction_text'}}, "
                                       f"got {rec!r:.80}")
            items.append((rec["id"], rec["prediction_text"]))
    else:
        raise MetricInputError("predictions must map question id -> answer text, or be a list of "
                               f"{{'id', 'prediction_text'}} records; got {type(predictions).__name__}")
    out: dict[str, str] = {}
    for qid, text in items:
        if not isinstance(qid, str) or not isinstance(text, str):
            raise MetricInputError(f"prediction {qid!r}: ids and answers must be strings, got {type(text).__name__}")
        if qid in out:
            raise MetricInputError(f"two predictions for question {qid!r}")
        out[qid] = text
    return out


def _answers(qid: Any, answers: Any) -> list[str]:
    if isinstance(answers, Mapping):  # {"text": [...], "answer_start": [...]} (datasets / es_zoo readers)
        answers = answers.get("text")
    if isinstance(answers, (str, bytes)) or not isinstance(answers, Sequence):
        raise MetricInputError(f"reference {qid!r}: expected a list of answer texts, got {type(answers).__name__}")
    texts = [a["text"] if isinstance(a, Mapping) and "text" in a else a for a in answers]  # SQuAD JSON answers
    if not texts:
        raise MetricInputError(f"reference {qid!r} has no answer; SQuAD v1.1 / MLQA scoring needs at least one "
                               "(unanswerable SQuAD v2.0 questions cannot be scored here)")
    if not all(isinstance(t, str) for t in texts):
        raise MetricInputError(f"reference {qid!r}: answer texts must be strings")
    return texts


def _references(references: References) -> dict[str, list[str]]:
    if isinstance(references, Mapping):
        items = list(references.items())
    elif isinstance(references, Sequence) and not isinstance(references, (str, bytes)):
        items = []
        for i, rec in enumerate(references):
            if not isinstance(rec, Mapping) or "id" not in rec or "answers" not in rec:
                raise MetricInputError(f"references[{i}]: expected a record {{'id', 'answers'}}, got {rec!r:.80}")
            items.append((rec["id"], rec["answers"]))
    else:
        raise MetricInputError("references must map question id -> list of answer texts, or be a list of "
                               f"{{'id', 'answers'}} records; got {type(references).__name__}")
    out: dict[str, list[str]] = {}
    for qid, answers in items:
        if not isinstance(qid, str):
            raise MetricInputError(f"reference id {qid!r} is not a string")
        if qid in out:
            raise MetricInputError(f"question {qid!r} appears twice in the references")
        out[qid] = _answers(qid, answers)
    if not out:
        raise MetricInputError("no references to score")
    return out


def _score(predictions: Predictions, references: References, normalize: Callable[[str], str], name: str) -> dict:
    preds, refs = _predictions(predictions), _references(references)
    unknown = [qid for qid in preds if qid not in refs]
    if unknown:
        raise MetricInputError(f"{len(unknown)} predictions are for questions not in the references "
                               f"(e.g. {unknown[:3]}); {len(preds)} predictions, {len(refs)} references")
    exact = f1 = 0.0
    missing, empty = [], []
    for qid, answers in refs.items():  # reference order: the same sums, bit for bit, as the scripts
        truths = [normalize(a) for a in answers]
        if "" in truths:
            empty.append(qid)
        if qid not in preds:
            missing.append(qid)
            continue
        pred = normalize(preds[qid])
        exact += max(pred == t for t in truths)
        f1 += max(_f1(pred, t) for t in truths)
    if missing:
        warnings.warn(f"{name}: {len(missing)} of {len(refs)} questions have no prediction and score 0 "
                      f"(e.g. {missing[:3]})", stacklevel=3)
    if empty:
        warnings.warn(f"{name}: {len(empty)} of {len(refs)} questions have a gold answer that is empty once "
                      f"normalised (e.g. {empty[:3]}); an empty prediction is an exact match on them, as in the "
                      "official script", stacklevel=3)
    return {"exact_match": 100.0 * exact / len(refs), "f1": 100.0 * f1 / len(refs), "total": len(refs),
            "missing": len(missing)}


def squad_v1(predictions: Predictions, references: References) -> dict:
    """SQuAD v1.1 exact match and F1 (English normalisation): ``{"exact_match", "f1", "total", "missing"}``.

    ``predictions`` maps question id -> answer text (or is a list of ``{"id", "prediction_text"}``
    records); ``references`` maps question id -> list of gold answer texts (or is a list of ``{"id",
    "answers"}`` records, ``answers`` being ``{"text": [...]}`` as ``read_squad`` returns it, or a list).
    """
    return _score(predictions, references, normalize_squad, "squad_v1")


def mlqa(predictions: Predictions, references: References, lang: str = "es") -> dict:
    """MLQA exact match and F1 for answer language ``lang`` (``es`` or ``en``), same inputs and keys as
    :func:`squad_v1`."""
    if lang not in ARTICLES:
        raise MetricInputError(f"MLQA scoring for {lang!r} is not implemented; use one of {sorted(ARTICLES)}")
    return _score(predictions, references, lambda text: normalize_mlqa(text, lang), "mlqa")
