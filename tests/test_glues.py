"""GLUES harness: task definitions, data loading, windows, heads, fine-tuning, resume, grid, suite, CLI.

Fine-tunes use a micro BETO (2 layers x 32) on the shipped fixtures, so each takes seconds; the default
tiny reproduction with its four fine-tunes is exercised by tests/test_pretraining.py.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest

from es_zoo.errors import EsZooError, RecipeError
from es_zoo.tasks.data import EMBEDDED_TASK_DIR, load_task_data
from es_zoo.tasks.definitions import TaskError, list_tasks, load_task

FAST = {"epochs": 1, "batch_size": 16, "learning_rate": 1e-3, "max_length": 64, "stride": 16}
PAIRS = {**FAST, "max_length": 128}  # PAWS-X sentences run to ~60 sub-tokens each


def _part_of(tmp_path: Path, name: str, keep: float) -> str:
    """The first ``keep`` of a shipped training file (whole sentences, pairs or QA paragraphs), written under
    ``tmp_path``: the tests that only check what a fine-tune writes and how it scores train on less."""
    src = EMBEDDED_TASK_DIR / name
    text = src.read_text(encoding="utf-8")
    if name.endswith(".conllu"):
        blocks = text.split("\n\n")
        text = "\n\n".join(blocks[: int(len(blocks) * keep)]) + "\n\n"
    elif name.endswith(".json"):
        data = json.loads(text)
        for article in data["data"]:
            article["paragraphs"] = article["paragraphs"][: max(1, int(len(article["paragraphs"]) * keep))]
        text = json.dumps(data, ensure_ascii=False)
    else:
        lines = text.splitlines(keepends=True)
        text = "".join(lines[: int(len(lines) * keep)])
    out = tmp_path / f"part-{name}"
    out.write_text(text, encoding="utf-8")
    return str(out)


def test_every_glues_task_is_defined_with_sources_licences_and_metric():
    from es_zoo.tasks.suite import GLUES_TASKS, SEQ2SEQ_TASKS

    assert sorted(GLUES_TASKS) == ["mldoc", "ner", "parsing", "pawsx", "pos", "qa", "xnli"]
    assert list_tasks() == sorted(GLUES_TASKS + SEQ2SEQ_TASKS)
    for name in GLUES_TASKS:
        t = load_task(name)
        assert t.sources and all(s.license for s in t.sources.values())
        assert t.metric["name"] in ("accuracy", "ner_f1", "attachment", "squad_v1", "mlqa")
        assert t.grid == {"batch_size": [16, 32, 64], "learning_rate": [1e-5, 2e-5, 3e-5, 4e-5, 5e-5],
                          "epochs": [2, 3, 4]}
    assert load_task("qa").metric_for("mlqa")["name"] == "mlqa"
    assert load_task("qa").metric_for("xquad")["name"] == "squad_v1"
    assert "CONJ" in load_task("pos").labels and "CCONJ" in load_task("pos").labels_for("shipped")


def test_task_files_are_checked_strictly(tmp_path):
    bad = tmp_path / "t.yaml"
    bad.write_text(Path(load_task("pawsx").path).read_text().replace("head: sequence", "head: sequence\nheads: 2"))
    with pytest.raises(TaskError, match=r"t.yaml: heads: unknown key \(did you mean 'head'\?\)"):
        load_task(bad)
    with pytest.raises(TaskError, match="unknown task 'nre'.*Did you mean: ner"):
        load_task("nre")
    with pytest.raises(TaskError, match="has no source 'conll'"):
        load_task("ner").source("conll")
    with pytest.raises(TaskError, match="hparams.lr: unknown key; expected one of: batch_size, learning_rate"):
        load_task("ner").hparams.replace(lr=1)


def test_shipped_fixtures_load_as_typed_datasets():
    sizes = {}
    for name in ("pos", "parsing", "pawsx", "qa"):
        d = load_task_data(load_task(name), source="shipped")
        sizes[name] = {k: len(v) for k, v in d.dataset.items()}
        assert all(f.startswith("embedded:") for fs in d.files.values() for f in fs)
    assert sizes == {"pos": {"train": 600, "test": 200}, "parsing": {"train": 600, "test": 200},
                     "pawsx": {"train": 1000, "test": 300}, "qa": {"train": 662, "test": 301}}
    parsing = load_task_data(load_task("parsing"), source="shipped").dataset
    assert parsing["train"].features["deprel"].feature.names == parsing["test"].features["deprel"].feature.names
    assert parsing["train"].features["upos"].feature.names[4] == "CCONJ"


def test_missing_and_partial_data_are_clear_errors(tmp_path):
    with pytest.raises(TaskError, match=r"no data found. Looked for train: .*esp.train"):
        load_task_data(load_task("ner"), data_dir=tmp_path)
    ud = tmp_path / "ud" / "r2.2"
    ud.mkdir(parents=True)
    (ud / "es_gsd-ud-test.conllu").write_text((EMBEDDED_TASK_DIR / "ud-gsd-test.conllu").read_text())
    with pytest.raises(TaskError, match="the test split is 2 files and only 1 were found; missing: .*es_ancora-ud-test"):
        load_task_data(load_task("parsing"), data_dir=tmp_path)
    with pytest.raises(TaskError, match="not a Hub dataset id"):
        load_task_data(load_task("ner"), data_dir=tmp_path / "nope")


def test_a_hub_dataset_id_offline_fails_fast_with_a_local_path_hint(monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(TaskError, match="Offline, download it elsewhere.*--data-dir DIR"):
        load_task_data(load_task("pawsx"), data_dir="es-zoo/glues-does-not-exist")


def test_parquet_folders_load_and_their_labels_are_checked(tmp_path):
    task = load_task("pawsx")
    d = load_task_data(task, source="shipped").dataset
    root = tmp_path / "glues" / "pawsx"
    root.mkdir(parents=True)
    for split, part in d.items():
        part.to_parquet(str(root / f"{split}-00000.parquet"))
    back = load_task_data(task, data_dir=tmp_path / "glues")
    assert back.origin == "parquet" and back.source == "pawsx" and len(back.dataset["test"]) == 300
    assert back.dataset["train"].features["label"].names == ["0", "1"]
    from datasets import ClassLabel

    other = tmp_path / "other" / "pawsx"
    other.mkdir(parents=True)
    d["train"].cast_column("label", ClassLabel(names=["no", "yes"])).to_parquet(str(other / "train.parquet"))
    with pytest.raises(TaskError, match=r"has labels \['no', 'yes'\], but task 'pawsx' declares \['0', '1'\]"):
        load_task_data(task, data_dir=tmp_path / "other")


# ------------------------------------------------------------------------------------- windows
@pytest.fixture(scope="module")
def tokenizer(micro_beto):
    from es_zoo.loading import load_tokenizer

    return load_tokenizer(micro_beto)


def test_long_sentences_become_windows_and_every_word_is_read_once(tokenizer):
    from es_zoo.tasks.features import encode_words

    words = [f"palabra{i}" if i % 3 else "casa" for i in range(150)]
    enc = encode_words(tokenizer, [words, ["Hola", "\u200b", "mundo"]], max_length=64, stride=16)
    assert enc.n_split == 1 and len(enc.windows) > 3 and all(len(w["input_ids"]) <= 64 for w in enc.windows)
    assert len(enc.word_slots[0]) == 150 and len(enc.word_slots[1]) == 3
    assert enc.notes and "tokenize to nothing" in enc.notes[0]  # the zero-width space is scored as [UNK]
    for (w, p), expected_word in zip(enc.word_slots[0], range(150)):
        assert enc.first_subtokens[w][p] == expected_word
    # max context: a word in an overlap is read from the window where it is furthest from an edge
    (w0, p0) = enc.word_slots[0][20]
    ids = enc.windows[w0]["input_ids"]
    assert 0 < p0 < len(ids) - 1


def test_words_read_by_a_byte_level_bpe_keep_their_leading_space(tmp_path):
    """RoBERTa-style tokenizers (MarIA's, es-zoo's byte-level BPE): a word of a NER/POS sentence is encoded as
    in running text ("Ġmundo"), not glued to the word before ("mu" "ndo"); the caller's tokenizer is unchanged."""
    from transformers import AutoTokenizer, RobertaTokenizer

    from es_zoo.tasks.features import encode_words
    from es_zoo.tokenization import train_byte_level_bpe

    bpe = train_byte_level_bpe(["Hola mundo, la casa del pueblo. " * 4] * 40, vocab_size=320)
    bpe.save_pretrained(tmp_path / "es-zoo")
    vocab = bpe.get_vocab()
    merges = [tuple(m) for m in __import__("json").loads(bpe.backend_tokenizer.to_str())["model"]["merges"]]
    hub_like = RobertaTokenizer(vocab=vocab, merges=merges, add_prefix_space=False)  # as PlanTL-GOB-ES ships
    for tok in (AutoTokenizer.from_pretrained(tmp_path / "es-zoo"), hub_like):
        enc = encode_words(tok, [["Hola", "mundo", "casa"]], max_length=64, stride=16)
        running = tok("Hola mundo casa", add_special_tokens=False)["input_ids"]
        assert enc.windows[0]["input_ids"][2:-1] == running[-2:] == tok.convert_tokens_to_ids(["Ġmundo", "Ġcasa"])
        assert tok(["mundo"], is_split_into_words=True)["input_ids"][1:-1] != tok.convert_tokens_to_ids(["Ġmundo"])


