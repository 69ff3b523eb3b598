"""Task data from its Hub home (recipes/tasks/*.yaml ``hub:``), through the real ``huggingface_hub`` and
``datasets`` clients talking to the local Hub-compatible server (tests/hub_server.py). Every Hub source is
served as a fixture with the real dataset's schema at its pinned revision; what comes out must equal the same
rows read from the published files. No test touches the network."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from hub_fixtures import build, hub_sources
from hub_server import HubServer

TOKEN = "hf_test_token_hub_sources"
SOURCES = hub_sources()


def _env(hub_url: str, home: Path, offline: bool = False) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.upper().startswith(("HF_", "HUGGINGFACE_")) and not k.lower().endswith("_proxy")}
    env.update(HF_ENDPOINT=hub_url, HF_HOME=str(home), HF_HUB_OFFLINE="1" if offline else "0",
               HF_DATASETS_OFFLINE="1" if offline else "0", HF_HUB_DISABLE_XET="1", HF_HUB_DISABLE_TELEMETRY="1",
               HF_HUB_DISABLE_PROGRESS_BARS="1", NO_PROXY="127.0.0.1,localhost", GRADIO_ANALYTICS_ENABLED="False",
               PYTHONPATH=os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")]))
    return env


def _python(script: str, env: dict, tmp: Path, timeout: float = 600) -> dict:
    path = tmp / "client.py"
    path.write_text(textwrap.dedent(script))
    proc = subprocess.run([sys.executable, str(path), str(tmp)], env=env, capture_output=True, text=True,
                          timeout=timeout)
    if proc.returncode != 0:
        pytest.fail(f"client failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-6000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _cli(args: list[str], env: dict, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "es_zoo", *args], env=env, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory):
    """The local Hub serving a fixture of every task source's Hub home; ``raw`` has the same rows as files."""
    from es_zoo.tasks.definitions import load_task

    root = tmp_path_factory.mktemp("hub-sources")
    repos: dict[tuple[str, str], dict[str, bytes]] = {}
    raw = {}
    for task, source in SOURCES:
        fx = build(load_task(task), source, root)
        for key, files in fx.hub.items():
            for path, data in files.items():
                assert repos.setdefault(key, {}).setdefault(path, data) == data, f"{key} {path}: two fixtures differ"
        raw[f"{task}/{source}"] = fx.raw
    server = HubServer(token=TOKEN).start()
    for (repo, revision), files in repos.items():
        server.seed(repo, files, revision=revision)
    yield server, raw, root
    server.stop()


def test_every_task_source_with_a_hub_home_has_a_fixture(tmp_path) -> None:
    """Each Hub source is covered below: a source added to a task YAML without a fixture fails here."""
    from es_zoo.tasks.definitions import load_task

    assert len(SOURCES) >= 20
    for task, source in SOURCES:
        fx = build(load_task(task), source, tmp_path)  # raises KeyError for an unknown repo
        spec = load_task(task).source(source).hub
        assert set(fx.raw) == set(spec.splits), (task, source)  # every split served and written as files


COMPARE = """
    import json, sys
    from pathlib import Path
    from es_zoo.tasks.data import load_task_data
    from es_zoo.tasks.definitions import load_task
    from es_zoo.tasks.hub_sources import HubDataError

    raw = json.loads(Path(sys.argv[1], "raw.json").read_text())
    out = {}
    for key, files in raw.items():
        task_name, source = key.split("/")
        task = load_task(task_name)
        hub = load_task_data(task, source=source, accept_changed=True)
        ref = load_task_data(task, source=source, files=files)
        res = {"origin": hub.origin, "splits": {}, "changed": hub.changed, "license": hub.describe()["license"],
               "citation": hub.describe()["citation"]}
        for split in ref.dataset:
            a, b = hub.dataset[split], ref.dataset[split]
            rows_a = [{k: v for k, v in r.items() if k != "id"} for r in a]
            rows_b = [{k: v for k, v in r.items() if k != "id"} for r in b]
            res["splits"][split] = {"rows": len(a), "equal": rows_a == rows_b,
                                    "features": a.features == b.features, "ids_unique": len(set(a["id"])) == len(a),
                                    "first": [rows_a[:1], rows_b[:1]] if rows_a != rows_b else None}
        res["hub_splits"] = sorted(hub.dataset)
        out[key] = res
    # without --accept-changed-data the fixture (a few rows, not the published sizes) is refused
    try:
        load_task_data(load_task("pawsx"), source="pawsx")
        out["refused"] = None
    except HubDataError as exc:
        out["refused"] = str(exc)
    print(json.dumps(out))
"""


