"""Batched text generation for every encoder-decoder family es-zoo builds (BART, T5, BERT2BERT).

transformers 5 removed the ``summarization``, ``text2text-generation`` and ``translation`` pipelines;
these helpers take their place for the seq2seq suite, the demos and any user script:

- inputs are tokenized once, **sorted by length** and cut into batches, so a batch pads to similar
  lengths (the order of the outputs is the order of the inputs);
- beam search, length penalty and the maximum output length are arguments (the task definitions hold
  each task's values);
- an input longer than the limit is an error unless truncation is asked for, and truncations are
  counted (:class:`Encoded`);
- a model without a decoder start token is refused with a clear message instead of generating garbage.

Example:
    >>> from es_zoo.generation import load_generator, generate
    >>> model, tok = load_generator("runs/t5s-tiny")  # doctest: +SKIP
    >>> generate(model, tok, ["El perro come.", "¿Dónde está la biblioteca?"], num_beams=4)  # doctest: +SKIP
    ['...', '...']
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch

from es_zoo.errors import EsZooError
from es_zoo.loading import load_model, load_tokenizer
from es_zoo.modeling import share_encoder_decoder_weights

FAMILIES = {"bart": "bart", "mbart": "bart", "t5": "t5", "mt5": "t5", "umt5": "t5", "encoder-decoder": "bert2bert"}


class GenerationError(EsZooError):
    """A model or input that cannot be used for generation."""


def family(model_or_config: Any) -> str:
    """``bart``, ``t5`` or ``bert2bert`` for an encoder-decoder model (or its config); an error otherwise."""
    config = getattr(model_or_config, "config", model_or_config)
    kind = getattr(config, "model_type", None)
    if kind not in FAMILIES:
        raise GenerationError(f"a {kind or type(model_or_config).__name__} model is not an encoder-decoder; the "
                              "seq2seq tasks need a BART, T5 or BERT2BERT (EncoderDecoderModel) checkpoint, e.g. the "
                              "run folder of `es-zoo reproduce t5s`")
    return FAMILIES[kind]


def decoder_start_id(model: Any) -> int:
    """The token the decoder starts from (``</s>`` for BART, ``<pad>`` for T5, ``[CLS]`` for BERT2BERT)."""
    for cfg in (getattr(model, "generation_config", None), model.config, getattr(model.config, "decoder", None)):
        value = getattr(cfg, "decoder_start_token_id", None) if cfg is not None else None
        if value is not None:
            return int(value)
    raise GenerationError(f"{type(model).__name__} has no decoder_start_token_id (in config.json or "
                          "generation_config.json); set it to the token the decoder was trained to start from "
                          "([CLS] for a BERT2BERT, </s> for BART, <pad> for T5) before fine-tuning or generating")


def source_limit(model: Any) -> int | None:
    """The longest input the encoder can read (position embeddings); None for T5 (relative positions)."""
    cfg = model.config
    enc = getattr(cfg, "encoder", None) if getattr(cfg, "model_type", "") == "encoder-decoder" else cfg
    if getattr(enc, "model_type", "") in ("t5", "mt5", "umt5"):
        return None
    return getattr(enc, "max_position_embeddings", None)


@dataclass
class Encoded:
    """Token ids of a list of texts, and how many had to be cut to the limit."""

    ids: list[list[int]]
    truncated: int = 0
    limit: int | None = None


def encode(tokenizer: Any, texts: Sequence[str], max_length: int | None = None, truncate: bool = False,
           what: str = "input", ids: Sequence[str] | None = None, side: str = "right") -> Encoded:
    """Tokenize ``texts`` with the model's special tokens. Longer than ``max_length`` is an error naming
    the first such text, unless ``truncate``: then the text is cut on ``side`` (``left`` drops its
    beginning, e.g. the oldest turns of a dialogue), its special start and end tokens kept, and
    counted."""
    if not texts:
        return Encoded([], 0, max_length)
    for i, t in enumerate(texts):
        if not isinstance(t, str) or not t.strip():
            where = f" ({ids[i]})" if ids is not None else ""
            raise GenerationError(f"{what} {i}{where} is empty; every {what} needs text")
    rows = tokenizer(list(texts), add_special_tokens=True, verbose=False)["input_ids"]  # lengths are checked here
    truncated = 0
    special = set(tokenizer.all_special_ids)
    if max_length is not None:
        for i, r in enumerate(rows):
            if len(r) <= max_length:
                continue
            if not truncate:
                where = f" ({ids[i]})" if ids is not None else ""
                raise GenerationError(
                    f"{what} {i}{where} is {len(r)} tokens, longer than the limit of {max_length}; nothing is cut "
                    f"silently: raise max_length if the model allows it, or switch truncation on for this task "
                    f"(truncate_source / truncate_target in its definition or --set)")
            head = r[:1] if r[0] in special else []
            tail = r[-1:] if r[-1] in special else []
            body = r[len(head): len(r) - len(tail)]
            keep = max_length - len(head) - len(tail)
            rows[i] = head + (body[len(body) - keep:] if side == "left" else body[:keep]) + tail
            truncated += 1
    return Encoded([list(r) for r in rows], truncated, max_length)


def pad(rows: Sequence[Sequence[int]], value: int) -> torch.Tensor:
    width = max(len(r) for r in rows)
    out = torch.full((len(rows), width), value, dtype=torch.long)
    for i, r in enumerate(rows):
        out[i, : len(r)] = torch.as_tensor(list(r), dtype=torch.long)
    return out


@torch.no_grad()
def generate_ids(model: Any, rows: Sequence[Sequence[int]], pad_id: int, *, batch_size: int = 32,
                 num_beams: int = 4, max_new_tokens: int = 128, length_penalty: float = 1.0,
                 device: Any = None, progress: Callable[[int], None] | None = None, **kwargs: Any) -> list[list[int]]:
    """Output ids for each input row: batches of ``batch_size`` inputs sorted by length (longest first,
    so the first batch shows at once whether memory suffices), beam search, outputs in input order."""
    start = decoder_start_id(model)
    device = device or next(model.parameters()).device
    # One process generates with a whole model (after training: the main process, with the plain model
    # the loop hands back). transformers would otherwise sync every decoding step with the other
    # processes whenever DeepSpeed ZeRO-3 is configured, and wait forever for them.
    kwargs.setdefault("synced_gpus", False)
    was_training = model.training
    model.eval()
    order = sorted(range(len(rows)), key=lambda i: -len(rows[i]))
    out: list[list[int]] = [[] for _ in rows]
    for lo in range(0, len(order), batch_size):
        idx = order[lo: lo + batch_size]
        ids = pad([rows[i] for i in idx], pad_id).to(device)
        mask = pad([[1] * len(rows[i]) for i in idx], 0).to(device)
        gen = model.generate(input_ids=ids, attention_mask=mask, num_beams=num_beams, max_new_tokens=max_new_tokens,
                             length_penalty=length_penalty, early_stopping=num_beams > 1,
                             decoder_start_token_id=start, pad_token_id=pad_id, do_sample=False, **kwargs)
        for k, i in enumerate(idx):
            out[i] = gen[k].tolist()
        if progress is not None:
            progress(len(idx))
    if was_training:
        model.train()
    return out


def generate(model: Any, tokenizer: Any, texts: Sequence[str], *, batch_size: int = 32, num_beams: int = 4,
             max_new_tokens: int = 128, length_penalty: float = 1.0, max_length: int | None = None,
             truncate: bool = False, device: Any = None, **kwargs: Any) -> list[str]:
    """Generated text for each input text (batched, sorted by length, beam search).

    ``max_length`` bounds the input in tokens (default: the encoder's position limit; none for T5);
    a longer input is an error unless ``truncate``.
    """
    limit = max_length or source_limit(model)
    enc = encode(tokenizer, texts, limit, truncate)
    outputs = generate_ids(model, enc.ids, tokenizer.pad_token_id, batch_size=batch_size, num_beams=num_beams,
                           max_new_tokens=max_new_tokens, length_penalty=length_penalty, device=device, **kwargs)
    return decode(tokenizer, outputs)


def decode(tokenizer: Any, outputs: Sequence[Sequence[int]]) -> list[str]:
    """Output ids to text, special tokens (start, end, padding, sentinels) removed."""
    return [t.strip() for t in tokenizer.batch_decode(list(outputs), skip_special_tokens=True)]


def load_generator(name_or_path: str, revision: str | None = None, device: Any = None) -> tuple[Any, Any]:
    """``(model, tokenizer)`` of an encoder-decoder from a run folder, a model folder, a catalogue name
    or a Hub id, ready for :func:`generate` (BETOShare's shared weights tied again)."""
    model = ready_for_generation(load_model(name_or_path, task="seq2seq", revision=revision))
    if device is not None:
        model.to(device)
    return model, load_tokenizer(name_or_path, revision=revision)


def ready_for_generation(model: Any) -> Any:
    """The checks every loaded encoder-decoder goes through: an encoder-decoder family, a decoder start
    token, and BETOShare's shared weights tied again (``config.es_zoo_share_weights``: saved as two
    equal copies, one tensor again so fine-tuning keeps them one)."""
    family(model)
    decoder_start_id(model)
    if getattr(model.config, "es_zoo_share_weights", False):
        share_encoder_decoder_weights(model)
    return model
