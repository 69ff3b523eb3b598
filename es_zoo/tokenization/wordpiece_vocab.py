"""BETO's WordPiece from a published ``vocab.txt`` (ids exactly as published)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from es_zoo.errors import EsZooError
from es_zoo.tokenization.bert import _wrap

if TYPE_CHECKING:  # pragma: no cover
    from transformers import PreTrainedTokenizerFast


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
