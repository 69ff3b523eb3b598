"""Generation metrics of the seq2seq suite: ROUGE, BLEU, chrF, METEOR and token F1.

Every value is a percentage (0-100), like the GLUES metrics. ``predictions`` is a list of strings, one per
example; ``references`` is a list of the same length holding, per example, either one reference string or
a non-empty list of reference strings (multi-reference). Inputs are checked: different lengths, a
non-string, an example with no reference, or an empty (or whitespace-only) reference raise
:class:`~es_zoo.metrics._common.MetricInputError` naming the counts or the index; nothing is dropped
silently. An empty *prediction* is allowed (a model may generate nothing) and simply scores low.

- :func:`rouge`: ROUGE-1/2/L/Lsum through ``rouge_score``'s ``RougeScorer``, two tokenizations:
  ``variant="spanish"`` (Unicode words, accents kept) and ``variant="paper"`` (rouge_score's default
  tokenizer, what HF ``evaluate``'s ``rouge`` computes; it turns ``"canción"`` into ``"canci n"``).
- :func:`bleu`, :func:`chrf`: sacreBLEU corpus BLEU and chrF / chrF++, with the signature string.
- :func:`meteor`: METEOR as HF ``evaluate``'s ``meteor`` computes it (nltk ``word_tokenize`` and
  ``nltk.translate.meteor_score``); needs nltk's ``wordnet`` and ``punkt_tab`` data, else
  :class:`MetricUnavailable`.
- :func:`token_f1`: SQuAD / MLQA exact match and token F1 over free text (generative QA, dialogue).

The checks against the reference implementations are described in docs/metrics.md.

Example:
    >>> rouge(["Una canción."], ["Un camión."], variant="paper")["rouge1"]  # "una canci n" / "un cami n"
    33.33333333333333
    >>> rouge(["Una canción."], ["Un camión."])["rouge1"]  # "una canción" / "un camión"
    0.0
"""

from __future__ import annotations

import re
import unicodedata
import warnings
from typing import Any, Callable, Sequence

import numpy as np

from es_zoo.errors import EsZooError
from es_zoo.metrics._common import MetricInputError, as_list, same_length
from es_zoo.metrics.qa import _f1, normalize_mlqa, normalize_squad
from es_zoo.sentences import ABBREVIATIONS, split_sentences  # noqa: F401 (re-exported)

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL", "rougeLsum")
ROUGE_VARIANTS = ("spanish", "paper")


class MetricUnavailable(EsZooError):
    """A metric whose third-party data is not installed (nltk's ``wordnet`` or ``punkt_tab`` for METEOR);
    the message names the missing resource and the command that installs it."""


# ----------------------------------------------------------------------------------------------- inputs

def _predictions(predictions: Any) -> list[str]:
    preds = as_list(predictions, "predictions")
    for i, pred in enumerate(preds):
        if not isinstance(pred, str):
            raise MetricInputError(f"predictions[{i}] is a {type(pred).__name__}, expected a string "
                                   f"(one generated text per example, {len(preds)} examples)")
    return preds


def _references(references: Any, n_predictions: int) -> list[list[str]]:
    """Per example, the list of its reference strings (a single string becomes a list of one)."""
    refs = as_list(references, "references")
    same_length([None] * n_predictions, refs)
    out = []
    for i, ref in enumerate(refs):
        if isinstance(ref, str):
            group = [ref]
        else:
            group = as_list(ref, f"references[{i}]")
            if not group:
                raise MetricInputError(f"references[{i}] is an empty list; every example needs at least one "
                                       f"reference ({len(refs)} examples)")
        for j, text in enumerate(group):
            where = f"references[{i}]" if isinstance(ref, str) else f"references[{i}][{j}]"
            if not isinstance(text, str):
                raise MetricInputError(f"{where} is a {type(text).__name__}, expected a string")
            if not text.strip():
                raise MetricInputError(f"{where} is empty; an empty reference cannot be scored against "
                                       "(remove the example or give it a reference)")
        out.append(group)
    return out


