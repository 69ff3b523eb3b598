"""Publishing for real: the real huggingface_hub client (through `es-zoo publish` / `es-zoo datasets
publish`) against the Hub-compatible server of hub_server.py on 127.0.0.1, then downloading it back with
snapshot_download, loading it with transformers and datasets and reading the card with ModelCard.load.

huggingface_hub reads HF_ENDPOINT and HF_HUB_OFFLINE when it is imported and this test process runs
offline, so every client call runs in a subprocess with the server as its endpoint."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.hub_server import HubServer

REPO = Path(__file__).resolve().parent.parent
CANARY = "hf_CANARYcanaryCANARY0123456789abcdef"
WRONG = "hf_WRONGwrongWRONG0123456789abcdef"


@pytest.fixture()
def hub() -> HubServer:
    server = HubServer(token=CANARY).start()
    yield server
    server.stop()


def _env(hub: HubServer, tmp_path: Path, token: str = CANARY) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy") and not k.startswith("HF_")}
    env.update(HF_ENDPOINT=hub.url, HF_HUB_OFFLINE="0", HF_DATASETS_OFFLINE="0", HF_HUB_DISABLE_XET="1",
               HF_TOKEN=token, HF_HOME=str(tmp_path / "hf-home"), HF_HUB_DISABLE_TELEMETRY="1",
               HF_HUB_ETAG_TIMEOUT="5", HF_HUB_DOWNLOAD_TIMEOUT="10", GRADIO_ANALYTICS_ENABLED="False",
               PYTHONPATH=str(REPO), NO_PROXY="127.0.0.1,localhost", TOKENIZERS_PARALLELISM="false")
    return env


def es_zoo(hub: HubServer, tmp_path: Path, *args: str, token: str = CANARY) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "es_zoo", *args], env=_env(hub, tmp_path, token),
                          capture_output=True, text=True, timeout=300)


def client(hub: HubServer, tmp_path: Path, code: str) -> dict:
    """Run ``code`` (which sets ``out``) with the real client pointed at the server; return ``out``."""
    script = tmp_path / "client.py"
    script.write_text(code + "\nimport json as _j\nprint('@@' + _j.dumps(out))\n")
    p = subprocess.run([sys.executable, str(script)], env=_env(hub, tmp_path), capture_output=True, text=True,
                       timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    return json.loads(p.stdout.rsplit("@@", 1)[1])


def _no_canary(*texts: str, roots: tuple[Path, ...] = ()) -> None:
    for t in texts:
        assert CANARY not in t
    for root in roots:
        for f in root.rglob("*"):
            if f.is_file():
                assert CANARY.encode() not in f.read_bytes(), f


# ------------------------------------------------------------------------------------------ models
def test_publish_download_load_and_read_back_the_card(hub: HubServer, published_runs: dict, tmp_path: Path) -> None:
    run = published_runs["t5s"]
    p = es_zoo(hub, tmp_path, "publish", str(run), "--repo-id", "es-zoo-test/t5s-micro")
    assert p.returncode == 0, p.stderr
    commits = hub.commits("es-zoo-test/t5s-micro")
    assert commits[0]["title"] == "es-zoo: publish t5s (tiny preset)"
    files = hub.files("es-zoo-test/t5s-micro")
    assert sorted(f for f in files if f != ".gitattributes") == [
        "README.md", "config.json", "generation_config.json", "loss_curve.png", "model.safetensors", "recipe.yaml",
        "tokenizer.json", "tokenizer_config.json"]
    assert files["model.safetensors"] == (run / "model" / "model.safetensors").read_bytes()
    got = client(hub, tmp_path, """
import torch
from huggingface_hub import ModelCard, snapshot_download
from transformers import AutoModelForSeq2SeqLM, AutoTokenizer
path = snapshot_download("es-zoo-test/t5s-micro")
model = AutoModelForSeq2SeqLM.from_pretrained("es-zoo-test/t5s-micro")
tok = AutoTokenizer.from_pretrained("es-zoo-test/t5s-micro")
ids = tok("El perro <extra_id_0> en el jardín.", return_tensors="pt")
with torch.no_grad():
    logits = model(**ids, decoder_input_ids=torch.tensor([[model.config.decoder_start_token_id]])).logits
