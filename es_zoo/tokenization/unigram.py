"""T5S's tokenizer: T5's SentencePiece unigram, NFC only, byte fallback, reproducible scores and ids."""

from __future__ import annotations

import collections
import itertools
import json
import math
import re
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

import numpy as np

from es_zoo.errors import EsZooError
from es_zoo.tokenization.common import (
    _METASPACE,
    SPANISH_ALPHABET,
    T5_SPECIAL_TOKENS,
    _checked,
    _no_text,
)

if TYPE_CHECKING:  # pragma: no cover
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

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
