"""The GPU-ready training step, tested on CPU: per-process slices, no host syncs inside a step, the
compile / optimizer / tracker / MFU options and their validation."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from es_zoo.errors import RecipeError
from es_zoo.recipes import load_recipe
from tests.conftest import MICRO, NO_DROPOUT

VOCAB = 600


def _mlm_data(tokens: int = 20_000):
    """A random token stream with the tables BETO's masking needs (ids 0-4 special, 300-399 ``##`` pieces)."""
    from es_zoo.training import MLMData

    stream = np.random.default_rng(0).integers(5, VOCAB, size=tokens).astype(np.int32)
    special = np.zeros(VOCAB, dtype=bool)
    special[:5] = True
    continuation = np.zeros(VOCAB, dtype=bool)
    continuation[300:400] = True
    return MLMData(stream=stream, is_special=special, is_continuation=continuation, vocab_size=VOCAB,
                   mask_id=4, pad_id=1, cls_id=2, sep_id=3)


def _bart_data(vocab: int = 500):
    from es_zoo.seq2seq_batches import Seq2SeqData

    mask_id = vocab - 1
    stream = np.random.default_rng(0).integers(10, mask_id, size=8000)
    starts = np.zeros(len(stream), dtype=bool)
    starts[::40] = True
    return Seq2SeqData(family="bart", stream=stream, sentence_starts=starts, pad_id=1, eos_id=2, bos_id=0,
                       decoder_start_id=2, word_start=np.ones(vocab, dtype=bool), random_ids=np.arange(10, mask_id),
                       mask_id=mask_id)


def _beto(extra: list[str] = ()):
    return load_recipe("beto", "tiny", overrides=MICRO + list(extra))


def _pretrain(out: Path, extra: list[str] = (), **kw) -> dict:
    """A micro BETO pretraining on random tokens, straight through ``pretrain`` (no tokenizer, no export)."""
    from accelerate import Accelerator

    from es_zoo.modeling import build_bert_mlm
    from es_zoo.training import pretrain, tracker_kwargs

    cfg = _beto(list(extra))
    torch.manual_seed(0)
    model = build_bert_mlm(cfg.model, vocab_size=VOCAB, pad_token_id=1)
    accelerator = Accelerator(**tracker_kwargs(cfg.training, out))
    return pretrain(cfg, model, _mlm_data(), out, accelerator, **kw)


def _rows(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "logs" / "train.jsonl").read_text().splitlines()]


def _same_slices(one: list[dict], two: list[dict]) -> None:
    assert len(one) == len(two)
    for a, b in zip(one, two):
        assert a.keys() == b.keys()
        for k in a:
            assert a[k].dtype == b[k].dtype and torch.equal(a[k], b[k]), k


def _interleave(rank0: list, rank1: list) -> list:
    """Slices g = a * 2 + rank of two processes, back in slice order."""
    return [s for pair in zip(rank0, rank1) for s in pair]


# ------------------------------------------------------------------------------------ per-rank slices
def test_two_ranks_build_exactly_the_slices_of_one_rank_for_the_masked_lm() -> None:
    from es_zoo.training import BatchMaker

    cfg, data = _beto(), _mlm_data()
    one = BatchMaker(cfg, data, 0, 1)
    ranks = [BatchMaker(cfg, data, r, 2) for r in (0, 1)]
    for step in (0, 1, 5, 6, 8):  # both phases (seq_len 32, then 64 with max_predictions 10)
        whole = one(step)
        parts = [m(step) for m in ranks]
        _same_slices(whole.micro, _interleave(parts[0].micro, parts[1].micro))
        assert sum(p.predicted for p in parts) == whole.predicted > 0
        assert sum(p.tokens for p in parts) == whole.tokens == (8 * 32 if step < 6 else 4 * 64)
        assert parts[0].predicted == sum(len(m["labels"]) for m in parts[0].micro)  # this process's count


