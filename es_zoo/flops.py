"""Model FLOPs of a training step, and the peak throughput of a device: the model FLOPs utilisation (MFU).

MFU = (model FLOPs a step needs / seconds it took) / peak FLOP/s of the hardware. The FLOPs are the
model's, counted from its shape and the tokens it saw, not what the kernels happened to execute
(recomputation, padding and fused-kernel overheads are not counted), as in PaLM (Chowdhery et al.,
2022, appendix B) and Kaplan et al. (2020):

- A matrix multiply of ``n`` tokens by a ``k x m`` weight is ``2 n k m`` FLOPs forward; the backward
  pass computes gradients for the input and for the weight, twice the forward. A training step is
  therefore **6 FLOPs per weight per token** ("6N").
- Attention scores ``Q K^T`` and the weighted sum ``A V`` are ``2 x 2 x ctx x d_attn`` FLOPs per token
  and layer forward, so **12 x layers x d_attn x ctx** per token for training (``d_attn`` = heads x
  head size = the hidden size for BERT and BART; ``ctx`` = the length attended over). Causal masks are
  not halved (PaLM does not either).
- Only matrix multiplies are counted. Embedding lookups, biases, layer norms, activations, softmax and
  the loss are O(hidden) per token and left out, which keeps the count a function of the shape alone.
- Tokens are real tokens: padding does not count (it is work the hardware does, not the model).

Lengths: the loop passes the step's global counts and its number of sequences (``rows``), and the
context length is the mean tokens per sequence. That is exact for BERT (every packed sequence is
full) and T5 (fixed input and target lengths), and a slight under-count of the attention term for
BART's corrupted inputs, whose lengths vary a little.

Example:
    >>> from transformers import BertConfig
    >>> c = BertConfig(hidden_size=4, num_hidden_layers=1, intermediate_size=8, vocab_size=10)
    >>> bert_mlm_flops_per_token(c, seq_len=6, masked_share=0.5)
    1224.0
    >>> peak_tflops("NVIDIA H100 80GB HBM3"), peak_tflops("NVIDIA A10G")
    (989.0, None)
"""

from __future__ import annotations

import re
from typing import Any

# Dense (no 2:4 sparsity) bf16 tensor-core peak TFLOP/s of one device, from NVIDIA's datasheets (which
# print the sparse figure, twice these): H100 SXM 1,979 -> 989; H100 PCIe 1,513 -> 756; H200 = H100 SXM;
# A100 (SXM and PCIe) 312; L40S 362; L4 242 -> 121; A10 125. First match wins, case-insensitive, on
# torch.cuda.get_device_name(). None: the device is known but has no verified figure here (the NVL
# variants run at other clocks; AWS's A10G is not the A10 and NVIDIA publishes no dense bf16 figure for
# it), so the log leaves mfu out instead of guessing; training.peak_tflops supplies one.
PEAK_TFLOPS: tuple[tuple[str, float | None], ...] = (
    (r"\bH200\b.*\bNVL\b", None),
    (r"\bH200\b", 989.0),
    (r"\bH100\b.*\bNVL\b", None),
    (r"\bH100\b.*\bPCIe\b", 756.0),
    (r"\bH100\b", 989.0),
    (r"\bA100\b", 312.0),
    (r"\bL40S\b", 362.0),
    (r"\bL4\b", 121.0),
    (r"\bA10G\b", None),
    (r"\bA10\b", 125.0),
)


def peak_tflops(device_name: str) -> float | None:
    """Dense bf16 peak TFLOP/s of a CUDA device from its name, or None when not in :data:`PEAK_TFLOPS`.

    Example:
        >>> peak_tflops("NVIDIA A100-SXM4-80GB"), peak_tflops("NVIDIA H100 PCIe"), peak_tflops("Tesla T4")
        (312.0, 756.0, None)
    """
    for pattern, value in PEAK_TFLOPS:
        if re.search(pattern, device_name, flags=re.IGNORECASE):
            return value
    return None


def device_peak_tflops(device: Any, override: float | None = None) -> float | None:
    """The peak to measure MFU against: ``override`` (``training.peak_tflops``) when given, else the
    table's figure for a CUDA device, else None (no MFU in the log).

    Example:
        >>> import torch
        >>> device_peak_tflops(torch.device("cpu")), device_peak_tflops(torch.device("cpu"), 100.0)
        (None, 100.0)
    """
    if override is not None:
        return float(override)
    if getattr(device, "type", None) != "cuda":
        return None
    import torch

    return peak_tflops(torch.cuda.get_device_name(device))


