"""T5S's family: T5 v1.1 with span corruption (Raffel et al. 2020; Araujo et al. 2024),
``model.architecture: t5``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from es_zoo.families import register
from es_zoo.families.seq2seq import SEQ2SEQ_BIB, Seq2SeqFamily
from es_zoo.recipes import check_model_sizes

T5_BIB = """@article{raffel2020t5,
  title   = {Exploring the Limits of Transfer Learning with a Unified Text-to-Text Transformer},
  author  = {Raffel, Colin and Shazeer, Noam and Roberts, Adam and Lee, Katherine and Narang, Sharan and Matena, Michael and Zhou, Yanqi and Li, Wei and Liu, Peter J.},
  journal = {Journal of Machine Learning Research},
  volume  = {21},
  number  = {140},
  year    = {2020}
}"""


@dataclass
class T5ModelConfig:
    """T5 v1.1 numbers (names as in transformers' T5Config): gated-GELU, untied embeddings."""

    architecture: Literal["t5"] = "t5"
    d_model: int = 768
    d_kv: int = 64
    d_ff: int = 2048
    num_layers: int = 12
    num_decoder_layers: int = 12
    num_heads: int = 12
    feed_forward_proj: Literal["gated-gelu", "relu", "gated-relu", "gelu"] = "gated-gelu"
    dropout_rate: float = 0.0  # T5 v1.1 turns dropout off in pretraining
    relative_attention_num_buckets: int = 32
    relative_attention_max_distance: int = 128
    tie_word_embeddings: bool = False  # T5 v1.1 unties the input and output embeddings
    layer_norm_epsilon: float = 1e-6
    initializer_factor: float = 1.0
    # Attention kernel, passed to transformers (``attn_implementation``): sdpa (PyTorch's fused
    # scaled-dot-product attention, transformers 5's default for this model), eager (the reference
    # matmul + softmax), flex_attention (torch>=2.5) or flash_attention_2 (needs the flash-attn package
    # and a CUDA GPU). Not saved in config.json: a published model loads with transformers' default.
    attn_implementation: Literal["sdpa", "eager", "flex_attention", "flash_attention_2"] = "sdpa"

    def __post_init__(self) -> None:
        check_model_sizes(self)
        if not 0.0 <= self.dropout_rate < 1.0:
            raise ValueError("dropout_rate must be in [0, 1)")
        if self.attn_implementation == "flash_attention_2":
            # T5 adds a relative-position bias to the attention scores, which FlashAttention 2 cannot take.
            raise ValueError("attn_implementation 'flash_attention_2' is not supported by T5 in transformers "
                             "(its attention adds a position bias); use sdpa, eager or flex_attention")
        if min(self.d_model, self.d_kv, self.d_ff, self.num_layers, self.num_decoder_layers, self.num_heads) < 1:
            raise ValueError("model sizes must be >= 1")


class T5(Seq2SeqFamily):
    name = "t5"
    model_config = T5ModelConfig
    tokenizer_kind = "sentencepiece_unigram"
    objective_kind = "span_corruption"
    loss_label = "training loss (span corruption)"
    fsdp_layers = ("T5Block",)
    usage = ("inputs = tokenizer(\"El perro <extra_id_0> en el jardín.\", return_tensors=\"pt\")\n"
             "print(tokenizer.decode(model.generate(**inputs, max_new_tokens=16)[0]))")
    corrupted = "span-corrupted"

    def check(self, preset: Any) -> None:
        if preset.training.mixed_precision == "fp16":
            raise ValueError(
                "T5 must not train in fp16: its activations overflow and the loss becomes NaN (a known "
                "T5 problem); use training.mixed_precision=bf16 (GPU/TPU) or no"
            )

    def stream_tokens_per_sequence(self, cfg: Any, seq_len: int) -> int:
        from es_zoo.seq2seq_batches import block_length  # lazy (as below): the family registry loads without torch

        return block_length("t5", seq_len, cfg.objective)  # the raw length span corruption shortens to seq_len

    def objective_data(self, cfg: Any, tokenizer: Any, streams: dict) -> Any:
        from es_zoo.seq2seq_batches import Seq2SeqData
        from es_zoo.tokenization import sentinel_ids

        first, count = sentinel_ids(tokenizer)
        return Seq2SeqData(
            family="t5", stream=streams["train"], sentence_starts=None, pad_id=tokenizer.pad_token_id,
            eos_id=tokenizer.eos_token_id, bos_id=None, decoder_start_id=tokenizer.pad_token_id,
            sentinel_start=first, num_sentinels=count,
        )

    def build_model(self, cfg: Any, tokenizer: Any, run_dir: Any) -> Any:
        from es_zoo.modeling import build_t5

        return build_t5(cfg.model, vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id,
                        eos_token_id=tokenizer.eos_token_id)

    def texts(self, cfg: Any, results: dict, params: str) -> tuple[str, str, list[str]]:
        m, o = cfg.config.model, cfg.config.objective
        return (f"T5 v1.1 {m.num_layers}+{m.num_decoder_layers} layers x {m.d_model} (d_ff {m.d_ff}, "
                f"{m.feed_forward_proj}, {m.num_heads} heads), {params}",
                f"T5 span corruption: {o.noise_density:.0%} of the tokens in spans of mean length "
                f"{o.mean_noise_span_length:g}, one sentinel per span", [SEQ2SEQ_BIB, T5_BIB])


register(T5())