def test_two_ranks_build_exactly_the_slices_of_one_rank_for_denoising_and_the_copy_warmup() -> None:
    from es_zoo.seq2seq_batches import Seq2SeqBatchMaker

    cfg = load_recipe("barto", "tiny", overrides=[
        "training.phases=[{max_steps: 10, seq_len: 64, global_batch_size: 8}]", "training.micro_batch_size=2",
        "training.warmup_steps=1", "objective.copy_warmup_steps=2", "objective.copy_warmup_length=16"])
    data = _bart_data()
    one = Seq2SeqBatchMaker(cfg, data, 0, 1)
    ranks = [Seq2SeqBatchMaker(cfg, data, r, 2) for r in (0, 1)]
    for step in (0, 1, 2, 3, 7):  # copy warm-up, then text infilling
        whole = one(step)
        parts = [m(step) for m in ranks]
        _same_slices(whole.micro, _interleave(parts[0].micro, parts[1].micro))
        assert sum(p.predicted for p in parts) == whole.predicted
        assert sum(p.tokens for p in parts) == whole.tokens
        if step < 2:
            assert [p.predicted for p in parts] == [4 * 16, 4 * 16]
    # Slices are padded to their own longest input, so widths differ between slices of one step.
    assert len({m["input_ids"].shape[1] for m in one(7).micro}) > 1


def test_two_ranks_build_exactly_the_slices_of_one_rank_for_span_corruption() -> None:
    from es_zoo.seq2seq_batches import Seq2SeqBatchMaker, Seq2SeqData

    cfg = load_recipe("t5s", "tiny", overrides=[
        "training.phases=[{max_steps: 4, seq_len: 64, global_batch_size: 8}]", "training.micro_batch_size=2",
        "training.warmup_steps=1"])
    vocab = 800
    data = Seq2SeqData(family="t5", stream=np.random.default_rng(1).integers(3, vocab - 100, size=6000),
                       sentence_starts=None, pad_id=0, eos_id=1, bos_id=None, decoder_start_id=0,
                       sentinel_start=vocab - 1, num_sentinels=100)
    one, ranks = Seq2SeqBatchMaker(cfg, data, 0, 1), [Seq2SeqBatchMaker(cfg, data, r, 2) for r in (0, 1)]
    for step in range(3):
        whole, parts = one(step), [m(step) for m in ranks]
        _same_slices(whole.micro, _interleave(parts[0].micro, parts[1].micro))
        assert sum(p.predicted for p in parts) == whole.predicted and sum(p.tokens for p in parts) == whole.tokens