# -------------------------------------------------------------------------------------------- BERT
def _bert_dims(config: Any) -> tuple[int, int, int, int]:
    return config.hidden_size, config.num_hidden_layers, config.intermediate_size, config.vocab_size


def bert_body_weights(config: Any) -> int:
    """Matrix weights a BERT token passes through, embeddings and the MLM head excluded:
    per layer Q, K, V, O (``4 h^2``) and the two feed-forward matrices (``2 h i``).

    Example:
        >>> from transformers import BertConfig
        >>> bert_body_weights(BertConfig(hidden_size=768, num_hidden_layers=12, intermediate_size=3072))
        84934656
    """
    h, layers, inter, _ = _bert_dims(config)
    return layers * (4 * h * h + 2 * h * inter)


def bert_mlm_head_weights(config: Any) -> int:
    """Weights of BERT's MLM head at one masked position: the transform (``h^2``) and the projection
    onto the vocabulary (``h V``, tied to the input embeddings but still a matrix multiply).

    Example:
        >>> from transformers import BertConfig
        >>> bert_mlm_head_weights(BertConfig(hidden_size=4, vocab_size=10))
        56
    """
    h, _, _, vocab = _bert_dims(config)
    return h * h + h * vocab


def bert_mlm_flops_per_token(config: Any, seq_len: Any, masked_share: Any) -> Any:
    """Training FLOPs per input token of a ``BertForMaskedLM`` trained the es-zoo way (the MLM head
    runs at the masked positions only, ``SparseMLM``)::

        6 x body weights + 12 x layers x hidden x seq_len + masked_share x 6 x head weights

    Example:
        >>> from transformers import BertConfig
        >>> c = BertConfig(hidden_size=4, num_hidden_layers=1, intermediate_size=8, vocab_size=10)
        >>> # 6 * (4*16 + 2*4*8) + 12*1*4*6 + 0.5 * 6 * (16 + 40)
        >>> bert_mlm_flops_per_token(c, seq_len=6, masked_share=0.5)
        1224.0
    """
    h, layers, _, _ = _bert_dims(config)
    return (6.0 * bert_body_weights(config) + 12.0 * layers * h * seq_len
            + masked_share * 6.0 * bert_mlm_head_weights(config))


def bert_mlm_flops(config: Any, *, rows: Any, input_tokens: Any, masked_tokens: Any) -> Any:
    """Training FLOPs of one masked-LM step over ``rows`` sequences holding ``input_tokens`` tokens,
    ``masked_tokens`` of them predicted (numbers or 0-d tensors: only arithmetic is used, so the loop
    can pass device tensors without waiting for them).

    Example:
        >>> from transformers import BertConfig
        >>> c = BertConfig(hidden_size=4, num_hidden_layers=1, intermediate_size=8, vocab_size=10)
        >>> bert_mlm_flops(c, rows=2, input_tokens=12, masked_tokens=6) == 12 * 1224.0
        True
    """
    h, layers, _, _ = _bert_dims(config)
    seq_len = input_tokens / rows
    return ((6.0 * bert_body_weights(config) + 12.0 * layers * h * seq_len) * input_tokens
            + 6.0 * bert_mlm_head_weights(config) * masked_tokens)


# ---------------------------------------------------------------------------- encoder-decoders
def _side(d_model: int, d_attn: int, layers: int, ffn_weights: int) -> dict:
    return {"d": d_model, "attn": d_attn, "layers": layers, "ffn": ffn_weights}


