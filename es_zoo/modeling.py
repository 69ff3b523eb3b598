"""Build or warm-start transformers models from a recipe, and the pretraining losses that run on them.

The models are plain transformers classes (``BertForMaskedLM``), so a saved run loads with
``AutoModelForMaskedLM.from_pretrained``. What differs from ``model(**batch)`` is the loss: the MLM
head runs only at the masked positions (about 15% of the tokens) instead of projecting every position
onto the whole vocabulary, which is most of the work of a naive step.

Example:
    >>> from es_zoo.recipes import load_recipe
    >>> cfg = load_recipe("beto", preset="tiny")
    >>> model = build_bert_mlm(cfg.model, vocab_size=8000, pad_token_id=1)  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from es_zoo.errors import EsZooError
from es_zoo.flops import bert_mlm_flops, encoder_decoder_flops

if TYPE_CHECKING:  # pragma: no cover
    from transformers import BertForMaskedLM

    from es_zoo.families.bart import BartModelConfig
    from es_zoo.families.bert import BertModelConfig
    from es_zoo.families.t5 import T5ModelConfig


def build_bert_mlm(cfg: "BertModelConfig", *, vocab_size: int, pad_token_id: int) -> "BertForMaskedLM":
    """A freshly initialised ``BertForMaskedLM`` with the recipe's numbers and attention kernel (weights tied
    as in BERT)."""
    from transformers import BertConfig, BertForMaskedLM

    config = BertConfig(vocab_size=vocab_size, pad_token_id=pad_token_id,
                        attn_implementation=cfg.attn_implementation, **_fields(cfg))
    config.architectures = ["BertForMaskedLM"]
    return BertForMaskedLM(config)


class SparseMLM(torch.nn.Module):
    """Wraps a masked LM (``BertForMaskedLM``, ``RobertaForMaskedLM``) so its MLM head runs at the masked
    positions only. ``head`` names the model's head attribute (the family's: ``cls`` for BERT, ``lm_head``
    for RoBERTa); the encoder is the model's base model (``model.bert``, ``model.roberta``).

    ``forward(input_ids, flat_positions, labels)`` returns the *summed* cross-entropy and the number
    of correct predictions. ``flat_positions`` index rows of the flattened ``(batch * length, hidden)``
    encoder output; ``labels`` holds the original ids there. The sum (not the mean) lets the loop
    normalise by the masked tokens of the whole global batch, so gradient accumulation and data
    parallelism give the gradient of one big batch. It is a module (not a function) so that
    DistributedDataParallel sees the forward pass and synchronises the gradients.
    """

    def __init__(self, model: "BertForMaskedLM", head: str = "cls") -> None:
        super().__init__()
        self.model = model
        self.head = head

    def forward(
        self, input_ids: torch.Tensor, flat_positions: torch.Tensor, labels: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        encoder = getattr(self.model, self.model.base_model_prefix)
        hidden = encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        picked = hidden.reshape(-1, hidden.shape[-1]).index_select(0, flat_positions)
        logits = getattr(self.model, self.head)(picked).float()
        loss_sum = F.cross_entropy(logits, labels, reduction="sum")
        correct = (logits.argmax(-1) == labels).sum()
        return loss_sum, correct

    def flops(self, *, rows: object, input_tokens: object, target_tokens: object) -> object:
        """Training FLOPs of a step (``es_zoo.flops.bert_mlm_flops``; ``target_tokens`` = masked tokens)."""
        return bert_mlm_flops(self.model.config, rows=rows, input_tokens=input_tokens, masked_tokens=target_tokens)


def count_parameters(model: "torch.nn.Module") -> int:
    """Unique parameters (tied weights counted once)."""
    return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())


# --------------------------------------------------------------------------------------------------
# Encoder-decoders: BART, T5, BERT2BERT
# --------------------------------------------------------------------------------------------------


def _fields(cfg: object) -> dict:
    """The recipe's model numbers as transformers config keywords (the attention kernel is passed apart)."""
    return {k: v for k, v in dataclasses.asdict(cfg).items() if k not in ("architecture", "attn_implementation")}


