"""What the training loop does differently when accelerate shards the model: FSDP and DeepSpeed.

Under DDP (and one process, and XLA) every process holds the whole model, so after training the main
process evaluates and exports ``accelerator.unwrap_model(wrapped).model`` as it is. Under FSDP and
DeepSpeed ZeRO-3 each process holds only a shard of every parameter (DTensors, or DeepSpeed's flat
partitions): evaluating or ``save_pretrained`` on the main process alone would wait forever for the
other processes to send their shards. So, for these two strategies:

* before ``accelerator.prepare`` the loop keeps a :func:`parameterless_copy` of the model (same classes,
  config and tied weights, parameters on the ``meta`` device: no memory);
* after the loop, every process calls ``accelerator.get_state_dict`` (a collective: the main process
  receives the full state dict, the others an empty one) and the main process loads it into the copy
  (:func:`gather_trained_model`). The result is a plain, unsharded transformers model, evaluated and
  exported like the DDP one. DeepSpeed ZeRO-1/2 keep whole parameters, but DeepSpeed casts them to its
  training precision in place, so they take the same path.

DeepSpeed also runs the optimizer itself: accelerate's ``backward`` calls the engine's ``step`` whenever
``accelerator.sync_gradients`` is true, and es-zoo's loop runs several micro-batches per optimizer step
without ``accelerator.accumulate``. :func:`micro_batch` therefore marks only the last micro-batch of a
step as a synchronisation boundary, and :func:`configure_deepspeed` checks the DeepSpeed config against
the recipe before the engine is built (accumulation 1, micro batch, gradient clipping).

FSDP with ``TRANSFORMER_BASED_WRAP`` needs the transformer layer classes; :func:`default_fsdp_layers`
names them for the model when the accelerate config leaves ``fsdp_transformer_layer_cls_to_wrap`` out
(accelerate refuses a class the model does not have, so one list cannot serve every family).
"""

from __future__ import annotations

import contextlib
import copy
import math
import os
from typing import Any, Iterator

import torch

from es_zoo.errors import TrainingError
from es_zoo.families import all_families

FSDP, DEEPSPEED = "FSDP", "DEEPSPEED"
# DeepSpeed config keys the loop decides (the rest of the file is DeepSpeed's business).
DS_KEYS = ("gradient_accumulation_steps", "train_micro_batch_size_per_gpu", "gradient_clipping")


def fsdp_layer_names() -> tuple[str, ...]:
    """The layer classes FSDP wraps one unit each (one per transformer layer): every registered
    family's (es_zoo.families), e.g. BertLayer for BETO, bert2bert and their fine-tunes."""
    return tuple(dict.fromkeys(c for f in all_families() for c in f.fsdp_layers))


def strategy(accelerator: Any) -> str | None:
    """``"FSDP"`` or ``"DEEPSPEED"`` when accelerate shards the model or runs the optimizer, else None
    (one process, DDP, XLA: the plain path).

    Example:
        >>> from types import SimpleNamespace
        >>> [strategy(SimpleNamespace(distributed_type=kind)) for kind in ("DEEPSPEED", "MULTI_GPU")]
        ['DEEPSPEED', None]
    """
    kind = getattr(accelerator, "distributed_type", None)
    kind = getattr(kind, "value", kind)  # accelerate's DistributedType is a str enum
    return kind if kind in (FSDP, DEEPSPEED) else None


# ------------------------------------------------------------------------------------ the step
@contextlib.contextmanager
def micro_batch(accelerator: Any, wrapped: torch.nn.Module, last: bool, deepspeed: bool) -> Iterator[None]:
    """The context of one micro-batch's forward and backward: gradients are synchronised after the last
    micro-batch of an optimizer step only.

    DDP and FSDP: ``accelerator.no_sync`` around every micro-batch but the last. DeepSpeed: its engine has
    no usable ``no_sync`` under ZeRO-2/3, and accelerate's ``backward`` tells the engine that a micro-batch
    ends an accumulation (reduce the gradients, clip, step the optimizer, zero the gradients) whenever
    ``accelerator.sync_gradients`` is true, which it always is without ``accelerator.accumulate``. So the
    flag is set to ``last`` for this micro-batch and put back to true afterwards.
    """
    if deepspeed:
        state = accelerator.gradient_state
        state._set_sync_gradients(last)  # accelerate has no public setter; accumulate() does the same
        try:
            yield
        finally:
            state._set_sync_gradients(True)
    elif last:
        yield
    else:
        with accelerator.no_sync(wrapped):
            yield