card = ModelCard.load("es-zoo-test/t5s-micro")
out = {"path": path, "files": sorted(__import__("os").listdir(path)), "logits": logits[0, 0, :5].tolist(),
       "evals": [dict(task=e.task_name, split=e.dataset_split, metric=e.metric_name, value=e.metric_value,
                      dataset=e.dataset_type, config=e.dataset_config) for e in card.data.eval_results or []],
       "language": card.data.language, "tags": card.data.tags, "text": card.text}
""")
    # the same model as the local folder
    import torch
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    local = AutoModelForSeq2SeqLM.from_pretrained(run / "model")
    tok = AutoTokenizer.from_pretrained(run / "model")
    ids = tok("El perro <extra_id_0> en el jardín.", return_tensors="pt")
    with torch.no_grad():
        ref = local(**ids, decoder_input_ids=torch.tensor([[local.config.decoder_start_token_id]])).logits[0, 0, :5]
    assert got["logits"] == pytest.approx(ref.tolist(), abs=1e-6)
    # the run's scores are on shipped fixtures: in the card's body, not in its model-index
    results = json.loads((run / "results.json").read_text())
    t = results["seq2seq"]["translation"]
    assert got["evals"] == [] and "left out of the model-index" in got["text"]
    assert f"| translation | {t['source']} | {t['split']} | {t['examples']} | bleu | {t['main']:.2f} |" in got["text"]
    assert got["language"] == "es" and "es-zoo" in got["tags"]
    assert 'from_pretrained("es-zoo-test/t5s-micro")' in got["text"]
    _no_canary(p.stdout, p.stderr, roots=(tmp_path, run))


def test_republishing_unchanged_files_uploads_nothing(hub: HubServer, published_runs: dict, tmp_path: Path) -> None:
    run = published_runs["pos"]
    assert es_zoo(hub, tmp_path, "publish", str(run), "--repo-id", "es-zoo-test/pos").returncode == 0
    n_commits, n_requests = len(hub.commits("es-zoo-test/pos")), len(hub.requests)
    p = es_zoo(hub, tmp_path, "publish", str(run), "--repo-id", "es-zoo-test/pos")
    assert p.returncode == 0 and "nothing to upload" in p.stdout, p.stdout + p.stderr
    assert len(hub.commits("es-zoo-test/pos")) == n_commits
    later = hub.requests[n_requests:]
    assert not [r for r in later if r[0] in ("PUT", "POST") and ("/commit/" in r[1] or "lfs" in r[1] or "preupload" in r[1])]
    # the fine-tune loads back as a token classifier with its labels
    got = client(hub, tmp_path, """
from transformers import AutoModelForTokenClassification
from huggingface_hub import ModelCard
m = AutoModelForTokenClassification.from_pretrained("es-zoo-test/pos")
card = ModelCard.load("es-zoo-test/pos")
out = {"labels": [m.config.id2label[i] for i in range(m.config.num_labels)],
       "evals": [(e.dataset_split, e.metric_type, e.metric_value) for e in card.data.eval_results or []]}
""")
    from es_zoo.tasks.definitions import load_task

    assert got["labels"] == load_task("pos").labels_for("shipped")
    assert got["evals"] == []  # a fixture's score stays out of the model-index (the body shows it)


def test_a_card_edited_on_the_hub_is_kept_unless_overwrite_card(hub: HubServer, published_runs: dict,
                                                                 tmp_path: Path) -> None:
    run = published_runs["t5s"]
    assert es_zoo(hub, tmp_path, "publish", str(run), "--repo-id", "es-zoo-test/card").returncode == 0
    client(hub, tmp_path, """
