"""Token ids of whole documents and, for BART's sentence permutation, which tokens begin a sentence."""

from __future__ import annotations

import functools
import itertools
from collections.abc import Iterable, Iterator

import numpy as np

from es_zoo.errors import CorpusError, EsZooError
from es_zoo.sentences import sentence_starts
from es_zoo.tokenization.tables import _backend


@functools.lru_cache(maxsize=1)
def _space_code_points() -> np.ndarray:
    """Whitespace that is not a line break: a token's leading space belongs to the word it starts."""
    return np.array(
        [c for c in range(0x3001) if chr(c).isspace() and len(("a" + chr(c) + "a").splitlines()) == 1],
        dtype=np.uint32,
    )


def _token_sentence_starts(text: str, offsets: list[tuple[int, int]]) -> np.ndarray:
    """For each token, whether it is the first one at or after a sentence start of ``text``.

    A token's span counts from its first character that is not a space, since a space belongs to
    the word after it: byte-level BPE trims the space off "ĠEl" but leaves a lone "Ġ" empty, and
    SentencePiece's "▁El" and lone "▁" spans include it, so the start of "Él" in "fin. Él" falls on
    the token "ĠÉl", "Ġ", "▁Él" or "▁" that carries its space. A line break is not a space: its
    token ("Ċ", "\n") ends the paragraph before it.
    """
    n = len(offsets)
    flags = np.zeros(n, dtype=bool)
    if n == 0:
        return flags
    spans = np.asarray(offsets, dtype=np.int64).reshape(n, 2)
    begin, end = spans[:, 0], spans[:, 1]
    codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    space = np.isin(codes, _space_code_points())
    if space.any():
        # next_solid[p]: the first position at or after p that is not a space (len(text) if none).
        positions = np.where(space, codes.size, np.arange(codes.size))
        next_solid = np.append(np.minimum.accumulate(positions[::-1])[::-1], codes.size)
        begin = np.maximum(begin, np.minimum(next_solid[np.minimum(begin, codes.size)], end))
    begin = np.maximum.accumulate(begin)
    first = np.searchsorted(begin, np.asarray(sentence_starts(text), dtype=np.int64), side="left")
    flags[first[first < n]] = True
    flags[0] = True
    return flags


def tokenize_documents(
    tokenizer, documents: Iterable[str], batch_size: int = 1000, with_sentences: bool = False
) -> Iterator[np.ndarray] | Iterator[tuple[np.ndarray, np.ndarray]]:
    """Token ids of each document, without special tokens and never truncated.

    Encodes ``batch_size`` documents at a time with the Rust tokenizer (parallel over cores) and
    yields one ``int32`` array per document, in order (an empty document gives an empty array).
    Documents longer than ``model_max_length`` are returned whole and silently: packing them into
    training sequences is the caller's job.

    With ``with_sentences=True`` each item is ``(ids, starts)``: ``starts`` is a bool array as long
    as ``ids``, True where a token begins a sentence of :func:`es_zoo.sentences.sentence_starts`
    (the first token at or after the sentence's first character, from the tokenizer's character
    offsets; the first token is always True). This works for WordPiece, byte-level BPE and SentencePiece alike.

    Example:
        >>> from es_zoo.tokenization import train_wordpiece
        >>> tok = train_wordpiece(["la casa es blanca"] * 20, vocab_size=300)
        >>> [a, b] = tokenize_documents(tok, ["la casa", ""])
        >>> a.dtype, len(a), len(b)
        (dtype('int32'), 2, 0)
        >>> [(ids, starts)] = tokenize_documents(tok, ["la casa. es blanca. La casa."], with_sentences=True)
        >>> tok.convert_ids_to_tokens(ids[starts])
        ['la', 'L']
    """
    if batch_size < 1:
        raise EsZooError(f"batch_size must be >= 1, got {batch_size}")
    backend = _backend(tokenizer)  # a bare tokenizers.Tokenizer works too
    if backend.truncation is not None or backend.padding is not None:
        # A copy, so the caller's tokenizer keeps its settings.
        from tokenizers import Tokenizer

        backend = Tokenizer.from_str(backend.to_str())
        backend.no_truncation()
        backend.no_padding()
    docs = iter(documents)
    while batch := list(itertools.islice(docs, batch_size)):
        for doc in batch:
            if not isinstance(doc, str):
                raise CorpusError(f"document is a {type(doc).__name__}, not a str: {doc!r:.80}")
        for doc, encoding in zip(batch, backend.encode_batch(batch, add_special_tokens=False)):
            ids = np.asarray(encoding.ids, dtype=np.int32)
            if with_sentences:
                yield ids, _token_sentence_starts(doc, encoding.offsets)
            else:
                yield ids
