"""Training a BETO-style WordPiece vocabulary (special tokens first, Spanish alphabet always in)."""

from __future__ import annotations

import functools
import itertools
import unicodedata
from collections.abc import Iterable
from typing import TYPE_CHECKING

from es_zoo.errors import EsZooError
from es_zoo.tokenization.bert import _bert_normalizer, _wrap
from es_zoo.tokenization.common import (
    _CONTINUATION,
    BETO_SPECIAL_TOKENS,
    SPANISH_ALPHABET,
    _checked,
    _no_text,
)

if TYPE_CHECKING:  # pragma: no cover
    from transformers import PreTrainedTokenizerFast

# Rare characters (emoji, symbols, other scripts) cost vocabulary entries that Spanish never uses;
# keep the 1,000 most frequent, the default of tokenizers' BertWordPieceTokenizer. SPANISH_ALPHABET
# is always kept on top of that.
_LIMIT_ALPHABET = 1000


def _joins_words(char: str, normalizer, pre_tokenizer) -> bool:
    """Whether ``char`` can sit inside a word (so WordPiece needs ``##char``), e.g. letters and €."""
    pieces = pre_tokenizer.pre_tokenize_str(normalizer.normalize_str("a" + char))
    return len(pieces) == 1


@functools.lru_cache(maxsize=4)
def _continuation_seeds(lowercase: bool, strip_accents: bool) -> tuple[str, ...]:
    """``##c`` for every character ``c`` that can sit inside a normalized word, in code point order.

    The trainer creates the ``##c`` pieces while walking a hash map of word counts, so their ids,
    and through tie-breaking on ids the merges themselves, change from run to run
    (huggingface/tokenizers#1794). Handing them to the trainer up front, in a fixed order, makes
    training reproducible. Built once per normalizer (about half a second).
    """
    normalizer = _bert_normalizer(lowercase, strip_accents)
    from tokenizers import pre_tokenizers

    pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    seeds = []
    # The Basic Multilingual Plane without surrogates and private use, plus the emoji blocks.
    for cp in itertools.chain(range(0x21, 0xD800), range(0xF900, 0x10000), range(0x1F000, 0x1FB00)):
        char = chr(cp)
        if unicodedata.category(char) == "Cn" or normalizer.normalize_str(char) != char:
            continue  # unassigned, or never seen after normalization (upper case when uncased, CJK...)
        if _joins_words(char, normalizer, pre_tokenizer):
            seeds.append(_CONTINUATION + char)
    return tuple(seeds)


def _assemble_vocab(
    trained: dict[str, int], vocab_size: int, normalizer, pre_tokenizer
) -> dict[str, int]:
    """BETO's layout: special tokens, the alphabet, its ``##`` forms, then learned pieces.

    Every character that can sit inside a word gets its ``##`` form even if training never saw
    it there: without it, any word holding that character after its first letter becomes [UNK]
    as a whole ("20€", "AÚN"). Learned pieces come in training order (most frequent merges
    first), so cutting the list at ``vocab_size`` drops the rarest ones.
    """
    order = sorted(trained, key=trained.__getitem__)
    specials = set(BETO_SPECIAL_TOKENS)
    chars = [t for t in order if len(t) == 1 and t not in specials]
    continuations = [_CONTINUATION + c for c in chars if _joins_words(c, normalizer, pre_tokenizer)]
    fixed = list(BETO_SPECIAL_TOKENS) + chars + continuations
    if len(fixed) > vocab_size:
        raise EsZooError(
            f"vocab_size={vocab_size} is too small: the {len(specials)} special tokens, the "
            f"{len(chars)} characters of the alphabet and their {len(continuations)} '##' forms "
            f"already need {len(fixed)} entries; raise vocab_size"
        )
    single_continuation = len(_CONTINUATION) + 1
    learned = [
        t
        for t in order
        if t not in specials
        and len(t) > 1
        and not (t.startswith(_CONTINUATION) and len(t) == single_continuation)
    ]
    final = fixed + learned[: vocab_size - len(fixed)]
    return {t: i for i, t in enumerate(final)}


def train_wordpiece(
    texts: Iterable[str],
    *,
    vocab_size: int,
    lowercase: bool = False,
    strip_accents: bool = False,
    min_frequency: int = 2,
    model_max_length: int = 512,
) -> "PreTrainedTokenizerFast":
    """Train a BETO-style WordPiece tokenizer on ``texts`` with the ``tokenizers`` library.

    The vocabulary holds at most ``vocab_size`` entries, special tokens included, with BETO's
    special tokens at ids 0..5 and every character of :data:`SPANISH_ALPHABET` (plus the ``##``
    form of each one that can sit inside a word), so that ``% / ; $ € & @ # '`` and accented
    letters never become [UNK]. The same texts and arguments give the same vocabulary and ids.

    Example:
        >>> tok = train_wordpiece(["¿Cuánto cuesta? 20€, un 5% más."] * 50, vocab_size=300)
        >>> tok.convert_ids_to_tokens([0, 5])
        ['[MASK]', '[SEP]']
        >>> tok.unk_token_id in tok("Pagó 20€ (un 5%).")["input_ids"]
        False
    """
    from tokenizers import Tokenizer, pre_tokenizers
    from tokenizers.models import WordPiece
    from tokenizers.trainers import WordPieceTrainer

    if vocab_size < len(BETO_SPECIAL_TOKENS) + 1:
        raise EsZooError(f"vocab_size must be larger than the {len(BETO_SPECIAL_TOKENS)} special tokens")
    if min_frequency < 1:
        raise EsZooError(f"min_frequency must be >= 1, got {min_frequency}")

    normalizer = _bert_normalizer(lowercase, strip_accents)
    pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    # The alphabet goes through the normalizer: an uncased vocabulary has no use for "Á".
    alphabet = sorted({normalizer.normalize_str(c) for c in SPANISH_ALPHABET} - {""})

    seeds = _continuation_seeds(lowercase, strip_accents)

    backend = Tokenizer(WordPiece(unk_token="[UNK]", continuing_subword_prefix=_CONTINUATION))
    backend.normalizer = normalizer
    backend.pre_tokenizer = pre_tokenizer
    trainer = WordPieceTrainer(
        # The seeds ride along as special tokens (most are unused and dropped afterwards), so the
        # budget for learned pieces is the requested one.
        vocab_size=vocab_size + len(seeds),
        min_frequency=min_frequency,
        show_progress=False,
        special_tokens=list(BETO_SPECIAL_TOKENS) + list(seeds),
        limit_alphabet=_LIMIT_ALPHABET,
        initial_alphabet=alphabet,
        continuing_subword_prefix=_CONTINUATION,
    )

    seen = {"texts": 0, "chars": 0}
    backend.train_from_iterator(_checked(texts, seen), trainer=trainer)
    if seen["chars"] == 0:
        raise _no_text(seen)
    trained = backend.get_vocab(with_added_tokens=False)
    vocab = _assemble_vocab(trained, vocab_size, normalizer, pre_tokenizer)
    return _wrap(
        vocab, lowercase=lowercase, strip_accents=strip_accents, model_max_length=model_max_length
    )