# ------------------------------------------------------------------------------------ DeepSpeed config
def deepspeed_settings(ds_config: dict, t: Any, source: str = "the DeepSpeed config") -> dict:
    """Check a DeepSpeed config against the loop's training settings ``t``; returns the values es-zoo
    writes for the keys left ``"auto"`` (or out). Raises :class:`TrainingError` naming ``source`` and the key.

    * ``gradient_accumulation_steps`` must be 1: es-zoo accumulates itself (``global_batch_size /
      (micro_batch_size x processes)`` micro-batches per step) and tells DeepSpeed which micro-batch ends
      a step (:func:`micro_batch`); DeepSpeed accumulating as well would scale and step wrongly.
    * ``train_micro_batch_size_per_gpu`` must be the micro batch of one of the recipe's phases. es-zoo cuts
      the micro-batches itself, so DeepSpeed uses it only for its batch-size bookkeeping; accelerate needs
      an integer because the loop prepares no DataLoader. ``"auto"`` or left out: the first phase's.
    * ``gradient_clipping`` must be ``training.max_grad_norm`` (0 when that is null): under DeepSpeed the
      engine clips, ``accelerator.clip_grad_norm_`` does not. ``"auto"``: es-zoo writes the recipe's value
      (accelerate would write 1.0, wrong for BARTO's paper preset, 0.1). Left out: DeepSpeed does not clip,
      so it is refused unless the recipe does not clip either.
    * no ``optimizer`` or ``scheduler`` section: es-zoo builds the optimizer and sets the learning rate of
      every step from the recipe.

    Example:
        >>> from es_zoo.recipes import load_recipe
        >>> t = load_recipe("barto", "paper").training
        >>> deepspeed_settings({"gradient_accumulation_steps": 1, "gradient_clipping": "auto",
        ...                     "train_micro_batch_size_per_gpu": "auto"}, t, "ds.json")
        {'train_micro_batch_size_per_gpu': 16, 'gradient_clipping': 0.1}
        >>> deepspeed_settings({"gradient_clipping": 1.0}, t, "ds.json")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        es_zoo.errors.TrainingError: ds.json: gradient_clipping is 1.0 but ...max_grad_norm is 0.1; set "gradient_clipping": 0.1 ...
    """
    for section in ("optimizer", "scheduler"):
        if section in ds_config:
            raise TrainingError(
                f"{source}: remove the \"{section}\" section; es-zoo builds the optimizer and sets the learning "
                "rate of every step from the recipe (training.optimizer, training.learning_rate, lr_schedule)"
            )
    out: dict = {}
    gas = ds_config.get("gradient_accumulation_steps", "auto")
    if gas == "auto":
        out["gradient_accumulation_steps"] = 1
    elif _number(gas, source, "gradient_accumulation_steps") != 1:
        raise TrainingError(
            f"{source}: gradient_accumulation_steps is {gas}; es-zoo needs 1. Its loop accumulates itself "
            "(global_batch_size / (micro_batch_size x processes) micro-batches per optimizer step, from the recipe) "
            "and marks the last micro-batch of each step for DeepSpeed"
        )
    micros = [t.micro_batch(i) for i in range(len(t.phases))] or [t.micro_batch_size]  # in phase order
    micro = ds_config.get("train_micro_batch_size_per_gpu", "auto")
    if micro == "auto":
        out["train_micro_batch_size_per_gpu"] = micros[0]
    elif _number(micro, source, "train_micro_batch_size_per_gpu") not in micros:
        said = " or ".join(str(m) for m in sorted(set(micros)))
        raise TrainingError(
            f"{source}: train_micro_batch_size_per_gpu is {micro} but the recipe's micro batch is {said} "
            f"(training.micro_batch_size, or a phase's micro_batch_size); set it to {micros[0]} or \"auto\""
        )
    want = float(t.max_grad_norm) if t.max_grad_norm is not None else 0.0
    said = t.max_grad_norm if t.max_grad_norm is not None else "null (no clipping)"
    recipe = f"the recipe's training.max_grad_norm is {said}"
    clip = ds_config.get("gradient_clipping")
    if clip == "auto":
        out["gradient_clipping"] = want
    elif clip is None:
        if want:
            raise TrainingError(f"{source}: no gradient_clipping (DeepSpeed then does not clip) but {recipe}; add "
                                f"\"gradient_clipping\": {want} (or \"auto\": es-zoo then writes the recipe's value)")
    elif not math.isclose(_number(clip, source, "gradient_clipping"), want, rel_tol=1e-9, abs_tol=1e-12):
        raise TrainingError(f"{source}: gradient_clipping is {clip} but {recipe}; set \"gradient_clipping\": {want} "
                            "(or \"auto\": es-zoo then writes the recipe's value)")
    return out


