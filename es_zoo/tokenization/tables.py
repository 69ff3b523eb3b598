"""Per-id tables the objectives need: word starts, ordinary ids, sentinels, the mask token."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from es_zoo.errors import EsZooError, ObjectiveError
from es_zoo.tokenization.byte_level_bpe import _byte_images
from es_zoo.tokenization.common import (
    _BYTE_PIECE,
    _CONTINUATION,
    _METASPACE,
    _SENTINEL,
    _UNUSED,
    _WHITESPACE_BYTES,
    BETO_SPECIAL_TOKENS,
)

if TYPE_CHECKING:  # pragma: no cover
    from tokenizers import Tokenizer


def wordpiece_tables(tokenizer) -> tuple[np.ndarray, np.ndarray]:
    """Per-id lookup tables for the masking objective: ``(is_special, is_continuation)``.

    Both are bool arrays of length ``len(tokenizer)``. ``is_special`` marks every special or added
    token, BETO's ``[EOS]`` and the ``[unused*]`` placeholders (ids with no token are marked too, so
    nothing ever samples them); ``is_continuation`` marks ``##`` pieces, which continue a word.

    Example:
        >>> from es_zoo.tokenization import train_wordpiece
        >>> tok = train_wordpiece(["el perro corría por el prado"] * 20, vocab_size=300)
        >>> is_special, is_cont = wordpiece_tables(tok)
        >>> bool(is_special[0]), bool(is_special[tok.convert_tokens_to_ids("perro")])
        (True, False)
        >>> bool(is_cont[tok.convert_tokens_to_ids("##o")])
        True
    """
    size = len(tokenizer)
    is_special = np.ones(size, dtype=bool)
    is_continuation = np.zeros(size, dtype=bool)
    special_tokens = set(BETO_SPECIAL_TOKENS)
    special_ids = set(tokenizer.all_special_ids) | set(tokenizer.added_tokens_decoder)
    for token, i in tokenizer.get_vocab().items():
        if not 0 <= i < size:
            continue
        is_special[i] = i in special_ids or token in special_tokens or bool(_UNUSED.match(token))
        is_continuation[i] = token.startswith(_CONTINUATION) and not is_special[i]
    if tokenizer.unk_token_id is not None and 0 <= tokenizer.unk_token_id < size:
        is_special[tokenizer.unk_token_id] = False
    return is_special, is_continuation


def _backend(tokenizer) -> "Tokenizer":
    return getattr(tokenizer, "backend_tokenizer", tokenizer)


def _find_component(component, type_name: str):
    """The first part of type ``type_name`` in a serialized pre-tokenizer or decoder, Sequences searched."""
    if not isinstance(component, dict):
        return None
    if component.get("type") == type_name:
        return component
    for key in ("pretokenizers", "decoders", "normalizers", "processors"):
        for child in component.get(key) or []:
            found = _find_component(child, type_name)
            if found is not None:
                return found
    return None


def _pipeline(tokenizer) -> dict:
    """The backend's serialized pipeline (model, pre-tokenizer, ...), as in ``tokenizer.json``."""
    return json.loads(_backend(tokenizer).to_str())


def _byte_piece_value(token: str) -> int | None:
    match = _BYTE_PIECE.match(token)
    return int(match.group(1), 16) if match else None


def _word_start_rule(tokenizer) -> Callable[[str], bool]:
    """Whether an ordinary token begins a word, for the tokenizer's family.

    The family is read from the backend (model type and pre-tokenizer), not from class names:
    WordPiece (a token continues a word iff it has the continuation prefix, "##"), byte-level
    (GPT-2, BART: a token begins a word iff it begins with a whitespace byte, "Ġ" or "Ċ"...) or
    Metaspace (SentencePiece: iff it begins with "▁", or with whitespace such as a newline).
    """
    pipeline = _pipeline(tokenizer)
    model = pipeline.get("model") or {}
    pre_tokenizer = pipeline.get("pre_tokenizer")
    if model.get("type") == "WordPiece":
        prefix = model.get("continuing_subword_prefix") or _CONTINUATION
        return lambda token: not token.startswith(prefix)
    if _find_component(pre_tokenizer, "ByteLevel") is not None:
        images = {_byte_images()[b] for b in _WHITESPACE_BYTES}
        return lambda token: token[:1] in images
    metaspace = _find_component(pre_tokenizer, "Metaspace")
    if metaspace is not None:
        replacement = metaspace.get("replacement") or _METASPACE
        spaces = set(_WHITESPACE_BYTES)

        def starts_word(token: str) -> bool:
            if token.startswith(replacement) or token[:1].isspace():
                return True
            return _byte_piece_value(token) in spaces  # a newline that fell back to its byte

        return starts_word
    raise EsZooError(
        f"cannot tell where words begin for a tokenizer with a {model.get('type')} model and a "
        f"{(pre_tokenizer or {}).get('type')} pre-tokenizer (expected WordPiece, byte-level BPE or "
        "SentencePiece-style Metaspace)"
    )


def _special_ids(tokenizer) -> set[int]:
    return set(tokenizer.all_special_ids) | set(getattr(tokenizer, "added_tokens_decoder", {}))