# ------------------------------------------------------------------------------------ sentence splitting
# One Spanish splitter for the whole zoo (BART's sentence permutation uses the same rules): es_zoo.sentences.

def _lsum_text(text: str) -> str:
    """The text rougeLsum sees: unchanged when it already has newlines, else one sentence per line.

    >>> _lsum_text("Llegó el Sr. Pérez. —¿Quién? —preguntó. Nadie.")
    'Llegó el Sr. Pérez.\\n—¿Quién? —preguntó.\\nNadie.'
    """
    return text if "\n" in text else "\n".join(split_sentences(text))


# ---------------------------------------------------------------------------------------------- ROUGE

class SpanishTokenizer:
    """ROUGE tokenizer for Spanish (a ``rouge_score`` tokenizer: it has ``tokenize(text)``).

    Unicode NFC, lower-case, tokens = maximal runs of Unicode letters and digits (regex ``[^\\W_]+``:
    ``\\w`` without the underscore, which separates as in rouge_score's default tokenizer). Accents and
    ``ñ ü`` are kept, so ``canción`` and ``cancion`` are different words; no stemmer.

    >>> SpanishTokenizer().tokenize("¿La CANCIÓN del año 2024? ¡Sí, señor_a!")
    ['la', 'canción', 'del', 'año', '2024', 'sí', 'señor', 'a']
    """

    description = ("Unicode NFC, lower-case, tokens = runs of Unicode letters/digits (regex [^\\W_]+), "
                   "accents kept, no stemmer")
    _WORD = re.compile(r"[^\W_]+")

    def tokenize(self, text: str) -> list[str]:
        return self._WORD.findall(unicodedata.normalize("NFC", text).lower())


def rouge(predictions: Sequence[str], references: Sequence[str] | Sequence[Sequence[str]],
          variant: str = "spanish", use_stemmer: bool | None = None, split_sentences: bool = True) -> dict:
    """ROUGE-1, ROUGE-2, ROUGE-L and ROUGE-Lsum F-measures, averaged over examples (x100).

    Returns ``{"rouge1", "rouge2", "rougeL", "rougeLsum", "variant", "tokenizer", "use_stemmer",
    "sentence_splitter", "examples"}``. The arithmetic is ``rouge_score`` 's ``RougeScorer`` (``score``
    for one reference, ``score_multi`` for a list: per ROUGE type, the reference with the best F-measure);
    the per-example F-measures are averaged with ``numpy.mean``.

    ``variant``:

    - ``"paper"``: ``RougeScorer(use_stemmer=use_stemmer)`` with its default tokenizer, exactly what HF
      ``evaluate.load("rouge").compute(..., use_aggregator=False)`` returns, averaged. That tokenizer
      lower-cases and replaces every character outside ``[a-z0-9]`` by a space: ``"canción"`` becomes the
      two tokens ``canci n``, ``"año"`` becomes ``a o``. Use it to compare with published numbers.
      ``use_stemmer`` defaults to False (evaluate's default); HF's ``run_summarization.py`` passes True
      (the English Porter stemmer, applied to tokens longer than 3 characters).
      ``evaluate`` 's default ``use_aggregator=True`` returns instead the median of 1,000 bootstrap
      resamples of the mean (``BootstrapAggregator``, unseeded): close to, but not, the mean, and not
      reproducible to the last digit (docs/metrics.md gives the measured gap).
    - ``"spanish"`` (default): the same ``RougeScorer`` given :class:`SpanishTokenizer` (Unicode words,
      accents kept, no stemmer); ``use_stemmer=True`` is refused (the Porter stemmer is English).

    ROUGE-Lsum is the summary-level LCS over sentences, which ``rouge_score`` takes to be the lines of the
    text. HF's ``run_summarization.py`` therefore joins ``nltk.sent_tokenize`` sentences with ``"\\n"``
    before calling evaluate (this needs nltk's ``punkt``/``punkt_tab`` data, English model). Here, with
    ``split_sentences=True`` (default), a prediction or reference that has no newline is split by
    :func:`es_zoo.sentences.split_sentences` (deterministic Spanish rules, the ones BART's sentence
    permutation uses) and re-joined with newlines; a text that already has newlines is used as it
    is. With ``split_sentences=False`` texts are scored as given, which is what
    ``evaluate`` computes on one-line texts (ROUGE-Lsum then equals ROUGE-L). Newlines do not change
    ROUGE-1/2/L (both tokenizers treat them as spaces).
    """
    from rouge_score import rouge_scorer

    preds = _predictions(predictions)
    refs = _references(references, len(preds))
    if variant not in ROUGE_VARIANTS:
        raise MetricInputError(f"unknown ROUGE variant {variant!r}; use one of {list(ROUGE_VARIANTS)}")
    if variant == "spanish":
        if use_stemmer:
            raise MetricInputError("variant='spanish' does not stem: rouge_score's stemmer is the English "
                                   "Porter stemmer; use variant='paper', use_stemmer=True to reproduce "
                                   "run_summarization.py")
        use_stemmer = False
        tokenizer = SpanishTokenizer()
        description = SpanishTokenizer.description
    else:
        use_stemmer = bool(use_stemmer)
        tokenizer = None
        description = ("rouge_score DefaultTokenizer: lower-case, every character outside [a-z0-9] is a "
                       "space ('canción' -> 'canci n')"
                       + (", Porter stemmer on tokens longer than 3" if use_stemmer else ""))
    scorer = rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=use_stemmer, tokenizer=tokenizer)
    if split_sentences:
        preds = [_lsum_text(p) for p in preds]
        refs = [[_lsum_text(r) for r in group] for group in refs]
    fmeasures: dict[str, list[float]] = {t: [] for t in ROUGE_TYPES}
    for pred, group, given in zip(preds, refs, as_list(references, "references")):
        scores = scorer.score(group[0], pred) if isinstance(given, str) else scorer.score_multi(group, pred)
        for t in ROUGE_TYPES:
            fmeasures[t].append(scores[t].fmeasure)
    result: dict[str, Any] = {t: float(np.mean(fmeasures[t]) * 100) for t in ROUGE_TYPES}
    result.update(variant=variant, tokenizer=description, use_stemmer=use_stemmer,
                  sentence_splitter=("es_zoo split_sentences, texts without newlines" if split_sentences
                                     else "none (lines as given)"),
                  examples=len(preds))
    return result


