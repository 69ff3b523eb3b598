"""Tokenizers for the zoo: BETO's WordPiece, BARTO's byte-level BPE and T5S's SentencePiece unigram.

Every tokenizer made here is a plain transformers tokenizer: ``save_pretrained`` writes it and
``transformers.AutoTokenizer.from_pretrained`` loads it back, with nothing from es-zoo installed.

BETO's layout is kept in both ways of getting a WordPiece tokenizer:

- :func:`wordpiece_from_vocab` loads a published ``vocab.txt`` (ids exactly as published);
- :func:`train_wordpiece` trains a new vocabulary with the ``tokenizers`` library, special tokens
  first in BETO's order (``[MASK]`` = 0 ... ``[SEP]`` = 5).

The published BETO vocabularies lack ``% / ; $ € & @ # '`` (dccuchile/beto issue 11), so those
characters are [UNK] for the published models. Trained tokenizers seed their alphabet with them and
with the Spanish alphabet (:data:`SPANISH_ALPHABET`), so they never become [UNK].

The published tokenizers (Hub ``tokenizer_config.json`` of ``dccuchile/bert-base-spanish-wwm-cased``
and ``-uncased``): cased has ``do_lower_case: false``; uncased has ``do_lower_case: true`` and
``strip_accents: false``; both ``tokenize_chinese_chars: true`` and ``model_max_length: 512``.
So the uncased model lower-cases but keeps accents ("Canción" -> "canción").

The saved tokenizer applies Unicode NFC before BERT's normalizer, as the slow Python BertTokenizer
of transformers did for the published BETO: decomposed text ("o" + U+0301) becomes "ó", not [UNK],
for anyone who loads the folder. It is saved as the generic ``TokenizersBackend`` class (as T5S's),
which ``AutoTokenizer`` loads from ``tokenizer.json`` as it is; transformers 5's ``BertTokenizer``
would rebuild the normalizer from ``tokenizer_config.json`` and drop the NFC.

BARTO (:func:`train_byte_level_bpe`) is BART's byte-level BPE: ``<s>`` ``<pad>`` ``</s>`` ``<unk>``
= 0..3, ``<mask>`` the last id, sequences framed ``<s> A </s>``. Every byte has a token, so no text
is ever ``<unk>`` and decoding gives the text back exactly.

T5S (:func:`train_sentencepiece_unigram`) is T5's SentencePiece unigram: ``<pad>`` ``</s>`` ``<unk>``
= 0..2, the pieces, then the sentinels with ``<extra_id_0>`` the highest id; ``</s>`` ends every
sequence. Unlike T5 it keeps the text as it is (NFC only, no NFKC; spaces and newlines survive) and
falls back to UTF-8 bytes for characters it has no piece for, so it never gives ``<unk>`` either.

The objectives need per-id tables (:func:`word_start_table`, :func:`ordinary_token_ids`,
:func:`sentinel_ids`, :func:`mask_token_id`); BART's sentence permutation needs where sentences
begin (:func:`sentence_starts`, and ``tokenize_documents(..., with_sentences=True)``).

Example:
    >>> from es_zoo.tokenization import wordpiece_from_vocab, tokenize_documents
    >>> tok = wordpiece_from_vocab("beto/cased_2M/vocab.txt", lowercase=False)  # doctest: +SKIP
    >>> tok.convert_ids_to_tokens([0, 1, 2, 3, 4, 5])  # doctest: +SKIP
    ['[MASK]', '[PAD]', '[EOS]', '[UNK]', '[CLS]', '[SEP]']
    >>> [ids] = tokenize_documents(tok, ["¿Dónde está el niño?"])  # doctest: +SKIP
"""

from __future__ import annotations

import collections
import functools
import itertools
import json
import math
import re
import string
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from es_zoo.errors import CorpusError, EsZooError, ObjectiveError

if TYPE_CHECKING:  # pragma: no cover
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    from es_zoo.recipes import TokenizerConfig

__all__ = [
    "BART_SPECIAL_TOKENS",
    "BETO_SPECIAL_TOKENS",
    "SPANISH_ALPHABET",
    "T5_SPECIAL_TOKENS",
    "TOKENIZER_KINDS",
    "build_tokenizer",
    "mask_token_id",
    "ordinary_token_ids",
    "sentence_starts",
    "sentinel_ids",
    "tokenize_documents",
    "train_byte_level_bpe",
    "train_sentencepiece_unigram",
    "train_wordpiece",
    "word_start_table",
    "wordpiece_from_vocab",
    "wordpiece_tables",
]

TOKENIZER_KINDS = ("wordpiece", "byte_level_bpe", "sentencepiece_unigram")
"""``tokenizer.kind`` of a recipe: BETO, BARTO and T5S."""

BETO_SPECIAL_TOKENS = ("[MASK]", "[PAD]", "[EOS]", "[UNK]", "[CLS]", "[SEP]")
"""BETO's special tokens in id order (0..5), as in the published ``vocab.txt``."""

BART_SPECIAL_TOKENS = ("<s>", "<pad>", "</s>", "<unk>")
"""BARTO's special tokens in id order (0..3), as in BART; ``<mask>`` is the last id."""
BART_MASK_TOKEN = "<mask>"

