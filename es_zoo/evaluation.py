"""Held-out evaluation of a pretrained masked language model.

Scores masked-token accuracy and perplexity on held-out text that training never saw, with masks drawn
from a fixed seed (so two models are compared on exactly the same positions), beside the unigram
baseline: always predicting the most frequent training token (accuracy) and the unigram distribution
of the training stream with add-one smoothing (perplexity). A model that learned nothing scores at or
below the baseline.

Example:
    >>> scores = evaluate_mlm(model, heldout_stream, data, seq_len=128)  # doctest: +SKIP
    >>> scores["masked_accuracy"] > scores["unigram_accuracy"]  # doctest: +SKIP
    True
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from es_zoo.errors import CorpusError
from es_zoo.objectives.masking import whole_word_mask
from es_zoo.packing import PackedSequences

if TYPE_CHECKING:  # pragma: no cover
    from es_zoo.training import MLMData


def unigram_baseline(train_stream: np.ndarray, labels: np.ndarray, vocab_size: int) -> dict:
    """Accuracy of the most frequent training token and perplexity of the smoothed unigram model."""
    counts = np.bincount(np.asarray(train_stream, dtype=np.int64), minlength=vocab_size).astype(np.float64)
    probs = (counts + 1.0) / (counts.sum() + vocab_size)
    top = int(counts.argmax())
    return {
        "unigram_accuracy": float((labels == top).mean()),
        "unigram_perplexity": float(math.exp(-np.log(probs[labels]).mean())),
    }


def evaluate_mlm(
    model, heldout_stream: np.ndarray, data: "MLMData", *, seq_len: int, max_sequences: int = 512,
    batch_size: int = 32, seed: int = 1234, mlm_probability: float = 0.15, max_predictions: int = 20,
) -> dict:
    """Masked-token accuracy, loss and perplexity of ``model`` (a ``BertForMaskedLM``) on held-out text."""
    import torch

    from es_zoo.modeling import SparseMLM

    packed = PackedSequences(heldout_stream, seq_len, data.cls_id, data.sep_id)
    n = min(len(packed), max_sequences)
    if n == 0:
        raise CorpusError(
            f"the held-out text gives no full sequence of {seq_len} tokens: use a larger held-out part "
            "(corpus.heldout_fraction) or a shorter evaluation.seq_len"
        )
    seqs = packed[np.arange(n)]
    masked = whole_word_mask(
        seqs, rng=np.random.default_rng(seed), is_special=data.is_special,
        is_continuation=data.is_continuation, mask_token_id=data.mask_id, vocab_size=data.vocab_size,
        pad_token_id=data.pad_id, mlm_probability=mlm_probability, max_predictions=max_predictions,
    )
    device = next(model.parameters()).device
    scorer = SparseMLM(model).eval()
    loss_sum, correct, count = 0.0, 0, 0
    with torch.inference_mode():
        for lo in range(0, n, batch_size):
            ids = masked.input_ids[lo : lo + batch_size]
            lab = masked.masked_labels[lo : lo + batch_size]
            pos = masked.masked_positions[lo : lo + batch_size]
            valid = lab != -100
            flat = (np.arange(len(ids))[:, None] * seq_len + pos)[valid]
            s, c = scorer(
                torch.from_numpy(ids).to(device), torch.from_numpy(flat).to(device),
                torch.from_numpy(lab[valid]).to(device),
            )
            loss_sum += float(s)
            correct += int(c)
            count += int(valid.sum())
    labels = masked.masked_labels[masked.masked_labels != -100]
    out = {
        "sequences": n, "seq_len": seq_len, "masked_tokens": count, "seed": seed,
        "masked_accuracy": correct / count, "loss": loss_sum / count,
        "perplexity": math.exp(loss_sum / count),
    }
    out.update(unigram_baseline(data.stream, labels, data.vocab_size))
    return out
