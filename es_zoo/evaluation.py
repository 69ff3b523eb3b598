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
from typing import TYPE_CHECKING, Any

import numpy as np

from es_zoo.errors import CorpusError
from es_zoo.objectives.masking import whole_word_mask
from es_zoo.packing import PackedSequences

if TYPE_CHECKING:  # pragma: no cover
    from es_zoo.batching import MLMData


def train_counts(data: Any, vocab_size: int) -> np.ndarray:
    """How often each id occurs in the training stream: the prepared folder's counts (``es-zoo prepare``
    adds them up while tokenizing) or, for a stream in memory, counted here."""
    counts = getattr(data, "unigram_counts", None)
    if counts is None:
        counts = np.bincount(np.asarray(data.stream, dtype=np.int64), minlength=vocab_size)
    if len(counts) < vocab_size:
        counts = np.concatenate([counts, np.zeros(vocab_size - len(counts), dtype=counts.dtype)])
    return counts


def unigram_baseline(train: Any, labels: np.ndarray, vocab_size: int) -> dict:
    """Accuracy of the most frequent training token and perplexity of the smoothed unigram model.

    ``train`` is the training data (an ``MLMData`` / ``Seq2SeqData``, see :func:`train_counts`) or its
    token stream.
    """
    if hasattr(train, "stream"):
        counts = train_counts(train, vocab_size).astype(np.float64)
    else:
        counts = np.bincount(np.asarray(train, dtype=np.int64), minlength=vocab_size).astype(np.float64)
    probs = (counts + 1.0) / (counts.sum() + vocab_size)
    top = int(counts.argmax())
    return {
        "unigram_accuracy": float((labels == top).mean()),
        "unigram_perplexity": float(math.exp(-np.log(probs[labels]).mean())),
    }


def evaluate_mlm(
    model, heldout_stream: np.ndarray, data: "MLMData", *, seq_len: int, max_sequences: int = 512,
    batch_size: int = 32, seed: int = 1234, mlm_probability: float = 0.15, max_predictions: int = 20,
    whole_word: bool = True, head: str = "cls",
) -> dict:
    """Masked-token accuracy, loss and perplexity of ``model`` (a masked LM whose head is the attribute
    ``head``) on held-out text, masked as in training (whole words or single tokens)."""
    import torch

    from es_zoo.modeling import SparseMLM  # lazy (as below): torch loads only when a model is evaluated

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
        whole_word=whole_word,
    )
    device = next(model.parameters()).device
    scorer = SparseMLM(model, head=head).eval()
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
    out.update(unigram_baseline(data, labels, data.vocab_size))
    return out


def evaluate_seq2seq(
    model, data, objective, heldout_stream: np.ndarray, heldout_starts: np.ndarray | None, *, seq_len: int,
    max_sequences: int = 256, batch_size: int = 32, seed: int = 1234,
) -> dict:
    """Held-out denoising (BART, BERT2BERT) or span-corruption (T5) scores of an encoder-decoder.

    The held-out blocks are corrupted once with ``seed`` (the same noise for every model, so a model is
    compared with its step-0 self on identical inputs) and scored with teacher forcing: loss and
    perplexity per target token, token accuracy, the unigram baseline on the same targets, and for T5
    the *span accuracy*: the share of noise spans whose every token is predicted right.
    """
    import torch

    from es_zoo.modeling import Seq2SeqLoss
    from es_zoo.seq2seq_batches import corrupt, packed_for, to_tensors

    packed = packed_for(data, heldout_stream, seq_len, objective)
    n = min(len(packed), max_sequences)
    if n == 0:
        raise CorpusError(
            f"the held-out text gives no full block of {packed.seq_len} tokens: use a larger held-out part "
            "(corpus.heldout_fraction) or a shorter evaluation.seq_len"
        )
    c = corrupt(data, objective, packed, heldout_starts, np.arange(n), np.random.default_rng(seed))
    device = next(model.parameters()).device
    scorer = Seq2SeqLoss(model)
    was_training = model.training
    model.eval()
    loss_sum, correct_all = 0.0, []
    with torch.inference_mode():
        for lo in range(0, n, batch_size):
            batch = {k: v.to(device) for k, v in to_tensors(c, slice(lo, lo + batch_size), data.pad_id,
                                                               data.decoder_start_id).items()}
            loss, correct = scorer.token_correct(**batch)
            loss_sum += float(loss.sum())
            correct_all.append(correct.cpu().numpy())
    model.train(was_training)
    correct = np.concatenate(correct_all)
    valid = c.labels != -100
    count = int(valid.sum())
    out = {
        "sequences": n, "seq_len": seq_len, "target_tokens": count, "seed": seed,
        "loss": loss_sum / count, "perplexity": math.exp(min(loss_sum / count, 700.0)),
        "accuracy": float(correct[valid].mean()),
    }
    base = unigram_baseline(data, c.labels[valid], len_vocab(model))
    out["unigram_accuracy"], out["unigram_perplexity"] = base["unigram_accuracy"], base["unigram_perplexity"]
    if data.family == "t5":
        out.update(_span_accuracy(c.labels, correct, data))
        # A quarter of T5's targets are sentinels and </s>, which structure alone predicts: the tokens
        # inside the spans, beside the unigram baseline on the same tokens, say what the model filled in.
        body, _ = _span_body(c.labels, data)
        out["span_token_accuracy"] = float(correct[body].mean()) if body.any() else 0.0
        out["span_token_unigram_accuracy"] = (
            unigram_baseline(data, c.labels[body], len_vocab(model))["unigram_accuracy"] if body.any() else 0.0)
    return out