T5_SPECIAL_TOKENS = ("<pad>", "</s>", "<unk>")
"""T5S's special tokens in id order (0..2), as in T5; the ``<extra_id_N>`` sentinels are the last ids."""

SPANISH_ALPHABET = (
    string.ascii_letters
    + "áéíóúüñÁÉÍÓÚÜÑ"
    + "ªº"  # ordinals: 1.º, 2.ª
    + string.digits
    + string.punctuation  # includes % / ; $ & @ # ' (missing from the published vocab)
    + "¿¡«»—–€“”‘’…"
)
"""Characters every trained WordPiece vocabulary contains, whatever the training text."""

_UNUSED = re.compile(r"^\[unused\d+\]$")
_CONTINUATION = "##"
# BERT's WordPiece gives [UNK] for a whole word longer than this; the published tokenizers use 100.
_MAX_INPUT_CHARS_PER_WORD = 100
# Rare characters (emoji, symbols, other scripts) cost vocabulary entries that Spanish never uses;
# keep the 1,000 most frequent, the default of tokenizers' BertWordPieceTokenizer. SPANISH_ALPHABET
# is always kept on top of that.
_LIMIT_ALPHABET = 1000

_METASPACE = "\u2581"  # "▁", SentencePiece's mark for a space
_BYTE_PIECE = re.compile(r"^<0x([0-9A-F]{2})>$")  # SentencePiece byte-fallback pieces
_SENTINEL = re.compile(r"^<extra_id_(0|[1-9][0-9]*)>$")  # T5's sentinels
_WHITESPACE_BYTES = b" \t\n\r\x0b\x0c"


# --------------------------------------------------------------------------------------------------
# Building and wrapping the backend
# --------------------------------------------------------------------------------------------------


def _bert_normalizer(lowercase: bool, strip_accents: bool):
    from tokenizers import normalizers

    return normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=strip_accents, lowercase=lowercase
    )


def _bert_backend(vocab: dict[str, int], *, lowercase: bool, strip_accents: bool) -> "Tokenizer":
    """The complete BERT pipeline over ``vocab`` (which must hold BETO's special tokens)."""
    from tokenizers import Tokenizer, decoders, pre_tokenizers, processors
    from tokenizers.models import WordPiece

    backend = Tokenizer(
        WordPiece(
            vocab,
            unk_token="[UNK]",
            continuing_subword_prefix=_CONTINUATION,
            max_input_chars_per_word=_MAX_INPUT_CHARS_PER_WORD,
        )
    )
    backend.normalizer = _bert_normalizer(lowercase, strip_accents)
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS]:0 $A:0 [SEP]:0",
        pair="[CLS]:0 $A:0 [SEP]:0 $B:1 [SEP]:1",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])],
    )
    backend.decoder = decoders.WordPiece(prefix=_CONTINUATION)
    return backend


def _wrap(
    vocab: dict[str, int], *, lowercase: bool, strip_accents: bool, model_max_length: int
) -> "PreTrainedTokenizerFast":
    # Unicode NFC, then BERT's normalizer (the published BETO settings): decomposed text ("e" + U+0301)
    # reaches the vocabulary as "é", not as [UNK], for every user of the saved folder. transformers 5's
    # BertTokenizer would rebuild its normalizer from tokenizer_config.json on every load and drop the
    # NFC, so the tokenizer is saved as the generic class (TokenizersBackend; PreTrainedTokenizerFast is
    # its alias), which AutoTokenizer loads from tokenizer.json as it is -- as T5S's is.
    from tokenizers import normalizers
    from transformers import PreTrainedTokenizerFast

    if model_max_length < 1:
        raise EsZooError(f"model_max_length must be >= 1, got {model_max_length}")
    backend = _bert_backend(vocab, lowercase=lowercase, strip_accents=strip_accents)
    backend.normalizer = normalizers.Sequence([normalizers.NFC(), backend.normalizer])
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        unk_token="[UNK]",
        sep_token="[SEP]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        mask_token="[MASK]",
        model_max_length=model_max_length,
        model_input_names=["input_ids", "token_type_ids", "attention_mask"],  # BERT's segment ids, as BertTokenizer
    )


# --------------------------------------------------------------------------------------------------
# Published vocabularies
# --------------------------------------------------------------------------------------------------


def _read_vocab(vocab_file: str | Path) -> dict[str, int]:
    path = Path(vocab_file).expanduser()
    if path.is_dir() and (path / "vocab.txt").is_file():
        path = path / "vocab.txt"
    if not path.is_file():
        raise EsZooError(
            f"vocab_file {str(vocab_file)!r} does not exist (expected a WordPiece vocab.txt, one token "
            "a line, such as BETO's published cased_2M/vocab.txt)"
        )
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise EsZooError(f"vocab_file {str(path)!r} is not UTF-8 text: {err}") from None
    # split("\n"), not splitlines(): a token may legitimately be a Unicode line separator.
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    vocab: dict[str, int] = {}
    for i, line in enumerate(lines):
        token = line.rstrip("\r")
        if token in vocab:
            raise EsZooError(
                f"vocab_file {str(path)!r}: token {token!r} on line {i + 1} repeats line "
                f"{vocab[token] + 1}; ids would not match the file"
            )
        vocab[token] = i
    missing = [t for t in ("[UNK]", "[CLS]", "[SEP]", "[PAD]", "[MASK]") if t not in vocab]
    if missing:
        raise EsZooError(
            f"vocab_file {str(path)!r} is not a BERT WordPiece vocabulary: it lacks {', '.join(missing)}"
        )
    return vocab