from huggingface_hub import HfApi, hf_hub_download
api = HfApi()
text = open(hf_hub_download("es-zoo-test/card", "README.md")).read().replace("## How to use", "## How to use\\n\\nEdited on the Hub.")
api.upload_file(path_or_fileobj=text.encode(), path_in_repo="README.md", repo_id="es-zoo-test/card", commit_message="edit card")
out = {}
""")
    p = es_zoo(hub, tmp_path, "publish", str(run), "--repo-id", "es-zoo-test/card")
    assert p.returncode == 0 and "edited by a person" in p.stdout
    assert b"Edited on the Hub." in hub.files("es-zoo-test/card")["README.md"]
    assert hub.commits("es-zoo-test/card")[0]["title"] == "edit card"  # nothing else changed: no commit
    p = es_zoo(hub, tmp_path, "publish", str(run), "--repo-id", "es-zoo-test/card", "--overwrite-card")
    assert p.returncode == 0, p.stderr
    assert b"Edited on the Hub." not in hub.files("es-zoo-test/card")["README.md"]


def test_branches_pull_requests_and_private_repos(hub: HubServer, published_runs: dict, tmp_path: Path) -> None:
    run = published_runs["pos"]
    p = es_zoo(hub, tmp_path, "publish", str(run), "--repo-id", "es-zoo-test/br", "--private", "--revision", "v1")
    assert p.returncode == 0, p.stderr
    assert "model.safetensors" in hub.files("es-zoo-test/br", revision="v1")
    assert "model.safetensors" not in hub.files("es-zoo-test/br", revision="main")
    p = es_zoo(hub, tmp_path, "publish", str(run), "--repo-id", "es-zoo-test/pr", "--create-pr")
    assert p.returncode == 0, p.stderr
    assert "refs/pr/1" in p.stdout or "discussions/1" in p.stdout
    # a private repo is invisible without the token
    got = client(hub, tmp_path, """
import os
from huggingface_hub import HfApi
from huggingface_hub.errors import RepositoryNotFoundError
try:
    HfApi(token=False).model_info("es-zoo-test/br")
    out = {"seen": True}
except RepositoryNotFoundError:
    out = {"seen": False}
""")
    assert got == {"seen": False}


# ---------------------------------------------------------------------------------------- failures
def test_server_errors_give_clear_messages_and_a_retry_finishes(hub: HubServer, published_runs: dict,
                                                                tmp_path: Path) -> None:
    run = published_runs["pos"]
    p = es_zoo(hub, tmp_path, "publish", str(run), "--repo-id", "es-zoo-test/err", token=WRONG)
    assert p.returncode == 1 and "401" in p.stderr and "HF_TOKEN" in p.stderr and "Traceback" not in p.stderr
    assert WRONG not in p.stdout + p.stderr
    for status, drop, words in ((500, False, "HTTP 500"), (409, False, "conflict"), (404, False, "not found"),
                                (200, True, "could not reach the Hub")):
        hub.fail_next("POST", r"/api/models/es-zoo-test/err/commit/", status=status, drop=drop)
        p = es_zoo(hub, tmp_path, "publish", str(run), "--repo-id", "es-zoo-test/err")
        assert p.returncode == 1 and words in p.stderr, (status, p.stderr)
        assert "Traceback" not in p.stderr
        assert [c["title"] for c in hub.commits("es-zoo-test/err")] == ["initial commit"]  # nothing half-published
        _no_canary(p.stdout, p.stderr)
    p = es_zoo(hub, tmp_path, "publish", str(run), "--repo-id", "es-zoo-test/err")
    assert p.returncode == 0, p.stderr
    assert len(hub.commits("es-zoo-test/err")) == 2 and "model.safetensors" in hub.files("es-zoo-test/err")
    hub.fail_next("POST", r"/api/repos/create", status=503)
    p = es_zoo(hub, tmp_path, "publish", str(run), "--repo-id", "es-zoo-test/err2")
    assert p.returncode == 1 and "HTTP 503" in p.stderr and "again" in p.stderr


# ---------------------------------------------------------------------------------------- datasets
def test_publish_a_suite_dataset_and_load_it_back(hub: HubServer, suite_dataset: Path, tmp_path: Path) -> None:
    p = es_zoo(hub, tmp_path, "datasets", "publish", str(suite_dataset), "--repo-id", "es-zoo-test/glues")
    assert p.returncode == 0, p.stderr
    assert hub.commits("es-zoo-test/glues", repo_type="dataset")[0]["title"].startswith("es-zoo: publish the glues")
    got = client(hub, tmp_path, """
from datasets import load_dataset
from es_zoo.tasks.data import load_task_data
from es_zoo.tasks.definitions import load_task
pos = load_dataset("es-zoo-test/glues", "pos-shipped")
via = load_task_data(load_task("parsing"), source="shipped", data_dir="es-zoo-test/glues")
out = {"sizes": {k: len(v) for k, v in pos.items()}, "names": pos["train"].features["upos"].feature.names,
       "row": pos["test"][3], "origin": via.origin, "parsing": len(via.dataset["test"])}
