"""The pretraining loop on accelerate, readable top to bottom, for every family.

One optimizer step = one *global* batch (``phase.global_batch_size`` sequences over all processes).
Every process builds the same global batch for step ``s`` from ``(seed, phase, s)`` and the same noise
(masks, spans, permutations), then computes on its own slices (``micro_batch_size`` sequences each,
accumulation derived). The loss of each slice is a *sum* divided by the predicted tokens of the whole
global batch, so one process with accumulation and N processes without give the same gradient up to
floating-point rounding.

The loop does not know the objective: a *batch maker* turns a step number into the slices of this
process (:class:`BatchMaker` here for BERT's masked LM, ``es_zoo.seq2seq_batches.Seq2SeqBatchMaker``
for BART, T5 and BERT2BERT), and a *loss module* turns a slice into ``(summed loss, correct
predictions)`` (``SparseMLM`` / ``Seq2SeqLoss`` in ``es_zoo.modeling``).
"""

from __future__ import annotations

import contextlib
import json
import math
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from es_zoo import checkpoints
from es_zoo.errors import TrainingError
from es_zoo.modeling import SparseMLM
from es_zoo.objectives.masking import whole_word_mask
from es_zoo.packing import EpochSampler, PackedSequences
from es_zoo.recipes import ResolvedRecipe, TrainingConfig


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


@dataclass
class StepBatch:
    """This process's slices of one global batch: keyword arguments of the loss module, one dict each."""

    micro: list[dict[str, torch.Tensor]]
    predicted: int  # tokens the loss is computed on, over the whole global batch
    tokens: int  # input tokens (no padding), over the whole global batch


def lr_at(step: int, cfg: TrainingConfig) -> float:
    """Learning rate for optimizer step ``step`` (0-based): linear warmup, then the schedule's decay.

    Warmup climbs linearly from ``warmup_start_fraction * learning_rate`` (0 for BERT, 0.5 for nanoT5)
    to ``learning_rate``; cosine then ends at ``min_learning_rate``, linear at 0.
    """
    total, warm, peak = cfg.total_steps, cfg.warmup_steps, cfg.learning_rate
    if warm and step < warm:
        start = cfg.warmup_start_fraction
        return peak * (start + (1.0 - start) * (step + 1) / warm)
    if cfg.lr_schedule == "constant":
        return peak
    progress = (step - warm) / max(1, total - warm)
    if cfg.lr_schedule == "cosine":
        floor = cfg.min_learning_rate
        return floor + (peak - floor) * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
    return peak * max(0.0, 1.0 - progress)


class AdamWScale(torch.optim.Optimizer):
    """AdamW whose step for each tensor is multiplied by that tensor's RMS (floored at 1e-3).

    This is how nanoT5 pretrains T5 at a learning rate of 2e-2: like Adafactor's relative step, a
    tensor moves in proportion to its own scale. No PyTorch library ships it, so it is written here
    from its definition: bias-corrected Adam moments, ``step = lr * max(1e-3, rms(p))``, then
    decoupled weight decay ``p -= lr * weight_decay * p``.
    """

    def __init__(self, params: Any, lr: float, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-6,
                 weight_decay: float = 0.0) -> None:
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay})

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["step"] = torch.zeros((), dtype=torch.float64)
                    state["exp_avg"] = torch.zeros_like(p)
                    state["exp_avg_sq"] = torch.zeros_like(p)
                state["step"] += 1
                n = float(state["step"])
                m, v = state["exp_avg"], state["exp_avg_sq"]
                m.mul_(beta1).add_(p.grad, alpha=1.0 - beta1)
                v.mul_(beta2).addcmul_(p.grad, p.grad, value=1.0 - beta2)
                size = group["lr"] * math.sqrt(1.0 - beta2**n) / (1.0 - beta1**n)
                # The RMS stays a tensor: reading it back would stall a GPU once per parameter.
                scale = (p.norm(2) / math.sqrt(p.numel())).clamp_(min=1e-3)
                p.add_(m / v.sqrt().add_(group["eps"]) * scale, alpha=-size)
                if group["weight_decay"] > 0.0:
                    p.add_(p, alpha=-group["lr"] * group["weight_decay"])
        return loss


