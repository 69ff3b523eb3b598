"""The training loop on accelerate, readable top to bottom, for every family and every fine-tune.

One optimizer step = one *global* batch, cut into micro-batch *slices*; each process builds and
computes only its own slices (``es_zoo.batching`` explains the numbering), so one process with
accumulation and N processes without see identical slices and identical noise. The loss of each
slice is a *sum* divided by the predicted tokens of the whole global batch (this process's count,
summed over processes by one all-reduce per step), so both layouts give the same gradient up to
floating-point rounding.

The step never waits for the device: loss, correct predictions, token counts and the NaN guard are
accumulated on the device and read back only at log steps, before every checkpoint save and at the
end (:class:`DeviceTotals`). A non-finite loss therefore stops the run at the next log step or
before the next save, whichever comes first, naming the step where it happened; a saved checkpoint
is always one from before it.

The loop does not know the objective: a *batch maker* turns a step number into the slices of this
process (``es_zoo.batching.BatchMaker`` for the masked LMs, ``es_zoo.seq2seq_batches.Seq2SeqBatchMaker``
for BART, T5 and BERT2BERT, ``es_zoo.tasks.finetune.TaskBatchMaker`` for fine-tunes), and a *loss
module* turns a slice into ``(summed loss, correct predictions)`` (``SparseMLM`` / ``Seq2SeqLoss`` in
``es_zoo.modeling``, the heads of ``es_zoo.tasks.heads``).

The same loop runs under every accelerate strategy. One process, DDP and XLA hand back the trained
model as it is. FSDP and DeepSpeed shard the model (and DeepSpeed runs the optimizer inside
``backward``): ``es_zoo.sharding`` marks the last micro-batch of each step for DeepSpeed, checks its
config against the recipe, and gathers a plain copy of the model for the evaluation and the export.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import torch

from es_zoo import checkpoints, sharding
# The batch side (es_zoo.batching): BatchMaker and MLMData are pretrain's, StepBatch and phase_at the loop's.
from es_zoo.batching import BatchMaker, MLMData, StepBatch, phase_at
from es_zoo.errors import TrainingError
from es_zoo.flops import achieved_tflops, device_peak_tflops
from es_zoo.modeling import SparseMLM
from es_zoo.recipes import TRACKERS, ResolvedRecipe, TrainingConfig

STOP_CHECK_EVERY = 10  # several processes agree on a SIGTERM every this many steps (and at log/save steps)


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

    ``impl="loop"`` updates one tensor after the other; ``impl="foreach"`` does each operation on all
    tensors of a group at once with ``torch._foreach_*`` kernels (far fewer kernel launches on a GPU;
    the same arithmetic, equal to the loop up to rounding). The step counters stay on the CPU, as in
    torch's own AdamW, so reading them never waits for the GPU.

    Example:
        >>> import torch
        >>> p = torch.nn.Parameter(torch.ones(3))
        >>> opt = AdamWScale([p], lr=0.1, impl="foreach")
        >>> p.grad = torch.ones(3)
        >>> opt.step()
        >>> [round(x, 4) for x in p.tolist()]
        [0.9, 0.9, 0.9]
    """

    def __init__(self, params: Any, lr: float, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-6,
                 weight_decay: float = 0.0, impl: str = "loop") -> None:
        if impl not in ("loop", "foreach"):
            raise ValueError(f"AdamWScale impl must be 'loop' or 'foreach', got {impl!r}")
        self.impl = impl
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay})

    def _state(self, p: torch.Tensor) -> dict:
        state = self.state[p]
        if not state:
            state["step"] = torch.zeros((), dtype=torch.float64)
            state["exp_avg"] = torch.zeros_like(p)
            state["exp_avg_sq"] = torch.zeros_like(p)
        return state

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if params:
                (self._foreach_update if self.impl == "foreach" else self._loop_update)(group, params)
        return loss

    def _loop_update(self, group: dict, params: list[torch.Tensor]) -> None:
        beta1, beta2 = group["betas"]
        for p in params:
            state = self._state(p)
            state["step"] += 1
            n = float(state["step"])  # a CPU tensor: no device sync
            m, v = state["exp_avg"], state["exp_avg_sq"]
            m.mul_(beta1).add_(p.grad, alpha=1.0 - beta1)
            v.mul_(beta2).addcmul_(p.grad, p.grad, value=1.0 - beta2)
            size = group["lr"] * math.sqrt(1.0 - beta2**n) / (1.0 - beta1**n)
            # The RMS stays a tensor: reading it back would stall a GPU once per parameter.
            scale = (p.norm(2) / math.sqrt(p.numel())).clamp_(min=1e-3)
            p.add_(m / v.sqrt().add_(group["eps"]) * scale, alpha=-size)
            if group["weight_decay"] > 0.0:
                p.add_(p, alpha=-group["lr"] * group["weight_decay"])

    def _foreach_update(self, group: dict, params: list[torch.Tensor]) -> None:
        # The loop's operations in the same order, each over the whole group.
        beta1, beta2 = group["betas"]
        states = [self._state(p) for p in params]
        grads = [p.grad for p in params]
        m = [s["exp_avg"] for s in states]
        v = [s["exp_avg_sq"] for s in states]
        steps = [s["step"] for s in states]
        torch._foreach_add_(steps, 1.0)
        torch._foreach_mul_(m, beta1)
        torch._foreach_add_(m, grads, alpha=1.0 - beta1)
        torch._foreach_mul_(v, beta2)
        torch._foreach_addcmul_(v, grads, grads, value=1.0 - beta2)
        update = torch._foreach_sqrt(v)
        torch._foreach_add_(update, group["eps"])
        update = torch._foreach_div(m, update)
        rms = torch._foreach_norm(params)  # one 0-d tensor per parameter, never read on the host
        torch._foreach_div_(rms, [math.sqrt(p.numel()) for p in params])
        torch._foreach_clamp_min_(rms, 1e-3)
        torch._foreach_mul_(update, rms)
        # Tensors normally share one step count (all get gradients every step); group by it anyway.
        by_step: dict[float, list[int]] = {}
        for i, n in enumerate(float(s) for s in steps):  # CPU tensors: no device sync
            by_step.setdefault(n, []).append(i)
        for n, idx in by_step.items():
            size = group["lr"] * math.sqrt(1.0 - beta2**n) / (1.0 - beta1**n)
            torch._foreach_add_([params[i] for i in idx], [update[i] for i in idx], alpha=-size)
        if group["weight_decay"] > 0.0:
            torch._foreach_add_(params, params, alpha=-group["lr"] * group["weight_decay"])