def wordpiece_from_vocab(
    vocab_file: str | Path,
    *,
    lowercase: bool,
    strip_accents: bool = False,
    model_max_length: int = 512,
) -> "PreTrainedTokenizerFast":
    """Load a published WordPiece ``vocab.txt`` (such as BETO's) as a transformers tokenizer.

    Ids are the line numbers of the file, and text is split exactly as by the published
    tokenizer: BETO-cased is ``lowercase=False``; BETO-uncased is ``lowercase=True,
    strip_accents=False``. ``vocab_file`` may also be a folder holding ``vocab.txt``.

    Example:
        >>> tok = wordpiece_from_vocab("beto/uncased_2M/vocab.txt", lowercase=True)  # doctest: +SKIP
        >>> tok.tokenize("¿Qué tal, Ñandú?")  # doctest: +SKIP
        ['¿', 'qué', 'tal', ',', 'ñ', '##and', '##ú', '?']
    """
    vocab = _read_vocab(vocab_file)
    return _wrap(
        vocab, lowercase=lowercase, strip_accents=strip_accents, model_max_length=model_max_length
    )


# --------------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------------


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

    def checked() -> Iterator[str]:
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise CorpusError(f"training text #{i} is a {type(text).__name__}, not a str")
            seen["texts"] += 1
            seen["chars"] += len(text.strip())
            yield text

    backend.train_from_iterator(checked(), trainer=trainer)
    if seen["chars"] == 0:
        raise CorpusError(
            f"no text to train the tokenizer on ({seen['texts']} texts, all empty); check the corpus"
        )
    trained = backend.get_vocab(with_added_tokens=False)
    vocab = _assemble_vocab(trained, vocab_size, normalizer, pre_tokenizer)
    return _wrap(
        vocab, lowercase=lowercase, strip_accents=strip_accents, model_max_length=model_max_length
    )


def _checked(texts: Iterable[str], seen: dict[str, int]) -> Iterator[str]:
    """``texts``, each checked to be a str, counting texts and non-blank characters into ``seen``."""
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise CorpusError(f"training text #{i} is a {type(text).__name__}, not a str")
        seen["texts"] += 1
        seen["chars"] += len(text.strip())
        yield text


def _no_text(seen: dict[str, int]) -> CorpusError:
    return CorpusError(
        f"no text to train the tokenizer on ({seen['texts']} texts, all empty); check the corpus"
    )


# --------------------------------------------------------------------------------------------------
# BARTO: byte-level BPE
# --------------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _byte_images() -> dict[int, str]:
    """GPT-2's map from each byte to the printable character that stands for it in byte-level tokens.

    Printable Latin-1 bytes stand for themselves; the others (control bytes, space, no-break space,
    soft hyphen) take the characters from U+0100 on, in byte order: space is "Ġ", newline "Ċ".
    """
    printable = [*range(0x21, 0x7F), *range(0xA1, 0xAD), *range(0xAE, 0x100)]
    images = {b: chr(b) for b in printable}
    for n, b in enumerate(b for b in range(256) if b not in images):
        images[b] = chr(0x100 + n)
    return images


def _wrap_bart(
    vocab: dict[str, int], merges: list[tuple[str, str]], *, model_max_length: int
) -> "PreTrainedTokenizerFast":
    # BART's pipeline is built by transformers' own BART class (RobertaTokenizer in v5; BartTokenizer
    # is an alias): BPE without unk or byte fallback, ByteLevel pre-tokenizer without prefix space and
    # with GPT-2's regex, ByteLevel decoder, RobertaProcessing "<s> A </s></s> B </s>" with
    # trim_offsets, "<mask>" taking the space before it. Unicode NFC is put in front of it: decomposed
    # text ("e" + U+0301) then gives the same ids as "é" for every user of the saved folder. That class
    # rebuilds its pipeline from tokenizer_config.json on every load and would drop the normalizer, so
    # the tokenizer is saved as the generic class (TokenizersBackend; PreTrainedTokenizerFast is its
    # alias), which AutoTokenizer loads from tokenizer.json as it is -- as BETO's and T5S's are.
    from tokenizers import AddedToken, normalizers
    from transformers import PreTrainedTokenizerFast, RobertaTokenizer

    if model_max_length < 1:
        raise EsZooError(f"model_max_length must be >= 1, got {model_max_length}")
    bos, pad, eos, unk = BART_SPECIAL_TOKENS
    specials = dict(
        bos_token=bos,
        eos_token=eos,
        sep_token=eos,
        cls_token=bos,
        unk_token=unk,
        pad_token=pad,
        # As in BART: "<mask>" takes the space before it (lstrip), as the "Ġ" word it stands for would.
        mask_token=AddedToken(BART_MASK_TOKEN, lstrip=True, rstrip=False, normalized=False, special=True),
    )
    bart = RobertaTokenizer(vocab=vocab, merges=merges, add_prefix_space=False, trim_offsets=True, **specials)
    backend = bart.backend_tokenizer
    backend.normalizer = normalizers.NFC()
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        **specials,
        model_max_length=model_max_length,
        model_input_names=["input_ids", "attention_mask"],  # BART has no segment ids
        clean_up_tokenization_spaces=False,  # decode must give the text back, spaces before "." included
    )


