"""BETO's BERT pipeline (normalizer, pre-tokenizer, template, decoder) and its transformers wrapper."""

from __future__ import annotations

from typing import TYPE_CHECKING

from es_zoo.errors import EsZooError
from es_zoo.tokenization.common import _CONTINUATION

if TYPE_CHECKING:  # pragma: no cover
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

# BERT's WordPiece gives [UNK] for a whole word longer than this; the published tokenizers use 100.
_MAX_INPUT_CHARS_PER_WORD = 100


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