def optimizer_impl(cfg: TrainingConfig, device: Any = None) -> str:
    """How the optimizer runs on ``device``: ``cfg.optimizer_impl``, with ``auto`` resolved.

    ``auto`` keeps the CPU (and any non-CUDA device) exactly as es-zoo always ran (``default``: torch's
    own choice for AdamW, the loop for AdamWScale); on CUDA it is torch's fused AdamW kernel, or the
    foreach AdamWScale.

    Example:
        >>> from es_zoo.recipes import load_recipe
        >>> t = load_recipe("t5s", "tiny").training
        >>> optimizer_impl(t, "cpu"), optimizer_impl(t, "cuda")
        ('default', 'foreach')
    """
    if cfg.optimizer_impl != "auto":
        return cfg.optimizer_impl
    if device is not None and torch.device(device).type == "cuda":
        return "foreach" if cfg.optimizer == "adamw_scale" else "fused"
    return "default"


def build_optimizer(model: torch.nn.Module, cfg: TrainingConfig, device: Any = None) -> torch.optim.Optimizer:
    """AdamW (or nanoT5's AdamWScale) without weight decay on biases and LayerNorm weights, run as
    :func:`optimizer_impl` says for ``device`` (where the model will train; None: the CPU).

    Example:
        >>> import torch
        >>> from es_zoo.recipes import load_recipe
        >>> t = load_recipe("beto", "tiny", overrides=["training.optimizer_impl=foreach"]).training
        >>> build_optimizer(torch.nn.Linear(2, 2), t).defaults["foreach"]
        True
    """
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
    impl = optimizer_impl(cfg, device)
    common = {"lr": cfg.learning_rate, "betas": (cfg.adam_beta1, cfg.adam_beta2), "eps": cfg.adam_epsilon}
    if cfg.optimizer == "adamw_scale":
        if impl == "fused":  # the recipe loader refuses this; a hand-made config could still ask
            raise TrainingError("optimizer_impl 'fused' is not available for adamw_scale")
        return AdamWScale(groups, **common, impl="foreach" if impl == "foreach" else "loop")
    # torch's fused and foreach kernels check the device on the first step (after accelerate has moved
    # the model), so the choice can be made while the parameters are still on the CPU.
    kwargs = {"loop": {"foreach": False, "fused": False}, "foreach": {"foreach": True},
              "fused": {"fused": True}, "default": {}}[impl]
    return torch.optim.AdamW(groups, **common, **kwargs)


_stop_after: int | None = None  # the stop_after() test hook; None: off


