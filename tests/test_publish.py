"""Publishing (issue 6) without a server: run folders -> the exact files and card that would go to the Hub,
suite datasets, dry runs, bad input. The real client against a local Hub server is in test_publish_hub.py."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from es_zoo.cards import card_state, sign_card
from es_zoo.cli import cli
from es_zoo.hub_datasets import DatasetBuildError, build_dataset, check_dataset
from es_zoo.publish import MODEL_ALLOW, PublishError, allowed, check_repo_id, inspect_run, publish_run, write_card


def _copy(run: Path, tmp_path: Path) -> Path:
    dest = tmp_path / run.name
    shutil.copytree(run, dest)
    return dest


def _model_index(card_text: str) -> list:
    from huggingface_hub import ModelCard

    return ModelCard(card_text).data.eval_results or []


# ----------------------------------------------------------------------------------------- files
def test_dry_run_writes_exactly_the_allowlisted_files_and_a_manifest(published_runs: dict, tmp_path: Path,
                                                                     small_corpus: Path) -> None:
    run = _copy(published_runs["t5s"], tmp_path)
    # things that must never leave the machine, planted where a careless upload would take them
    (run / "model" / ".env").write_text("HF_TOKEN=hf_secret\n")
    (run / "model" / "optimizer.pt").write_bytes(b"\x80\x04pickle")
    (run / "model" / "pytorch_model.bin").write_bytes(b"\x80\x04pickle")
    (run / "model" / "cache").mkdir()
    (run / "model" / "cache" / "x.json").write_text("{}")
    out = tmp_path / "dry"
    summary = publish_run(run, "es-zoo-test/t5s-micro", dry_run=out, echo=lambda s: None)
    files = sorted(p.relative_to(out / "files").as_posix() for p in (out / "files").rglob("*") if p.is_file())
    assert files == ["README.md", "config.json", "generation_config.json", "loss_curve.png", "model.safetensors",
                     "recipe.yaml", "tokenizer.json", "tokenizer_config.json"]
    assert summary["commit"] is None and summary["uploaded"] == files
    manifest = json.loads((out / "manifest.json").read_text())
    ops = manifest["operations"]
    assert [o["op"] for o in ops] == ["create_repo", "commit"]
    assert ops[0] == {"op": "create_repo", "repo_id": "es-zoo-test/t5s-micro", "repo_type": "model",
                      "private": False, "exist_ok": True}
    assert [f["path"] for f in ops[1]["files"]] == files
    import hashlib

    for f in ops[1]["files"]:
        data = (out / "files" / f["path"]).read_bytes()
        assert f["size"] == len(data) and f["sha256"] == hashlib.sha256(data).hexdigest()
    assert ops[1]["message"].startswith("es-zoo: publish t5s")
    # weights and config are the run's, byte for byte; the card is rendered for the repo id
    assert (out / "files" / "model.safetensors").read_bytes() == (run / "model" / "model.safetensors").read_bytes()
    card = (out / "files" / "README.md").read_text()
    assert 'from_pretrained("es-zoo-test/t5s-micro")' in card and card_state(card) == "es-zoo"
    # no machine-specific path in anything published (the corpus and the run are local paths here)
    import yaml

    recipe = yaml.safe_load((out / "files" / "recipe.yaml").read_text())
    assert recipe["config"]["corpus"]["source"] == f"<local>/{small_corpus.name}"
    for f in (out / "files").iterdir():
        if f.suffix in (".md", ".json", ".yaml"):
            text = f.read_text()
            assert str(small_corpus.parent) not in text and str(run) not in text, f.name
    # a second dry run into the same folder replaces it; a folder holding anything else is refused
    publish_run(run, "es-zoo-test/t5s-micro", dry_run=out, echo=lambda s: None)
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(PublishError, match="not empty"):
        publish_run(run, "es-zoo-test/t5s-micro", dry_run=other, echo=lambda s: None)
    assert (other / "notes.txt").read_text() == "mine"


def test_allowlist_matches_top_level_names_only() -> None:
    assert allowed("model.safetensors", MODEL_ALLOW) and allowed("model-00001-of-00002.safetensors", MODEL_ALLOW)
    for bad in ("checkpoints/step-10/model.safetensors", "optimizer.pt", ".env", "logs/train.jsonl",
                "results.json", "pytorch_model.bin", "sub/config.json"):
        assert not allowed(bad, MODEL_ALLOW), bad


def test_a_fine_tune_folder_publishes_its_model_and_settings(published_runs: dict, tmp_path: Path) -> None:
    out = tmp_path / "dry"
    publish_run(published_runs["pos"], "es-zoo-test/beto-micro-pos", dry_run=out, echo=lambda s: None)
    files = sorted(p.name for p in (out / "files").iterdir())
    assert files == ["README.md", "config.json", "finetune.json", "loss_curve.png", "model.safetensors",
                     "tokenizer.json", "tokenizer_config.json"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert "pos fine-tune" in manifest["operations"][-1]["message"]
    spec = json.loads((out / "files" / "finetune.json").read_text())
    assert spec["task"] == "pos" and spec["model"] == "<local>/model"  # the base was a local folder


# ------------------------------------------------------------------------------------------ cards
def test_card_model_index_names_benchmark_datasets_and_leaves_fixtures_out(published_runs: dict, tmp_path: Path) -> None:
    from es_zoo.cards import finetune_card_text
    from es_zoo.tasks.definitions import load_task

    for name, suite in (("t5s", "seq2seq"), ("beto", "glues")):
        run = _copy(published_runs[name], tmp_path)
        results = json.loads((run / "results.json").read_text())
        card = (write_card(run, "es-zoo-test/x")).read_text()
        # every fine-tune of these runs is on a shipped fixture: a sample, not the benchmark's split, so
        # the Hub must not list it under the benchmark; the body shows each score and says why
        assert results[suite] and _model_index(card) == [] and "model-index:" not in card
        assert "left out of the model-index" in card
        for task, r in results[suite].items():
            assert f"| {task} | {r['source']} | {r['split']} |" in card and f"{r['main']:.2f}" in card
    ft = json.loads((published_runs["pos"] / "results.json").read_text())
    task = load_task("pos")
    card = finetune_card_text(task, ft)
    assert _model_index(card) == [] and "left out of the card's model-index" in card
    # the same scores on the benchmark's data are there, under the Hub dataset they come from
    ft["data"]["source"] = "ud-v2.7"  # local copies of the published files: the source's Hub home, no revision
    [e] = _model_index(finetune_card_text(task, ft))
    assert (e.dataset_type, e.dataset_config, e.dataset_revision, e.dataset_split, e.metric_type) == \
        ("universal-dependencies/universal_dependencies", "es_ancora + es_gsd", None, "test", "accuracy")
    assert e.metric_value == pytest.approx(ft["metrics"]["accuracy"], abs=1e-4)
    ft["data"]["hub"] = {"test": {"id": "universal-dependencies/universal_dependencies", "config": "es_gsd",
                                  "revision": "refs/convert/parquet"}}  # read from the Hub: its exact revision
    [e] = _model_index(finetune_card_text(task, ft))
    assert (e.dataset_config, e.dataset_revision) == ("es_gsd", "refs/convert/parquet")
    ft["data"]["source"], ft["data"]["hub"] = "ud-v1.4", {}  # no Hub home: named by its source
    [e] = _model_index(finetune_card_text(task, ft))
    assert (e.dataset_type, e.dataset_config, e.dataset_revision) == ("ud-v1.4", None, None)
    assert "left out of the card's model-index" not in finetune_card_text(task, ft)
    # a published number in another metric than the task's is marked in the card's published block
    import dataclasses

    ft["model"] = "beto-base-cased"  # BETO's POS number is F1 (the paper's definition)
    assert "| f1 | 98.97 |" in finetune_card_text(task, ft)
    as_accuracy = dataclasses.replace(task, published={"task": "pos", "metric": "accuracy"})
    assert "| f1 (another metric than this task's: not comparable) | 98.97 |" in finetune_card_text(as_accuracy, ft)


def test_card_command_keeps_a_card_a_person_edited(published_runs: dict, tmp_path: Path) -> None:
    run = _copy(published_runs["t5s"], tmp_path)
    card = run / "model" / "README.md"
    assert card_state(card.read_text()) == "es-zoo"
    card.write_text(card.read_text().replace("## How to use", "## How to use\n\nMy own note."))
    assert card_state(card.read_text()) == "edited"
    res = CliRunner().invoke(cli, ["card", str(run)])
    assert res.exit_code == 1 and "edited" in res.output and "--overwrite-card" in res.output
    assert "My own note." in card.read_text()
    # publishing takes the person's card as it is
    publish_run(run, "es-zoo-test/t5s-micro", dry_run=tmp_path / "dry", echo=lambda s: None)
    assert "My own note." in (tmp_path / "dry" / "files" / "README.md").read_text()
    res = CliRunner().invoke(cli, ["card", str(run), "--overwrite-card", "--repo-id", "es-zoo-test/t5s-micro"])
    assert res.exit_code == 0, res.output
    assert "My own note." not in card.read_text() and card_state(card.read_text()) == "es-zoo"


def test_signature_survives_round_trips_and_detects_any_change() -> None:
    text = sign_card("---\nlanguage: es\n---\n\n# Card\n\nBody.\n")
    assert card_state(text) == "es-zoo" and card_state(text + "\n") == "es-zoo"
    assert card_state(text.replace("Body.", "Body!")) == "edited"
    assert card_state("# a card written by hand\n") == "foreign"
    # text added after the signature line is an edit too (it used to be dropped without a word)
    assert card_state(text + "\nMy note after the signature.\n") == "edited"


@pytest.mark.parametrize("evil", [
    "x\n---\nlicense: mit\ntags: [hacked]\n---\n",
    "a: b\nlicense: mit",
    "'; license: mit #",
    "--- \n{license: mit}",
])
def test_yaml_in_names_and_values_cannot_change_the_metadata(published_runs: dict, evil: str) -> None:
    from huggingface_hub import ModelCard

    from es_zoo.cards import finetune_card_text, model_card_text
    from es_zoo.recipes import resolved_from_dict
    from es_zoo.tasks.definitions import load_task
    import yaml

    run = published_runs["t5s"]
    results = json.loads((run / "results.json").read_text())
    results["seq2seq"]["translation"]["source"] = evil
    data = yaml.safe_load((run / "recipe.yaml").read_text())
    data["config"]["description"] = evil
    cfg = resolved_from_dict(data)
    card = ModelCard(model_card_text(cfg, results))
    assert card.data.license is None and "hacked" not in card.data.tags
    assert card.data.tags == ["es-zoo", "t5s", "seq2seq", "t5", "spanish"]
    assert not card.data.eval_results  # a source es-zoo does not know names no benchmark
    assert evil in card.text  # the body shows it, below the metadata
    ft = json.loads((published_runs["pos"] / "results.json").read_text())
    ft["data"]["source"] = evil
    ft["data"]["license"] = evil
    task = load_task("pos")
    card = ModelCard(finetune_card_text(task, ft))
    assert card.data.license is None and card.data.tags == ["es-zoo", "glues", "pos", "spanish"]
    assert not card.data.eval_results and evil in card.text


# ------------------------------------------------------------------------------------- bad input
def test_bad_runs_and_repo_ids_are_refused_before_anything_is_uploaded(published_runs: dict, tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    for bad in ("t5s", "org/", "/name", "a/b/c", "org/na me", "org/name.git", "org/" + "x" * 100, "org/a..b"):
        with pytest.raises(PublishError, match="not valid"):
            check_repo_id(bad)
    run = _copy(published_runs["t5s"], tmp_path)
    (run / "checkpoints" / ".tmp-step-99").mkdir(parents=True)
    with pytest.raises(PublishError, match=r"interrupted .*checkpoints/\.tmp-step-99.*--resume"):
        inspect_run(run)
    shutil.rmtree(run / "checkpoints" / ".tmp-step-99")
    (run / "results.json").rename(run / "results.bak")
    with pytest.raises(PublishError, match="no results.json"):
        inspect_run(run)
    (run / "results.bak").rename(run / "results.json")
    (run / "model" / "model.safetensors").rename(run / "model" / "pytorch_model.bin")
    with pytest.raises(PublishError, match="never publishes pickles"):
        inspect_run(run)
    with pytest.raises(PublishError, match="not an es-zoo run folder"):
        inspect_run(tmp_path)
    # no token and no dry run: refused before any network call
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setattr("huggingface_hub.get_token", lambda: None)
    res = CliRunner().invoke(cli, ["publish", str(published_runs["t5s"]), "--repo-id", "es-zoo-test/t5s"])
    assert res.exit_code == 1 and "no Hugging Face token" in res.output and "HF_TOKEN" in res.output


@pytest.mark.parametrize("planted", ["model/README.md", "model/config.json", "model/vocab.txt", "recipe.yaml",
                                     "results.json", "model", "model/model.safetensors"])
def test_a_link_to_a_file_outside_the_run_is_refused_by_name(published_runs: dict, tmp_path: Path,
                                                             planted: str) -> None:
    """A card, recipe, weight file or the whole model/ folder that links outside the run never goes up."""
    run = _copy(published_runs["beto"], tmp_path)
    secret = tmp_path / "outside"
    secret.mkdir()
    target = run / planted
    if target.is_dir():
        shutil.copytree(target, secret / target.name)
        shutil.rmtree(target)
        target.symlink_to(secret / target.name, target_is_directory=True)
    else:
        (secret / target.name).write_bytes(target.read_bytes() if target.exists() else b"root:x:0:0")
        target.unlink(missing_ok=True)
        target.symlink_to(secret / target.name)
    out = tmp_path / "dry"
    res = CliRunner().invoke(cli, ["publish", str(run), "--repo-id", "es-zoo-test/beto", "--dry-run", str(out)])
    assert res.exit_code == 1, res.output
    assert "outside" in res.output and "only files inside the folder are published" in res.output
    assert len(res.output.strip().splitlines()) == 1 and not out.exists()


def test_a_link_inside_the_run_is_published_as_its_content(published_runs: dict, tmp_path: Path) -> None:
    run = _copy(published_runs["beto"], tmp_path)
    (run / "vocab-copy.txt").write_bytes((run / "model" / "vocab.txt").read_bytes())
    (run / "model" / "vocab.txt").unlink()
    (run / "model" / "vocab.txt").symlink_to(run / "vocab-copy.txt")
    publish_run(run, "es-zoo-test/beto", dry_run=tmp_path / "dry", echo=lambda s: None)
    assert (tmp_path / "dry" / "files" / "vocab.txt").read_bytes() == (run / "vocab-copy.txt").read_bytes()


def test_weight_shards_go_up_only_with_their_index_and_complete(published_runs: dict, tmp_path: Path) -> None:
    from safetensors.torch import load_file, save_file

    run = _copy(published_runs["beto"], tmp_path)
    model = run / "model"
    # a stray shard beside model.safetensors: left out, and the dry run says why
    (model / "model-00001-of-00002.safetensors").write_bytes((model / "model.safetensors").read_bytes())
    publish_run(run, "es-zoo-test/beto", dry_run=tmp_path / "d1", echo=lambda s: None)
    manifest = json.loads((tmp_path / "d1" / "manifest.json").read_text())
    sent = {f["path"] for f in manifest["operations"][-1]["files"]}
    assert "model.safetensors" in sent and "model-00001-of-00002.safetensors" not in sent
    assert [s["path"] for s in manifest["skipped"]] == ["model-00001-of-00002.safetensors"]
    assert not (tmp_path / "d1" / "files" / "model-00001-of-00002.safetensors").exists()
    # a real sharded export: index + both shards go up; with one shard missing, nothing does
    tensors = load_file(model / "model.safetensors")
    names = sorted(tensors)
    halves = {"model-00001-of-00002.safetensors": names[: len(names) // 2],
              "model-00002-of-00002.safetensors": names[len(names) // 2:]}
    for shard, keys in halves.items():
        save_file({k: tensors[k].contiguous() for k in keys}, model / shard, metadata={"format": "pt"})
    (model / "model.safetensors.index.json").write_text(json.dumps(
        {"metadata": {}, "weight_map": {k: shard for shard, keys in halves.items() for k in keys}}))
    with pytest.raises(PublishError, match="both model.safetensors and model.safetensors.index.json"):
        publish_run(run, "es-zoo-test/beto", dry_run=tmp_path / "d2", echo=lambda s: None)
    (model / "model.safetensors").unlink()
    publish_run(run, "es-zoo-test/beto", dry_run=tmp_path / "d3", echo=lambda s: None)
    assert {"model.safetensors.index.json", *halves} <= {p.name for p in (tmp_path / "d3" / "files").iterdir()}
    (model / "model-00002-of-00002.safetensors").unlink()
    with pytest.raises(PublishError, match=r"incomplete \(missing model-00002-of-00002.safetensors\)"):
        publish_run(run, "es-zoo-test/beto", dry_run=tmp_path / "d4", echo=lambda s: None)
    assert not (tmp_path / "d4").exists()
    (model / "model.safetensors.index.json").unlink()
    with pytest.raises(PublishError, match="without model.safetensors.index.json"):
        publish_run(run, "es-zoo-test/beto", dry_run=tmp_path / "d5", echo=lambda s: None)


# --------------------------------------------------------------------------------------- datasets
def test_a_suite_dataset_loads_with_datasets_and_with_es_zoo(suite_dataset: Path) -> None:
    from datasets import load_dataset
    from huggingface_hub import DatasetCard

    from es_zoo.tasks.data import load_task_data
    from es_zoo.tasks.definitions import load_task

    manifest = json.loads((suite_dataset / "es_zoo_dataset.json").read_text())
    assert set(manifest["configs"]) == {"pos-shipped", "parsing-shipped", "pawsx-shipped"}
    pos = load_dataset(str(suite_dataset), "pos-shipped")
    assert {k: len(v) for k, v in pos.items()} == {"train": 600, "test": 200}
    assert pos["train"].features["upos"].feature.names == load_task("pos").labels_for("shipped")
    direct = load_task_data(load_task("pos"), source="shipped")
    assert pos["test"][5] == direct.dataset["test"][5]
    via = load_task_data(load_task("parsing"), source="shipped", data_dir=suite_dataset)
    assert via.origin == "parquet" and len(via.dataset["test"]) == 200
    card = DatasetCard((suite_dataset / "README.md").read_text())
    assert {c["config_name"] for c in card.data.configs} == set(manifest["configs"])
    assert card.data.language == ["es"] and "cc-by-sa-4.0" in card.data.license
    body = card.text
    for name, c in manifest["configs"].items():
        assert f"`{name}`" in body and c["license"] in body and c["citation"] in body
        for split, s in c["splits"].items():
            assert f"{split} {s['rows']:,}" in body
    assert "accuracy" in body and "UAS and LAS" in body
    assert card_state((suite_dataset / "README.md").read_text()) == "es-zoo"


def test_non_commercial_sources_are_flagged(tmp_path: Path) -> None:
    from es_zoo.hub_datasets import license_ids, non_commercial, redistributable

    assert non_commercial("CC BY-NC 4.0 (non-commercial)") and not non_commercial("CC BY-SA 4.0")
    assert license_ids("CC BY-NC-SA 4.0 (non-commercial)") == ["cc-by-nc-sa-4.0"]
    assert license_ids("free for any use (Google)") == ["other"]
    assert not redistributable("Reuters Corpus (RCV2) licence; the texts are not redistributable")
    # every shipped task source: its flag follows its own terms
    from es_zoo.tasks.definitions import list_tasks, load_task

    flags = {(t, n): redistributable(s.license) for t in list_tasks() for n, s in load_task(t).sources.items()}
    assert flags[("ner", "conll2002")] is False  # research use within the CoNLL-2002 shared task
    assert flags[("split_rephrase", "bisect")] is False and flags[("mldoc", "mldoc")] is False
    assert flags[("pawsx", "pawsx")] and flags[("qa", "xquad")] and flags[("pos", "shipped")]


def test_a_config_whose_labels_disagree_with_its_features_is_refused(suite_dataset: Path, tmp_path: Path) -> None:
    import pyarrow.parquet as pq
    from datasets import ClassLabel, Dataset, Features, List, Value

    check_dataset(suite_dataset)
    bad = tmp_path / "bad"
    shutil.copytree(suite_dataset, bad)
    shard = bad / "pos-shipped" / "train-00000-of-00001.parquet"
    rows = pq.read_table(shard).to_pylist()
    wrong = Features({"id": Value("string"), "tokens": List(Value("string")),
                      "upos": List(ClassLabel(names=["NOUN", "VERB", "X"]))})
    Dataset.from_list([{**r, "upos": [min(t, 2) for t in r["upos"]]} for r in rows], features=wrong).to_parquet(str(shard))
    with pytest.raises(DatasetBuildError, match=r"column 'upos' has labels \['NOUN', 'VERB', 'X'\].*declares"):
        check_dataset(bad)
    res = CliRunner().invoke(cli, ["datasets", "publish", str(bad), "--repo-id", "es-zoo-test/glues",
                                   "--dry-run", str(tmp_path / "dry")])
    assert res.exit_code == 1 and "declares" in res.output and not (tmp_path / "dry").exists()
    # values outside the label set
    shutil.rmtree(bad)
    shutil.copytree(suite_dataset, bad)
    shard = bad / "pawsx-shipped" / "test-00000-of-00001.parquet"
    table = pq.read_table(shard)
    import pyarrow as pa

    labels = table.column("label").to_pylist()
    labels[3] = 7
    pq.write_table(table.set_column(table.schema.get_field_index("label"), "label", pa.array(labels, pa.int64()))
                   .replace_schema_metadata(table.schema.metadata), shard)
    with pytest.raises(DatasetBuildError, match="outside its 2 labels"):
        check_dataset(bad)


def test_dataset_build_refuses_to_overwrite_and_names_missing_data(suite_dataset: Path, tmp_path: Path) -> None:
    with pytest.raises(DatasetBuildError, match="--overwrite"):
        build_dataset("glues", suite_dataset, source_names={"pos": "shipped"}, echo=lambda s: None)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("x")
    with pytest.raises(DatasetBuildError, match="not empty"):
        build_dataset("glues", mine, source_names={"pos": "shipped"}, echo=lambda s: None)
    with pytest.raises(DatasetBuildError, match="no task of the glues suite has data"):
        build_dataset("glues", tmp_path / "empty", data_dir=tmp_path, echo=lambda s: None)
    res = CliRunner().invoke(cli, ["datasets", "build", "seq2seq", "--output", str(tmp_path / "s2s"),
                                   "--source", "translation=shipped", "--source", "generative_qa=shipped"])
    assert res.exit_code == 0, res.output
    m = json.loads((tmp_path / "s2s" / "es_zoo_dataset.json").read_text())
    assert m["configs"]["translation-shipped"]["splits"]["test_tatoeba"]["rows"] == 300
    dry = tmp_path / "dry"
    res = CliRunner().invoke(cli, ["datasets", "publish", str(tmp_path / "s2s"), "--repo-id", "es-zoo-test/s2s",
                                   "--dry-run", str(dry)])
    assert res.exit_code == 0, res.output
    files = sorted(p.relative_to(dry / "files").as_posix() for p in (dry / "files").rglob("*") if p.is_file())
    assert files == ["README.md", "es_zoo_dataset.json", "generative_qa-shipped/test-00000-of-00001.parquet",
                     "generative_qa-shipped/train-00000-of-00001.parquet",
                     "translation-shipped/test-00000-of-00001.parquet",
                     "translation-shipped/test_tatoeba-00000-of-00001.parquet",
                     "translation-shipped/train-00000-of-00001.parquet"]
    assert 'load_dataset("es-zoo-test/s2s"' in (dry / "files" / "README.md").read_text()