def encoder_decoder_dims(config: Any) -> tuple[dict, dict, int]:
    """(encoder, decoder, LM-head weights) of a BART, T5 or BERT2BERT config: per side the model width
    ``d``, the attention width ``attn`` (heads x head size), the layers and the feed-forward weights
    per layer (``2 d ff``; ``3 d ff`` for T5 v1.1's gated GELU).

    Example:
        >>> from transformers import T5Config
        >>> enc, dec, head = encoder_decoder_dims(T5Config(d_model=8, d_kv=2, num_heads=2, d_ff=16, num_layers=1,
        ...                                                vocab_size=50, feed_forward_proj="gated-gelu"))
        >>> enc, head
        ({'d': 8, 'attn': 4, 'layers': 1, 'ffn': 384}, 400)
    """
    kind = config.model_type
    if kind == "bart":
        d = config.d_model
        return (_side(d, d, config.encoder_layers, 2 * d * config.encoder_ffn_dim),
                _side(d, d, config.decoder_layers, 2 * d * config.decoder_ffn_dim),
                d * config.vocab_size)
    if kind in ("t5", "mt5"):
        d, attn = config.d_model, config.num_heads * config.d_kv
        matrices = 3 if getattr(config, "is_gated_act", "gated" in str(config.feed_forward_proj)) else 2
        decoder_layers = config.num_decoder_layers or config.num_layers
        return (_side(d, attn, config.num_layers, matrices * d * config.d_ff),
                _side(d, attn, decoder_layers, matrices * d * config.d_ff),
                d * config.vocab_size)
    if kind == "encoder-decoder":
        enc, dec = config.encoder, config.decoder
        head = dec.hidden_size * dec.hidden_size + dec.hidden_size * dec.vocab_size  # BERT's transform + projection
        return (_side(enc.hidden_size, enc.hidden_size, enc.num_hidden_layers, 2 * enc.hidden_size * enc.intermediate_size),
                _side(dec.hidden_size, dec.hidden_size, dec.num_hidden_layers, 2 * dec.hidden_size * dec.intermediate_size),
                head)
    raise ValueError(f"no FLOPs formula for model_type {kind!r} (known: bart, t5, encoder-decoder)")


def encoder_decoder_flops(config: Any, *, rows: Any, input_tokens: Any, target_tokens: Any) -> Any:
    """Training FLOPs of one teacher-forced step of an encoder-decoder over ``rows`` pairs holding
    ``input_tokens`` encoder tokens and ``target_tokens`` decoder tokens (numbers or 0-d tensors).

    Per encoder token: ``6 x (4 d a + ffn) x encoder layers + 12 x encoder layers x a x S_enc``, plus the
    cross-attention keys and values every decoder layer computes from it (``6 x 2 d_enc a_dec``).
    Per decoder token: ``6 x (4 d a + 2 d a + ffn) x decoder layers`` (self-attention, cross-attention
    queries and output, feed-forward) ``+ 12 x decoder layers x a x (S_dec + S_enc)`` (attention over
    the target prefix and over the input) ``+ 6 x LM head weights``. ``S_enc`` and ``S_dec`` are the mean
    lengths ``input_tokens / rows`` and ``target_tokens / rows``.

    Example:
        >>> from transformers import BartConfig
        >>> c = BartConfig(d_model=4, encoder_layers=1, decoder_layers=1, encoder_ffn_dim=8, decoder_ffn_dim=8,
        ...                encoder_attention_heads=1, decoder_attention_heads=1, vocab_size=10)
        >>> encoder_decoder_flops(c, rows=1, input_tokens=5, target_tokens=3)
        10752.0
    """
    enc, dec, head = encoder_decoder_dims(config)
    s_enc, s_dec = input_tokens / rows, target_tokens / rows
    per_input = (6.0 * enc["layers"] * (4 * enc["d"] * enc["attn"] + enc["ffn"])
                 + 12.0 * enc["layers"] * enc["attn"] * s_enc
                 + 6.0 * dec["layers"] * 2 * enc["d"] * dec["attn"])
    per_target = (6.0 * dec["layers"] * (4 * dec["d"] * dec["attn"] + 2 * dec["d"] * dec["attn"] + dec["ffn"])
                  + 12.0 * dec["layers"] * dec["attn"] * (s_dec + s_enc)
                  + 6.0 * head)
    return per_input * input_tokens + per_target * target_tokens


def training_flops(config: Any, *, rows: Any, input_tokens: Any, target_tokens: Any) -> Any:
    """Training FLOPs of one step for any model es-zoo pretrains, chosen by ``config.model_type``:
    the masked LM for ``bert`` (``target_tokens`` = masked tokens), the encoder-decoder count otherwise.

    Example:
        >>> from transformers import BertConfig
        >>> c = BertConfig(hidden_size=4, num_hidden_layers=1, intermediate_size=8, vocab_size=10)
        >>> training_flops(c, rows=2, input_tokens=12, target_tokens=6)
        14688.0
    """
    if config.model_type == "bert":
        return bert_mlm_flops(config, rows=rows, input_tokens=input_tokens, masked_tokens=target_tokens)
    return encoder_decoder_flops(config, rows=rows, input_tokens=input_tokens, target_tokens=target_tokens)


def achieved_tflops(flops: float, seconds: float, devices: int = 1) -> float:
    """Model TFLOP/s per device: ``flops`` done by ``devices`` devices together in ``seconds``.

    Example:
        >>> achieved_tflops(8e12, 2.0, devices=2)
        2.0
    """
    return flops / max(seconds, 1e-9) / max(devices, 1) / 1e12
