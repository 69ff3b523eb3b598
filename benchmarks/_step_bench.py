"""Shared pieces of the training-step benchmarks (bench_gpu_bert.py, bench_gpu_seq2seq.py).

Both scripts time two sides on the same model, the same prebuilt batches and the same masks or noise:

- **es-zoo**: ``es_zoo.training.train_step`` on the recipe's loss module (``SparseMLM`` / ``Seq2SeqLoss``)
  prepared by accelerate (bf16 autocast on CUDA, fp32 on CPU), the optimizer of
  ``es_zoo.training.build_optimizer(model, cfg, device)`` (fused AdamW / foreach AdamWScale on CUDA), the
  learning rate set per step from ``lr_at``, the per-step totals kept on the device (``DeviceTotals``) and
  read back once at the end, as ``train_loop`` does between log steps;
- **anchor**: the plain transformers step a user writes: ``out = model(**batch, labels=...)``,
  ``out.loss.backward()``, ``clip_grad_norm_``, ``torch.optim.AdamW`` (torch's default implementation),
  a linear warm-up scheduler, ``zero_grad``, and ``out.loss.item()`` every step (the host sync of a loop
  that logs or checks its loss), with ``torch.autocast(bf16)`` on CUDA and fp32 on CPU.

Batches are built before timing, by es-zoo's batch maker, into pinned memory on CUDA, and given to both
sides (the anchor gets the same ids with its labels in its own layout); building them is timed apart
(the training loop builds the next batch on a thread while the device computes the current one). Each
side first runs ``--warmup`` steps plus one step of every other input shape among the timed batches
(BART's padded widths, es-zoo's number of masked tokens), so the timed steps are in the steady state of a
long run, whichever side goes first: a shape's first step (kernel choice, autotuning, allocator blocks)
costs several times a later one.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402
import torch  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(REPO))


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device is visible")
    return torch.device(name)


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"CPU ({cpu}, {torch.get_num_threads()} torch threads)"


def versions() -> dict:
    import accelerate
    import transformers

    return {"python": platform.python_version(), "torch": torch.__version__, "transformers": transformers.__version__,
            "accelerate": accelerate.__version__, "numpy": np.__version__,
            "cuda": torch.version.cuda if torch.cuda.is_available() else None}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def reset_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory_gib(device: torch.device) -> float | None:
    return torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None


def pin(batch: Any, device: torch.device) -> Any:
    """The batch's tensors in pinned memory when they go to a CUDA device (as the es-zoo loop and a
    DataLoader(pin_memory=True) do)."""
    if device.type == "cuda":
        batch.micro = [{k: v.pin_memory() for k, v in mb.items()} for mb in batch.micro]
    return batch


def accelerator_for(device: torch.device) -> Any:
    from accelerate import Accelerator

    return Accelerator(mixed_precision="bf16" if device.type == "cuda" else "no", cpu=device.type == "cpu")


def autocast(device: torch.device) -> Any:
    import contextlib

    if device.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def es_zoo_side(wrapped: torch.nn.Module, cfg: Any, accelerator: Any, compile_: bool) -> Callable[[Any], None]:
    """Prepare the es-zoo loss module as ``train_loop`` does and return ``step(batch)``; the device totals
    are read (the loop's read point, a host sync) by ``step.finish()``."""
    from es_zoo.training import DeviceTotals, build_optimizer, compile_loss_module, lr_at, train_step

    t = cfg.training
    device = accelerator.device
    optimizer = build_optimizer(wrapped, t, device=device)
    wrapped, optimizer = accelerator.prepare(wrapped, optimizer)
    if compile_:
        compile_loss_module(accelerator.unwrap_model(wrapped), t)
    wrapped.train()
    totals = DeviceTotals(device)
    state = {"step": 0}

    def step(batch: Any) -> None:
        lr = lr_at(state["step"], t)
        for group in optimizer.param_groups:
            group["lr"] = lr * group.get("lr_scale", 1.0)
        counts = torch.tensor([batch.predicted, batch.tokens], dtype=torch.int64)
        if device.type == "cuda":
            counts = counts.pin_memory()
        loss, correct, global_counts = train_step(wrapped, optimizer, batch, accelerator, t, counts)
        state["step"] += 1
        totals.add(state["step"], loss, correct, global_counts, None)

    def finish() -> dict:
        return totals.read(accelerator, False)

    step.finish = finish  # type: ignore[attr-defined]
    step.optimizer_desc = _optimizer_desc(optimizer)  # type: ignore[attr-defined]
    return step


def _optimizer_desc(opt: Any) -> str:
    inner = getattr(opt, "optimizer", opt)
    name = type(inner).__name__
    d = inner.defaults
    if d.get("fused"):
        return f"{name} (fused)"
    if d.get("foreach") or getattr(inner, "impl", None) == "foreach":
        return f"{name} (foreach)"
    if getattr(inner, "impl", None) == "loop" or d.get("foreach") is False:
        return f"{name} (per-tensor loop)"
    return f"{name} (torch default)"


def anchor_optimizer(model: torch.nn.Module, t: Any, total_steps: int) -> tuple[Any, Any]:
    """The optimizer a user writes: ``torch.optim.AdamW`` over all parameters, torch's default
    implementation (foreach on CUDA), and transformers' linear warm-up schedule."""
    from transformers import get_linear_schedule_with_warmup

    opt = torch.optim.AdamW(model.parameters(), lr=t.learning_rate, betas=(t.adam_beta1, t.adam_beta2),
                            eps=t.adam_epsilon, weight_decay=t.weight_decay)
    sched = get_linear_schedule_with_warmup(opt, num_warmup_steps=min(t.warmup_steps, total_steps),
                                            num_training_steps=max(total_steps, 1))
    return opt, sched


def plain_update(loss: torch.Tensor, model: torch.nn.Module, opt: Any, sched: Any, max_norm: float) -> None:
    """The rest of the step a user writes around ``loss = model(...).loss``: backward, clipping, the
    optimizer and schedule steps, and the per-step ``loss.item()`` a plain loop does (logging, a NaN check)."""
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
    opt.step()
    sched.step()
    opt.zero_grad(set_to_none=True)
    loss.item()


def side_summary(results: list[dict], steps: int, tokens: float, flops: float, peak: float | None,
                 optimizer: str) -> dict:
    """One side's figures over its rounds: the median round's rates, the peak memory, each round's tokens/s."""
    secs = median_of(results, "seconds")
    mem = [g["max_memory_gib"] for g in results if g["max_memory_gib"] is not None]
    return {**rates(secs, steps, tokens, flops, peak), "optimizer": optimizer,
            "max_memory_gib": max(mem) if mem else None,
            "rounds_tokens_per_s": [tokens / g["seconds"] for g in results]}


def shape_of(batch: Any) -> tuple:
    micro = batch.micro if hasattr(batch, "micro") else [batch]
    return tuple(tuple((k, tuple(v.shape)) for k, v in sorted(mb.items())) for mb in micro)


def warmup_batches(batches: list, warmup: int) -> list:
    """The first ``warmup`` batches, then one batch of every input shape the timed batches have that those
    did not: kernels, their autotuning and the allocator's blocks are per shape, and a shape's first step
    costs several times a steady-state one (BART pads each batch to its own longest input). Timing starts
    in the steady state a long run is in, whichever side runs first."""
    seen = {shape_of(b) for b in batches[:warmup]}
    extra = []
    for b in batches[warmup:]:
        key = shape_of(b)
        if key not in seen:
            seen.add(key)
            extra.append(b)
    return batches[:warmup] + extra


def time_side(step: Callable[[Any], None], batches: list, warmup: int, device: torch.device) -> dict:
    """Run the warm-up steps (``warmup_batches``), then time the batches after the first ``warmup``; the
    clock stops after a device sync."""
    reset_memory(device)
    for b in warmup_batches(batches, warmup):
        step(b)
    if hasattr(step, "finish"):
        step.finish()
    sync(device)
    t0 = time.perf_counter()
    for b in batches[warmup:]:
        step(b)
    if hasattr(step, "finish"):
        step.finish()  # the es-zoo loop's read point: waits for the device
    sync(device)
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "max_memory_gib": peak_memory_gib(device)}