def build_optimizer(model: torch.nn.Module, cfg: TrainingConfig) -> torch.optim.Optimizer:
    """AdamW (or nanoT5's AdamWScale) without weight decay on biases and LayerNorm weights."""
    # A model may scale the learning rate of some parameters (a fine-tuning head that starts from
    # random weights); ``lr_scale`` goes into the group and the loop multiplies the schedule by it.
    scale_of = getattr(model, "lr_scale", None)
    buckets: dict[tuple[bool, float], list] = {}
    seen: set[int] = set()
    for name, p in model.named_parameters():
        if not p.requires_grad or id(p) in seen:  # shared (BETOShare) parameters once
            continue
        seen.add(id(p))
        lowered = name.lower()
        no_decay = p.ndim < 2 or "layernorm" in lowered or "layer_norm" in lowered
        buckets.setdefault((no_decay, float(scale_of(name)) if scale_of else 1.0), []).append(p)
    groups = [
        {"params": params, "weight_decay": 0.0 if no_decay else cfg.weight_decay, "lr_scale": scale}
        for (no_decay, scale), params in sorted(buckets.items(), key=lambda kv: kv[0])
    ]
    cls = AdamWScale if cfg.optimizer == "adamw_scale" else torch.optim.AdamW
    return cls(groups, lr=cfg.learning_rate, betas=(cfg.adam_beta1, cfg.adam_beta2), eps=cfg.adam_epsilon)


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


class BatchMaker:
    """Masked LM (BETO): builds the slices of the global batch that belong to this process, for any step."""

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
        seqs = self.packed[phase][self.samplers[phase].batch(pstep)]
        max_pred = t.phases[phase].max_predictions or obj.max_predictions
        # Dynamic masking: a fresh draw every time a sequence is seen, keyed by the step so that a
        # resumed run and every process draw exactly the same masks.
        rng = np.random.default_rng([t.seed, phase, pstep, 0x3A5C])
        masked = whole_word_mask(
            seqs, rng=rng, is_special=self.data.is_special, is_continuation=self.data.is_continuation,
            mask_token_id=self.data.mask_id, vocab_size=self.data.vocab_size, pad_token_id=self.data.pad_id,
            mlm_probability=obj.mlm_probability, max_predictions=max_pred,
            mask_replace_prob=obj.mask_replace_prob, random_replace_prob=obj.random_replace_prob,
            whole_word=obj.whole_word,
        )
        mb, length = t.micro_batch(phase), seqs.shape[1]
        micro = []
        for a in range(self.accumulation(phase)):
            lo = (a * self.world + self.rank) * mb
            ids = masked.input_ids[lo : lo + mb]
            pos = masked.masked_positions[lo : lo + mb]
            lab = masked.masked_labels[lo : lo + mb]
            valid = lab != -100
            flat = (np.arange(len(ids))[:, None] * length + pos)[valid]
            micro.append({
                "input_ids": torch.from_numpy(np.ascontiguousarray(ids)),
                "flat_positions": torch.from_numpy(flat.astype(np.int64)),
                "labels": torch.from_numpy(lab[valid].astype(np.int64)),
            })
        return StepBatch(micro, int((masked.masked_labels != -100).sum()), int(seqs.size))