def train_byte_level_bpe(
    texts: Iterable[str],
    *,
    vocab_size: int,
    min_frequency: int = 2,
    model_max_length: int = 1024,
) -> "PreTrainedTokenizerFast":
    """Train a BART-style byte-level BPE tokenizer on ``texts`` with the ``tokenizers`` library.

    The pipeline is GPT-2's, as in BART and RoBERTa: text is cut with GPT-2's regex (a word keeps
    the space before it, "Ġ" in tokens), every byte of the UTF-8 text has a token of its own, and
    merges are learned over bytes. So nothing is ever ``<unk>`` and ``decode`` gives back exactly
    the text that was encoded (accents, ñ, ¿¡, «», newlines, runs of spaces, emoji). There is no
    normalizer but Unicode NFC (BART has none), so decomposed accents give the ids of composed ones.

    The vocabulary holds at most ``vocab_size`` entries: ``<s>`` ``<pad>`` ``</s>`` ``<unk>`` at
    ids 0..3, the 256 bytes, the learned merges (most frequent first), and ``<mask>`` as the last
    id, ``len(tokenizer) - 1`` (``vocab_size - 1`` once the text is large enough to fill the
    vocabulary, as it always is in practice: BARTO's published size is 50,264). ``<mask>`` takes
    the space before it, like BART's. Sequences are framed ``<s> A </s>`` and pairs
    ``<s> A </s></s> B </s>``. The same texts and arguments give the same vocabulary and merges.

    Example:
        >>> tok = train_byte_level_bpe(["¿Qué tal? Muy bien, gracias."] * 50, vocab_size=300)
        >>> tok.convert_ids_to_tokens([0, 1, 2, 3, len(tok) - 1])
        ['<s>', '<pad>', '</s>', '<unk>', '<mask>']
        >>> tok.decode(tok("¡Olé! 😀")["input_ids"], skip_special_tokens=True)
        '¡Olé! 😀'
    """
    from tokenizers import Tokenizer, normalizers, pre_tokenizers
    from tokenizers.models import BPE
    from tokenizers.trainers import BpeTrainer

    fixed = len(BART_SPECIAL_TOKENS) + 256 + 1
    if vocab_size <= fixed:
        raise EsZooError(
            f"vocab_size={vocab_size} is too small for a byte-level BPE: the {len(BART_SPECIAL_TOKENS)} "
            f"special tokens, the 256 bytes and <mask> already need {fixed} entries; raise vocab_size"
        )
    if min_frequency < 1:
        raise EsZooError(f"min_frequency must be >= 1, got {min_frequency}")

    backend = Tokenizer(BPE())
    # BART's pipeline (see _wrap_bart): NFC, no prefix space, GPT-2's regex.
    backend.normalizer = normalizers.NFC()
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    trainer = BpeTrainer(
        vocab_size=vocab_size - 1,  # <mask> comes last, after the learned merges
        min_frequency=min_frequency,
        show_progress=False,
        special_tokens=list(BART_SPECIAL_TOKENS),
        # All 256 byte images, whatever the text holds. The trainer sorts the alphabet and breaks
        # ties between equally frequent pairs by ids, so training is reproducible (the non-determinism
        # of huggingface/tokenizers#1794 only hits WordPiece's "##" pieces, which BPE does not have).
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    seen = {"texts": 0, "chars": 0}
    backend.train_from_iterator(_checked(texts, seen), trainer=trainer)
    if seen["chars"] == 0:
        raise _no_text(seen)

    model = json.loads(backend.to_str())["model"]
    vocab: dict[str, int] = dict(model["vocab"])
    if sorted(vocab.values()) != list(range(len(vocab))) or BART_MASK_TOKEN in vocab:
        raise EsZooError("byte-level BPE training gave an unexpected vocabulary (ids with gaps, or <mask>)")
    vocab[BART_MASK_TOKEN] = len(vocab)
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in model["merges"]]
    return _wrap_bart(vocab, merges, model_max_length=model_max_length)


# --------------------------------------------------------------------------------------------------
# T5S: SentencePiece unigram
# --------------------------------------------------------------------------------------------------

# SentencePiece's words: a space becomes "▁" and starts a new word; the text gets a "▁" in front.
# A newline is a word of its own (so no piece spans two paragraphs) and, unlike T5's, survives.
_METASPACE_WORDS = re.compile("\n|" + _METASPACE + "[^" + _METASPACE + "\n]*|[^" + _METASPACE + "\n]+")
# Words with a count go to the trainer in texts of this many words (see train_sentencepiece_unigram).
_TRAINER_CHUNK = 1 << 16


def _unigram_normalizer():
    from tokenizers import normalizers

    # NFC only. SentencePiece's default nmt_nfkc (T5's) folds "º" to "o", "ª" to "a", "…" to "...",
    # "½" to "1/2" and more: Spanish ordinals (1.º, 2.ª) would not survive a round trip.
    return normalizers.NFC()


