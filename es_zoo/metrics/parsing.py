"""Dependency attachment scores (UAS, LAS, CLAS) as the CoNLL 2018 shared task computes them.

With gold tokenization every system word is the gold word at the same position, so the official
``conll18_ud_eval.py`` reduces to: UAS, the percentage of words whose HEAD is right; LAS, whose HEAD and
universal relation are right, the universal relation being the DEPREL up to its first ``:``
(``nsubj:pass`` counts as ``nsubj``); CLAS, LAS restricted to content words, given as the official F1
``2 * correct / (gold content words + system content words)``, where a word is a content word when its
universal relation is one of :data:`CONTENT_RELATIONS` (gold words counted by their gold relation,
system words by their predicted one). Every word counts, punctuation included. Values are
percentages. Checked against the official script (see docs/metrics.md).

Example:
    >>> attachment_scores([[2, 0]], [["nsubj", "root"]], [[2, 0]], [["nsubj:pass", "root"]])["las"]
    100.0
"""

from __future__ import annotations

import numbers
from pathlib import Path
from typing import Sequence

from es_zoo.metrics._common import MetricInputError, nested, percent, same_length

# The CoNLL 2018 content relations (UD v2 names); CLAS scores only words attached by one of them.
# Function relations (aux cop mark det clf case cc) and punct are not content relations.
CONTENT_RELATIONS = frozenset({
    "acl", "advcl", "advmod", "amod", "appos", "ccomp", "compound", "conj", "csubj", "dep", "discourse",
    "dislocated", "expl", "fixed", "flat", "goeswith", "iobj", "list", "nmod", "nsubj", "nummod", "obj", "obl",
    "orphan", "parataxis", "reparandum", "root", "vocative", "xcomp",
})


def universal(deprel: str) -> str:
    """The universal part of a relation: ``"nsubj:pass"`` -> ``"nsubj"``."""
    return deprel.split(":")[0]


def _check(heads: list, rels: list, i: int, side: str) -> None:
    n = len(heads)
    for j, h in enumerate(heads):
        if isinstance(h, bool) or not isinstance(h, numbers.Integral) or not 0 <= h <= n:
            raise MetricInputError(f"{side} sentence {i}, word {j + 1}: HEAD {h!r} is not a word id "
                                   f"0..{n} (0 is the root)")
    for j, rel in enumerate(rels):
        if not isinstance(rel, str) or not rel or rel != rel.strip():
            raise MetricInputError(f"{side} sentence {i}, word {j + 1}: DEPREL {rel!r} is not a relation name")


def attachment_scores(pred_heads: Sequence[Sequence[int]], pred_deprels: Sequence[Sequence[str]],
                      gold_heads: Sequence[Sequence[int]], gold_deprels: Sequence[Sequence[str]]) -> dict:
    """UAS, LAS and CLAS of predicted trees against gold ones, one list per sentence, word order shared.

    ``*_heads`` are 1-based word ids with 0 for the root (CoNLL-U's HEAD column); ``*_deprels`` the
    relations, with or without subtypes. Returns ``{"uas", "las", "clas", "words", "uas_correct",
    "las_correct", "clas_correct", "clas_gold", "clas_system"}``.

    Heads need not form a tree (a parser decoding each head independently may predict a cycle; the
    official script refuses such a file, this function scores it). Raises :class:`MetricInputError`
    when the sentence counts differ, a sentence has a different number of words in any of the four
    lists (the message names the sentence), or a HEAD is outside ``0..len(sentence)``.
    """
    ph, pr = nested(pred_heads, "pred_heads"), nested(pred_deprels, "pred_deprels")
    gh, gr = nested(gold_heads, "gold_heads"), nested(gold_deprels, "gold_deprels")
    same_length(ph, gh, what="sentences")
    if not len(pr) == len(gr) == len(gh):
        raise MetricInputError(f"sentence counts differ: pred_heads {len(ph)}, pred_deprels {len(pr)}, "
                               f"gold_heads {len(gh)}, gold_deprels {len(gr)}")
    words = uas = las = clas = clas_gold = clas_system = 0
    for i, (a, b, c, d) in enumerate(zip(ph, pr, gh, gr)):
        if not len(a) == len(b) == len(c) == len(d):
            raise MetricInputError(f"sentence {i}: {len(c)} gold words but pred_heads has {len(a)}, pred_deprels "
                                   f"{len(b)}, gold_deprels {len(d)}")
        _check(a, b, i, "predicted")
        _check(c, d, i, "gold")
        for p_head, p_rel, g_head, g_rel in zip(map(int, a), b, map(int, c), d):
            p_rel, g_rel = universal(p_rel), universal(g_rel)
            words += 1
            head_ok = p_head == g_head
            uas += head_ok
            las += head_ok and p_rel == g_rel
            clas_gold += g_rel in CONTENT_RELATIONS
            clas_system += p_rel in CONTENT_RELATIONS
            clas += head_ok and p_rel == g_rel and g_rel in CONTENT_RELATIONS
    if words == 0:
        raise MetricInputError(f"{len(gh)} sentences but no words to score")
    return {"uas": percent(uas, words), "las": percent(las, words),
            "clas": percent(2 * clas, clas_gold + clas_system), "words": words, "uas_correct": uas,
            "las_correct": las, "clas_correct": clas, "clas_gold": clas_gold, "clas_system": clas_system}


def evaluate_conllu(gold_path: str | Path, system_path: str | Path) -> dict:
    """:func:`attachment_scores` of a system CoNLL-U file against the gold one, plus ``"sentences"``.

    Both files are read with :func:`es_zoo.tasks.readers.read_conllu` (UD v1 or v2 UPOS, or ``_``), so
    malformed lines are :class:`~es_zoo.tasks.readers.FormatError` with ``file:line``. The system file
    must keep the gold tokenization: the same sentences, the same words and the same multiword
    tokens; the first difference is an error naming the sentence (1-based, with its id) and the word.
    """
    from es_zoo.tasks.readers import UPOS, UPOS_V1, read_conllu  # lazy: keeps `import es_zoo.metrics` free of YAML

    tags = tuple(dict.fromkeys(UPOS + UPOS_V1 + ("_",)))
    gold, system = read_conllu(gold_path, upos=tags), read_conllu(system_path, upos=tags)
    if len(gold) != len(system):
        raise MetricInputError(f"{system_path} has {len(system)} sentences but {gold_path} has {len(gold)}; "
                               "the system file must keep the gold sentences and tokenization")
    for n, (g, s) in enumerate(zip(gold, system), start=1):
        where = f"sentence {n} (gold id {g['id']})"
        for k in range(max(len(g["tokens"]), len(s["tokens"]))):
            gw = g["tokens"][k] if k < len(g["tokens"]) else None
            sw = s["tokens"][k] if k < len(s["tokens"]) else None
            if gw != sw:
                raise MetricInputError(f"{where}: word {k + 1} is {gw!r} in {gold_path} but {sw!r} in {system_path} "
                                       f"({len(g['tokens'])} vs {len(s['tokens'])} words); the system file must "
                                       "keep the gold tokenization")
        if [list(m) for m in g["multiword"]] != [list(m) for m in s["multiword"]]:
            raise MetricInputError(f"{where}: multiword tokens differ: {g['multiword']} in {gold_path}, "
                                   f"{s['multiword']} in {system_path}")
    scores = attachment_scores([s["head"] for s in system], [s["deprel"] for s in system],
                               [g["head"] for g in gold], [g["deprel"] for g in gold])
    return {**scores, "sentences": len(gold)}