def test_every_hub_source_gives_the_rows_of_its_published_files(served, tmp_path) -> None:
    server, raw, _ = served
    (tmp_path / "raw.json").write_text(json.dumps(raw))
    out = _python(COMPARE, _env(server.url, tmp_path / "hf"), tmp_path)
    refused = out.pop("refused")
    assert len(out) == len(SOURCES)
    for key, res in out.items():
        assert res["origin"].startswith("hub:"), key
        assert res["hub_splits"] == sorted(raw[key]), key
        for split, s in res["splits"].items():
            assert s["equal"] and s["features"] and s["ids_unique"], (key, split, s)
            assert s["rows"] >= 2, (key, split)
        # a few fixture rows are not the published sizes: flagged, split by split
        task, source = key.split("/")
        from es_zoo.tasks.definitions import load_task

        spec = load_task(task).source(source).hub
        flagged = {sp for sp, x in spec.splits.items() if x.rows is not None}
        assert set(res["changed"]) == flagged, key
        assert res["license"] and res["citation"], key
    # labels mapped by name: PAWS-X's ClassLabel names are the strings "0" and "1"
    assert refused is not None and "not the one es-zoo pinned" in refused and "49,401" in refused
    assert "--accept-changed-data" in refused


EVALUATE_FROM_HUB = ["evaluate", "{model}", "--suite", "glues", "--tasks", "pawsx,ner", "--accept-changed-data",
                     "--epochs", "1", "--batch-size", "4", "--save-models", "--output-dir", "{out}"]


def test_evaluate_without_data_dir_reads_the_hub_then_works_offline(served, micro_beto, tmp_path) -> None:
    server, _, _ = served
    home = tmp_path / "hf"
    args = [a.format(model=micro_beto, out=tmp_path / "ev") for a in EVALUATE_FROM_HUB]
    proc = _cli(args, _env(server.url, home))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    results = json.loads((tmp_path / "ev" / "results.json").read_text())
    assert set(results["tasks"]) == {"pawsx", "ner"}
    pawsx = results["tasks"]["pawsx"]["data"]
    assert pawsx["origin"] == "hub:google-research-datasets/paws-x@refs/convert/parquet"
    assert pawsx["hub"]["test"]["revision"] == "refs/convert/parquet" and pawsx["changed"]["test"]["published"] == 2000
    assert "Yang et al. 2019" in pawsx["citation"]
    assert "CHANGED" in proc.stdout and "licence" in proc.stdout
    assert results["tasks"]["pawsx"]["comparable"] is False and "not comparable (other data): 89.05" in proc.stdout
    # the card of the fine-tuned model names where its data came from, its licence and citation
    card = next((tmp_path / "ev" / "pawsx").rglob("README.md")).read_text()
    assert "[google-research-datasets/paws-x](https://huggingface.co/datasets/google-research-datasets/paws-x) (es) " \
           "at `refs/convert/parquet`" in card
    assert "**CHANGED data**: train has 4 rows where the published dataset has 49401" in card
    assert "      type: google-research-datasets/paws-x\n      config: es\n      split: test\n      revision: refs/convert/parquet" in card
    assert "Yang et al. 2019" in card and "free for any use" in card
    assert "| split | accuracy | majority-class baseline | examples |" in card  # every score beside its baseline
    assert "**not comparable** with the scores above" in card  # the published 89.05 was on the unchanged data
    # offline afterwards: the Hub cache serves the same data, with no request to the server
    before = len(server.requests)
    proc = _cli(args[:-1] + [str(tmp_path / "ev2")], _env(server.url, home, offline=True))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert len(server.requests) == before
    again = json.loads((tmp_path / "ev2" / "results.json").read_text())
    assert again["tasks"]["pawsx"]["data"]["sizes"] == results["tasks"]["pawsx"]["data"]["sizes"]


def test_data_download_to_a_folder_for_an_offline_machine(served, tmp_path) -> None:
    server, _, _ = served
    target = tmp_path / "esdata"
    proc = _cli(["data", "download", "--suite", "glues", "--tasks", "xnli,pos,mldoc", "--local-dir", str(target),
                 "--accept-changed-data"], _env(server.url, tmp_path / "hf"))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert (target / "facebook" / "xnli" / "es" / "test-00000-of-00001.parquet").is_file()
    assert (target / "universal-dependencies" / "universal_dependencies" / "es_gsd" / "train" / "0000.parquet").is_file()
    out = proc.stdout
    assert "xnli/xnli: checked" in out and "pos/ud-v2.7: checked" in out
    assert "mldoc/mldoc: no Hub copy" in out and "pos/ud-v1.4: no Hub copy" in out
    assert f"--data-dir {target}" in out
    # the other machine: no network, no cache; --data-dir names the downloaded folder
    script = """
        import json, sys
        from es_zoo.tasks.data import load_task_data
        from es_zoo.tasks.definitions import load_task
        d = load_task_data(load_task("xnli"), data_dir=sys.argv[1] + "/esdata", accept_changed=True)
        print(json.dumps({"origin": d.origin, "sizes": d.describe()["sizes"]}))
    """
    res = _python(script, _env("http://127.0.0.1:9", tmp_path / "other-hf", offline=True), tmp_path)
    assert res["origin"].endswith("(local snapshot)") and res["sizes"] == {"train": 4, "validation": 4, "test": 4}