""")
    from datasets import load_dataset

    local = load_dataset(str(suite_dataset), "pos-shipped")
    assert got["sizes"] == {"train": 600, "test": 200} and got["row"] == local["test"][3]
    assert got["names"] == local["train"].features["upos"].feature.names
    assert got["origin"] == "hub:es-zoo-test/glues" and got["parsing"] == 200
    _no_canary(p.stdout, p.stderr, roots=(tmp_path, suite_dataset))



# ------------------------------------------------------------------------------------------ spaces
def test_publish_a_space_and_read_its_card_back(hub: HubServer, tmp_path: Path) -> None:
    from es_zoo.spaces import GRADIO_VERSION, render_space

    p = es_zoo(hub, tmp_path, "spaces", "publish", "ner", "--repo-id", "es-zoo-test/ner-demo")
    assert p.returncode == 0, p.stderr
    files = hub.files("es-zoo-test/ner-demo", repo_type="space")
    rendered = render_space("ner")
    assert {k: v for k, v in files.items() if k != ".gitattributes"} == {k: v.encode() for k, v in rendered.items()}
    assert hub.commits("es-zoo-test/ner-demo", repo_type="space")[0]["title"].startswith("es-zoo: publish the ner demo")
    got = client(hub, tmp_path, """
from huggingface_hub import SpaceCard, HfApi
card = SpaceCard.load("es-zoo-test/ner-demo", repo_type="space")
out = {"repo_sdk": HfApi().space_info("es-zoo-test/ner-demo").sdk, "sdk": card.data.sdk, "version": card.data.sdk_version, "app": card.data.app_file, "models": card.data.models,
       "files": sorted(HfApi().list_repo_files("es-zoo-test/ner-demo", repo_type="space"))}
""")
    assert got["repo_sdk"] == "gradio"  # the repo was created as a Gradio Space
    assert got["sdk"] == "gradio" and got["version"] == GRADIO_VERSION and got["app"] == "app.py"
    assert got["models"] and got["files"] == [".gitattributes", "README.md", "app.py", "requirements.txt"]
    # publishing the same Space again changes nothing and makes no commit
    again = es_zoo(hub, tmp_path, "spaces", "publish", "ner", "--repo-id", "es-zoo-test/ner-demo")
    assert again.returncode == 0, again.stderr
    assert len(hub.commits("es-zoo-test/ner-demo", repo_type="space")) == 2  # the initial commit and ours
    _no_canary(p.stdout, p.stderr, again.stdout, again.stderr)

def test_the_token_never_leaks_through_any_command(hub: HubServer, published_runs: dict, suite_dataset: Path,
                                                    tmp_path: Path) -> None:
    run = published_runs["pos"]
    outputs = []
    for args in (["card", str(published_runs["t5s"]), "--repo-id", "es-zoo-test/t", "--overwrite-card"],
                 ["publish", str(run), "--repo-id", "es-zoo-test/leak", "--dry-run", str(tmp_path / "dry")],
                 ["publish", str(run), "--repo-id", "es-zoo-test/leak"],
                 ["publish", str(run), "--repo-id", "bad id"],
                 ["datasets", "build", "glues", "--output", str(tmp_path / "ds"), "--source", "pos=shipped"],
                 ["datasets", "publish", str(tmp_path / "ds"), "--repo-id", "es-zoo-test/leak-ds", "--dry-run",
                  str(tmp_path / "dry-ds")],
                 ["datasets", "publish", str(tmp_path / "ds"), "--repo-id", "es-zoo-test/leak-ds"]):
        p = es_zoo(hub, tmp_path, *args)
        outputs += [p.stdout, p.stderr]
    hub.fail_next("POST", r"/commit/", status=500)
    p = es_zoo(hub, tmp_path, "publish", str(published_runs["t5s"]), "--repo-id", "es-zoo-test/leak2")
    outputs += [p.stdout, p.stderr]
    _no_canary(*outputs, roots=(tmp_path, published_runs["t5s"], run, suite_dataset))
    for repo, kind in (("es-zoo-test/leak", "model"), ("es-zoo-test/leak-ds", "dataset")):
        for name, data in hub.files(repo, repo_type=kind).items():
            assert CANARY.encode() not in data, name
