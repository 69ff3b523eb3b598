"""The training-step benchmarks run against the current API: both scripts at --size tiny on the CPU, as a
user runs them (subprocesses), print their ratio lines and write valid JSON."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
RATIO = re.compile(r"^ratio es-zoo / transformers tokens/s[^:]*: (\d+\.\d+)x$", re.MULTILINE)


@pytest.mark.slow
def test_step_benchmarks_run_on_cpu(tmp_path: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
           "CUDA_VISIBLE_DEVICES": ""}
    common = ["--size", "tiny", "--device", "cpu", "--steps", "2", "--warmup", "1"]
    runs = {
        "bert": [sys.executable, str(REPO / "benchmarks" / "bench_gpu_bert.py"), *common, "--json", str(tmp_path / "bert.json")],
        "seq2seq": [sys.executable, str(REPO / "benchmarks" / "bench_gpu_seq2seq.py"), *common,
                    "--json", str(tmp_path / "seq2seq.json")],
    }
    # Both at once (one torch thread each): the imports dominate and use one core each.
    procs = {k: subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for k, cmd in runs.items()}
    outputs = {}
    try:
        for k, p in procs.items():
            outputs[k] = p.communicate(timeout=150)[0]
            assert p.returncode == 0, f"{k} benchmark failed:\n{outputs[k][-3000:]}"
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.kill()

    bert_ratios = RATIO.findall(outputs["bert"])
    assert len(bert_ratios) == 1 and float(bert_ratios[0]) > 0, outputs["bert"]
    seq_ratios = RATIO.findall(outputs["seq2seq"])
    assert len(seq_ratios) == 2 and all(float(r) > 0 for r in seq_ratios), outputs["seq2seq"]  # T5 and BART
    assert "n/a" in outputs["bert"]  # no MFU without a known peak: never a guessed one

    bert = json.loads((tmp_path / "bert.json").read_text())
    (shape,) = bert["shapes"]
    assert (shape["seq_len"], shape["batch"]) == (64, 8)
    for side in ("es_zoo", "anchor"):
        assert shape[side]["tokens_per_s"] > 0 and shape[side]["tflops"] > 0
        assert shape[side]["mfu"] is None and shape[side]["max_memory_gib"] is None  # CPU: no peak, no CUDA memory
    assert shape["ratio"] == pytest.approx(shape["es_zoo"]["tokens_per_s"] / shape["anchor"]["tokens_per_s"])
    assert 0 < shape["masked_share"] < 0.3
    seq = json.loads((tmp_path / "seq2seq.json").read_text())
    assert [f["family"] for f in seq["families"]] == ["t5", "bart"]
    t5 = seq["families"][0]
    assert (t5["input_len"], t5["mean_target_tokens"]) == (64, pytest.approx(14, abs=1))
    for fam in seq["families"]:
        assert fam["es_zoo"]["tokens_per_s"] > 0 and fam["anchor"]["samples_per_s"] > 0
        assert fam["es_zoo"]["mfu"] is None


@pytest.mark.slow
def test_objective_benchmarks_print_both_anchors(tmp_path: Path) -> None:
    """bench_denoising.py and bench_span_corruption.py run es-zoo beside the fairseq-shaped and nanoT5-shaped
    anchors (the latter checked there to give es-zoo's exact arrays for the same mask) and print the ratios."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    bench = REPO / "benchmarks"
    denoise = subprocess.run([sys.executable, str(bench / "bench_denoising.py"), "--batch", "4", "--length", "256",
                              "--repeats", "2"], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert denoise.returncode == 0, denoise.stdout + denoise.stderr
    assert "fairseq-shaped DenoisingDataset" in denoise.stdout
    for what in ("fairseq-shaped anchor", "es-zoo per-row reference"):
        (ratio,) = re.findall(rf"^ratio es-zoo / {what}: (\d+\.\d+)x", denoise.stdout, re.MULTILINE)
        assert float(ratio) > 0
    span = subprocess.run([sys.executable, str(bench / "bench_span_corruption.py"), "--seconds", "0.01"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert span.returncode == 0, span.stdout + span.stderr
    ratios = re.findall(r"ratio es-zoo / nanoT5-shaped anchor (\d+\.\d+)x .*/ es-zoo per-example reference "
                        r"(\d+\.\d+)x", span.stdout)
    assert len(ratios) == 2 and all(float(r) > 0 for pair in ratios for r in pair), span.stdout