# ------------------------------------------------------------------------------------ BLEU and chrF

def _reference_streams(refs: list[list[str]]) -> list[list[str | None]]:
    """Per-example reference lists -> sacrebleu's reference streams (stream k holds every example's k-th
    reference); an example with fewer references gets ``None`` in the missing streams, which sacrebleu
    skips for that example (its signature then says ``nrefs:var``)."""
    width = max(len(group) for group in refs)
    return [[group[k] if k < len(group) else None for group in refs] for k in range(width)]


def bleu(predictions: Sequence[str], references: Sequence[str] | Sequence[Sequence[str]],
         tokenize: str = "13a", lowercase: bool = False) -> dict:
    """sacreBLEU corpus BLEU (``sacrebleu.metrics.BLEU``, default smoothing ``exp``), 0-100.

    Returns ``{"bleu", "signature", "counts", "totals", "precisions", "bp", "sys_len", "ref_len"}``.
    ``references`` holds one reference or a list of references *per example* (the layout of HF evaluate's
    ``sacrebleu``), transposed here into sacrebleu's one-stream-per-reference layout. Examples may have
    different numbers of references: the shorter lists are padded with ``None``, which sacrebleu ignores
    (an empty line in a reference file given to the ``sacrebleu`` command is an empty reference instead,
    which is why empty reference strings are refused here).

    ``tokenize``: one of sacrebleu's tokenizers. ``13a`` (default, the WMT standard) splits ASCII
    punctuation only, so ``"¿Dónde"`` and ``"«museo»"`` stay single tokens; ``intl`` splits Unicode
    punctuation (``¿ Dónde``, ``« museo »``). ``flores101``/``flores200``/``spm`` download a
    SentencePiece model on first use.
    """
    from sacrebleu.metrics import BLEU

    preds = _predictions(predictions)
    refs = _references(references, len(preds))
    if tokenize not in BLEU.TOKENIZERS:
        raise MetricInputError(f"unknown sacrebleu tokenizer {tokenize!r}; use one of {sorted(BLEU.TOKENIZERS)}")
    metric = BLEU(tokenize=tokenize, lowercase=lowercase)
    score = metric.corpus_score(preds, _reference_streams(refs))
    return {"bleu": float(score.score), "signature": str(metric.get_signature()), "counts": list(score.counts),
            "totals": list(score.totals), "precisions": [float(p) for p in score.precisions],
            "bp": float(score.bp), "sys_len": int(score.sys_len), "ref_len": int(score.ref_len)}