@contextlib.contextmanager
def stop_after(steps: int | None) -> Iterator[None]:
    """Test hook: inside the block, every training loop (pretraining or fine-tuning) behaves as if it got
    a SIGTERM after ``steps`` steps (None: no effect). One process stops right there; several agree on it
    at the next check (every ``STOP_CHECK_EVERY`` steps and at log and save steps). Either way the loop
    saves a checkpoint and returns with ``stopped_early``, as a preempted job does.

    Example:
        >>> with stop_after(4):  # doctest: +SKIP
        ...     pretrain(cfg, model, data, run_dir, accelerator)["steps"]
        4
    """
    global _stop_after
    previous, _stop_after = _stop_after, steps
    try:
        yield
    finally:
        _stop_after = previous


class StopRequest:
    """Turns SIGTERM (or the :func:`stop_after` test hook) into a request honoured at the next step boundary."""

    def __init__(self) -> None:
        self.requested = False
        self.after = _stop_after
        self._previous: Any = None

    def at(self, step: int) -> bool:
        """Whether this process asks to stop once ``step`` steps are done."""
        return self.requested or (self.after is not None and step >= self.after)

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
    resume: bool = False,
) -> dict:
    """Run (or resume) masked-LM pretraining of a ``BertForMaskedLM``; returns a summary."""
    make = BatchMaker(cfg, data, accelerator.process_index, accelerator.num_processes)
    return train_loop(LoopSettings.of_recipe(cfg), SparseMLM(model), make, run_dir, accelerator, resume)


# ------------------------------------------------------------------------------------ trackers
def tracker_kwargs(cfg_training: TrainingConfig | Sequence[str], run_dir: str | Path) -> dict:
    """Keyword arguments for ``accelerate.Accelerator(...)`` that turn on the recipe's experiment
    trackers (``training.trackers``), writing under ``RUN_DIR/tracking``; ``{}`` when there are none.

    The loop then logs to them what it writes to ``logs/train.jsonl``. ``cfg_training`` is the
    recipe's training section, or just a list of tracker names.

    Example:
        >>> from es_zoo.recipes import load_recipe
        >>> tracker_kwargs(load_recipe("beto", "tiny", overrides=["training.trackers=[tensorboard]"]).training, "runs/b")
        {'log_with': ['tensorboard'], 'project_dir': 'runs/b/tracking'}
        >>> tracker_kwargs(load_recipe("beto", "tiny").training, "runs/b"), tracker_kwargs([], "runs/b")
        ({}, {})
    """
    names = list(cfg_training) if isinstance(cfg_training, (list, tuple)) else list(cfg_training.trackers)
    unknown = [n for n in names if n not in TRACKERS]
    if unknown:
        raise TrainingError(f"unknown experiment tracker {unknown[0]!r}; known: {', '.join(TRACKERS)}")
    if not names:
        return {}
    return {"log_with": names, "project_dir": str(Path(run_dir) / "tracking")}


def flat_config(cfg: Any) -> dict[str, Any]:
    """The resolved recipe (or a nested mapping, such as a fine-tune's ``{"recipe": TASK, "preset":
    "finetune", "training": {...}}``) as flat ``{"training.learning_rate": 0.0001,
    "training.phases.0.seq_len": 128, ...}`` scalars (what trackers accept as a run's configuration);
    null settings are left out.

    Example:
        >>> from es_zoo.recipes import load_recipe
        >>> flat = flat_config(load_recipe("beto", "tiny"))
        >>> flat["model.hidden_size"], flat["training.phases.0.seq_len"], flat["recipe"]
        (128, 128, 'beto')
        >>> flat_config({"recipe": "pos", "training": {"phases": [{"seq_len": 64}], "peak_tflops": None}})
        {'recipe': 'pos', 'training.phases.0.seq_len': 64}
    """
    data = {"recipe": cfg.recipe, "preset": cfg.preset, **cfg.to_dict()["config"]} if hasattr(cfg, "to_dict") else cfg
    out: dict[str, Any] = {}

    def walk(value: Any, key: str) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, f"{key}.{k}" if key else str(k))
        elif isinstance(value, (list, tuple)):
            for i, v in enumerate(value):
                walk(v, f"{key}.{i}")
        elif isinstance(value, (bool, int, float, str)):
            out[key] = value

    walk(data, "")
    return out