class StopRequest:
    """Turns SIGTERM into a request honoured at the next step boundary."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: Any = None

    def __enter__(self) -> "StopRequest":
        try:
            self._previous = signal.signal(signal.SIGTERM, self._handle)
        except ValueError:  # not the main thread: no signal handling
            self._previous = None
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        self.requested = True

    def __exit__(self, *exc: Any) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)


class JsonlLog:
    """``logs/train.jsonl``; on resume, lines after the restored step are dropped (they are re-done)."""

    def __init__(self, path: Path, resume_step: int, enabled: bool) -> None:
        self.path = path
        self.enabled = enabled
        if not enabled:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        kept = []
        if path.is_file():
            for line in path.read_text().splitlines():
                try:
                    if json.loads(line)["step"] <= resume_step:
                        kept.append(line)
                except (ValueError, KeyError):
                    continue
        path.write_text("".join(k + "\n" for k in kept))

    def write(self, record: dict) -> None:
        if self.enabled:
            with open(self.path, "a") as fh:
                fh.write(json.dumps(record) + "\n")


def read_log(path: str | Path) -> list[dict]:
    path = Path(path)
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def plot_loss_curve(log_path: str | Path, png_path: str | Path, title: str, label: str = "training loss") -> None:
    """Loss against step from the JSONL log, phase switches marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = read_log(log_path)
    if not rows:
        return
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    ax.plot([r["step"] for r in rows], [r["loss"] for r in rows], lw=1.5, label=label)
    for prev, cur in zip(rows, rows[1:]):
        if cur["phase"] != prev["phase"]:
            ax.axvline(prev["step"], color="grey", ls="--", lw=1)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("cross-entropy (nats)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(png_path)
    plt.close(fig)


def pretrain(
    cfg: ResolvedRecipe, model: torch.nn.Module, data: MLMData, run_dir: Path, accelerator: Any,
    resume: bool = False, interrupt_after: int | None = None,
) -> dict:
    """Run (or resume) masked-LM pretraining of a ``BertForMaskedLM``; returns a summary."""
    make = BatchMaker(cfg, data, accelerator.process_index, accelerator.num_processes)
    return train_loop(cfg, SparseMLM(model), make, run_dir, accelerator, resume, interrupt_after)


def train_loop(
    cfg: ResolvedRecipe, wrapped: torch.nn.Module, make: Any, run_dir: Path, accelerator: Any,
    resume: bool = False, interrupt_after: int | None = None,
) -> dict:
    """Run (or resume) pretraining; returns a summary with the trained model under ``"model"``.

    ``wrapped`` is a loss module (``forward(**slice) -> (loss_sum, correct)``) holding the model as
    ``.model``; ``make(step)`` gives this process's :class:`StepBatch` for a global step.
    ``interrupt_after`` behaves like a SIGTERM after that many steps (used by the tests).
    """
    t = cfg.training
    optimizer = build_optimizer(wrapped, t)
    wrapped, optimizer = accelerator.prepare(wrapped, optimizer)
    ckpt_root = run_dir / "checkpoints"
    step, tokens_seen, elapsed_before = 0, 0, 0.0
    if resume:
        incomplete_and_report(ckpt_root, accelerator)
        latest = checkpoints.latest_checkpoint(ckpt_root)
        if latest is not None:
            state = checkpoints.load_checkpoint(accelerator, latest)
            step, tokens_seen, elapsed_before = state["step"], state["tokens_seen"], state["elapsed"]
            accelerator.print(f"resuming from {latest.relative_to(run_dir)} (step {step})")
    log = JsonlLog(run_dir / "logs" / "train.jsonl", step, accelerator.is_main_process)
    total = t.total_steps
    wrapped.train()

    from tqdm.auto import tqdm

    bar = tqdm(total=total, initial=step, disable=not accelerator.is_local_main_process,
               desc=getattr(cfg, "progress_label", None) or f"pretraining {cfg.recipe}/{cfg.preset}", dynamic_ncols=True)
    started = time.perf_counter()
    window = {"loss": 0.0, "correct": 0, "predicted": 0, "tokens": 0, "steps": 0, "t0": time.perf_counter()}
    stopped_early = False
    pool = ThreadPoolExecutor(max_workers=1)  # builds the next batch while this one computes
    future = pool.submit(make, step) if step < total else None
    with StopRequest() as stop:
        while step < total:
            batch = future.result()
            future = pool.submit(make, step + 1) if step + 1 < total else None
            lr = lr_at(step, t)
            for group in optimizer.param_groups:
                group["lr"] = lr * group.get("lr_scale", 1.0)
            loss_sum, correct = train_step(wrapped, optimizer, batch, accelerator, t)
            loss = loss_sum / batch.predicted
            if not math.isfinite(loss):
                latest = checkpoints.latest_checkpoint(ckpt_root)
                where = f"the last good checkpoint is {latest}" if latest else "no checkpoint was written yet"
                raise TrainingError(
                    f"the loss became {loss} at step {step + 1}; training stopped and {where}. "
                    "Lower training.learning_rate, check training.mixed_precision, or resume with --resume."
                )
            step += 1
            tokens_seen += batch.tokens
            window["loss"] += loss
            window["correct"] += correct
            window["predicted"] += batch.predicted
            window["tokens"] += batch.tokens
            window["steps"] += 1
            bar.update(1)
            if step % t.log_every == 0 or step == total:
                now = time.perf_counter()
                rate = window["tokens"] / max(1e-9, now - window["t0"])
                phase, _ = phase_at(step - 1, t)
                record = {
                    "step": step, "phase": phase, "seq_len": t.phases[phase].seq_len,
                    "loss": window["loss"] / window["steps"], "accuracy": window["correct"] / window["predicted"],
                    "lr": lr, "tokens_per_s": rate, "tokens_seen": tokens_seen,
                    "elapsed_s": elapsed_before + now - started,
                }
                log.write(record)
                bar.set_postfix(loss=f"{record['loss']:.3f}", lr=f"{lr:.2e}", tok_s=f"{rate:,.0f}")
                window = {"loss": 0.0, "correct": 0, "predicted": 0, "tokens": 0, "steps": 0, "t0": now}
            stop_now = stop.requested or (interrupt_after is not None and step >= interrupt_after)
            stop_now = any_process(stop_now, accelerator)
            if step % t.save_every == 0 or step == total or stop_now:
                state = {"step": step, "tokens_seen": tokens_seen,
                         "elapsed": elapsed_before + time.perf_counter() - started}
                path = checkpoints.save_checkpoint(accelerator, ckpt_root, state, t.keep_checkpoints)
                if stop_now and step < total:
                    accelerator.print(
                        f"\nstop requested: saved {path.relative_to(run_dir)} at step {step}; "
                        "run the same command with --resume to continue"
                    )
                    stopped_early = True
                    break
    pool.shutdown(wait=True, cancel_futures=True)
    bar.close()
    accelerator.wait_for_everyone()
    return {
        "steps": step, "total_steps": total, "tokens_seen": tokens_seen, "stopped_early": stopped_early,
        "elapsed_s": elapsed_before + time.perf_counter() - started,
        "model": accelerator.unwrap_model(wrapped).model,
    }


def train_step(
    wrapped: torch.nn.Module, optimizer: torch.optim.Optimizer, batch: StepBatch, accelerator: Any,
    t: TrainingConfig,
) -> tuple[float, int]:
    """Forward/backward over this process's slices, then one optimizer step; global loss sum and hits."""
    device = accelerator.device
    scale = accelerator.num_processes / batch.predicted  # DDP averages over processes
    loss_acc = torch.zeros((), device=device)
    correct_acc = torch.zeros((), device=device, dtype=torch.long)
    for i, mb in enumerate(batch.micro):
        last = i == len(batch.micro) - 1
        ctx = accelerator.no_sync(wrapped) if not last else contextlib.nullcontext()
        with ctx:
            loss_sum, correct = wrapped(**{k: v.to(device, non_blocking=True) for k, v in mb.items()})
            accelerator.backward(loss_sum * scale)
        loss_acc += loss_sum.detach()
        correct_acc += correct
    if t.max_grad_norm is not None:
        accelerator.clip_grad_norm_(wrapped.parameters(), t.max_grad_norm)
    totals = accelerator.reduce(torch.stack([loss_acc, correct_acc.to(loss_acc.dtype)]), reduction="sum")
    if torch.isfinite(totals[0]):
        optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return float(totals[0]), int(totals[1])


def any_process(flag: bool, accelerator: Any) -> bool:
    """True if ``flag`` is set on any process (so all processes stop at the same step)."""
    if accelerator.num_processes == 1:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=accelerator.device)
    return bool(accelerator.reduce(t, reduction="sum").item() > 0)


def incomplete_and_report(root: Path, accelerator: Any) -> list[Path]:
    """Name and remove checkpoints that never completed (a crash while writing)."""
    import shutil

    bad = checkpoints.incomplete_checkpoints(root)
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        for p in bad:
            accelerator.print(f"skipping incomplete checkpoint {p.name} (no {checkpoints.MARKER} marker); removing it")
            shutil.rmtree(p, ignore_errors=True)
    accelerator.wait_for_everyone()
    return bad
