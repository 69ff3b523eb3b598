"""BARTO's tokenizer: BART's byte-level BPE (every byte has a token; decoding gives the text back)."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable
from typing import TYPE_CHECKING

from es_zoo.errors import EsZooError
from es_zoo.tokenization.common import BART_MASK_TOKEN, BART_SPECIAL_TOKENS, _checked, _no_text

if TYPE_CHECKING:  # pragma: no cover
    from transformers import PreTrainedTokenizerFast


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
