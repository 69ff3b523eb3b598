"""Build transformers models from a recipe, and the pretraining losses that run on them.

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

if TYPE_CHECKING:  # pragma: no cover
    from transformers import BertForMaskedLM

    from es_zoo.recipes import BertModelConfig


def build_bert_mlm(cfg: "BertModelConfig", *, vocab_size: int, pad_token_id: int) -> "BertForMaskedLM":
    """A freshly initialised ``BertForMaskedLM`` with the recipe's numbers (weights tied as in BERT)."""
    from transformers import BertConfig, BertForMaskedLM

    fields = {k: v for k, v in dataclasses.asdict(cfg).items() if k != "architecture"}
    config = BertConfig(vocab_size=vocab_size, pad_token_id=pad_token_id, **fields)
    config.architectures = ["BertForMaskedLM"]
    return BertForMaskedLM(config)


class SparseMLM(torch.nn.Module):
    """Wraps a ``BertForMaskedLM`` so the MLM head runs at the masked positions only.

    ``forward(input_ids, flat_positions, labels)`` returns the *summed* cross-entropy and the number
    of correct predictions. ``flat_positions`` index rows of the flattened ``(batch * length, hidden)``
    encoder output; ``labels`` holds the original ids there. The sum (not the mean) lets the loop
    normalise by the masked tokens of the whole global batch, so gradient accumulation and data
    parallelism give the gradient of one big batch. It is a module (not a function) so that
    DistributedDataParallel sees the forward pass and synchronises the gradients.
    """

    def __init__(self, model: "BertForMaskedLM") -> None:
        super().__init__()
        self.model = model

    def forward(
        self, input_ids: torch.Tensor, flat_positions: torch.Tensor, labels: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        hidden = self.model.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        picked = hidden.reshape(-1, hidden.shape[-1]).index_select(0, flat_positions)
        logits = self.model.cls(picked).float()
        loss_sum = F.cross_entropy(logits, labels, reduction="sum")
        correct = (logits.argmax(-1) == labels).sum()
        return loss_sum, correct


def count_parameters(model: "torch.nn.Module") -> int:
    """Unique parameters (tied weights counted once)."""
    return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())