def _metaspace_pre_tokenizer():
    from tokenizers import pre_tokenizers

    return pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split("\n", behavior="isolated"),
            # "first": only the text's first word gets a "▁" in front (not the word after a newline),
            # so decoding gives back the text exactly.
            pre_tokenizers.Metaspace(replacement=_METASPACE, prepend_scheme="first", split=True),
        ]
    )


def _metaspace_words(normalized: str) -> list[str]:
    """The words :func:`_metaspace_pre_tokenizer` cuts ``normalized`` into, five times faster.

    (The Rust pre-tokenizer returns offsets with every word; only the words are needed here.)
    """
    text = normalized.replace(" ", _METASPACE)
    if not text:
        return []
    head: list[str] = []
    if not text.startswith(_METASPACE):
        if text[0] == "\n":  # the prefix goes onto the first split, here a lone newline
            head, text = [_METASPACE + "\n"], text[1:]
        else:
            text = _METASPACE + text
    return head + _METASPACE_WORDS.findall(text)


def _unigram_trainer_input(counts: dict[str, int]) -> Iterator[str]:
    """``counts`` as texts of space-separated words (words never hold a space: it is "▁" by now)."""
    chunk: list[str] = []
    for word, n in counts.items():
        while n > 0:
            take = min(n, _TRAINER_CHUNK - len(chunk))
            chunk.extend(itertools.repeat(word, take))
            n -= take
            if len(chunk) == _TRAINER_CHUNK:
                yield " ".join(chunk)
                chunk = []
    if chunk:
        yield " ".join(chunk)


def _viterbi_counts(pieces: list[tuple[str, float]], counts: dict[str, int]) -> list[int]:
    """How often each piece is used when every training word is cut into its best pieces."""
    from tokenizers import Tokenizer
    from tokenizers.models import Unigram

    scorer = Tokenizer(Unigram([("<unk>", 0.0)] + pieces, unk_id=0, byte_fallback=False))
    encode = getattr(scorer, "encode_batch_fast", scorer.encode_batch)
    words = list(counts)
    weights = np.fromiter(counts.values(), dtype=np.float64, count=len(words))
    usage = np.zeros(len(pieces) + 1, dtype=np.float64)
    for start in range(0, len(words), 20_000):
        encodings = encode(words[start : start + 20_000], add_special_tokens=False)
        lengths = [len(e.ids) for e in encodings]
        ids = np.fromiter(itertools.chain.from_iterable(e.ids for e in encodings), dtype=np.int64)
        # Sums of integers, exact in float64 up to 2**53 whatever the order: reproducible.
        usage += np.bincount(
            ids, weights=np.repeat(weights[start : start + 20_000], lengths), minlength=usage.size
        )
    return [int(n) for n in usage[1:]]


def _wrap_t5(backend: "Tokenizer", extra_ids: int, *, model_max_length: int) -> "PreTrainedTokenizerFast":
    # transformers 5's T5Tokenizer does not load tokenizer.json as it is: every load rebuilds the
    # backend from the vocabulary with its own pipeline (WhitespaceSplit + Metaspace "always", no
    # byte fallback, NFKC only through a SentencePiece charsmap), which would collapse runs of
    # spaces, turn newlines into spaces and bytes into <unk> after a reload. The generic class
    # (TokenizersBackend; PreTrainedTokenizerFast is its alias) loads tokenizer.json verbatim, so
    # AutoTokenizer gives back this very pipeline (it is also what AutoTokenizer picks for a model
    # folder whose config says "t5" when tokenizer_config.json names this class). The sentinels
    # are its extra special tokens (v5's name for additional_special_tokens): special, skipped by
    # decode(skip_special_tokens=True), never split.
    from transformers import PreTrainedTokenizerFast

    if model_max_length < 1:
        raise EsZooError(f"model_max_length must be >= 1, got {model_max_length}")
    pad, eos, unk = T5_SPECIAL_TOKENS
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        eos_token=eos,
        unk_token=unk,
        pad_token=pad,
        extra_special_tokens=[f"<extra_id_{k}>" for k in range(extra_ids)],
        model_max_length=model_max_length,
        clean_up_tokenization_spaces=False,
    )