def word_start_table(tokenizer) -> np.ndarray:
    """Whether each id begins a word: a bool array of length ``len(tokenizer)``.

    WordPiece: every token but the ``##`` pieces. Byte-level BPE: tokens whose first character
    stands for a whitespace byte (``Ġ`` space, ``Ċ`` newline, ``ĉ`` tab...), so a word is a
    ``Ġ`` token and the tokens after it. SentencePiece: tokens that begin with ``▁`` or with
    whitespace (a newline). In the last two, the first word of a text, and a word right after a
    newline, has no such mark and so continues the token before it. Special and added tokens count
    as word starts, as in fairseq's ``is_beginning_of_word``, and so do ids without a token.

    Example:
        >>> from es_zoo.tokenization import train_byte_level_bpe
        >>> tok = train_byte_level_bpe(["el perro y el gato"] * 30, vocab_size=300)
        >>> starts = word_start_table(tok)
        >>> [bool(starts[i]) for i in tok("el perro", add_special_tokens=False)["input_ids"]]
        [False, True]
    """
    rule = _word_start_rule(tokenizer)
    size = len(tokenizer)
    table = np.ones(size, dtype=bool)
    special = _special_ids(tokenizer)
    for token, i in tokenizer.get_vocab().items():
        if 0 <= i < size and i not in special:
            table[i] = rule(token)
    return table


def ordinary_token_ids(tokenizer) -> np.ndarray:
    """The ids a random replacement may draw, ascending (``int64``).

    Every id but special and added tokens, BETO's ``[EOS]`` and ``[unused*]`` placeholders, the
    byte-fallback pieces ``<0xNN>`` of a SentencePiece model and T5's ``<extra_id_N>`` sentinels.

    Example:
        >>> from es_zoo.tokenization import train_byte_level_bpe
        >>> tok = train_byte_level_bpe(["el perro y el gato"] * 30, vocab_size=300)
        >>> ids = ordinary_token_ids(tok)
        >>> int(ids[0]), len(ids) == len(tok) - 5  # not <s> <pad> </s> <unk> <mask>
        (4, True)
    """
    size = len(tokenizer)
    byte_fallback = bool((_pipeline(tokenizer).get("model") or {}).get("byte_fallback"))
    special = _special_ids(tokenizer)
    keep = np.zeros(size, dtype=bool)
    for token, i in tokenizer.get_vocab().items():
        if not 0 <= i < size or i in special:
            continue
        if token in BETO_SPECIAL_TOKENS or _UNUSED.match(token) or _SENTINEL.match(token):
            continue
        if byte_fallback and _BYTE_PIECE.match(token):
            continue
        keep[i] = True
    return np.flatnonzero(keep).astype(np.int64)


def sentinel_ids(tokenizer) -> tuple[int, int]:
    """``(id of <extra_id_0>, number of sentinels)`` of a T5-style tokenizer.

    The sentinels must count down contiguously from ``<extra_id_0>``: ``<extra_id_k>`` is
    ``id_0 - k``, as in T5. Raises :class:`~es_zoo.errors.ObjectiveError` for a tokenizer without
    sentinels (BETO's or BARTO's) or with a broken run of them.

    Example:
        >>> from es_zoo.tokenization import train_sentencepiece_unigram
        >>> tok = train_sentencepiece_unigram(["el perro y el gato"] * 30, vocab_size=600)
        >>> sentinel_ids(tok) == (len(tok) - 1, 100)
        True
    """
    found: dict[int, int] = {}
    for token, i in tokenizer.get_vocab().items():
        match = _SENTINEL.match(token)
        if match:
            found[int(match.group(1))] = i
    if not found:
        raise ObjectiveError(
            "span corruption needs sentinel tokens <extra_id_0>, <extra_id_1>, ... and this tokenizer "
            f"({type(tokenizer).__name__}, {len(tokenizer)} ids) has none: use a T5-style tokenizer "
            "(tokenizer.kind 'sentencepiece_unigram' with extra_ids > 0)"
        )
    n = len(found)
    first = found.get(0)
    if sorted(found) != list(range(n)) or any(found[k] != first - k for k in range(n)):
        numbers = sorted(found)
        raise ObjectiveError(
            f"the tokenizer's {n} sentinel tokens do not count down contiguously from <extra_id_0> "
            f"(numbers {numbers[0]}..{numbers[-1]}; <extra_id_0> = {first}, "
            f"<extra_id_{numbers[-1]}> = {found[numbers[-1]]}); expected <extra_id_k> = id of <extra_id_0> - k"
        )
    return first, n


def mask_token_id(tokenizer) -> int:
    """The id of the tokenizer's mask token; :class:`~es_zoo.errors.ObjectiveError` if it has none.

    Example:
        >>> from es_zoo.tokenization import train_byte_level_bpe
        >>> mask_token_id(train_byte_level_bpe(["el perro y el gato"] * 30, vocab_size=300)) > 0
        True
    """
    token = getattr(tokenizer, "mask_token", None)
    token_id = getattr(tokenizer, "mask_token_id", None) if token is not None else None
    if token_id is None or not 0 <= token_id < len(tokenizer):
        raise ObjectiveError(
            f"masking needs a mask token and this tokenizer ({type(tokenizer).__name__}, {len(tokenizer)} "
            "ids) has none: T5-style tokenizers mark spans with sentinels instead (see sentinel_ids)"
        )
    return int(token_id)