@dataclass(frozen=True)
class LoopSettings:
    """What :func:`train_loop` reads besides the loss module, the batches and the run folder.

    ``training`` holds the schedule, the optimizer, the step options, the log and save cadence and the
    trackers (a recipe's training section, or the one a fine-tune builds from its hyperparameters);
    ``run_name`` names the trackers' run, ``label`` the progress bar, and ``tracked`` is the flat
    configuration the trackers record (:func:`flat_config`).

    Example:
        >>> from es_zoo.recipes import load_recipe
        >>> s = LoopSettings.of_recipe(load_recipe("beto", "tiny"))
        >>> s.run_name, s.label, s.tracked["training.phases.0.seq_len"]
        ('beto-tiny', 'pretraining beto/tiny', 128)
    """

    training: TrainingConfig
    run_name: str
    label: str
    tracked: dict[str, Any] = dataclasses.field(default_factory=dict)

    @classmethod
    def of_recipe(cls, cfg: ResolvedRecipe) -> "LoopSettings":
        """A pretraining's settings: its recipe's training section, named ``RECIPE-PRESET``."""
        return cls(cfg.training, f"{cfg.recipe}-{cfg.preset}", f"pretraining {cfg.recipe}/{cfg.preset}",
                   flat_config(cfg))


class Tracking:
    """The loop's side of the experiment trackers: starts a run named ``settings.run_name``
    (``RECIPE-PRESET``) with ``settings.tracked`` (the flat recipe) as its configuration, logs every JSONL
    record, and finishes the trackers (main process only; accelerate's ``init_trackers`` and ``log`` do
    nothing elsewhere).

    Inactive when ``training.trackers`` is empty. When it is set but the Accelerator was created without
    :func:`tracker_kwargs`, it says so once and stays inactive (logging to nothing would be silent).

    Example:
        >>> from accelerate import Accelerator  # doctest: +SKIP
        >>> accelerator = Accelerator(**tracker_kwargs(cfg.training, run_dir))  # doctest: +SKIP
        >>> tracking = Tracking(accelerator, LoopSettings.of_recipe(cfg), resumed_step=0)  # doctest: +SKIP
        >>> tracking.log({"step": 10, "loss": 6.2, "lr": 1e-4})  # doctest: +SKIP
        >>> tracking.finish()  # doctest: +SKIP
    """

    def __init__(self, accelerator: Any, settings: LoopSettings, resumed_step: int) -> None:
        self.accelerator = accelerator
        names = list(settings.training.trackers or [])
        self.active = bool(names) and bool(getattr(accelerator, "log_with", None))
        if names and not self.active:
            accelerator.print(f"training.trackers {names} is set, but the Accelerator was created without "
                              "es_zoo.training.tracker_kwargs(...): nothing is sent to the trackers")
        if not self.active:
            return
        init_kwargs = {}
        if resumed_step and "tensorboard" in names:
            # TensorBoard keeps events of steps after the checkpoint from the interrupted attempt; purge
            # them so the resumed curve replaces them, as logs/train.jsonl does.
            init_kwargs["tensorboard"] = {"purge_step": resumed_step + 1}
        accelerator.init_trackers(project_name=settings.run_name, config=settings.tracked, init_kwargs=init_kwargs)

    def log(self, record: dict) -> None:
        if self.active:
            self.accelerator.log({k: v for k, v in record.items() if k != "step"}, step=record["step"])

    def finish(self) -> None:
        # Not accelerator.end_training(): that also destroys the process group, which the evaluation
        # and fine-tunes after the loop still need.
        if self.active and self.accelerator.is_main_process:
            for tracker in self.accelerator.trackers:
                tracker.finish()
            self.active = False