def test_two_ranks_of_a_fine_tune_count_their_own_items() -> None:
    from es_zoo.tasks.finetune import TaskBatchMaker, _scored

    lengths = np.arange(5, 45)
    items = [{"input_ids": list(range(n)), "labels": [1] * (n // 2) + [-100] * (n - n // 2)} for n in lengths]
    prepared = SimpleNamespace(items=items, lengths=lengths, encoded=SimpleNamespace(windows=None))
    task = SimpleNamespace(head="token")
    hp = SimpleNamespace(batch_size=8, seed=3)

    def collate(part: list[dict]) -> dict:
        return {"n": torch.tensor([len(it["input_ids"]) for it in part])}

    one = TaskBatchMaker(task, prepared, hp, 0, 0, 1, micro_batch=2, collate_fn=collate)
    ranks = [TaskBatchMaker(task, prepared, hp, 0, r, 2, micro_batch=2, collate_fn=collate) for r in (0, 1)]
    for step in range(7):  # crosses an epoch (5 steps each)
        whole, parts = one(step), [m(step) for m in ranks]
        _same_slices(whole.micro, _interleave(parts[0].micro, parts[1].micro))
        assert sum(p.predicted for p in parts) == whole.predicted
        assert sum(p.tokens for p in parts) == whole.tokens
        batch = one._epoch[1][step % one.steps_per_epoch]
        assert whole.predicted == _scored(task, [items[i] for i in batch])


# ------------------------------------------------------------------------------------ the loop
def test_no_host_sync_inside_a_step_only_at_log_and_save_steps(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Tensor.item / float() / int() / bool() from the loop happen only at read points: log steps (4, 8, 9),
    saves (9), set-up and the end. The optimizer's own step counters are CPU tensors (torch keeps them on
    the host on a GPU too), so reading them is no device sync and is not counted."""
    import es_zoo.training as training

    where = {"step": 0}
    optimizers: list = []
    real_step, real_build = training.train_step, training.build_optimizer

    def counting_step(*args, **kwargs):
        where["step"] += 1
        return real_step(*args, **kwargs)

    def capturing_build(*args, **kwargs):
        optimizers.append(real_build(*args, **kwargs))
        return optimizers[-1]

    monkeypatch.setattr(training, "train_step", counting_step)
    monkeypatch.setattr(training, "build_optimizer", capturing_build)
    main = threading.main_thread()
    seen: list[tuple[int, str]] = []
    counter_reads = {"n": 0}

    def counted(name: str):
        real = getattr(torch.Tensor, name)

        def wrapper(self, *args, **kwargs):
            counters = [s.get("step") for o in optimizers for s in o.state.values()]
            if any(self is c for c in counters):
                counter_reads["n"] += 1
            elif threading.current_thread() is main:
                seen.append((where["step"], name))
            return real(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, wrapper)

    for name in ("item", "__float__", "__int__", "__bool__"):
        counted(name)
    summary = _pretrain(tmp_path / "run", ["training.log_every=4", "training.save_every=100"])
    monkeypatch.undo()
    assert summary["steps"] == 9 and where["step"] == 9
    assert {step for step, _ in seen} <= {0, 4, 8, 9}, seen
    assert counter_reads["n"] >= 9  # the patch was live: torch's AdamW read its CPU step counters
    assert [r["step"] for r in _rows(tmp_path / "run")] == [4, 8, 9]


def test_a_compiled_model_trains_like_eager_and_saves_plain_weights(tmp_path: Path) -> None:
    from safetensors.numpy import load_file
    from torch._dynamo.utils import counters

    torch._dynamo.reset()
    counters.clear()
    eager = _pretrain(tmp_path / "eager", NO_DROPOUT)
    compiled = _pretrain(tmp_path / "compiled", NO_DROPOUT + ["training.compile=true",
                                                              "training.compile_backend=aot_eager"])
    np.testing.assert_allclose([r["loss"] for r in _rows(tmp_path / "compiled")],
                               [r["loss"] for r in _rows(tmp_path / "eager")], rtol=0, atol=1e-5)
    # The phase switch (seq_len 32 -> 64) recompiles once, with dynamic sizes; nothing else does.
    assert counters["stats"]["unique_graphs"] <= 2, dict(counters["stats"])
    # Unwrapped, saved and exported: the plain transformers model, no torch.compile wrapper or prefix.
    assert type(compiled["model"]).__name__ == "BertForMaskedLM"
    keys = set(load_file(tmp_path / "compiled" / "checkpoints" / "step-00000009" / "model.safetensors"))
    assert keys == set(load_file(tmp_path / "eager" / "checkpoints" / "step-00000009" / "model.safetensors"))
    assert not any("_orig_mod" in k for k in keys)
    torch._dynamo.reset()


def test_compiled_bart_does_not_recompile_for_every_slice_width() -> None:
    """BART slices are padded to their own longest input: dynamo's automatic dynamic shapes compile once
    for the first width and once more with symbolic sizes, then reuse that graph for every width."""
    from torch._dynamo.utils import counters

    from es_zoo.modeling import Seq2SeqLoss, build_bart
    from es_zoo.seq2seq_batches import Seq2SeqBatchMaker
    from es_zoo.training import compile_loss_module

    cfg = load_recipe("barto", "tiny", overrides=[
        "training.phases=[{max_steps: 10, seq_len: 64, global_batch_size: 8}]", "training.micro_batch_size=2",
        "training.warmup_steps=1", "training.compile=true", "training.compile_backend=aot_eager",
        "model.d_model=32", "model.encoder_layers=1", "model.decoder_layers=1", "model.encoder_attention_heads=2",
        "model.decoder_attention_heads=2", "model.encoder_ffn_dim=64", "model.decoder_ffn_dim=64",
        "model.max_position_embeddings=128", "objective.copy_warmup_steps=0"])
    torch.manual_seed(0)
    loss = Seq2SeqLoss(build_bart(cfg.model, vocab_size=500, pad_token_id=1, bos_token_id=0, eos_token_id=2))
    compile_loss_module(loss, cfg.training)
    make = Seq2SeqBatchMaker(cfg, _bart_data(), 0, 1)
    torch._dynamo.reset()
    counters.clear()
    widths = set()
    for step in range(3):
        for mb in make(step).micro:
            widths.add(mb["input_ids"].shape[1])
            loss_sum, _ = loss(**mb)
            loss_sum.backward()
    assert len(widths) >= 4
    assert counters["stats"]["unique_graphs"] <= 2, (widths, dict(counters["stats"]))
    torch._dynamo.reset()


def test_a_nan_is_caught_at_the_next_read_point_and_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import es_zoo.training as training
    from es_zoo.errors import TrainingError

    real, calls = training.train_step, {"n": 0}

    def poisoned(*args, **kwargs):
        loss, correct, counts = real(*args, **kwargs)
        calls["n"] += 1
        return (loss * float("nan") if calls["n"] == 5 else loss), correct, counts

    monkeypatch.setattr(training, "train_step", poisoned)
    out = tmp_path / "nan"
    # log every 4, save every 3: step 5 is detected before the save of step 6, which never happens.
    with pytest.raises(TrainingError, match=r"loss became nan at step 5.*step-00000003"):
        _pretrain(out, ["training.log_every=4", "training.save_every=3"])
    assert calls["n"] == 6
    assert [p.name for p in (out / "checkpoints").iterdir()] == ["step-00000003"]
    assert [r["step"] for r in _rows(out)] == [4]


def test_stop_after_stops_at_that_step(tmp_path: Path) -> None:
    from es_zoo.training import stop_after

    with stop_after(5):
        summary = _pretrain(tmp_path / "run", ["training.log_every=4"])
    assert summary["stopped_early"] and summary["steps"] == 5
    assert (tmp_path / "run" / "checkpoints" / "step-00000005" / "COMPLETE").is_file()
    state = json.loads((tmp_path / "run" / "checkpoints" / "step-00000005" / "trainer_state.json").read_text())
    assert state["tokens_seen"] == 5 * 8 * 32  # exact, although read from the device only at the save


# ------------------------------------------------------------------------------------ optimizers
def _adamw_scale_run(impl: str, steps: int = 4) -> list[torch.Tensor]:
    from es_zoo.training import AdamWScale

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.ReLU(), torch.nn.Linear(5, 3))
    with torch.no_grad():
        model[2].weight.mul_(1e-4)  # one tensor whose RMS is below the 1e-3 floor
    groups = [{"params": [model[0].weight, model[2].weight], "weight_decay": 0.01},
              {"params": [model[0].bias, model[2].bias], "weight_decay": 0.0}]
    opt = AdamWScale(groups, lr=2e-2, impl=impl)
    data = torch.randn(16, 6, generator=torch.Generator().manual_seed(1))
    for _ in range(steps):
        model(data).pow(2).mean().backward()
        opt.step()
        opt.zero_grad()
    return [p.detach().clone() for p in model.parameters()] + [s["exp_avg_sq"] for s in opt.state.values()]


def test_foreach_adamw_scale_equals_the_loop() -> None:
    loop, foreach = _adamw_scale_run("loop"), _adamw_scale_run("foreach")
    assert not all(torch.equal(a, b) for a, b in zip(_adamw_scale_run("loop", 0), loop))  # it did train
    for a, b in zip(loop, foreach):
        torch.testing.assert_close(b, a, rtol=1e-6, atol=1e-6)


def test_optimizer_impl_reaches_torch() -> None:
    from es_zoo.training import AdamWScale, build_optimizer, optimizer_impl

    model = torch.nn.Linear(4, 4)
    defaults = {impl: build_optimizer(model, _beto([f"training.optimizer_impl={impl}"]).training).defaults
                for impl in ("auto", "loop", "foreach", "fused")}
    assert (defaults["auto"]["foreach"], defaults["auto"]["fused"]) == (None, None)  # CPU: torch's own choice
    assert (defaults["loop"]["foreach"], defaults["loop"]["fused"]) == (False, False)
    assert defaults["foreach"]["foreach"] is True and defaults["fused"]["fused"] is True
    # auto on CUDA: fused AdamW, foreach AdamWScale (the kernels check the device only when stepping)
    assert build_optimizer(model, _beto().training, device="cuda").defaults["fused"] is True
    t5 = load_recipe("t5s", "tiny").training
    opt = build_optimizer(model, t5, device="cuda")
    assert isinstance(opt, AdamWScale) and opt.impl == "foreach" and optimizer_impl(t5, "cpu") == "default"
    assert build_optimizer(model, t5).impl == "loop"
    # A fused step on the CPU works (torch >= 2.4 has a CPU kernel).
    fused = build_optimizer(model, _beto(["training.optimizer_impl=fused"]).training)
    model(torch.ones(2, 4)).sum().backward()
    fused.step()


# ------------------------------------------------------------------------------------ recipe options
@pytest.mark.parametrize("override, key, said", [
    ("training.optimizer_impl=fast", "training.optimizer_impl", "one of 'auto'"),
    ("training.compile=maybe", "training.compile", "true or false"),
    ("training.compile_mode=turbo", "training.compile_mode", "'reduce-overhead'"),
    ("training.compile_mode=max-autotune", "training", "compile_mode 'max-autotune' needs compile: true"),
    ("training.trackers=[tensorbored]", "training", "unknown tracker 'tensorbored'"),
    ("training.peak_tflops=-1", "training", "peak_tflops must be > 0"),
    ("training.allow_tf32=1", "training.allow_tf32", "true or false"),
    ("model.attn_implementation=flash", "model.attn_implementation", "'flash_attention_2'"),
])
def test_bad_gpu_options_fail_at_load_time_naming_the_key(override: str, key: str, said: str) -> None:
    with pytest.raises(RecipeError) as err:
        load_recipe("beto", "tiny", overrides=[override])
    assert f": {key}: " in str(err.value) and said in str(err.value)


def test_option_combinations_refused_at_load_time() -> None:
    with pytest.raises(RecipeError, match=r"training: optimizer_impl 'fused' is not available for optimizer 'adamw_scale'"):
        load_recipe("t5s", "tiny", overrides=["training.optimizer_impl=fused"])
    with pytest.raises(RecipeError, match=r"model: attn_implementation 'flash_attention_2' is not supported by T5"):
        load_recipe("t5s", "tiny", overrides=["model.attn_implementation=flash_attention_2"])


def test_no_shipped_preset_turns_compile_or_tf32_on_and_the_defaults_keep_cpu_as_it_was() -> None:
    from es_zoo.recipes import list_recipes, load_recipe_file

    for name in list_recipes():
        for preset in load_recipe_file(name).presets.values():
            t = preset.training
            assert not t.compile and not t.allow_tf32 and t.optimizer_impl == "auto" and t.trackers == []
            assert getattr(preset.model, "attn_implementation", "sdpa") == "sdpa"


def test_trackers_match_accelerate() -> None:
    from accelerate.utils import LoggerType

    from es_zoo.recipes import TRACKERS

    assert set(TRACKERS) == {t.value for t in LoggerType} - {"all"}


@pytest.mark.parametrize("impl", ["eager", "sdpa"])
def test_attn_implementation_reaches_the_model(impl: str) -> None:
    from es_zoo.modeling import build_bart, build_bert_mlm, build_t5

    bert = build_bert_mlm(_beto([f"model.attn_implementation={impl}"]).model, vocab_size=VOCAB, pad_token_id=1)
    bart = build_bart(load_recipe("barto", "tiny", overrides=[f"model.attn_implementation={impl}"]).model,
                      vocab_size=500, pad_token_id=1, bos_token_id=0, eos_token_id=2)
    t5 = build_t5(load_recipe("t5s", "tiny", overrides=[f"model.attn_implementation={impl}"]).model,
                  vocab_size=800, pad_token_id=0, eos_token_id=1)
    assert {m.config._attn_implementation for m in (bert, bart, t5)} == {impl}


# ------------------------------------------------------------------------------------ trackers and MFU
def test_tensorboard_gets_what_the_jsonl_gets(tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "run"
    _pretrain(out, ["training.trackers=[tensorboard]", "training.log_every=3"])
    events = out / "tracking" / "beto-tiny"
    assert list(events.glob("events.out.tfevents.*"))
    acc = EventAccumulator(str(events))
    acc.Reload()
    rows = _rows(out)
    assert [r["step"] for r in rows] == [3, 6, 9]
    for name in ("loss", "lr", "accuracy", "tokens_per_s"):
        scalars = acc.Scalars(name)
        assert [s.step for s in scalars] == [3, 6, 9]
        np.testing.assert_allclose([s.value for s in scalars], [r[name] for r in rows], rtol=1e-6)
    assert "mfu" not in acc.Tags()["scalars"]  # CPU without training.peak_tflops: never guessed


def test_tensorboard_purges_the_interrupted_steps_on_resume(tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "run"
    extra = ["training.trackers=[tensorboard]", "training.save_every=4"]
    from es_zoo.training import stop_after

    with stop_after(6):
        _pretrain(out, extra)  # saved at 6 (the stop); steps 1-6 logged
    (out / "checkpoints" / "step-00000006").rename(out / "checkpoints" / "gone")  # as if it crashed after 4
    _pretrain(out, extra, resume=True)
    acc = EventAccumulator(str(out / "tracking" / "beto-tiny"))
    acc.Reload()
    assert [s.step for s in acc.Scalars("loss")] == list(range(1, 10))


def test_tracker_helpers() -> None:
    from es_zoo.errors import TrainingError
    from es_zoo.training import flat_config, tracker_kwargs

    cfg = _beto(["training.trackers=[tensorboard, mlflow]"])
    assert tracker_kwargs(cfg.training, Path("/r")) == {"log_with": ["tensorboard", "mlflow"], "project_dir": "/r/tracking"}
    assert tracker_kwargs(_beto().training, "/r") == {}
    with pytest.raises(TrainingError, match="unknown experiment tracker 'tb'"):
        tracker_kwargs(["tb"], "/r")
    flat = flat_config(cfg)
    assert flat["training.trackers.1"] == "mlflow" and flat["preset"] == "tiny"
    assert all(isinstance(v, (bool, int, float, str)) for v in flat.values())
    assert "training.peak_tflops" not in flat  # null settings are left out


def test_report_to_sets_the_trackers_override(monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    import es_zoo.reproduce
    from es_zoo.cli import cli

    got = {}
    monkeypatch.setattr(es_zoo.reproduce, "reproduce", lambda recipe, **kw: got.update(kw) or {})
    r = CliRunner().invoke(cli, ["reproduce", "beto", "training.seed=3", "--report-to", "tensorboard,wandb",
                                 "--report-to", "mlflow"])
    assert r.exit_code == 0, r.output
    assert list(got["overrides"]) == ["training.seed=3", "training.trackers=[tensorboard, wandb, mlflow]"]
    assert load_recipe("beto", "tiny", overrides=got["overrides"]).training.trackers == ["tensorboard", "wandb", "mlflow"]


def test_mfu_is_logged_only_when_a_peak_is_known(tmp_path: Path) -> None:
    from es_zoo.flops import bert_mlm_flops
    from es_zoo.modeling import build_bert_mlm

    _pretrain(tmp_path / "peak", ["training.peak_tflops=0.5", "training.log_every=3"])
    rows = _rows(tmp_path / "peak")
    config = build_bert_mlm(_beto().model, vocab_size=VOCAB, pad_token_id=1).config
    for r in rows:
        assert r["mfu"] == pytest.approx(r["tflops"] / 0.5)
        assert 0 < r["tflops"] < 1
    # tflops = model FLOPs of the window / its seconds: the first window's seconds from tokens_per_s
    first = rows[0]
    seconds = first["tokens_seen"] / first["tokens_per_s"]
    low = bert_mlm_flops(config, rows=3 * 8, input_tokens=3 * 8 * 32, masked_tokens=3 * 8 * 5 * 0.5)
    assert first["tflops"] * seconds * 1e12 > low  # at least half the masked share counted
    _pretrain(tmp_path / "none", ["training.log_every=3"])
    assert all("mfu" not in r and "tflops" not in r for r in _rows(tmp_path / "none"))


# ------------------------------------------------------------------------------------ FLOPs formulas
def test_bert_flops_match_a_hand_count() -> None:
    from transformers import BertConfig

    from es_zoo.flops import bert_mlm_flops, bert_mlm_flops_per_token, training_flops

    c = BertConfig(hidden_size=8, num_hidden_layers=2, num_attention_heads=2, intermediate_size=16, vocab_size=50)
    # per layer: Q, K, V, O 4 * 8 * 8 = 256 and the feed-forward 2 * 8 * 16 = 256 -> 2 layers: 1024 weights
    body = 2 * (256 + 256)
    attention = 12 * 2 * 8 * 10  # 12 x layers x hidden x seq_len
    head = 8 * 8 + 8 * 50  # transform + projection onto the vocabulary
    assert bert_mlm_flops_per_token(c, seq_len=10, masked_share=0.15) == pytest.approx(6 * body + attention + 0.15 * 6 * head)
    # 3 sequences of 10 tokens, 4 of them masked
    step = bert_mlm_flops(c, rows=3, input_tokens=30, masked_tokens=4)
    assert step == pytest.approx(30 * (6 * body + attention) + 4 * 6 * head)
    assert training_flops(c, rows=3, input_tokens=30, target_tokens=4) == step
    # tensors in, a tensor out (the loop passes device tensors and never waits for them)
    assert float(bert_mlm_flops(c, rows=3, input_tokens=torch.tensor(30.0), masked_tokens=torch.tensor(4.0))) == pytest.approx(step)


def test_encoder_decoder_flops_match_a_hand_count() -> None:
    from transformers import BartConfig, BertConfig, EncoderDecoderConfig, T5Config

    from es_zoo.flops import encoder_decoder_flops

    bart = BartConfig(d_model=8, encoder_layers=2, decoder_layers=1, encoder_attention_heads=2,
                      decoder_attention_heads=2, encoder_ffn_dim=16, decoder_ffn_dim=32, vocab_size=50)
    # 2 pairs: 12 encoder tokens (S_enc 6), 8 decoder tokens (S_dec 4)
    enc = 6 * 2 * (4 * 64 + 2 * 8 * 16) + 12 * 2 * 8 * 6 + 6 * 1 * 2 * 64  # + cross-attention K, V of 1 decoder layer
    dec = 6 * 1 * (4 * 64 + 2 * 64 + 2 * 8 * 32) + 12 * 1 * 8 * (4 + 6) + 6 * 8 * 50
    assert encoder_decoder_flops(bart, rows=2, input_tokens=12, target_tokens=8) == pytest.approx(12 * enc + 8 * dec)
    # T5 v1.1: attention width heads x d_kv, gated feed-forward (3 matrices)
    t5 = T5Config(d_model=8, d_kv=2, num_heads=2, d_ff=16, num_layers=1, num_decoder_layers=1, vocab_size=50,
                  feed_forward_proj="gated-gelu")
    enc = 6 * (4 * 8 * 4 + 3 * 8 * 16) + 12 * 4 * 6 + 6 * 2 * 8 * 4
    dec = 6 * (6 * 8 * 4 + 3 * 8 * 16) + 12 * 4 * (4 + 6) + 6 * 8 * 50
    assert encoder_decoder_flops(t5, rows=2, input_tokens=12, target_tokens=8) == pytest.approx(12 * enc + 8 * dec)
    # BERT2BERT: BERT encoder and decoder, the decoder's BERT LM head (transform + projection)
    b = BertConfig(hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=16, vocab_size=50)
    b2b = EncoderDecoderConfig.from_encoder_decoder_configs(b, b)
    enc = 6 * (4 * 64 + 2 * 8 * 16) + 12 * 8 * 6 + 6 * 2 * 64
    dec = 6 * (6 * 64 + 2 * 8 * 16) + 12 * 8 * (4 + 6) + 6 * (64 + 8 * 50)
    assert encoder_decoder_flops(b2b, rows=2, input_tokens=12, target_tokens=8) == pytest.approx(12 * enc + 8 * dec)


def test_peak_table() -> None:
    from es_zoo.flops import device_peak_tflops, peak_tflops

    names = {"NVIDIA H100 80GB HBM3": 989.0, "NVIDIA H200": 989.0, "NVIDIA H100 PCIe": 756.0,
             "NVIDIA A100-SXM4-80GB": 312.0, "NVIDIA A100 80GB PCIe": 312.0, "NVIDIA L40S": 362.0,
             "NVIDIA L4": 121.0, "NVIDIA A10": 125.0, "NVIDIA A10G": None, "NVIDIA H100 NVL": None,
             "NVIDIA L40": None, "NVIDIA GH200 480GB": None, "Tesla T4": None}
    assert {n: peak_tflops(n) for n in names} == names
    assert device_peak_tflops(torch.device("cpu")) is None and device_peak_tflops(torch.device("cpu"), 7) == 7.0


# ------------------------------------------------------------------------------------ two processes
_TWO_PROCESS_SCRIPT = '''
import json, os, sys
from pathlib import Path
import es_zoo.training as training
from tests.test_training_step import _pretrain

rank, root = int(os.environ["RANK"]), Path(sys.argv[1])
long = ["training.phases=[{max_steps: 30, seq_len: 32, global_batch_size: 8}]", "training.warmup_steps=2",
        "training.save_every=100"]
report = {}
# A SIGTERM seen by one process only (stop_after on rank 1): both stop at the next agreed check.
for name, log_every in (("stop_at_log", 5), ("stop_at_check", 25)):
    with training.stop_after(13 if rank == 1 else None):
        s = _pretrain(root / name, long + [f"training.log_every={log_every}", "training.trackers=[tensorboard]"])
    report[name] = [s["steps"], s["stopped_early"], s["tokens_seen"]]
# A NaN on one process only: every process stops before the next save, naming the step.
real, calls = training.train_step, {"n": 0}
def poisoned(*args, **kwargs):
    loss, correct, counts = real(*args, **kwargs)
    calls["n"] += 1
    return (loss * float("nan") if calls["n"] == 7 and rank == 1 else loss), correct, counts
training.train_step = poisoned
try:
    _pretrain(root / "nan", long + ["training.log_every=5", "training.save_every=4"])
except training.TrainingError as exc:
    report["nan"] = str(exc)
(root / f"rank{rank}.json").write_text(json.dumps(report))
'''


@pytest.mark.slow
def test_two_processes_agree_on_a_stop_and_a_nan_and_only_the_first_writes_trackers(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    from tests.conftest import REPO

    script = tmp_path / "two.py"
    script.write_text(_TWO_PROCESS_SCRIPT)
    env = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1", ACCELERATE_USE_CPU="1", PYTHONPATH=str(REPO))
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", str(script),
                           str(tmp_path)], env=env, capture_output=True, text=True, timeout=600, cwd=REPO)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    reports = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert reports[0] == reports[1]
    # interrupted after 13 on rank 1: agreed at the log step 15, or at the every-10-steps check (20)
    assert reports[0]["stop_at_log"] == [15, True, 15 * 8 * 32]
    assert reports[0]["stop_at_check"] == [20, True, 20 * 8 * 32]
    assert "loss became nan at step 7" in reports[0]["nan"] and "step-00000004" in reports[0]["nan"]
    assert [p.name for p in (tmp_path / "nan" / "checkpoints").iterdir()] == ["step-00000004"]
    for name in ("stop_at_log", "stop_at_check"):
        # events.out.tfevents.TIME.HOST.PID.N: one writing process
        events = list((tmp_path / name / "tracking").rglob("events.out.tfevents.*"))
        assert events and len({e.name.split(".")[-2] for e in events}) == 1, events
        assert [json.loads(x)["step"] for x in (tmp_path / name / "logs" / "train.jsonl").read_text().splitlines()] == (
            [5, 10, 15] if name == "stop_at_log" else [])
