"""FSDP and DeepSpeed (es_zoo.sharding): the plain model handed back for the export, the DeepSpeed
config checks and micro-batch marking, the shipped accelerate configs, and a real 2-process FSDP2 run
of es-zoo's loop on CPU.

DeepSpeed is not installed with es-zoo and is not run here: its checks are tested on config dicts and
its micro-batch handling against accelerate's own DeepSpeed backward with a stand-in engine (see
docs/install-gpu-tpu.md for the runs made by hand with DeepSpeed installed).
"""

from __future__ import annotations

import doctest
import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from es_zoo import sharding
from es_zoo.errors import TrainingError
from es_zoo.recipes import load_recipe
from tests.conftest import NO_DROPOUT, REPO
from tests.test_training_step import VOCAB, _beto, _mlm_data, _pretrain, _rows

ACCELERATE = REPO / "recipes" / "accelerate"


def test_module_doctests() -> None:
    assert doctest.testmod(sharding).failed == 0


# ------------------------------------------------------------------------------------ DeepSpeed config
def _paper(recipe: str):
    return load_recipe(recipe, "paper").training


@pytest.mark.parametrize("recipe, clip, micro", [("beto", 1.0, 128), ("barto", 0.1, 16), ("t5s", 1.0, 16),
                                                 ("bert2bert", 1.0, 16)])
def test_shipped_deepspeed_configs_take_the_recipe_values(recipe: str, clip: float, micro: int) -> None:
    for stage in (2, 3):
        config = json.loads((ACCELERATE / f"deepspeed_zero{stage}.json").read_text())
        assert config["gradient_accumulation_steps"] == 1 and config["zero_optimization"]["stage"] == stage
        fill = sharding.deepspeed_settings(config, _paper(recipe), "ds.json")
        assert fill == {"train_micro_batch_size_per_gpu": micro, "gradient_clipping": clip}
    zero3 = json.loads((ACCELERATE / "deepspeed_zero3.json").read_text())
    assert zero3["zero_optimization"]["stage3_gather_16bit_weights_on_model_save"] is True


def test_explicit_deepspeed_values_that_agree_are_kept() -> None:
    t = _paper("beto")  # phases with micro batches 128 and 32
    config = {"gradient_accumulation_steps": 1, "train_micro_batch_size_per_gpu": 32, "gradient_clipping": 1}
    assert sharding.deepspeed_settings(config, t, "ds.json") == {}
    no_clip = load_recipe("beto", "tiny", overrides=["training.max_grad_norm=null"]).training
    assert sharding.deepspeed_settings({"gradient_accumulation_steps": 1, "train_micro_batch_size_per_gpu": 8},
                                       no_clip, "ds.json") == {}  # no gradient_clipping: DeepSpeed does not clip
    assert sharding.deepspeed_settings({"gradient_clipping": "auto"}, no_clip, "ds.json")["gradient_clipping"] == 0.0


@pytest.mark.parametrize("change, said", [
    ({"gradient_accumulation_steps": 4}, "ds.json: gradient_accumulation_steps is 4; es-zoo needs 1"),
    ({"train_micro_batch_size_per_gpu": 7},
     "ds.json: train_micro_batch_size_per_gpu is 7 but the recipe's micro batch is 16"),
    ({"gradient_clipping": 1.0}, "ds.json: gradient_clipping is 1.0 but the recipe's training.max_grad_norm is 0.1"),
    ({"gradient_clipping": None}, "ds.json: no gradient_clipping (DeepSpeed then does not clip)"),
    ({"gradient_clipping": "lots"}, "ds.json: gradient_clipping must be a number"),
    ({"optimizer": {"type": "AdamW"}}, 'ds.json: remove the "optimizer" section'),
    ({"scheduler": {"type": "WarmupLR"}}, 'ds.json: remove the "scheduler" section'),
])
def test_deepspeed_configs_that_disagree_with_the_recipe_are_refused(change: dict, said: str) -> None:
    config = json.loads((ACCELERATE / "deepspeed_zero2.json").read_text())
    config.update(change)
    config = {k: v for k, v in config.items() if v is not None}
    with pytest.raises(TrainingError) as err:
        sharding.deepspeed_settings(config, _paper("barto"), "ds.json")
    assert said in str(err.value)