def build_bart(cfg: "BartModelConfig", *, vocab_size: int, pad_token_id: int, bos_token_id: int,
               eos_token_id: int) -> "torch.nn.Module":
    """A freshly initialised ``BartForConditionalGeneration`` with BART's token conventions.

    The decoder starts from ``</s>`` and must first produce ``<s>`` (fairseq's ``prev_output_tokens``),
    which ``forced_bos_token_id`` enforces in ``generate``.
    """
    from transformers import BartConfig, BartForConditionalGeneration, GenerationConfig

    config = BartConfig(
        vocab_size=vocab_size, pad_token_id=pad_token_id, bos_token_id=bos_token_id,
        eos_token_id=eos_token_id, decoder_start_token_id=eos_token_id, forced_bos_token_id=bos_token_id,
        forced_eos_token_id=eos_token_id, is_encoder_decoder=True, attn_implementation=cfg.attn_implementation,
        **_fields(cfg),
    )
    config.architectures = ["BartForConditionalGeneration"]
    model = BartForConditionalGeneration(config)
    model.generation_config = GenerationConfig(
        decoder_start_token_id=eos_token_id, bos_token_id=bos_token_id, eos_token_id=eos_token_id,
        pad_token_id=pad_token_id, forced_bos_token_id=bos_token_id, forced_eos_token_id=eos_token_id,
    )
    return model


def build_t5(cfg: "T5ModelConfig", *, vocab_size: int, pad_token_id: int, eos_token_id: int) -> "torch.nn.Module":
    """A freshly initialised ``T5ForConditionalGeneration`` (T5 v1.1 numbers from the recipe).

    As in T5, the decoder starts from ``<pad>`` and generation stops at ``</s>``.
    """
    from transformers import GenerationConfig, T5Config, T5ForConditionalGeneration

    config = T5Config(
        vocab_size=vocab_size, pad_token_id=pad_token_id, eos_token_id=eos_token_id,
        decoder_start_token_id=pad_token_id, is_encoder_decoder=True, attn_implementation=cfg.attn_implementation,
        **_fields(cfg),
    )
    config.architectures = ["T5ForConditionalGeneration"]
    model = T5ForConditionalGeneration(config)
    if not cfg.tie_word_embeddings:
        untie_t5_output_embeddings(model, cfg.initializer_factor)
    model.generation_config = GenerationConfig(
        decoder_start_token_id=pad_token_id, eos_token_id=eos_token_id, pad_token_id=pad_token_id,
    )
    return model


def untie_t5_output_embeddings(model: "torch.nn.Module", initializer_factor: float = 1.0) -> None:
    """Give a T5 its own output projection, as T5 v1.1 has.

    transformers 5's ``T5Config`` forces ``tie_word_embeddings=True`` and only keeps the flag's old
    meaning as ``scale_decoder_outputs``; the model would share ``lm_head`` with the input embeddings.
    Here ``lm_head`` becomes a separate parameter, initialised as T5 initialises an untied head
    (normal, std = initializer_factor), and is dropped from the tied-weights map, so both tensors are
    trained and saved. Loading such a folder (like loading google/t5-v1_1-*) keeps them apart; transformers
    then logs that "both are present in the checkpoints with different values, so we will NOT tie them".
    """
    shared = model.shared.weight
    head = torch.nn.Parameter(torch.empty_like(shared))
    torch.nn.init.normal_(head, mean=0.0, std=initializer_factor * 1.0)
    model.lm_head.weight = head
    tied = getattr(model, "all_tied_weights_keys", None)
    if isinstance(tied, dict):
        tied.pop("lm_head.weight", None)


def share_encoder_decoder_weights(model: "torch.nn.Module") -> int:
    """BERTShare (Rothe et al., 2020): the decoder uses the encoder's parameters wherever both have
    one of the same name and shape (embeddings, self-attention, feed-forward, layer norms); the
    decoder's cross-attention and LM head stay its own. Returns the number of tensors shared.

    transformers 5's ``EncoderDecoderModel`` no longer implements ``tie_encoder_decoder``, so es-zoo does
    it here.
    """
    decoder_body = model.decoder.base_model
    encoder_params = dict(model.encoder.named_parameters())
    shared = 0
    for name, param in list(decoder_body.named_parameters()):
        src = encoder_params.get(name)
        if src is None or src.shape != param.shape:
            continue
        path, _, attr = name.rpartition(".")
        setattr(decoder_body.get_submodule(path) if path else decoder_body, attr, src)
        shared += 1
    # The decoder's LM head was tied to its own word embeddings, which were just replaced.
    out, inp = model.decoder.get_output_embeddings(), model.decoder.get_input_embeddings()
    if out is not None and out.weight.shape == inp.weight.shape:
        out.weight = inp.weight
    return shared


def save_model(model: "torch.nn.Module", path: "str | Path") -> None:
    """``save_pretrained`` (safetensors). BETOShare's encoder and decoder share tensors, which safetensors
    refuses: such a model is saved as separate, equal copies that plain transformers loads, and
    ``config.es_zoo_share_weights`` records that they were one (es-zoo ties them again on loading)."""
    if getattr(model.config, "es_zoo_share_weights", False):
        model.save_pretrained(path, state_dict={k: v.detach().clone() for k, v in model.state_dict().items()})
    else:
        model.save_pretrained(path)