def test_a_suite_dataset_built_from_the_hub_names_its_origin(served, tmp_path) -> None:
    server, _, _ = served
    out = tmp_path / "ds"
    proc = _cli(["datasets", "build", "glues", "--tasks", "pawsx,mldoc", "--output", str(out),
                 "--accept-changed-data"], _env(server.url, tmp_path / "hf"))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    card = (out / "README.md").read_text()
    assert "Read from the Hub: train = [google-research-datasets/paws-x]" in card and "(**CHANGED**: train 4 rows" in card
    assert "Yang et al. 2019" in card
    assert "skipped mldoc" in proc.stdout and "no Hub copy" in proc.stdout
    # es-zoo's own lines report progress; datasets' per-shard bars (reading and writing parquet) stay off
    assert "Creating parquet" not in proc.stderr and "Generating rows split" not in proc.stderr, proc.stderr[-2000:]


def test_docs_list_every_hub_source() -> None:
    from es_zoo.tasks.definitions import list_tasks, load_task

    doc = (Path(__file__).resolve().parents[1] / "docs" / "hub-data.md").read_text()
    for name in list_tasks():
        for sname, src in load_task(name).sources.items():
            if src.hub is None:
                continue
            assert f"| {name} / {sname} |" in doc, (name, sname)
            for spec in src.hub.splits.values():
                assert f"`{spec.repo}`" in doc and f"`{spec.revision}`" in doc, (name, sname)
                if spec.rows:
                    assert f"{spec.split} {spec.rows:,}" in doc, (name, sname, spec.split)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("case", ["offline", "unreachable"])
def test_no_cache_and_no_hub_gives_one_message_per_dataset_quickly(micro_beto, tmp_path, case) -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    env = _env(url, tmp_path / "hf", offline=case == "offline")
    proc = _cli(["evaluate", str(micro_beto), "--suite", "glues", "--output-dir", str(tmp_path / "ev")], env,
                timeout=300)
    assert proc.returncode == 1
    out = proc.stdout + proc.stderr
    assert "Traceback" not in out
    why = "HF_HUB_OFFLINE=1" if case == "offline" else "unreachable"
    for repo, rev in (("facebook/xnli", "4846bbb2cb0061ee797774ec263147d504166488"),
                      ("google-research-datasets/paws-x", "refs/convert/parquet"),
                      ("eriktks/conll2002", "refs/convert/parquet")):
        lines = [ln for ln in out.splitlines() if f"hf download --repo-type dataset {repo} --revision {rev}" in ln]
        assert len(lines) == 1 and why in lines[0], (repo, out[-3000:])
    assert "--data-dir DIR" in out
    assert "skipping mldoc: " in out and "no Hub copy" in out
    assert "pos: source 'ud-v1.4' has no Hub copy" in out and "scoring source 'ud-v2.7' from the Hub instead" in out


BAD = """
    import json
    from es_zoo.tasks.data import load_task_data
    from es_zoo.tasks.definitions import load_task
    from es_zoo.tasks.hub_sources import HubDataError
    out = {}
    for task, source in (("pawsx", "pawsx"), ("qa", "xquad"), ("parsing", "ud-v2.7"), ("ner", "conll2002")):
        try:
            load_task_data(load_task(task), source=source, accept_changed=True)
            out[task] = None
        except HubDataError as exc:
            out[task] = str(exc)
    print(json.dumps(out))
"""