def _number(value: Any, source: str, key: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise TrainingError(f"{source}: {key} must be a number or \"auto\", got {value!r}") from None


def configure_deepspeed(accelerator: Any, t: Any) -> None:
    """Check the DeepSpeed config of ``accelerator`` against ``t`` and fill its ``"auto"`` keys, before
    ``accelerator.prepare`` builds the engine (see :func:`deepspeed_settings`).

    The config as it was before the first engine is kept on the plugin: accelerate fills the remaining
    ``"auto"`` keys in place when it builds an engine, and a later loop in the same launch (the fine-tunes
    after pretraining) is checked and filled from the user's values, not the previous loop's.
    """
    plugin = accelerator.state.deepspeed_plugin
    config = plugin.deepspeed_config
    user = plugin.__dict__.setdefault("_es_zoo_user_config", copy.deepcopy(config))
    source = os.environ.get("ACCELERATE_DEEPSPEED_CONFIG_FILE") or "accelerate's DeepSpeed config"
    settings = deepspeed_settings(user, t, source)
    config.clear()  # in place: the plugin's hf_ds_config holds the same dict
    config.update(copy.deepcopy(user))
    config.update(settings)


# ------------------------------------------------------------------------------------ FSDP wrapping
def fsdp_layer_classes(model: torch.nn.Module) -> list[str]:
    """The classes of :func:`fsdp_layer_names` that ``model`` has: one FSDP unit each.

    Example:
        >>> from transformers import BertConfig, BertForMaskedLM
        >>> fsdp_layer_classes(BertForMaskedLM(BertConfig(hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
        ...                                                intermediate_size=8, vocab_size=10)))
        ['BertLayer']
    """
    present = {type(m).__name__ for m in model.modules()}
    return [name for name in fsdp_layer_names() if name in present]


def default_fsdp_layers(accelerator: Any, model: torch.nn.Module) -> None:
    """Under FSDP with ``TRANSFORMER_BASED_WRAP`` and no ``fsdp_transformer_layer_cls_to_wrap``, wrap the
    model's own layer classes (:func:`fsdp_layer_classes`). accelerate would otherwise fall back to the
    model's ``_no_split_modules``, which BERT does not define and which the loss module around the model
    hides: the whole model would be one FSDP unit, gathered at once. A class list the user set is kept."""
    plugin = getattr(accelerator.state, "fsdp_plugin", None)
    if plugin is None:
        return
    from torch.distributed.fsdp.wrap import transformer_auto_wrap_policy

    policy = getattr(plugin.auto_wrap_policy, "func", plugin.auto_wrap_policy)
    if policy is not transformer_auto_wrap_policy:
        return
    ours = plugin.__dict__.get("_es_zoo_layers", False)
    if plugin.transformer_cls_names_to_wrap is not None and not ours:
        return
    names = fsdp_layer_classes(model)
    if names:
        plugin.transformer_cls_names_to_wrap = names
        plugin.auto_wrap_policy = transformer_auto_wrap_policy  # FSDP1 binds the classes at its first prepare
        plugin.__dict__["_es_zoo_layers"] = True


# ------------------------------------------------------------------------------------ export
def parameterless_copy(model: torch.nn.Module) -> torch.nn.Module:
    """A deep copy of ``model`` whose parameters are empty ``meta`` tensors: the same classes, config,
    generation config, buffers and tied parameters (a shared parameter stays one tensor), and no memory
    for the weights. Take it before ``accelerator.prepare``, which shards the model in place.

    Example:
        >>> import torch
        >>> m = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Linear(2, 2))
        >>> m[1].weight = m[0].weight
        >>> c = parameterless_copy(m)
        >>> c[0].weight.is_meta, c[1].weight is c[0].weight, m[0].weight.is_meta
        (True, True, False)
    """
    memo: dict = {}
    for p in model.parameters():  # each shared parameter once
        shape = getattr(p, "ds_shape", None) or p.shape  # a ZeRO-3-partitioned parameter keeps its shape here
        empty = torch.empty(shape, dtype=p.dtype, device="meta")
        memo[id(p)] = torch.nn.Parameter(empty, requires_grad=p.requires_grad)
    return copy.deepcopy(model, memo)


def load_full_state(skeleton: torch.nn.Module, state: dict, device: Any) -> torch.nn.Module:
    """Give the ``meta`` parameters of ``skeleton`` (:func:`parameterless_copy`) the values of a full
    state dict, on ``device`` and in the skeleton's dtypes; persistent buffers are loaded too. Tied
    parameters stay one tensor (the state dict may list them under one name or under all of theirs).
    Raises :class:`TrainingError` when a parameter is missing or a key is unknown."""
    groups: dict[int, list[str]] = {}
    metas: dict[int, torch.Tensor] = {}
    for name, p in skeleton.named_parameters(remove_duplicate=False):
        groups.setdefault(id(p), []).append(name)
        metas[id(p)] = p
    unused = set(state)
    for key, names in groups.items():
        found = next((n for n in names if n in state), None)
        if found is None:
            raise TrainingError(f"the gathered weights lack {names[0]} ({len(state)} tensors gathered)")
        meta = metas[key]
        value = torch.nn.Parameter(state[found].detach().to(device=device, dtype=meta.dtype),
                                   requires_grad=meta.requires_grad)
        for name in names:
            _owner(skeleton, name)._parameters[name.rpartition(".")[2]] = value
        unused.difference_update(names)
    for name, buf in skeleton.named_buffers(remove_duplicate=False):
        if name in state:
            value = state[name].detach().to(device=device, dtype=buf.dtype)
            _owner(skeleton, name)._buffers[name.rpartition(".")[2]] = value
            unused.discard(name)
    if unused:
        raise TrainingError(f"the gathered weights have tensors the model does not: {', '.join(sorted(unused)[:5])}")
    return skeleton.to(device)  # the buffers not in the state dict (BERT's position_ids)


def _owner(module: torch.nn.Module, name: str) -> torch.nn.Module:
    path = name.rpartition(".")[0]
    return module.get_submodule(path) if path else module


def gather_trained_model(accelerator: Any, wrapped: torch.nn.Module, skeleton: torch.nn.Module) -> Any:
    """The trained model as a plain, unsharded module, on the main process; None on the others.

    Must be called by every process: ``accelerator.get_state_dict`` gathers the shards (FSDP: onto the
    main process's CPU; DeepSpeed ZeRO-3: its 16-bit weights, which needs
    ``stage3_gather_16bit_weights_on_model_save``). ``wrapped`` is the prepared loss module, whose model
    is ``.model``; ``skeleton`` is that model's :func:`parameterless_copy` from before ``prepare``.
    """
    full = accelerator.get_state_dict(wrapped)  # a collective: every process, never the main one alone
    if not accelerator.is_main_process:
        return None
    inner = {k[len("model."):]: v for k, v in full.items() if k.startswith("model.")}
    del full
    model = load_full_state(skeleton, inner, accelerator.device)
    return model.train()  # as the DDP path hands it back (the loop trains in train mode)