def train_sentencepiece_unigram(
    texts: Iterable[str],
    *,
    vocab_size: int,
    extra_ids: int = 100,
    model_max_length: int = 512,
) -> "PreTrainedTokenizerFast":
    """Train a T5-style SentencePiece unigram tokenizer on ``texts`` with the ``tokenizers`` library.

    Layout, as in T5: ``<pad>`` ``</s>`` ``<unk>`` at ids 0..2, then the 256 byte pieces
    ``<0x00>``..``<0xFF>``, then the learned pieces (most used first), then the ``extra_ids``
    sentinels ``<extra_id_{extra_ids-1}>`` .. ``<extra_id_0>``, so that ``<extra_id_0>`` is the
    highest id and ``<extra_id_k>`` is ``len(tokenizer) - 1 - k``. ``vocab_size`` counts everything
    (T5S's published size is 32,128) and is filled exactly unless the text is too small to offer
    that many pieces. ``</s>`` ends every sequence (no ``<s>``), as in T5.

    Text handling: Unicode NFC only, not SentencePiece's NFKC (T5's), so ``º``,
    ``ª``, ``…`` and the like stay as they are. A space becomes ``▁`` and starts a word, and the
    text's first word gets a ``▁`` too; runs of spaces and newlines (each newline its own token)
    are kept, so ``decode`` gives back the text exactly, except that a space at the very start of
    a text is lost, as in SentencePiece. Characters without a piece fall back to their UTF-8 bytes
    (the byte pieces) instead of ``<unk>``; every character of :data:`SPANISH_ALPHABET` and of the
    training text has a piece.

    Reproducibility: the trainer of ``tokenizers`` is not reproducible, even on one thread (it adds
    up floating-point expectations over the words in hash-map order, and orders the characters it
    adds at the end the same way), so its scores and ids change from run to run. Here the trainer
    only chooses the pieces; their scores are then recomputed from integer counts (how often each
    piece is used when each training word is cut into its best pieces: one step of Viterbi EM) and
    the ids follow those counts, ties in piece order. The same texts and arguments give the same
    ``tokenizer.json``.

    Example:
        >>> tok = train_sentencepiece_unigram(["El niño comió 1.º y 2.ª vez."] * 50, vocab_size=600)
        >>> tok.convert_ids_to_tokens([0, 1, 2]), tok.convert_tokens_to_ids("<extra_id_0>") == len(tok) - 1
        (['<pad>', '</s>', '<unk>'], True)
        >>> tok.decode(tok("El 1.º… ¡Olé! 😀")["input_ids"], skip_special_tokens=True)
        'El 1.º… ¡Olé! 😀'
    """
    from tokenizers import Tokenizer, decoders, pre_tokenizers, processors
    from tokenizers.models import Unigram
    from tokenizers.trainers import UnigramTrainer

    if extra_ids < 0:
        raise EsZooError(f"extra_ids must be >= 0, got {extra_ids}")
    normalizer = _unigram_normalizer()
    alphabet = sorted({normalizer.normalize_str(c) for c in SPANISH_ALPHABET + "\n" + _METASPACE} - {""})
    fixed = len(T5_SPECIAL_TOKENS) + 256 + extra_ids

    def too_small(chars: int, where: str) -> EsZooError:
        return EsZooError(
            f"vocab_size={vocab_size} is too small: the {len(T5_SPECIAL_TOKENS)} special tokens, the 256 "
            f"byte pieces, the {extra_ids} sentinels and the {chars} characters {where} already need "
            f"{fixed + chars} entries; raise vocab_size"
        )

    if vocab_size <= fixed + len(alphabet):
        raise too_small(len(alphabet), "of the alphabet")

    # 1. The words of the text and their counts, exactly as the final pipeline cuts them.
    seen = {"texts": 0, "chars": 0}
    counts: collections.Counter[str] = collections.Counter()
    for text in _checked(texts, seen):
        counts.update(_metaspace_words(normalizer.normalize_str(text)))
    if seen["chars"] == 0:
        raise _no_text(seen)
    chars = set(alphabet).union("".join(counts))
    if vocab_size <= fixed + len(chars):
        raise too_small(len(chars), "of the alphabet and the training text")

    # 2. The trainer picks the pieces (it always keeps every character).
    reserved = set(T5_SPECIAL_TOKENS) | {f"<0x{b:02X}>" for b in range(256)}
    reserved |= {f"<extra_id_{k}>" for k in range(extra_ids)}
    trainer_backend = Tokenizer(Unigram())
    trainer_backend.pre_tokenizer = pre_tokenizers.Split(" ", behavior="removed")
    trainer = UnigramTrainer(
        vocab_size=vocab_size - 256 - extra_ids,
        show_progress=False,
        special_tokens=list(T5_SPECIAL_TOKENS),
        unk_token=T5_SPECIAL_TOKENS[2],
        initial_alphabet=alphabet,
    )
    trainer_backend.train_from_iterator(_unigram_trainer_input(counts), trainer=trainer)
    trained = json.loads(trainer_backend.to_str())["model"]["vocab"]
    pieces = [(piece, score) for piece, score in trained if piece not in reserved]

    # 3. Scores from integer counts, ids in count order: the same on every run.
    usage = _viterbi_counts(pieces, counts)
    log_total = math.log(sum(usage))
    ranked = sorted(zip(usage, (piece for piece, _ in pieces)), key=lambda x: (-x[0], x[1]))
    learned = [(piece, math.log(n if n else 0.5) - log_total) for n, piece in ranked]
    # Special tokens, byte pieces and sentinels are in the vocabulary but must never be matched in
    # text (SentencePiece keeps them out of its lattice): "<0x41>" in a text is "<", "0", "x"...,
    # not "A". Their score is far below any path of ordinary pieces that could spell them.
    unreachable = min(score for _, score in learned) - 1000.0
    vocab = (
        [(token, unreachable) for token in T5_SPECIAL_TOKENS]
        + [(f"<0x{b:02X}>", unreachable) for b in range(256)]
        + learned
        + [(f"<extra_id_{k}>", unreachable) for k in range(extra_ids - 1, -1, -1)]
    )

    backend = Tokenizer(Unigram(vocab, unk_id=T5_SPECIAL_TOKENS.index("<unk>"), byte_fallback=True))
    backend.normalizer = normalizer
    backend.pre_tokenizer = _metaspace_pre_tokenizer()
    backend.decoder = decoders.Sequence(
        [
            decoders.ByteFallback(),
            decoders.Metaspace(replacement=_METASPACE, prepend_scheme="first", split=True),
        ]
    )
    eos = T5_SPECIAL_TOKENS[1]
    backend.post_processor = processors.TemplateProcessing(
        single=f"$A:0 {eos}:0", pair=f"$A:0 {eos}:0 $B:1 {eos}:1", special_tokens=[(eos, 1)]
    )
    return _wrap_t5(backend, extra_ids, model_max_length=model_max_length)