def test_hub_rows_get_the_file_readers_checks(micro_beto, tmp_path) -> None:
    """A label outside the task's set, an answer away from its offset, a sentence whose heads are not a
    tree, a file that is not parquet: each refused in one line with the dataset, split and row."""
    from es_zoo.tasks.definitions import load_task
    import hub_fixtures as hf

    fx = {}
    for task, source in (("pawsx", "pawsx"), ("qa", "xquad"), ("parsing", "ud-v2.7"), ("ner", "conll2002")):
        fx.update(build(load_task(task), source, tmp_path / "fx").hub)
    from datasets import ClassLabel, Dataset, Features, Value
    import io

    buf = io.BytesIO()
    feats = Features({"id": Value("int32"), "sentence1": Value("string"), "sentence2": Value("string"),
                      "label": ClassLabel(names=["0", "1", "2"])})
    Dataset.from_list([{"id": 1, "sentence1": "Hola.", "sentence2": "Adiós.", "label": 0},
                       {"id": 2, "sentence1": "Sí.", "sentence2": "No.", "label": 2}], features=feats).to_parquet(buf)
    fx[("google-research-datasets/paws-x", "refs/convert/parquet")]["es/test/0000.parquet"] = buf.getvalue()
    rows = hf._squad_questions(3, 3)
    rows[1]["answers"]["answer_start"] = [s + 1 for s in rows[1]["answers"]["answer_start"]]
    xq = ("google/xquad", "51adfef1c1287aab1d2d91b5bead9bcfb9c68583")
    fx[xq]["xquad.es/validation-00000-of-00001.parquet"] = hf.parquet_bytes(
        "google/xquad", [{k: r[k] for k in ("id", "context", "question", "answers")} for r in rows])
    ud = [hf._ud_row(b) for b in hf._conllu_sentences(2, 10)]
    for r in ud:
        r["upos"] = [hf.UD_UPOS.index(u) for u in r["upos"]]
    words = [i for i, u in enumerate(ud[1]["upos"]) if hf.UD_UPOS[u] != "_"]
    a, b = [j for j, i in enumerate(words) if ud[1]["head"][i] != "0"][:2]
    ud[1]["head"][words[a]], ud[1]["head"][words[b]] = str(b + 1), str(a + 1)  # two words point at each other
    fx[("eriktks/conll2002", "refs/convert/parquet")]["es/validation/0000.parquet"] = b"PAR1 this is not parquet"
    key = ("universal-dependencies/universal_dependencies", "refs/convert/parquet")
    fx[key]["es_gsd/validation/0000.parquet"] = hf.parquet_bytes("universal-dependencies/universal_dependencies", ud)
    with HubServer(token=TOKEN) as server:
        for (repo, revision), files in fx.items():
            server.seed(repo, files, revision=revision)
        out = _python(BAD, _env(server.url, tmp_path / "hf"), tmp_path)
    assert out["pawsx"].startswith("google-research-datasets/paws-x (config es), split 'test': column 'label' has "
                                   "labels ['2']"), out["pawsx"]
    assert out["qa"].startswith("google/xquad (config xquad.es), split 'test', row 1: question"), out["qa"]
    assert "is not at answer_start" in out["qa"]
    assert "split 'validation', row 3: " in out["parsing"] and "form a cycle" in out["parsing"], out["parsing"]
    assert out["ner"].startswith("eriktks/conll2002@refs/convert/parquet, split 'validation': cannot read its parquet "
                                 "files"), out["ner"]
    assert all("\n" not in v for v in out.values())


def test_hub_blocks_are_checked_with_the_file_and_key(tmp_path) -> None:
    from es_zoo.tasks.definitions import TaskError, load_task, tasks_dir

    text = (tasks_dir() / "pawsx.yaml").read_text()
    bad = tmp_path / "t1.yaml"
    bad.write_text(text.replace("      revision: refs/convert/parquet", "      revison: x\n      revision: refs/convert/parquet", 1))
    with pytest.raises(TaskError, match=r"t1.yaml: sources.pawsx.hub.revison: unknown key \(did you mean 'revision'\?\)"):
        load_task(bad)
    bad.write_text(text.replace("rows: 49401", "rows: -3"))
    with pytest.raises(TaskError, match=r"sources.pawsx.hub.splits.train.rows: expected the published number of rows"):
        load_task(bad)
    bad.write_text(text.replace("        train: {files: [es/train/*.parquet], rows: 49401}\n",
                                "        dev: {files: [es/train/*.parquet], rows: 49401}\n"))
    with pytest.raises(TaskError, match=r"sources.pawsx.hub.splits.dev: 'dev' is not train, validation, test"):
        load_task(bad)
    bad.write_text(text.replace("id: google-research-datasets/paws-x", "id: ../../etc"))
    with pytest.raises(TaskError, match=r"sources.pawsx.hub.id: '../../etc' is not a Hub dataset id ORG/NAME"):
        load_task(bad)
    bad.write_text(text.replace("[es/train/*.parquet]", "[../../secret/*.parquet]"))
    with pytest.raises(TaskError, match=r"hub.splits.train.files: patterns are paths inside the repo"):
        load_task(bad)
    bad.write_text(text.replace("      from: ", "      fro: "))
    with pytest.raises(TaskError, match=r"sources.pawsx.hub.fro: unknown key \(did you mean 'from'\?\)"):
        load_task(bad)


def test_tasks_command_says_where_each_source_comes_from() -> None:
    from click.testing import CliRunner

    from es_zoo.cli import cli

    out = CliRunner().invoke(cli, ["tasks", "mldoc"]).output
    assert "no Hub copy: the Reuters RCV2 texts are licensed" in out
    out = CliRunner().invoke(cli, ["tasks", "qa"]).output
    assert "Hub: ccasimiro/squad_es@refs/convert/parquet (train); google/xquad@51adfef" in out
    assert "shipped with es-zoo" in out