# ------------------------------------------------------------------------------------ the step
class DeviceTotals:
    """What the steps since the last read added up, kept on the device so that no step waits for it.

    Per step: this process's summed loss divided by the global predicted tokens (the step's mean loss
    share), its correct predictions, the global predicted and input token counts, the model FLOPs (when
    MFU is measured) and the first step whose loss was not finite (0: none) with that loss. Read only
    by :meth:`read` (log steps, before saves, at the end), which sums over processes in one gather.

    Example:
        >>> import torch
        >>> from types import SimpleNamespace
        >>> totals = DeviceTotals(torch.device("cpu"))
        >>> totals.add(1, torch.tensor(6.0), torch.tensor(2), torch.tensor([3, 12]), None)
        >>> totals.add(2, torch.tensor(float("nan")), torch.tensor(0), torch.tensor([3, 12]), None)
        >>> got = totals.read(SimpleNamespace(num_processes=1), stop_flag=False)
        >>> got["correct"], got["predicted"], got["tokens"], got["first_bad"], got["bad_loss"]
        (2, 6, 24, 2, nan)
    """

    def __init__(self, device: torch.device) -> None:
        self.device = device
        # float64 where the device has it: the sums of many steps stay exact enough to log
        self.fdtype = torch.float64 if device.type in ("cpu", "cuda") else torch.float32
        self.reset()

    def reset(self) -> None:
        zeros = lambda dtype, n=(): torch.zeros(n, dtype=dtype, device=self.device)  # noqa: E731
        self.loss = zeros(self.fdtype)
        self.flops = zeros(self.fdtype)
        self.correct = zeros(torch.int64)
        self.counts = zeros(torch.int64, (2,))  # global predicted, global input tokens
        self.first_bad = zeros(torch.int64)
        self.bad_loss = zeros(torch.float32)

    def add(self, step: int, loss: torch.Tensor, correct: torch.Tensor, counts: torch.Tensor,
            flops: torch.Tensor | None) -> None:
        self.loss += loss.to(self.fdtype) / counts[0].clamp(min=1).to(self.fdtype)
        self.correct += correct
        self.counts += counts
        if flops is not None:
            self.flops += flops
        newly = ~torch.isfinite(loss) & (self.first_bad == 0)
        self.first_bad = torch.where(newly, step, self.first_bad)
        self.bad_loss = torch.where(newly, loss.float(), self.bad_loss)

    def read(self, accelerator: Any, stop_flag: bool) -> dict:
        """The totals over all processes (and whether any process asked to stop), then zeroed."""
        ints = torch.stack([self.correct, self.counts[0], self.counts[1], self.first_bad,
                            self.first_bad.new_tensor(int(stop_flag))])
        floats = torch.stack([self.loss, self.flops, self.bad_loss.to(self.fdtype)])
        if accelerator.num_processes > 1:  # one row per process
            ints, floats = accelerator.gather(ints[None]), accelerator.gather(floats[None])
        rows_i = ints.reshape(-1, 5).cpu().tolist()
        rows_f = floats.reshape(-1, 3).cpu().tolist()
        self.reset()
        bad = [(ri[3], rf[2]) for ri, rf in zip(rows_i, rows_f) if ri[3]]
        first_bad, bad_loss = min(bad) if bad else (0, 0.0)
        return {
            "loss": sum(r[0] for r in rows_f), "correct": sum(r[0] for r in rows_i),
            "predicted": rows_i[0][1], "tokens": rows_i[0][2], "flops": rows_f[0][1],  # already global
            "first_bad": first_bad, "bad_loss": bad_loss, "stop": any(r[4] for r in rows_i),
        }


def _host_batch(make: Any, step: int, pin: bool) -> tuple[StepBatch, torch.Tensor]:
    """``make(step)`` and its counts as a tensor, in pinned memory when the copies go to a CUDA device
    (runs in the batch thread, so pinning overlaps the computation of the previous step)."""
    batch = make(step)
    counts = torch.tensor([batch.predicted, batch.tokens], dtype=torch.int64)
    if pin:
        batch.micro = [{k: v.pin_memory() for k, v in mb.items()} for mb in batch.micro]
        counts = counts.pin_memory()
    return batch, counts


def allow_tf32() -> None:
    """Let fp32 matmuls and convolutions use TF32 tensor cores (``training.allow_tf32``, CUDA only).

    Process-wide torch settings (the legacy flags, which every supported torch version has): the loop
    sets them when a recipe asks and never resets them.

    Example:
        >>> allow_tf32()  # doctest: +SKIP
        >>> torch.backends.cuda.matmul.allow_tf32  # doctest: +SKIP
        True
    """
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True


def compile_loss_module(module: torch.nn.Module, t: TrainingConfig) -> torch.nn.Module:
    """``torch.compile`` the loss module in place (``nn.Module.compile``), model forward and loss together.

    In place rather than ``torch.compile(module)``: the module is not wrapped, so its ``state_dict``
    keys, ``accelerator.unwrap_model``, checkpoints and the exported model are those of the plain
    transformers model (no ``_orig_mod.`` prefixes). ``dynamic=None`` is dynamo's automatic dynamic
    shapes: the first call compiles for its exact shapes, and the first call whose shapes differ (BART
    slices padded to their own longest input, BERT's number of masked tokens, a new phase's length)
    recompiles once with those sizes symbolic; later sizes reuse that graph. Marking dimensions dynamic
    up front would fail whenever dynamo specialises one of them (a size of 1), so it is left to dynamo.

    Example:
        >>> import torch
        >>> m = torch.nn.Linear(2, 2)
        >>> from es_zoo.recipes import load_recipe
        >>> t = load_recipe("beto", "tiny", overrides=["training.compile=true", "training.compile_backend=eager"]).training
        >>> compile_loss_module(m, t) is m, sorted(m.state_dict())
        (True, ['bias', 'weight'])
    """
    module.compile(mode=t.compile_mode, backend=t.compile_backend, dynamic=None)
    return module


