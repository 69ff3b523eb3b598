"""Batches for encoder-decoder pretraining: BART denoising (BARTO, BERT2BERT) and T5 span corruption (T5S).

The token stream is cut into fixed-length blocks exactly as for BETO (``es_zoo.packing``): BART and
BERT2BERT blocks are framed ``<s> ... </s>`` (``[CLS] ... [SEP]``) and carry the sentence-start flags
found in the text; T5 blocks are the raw ``568``-token spans T5 derives for 512 input tokens. The
objective (``es_zoo.objectives``) corrupts each micro-batch slice on its own, keyed by ``(seed, phase,
step, slice)`` like the masks of BETO, and each process builds only its own slices (``es_zoo.batching``
explains the numbering), so one process with accumulation and N processes see the same slices. A slice
is padded only to its own longest input, never to the maximum length, and the decoder input is the
target shifted right behind the family's decoder start token (``</s>`` for BART, ``<pad>`` for T5,
``[CLS]`` for BERT2BERT).

Example:
    >>> maker = Seq2SeqBatchMaker(cfg, data, rank=0, world=1)  # doctest: +SKIP
    >>> batch = maker(0)  # doctest: +SKIP
    >>> sorted(batch.micro[0])  # doctest: +SKIP
    ['attention_mask', 'decoder_input_ids', 'input_ids', 'labels']
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from es_zoo.batching import StepBatch, accumulation_steps, phase_at, phase_samplers, slice_rng, step_slices
from es_zoo.objectives.denoising import bart_denoise
from es_zoo.objectives.span_corruption import compute_input_and_target_lengths, span_corrupt
from es_zoo.packing import PackedSequences


@dataclass
class Seq2SeqData:
    """Everything an encoder-decoder objective needs, computed once from the tokenizer."""

    family: str  # "bart" | "t5" | "bert2bert"
    stream: np.ndarray  # training token stream
    sentence_starts: np.ndarray | None  # aligned with ``stream`` (BART-style objectives)
    pad_id: int
    eos_id: int  # frame end (</s>, [SEP]); T5's </s>
    bos_id: int | None  # frame start (<s>, [CLS]); None for T5 (no frame)
    decoder_start_id: int
    word_start: np.ndarray | None = None  # (V,) bool, BART-style objectives
    random_ids: np.ndarray | None = None  # ids a random replacement may draw
    mask_id: int | None = None
    sentinel_start: int | None = None  # T5: id of <extra_id_0>
    num_sentinels: int = 0


@dataclass
class Corrupted:
    """A corrupted global batch: inputs padded to the longest row, targets (rectangular)."""

    input_ids: np.ndarray  # (G, M)
    input_lengths: np.ndarray  # (G,)
    labels: np.ndarray  # (G, T)


def block_length(family: str, seq_len: int, objective: Any) -> int:
    """Stream tokens per training block: ``seq_len`` for BART-style, T5's raw length for span corruption."""
    if family == "t5":
        raw, _ = compute_input_and_target_lengths(
            seq_len, objective.noise_density, objective.mean_noise_span_length
        )
        return raw
    return seq_len


def packed_for(data: Seq2SeqData, stream: np.ndarray, seq_len: int, objective: Any) -> PackedSequences:
    length = block_length(data.family, seq_len, objective)
    if data.family == "t5":
        return PackedSequences(stream, length, None, None)
    return PackedSequences(stream, length, data.bos_id, data.eos_id)


def corrupt(data: Seq2SeqData, objective: Any, packed: PackedSequences, starts: np.ndarray | None,
            indices: np.ndarray, rng: np.random.Generator) -> Corrupted:
    """Corrupt the blocks at ``indices`` with the recipe's objective."""
    seqs = packed[indices]
    if data.family == "t5":
        out = span_corrupt(
            seqs, rng=rng, eos_token_id=data.eos_id, sentinel_start_id=data.sentinel_start,
            num_sentinels=data.num_sentinels, noise_density=objective.noise_density,
            mean_noise_span_length=objective.mean_noise_span_length,
        )
        lengths = np.full(len(seqs), out.input_ids.shape[1], dtype=np.int64)
        return Corrupted(out.input_ids, lengths, out.labels)

    sentence_start = packed.aligned(starts, indices, False).astype(bool)
    word_start = data.word_start[seqs] | sentence_start
    out = bart_denoise(
        seqs, rng=rng, word_start=word_start, sentence_start=sentence_start, mask_token_id=data.mask_id,
        pad_token_id=data.pad_id, random_token_ids=data.random_ids, mask_ratio=objective.mask_ratio,
        random_ratio=objective.random_ratio, poisson_lambda=objective.poisson_lambda,
        permute_sentence_ratio=objective.permute_sentence_ratio, insert_ratio=objective.insert_ratio,
    )
    return Corrupted(out.input_ids, out.input_lengths, out.labels)