def test_long_documents_and_pairs_are_split_not_truncated(tokenizer):
    from es_zoo.tasks.features import encode_sequences

    doc = " ".join(["La economía española creció en el tercer trimestre."] * 40)
    enc = encode_sequences(tokenizer, [doc, "Corto."], None, max_length=64, stride=16)
    assert enc.n_split == 1 and enc.example_of.count(0) > 3 and enc.example_of.count(1) == 1
    pair = encode_sequences(tokenizer, ["Una frase corta."], [doc], max_length=64, stride=16)
    assert pair.n_split == 1 and all(len(w["input_ids"]) <= 64 for w in pair.windows)
    # both segments long: parallel windows, each holding a part of both segments
    both = encode_sequences(tokenizer, [doc], [doc.upper()], max_length=64, stride=16)
    assert both.n_split == 1 and len(both.windows) > 3
    for w in both.windows:
        assert len(w["input_ids"]) <= 64 and w["input_ids"].count(tokenizer.sep_token_id) == 2
        assert 0 < sum(w["token_type_ids"]) < len(w["input_ids"]) - 2


def test_answer_positions_point_at_the_answer_in_every_window(tokenizer):
    from es_zoo.tasks.features import encode_qa, qa_targets
    from es_zoo.tasks.readers import read_squad

    rows = read_squad(EMBEDDED_TASK_DIR / "squad-es-test.json")[:40]
    enc = encode_qa(tokenizer, [r["question"] for r in rows], [r["context"] for r in rows], 128, 32)
    hits = 0
    for w, e in zip(enc.windows, enc.example_of):
        a = rows[e]["answers"]
        s, t = qa_targets(w, a["answer_start"][0], a["text"][0])
        if s:
            span = rows[e]["context"][w["offsets"][s][0]: w["offsets"][t][1]]
            assert span.strip() == a["text"][0].strip()
            hits += 1
    assert enc.n_split > 0 and hits >= 40  # every answer is inside at least one window


