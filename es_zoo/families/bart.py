"""BARTO's family: BART with text infilling + sentence permutation (Lewis et al. 2020; Araujo et al. 2024),
``model.architecture: bart``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from es_zoo.families import register
from es_zoo.families.seq2seq import SEQ2SEQ_BIB, Seq2SeqFamily, denoising_data, denoising_text
from es_zoo.recipes import check_model_sizes

BART_BIB = """@inproceedings{lewis-etal-2020-bart,
  title     = {{BART}: Denoising Sequence-to-Sequence Pre-training for Natural Language Generation, Translation, and Comprehension},
  author    = {Lewis, Mike and Liu, Yinhan and Goyal, Naman and Ghazvininejad, Marjan and Mohamed, Abdelrahman and Levy, Omer and Stoyanov, Veselin and Zettlemoyer, Luke},
  booktitle = {Proceedings of ACL 2020},
  year      = {2020}
}"""


@dataclass
class BartModelConfig:
    """BART encoder-decoder numbers (names as in transformers' BartConfig)."""

    architecture: Literal["bart"] = "bart"
    d_model: int = 768
    encoder_layers: int = 6
    decoder_layers: int = 6
    encoder_attention_heads: int = 12
    decoder_attention_heads: int = 12
    encoder_ffn_dim: int = 3072
    decoder_ffn_dim: int = 3072
    max_position_embeddings: int = 1024
    activation_function: Literal["gelu", "relu", "gelu_new"] = "gelu"
    dropout: float = 0.1
    attention_dropout: float = 0.0
    activation_dropout: float = 0.0
    init_std: float = 0.02
    scale_embedding: bool = False
    # Attention kernel, passed to transformers (``attn_implementation``): sdpa (PyTorch's fused
    # scaled-dot-product attention, transformers 5's default for this model), eager (the reference
    # matmul + softmax), flex_attention (torch>=2.5) or flash_attention_2 (needs the flash-attn package
    # and a CUDA GPU). Not saved in config.json: a published model loads with transformers' default.
    attn_implementation: Literal["sdpa", "eager", "flex_attention", "flash_attention_2"] = "sdpa"

    def __post_init__(self) -> None:
        check_model_sizes(self)
        for heads in (self.encoder_attention_heads, self.decoder_attention_heads):
            if self.d_model % heads:
                raise ValueError(f"d_model ({self.d_model}) must be divisible by the attention heads ({heads})")
        for name in ("dropout", "attention_dropout", "activation_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name} must be in [0, 1)")


class Bart(Seq2SeqFamily):
    name = "bart"
    model_config = BartModelConfig
    tokenizer_kind = "byte_level_bpe"
    objective_kind = "bart_denoising"
    loss_label = "training loss (text infilling + sentence permutation)"
    sentence_starts = True
    fsdp_layers = ("BartEncoderLayer", "BartDecoderLayer")

    def objective_data(self, cfg: Any, tokenizer: Any, streams: dict) -> Any:
        eos = tokenizer.eos_token_id  # BART's decoder starts from </s>
        return denoising_data(cfg, tokenizer, streams, "bart", bos=tokenizer.bos_token_id, eos=eos, start=eos)

    def build_model(self, cfg: Any, tokenizer: Any, run_dir: Any) -> Any:
        from es_zoo.modeling import build_bart  # lazy: the family registry loads without torch

        return build_bart(cfg.model, vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id,
                          bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)

    def texts(self, cfg: Any, results: dict, params: str) -> tuple[str, str, list[str]]:
        m = cfg.config.model
        return (f"BART {m.encoder_layers}+{m.decoder_layers} layers x {m.d_model} "
                f"({m.encoder_attention_heads} heads, FFN {m.encoder_ffn_dim}), {params}",
                denoising_text(cfg.config.objective), [SEQ2SEQ_BIB, BART_BIB])


register(Bart())