def set_lr(optimizer: torch.optim.Optimizer, step: int, t: TrainingConfig) -> float:
    """Set the learning rate of step ``step`` (:func:`lr_at`, times each group's ``lr_scale``); returns it."""
    lr = lr_at(step, t)
    for group in optimizer.param_groups:
        group["lr"] = lr * group.get("lr_scale", 1.0)
    return lr


class LoopState:
    """Where the loop stands (steps done, tokens seen, the log window, the device totals) and what it
    does after each step: :meth:`should_stop`, :meth:`maybe_log`, :meth:`maybe_save`.

    The host waits for the device only at *read points*: log steps, save steps and a stop. There
    :meth:`should_stop` reads the device totals once (all processes in one gather) and stops the run on a
    non-finite loss before anything is saved, so a checkpoint is always one from before it.
    """

    def __init__(self, t: TrainingConfig, accelerator: Any, run_dir: Path, step: int, tokens_seen: int,
                 elapsed_before: float, log: JsonlLog, tracking: Tracking, bar: Any, flops_of: Any,
                 peak: float | None) -> None:
        self.t, self.accelerator, self.run_dir = t, accelerator, run_dir
        self.ckpt_root = run_dir / "checkpoints"
        self.step, self.tokens_seen, self.elapsed_before = step, tokens_seen, elapsed_before
        self.total, self.world = t.total_steps, accelerator.num_processes
        self.log, self.tracking, self.bar = log, tracking, bar
        self.flops_of, self.peak = flops_of, peak
        self.started = time.perf_counter()
        self.totals = DeviceTotals(accelerator.device)
        self.window = self._window(time.perf_counter())
        self.phase, self.is_log, self.is_save = 0, False, False
        self.stopped_early = False

    @staticmethod
    def _window(t0: float) -> dict:
        return {"loss": 0.0, "correct": 0, "predicted": 0, "tokens": 0, "flops": 0.0, "steps": 0, "t0": t0}

    def elapsed(self) -> float:
        return self.elapsed_before + time.perf_counter() - self.started

    def count(self, phase: int, loss: torch.Tensor, correct: torch.Tensor, global_counts: torch.Tensor) -> None:
        """Add the step just done to the device totals (nothing is read back here)."""
        self.step += 1
        self.phase = phase
        flops = None
        if self.flops_of is not None:
            fdtype = self.totals.fdtype
            flops = self.flops_of(rows=self.t.phases[phase].global_batch_size,
                                  input_tokens=global_counts[1].to(fdtype), target_tokens=global_counts[0].to(fdtype))
        self.totals.add(self.step, loss, correct, global_counts, flops)
        self.window["steps"] += 1
        self.bar.update(1)
        self.is_log = self.step % self.t.log_every == 0 or self.step == self.total
        self.is_save = self.step % self.t.save_every == 0 or self.step == self.total

    def should_stop(self, stop: StopRequest) -> bool:
        """Whether every process stops after this step (a SIGTERM, or the :func:`stop_after` hook).

        One process decides from its own flag. Several agree on it every ``STOP_CHECK_EVERY`` steps (one
        all-reduce) and at the read of log and save steps, where the flag travels with the totals. At a
        read point this reads the totals, and a non-finite loss raises here, before any save."""
        requested = stop.at(self.step)
        if self.world == 1:
            stop_now = requested  # a Python flag: no device involved
        elif not (self.is_log or self.is_save) and self.step % STOP_CHECK_EVERY == 0:
            stop_now = any_process(requested, self.accelerator)
        else:
            stop_now = False  # several processes: agreed on at the read below
        if not (self.is_log or self.is_save or stop_now):
            return False
        # A read point: the only place the host waits for the device.
        got = self.totals.read(self.accelerator, requested)
        if got["first_bad"]:  # before any save: a checkpoint is always from before the NaN
            latest = checkpoints.latest_checkpoint(self.ckpt_root)
            where = f"the last good checkpoint is {latest}" if latest else "no checkpoint was written yet"
            raise TrainingError(
                f"the loss became {got['bad_loss']} at step {got['first_bad']}; training stopped and "
                f"{where}. Lower training.learning_rate, check training.mixed_precision, or resume with --resume."
            )
        self.tokens_seen += got["tokens"]
        for key in ("loss", "correct", "predicted", "tokens", "flops"):
            self.window[key] += got[key]
        return stop_now or got["stop"]

    def maybe_log(self, lr: float) -> None:
        """At a log step: one record (means over the steps since the last) to train.jsonl and the trackers."""
        if not self.is_log:
            return
        now = time.perf_counter()
        w = self.window
        seconds = max(1e-9, now - w["t0"])
        rate = w["tokens"] / seconds
        record = {
            "step": self.step, "phase": self.phase, "seq_len": self.t.phases[self.phase].seq_len,
            "loss": w["loss"] / w["steps"],
            "accuracy": w["correct"] / max(1, w["predicted"]),
            "lr": lr, "tokens_per_s": rate, "tokens_seen": self.tokens_seen,
            "elapsed_s": self.elapsed_before + now - self.started,
        }
        if self.flops_of is not None:
            record["tflops"] = achieved_tflops(w["flops"], seconds, self.world)
            record["mfu"] = record["tflops"] / self.peak
        self.log.write(record)
        self.tracking.log(record)
        self.bar.set_postfix(loss=f"{record['loss']:.3f}", lr=f"{lr:.2e}", tok_s=f"{rate:,.0f}")
        self.window = self._window(now)

    def maybe_save(self, stop_now: bool) -> bool:
        """At a save step, or when stopping: a checkpoint. True when the run stops early here."""
        if not (self.is_save or stop_now):
            return False
        state = {"step": self.step, "tokens_seen": self.tokens_seen, "elapsed": self.elapsed()}
        path = checkpoints.save_checkpoint(self.accelerator, self.ckpt_root, state, self.t.keep_checkpoints)
        if stop_now and self.step < self.total:
            self.accelerator.print(
                f"\nstop requested: saved {path.relative_to(self.run_dir)} at step {self.step}; "
                "run the same command with --resume to continue"
            )
            self.stopped_early = True
            return True
        return False