def test_mst_decoding_is_exact_and_has_one_root():
    from es_zoo.tasks.heads import mst_heads

    def brute(s):
        n, best = s.shape[0] - 1, -np.inf
        for heads in itertools.product(range(n + 1), repeat=n):
            h = [-1, *heads]
            if heads.count(0) != 1 or any(h[i] == i for i in range(1, n + 1)):
                continue
            ok = True
            for i in range(1, n + 1):
                seen, v = set(), i
                while v and ok:
                    ok = v not in seen
                    seen.add(v)
                    v = h[v]
            if ok:
                best = max(best, sum(s[i, h[i]] for i in range(1, n + 1)))
        return best

    rng = np.random.default_rng(7)
    for _ in range(150):
        n = int(rng.integers(2, 6))
        s = rng.normal(size=(n + 1, n + 1))
        h = mst_heads(s)
        assert list(h[1:]).count(0) == 1
        assert sum(s[i, h[i]] for i in range(1, n + 1)) == pytest.approx(brute(s))


def test_length_grouped_batches_cover_the_epoch_and_group_lengths():
    from es_zoo.tasks.finetune import length_grouped_epoch

    lengths = np.random.default_rng(0).integers(5, 500, size=1000)
    a = length_grouped_epoch(lengths, 32, seed=1, epoch=0)
    assert all(len(b) == 32 for b in a)
    flat = np.concatenate(a)
    assert set(flat) == set(range(1000)) and len(flat) == 32 * 32  # 24 items repeated to fill the last batch
    assert [list(b) for b in a] == [list(b) for b in length_grouped_epoch(lengths, 32, seed=1, epoch=0)]
    assert [list(b) for b in a] != [list(b) for b in length_grouped_epoch(lengths, 32, seed=1, epoch=1)]
    spread = np.mean([lengths[b].max() - lengths[b].min() for b in a])
    assert spread < 60  # random batches spread over ~450


