"""What every tokenizer of the zoo shares: the kinds, the special tokens, the alphabet, input checks."""

from __future__ import annotations

import re
import string
from collections.abc import Iterable, Iterator

from es_zoo.errors import CorpusError

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

_METASPACE = "\u2581"  # "▁", SentencePiece's mark for a space
_BYTE_PIECE = re.compile(r"^<0x([0-9A-F]{2})>$")  # SentencePiece byte-fallback pieces
_SENTINEL = re.compile(r"^<extra_id_(0|[1-9][0-9]*)>$")  # T5's sentinels
_WHITESPACE_BYTES = b" \t\n\r\x0b\x0c"


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
