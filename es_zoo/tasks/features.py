"""Examples -> model inputs, with nothing truncated.

An input longer than the model's limit becomes several *windows* that overlap by ``stride`` sub-word
tokens (the tokenizer's own overflow mechanism); predictions are merged back per example, so every
word and every document is scored. How many examples were split is counted and reported.

- Sequence classification (pairs, documents): windows over the longer segment; the example's label
  on every window in training, the mean of the windows' logits at prediction.
- Words (NER, POS, parsing): words are tokenized as given (``is_split_into_words``); each word is
  represented by its *first* sub-token. In a window overlap a word is read from the window where it has
  the most context on both sides (BERT's "max context" rule for SQuAD), so each word has exactly one
  prediction.
- Extractive QA: windows over the context with the question in every window (SQuAD's document
  stride); the best span over all windows wins.

Requires a fast tokenizer (``word_ids`` and offsets).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from es_zoo.tasks.definitions import TaskError


@dataclass
class Encoded:
    """Windows (one dict of token lists each) and how they map back to examples."""

    windows: list[dict[str, list[int]]]
    example_of: list[int]  # window -> example index
    n_examples: int
    n_split: int = 0  # examples that needed more than one window
    # words only: per example, per word, (window index, position of its first sub-token)
    word_slots: list[list[tuple[int, int]]] = field(default_factory=list)
    # words only: per window, {position: word index} of the first sub-tokens to train on
    first_subtokens: list[dict[int, int]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def report(self) -> dict[str, int]:
        return {"examples": self.n_examples, "windows": len(self.windows), "split_examples": self.n_split}


def require_fast(tokenizer: Any) -> None:
    if not getattr(tokenizer, "is_fast", False):
        raise TaskError(f"{type(tokenizer).__name__} is not a fast tokenizer; word alignment and answer offsets "
                        "need one (save the tokenizer with `tokenizers` / AutoTokenizer(use_fast=True))")


def _window_kwargs(tokenizer: Any, max_length: int, stride: int) -> dict:
    return {"max_length": max_length, "stride": stride, "return_overflowing_tokens": True,
            "return_token_type_ids": "token_type_ids" in tokenizer.model_input_names}


def _strip(enc: Any, i: int, keys: Sequence[str]) -> dict[str, list[int]]:
    return {k: list(enc[k][i]) for k in keys if k in enc}


_KEYS = ("input_ids", "token_type_ids")


def encode_sequences(tokenizer: Any, texts: Sequence[str], pairs: Sequence[str] | None, max_length: int,
                     stride: int) -> Encoded:
    """Pairs (``texts`` with ``pairs``) or single documents, as windows."""
    require_fast(tokenizer)
    windows, example_of = [], []
    n_split = 0
    kw = _window_kwargs(tokenizer, max_length, stride)
    for i, text in enumerate(texts):
        if pairs is None:
            enc = tokenizer(text, truncation=True, **kw)
        else:
            a = len(tokenizer.tokenize(text))
            b = len(tokenizer.tokenize(pairs[i]))
            budget = max_length - tokenizer.num_special_tokens_to_add(pair=True)
            if a + b <= budget:
                enc = tokenizer(text, pairs[i], truncation=False, return_token_type_ids=kw["return_token_type_ids"])
                enc = {k: [v] for k, v in enc.items()}
            elif budget - min(a, b) > stride + 8:  # the shorter segment whole in every window
                strategy = "only_second" if b >= a else "only_first"
                enc = tokenizer(text, pairs[i], truncation=strategy, **kw)
            else:
                enc = _parallel_windows(tokenizer, text, pairs[i], budget, stride)
        n = len(enc["input_ids"])
        n_split += n > 1
        for j in range(n):
            windows.append(_strip(enc, j, _KEYS))
            example_of.append(i)
    return Encoded(windows, example_of, len(texts), n_split)


def _parallel_windows(tokenizer: Any, text: str, pair: str, budget: int, stride: int) -> dict:
    """Both segments too long to keep either whole: each gets a share of the window in proportion to
    its length and is cut into overlapping chunks; window k pairs the chunks at the same relative
    position of both segments. (transformers cannot overflow a pair truncated on both sides.)"""
    backend = tokenizer.backend_tokenizer
    ea = backend.encode(text, add_special_tokens=False)
    eb = backend.encode(pair, add_special_tokens=False)
    a, b = len(ea.ids), len(eb.ids)
    ca = max(8, budget * a // (a + b))
    cb = budget - ca
    ea.truncate(ca, stride=min(stride * ca // budget, ca // 2))
    eb.truncate(cb, stride=min(stride * cb // budget, cb // 2))
    chunks_a, chunks_b = [ea, *ea.overflowing], [eb, *eb.overflowing]
    n = max(len(chunks_a), len(chunks_b))
    out: dict[str, list] = {"input_ids": [], "token_type_ids": []}
    for k in range(n):
        e = backend.post_processor.process(chunks_a[k * len(chunks_a) // n], chunks_b[k * len(chunks_b) // n], True)
        out["input_ids"].append(e.ids)
        out["token_type_ids"].append(e.type_ids)
    if "token_type_ids" not in tokenizer.model_input_names:
        del out["token_type_ids"]
    return out


def word_level(tokenizer: Any) -> Any:
    """The tokenizer to encode words given one by one. A byte-level BPE (RoBERTa's, BART's, MarIA's) marks a
    word that follows a space with its own pieces ("Ġmundo"); encoding pre-split words without a prefix
    space would give every word its glued-on form ("mu" "ndo"), pieces the model rarely saw in pretraining,
    which is why RoBERTa taggers are used with ``add_prefix_space=True``. This returns a copy whose
    byte-level pre-tokenizer adds that space (every word then reads as in running text), or the tokenizer
    itself when nothing needs it (WordPiece, SentencePiece-style Metaspace)."""
    import copy
    import json

    cached = getattr(tokenizer, "_es_zoo_word_level", None)
    if cached is not None:
        return cached
    state = json.loads(tokenizer.backend_tokenizer.to_str()).get("pre_tokenizer")
    changed = False

    def fix(node: Any) -> None:
        nonlocal changed
        if isinstance(node, dict):
            if node.get("type") == "ByteLevel" and not node.get("add_prefix_space"):
                node["add_prefix_space"] = True
                changed = True
            for value in node.values():
                fix(value)
        elif isinstance(node, list):
            for value in node:
                fix(value)

    fix(state)
    out = tokenizer
    if changed:
        from tokenizers import Tokenizer

        out = copy.deepcopy(tokenizer)
        whole = json.loads(tokenizer.backend_tokenizer.to_str())
        whole["pre_tokenizer"] = state
        out.backend_tokenizer.pre_tokenizer = Tokenizer.from_str(json.dumps(whole)).pre_tokenizer
    try:
        tokenizer._es_zoo_word_level = out
    except AttributeError:
        pass
    return out


def encode_words(tokenizer: Any, sentences: Sequence[Sequence[str]], max_length: int, stride: int) -> Encoded:
    """Sentences of words as windows; every word gets exactly one (window, first sub-token) slot (each word
    encoded as in running text: :func:`word_level`)."""
    require_fast(tokenizer)
    tokenizer = word_level(tokenizer)
    kw = _window_kwargs(tokenizer, max_length, stride)
    windows, example_of, slots_all, firsts = [], [], [], []
    n_split = 0
    replaced = 0
    for i, words in enumerate(sentences):
        clean = []
        for w in words:
            # A word that tokenizes to nothing (a zero-width space) would have no sub-token to score.
            if not tokenizer.tokenize(w):
                clean.append(tokenizer.unk_token)
                replaced += 1
            else:
                clean.append(w)
        enc = tokenizer(clean, is_split_into_words=True, truncation=True, **kw)
        n = len(enc["input_ids"])
        n_split += n > 1
        best: dict[int, tuple[int, int, int]] = {}  # word -> (context score, window, position)
        for j in range(n):
            word_ids = enc.word_ids(j)
            content = [p for p, w in enumerate(word_ids) if w is not None]
            lo, hi = content[0], content[-1]
            first: dict[int, int] = {}
            for p, w in enumerate(word_ids):
                if w is None or (p > 0 and word_ids[p - 1] == w):
                    continue
                first[p] = w
                score = min(p - lo, hi - p)
                if w not in best or score > best[w][0]:
                    best[w] = (score, len(windows), p)
            windows.append(_strip(enc, j, _KEYS))
            example_of.append(i)
            firsts.append(first)
        if len(best) != len(words):
            missing = sorted(set(range(len(words))) - set(best))
            raise TaskError(f"sentence {i}: words {missing} have no first sub-token in any window")
        slots_all.append([(best[w][1], best[w][2]) for w in range(len(words))])
    notes = [f"{replaced} words that tokenize to nothing were read as {tokenizer.unk_token}"] if replaced else []
    return Encoded(windows, example_of, len(sentences), n_split, slots_all, firsts, notes)


def encode_qa(tokenizer: Any, questions: Sequence[str], contexts: Sequence[str], max_length: int,
              stride: int) -> Encoded:
    """Question/context pairs as windows over the context; offsets kept for the context tokens."""
    require_fast(tokenizer)
    windows, example_of = [], []
    n_split = 0
    budget = max_length - tokenizer.num_special_tokens_to_add(pair=True)
    for i, (q, c) in enumerate(zip(questions, contexts)):
        q = q.lstrip()  # SQuAD questions can start with spaces that only waste the budget
        qlen = len(tokenizer.tokenize(q))
        if budget - qlen <= stride + 8:  # the context windows must advance
            raise TaskError(f"question {i} is {qlen} sub-tokens; with max_length {max_length} and stride {stride} "
                            "no context fits; raise max_length")
        enc = tokenizer(q, c, truncation="only_second", return_offsets_mapping=True, **_window_kwargs(
            tokenizer, max_length, stride))
        n = len(enc["input_ids"])
        n_split += n > 1
        for j in range(n):
            seq_ids = enc.sequence_ids(j)
            offsets = [tuple(o) if s == 1 else None for o, s in zip(enc["offset_mapping"][j], seq_ids)]
            w = _strip(enc, j, _KEYS)
            w["offsets"] = offsets  # type: ignore[assignment]
            windows.append(w)
            example_of.append(i)
    return Encoded(windows, example_of, len(questions), n_split)


def qa_targets(window: dict, answer_start: int | None, answer_text: str | None) -> tuple[int, int]:
    """(start, end) token positions of the answer in a window, or (0, 0) (the [CLS] token) when the
    answer is not entirely inside it or the question has none."""
    if answer_start is None or not answer_text:
        return 0, 0
    a, b = answer_start, answer_start + len(answer_text)
    offsets = window["offsets"]
    ctx = [p for p, o in enumerate(offsets) if o is not None]
    if offsets[ctx[0]][0] > a or offsets[ctx[-1]][1] < b:
        return 0, 0
    start = next(p for p in ctx if offsets[p][1] > a)
    end = next(p for p in reversed(ctx) if offsets[p][0] < b)
    return start, end


def best_span(windows: list[dict], starts: list[np.ndarray], ends: list[np.ndarray], context: str,
              n_best: int, max_answer_length: int, allow_null: bool) -> tuple[str, float]:
    """The highest-scoring answer text over the windows of one question (SQuAD's post-processing):
    the ``n_best`` start and end logits of each window, spans inside the context with end >= start and
    at most ``max_answer_length`` tokens. With ``allow_null`` (SQuAD v2) the empty answer wins when the
    [CLS] score beats every span."""
    best_text, best_score = "", -np.inf
    null = np.inf
    for w, s, e in zip(windows, starts, ends):
        offsets = w["offsets"]
        null = min(null, float(s[0] + e[0]))
        top_s = np.argsort(s)[::-1][:n_best]
        top_e = np.argsort(e)[::-1][:n_best]
        for i in top_s:
            if offsets[i] is None:
                continue
            for j in top_e:
                if offsets[j] is None or j < i or j - i + 1 > max_answer_length:
                    continue
                score = float(s[i] + e[j])
                if score > best_score:
                    best_score, best_text = score, context[offsets[i][0]: offsets[j][1]]
    if allow_null and null > best_score:
        return "", null
    return best_text, best_score