# --------------------------------------------------------------------------------- fine-tuning
def test_pos_finetune_writes_a_hub_ready_model_and_scores_words(micro_beto, tmp_path):
    from huggingface_hub import ModelCard
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    from es_zoo.tasks.finetune import finetune
    from es_zoo.tasks.scoring import score_file

    out = tmp_path / "pos"
    r = finetune(str(micro_beto), "pos", out, source="shipped", hparams=FAST)
    assert r["split"] == "test" and r["examples"] == 200 and r["metrics"]["total"] == 5454  # every word
    assert r["metrics"]["accuracy"] > 30  # well above the 17-tag chance rate after one epoch
    assert r["training"]["train_split_examples"] > 0 and r["splits"]["test"]["split_examples"] > 0
    assert not (out / "checkpoints").exists()
    model = AutoModelForTokenClassification.from_pretrained(out / "model")
    assert list(model.config.id2label.values()) == load_task("pos").labels_for("shipped")
    AutoTokenizer.from_pretrained(out / "model")
    card = ModelCard.load(out / "model" / "README.md")
    assert card.data.language == "es" and card.data.base_model is None  # a local model has no Hub id
    assert card.data.eval_results is None and "left out of the card's model-index" in card.text  # a fixture
    assert f"| test | {r['metrics']['accuracy']:.2f} |" in card.text
    # the predictions file scores the same with `es-zoo score`, and a wrong length is an error
    again = score_file("pos", out / "predictions" / "test.jsonl", source="shipped")
    assert again["accuracy"] == pytest.approx(r["metrics"]["accuracy"])
    short = tmp_path / "short.jsonl"
    short.write_text("".join((out / "predictions" / "test.jsonl").read_text().splitlines(True)[:-1]))
    with pytest.raises(TaskError, match=r"no prediction for gold example .*\(199 predictions for 200 examples\)"):
        score_file("pos", short, source="shipped")
    # a model fine-tuned for another label set is refused, not silently re-headed
    with pytest.raises(TaskError, match="was fine-tuned for labels .*ADJ.*task's label set is \\['0', '1'\\]"):
        finetune(str(out / "model"), "pawsx", tmp_path / "p", source="shipped", hparams=FAST)


def test_an_interrupted_finetune_resumes_to_the_same_model(micro_beto, tmp_path):
    from es_zoo.tasks.finetune import finetune
    from es_zoo.training import stop_after

    # A quarter of the shipped PAWS-X training pairs, 2 epochs, interrupted inside the first.
    files = {"train": [_part_of(tmp_path, "pawsx-train.tsv", 0.25)], "test": [_part_of(tmp_path, "pawsx-test.tsv", 1 / 3)]}
    hp = {**PAIRS, "epochs": 2}
    full = finetune(str(micro_beto), "pawsx", tmp_path / "a", files=files, hparams=hp, save_model=False)
    with stop_after(9):
        part = finetune(str(micro_beto), "pawsx", tmp_path / "b", files=files, hparams=hp, save_model=False)
    assert part["stopped_early"] and (tmp_path / "b" / "checkpoints").is_dir()
    with pytest.raises(EsZooError, match="already holds a fine-tune.*--resume"):
        finetune(str(micro_beto), "pawsx", tmp_path / "b", files=files, hparams=hp)
    with pytest.raises(EsZooError, match="different settings \\(hyperparameters\\)"):
        finetune(str(micro_beto), "pawsx", tmp_path / "b", files=files, hparams={**hp, "seed": 1}, resume=True)
    done = finetune(str(micro_beto), "pawsx", tmp_path / "b", files=files, hparams=hp, save_model=False,
                    resume=True)
    assert done["training"]["steps"] == full["training"]["steps"] > 2 * 9
    assert (tmp_path / "a" / "predictions" / "test.jsonl").read_text() == \
        (tmp_path / "b" / "predictions" / "test.jsonl").read_text()
    assert done["metrics"] == full["metrics"]