def rates(seconds: float, steps: int, tokens: float, flops: float, peak: float | None) -> dict:
    tflops = flops / seconds / 1e12
    return {"step_s": seconds / steps, "tokens_per_s": tokens / seconds, "tflops": tflops,
            "mfu": None if peak is None else tflops / peak}


def fmt_mfu(mfu: float | None) -> str:
    return "n/a" if mfu is None else f"{100 * mfu:.1f}%"


def fmt_gib(g: float | None) -> str:
    return "n/a" if g is None else f"{g:.1f}"


def print_table(title: str, rows: list[tuple[str, dict]], unit: str = "tokens/s") -> None:
    print(title)
    print(f"  {'':56}{unit:>12}{'s/step':>9}{'TFLOP/s':>9}{'MFU':>8}{'peak GiB':>10}")
    for name, r in rows:
        print(f"  {name:56}{r['tokens_per_s']:>12,.0f}{r['step_s']:>9.4f}{r['tflops']:>9.3g}"
              f"{fmt_mfu(r['mfu']):>8}{fmt_gib(r.get('max_memory_gib')):>10}")


def median_of(runs: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def write_json(path: str | None, data: dict) -> None:
    if path:
        Path(path).write_text(json.dumps(data, indent=2))
        print(f"wrote {path}")