def chrf(predictions: Sequence[str], references: Sequence[str] | Sequence[Sequence[str]],
         word_order: int = 0) -> dict:
    """sacreBLEU corpus chrF (``word_order=0``) or chrF++ (``word_order=2``), 0-100, character 6-grams,
    beta 2, case-sensitive, whitespace ignored (sacrebleu's defaults).

    Returns ``{"chrf", "signature", "char_order", "word_order", "beta"}``; ``references`` as in
    :func:`bleu` (multi-reference: the best reference per example, sacrebleu's rule).
    """
    from sacrebleu.metrics import CHRF

    preds = _predictions(predictions)
    refs = _references(references, len(preds))
    if isinstance(word_order, bool) or not isinstance(word_order, int) or word_order < 0:
        raise MetricInputError(f"word_order must be an integer >= 0 (0: chrF, 2: chrF++), got {word_order!r}")
    metric = CHRF(word_order=word_order)
    score = metric.corpus_score(preds, _reference_streams(refs))
    return {"chrf": float(score.score), "signature": str(metric.get_signature()), "char_order": score.char_order,
            "word_order": score.word_order, "beta": score.beta}


# --------------------------------------------------------------------------------------------- METEOR

def missing_nltk_resources(wordnet: bool = True, punkt: bool = True) -> list[str]:
    """The nltk data packages METEOR needs that are not installed (``wordnet``, ``punkt_tab``), found the
    way nltk looks for them (``nltk.data.path``, which starts with ``$NLTK_DATA``)."""
    import nltk.data

    def found(*names: str) -> bool:
        for name in names:
            try:
                nltk.data.find(name)
                return True
            except LookupError:
                pass
        return False

    missing = []
    if wordnet and not found("corpora/wordnet.zip/wordnet/", "corpora/wordnet"):
        missing.append("wordnet")
    if punkt and not found("tokenizers/punkt_tab/english/"):
        missing.append("punkt_tab")
    return missing


def _unavailable(missing: list[str], detail: str = "") -> MetricUnavailable:
    import nltk.data

    what = {"wordnet": "'wordnet' (the English WordNet, for synonym matches)",
            "punkt_tab": "'punkt_tab' (the Punkt English sentence model, used by nltk.word_tokenize)"}
    if missing:
        head = "METEOR needs nltk data that is not installed: " + "; ".join(what[m] for m in missing)
    else:  # installed but unreadable or incomplete
        head = "METEOR could not load its nltk data (wordnet, punkt_tab); reinstall it"
        missing = ["wordnet", "punkt_tab"]
    return MetricUnavailable(
        f"{head}. Install it with:  python -m nltk.downloader {' '.join(missing)}  (into ~/nltk_data), or "
        f"python -m nltk.downloader -d DIR {' '.join(missing)} and set NLTK_DATA=DIR. nltk searched: "
        f"{', '.join(nltk.data.path)}." + (f" ({detail})" if detail else ""))