def test_the_biaffine_parser_trains_saves_loads_and_parses_trees(micro_beto, tmp_path):
    from transformers import AutoModel

    from es_zoo.tasks.finetune import finetune
    from es_zoo.tasks.heads import BiaffineParser
    from es_zoo.tasks.parse import parse

    out = tmp_path / "parsing"
    files = {"train": [_part_of(tmp_path, "ud-gsd-train.conllu", 0.25)],
             "test": [str(EMBEDDED_TASK_DIR / "ud-gsd-test.conllu")]}
    r = finetune(str(micro_beto), "parsing", out, source="shipped", files=files,
                 hparams={**FAST, "arc_dim": 32, "rel_dim": 16, "head_learning_rate": 3e-3})
    assert r["metrics"]["words"] == 5454 and 0 <= r["metrics"]["las"] <= r["metrics"]["uas"] <= 100
    preds = [json.loads(line)["prediction"] for line in (out / "predictions" / "test.jsonl").read_text().splitlines()]
    assert all(heads.count(0) == 1 for heads, _ in preds)  # MST decoding: one root per sentence
    AutoModel.from_pretrained(out / "model")  # the encoder alone is a plain transformers model
    parser = BiaffineParser.load(out / "model")
    trees = parse(parser, str(out / "model"), [["El", "perro", "ladra", "."], ["Llueve", "."]])
    assert [len(t) for t in trees] == [4, 2] and all(sum(w["head"] == 0 for w in t) == 1 for t in trees)
    assert all(w["deprel"] in parser.relations for t in trees for w in t)


def test_qa_finetune_scores_answers_with_the_squad_script_rules(micro_beto, tmp_path):
    from transformers import AutoModelForQuestionAnswering

    from es_zoo.tasks.finetune import finetune

    out = tmp_path / "qa"
    files = {"train": [_part_of(tmp_path, "squad-es-train.json", 0.25)],
             "test": [str(EMBEDDED_TASK_DIR / "squad-es-test.json")]}
    r = finetune(str(micro_beto), "qa", out, source="shipped", files=files,
                 hparams={**FAST, "max_length": 128, "stride": 32})
    assert r["metric"]["name"] == "squad_v1" and r["metrics"]["total"] == 301 and r["metrics"]["missing"] == 0
    assert r["splits"]["test"]["split_examples"] > 0
    lines = (out / "predictions" / "test.jsonl").read_text().splitlines()
    contexts = {row["id"]: row["context"] for row in load_task_data(load_task("qa"), source="shipped").dataset["test"]}
    for line in lines:
        p = json.loads(line)
        assert p["prediction"] in contexts[p["id"]]  # every answer is a span of its context
    AutoModelForQuestionAnswering.from_pretrained(out / "model")