def _capped(texts: Iterable[str], max_chars: int | None) -> Iterator[str]:
    total = 0
    for text in texts:
        if max_chars is not None and total >= max_chars:
            return
        total += len(text) if isinstance(text, str) else 0
        yield text


def _checked_config(cfg: Any) -> "TokenizerConfig":
    """``cfg`` as a checked :class:`es_zoo.recipes.TokenizerConfig` (one validation for recipes and direct
    callers): its fields are read from any object that has them; a wrong value is an EsZooError."""
    import dataclasses

    from es_zoo.recipes import TokenizerConfig

    if isinstance(cfg, TokenizerConfig):
        return cfg
    kind = getattr(cfg, "kind", "wordpiece")
    if kind not in TOKENIZER_KINDS:
        raise EsZooError(f"tokenizer kind {kind!r} is not one of {', '.join(map(repr, TOKENIZER_KINDS))}")
    fields = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(TokenizerConfig) if hasattr(cfg, f.name)}
    try:
        return TokenizerConfig(**fields)
    except (TypeError, ValueError) as exc:
        raise EsZooError(f"tokenizer: {exc}") from None


def build_tokenizer(
    cfg: "TokenizerConfig",
    texts: Callable[[], Iterable[str]],
    output_dir: str | Path,
    model_max_length: int = 512,
) -> "PreTrainedTokenizerFast":
    """Make the tokenizer a recipe asks for and save it into ``output_dir``.

    ``cfg.kind`` picks it: ``"wordpiece"`` (BETO, :func:`train_wordpiece`, or the published
    vocabulary of ``cfg.vocab_file``, in which case ``texts`` is never called),
    ``"byte_level_bpe"`` (BARTO, :func:`train_byte_level_bpe`) or ``"sentencepiece_unigram"`` (T5S,
    :func:`train_sentencepiece_unigram`, with ``cfg.extra_ids`` sentinels). Trained vocabularies
    read ``texts()`` up to ``cfg.max_training_chars`` characters (``es-zoo prepare`` passes its hash
    sample, already within that budget; this cap only protects direct callers). ``vocab_file``, ``lowercase``
    and ``strip_accents`` apply to WordPiece only and ``extra_ids`` to unigram only (an
    :class:`EsZooError` says so otherwise); the unigram trainer has no use for ``min_frequency``.
    ``output_dir`` then holds ``tokenizer.json`` and
    ``tokenizer_config.json`` (and, for WordPiece, a BERT-style ``vocab.txt``), and
    ``transformers.AutoTokenizer.from_pretrained(output_dir)`` loads the same tokenizer.

    Example:
        >>> from es_zoo.recipes import TokenizerConfig
        >>> cfg = TokenizerConfig(vocab_size=300, min_frequency=1)
        >>> texts = lambda: ["Érase una vez un niño."] * 20
        >>> tok = build_tokenizer(cfg, texts, "/tmp/tok")  # doctest: +SKIP
        >>> from transformers import AutoTokenizer  # doctest: +SKIP
        >>> AutoTokenizer.from_pretrained("/tmp/tok").tokenize("niño")  # doctest: +SKIP
        ['niño']
    """
    cfg = _checked_config(cfg)  # the recipe schema's own checks, for callers that bring another object
    kind, vocab_file, max_chars = cfg.kind, cfg.vocab_file, cfg.max_training_chars
    lowercase, strip_accents, extra_ids = cfg.lowercase, cfg.strip_accents, cfg.extra_ids

    if kind == "wordpiece" and vocab_file is not None:
        tokenizer = wordpiece_from_vocab(
            vocab_file, lowercase=lowercase, strip_accents=strip_accents, model_max_length=model_max_length
        )
    elif kind == "wordpiece":
        tokenizer = train_wordpiece(
            _capped(texts(), max_chars),
            vocab_size=cfg.vocab_size,
            lowercase=lowercase,
            strip_accents=strip_accents,
            min_frequency=cfg.min_frequency,
            model_max_length=model_max_length,
        )
    elif kind == "byte_level_bpe":
        tokenizer = train_byte_level_bpe(
            _capped(texts(), max_chars),
            vocab_size=cfg.vocab_size,
            min_frequency=cfg.min_frequency,
            model_max_length=model_max_length,
        )
    else:
        tokenizer = train_sentencepiece_unigram(
            _capped(texts(), max_chars),
            vocab_size=cfg.vocab_size,
            extra_ids=extra_ids,
            model_max_length=model_max_length,
        )
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(str(out))
    if kind == "wordpiece":
        # BETO was published as vocab.txt; writing it too lets a trained vocabulary be read, diffed
        # against the published one, and loaded by tools that only know the BERT format.
        vocab = tokenizer.backend_tokenizer.get_vocab(with_added_tokens=False)
        (out / "vocab.txt").write_text(
            "".join(t + "\n" for t in sorted(vocab, key=vocab.__getitem__)), encoding="utf-8"
        )
    return tokenizer


