"""Step batches: which rows of a global batch each process builds, and BETO's masked-LM batch maker.

This module sits below the training loop (``es_zoo.training``) and the other batch makers
(``es_zoo.seq2seq_batches.Seq2SeqBatchMaker``, ``es_zoo.tasks.finetune.TaskBatchMaker``), which import
it; it imports only the packing, the masking objective and the error classes.

One optimizer step = one *global* batch (``phase.global_batch_size`` sequences over all processes),
cut into *slices* of ``micro_batch_size`` sequences numbered ``g = 0, 1, ...``. Process ``rank`` of
``world`` computes the slices ``g = a * world + rank`` of its accumulation steps ``a`` and builds only
those (:func:`step_slices`): it reads their rows of the global batch (which rows form the batch of a
step is a pure function of ``(seed, phase, step)``) and draws their noise (masks, spans, permutations)
from a generator keyed by ``(seed, phase, step, g)`` (:func:`slice_rng`). A slice is therefore the same
whoever builds it, so one process with accumulation and N processes without see identical slices and
identical noise.

Example:
    >>> import numpy as np
    >>> [(g, rows.tolist()) for g, rows in step_slices(np.arange(8), micro=2, rank=1, world=2)]
    [(1, [2, 3]), (3, [6, 7])]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from es_zoo.errors import TrainingError
from es_zoo.objectives.masking import whole_word_mask
from es_zoo.packing import EpochSampler, PackedSequences

if TYPE_CHECKING:  # pragma: no cover
    from es_zoo.recipes import ResolvedRecipe, TrainingConfig

MASK_TAG = 0x3A5C  # BatchMaker's part of the noise key (seed, phase, step, MASK_TAG, slice)


@dataclass
class StepBatch:
    """This process's slices of one global batch: keyword arguments of the loss module, one dict each.

    ``predicted`` and ``tokens`` count THIS process's slices only (a process never sees the others'
    slices). The loop sums them over processes, one all-reduce per step, to normalise the loss by the
    predicted tokens of the whole global batch and to count the tokens seen.
    """

    micro: list[dict[str, torch.Tensor]]
    predicted: int  # tokens the loss is computed on, in this process's slices
    tokens: int  # input tokens (no padding), in this process's slices


def phase_at(step: int, cfg: TrainingConfig) -> tuple[int, int]:
    """(phase index, step within the phase) of global step ``step``."""
    for i, ph in enumerate(cfg.phases):
        if step < ph.max_steps:
            return i, step
        step -= ph.max_steps
    raise IndexError("step beyond the last phase")


def phase_samplers(packed: list, t: TrainingConfig, world: int) -> list[EpochSampler]:
    """One global-batch sampler per phase (over that phase's packed sequences), after checking that
    every global batch splits evenly into micro-batches over ``world`` processes."""
    for i, p in enumerate(t.phases):
        if p.global_batch_size % (t.micro_batch(i) * world):
            raise TrainingError(
                f"phases[{i}].global_batch_size {p.global_batch_size} is not a multiple of "
                f"micro_batch_size {t.micro_batch(i)} x {world} processes"
            )
    return [EpochSampler(len(pk), p.global_batch_size, t.seed, i) for i, (pk, p) in enumerate(zip(packed, t.phases))]


def accumulation_steps(t: TrainingConfig, phase: int, world: int) -> int:
    """Micro-batches each process runs per optimizer step in ``phase``."""
    return t.phases[phase].global_batch_size // (t.micro_batch(phase) * world)


def own_slices(accumulation: int, rank: int, world: int) -> list[int]:
    """The slices of the global batch that process ``rank`` of ``world`` computes, in order: slice
    ``a * world + rank`` at accumulation step ``a``.

    Example:
        >>> own_slices(2, rank=1, world=2), own_slices(4, rank=0, world=1)
        ([1, 3], [0, 1, 2, 3])
    """
    return [a * world + rank for a in range(accumulation)]


def step_slices(order: np.ndarray, micro: int, rank: int, world: int) -> list[tuple[int, np.ndarray]]:
    """This process's slices of the global batch ``order`` (its row or item indices, in order): one
    ``(g, rows)`` per accumulation step, ``rows = order[g * micro:(g + 1) * micro]`` for the slices
    ``g`` of :func:`own_slices`. Every batch maker cuts its global batch with this function.

    Example:
        >>> import numpy as np
        >>> [(g, rows.tolist()) for g, rows in step_slices(np.arange(10, 18), micro=2, rank=0, world=2)]
        [(0, [10, 11]), (2, [14, 15])]
    """
    if len(order) % (micro * world):
        raise ValueError(f"a global batch of {len(order)} does not split into micro-batches of {micro} x "
                         f"{world} processes")
    return [(g, order[g * micro:(g + 1) * micro]) for g in own_slices(len(order) // (micro * world), rank, world)]


def slice_rng(seed: int, phase: int, pstep: int, tag: int, g: int) -> np.random.Generator:
    """The noise of slice ``g`` of step ``pstep`` of ``phase``: fresh every time a sequence is seen
    (dynamic masking), and the same for whichever process builds the slice and for a resumed run.

    Example:
        >>> int(slice_rng(42, 0, 3, MASK_TAG, 1).integers(1000)) == int(slice_rng(42, 0, 3, MASK_TAG, 1).integers(1000))
        True
    """
    return np.random.default_rng([seed, phase, pstep, tag, g])


# ------------------------------------------------------------------------------------ masked LM
@dataclass
class MLMData:
    """Everything the masking objective needs, computed once from the tokenizer."""

    stream: np.ndarray  # the training token stream
    is_special: np.ndarray  # (V,) bool
    is_continuation: np.ndarray  # (V,) bool
    vocab_size: int
    mask_id: int
    pad_id: int
    cls_id: int
    sep_id: int


class BatchMaker:
    """Masked LM (BETO, MarIA): builds the slices of the global batch that belong to this process, for
    any step.

    Only this process's slices are read and masked (see the module doc); ``StepBatch.predicted`` and
    ``tokens`` count them.
    """

    def __init__(self, cfg: ResolvedRecipe, data: MLMData, rank: int, world: int) -> None:
        self.cfg = cfg
        self.data = data
        self.rank, self.world = rank, world
        t = cfg.training
        self.packed = [PackedSequences(data.stream, p.seq_len, data.cls_id, data.sep_id) for p in t.phases]
        self.samplers = phase_samplers(self.packed, t, world)

    def accumulation(self, phase: int) -> int:
        return accumulation_steps(self.cfg.training, phase, self.world)

    def __call__(self, step: int) -> StepBatch:
        t, obj = self.cfg.training, self.cfg.objective
        phase, pstep = phase_at(step, t)
        order = self.samplers[phase].batch(pstep)
        max_pred = t.phases[phase].max_predictions or obj.max_predictions
        micro, predicted, tokens = [], 0, 0
        for g, rows in step_slices(order, t.micro_batch(phase), self.rank, self.world):
            seqs = self.packed[phase][rows]
            masked = whole_word_mask(
                seqs, rng=slice_rng(t.seed, phase, pstep, MASK_TAG, g), is_special=self.data.is_special,
                is_continuation=self.data.is_continuation, mask_token_id=self.data.mask_id,
                vocab_size=self.data.vocab_size, pad_token_id=self.data.pad_id,
                mlm_probability=obj.mlm_probability, max_predictions=max_pred,
                mask_replace_prob=obj.mask_replace_prob, random_replace_prob=obj.random_replace_prob,
                whole_word=obj.whole_word,
            )
            valid = masked.masked_labels != -100
            flat = (np.arange(len(seqs))[:, None] * seqs.shape[1] + masked.masked_positions)[valid]
            micro.append({
                "input_ids": torch.from_numpy(np.ascontiguousarray(masked.input_ids)),
                "flat_positions": torch.from_numpy(flat.astype(np.int64)),
                "labels": torch.from_numpy(masked.masked_labels[valid].astype(np.int64)),
            })
            predicted += int(valid.sum())
            tokens += int(seqs.size)
        return StepBatch(micro, predicted, tokens)