def test_the_grid_runs_every_setting_once_and_reports_the_best_on_test(micro_beto, tmp_path):
    from es_zoo.tasks.suite import grid_search

    files = {"train": [_part_of(tmp_path, "pawsx-train.tsv", 0.25)],
             "validation": [_part_of(tmp_path, "pawsx-test.tsv", 0.5)],
             "test": [str(EMBEDDED_TASK_DIR / "pawsx-test.tsv")]}
    grid = {"learning_rate": [1e-3, 3e-4], "epochs": [1]}
    r = grid_search(str(micro_beto), load_task("pawsx"), tmp_path, grid=grid, files=files, hparams=PAIRS)
    lines = (tmp_path / "grid.jsonl").read_text().splitlines()
    assert r["runs"] == 2 and len(lines) == 2 and r["split"] == "test"
    best = max((json.loads(x) for x in lines), key=lambda x: x["validation"]["accuracy"])
    assert r["metrics"] == best["test"]
    assert not list((tmp_path / "grid").iterdir())  # each line holds what was measured; no weights are kept
    again = grid_search(str(micro_beto), load_task("pawsx"), tmp_path, grid=grid, files=files, hparams=PAIRS)
    assert len((tmp_path / "grid.jsonl").read_text().splitlines()) == 2 and again["best"] == r["best"]
    with pytest.raises(TaskError, match="chooses on the validation split"):
        grid_search(str(micro_beto), load_task("pawsx"), tmp_path / "g2", grid=grid, source="shipped")


def test_evaluate_cli_writes_results_and_the_published_table(micro_beto, tmp_path):
    from click.testing import CliRunner

    from es_zoo.cli import cli

    out = tmp_path / "eval"
    res = CliRunner().invoke(cli, ["evaluate", str(micro_beto), "--suite", "glues", "--output-dir", str(out),
                                   "--source", "pawsx=shipped", "--source", "pos=shipped",
                                   "--epochs", "1", "--batch-size", "16", "--learning-rate", "1e-3",
                                   "--max-length", "128", "--stride", "16"])
    assert res.exit_code == 0, res.output
    results = json.loads((out / "results.json").read_text())
    assert set(results["tasks"]) == {"pawsx", "pos"}  # the others have no data here and are listed as skipped
    assert set(results["skipped"]) == {"xnli", "ner", "parsing", "mldoc", "qa"}
    pos = results["tasks"]["pos"]
    assert pos["split"] == "test" and pos["examples"] == 200 and pos["seed"] == 42
    assert pos["data"]["source"] == "shipped" and pos["hyperparameters"]["epochs"] == 1
    assert pos["published"][0]["model"] == "beto-base-cased" and pos["published"][0]["value"] == 98.97
    assert "98.97" in res.output and "no data" in res.output
    # shipped fixtures are not the data the published numbers were measured on
    assert pos["comparable"] is False and "not comparable (other data): 98.97" in res.output


def test_evaluate_cli_names_a_task_without_data_in_one_line(micro_beto, tmp_path):
    from click.testing import CliRunner

    from es_zoo.cli import cli

    bad = CliRunner().invoke(cli, ["evaluate", str(micro_beto), "--tasks", "ner", "--output-dir", str(tmp_path / "e2")])
    assert bad.exit_code == 1 and "error: task 'ner'" in bad.output and "Traceback" not in bad.output
    assert not (tmp_path / "e2").exists()


def test_reproduce_ends_with_the_recipes_glues_finetunes(published_runs):
    # The session's micro BETO run ends with one GLUES fine-tune (tests/conftest.py BETO_RUNS).
    run = published_runs["beto"]
    r = json.loads((run / "results.json").read_text())
    assert r["glues"]["pos"]["split"] == "test" and r["glues"]["pos"]["examples"] == 200
    assert json.loads((run / "glues" / "pos" / "results.json").read_text())["main"] == r["glues"]["pos"]["main"]
    assert (run / "glues" / "pos" / "model" / "config.json").is_file()
    assert "GLUES fine-tunes (measured by this run)" in (run / "model" / "README.md").read_text()


def test_glues_runs_are_validated_with_the_recipe():
    from es_zoo.recipes import load_recipe

    with pytest.raises(RecipeError, match="glues.runs\\[0\\].task 'nre' is not one of"):
        load_recipe("beto", "tiny", overrides=["glues.runs=[{task: nre}]"])
    with pytest.raises(RecipeError, match="GLUES fine-tunes need an encoder"):
        load_recipe("barto", "tiny", overrides=["glues.runs=[{task: pos}]"])
    with pytest.raises(RecipeError, match=r"glues.runs\[0\].hparams.lr: unknown key; expected one of: batch_size"):
        load_recipe("beto", "tiny", overrides=["glues.runs=[{task: pos, hparams: {lr: 1}}]"])