def test_every_loop_of_a_launch_is_checked_and_filled_from_the_users_file(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pretraining then fine-tunes in one launch: accelerate fills the "auto" keys in place when it builds
    an engine, so each loop starts again from the file as the user wrote it."""
    monkeypatch.setenv("ACCELERATE_DEEPSPEED_CONFIG_FILE", "my_ds.json")
    config = {"gradient_accumulation_steps": "auto", "train_micro_batch_size_per_gpu": "auto",
              "gradient_clipping": "auto", "train_batch_size": "auto", "zero_optimization": {"stage": 2}}
    plugin = SimpleNamespace(deepspeed_config=config)
    accelerator = SimpleNamespace(state=SimpleNamespace(deepspeed_plugin=plugin))
    sharding.configure_deepspeed(accelerator, _paper("barto"))
    assert config["train_micro_batch_size_per_gpu"] == 16 and config["gradient_clipping"] == 0.1
    assert config["gradient_accumulation_steps"] == 1
    config["train_batch_size"] = 16 * 8  # what accelerate writes while building the engine
    fine_tune = load_recipe("beto", "tiny", overrides=[
        "training.phases=[{max_steps: 10, seq_len: 32, global_batch_size: 8}]", "training.micro_batch_size=4",
        "training.max_grad_norm=1.0", "training.warmup_steps=1"]).training
    sharding.configure_deepspeed(accelerator, fine_tune)
    assert config["train_micro_batch_size_per_gpu"] == 4 and config["gradient_clipping"] == 1.0
    assert config["train_batch_size"] == "auto"
    plugin._es_zoo_user_config["gradient_clipping"] = 0.1  # as if the user had written 0.1
    with pytest.raises(TrainingError, match=r"my_ds.json: gradient_clipping is 0.1 but .*max_grad_norm is 1.0"):
        sharding.configure_deepspeed(accelerator, fine_tune)


# ------------------------------------------------------------------------------------ DeepSpeed step
class _Engine:
    """Stands in for DeepSpeed's engine behind accelerate's real DeepSpeedEngineWrapper: accumulates
    gradients over backward calls; ``step`` clips at ``gradient_clipping``, steps and zeroes, as DeepSpeed
    does at an accumulation boundary. Records what it was told."""

    def __init__(self, module: torch.nn.Module, optimizer: torch.optim.Optimizer, clip: float) -> None:
        self.module, self.optimizer, self.clip = module, optimizer, clip
        self.boundary, self.events = None, []

    def set_gradient_accumulation_boundary(self, is_boundary: bool) -> None:
        self.boundary = is_boundary

    def backward(self, loss: torch.Tensor, **kwargs) -> None:
        loss.backward()
        self.events.append(("backward", self.boundary))

    def step(self) -> None:
        assert self.boundary, "DeepSpeed steps only at an accumulation boundary"
        torch.nn.utils.clip_grad_norm_(self.module.parameters(), self.clip)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.events.append(("step", None))


def test_under_deepspeed_only_the_last_micro_batch_steps_and_accelerate_does_not_clip() -> None:
    """accelerate's real ``Accelerator.backward`` and ``DeepSpeedEngineWrapper`` (which steps the engine
    whenever ``sync_gradients`` is true), a stand-in engine: one optimizer step per es-zoo step, after the
    step's last micro-batch, with the same weights as the plain path."""
    from accelerate import Accelerator
    from accelerate.utils import DistributedType
    from accelerate.utils.deepspeed import DeepSpeedEngineWrapper, DeepSpeedOptimizerWrapper

    from es_zoo.modeling import SparseMLM, build_bert_mlm
    from es_zoo.training import BatchMaker, build_optimizer, train_step

    class DeepSpeedAccelerator(Accelerator):  # swapped in after __init__, which must not see DeepSpeed
        distributed_type = property(lambda self: DistributedType.DEEPSPEED)

        def no_sync(self, model):  # DeepSpeed's engine refuses no_sync under ZeRO-2/3
            raise AssertionError("no_sync under DeepSpeed")

        def clip_grad_norm_(self, *args, **kwargs):
            raise AssertionError("accelerate's clip_grad_norm_ under DeepSpeed (it does not clip)")

    cfg = _beto(NO_DROPOUT)  # phase 0: 4 micro-batches of 2 per step on one process
    t = cfg.training
    make = BatchMaker(cfg, _mlm_data(), 0, 1)

    def fresh() -> torch.nn.Module:
        torch.manual_seed(0)
        return SparseMLM(build_bert_mlm(cfg.model, vocab_size=VOCAB, pad_token_id=1))

    plain = fresh()
    plain_opt = build_optimizer(plain, t)
    for step in range(3):
        train_step(plain, plain_opt, make(step), Accelerator(), t)

    module = fresh()
    optimizer = build_optimizer(module, t)
    accelerator = Accelerator()
    accelerator.__class__ = DeepSpeedAccelerator
    engine = _Engine(module, optimizer, t.max_grad_norm)
    accelerator.deepspeed_engine_wrapped = DeepSpeedEngineWrapper(engine)
    wrapped_opt = DeepSpeedOptimizerWrapper(optimizer)  # accelerate's: step() and zero_grad() do nothing
    for step in range(3):
        engine.events.clear()
        train_step(module, wrapped_opt, make(step), accelerator, t)
        assert engine.events == [("backward", False)] * 3 + [("backward", True), ("step", None)]
        assert accelerator.sync_gradients  # put back for whatever runs next
    for a, b in zip(plain.parameters(), module.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert not torch.equal(fresh().model.bert.embeddings.word_embeddings.weight,
                           module.model.bert.embeddings.word_embeddings.weight)  # it did train


# ------------------------------------------------------------------------------------ plain copies
def _tiny_bart():
    from transformers import BartConfig, BartForConditionalGeneration

    return BartForConditionalGeneration(BartConfig(
        d_model=16, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2, decoder_attention_heads=2,
        encoder_ffn_dim=16, decoder_ffn_dim=16, vocab_size=50, max_position_embeddings=32))


def test_a_plain_model_is_rebuilt_from_a_full_state_dict_with_its_ties() -> None:
    from es_zoo.modeling import build_bert_mlm, build_t5

    bert = build_bert_mlm(_beto().model, vocab_size=VOCAB, pad_token_id=1)
    t5 = build_t5(load_recipe("t5s", "tiny", overrides=["model.d_model=16", "model.d_kv=8", "model.d_ff=16",
                                                          "model.num_layers=1", "model.num_decoder_layers=1",
                                                          "model.num_heads=2"]).model,
                  vocab_size=60, pad_token_id=0, eos_token_id=1)  # lm_head untied, as T5 v1.1
    for model, tied in ((bert, ("cls.predictions.decoder.weight", "bert.embeddings.word_embeddings.weight")),
                        (t5, ("encoder.embed_tokens.weight", "shared.weight"))):
        skeleton = sharding.parameterless_copy(model)
        assert all(p.is_meta for p in skeleton.parameters())
        assert not any(p.is_meta for p in model.parameters())
        state = {k: v.clone() + 1 for k, v in model.state_dict().items()}  # "trained" weights
        rebuilt = sharding.load_full_state(skeleton, state, torch.device("cpu"))
        assert type(rebuilt) is type(model) and rebuilt.config.to_dict() == model.config.to_dict()
        got = rebuilt.state_dict()
        assert got.keys() == state.keys() and all(torch.equal(got[k], state[k]) for k in state)
        assert rebuilt.get_parameter(tied[0]) is rebuilt.get_parameter(tied[1])
    assert t5.lm_head.weight is not t5.shared.weight
    rebuilt_t5 = sharding.load_full_state(sharding.parameterless_copy(t5), t5.state_dict(), "cpu")
    assert rebuilt_t5.lm_head.weight is not rebuilt_t5.shared.weight
    # A state dict that names a tied parameter once (as some gathers do) fills both names.
    one = {k: v for k, v in bert.state_dict().items() if k != "cls.predictions.decoder.weight"}
    again = sharding.load_full_state(sharding.parameterless_copy(bert), one, "cpu")
    assert torch.equal(again.cls.predictions.decoder.weight, bert.bert.embeddings.word_embeddings.weight)
    with pytest.raises(TrainingError, match="lack bert.embeddings.LayerNorm.weight"):
        sharding.load_full_state(sharding.parameterless_copy(bert),
                                 {k: v for k, v in one.items() if k != "bert.embeddings.LayerNorm.weight"}, "cpu")
    with pytest.raises(TrainingError, match="tensors the model does not: extra"):
        sharding.load_full_state(sharding.parameterless_copy(bert), {**bert.state_dict(), "extra": torch.ones(1)},
                                 "cpu")


# ------------------------------------------------------------------------------------ shipped configs
def _launch_env(config: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    """The environment `accelerate launch --config_file CONFIG` gives its workers (accelerate's own
    config loader and launcher code; nothing is started)."""
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser
    from accelerate.utils.launch import prepare_deepspeed_cmd_env, prepare_multi_gpu_env

    args = launch_command_parser().parse_args(["--config_file", str(config), "train.py"])
    args, defaults, mixed_from_config = _validate_launch_command(args)
    if args.use_deepspeed:  # as accelerate's launch_command does before its DeepSpeed launcher
        fields = list(defaults.deepspeed_config) + (["mixed_precision"] if mixed_from_config else [])
        args.deepspeed_fields_from_accelerate_config = ",".join(fields)
        env = prepare_deepspeed_cmd_env(args)[1]
    else:
        env = prepare_multi_gpu_env(args)
    for key, value in env.items():
        if key.startswith(("FSDP_", "ACCELERATE_")):
            monkeypatch.setenv(key, value)
    return env


def test_the_fsdp_config_loads_in_accelerate_and_wraps_each_familys_layers(monkeypatch: pytest.MonkeyPatch) -> None:
    from accelerate.utils import FullyShardedDataParallelPlugin
    from accelerate.utils.fsdp_utils import fsdp2_prepare_auto_wrap_policy
    from transformers import T5Config, T5ForConditionalGeneration

    from es_zoo.modeling import Seq2SeqLoss, SparseMLM, build_bert_mlm

    env = _launch_env(ACCELERATE / "fsdp.yaml", monkeypatch)
    assert env["ACCELERATE_USE_FSDP"] == "true" and "FSDP_TRANSFORMER_CLS_TO_WRAP" not in env
    plugin = FullyShardedDataParallelPlugin()
    assert plugin.fsdp_version == 2 and plugin.reshard_after_forward is True
    assert plugin.cpu_ram_efficient_loading is False and plugin.state_dict_type.name == "SHARDED_STATE_DICT"
    accelerator = SimpleNamespace(state=SimpleNamespace(fsdp_plugin=plugin))
    t5 = T5ForConditionalGeneration(T5Config(d_model=16, d_kv=8, d_ff=16, num_layers=1, num_heads=2, vocab_size=40))
    bert = build_bert_mlm(_beto().model, vocab_size=VOCAB, pad_token_id=1)
    # One plugin for pretraining and the fine-tunes after it: es-zoo renames the classes for each model.
    for loss, names in ((SparseMLM(bert), ["BertLayer"]),
                        (Seq2SeqLoss(_tiny_bart()), ["BartEncoderLayer", "BartDecoderLayer"]),
                        (Seq2SeqLoss(t5), ["T5Block"])):
        sharding.default_fsdp_layers(accelerator, loss.model)
        assert plugin.transformer_cls_names_to_wrap == names
        policy = fsdp2_prepare_auto_wrap_policy(plugin, loss)  # what accelerate's prepare does with it
        assert sorted({type(m).__name__ for m in loss.modules() if policy(m)}) == sorted(names)
    # Why one list cannot serve every family: accelerate refuses a class the model does not have.
    plugin.transformer_cls_names_to_wrap = ["BertLayer", "BartEncoderLayer", "BartDecoderLayer", "T5Block"]
    plugin.__dict__.pop("_es_zoo_layers")
    with pytest.raises(ValueError, match="Could not find the transformer layer class BartEncoderLayer"):
        fsdp2_prepare_auto_wrap_policy(plugin, SparseMLM(bert))
    sharding.default_fsdp_layers(accelerator, bert)  # a list the user set is kept
    assert plugin.transformer_cls_names_to_wrap[-1] == "T5Block"


@pytest.mark.parametrize("stage", [2, 3])
def test_the_deepspeed_configs_load_in_accelerate_and_pass_the_checks(stage: int,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from accelerate.utils import DeepSpeedPlugin

    env = _launch_env(ACCELERATE / f"deepspeed_zero{stage}.yaml", monkeypatch)
    assert env["ACCELERATE_USE_DEEPSPEED"] == "true"
    monkeypatch.chdir(REPO)  # the yaml names the json relative to the repository root
    for recipe, precision in (("beto", "bf16"), ("barto", "fp16"), ("t5s", "bf16")):
        plugin = DeepSpeedPlugin()  # reads ACCELERATE_DEEPSPEED_CONFIG_FILE, as in a launched worker
        plugin.set_mixed_precision(load_recipe(recipe, "paper").training.mixed_precision)
        config = plugin.deepspeed_config
        assert config["zero_optimization"]["stage"] == stage
        other = "fp16" if precision == "bf16" else "bf16"
        assert config[precision]["enabled"] is True and config[other]["enabled"] is False  # "auto": the recipe's
        fill = sharding.deepspeed_settings(config, _paper(recipe), env["ACCELERATE_DEEPSPEED_CONFIG_FILE"])
        assert fill["gradient_clipping"] == _paper(recipe).max_grad_norm


# ------------------------------------------------------------------------------------ FSDP2, 2 processes
_FSDP_SCRIPT = '''
import json, os, sys
from pathlib import Path
import torch
from accelerate import Accelerator
from accelerate.state import PartialState
from accelerate.utils import DistributedType, FullyShardedDataParallelPlugin
from es_zoo.modeling import build_bert_mlm, save_model
from es_zoo.training import pretrain, stop_after
from tests.conftest import NO_DROPOUT
from tests.test_training_step import VOCAB, _beto, _mlm_data


def cpu_fsdp2_accelerator():
    """accelerate turns FSDP on only for GPU-type devices (on a CPU its config silently gives DDP), so
    FSDP2 is switched on by hand in accelerate's shared state. No layer classes are named: es-zoo picks
    BertLayer (es_zoo.sharding.default_fsdp_layers)."""
    accelerator = Accelerator(cpu=True)
    accelerator.state.fsdp_plugin = FullyShardedDataParallelPlugin(
        fsdp_version=2, reshard_after_forward=True, auto_wrap_policy="transformer_based_wrap",
        state_dict_type="SHARDED_STATE_DICT", cpu_ram_efficient_loading=False)
    accelerator.state.distributed_type = DistributedType.FSDP
    PartialState._shared_state["distributed_type"] = DistributedType.FSDP
    return accelerator


def run(name, **kwargs):
    accelerator = cpu_fsdp2_accelerator()
    cfg = _beto(NO_DROPOUT)
    torch.manual_seed(0)
    model = build_bert_mlm(cfg.model, vocab_size=VOCAB, pad_token_id=1)
    summary = pretrain(cfg, model, _mlm_data(), root / name, accelerator, **kwargs)
    model = summary["model"]
    units = sorted({type(m).__name__ for m in accelerator._models[-1].modules() if type(m).__name__.startswith("FSDP")})
    report = {"steps": summary["steps"], "stopped_early": summary["stopped_early"], "units": units,
              "model": None if model is None else type(model).__name__}
    if model is not None:
        report["tied"] = model.cls.predictions.decoder.weight is model.bert.embeddings.word_embeddings.weight
        report["sharded"] = any(type(p).__name__ == "DTensor" for p in model.parameters())
        save_model(model, root / name / "export")
    return report


root, launch, rank = Path(sys.argv[1]), sys.argv[2], int(os.environ["RANK"])
if launch == "first":
    whole = run("whole")
    with stop_after(5):
        report = {"whole": whole, "interrupted": run("interrupted")}
else:
    report = {"resumed": run("interrupted", resume=True)}
(root / f"{launch}.rank{rank}.json").write_text(json.dumps(report))
'''


@pytest.mark.slow
def test_fsdp2_on_two_cpu_processes_trains_exports_and_resumes_like_one_process(tmp_path: Path) -> None:
    """es-zoo's own loop (build_bert_mlm, SparseMLM, BatchMaker, train_loop, the new export path) under
    FSDP2 with 2 CPU processes (gloo), against one plain process.

    accelerate does not run FSDP on a CPU from a config file: with use_cpu it starts one process or
    silently runs DDP (it enables FSDP only for GPU-type devices). The script therefore patches
    accelerate's state to FSDP2 by hand (distributed_type and fsdp_plugin), as the GPU configs would set
    it. Two launches: the first trains 9 steps whole, and 5 steps of another run that stops with a
    checkpoint; the second resumes that run to the end."""
    script = tmp_path / "fsdp2.py"
    script.write_text(_FSDP_SCRIPT)
    env = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    env.pop("ACCELERATE_USE_CPU", None)
    for launch in ("first", "second"):
        done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", str(script),
                               str(tmp_path), launch], env=env, capture_output=True, text=True, timeout=600, cwd=REPO)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    first = [json.loads((tmp_path / f"first.rank{r}.json").read_text()) for r in (0, 1)]
    second = [json.loads((tmp_path / f"second.rank{r}.json").read_text()) for r in (0, 1)]
    whole, resumed = first[0]["whole"], second[0]["resumed"]
    assert whole["units"] == ["FSDPBertLayer", "FSDPSparseMLM"]  # one FSDP unit per layer, and the root
    assert whole["model"] == resumed["model"] == "BertForMaskedLM" and whole["tied"] and not whole["sharded"]
    assert first[1]["whole"]["model"] is None  # the other process takes part in the gather, gets nothing
    assert first[0]["interrupted"] == {"steps": 5, "stopped_early": True, "units": whole["units"], "model": None}
    assert resumed["steps"] == 9 and not resumed["stopped_early"]
    ckpt = tmp_path / "interrupted" / "checkpoints" / "step-00000009"
    files = {p.name for p in ckpt.iterdir()}
    assert files >= {"pytorch_model_fsdp_0", "optimizer_0", "random_states_1.pkl", "COMPLETE"}  # not safetensors
    assert (ckpt / "pytorch_model_fsdp_0" / ".metadata").is_file() and "model.safetensors" not in files

    one = _pretrain(tmp_path / "one", NO_DROPOUT)  # one plain process, same recipe and data
    losses = {name: [r["loss"] for r in _rows(tmp_path / name)] for name in ("one", "whole", "interrupted")}
    np.testing.assert_allclose(losses["whole"], losses["one"], rtol=1e-4)
    assert losses["interrupted"] == losses["whole"]  # the resumed run continues exactly (steps 1-5, then 6-9)

    from transformers import AutoModelForMaskedLM

    reference = one["model"].state_dict()
    for name in ("whole", "interrupted"):
        exported = AutoModelForMaskedLM.from_pretrained(tmp_path / name / "export").state_dict()
        assert exported.keys() == reference.keys()
        for key, value in reference.items():
            torch.testing.assert_close(exported[key], value, rtol=1e-3, atol=1e-5, msg=key)
    torch.manual_seed(0)
    from es_zoo.modeling import build_bert_mlm

    initial = build_bert_mlm(_beto(NO_DROPOUT).model, vocab_size=VOCAB, pad_token_id=1).state_dict()
    assert not torch.allclose(initial["bert.encoder.layer.0.attention.self.query.weight"],
                              reference["bert.encoder.layer.0.attention.self.query.weight"], atol=1e-4)  # it trained
