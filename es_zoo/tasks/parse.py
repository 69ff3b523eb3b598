"""Parse Spanish sentences with a biaffine parser fine-tuned by es-zoo (used by the demos too).

Example:
    >>> from es_zoo.tasks.heads import BiaffineParser  # doctest: +SKIP
    >>> parser = BiaffineParser.load("runs/beto-tiny/glues/parsing/model")  # doctest: +SKIP
    >>> parse(parser, "runs/beto-tiny/glues/parsing/model", [["El", "perro", "ladra", "."]])  # doctest: +SKIP
    [[{'id': 1, 'form': 'El', 'head': 2, 'deprel': 'det'}, ...]]
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, Sequence

import numpy as np

from es_zoo.loading import load_tokenizer
from es_zoo.tasks.features import encode_words


def parse(parser: Any, tokenizer: Any, sentences: Sequence[Sequence[str]], max_length: int = 128,
          stride: int = 32, batch_size: int = 32) -> list[list[dict]]:
    """Heads (0 = root, 1-based word ids) and relations for sentences given as lists of words; every
    output is a tree with one root."""
    from es_zoo.tasks.finetune import Prepared, predict  # lazy: torch loads only when a parse runs

    if isinstance(tokenizer, str):
        tokenizer = load_tokenizer(tokenizer)
    enc = encode_words(tokenizer, sentences, max_length, stride)
    by_example: list[list[int]] = [[] for _ in range(enc.n_examples)]
    for wi, e in enumerate(enc.example_of):
        by_example[e].append(wi)
    items = [{"windows": w, "slots": enc.word_slots[e]} for e, w in enumerate(by_example)]
    lengths = np.array([sum(len(enc.windows[w]["input_ids"]) for w in it["windows"]) for it in items])
    hp = SimpleNamespace(n_best=0, max_answer_length=0)
    preds = predict(SimpleNamespace(head="parser"), parser, tokenizer, Prepared(enc, items, lengths, None), hp,
                    batch_size=batch_size)
    return [[{"id": i + 1, "form": w, "head": h, "deprel": r} for i, (w, h, r) in enumerate(zip(words, *p))]
            for words, p in zip(sentences, preds)]