def len_vocab(model) -> int:
    return int(model.get_output_embeddings().weight.shape[0])


def _span_body(labels: np.ndarray, data) -> tuple[np.ndarray, np.ndarray]:
    """Mask of the T5 target tokens inside noise spans (not sentinels, </s> or padding), and each
    position's span number (0 before the first sentinel, k inside span k)."""
    low = data.sentinel_start - data.num_sentinels + 1
    is_sentinel = (labels >= low) & (labels <= data.sentinel_start)
    span = np.cumsum(is_sentinel, axis=1)  # 0 before the first sentinel, k inside span k
    body = ~is_sentinel & (labels != data.eos_id) & (labels != -100) & (span > 0)
    return body, span


def _span_accuracy(labels: np.ndarray, correct: np.ndarray, data) -> dict:
    """Share of T5 noise spans (the tokens after each sentinel in the target) predicted entirely right."""
    body, span = _span_body(labels, data)
    rows = np.broadcast_to(np.arange(labels.shape[0])[:, None], labels.shape)
    key = rows[body] * (data.num_sentinels + 1) + span[body]
    spans, inverse = np.unique(key, return_inverse=True)
    wrong = np.bincount(inverse, weights=~correct[body], minlength=len(spans))
    return {"spans": int(len(spans)), "span_accuracy": float((wrong == 0).mean()) if len(spans) else 0.0}


def generation_samples(
    model, tokenizer, data, objective, heldout_stream: np.ndarray, heldout_starts: np.ndarray | None, *,
    seq_len: int, seed: int = 1234, count: int = 4, max_new_tokens: int = 48,
) -> list[dict]:
    """``generate`` (greedy) on a few corrupted held-out blocks: what the model writes, beside its input.

    A trained model writes Spanish that follows its input (BART/BERT2BERT: the reconstructed text; T5:
    sentinels followed by the missing spans); an untrained one repeats a constant token.
    """
    import torch

    from es_zoo.seq2seq_batches import corrupt, packed_for, to_tensors

    packed = packed_for(data, heldout_stream, seq_len, objective)
    n = min(len(packed), count)
    if n == 0:
        return []
    # Spread the samples over the held-out text rather than taking its first blocks.
    picks = np.linspace(0, len(packed) - 1, n).astype(np.int64)
    c = corrupt(data, objective, packed, heldout_starts, picks, np.random.default_rng(seed + 1))
    batch = to_tensors(c, slice(0, n), data.pad_id, data.decoder_start_id)
    device = next(model.parameters()).device
    model.eval()
    with torch.inference_mode():
        out = model.generate(
            input_ids=batch["input_ids"].to(device), attention_mask=batch["attention_mask"].to(device),
            max_new_tokens=max_new_tokens, do_sample=False, num_beams=1,
            synced_gpus=False,  # one process generates (the main one): see es_zoo.generation.generate_ids
        )
    samples = []
    for i in range(n):
        source = c.input_ids[i, : c.input_lengths[i]]
        samples.append({
            "input": tokenizer.decode(source[:160], skip_special_tokens=False),
            "output": _decode_generated(tokenizer, out[i].tolist(), data),
            "target": tokenizer.decode(c.labels[i][c.labels[i] != -100][:160], skip_special_tokens=False),
        })
    return samples


def _decode_generated(tokenizer, ids: list[int], data) -> str:
    """Generated ids as text: without the decoder start token and what follows the first end token.
    T5's sentinels stay visible (they say which span the model is filling in)."""
    if ids and ids[0] == data.decoder_start_id:
        ids = ids[1:]
    if data.eos_id in ids:
        ids = ids[: ids.index(data.eos_id)]
    if data.family == "t5":
        return tokenizer.decode([i for i in ids if i != data.pad_id], skip_special_tokens=False)
    return tokenizer.decode(ids, skip_special_tokens=True)