def check_is_bert(path: str) -> None:
    """Raise a clear error unless ``path`` is a transformers folder holding a BERT (e.g. BETO)."""
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(path)
    except (OSError, ValueError) as exc:
        raise EsZooError(f"{path}: not a transformers model folder ({exc})") from None
    if config.model_type != "bert":
        raise EsZooError(
            f"{path} holds a '{config.model_type}' model, not a BERT: bert2bert warm-starts from a BERT such "
            "as BETO (a catalogue name like beto-base-cased, a local BETO folder, or an `es-zoo reproduce beto` run)"
        )


def warm_start_bert2bert(encoder_dir: str, *, share_weights: bool, tokenizer: object) -> "torch.nn.Module":
    """An ``EncoderDecoderModel`` whose encoder and decoder both start from the BERT in ``encoder_dir``.

    ``share_weights`` ties the decoder to the encoder (BERTShare / BETOShare). The decoder gets a causal
    mask and new cross-attention layers (randomly initialised, seeded by the caller). Generation
    settings follow Rothe et al.: the decoder starts with ``[CLS]`` and stops at ``[SEP]``; they are in
    both ``config`` and ``generation_config`` so ``generate`` works after ``save_pretrained`` and reload.
    """
    from transformers import EncoderDecoderModel, GenerationConfig

    check_is_bert(encoder_dir)
    cls_id, sep_id, pad_id = tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id
    if None in (cls_id, sep_id, pad_id):
        raise EsZooError(f"the tokenizer of {encoder_dir} lacks [CLS], [SEP] or [PAD]")
    model = EncoderDecoderModel.from_encoder_decoder_pretrained(encoder_dir, encoder_dir)
    if share_weights:
        share_encoder_decoder_weights(model)
    model.config.es_zoo_share_weights = share_weights  # saved copies are separate; this says they were one
    for cfg in (model.config, model.config.decoder):
        cfg.decoder_start_token_id = cls_id
        cfg.bos_token_id = cls_id
        cfg.eos_token_id = sep_id
        cfg.pad_token_id = pad_id
    model.config.vocab_size = model.config.decoder.vocab_size
    model.generation_config = GenerationConfig(
        decoder_start_token_id=cls_id, bos_token_id=cls_id, eos_token_id=sep_id, pad_token_id=pad_id,
    )
    return model


class Seq2SeqLoss(torch.nn.Module):
    """Wraps an encoder-decoder so that ``forward`` returns the *summed* cross-entropy over the target
    tokens (labels ``!= -100``) and the number predicted right (teacher forcing).

    ``decoder_input_ids`` come from the batch (the labels shifted right behind the family's decoder
    start token), so one wrapper serves BART, T5 and BERT2BERT. Summing lets the loop normalise by the
    target tokens of the whole global batch, as for the masked LM.
    """

    def __init__(self, model: "torch.nn.Module") -> None:
        super().__init__()
        self.model = model

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, decoder_input_ids: torch.Tensor,
        labels: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.model(
            input_ids=input_ids, attention_mask=attention_mask, decoder_input_ids=decoder_input_ids,
        ).logits
        # No boolean indexing of the (batch, length, vocabulary) logits: copying them costs more
        # than the loss itself; -100 labels are skipped by the loss and never equal a prediction.
        flat = logits.reshape(-1, logits.shape[-1]).float()
        loss_sum = F.cross_entropy(flat, labels.reshape(-1), ignore_index=-100, reduction="sum")
        correct = (flat.detach().argmax(-1) == labels.reshape(-1)).sum()
        return loss_sum, correct

    def flops(self, *, rows: object, input_tokens: object, target_tokens: object) -> object:
        """Training FLOPs of a step (``es_zoo.flops.encoder_decoder_flops``)."""
        return encoder_decoder_flops(self.model.config, rows=rows, input_tokens=input_tokens,
                                     target_tokens=target_tokens)

    @torch.no_grad()
    def token_correct(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                      decoder_input_ids: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-position loss and correctness ``(B, T)`` (zero where labels are -100), for evaluation."""
        logits = self.model(
            input_ids=input_ids, attention_mask=attention_mask, decoder_input_ids=decoder_input_ids,
        ).logits.float()
        safe = labels.clamp(min=0)
        loss = F.cross_entropy(logits.transpose(1, 2), safe, reduction="none")
        valid = labels != -100
        return loss * valid, (logits.argmax(-1) == safe) & valid