def train_loop(
    settings: LoopSettings, wrapped: torch.nn.Module, make: Any, run_dir: Path, accelerator: Any,
    resume: bool = False,
) -> dict:
    """Run (or resume) training; returns a summary with the trained model under ``"model"``.

    ``settings`` is what the loop reads of a recipe (:class:`LoopSettings`: ``LoopSettings.of_recipe``
    for a pretraining; a fine-tune builds its own). ``wrapped`` is a loss module
    (``forward(**slice) -> (loss_sum, correct)``) holding the model as ``.model``; ``make(step)`` gives
    this process's ``es_zoo.batching.StepBatch`` for a global step. A SIGTERM stops the run at the next
    step boundary (several processes: at the next agreed check) with a checkpoint to resume from.

    ``"model"`` is always a plain, unsharded transformers model to evaluate and export on the main
    process. One process, DDP, XLA: the model itself, unwrapped, on every process. FSDP and DeepSpeed: a
    copy gathered from the shards (``es_zoo.sharding.gather_trained_model``) on the main process and None
    on the others, and None everywhere when the run stopped early (nothing is evaluated then, and a
    preempted job should not spend its grace period gathering weights).
    """
    t = settings.training
    device = accelerator.device
    on_cuda = device.type == "cuda"
    if on_cuda and t.allow_tf32:
        allow_tf32()
    sharded = sharding.strategy(accelerator)  # "FSDP", "DEEPSPEED" or None (the plain path)
    skeleton = None
    if sharded:
        # prepare() shards the model in place: keep its structure now to rebuild a plain model at the end.
        skeleton = sharding.parameterless_copy(wrapped.model)
    if sharded == sharding.DEEPSPEED:
        sharding.configure_deepspeed(accelerator, t)  # refuses a config that disagrees with the recipe
    elif sharded == sharding.FSDP:
        sharding.default_fsdp_layers(accelerator, wrapped.model)
    optimizer = build_optimizer(wrapped, t, device=device)
    wrapped, optimizer = accelerator.prepare(wrapped, optimizer)
    loss_module = accelerator.unwrap_model(wrapped)
    if t.compile:
        compile_loss_module(loss_module, t)
    step, tokens_seen, elapsed_before = 0, 0, 0.0
    if resume:
        incomplete_and_report(run_dir / "checkpoints", accelerator)
        latest, state = checkpoints.load_latest_good(accelerator, run_dir / "checkpoints", accelerator.print)
        if latest is not None:
            step, tokens_seen, elapsed_before = state["step"], state["tokens_seen"], state["elapsed"]
            accelerator.print(f"resuming from {latest.relative_to(run_dir)} (step {step})")
    log = JsonlLog(run_dir / "logs" / "train.jsonl", step, accelerator.is_main_process)
    tracking = Tracking(accelerator, settings, step)
    # MFU only where the loss module can count its FLOPs and the device's peak is known: never guessed.
    peak = device_peak_tflops(device, getattr(t, "peak_tflops", None))
    flops_of = getattr(loss_module, "flops", None) if peak else None
    pin = on_cuda and t.pin_memory
    total = t.total_steps
    wrapped.train()

    from tqdm.auto import tqdm

    bar = tqdm(total=total, initial=step, disable=not accelerator.is_local_main_process, desc=settings.label,
               dynamic_ncols=True)
    run = LoopState(t, accelerator, run_dir, step, tokens_seen, elapsed_before, log, tracking, bar, flops_of, peak)
    pool = ThreadPoolExecutor(max_workers=1)  # builds the next batch while this one computes
    future = pool.submit(_host_batch, make, run.step, pin) if run.step < total else None
    try:
        with StopRequest() as stop:
            while run.step < total:
                batch, counts = future.result()
                future = pool.submit(_host_batch, make, run.step + 1, pin) if run.step + 1 < total else None
                lr = set_lr(optimizer, run.step, t)
                phase, _ = phase_at(run.step, t)
                loss, correct, global_counts = train_step(wrapped, optimizer, batch, accelerator, t, counts)
                run.count(phase, loss, correct, global_counts)
                stop_now = run.should_stop(stop)
                run.maybe_log(lr)
                if run.maybe_save(stop_now):
                    break
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        bar.close()
        tracking.finish()
    accelerator.wait_for_everyone()
    elapsed = run.elapsed()
    if not sharded:
        model = accelerator.unwrap_model(wrapped).model
    elif run.stopped_early:
        model = None
    else:  # every process takes part in the gather; the main process gets the model
        model = sharding.gather_trained_model(accelerator, wrapped, skeleton)
    return {
        "steps": run.step, "total_steps": total, "tokens_seen": run.tokens_seen, "stopped_early": run.stopped_early,
        "elapsed_s": elapsed, "model": model,
    }


