"""The table printed at the end of a reproduction: measured numbers beside the published ones."""

from __future__ import annotations

from es_zoo.catalog import find_model


def _fmt(v: object) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def _heldout_rows(results: dict) -> list[tuple[str, str, str]]:
    h = results["heldout"]
    if "masked_accuracy" in h:  # masked LM (BETO)
        return [
            ("held-out masked-token accuracy", f"{100 * h['masked_accuracy']:.2f}%", "not reported"),
            ("  unigram baseline (most frequent token)", f"{100 * h['unigram_accuracy']:.2f}%", ""),
            ("held-out perplexity (masked tokens)", f"{h['perplexity']:.1f}", "not reported"),
            ("  unigram baseline", f"{h['unigram_perplexity']:.1f}", ""),
        ]
    h0 = results.get("heldout_step0") or {}
    what = "span-corruption" if results.get("objective") == "span_corruption" else "denoising"

    def with0(key: str, pct: bool) -> str:
        fmt = (lambda v: f"{100 * v:.2f}%") if pct else (lambda v: f"{v:.3f}")
        return fmt(h[key]) + (f" (step 0: {fmt(h0[key])})" if key in h0 else "")

    rows = [
        (f"held-out {what} loss (nats/target token)", with0("loss", False), "not reported"),
        ("held-out target-token accuracy (teacher forcing)", with0("accuracy", True), "not reported"),
    ]
    if "span_accuracy" in h:
        rows.append(("held-out span accuracy (whole noise spans)", with0("span_accuracy", True), "not reported"))
    rows.append(("  unigram baseline accuracy", f"{100 * h['unigram_accuracy']:.2f}%", ""))
    if "span_token_accuracy" in h:
        rows.append(("held-out accuracy on span tokens (no sentinels)", with0("span_token_accuracy", True),
                     "not reported"))
        rows.append(("  unigram baseline on span tokens", f"{100 * h['span_token_unigram_accuracy']:.2f}%", ""))
    return rows


def summary_rows(results: dict) -> list[tuple[str, str, str]]:
    """(what, this run, published) rows; published numbers come from the catalogue record."""
    rec = find_model(results["reproduces"]) if results.get("reproduces") else None
    arch = rec.architecture if rec else {}
    t = results["training"]
    params = arch.get("parameters_m")
    rows = [
        ("parameters", _fmt(t["parameters"]), f"{params} M" if params else "-"),
        ("vocabulary", _fmt(t["vocab_size"]), _fmt(rec.vocab_size) if rec else "-"),
        ("optimizer steps", _fmt(t["steps"]), "-"),
        ("tokens seen", _fmt(t["tokens_seen"]), "-"),
    ] + _heldout_rows(results)
    # The published scores, one row each, in the record's order: the same rows after every run of a recipe.
    # A reproduction never measures them (its fine-tunes use small fixtures): `es-zoo evaluate` does.
    if rec:
        for sc in rec.scores_for():
            rows.append((f"{sc.task} {sc.metric} ({sc.dataset}{', ' + sc.split if sc.split else ''})",
                         "not measured here", _fmt(sc.value)))
    # The run's own fine-tunes on the shipped fixtures: other data than any published score.
    for suite, label in (("glues", "GLUES"), ("seq2seq", "seq2seq")):
        for task, g in (results.get(suite) or {}).items():
            rows.append((f"{label} {task} {g['metric']['main']} on es-zoo's {g['source']} fixture ({g['split']}, "
                         f"{g['examples']} ex.)", f"{g['main']:.2f}", "not comparable (other data)"))
            if "majority_baseline" in g:
                rows.append(("  majority-class baseline (same split)", f"{g['majority_baseline']:.2f}", ""))
            for split, o in (g.get("other_splits") or {}).items():
                rows.append((f"  {split} ({o['examples']} ex.)", f"{o['main']:.2f}", ""))
    return rows


def print_summary(results: dict) -> None:
    rec_name = results.get("reproduces") or "-"
    header = (f"{results['recipe']} ({results['preset']} preset)", "this run", f"published ({rec_name})")
    rows = [header] + summary_rows(results)
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    line = "  ".join("-" * w for w in widths)
    print()
    for i, r in enumerate(rows):
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
        if i == 0:
            print(line)
    h = results["heldout"]
    if "masked_accuracy" in h:
        ratio = h["masked_accuracy"] / max(h["unigram_accuracy"], 1e-9)
        print(f"\nmasked-token accuracy is {ratio:.1f}x the unigram baseline on {h['masked_tokens']:,} held-out "
              f"masked tokens ({h['sequences']} sequences of {h['seq_len']}).")
        if results.get("glues"):
            print("GLUES rows are fine-tunes on the small shipped fixtures (es_zoo/data/tasks), not the published "
                  "test sets; `es-zoo evaluate RUN --suite glues --data-dir DIR` scores the real ones.")
        return
    if "encoder" in results:
        print(f"\nwarm-started from {results['encoder']['path']} ({results['encoder']['source']}).")
    if results.get("seq2seq"):
        print("\nseq2seq rows are fine-tunes on the small shipped fixtures (es_zoo/data/tasks), not the paper's test "
              "sets; `es-zoo evaluate RUN --suite seq2seq --data-dir DIR` scores the real ones.")
    print(f"\nscored on {h['target_tokens']:,} held-out target tokens ({h['sequences']} blocks, input length "
          f"{h['seq_len']}). generate() on corrupted held-out text:")
    for s in results.get("samples", [])[:2]:
        print(f"  input : {s['input'][:150]!r}")
        print(f"  output: {s['output'][:150]!r}")