def copy_batch(data: Seq2SeqData, size: int, length: int, rng: np.random.Generator) -> Corrupted:
    """``size`` framed blocks of ``length`` random ordinary tokens, to be reconstructed as they are.

    The copy warm-up of ``DenoisingConfig.copy_warmup_steps`` (es-zoo's, not BART's): nothing in such a
    block is predictable from the decoder's own prefix, so the only way down is to read the encoder.
    """
    ids = data.random_ids[rng.integers(0, len(data.random_ids), size=(size, length))]
    ids[:, 0], ids[:, -1] = data.bos_id, data.eos_id
    return Corrupted(ids, np.full(size, length, dtype=np.int64), ids.copy())


def to_tensors(c: Corrupted, rows: slice | np.ndarray, pad_id: int, decoder_start_id: int) -> dict:
    """One slice as model inputs, padded to the slice's longest input (not to the maximum length)."""
    import torch

    lengths = c.input_lengths[rows]
    width = int(lengths.max())
    ids = np.ascontiguousarray(c.input_ids[rows, :width])
    attention = (np.arange(width)[None, :] < lengths[:, None]).astype(np.int64)
    labels = np.ascontiguousarray(c.labels[rows]).astype(np.int64)
    decoder = np.empty_like(labels)
    decoder[:, 0] = decoder_start_id
    decoder[:, 1:] = labels[:, :-1]
    decoder[decoder == -100] = pad_id
    return {
        "input_ids": torch.from_numpy(ids.astype(np.int64)),
        "attention_mask": torch.from_numpy(attention),
        "decoder_input_ids": torch.from_numpy(decoder),
        "labels": torch.from_numpy(labels),
    }


NOISE_TAG = 0x5E025E0  # Seq2SeqBatchMaker's part of the noise key (seed, phase, step, NOISE_TAG, slice)


class Seq2SeqBatchMaker:
    """Builds this process's slices of the corrupted global batch for any step (see the module doc).

    Each slice reads its own rows of the step's global batch and is corrupted (or, during the copy
    warm-up, drawn) with the generator of ``(seed, phase, step, NOISE_TAG, slice)``; ``StepBatch.predicted``
    and ``tokens`` count this process's slices.
    """

    def __init__(self, cfg: Any, data: Seq2SeqData, rank: int, world: int) -> None:
        self.cfg, self.data = cfg, data
        self.rank, self.world = rank, world
        t = cfg.training
        self.packed = [packed_for(data, data.stream, p.seq_len, cfg.objective) for p in t.phases]
        self.samplers = phase_samplers(self.packed, t, world)

    def accumulation(self, phase: int) -> int:
        return accumulation_steps(self.cfg.training, phase, self.world)

    def __call__(self, step: int) -> StepBatch:
        t = self.cfg.training
        phase, pstep = phase_at(step, t)
        order = self.samplers[phase].batch(pstep)
        copying = step < getattr(self.cfg.objective, "copy_warmup_steps", 0)
        mb = t.micro_batch(phase)
        micro, predicted, tokens = [], 0, 0
        for g, rows in step_slices(order, mb, self.rank, self.world):
            # Fresh noise every time a block is seen, keyed by the step and the slice: resumed runs and
            # every layout of processes draw exactly the same corruption for the same slice.
            rng = slice_rng(t.seed, phase, pstep, NOISE_TAG, g)
            if copying:
                c = copy_batch(self.data, mb, self.cfg.objective.copy_warmup_length, rng)
            else:
                c = corrupt(self.data, self.cfg.objective, self.packed[phase], self.data.sentence_starts, rows, rng)
            micro.append(to_tensors(c, slice(None), self.data.pad_id, self.data.decoder_start_id))
            predicted += int((c.labels != -100).sum())
            tokens += int(c.input_lengths.sum())
        return StepBatch(micro, predicted, tokens)