def train_step(
    wrapped: torch.nn.Module, optimizer: torch.optim.Optimizer, batch: StepBatch, accelerator: Any,
    t: TrainingConfig, counts: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Forward/backward over this process's slices, then one optimizer step, without waiting for the device.

    Returns device tensors: this process's summed loss and correct predictions, and the step's global
    ``[predicted, tokens]`` (this process's counts summed over processes: the step's one all-reduce).
    ``counts`` is ``[batch.predicted, batch.tokens]`` already on the host (pinned for CUDA).
    """
    device = accelerator.device
    world = accelerator.num_processes
    # Under DeepSpeed the engine reduces, clips and steps inside the backward of the step's last
    # micro-batch (es_zoo.sharding.micro_batch); everywhere else this function does it below.
    deepspeed = sharding.strategy(accelerator) == sharding.DEEPSPEED
    if counts is None:
        counts = torch.tensor([batch.predicted, batch.tokens], dtype=torch.int64)
    counts = counts.to(device, non_blocking=True)
    if world > 1:
        counts = accelerator.reduce(counts, reduction="sum")
    # DDP, FSDP and DeepSpeed average gradients over processes, hence world / predicted; a device
    # tensor, never read here.
    scale = (world / counts[0].clamp(min=1).to(torch.float64)).to(torch.float32)
    loss_acc = torch.zeros((), device=device)
    correct_acc = torch.zeros((), device=device, dtype=torch.long)
    for i, mb in enumerate(batch.micro):
        last = i == len(batch.micro) - 1
        with sharding.micro_batch(accelerator, wrapped, last, deepspeed):  # gradients synced after the last
            loss_sum, correct = wrapped(**{k: v.to(device, non_blocking=True) for k, v in mb.items()})
            accelerator.backward(loss_sum * scale)
        loss_acc += loss_sum.detach()
        correct_acc += correct
    if t.max_grad_norm is not None and not deepspeed:
        # Under DeepSpeed accelerate's clip_grad_norm_ does not clip (it only reads the engine's norm,
        # waiting for the device): the engine clipped at the config's gradient_clipping, checked against
        # training.max_grad_norm before training (es_zoo.sharding.deepspeed_settings).
        accelerator.clip_grad_norm_(wrapped.parameters(), t.max_grad_norm)
    # No skipping of non-finite steps (that would need the host to look at the loss): the loop stops at
    # its next read point instead, before any checkpoint of the damaged weights is written.
    optimizer.step()  # under DeepSpeed accelerate's optimizer wrapper does nothing here: the engine stepped
    optimizer.zero_grad(set_to_none=True)
    return loss_acc, correct_acc, counts


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