# --------------------------------------------------------------------------------------------------
# What the objectives and the data pipeline need
# --------------------------------------------------------------------------------------------------


def wordpiece_tables(tokenizer) -> tuple[np.ndarray, np.ndarray]:
    """Per-id lookup tables for the masking objective: ``(is_special, is_continuation)``.

    Both are bool arrays of length ``len(tokenizer)``. ``is_special`` marks every special or added
    token, BETO's ``[EOS]`` and the ``[unused*]`` placeholders (ids with no token are marked too, so
    nothing ever samples them); ``is_continuation`` marks ``##`` pieces, which continue a word.

    Example:
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


# --------------------------------------------------------------------------------------------------
# Sentences
# --------------------------------------------------------------------------------------------------

# Abbreviations after which a "." does not end a sentence, lower-cased. Single letters (initials such
# as "J. R. R. Tolkien", "a. C.", "p. ej.") and doubled capitals (plurals such as "EE. UU.", "RR. HH.",
# "FF. AA.") are recognised without a list. "etc." is not here: followed by a capital, it ends one.
_ABBREVIATIONS = frozenset(
    """
    sr sra sres sras srs srta srtas d dña dn dr dra drs dras ud uds vd vds lic licda ing arq prof profa
    mr mrs ms mme mlle st sto sta excmo excma ilmo ilma rvdo rvda mons fr gral cnel tte sgto cap
    pág págs p pp núm núms nro art arts cap caps vol vols fig figs ed eds col cols fol fols tel tfno
    ej aprox av avda pza ctra cía hnos dpto depto admón apdo cód cf cfr op cit ib ibíd íd sig sigs ss
    """.split()
)
# A stop ("." "!" "?" "…", repeated or mixed: "...", "?!"), closing quotes or brackets, whitespace.
_SENTENCE_END = re.compile(r"([.!?…]+)([»”’\"')\]}]*)(\s+)")
_PARAGRAPH = re.compile(r"\n\s*")
_LETTERS_BEFORE = re.compile(r"[^\W\d_]+\Z")
_OPENERS = "¿¡«“\"([{"
_DASHES = "—–"


def _is_abbreviation(text: str, dot: int) -> bool:
    """Whether the "." at ``dot`` closes an abbreviation ("Sr.", "pág.", "EE.", "J.")."""
    match = _LETTERS_BEFORE.search(text, max(0, dot - 12), dot)
    if match is None:
        return False  # "1999.", "»." ...
    word = match.group()
    if len(word) == 1 or (len(word) == 2 and word.isupper() and word[0] == word[1]):
        return True
    return word.lower() in _ABBREVIATIONS


def _opens_sentence(text: str, pos: int) -> bool:
    char = text[pos]
    if char.isupper() or char.isdigit() or char in _OPENERS:
        return True
    if char in _DASHES:
        # Dialogue: "—¿Vienes? —preguntó." The narrator's words after a dash in lower case
        # continue the sentence; "—¿Vienes? —Sí." starts a new one.
        rest = text[pos:].lstrip(_DASHES + " ")
        return not rest[:1].islower()
    return False


def sentence_starts(text: str) -> list[int]:
    """Character offsets where the sentences of ``text`` begin, ascending; 0 always.

    A rule-based splitter for Spanish. A new sentence begins after a line break (the first
    non-blank character of the next line) and after ".", "!", "?" or "…" (repeated or mixed, and
    followed by any closing quotes or brackets, "»" ")" "”"...) followed by whitespace and then a
    capital letter, a digit, "¿", "¡", "«", "“", '"', an opening bracket, or a dialogue dash "—"
    that is not followed by lower case ("—¿Vienes? —preguntó." is one sentence). A "." does not end
    a sentence after an abbreviation: "Sr.", "Sra.", "Srta.", "D.", "Dña.", "Dr.", "Ud.", "Uds.",
    "pág.", "núm.", "art.", "cap.", "vol.", "p. ej." and others, doubled capitals ("EE. UU.") and
    single letters (initials, "J. R. R. Tolkien"). Numbers such as "3.5", "1.º" and "1.000.000" do
    not end sentences (no space follows the "."), but "en 1999. Después" does.

    Example:
        >>> text = "—¿Vienes? —preguntó el Sr. Pérez. —Sí. Llego el 1.º de mayo."
        >>> [text[i:i + 6] for i in sentence_starts(text)]
        ['—¿Vien', '—Sí. L', 'Llego ']
    """
    starts = {0}
    size = len(text)
    for match in _PARAGRAPH.finditer(text):
        if match.end() < size:
            starts.add(match.end())
    for match in _SENTENCE_END.finditer(text):
        pos = match.end()
        if pos >= size or "\n" in match.group(3) or not _opens_sentence(text, pos):
            continue
        if match.group(1) == "." and not match.group(2) and _is_abbreviation(text, match.start(1)):
            continue
        starts.add(pos)
    return sorted(starts)


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
    as ``ids``, True where a token begins a sentence of :func:`sentence_starts` (the first token at
    or after the sentence's first character, from the tokenizer's character offsets; the first
    token is always True). This works for WordPiece, byte-level BPE and SentencePiece alike.

    Example:
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
