"""Tokenizers for the zoo: BETO's WordPiece (BARTO's byte-level BPE and T5S's SentencePiece come later).

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

Like the published fast tokenizer, the normalizer does not apply Unicode NFC: decomposed text
("o" + U+0301) is not "ó" here and gives [UNK]. Text should be NFC before it reaches a tokenizer
(the slow Python BertTokenizer of transformers applies NFC itself; the Rust one does not, and
adding it here would be lost on ``AutoTokenizer`` reload, which rebuilds BERT's normalizer).

Example:
    >>> from es_zoo.tokenization import wordpiece_from_vocab, tokenize_documents
    >>> tok = wordpiece_from_vocab("beto/cased_2M/vocab.txt", lowercase=False)  # doctest: +SKIP
    >>> tok.convert_ids_to_tokens([0, 1, 2, 3, 4, 5])  # doctest: +SKIP
    ['[MASK]', '[PAD]', '[EOS]', '[UNK]', '[CLS]', '[SEP]']
    >>> [ids] = tokenize_documents(tok, ["¿Dónde está el niño?"])  # doctest: +SKIP
"""

from __future__ import annotations

import functools
import itertools
import re
import string
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from es_zoo.errors import CorpusError, EsZooError

if TYPE_CHECKING:  # pragma: no cover
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    from es_zoo.recipes import TokenizerConfig

__all__ = [
    "BETO_SPECIAL_TOKENS",
    "SPANISH_ALPHABET",
    "build_tokenizer",
    "tokenize_documents",
    "train_wordpiece",
    "wordpiece_from_vocab",
    "wordpiece_tables",
]

BETO_SPECIAL_TOKENS = ("[MASK]", "[PAD]", "[EOS]", "[UNK]", "[CLS]", "[SEP]")
"""BETO's special tokens in id order (0..5), as in the published ``vocab.txt``."""

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
    # transformers 5 maps model_type "bert" to BertTokenizer (the tokenizers-backed class; the old
    # BertTokenizerFast is an alias). On reload it rebuilds the normalizer from do_lower_case /
    # strip_accents / tokenize_chinese_chars in tokenizer_config.json, so those must be passed here.
    from transformers import BertTokenizer

    if model_max_length < 1:
        raise EsZooError(f"model_max_length must be >= 1, got {model_max_length}")
    return BertTokenizer(
        tokenizer_object=_bert_backend(vocab, lowercase=lowercase, strip_accents=strip_accents),
        do_lower_case=lowercase,
        strip_accents=strip_accents,
        tokenize_chinese_chars=True,
        unk_token="[UNK]",
        sep_token="[SEP]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        mask_token="[MASK]",
        model_max_length=model_max_length,
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


def _capped(texts: Iterable[str], max_chars: int | None) -> Iterator[str]:
    total = 0
    for text in texts:
        if max_chars is not None and total >= max_chars:
            return
        total += len(text) if isinstance(text, str) else 0
        yield text


def build_tokenizer(
    cfg: "TokenizerConfig",
    texts: Callable[[], Iterable[str]],
    output_dir: str | Path,
    model_max_length: int = 512,
) -> "PreTrainedTokenizerFast":
    """Make the tokenizer a recipe asks for and save it into ``output_dir``.

    With ``cfg.vocab_file`` the published vocabulary is loaded (``texts`` is never called);
    otherwise a vocabulary is trained on ``texts()``, read up to ``cfg.max_training_chars``
    characters. ``output_dir`` then holds ``tokenizer.json``, ``tokenizer_config.json`` and a
    BERT-style ``vocab.txt``, and ``transformers.AutoTokenizer.from_pretrained(output_dir)`` loads
    the same tokenizer.

    Example:
        >>> from es_zoo.recipes import TokenizerConfig
        >>> cfg = TokenizerConfig(vocab_size=300, min_frequency=1)
        >>> texts = lambda: ["Érase una vez un niño."] * 20
        >>> tok = build_tokenizer(cfg, texts, "/tmp/tok")  # doctest: +SKIP
        >>> from transformers import AutoTokenizer  # doctest: +SKIP
        >>> AutoTokenizer.from_pretrained("/tmp/tok").tokenize("niño")  # doctest: +SKIP
        ['niño']
    """
    if cfg.kind != "wordpiece":
        raise EsZooError(f"tokenizer kind {cfg.kind!r} is not supported yet (only 'wordpiece')")
    if cfg.vocab_file is not None:
        tokenizer = wordpiece_from_vocab(
            cfg.vocab_file,
            lowercase=cfg.lowercase,
            strip_accents=cfg.strip_accents,
            model_max_length=model_max_length,
        )
    else:
        tokenizer = train_wordpiece(
            _capped(texts(), cfg.max_training_chars),
            vocab_size=cfg.vocab_size,
            lowercase=cfg.lowercase,
            strip_accents=cfg.strip_accents,
            min_frequency=cfg.min_frequency,
            model_max_length=model_max_length,
        )
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(str(out))
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


def tokenize_documents(
    tokenizer, documents: Iterable[str], batch_size: int = 1000
) -> Iterator[np.ndarray]:
    """Token ids of each document, without special tokens and never truncated.

    Encodes ``batch_size`` documents at a time with the Rust tokenizer (parallel over cores) and
    yields one ``int32`` array per document, in order (an empty document gives an empty array).
    Documents longer than ``model_max_length`` are returned whole and silently: packing them into
    training sequences is the caller's job.

    Example:
        >>> tok = train_wordpiece(["la casa es blanca"] * 20, vocab_size=300)
        >>> [a, b] = tokenize_documents(tok, ["la casa", ""])
        >>> a.dtype, len(a), len(b)
        (dtype('int32'), 2, 0)
    """
    if batch_size < 1:
        raise EsZooError(f"batch_size must be >= 1, got {batch_size}")
    backend = getattr(tokenizer, "backend_tokenizer", tokenizer)  # a bare tokenizers.Tokenizer works too
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
        for encoding in backend.encode_batch(batch, add_special_tokens=False):
            yield np.asarray(encoding.ids, dtype=np.int32)