def meteor(predictions: Sequence[str], references: Sequence[str] | Sequence[Sequence[str]],
           alpha: float = 0.9, beta: float = 3, gamma: float = 0.5, *,
           wordnet: Any = None, tokenizer: Callable[[str], list[str]] | None = None) -> dict:
    """METEOR as HF ``evaluate``'s ``meteor`` metric computes it, x100: ``{"meteor", "examples"}``.

    Per example, ``nltk.translate.meteor_score.meteor_score([word_tokenize(r) for r in refs],
    word_tokenize(pred), alpha, beta, gamma)`` (the best reference; one reference gives
    ``single_meteor_score``'s value), then the mean over examples. nltk's defaults stay: ``str.lower``,
    the English Porter stemmer and the English WordNet for synonyms, so on Spanish only exact and
    (English-)stem matches really count; report it for comparison with papers, not as a Spanish metric.

    ``nltk.word_tokenize`` needs nltk's ``punkt_tab`` data and WordNet its ``wordnet`` data; both are
    checked before scoring, and :class:`MetricUnavailable` names what is missing and the install command
    (``python -m nltk.downloader wordnet punkt_tab``, ``NLTK_DATA``). ``wordnet`` (an object with
    ``synsets(word)``, like ``nltk.corpus.wordnet``) and ``tokenizer`` (text -> tokens) replace them,
    for tests or to score without those data.
    """
    preds = _predictions(predictions)
    refs = _references(references, len(preds))
    missing = missing_nltk_resources(wordnet=wordnet is None, punkt=tokenizer is None)
    if missing:
        raise _unavailable(missing)
    from nltk.translate import meteor_score

    need_wordnet, need_punkt = wordnet is None, tokenizer is None
    if need_wordnet:
        from nltk.corpus import wordnet
    if need_punkt:
        from nltk import word_tokenize as tokenizer
    try:
        scores = [meteor_score.meteor_score([tokenizer(r) for r in group], tokenizer(pred), wordnet=wordnet,
                                            alpha=alpha, beta=beta, gamma=gamma)
                  for pred, group in zip(preds, refs)]
    except LookupError as err:  # data present but unreadable or incomplete
        detail = next((line.strip() for line in str(err).splitlines() if line.strip(" *")), "LookupError")
        raise _unavailable(missing_nltk_resources(need_wordnet, need_punkt), detail) from err
    return {"meteor": float(np.mean(scores) * 100), "examples": len(preds)}


# ------------------------------------------------------------------------------------------- token F1

NORMALIZERS = {"mlqa": normalize_mlqa, "squad": normalize_squad}


def token_f1(predictions: Sequence[str], references: Sequence[str] | Sequence[Sequence[str]],
             normalize: str = "mlqa") -> dict:
    """Exact match and token F1 of free-text answers (generative QA, dialogue), x100:
    ``{"exact_match", "f1", "total", "normalize"}``.

    The SQuAD v1.1 / MLQA rules of :mod:`es_zoo.metrics.qa` (same normalisers, same F1), matched by
    position instead of question id: per example, the best score over its references, then the mean.
    ``normalize="mlqa"`` (default: Unicode punctuation and Spanish articles removed) or ``"squad"``
    (ASCII punctuation and English articles). A reference that normalises to the empty string (``"¿?"``)
    makes an empty prediction an exact match, as in the official scripts; a warning counts them.
    """
    preds = _predictions(predictions)
    refs = _references(references, len(preds))
    if normalize not in NORMALIZERS:
        raise MetricInputError(f"unknown normalisation {normalize!r}; use one of {sorted(NORMALIZERS)}")
    norm = NORMALIZERS[normalize]
    exact = f1 = 0.0
    empty = []
    for i, (pred, group) in enumerate(zip(preds, refs)):
        truths = [norm(r) for r in group]
        if "" in truths:
            empty.append(i)
        pred = norm(pred)
        exact += max(pred == t for t in truths)
        f1 += max(_f1(pred, t) for t in truths)
    if empty:
        warnings.warn(f"token_f1: {len(empty)} of {len(refs)} examples have a reference that is empty once "
                      f"normalised (e.g. references{empty[:3]}); an empty prediction is an exact match on them",
                      stacklevel=2)
    return {"exact_match": 100.0 * exact / len(refs), "f1": 100.0 * f1 / len(refs), "total": len(refs),
            "normalize": normalize}
