"""The tokenizer a recipe asks for (``tokenizer.kind``), made and saved: :func:`build_tokenizer`."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from es_zoo.errors import EsZooError
from es_zoo.tokenization.byte_level_bpe import train_byte_level_bpe
from es_zoo.tokenization.common import TOKENIZER_KINDS
from es_zoo.tokenization.unigram import train_sentencepiece_unigram
from es_zoo.tokenization.wordpiece_training import train_wordpiece
from es_zoo.tokenization.wordpiece_vocab import wordpiece_from_vocab

if TYPE_CHECKING:  # pragma: no cover
    from transformers import PreTrainedTokenizerFast

    from es_zoo.recipes import TokenizerConfig


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

    from es_zoo.recipes import TokenizerConfig  # lazy: the tokenization package loads without recipes and YAML

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
