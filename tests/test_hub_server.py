"""The in-memory Hub of ``tests/hub_server.py`` against the real ``huggingface_hub`` and ``datasets`` clients.

The clients run in a subprocess: ``huggingface_hub`` reads ``HF_ENDPOINT`` / ``HF_HUB_OFFLINE`` when it is imported,
and this test process runs with ``HF_HUB_OFFLINE=1``. The raw-HTTP tests at the end check the server's own rules
(auth, error headers, LFS checks, ranges) without any client.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.hub_server import HubServer

TOKEN = "hf_fixture_token_0123456789"


@pytest.fixture
def hub():
    server = HubServer(token=TOKEN).start()
    yield server
    server.stop()


def run_client(hub: HubServer, tmp_path: Path, script: str, timeout: float = 60) -> dict:
    """Run ``script`` with the real clients pointed at ``hub``; it prints one JSON line last, returned here."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.upper().startswith(("HF_", "HUGGINGFACE_")) and not k.lower().endswith("_proxy")
    }
    env.update(
        HF_ENDPOINT=hub.url,
        HF_TOKEN=TOKEN,
        HF_HOME=str(tmp_path / "hf"),
        HF_HUB_OFFLINE="0",
        HF_DATASETS_OFFLINE="0",
        HF_HUB_DISABLE_XET="1",
        HF_HUB_DISABLE_TELEMETRY="1",
        HF_HUB_DISABLE_PROGRESS_BARS="1",
        NO_PROXY="127.0.0.1,localhost",
    )
    path = tmp_path / "client.py"
    path.write_text(textwrap.dedent(script))
    proc = subprocess.run(
        [sys.executable, str(path), str(tmp_path)], env=env, capture_output=True, text=True, timeout=timeout
    )
    if proc.returncode != 0:
        pytest.fail(f"client script failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-6000:]}")
    assert TOKEN not in proc.stdout + proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


MODEL_SCRIPT = """
    import json, logging, os, struct, sys
    from pathlib import Path
    from huggingface_hub import (
        CommitOperationAdd, CommitOperationDelete, HfApi, ModelCard, hf_hub_download, snapshot_download,
    )
    from huggingface_hub.errors import RepositoryNotFoundError

    work = Path(sys.argv[1])
    api = HfApi()
    out = {"user": api.whoami()["name"]}
    repo = "es-zoo/tiny"
    out["url"] = str(api.create_repo(repo))
    api.create_repo(repo, exist_ok=True)  # 409 from the server, swallowed by the client
    api.create_repo("es-zoo/secret", private=True)

    folder = work / "folder"
    folder.mkdir()
    header = json.dumps({"w": {"dtype": "F32", "shape": [1024], "data_offsets": [0, 4096]}}).encode()
    (folder / "model.safetensors").write_bytes(struct.pack("<Q", len(header)) + header + os.urandom(4096))
    (folder / "config.json").write_text('{"hidden_size": 32}\\n')
    (folder / "README.md").write_text("---\\nlicense: apache-2.0\\nlanguage: es\\n---\\n# Tiny\\n")

    first = api.upload_folder(repo_id=repo, folder_path=folder, commit_message="Add model")
    messages = []
    handler = logging.Handler()
    handler.emit = lambda record: messages.append(record.getMessage())
    logging.getLogger("huggingface_hub").addHandler(handler)
    again = api.upload_folder(repo_id=repo, folder_path=folder, commit_message="Add model again")
    logging.getLogger("huggingface_hub").removeHandler(handler)
    out.update(first=first.oid, again=again.oid, again_messages=messages)

    api.create_branch(repo, branch="dev")
    dev = api.upload_file(path_or_fileobj=b'{"dev": 1}\\n', path_in_repo="dev.json", repo_id=repo, revision="dev",
                          commit_message="Dev config")
    pr = api.create_commit(
        repo,
        operations=[CommitOperationAdd("notes/pr.txt", b"proposal\\n"), CommitOperationDelete("config.json")],
        commit_message="Proposal",
        create_pr=True,
    )
    out.update(dev=dev.oid, pr_revision=pr.pr_revision, pr_num=pr.pr_num, pr_oid=pr.oid)
    out["pr_files"] = api.list_repo_files(repo, revision=pr.pr_revision)
    out["dev_files"] = api.list_repo_files(repo, revision="dev")

    out["files"] = api.list_repo_files(repo)
    out["tree"] = [
        {"path": f.path, "lfs": getattr(f, "lfs", None) is not None, "size": getattr(f, "size", None),
         "last_commit": f.last_commit.title if f.last_commit else None}
        for f in api.list_repo_tree(repo, recursive=True, expand=True)
    ]
    out["paths_info"] = sorted(p.path for p in api.get_paths_info(repo, ["config.json", "model.safetensors", "nope"]))
    out["exists"] = [api.file_exists(repo, "config.json"), api.file_exists(repo, "nope.json"),
                     api.file_exists(repo, "dev.json", revision="dev")]
    out["commits"] = [c.title for c in api.list_repo_commits(repo)]
    info = api.model_info(repo, files_metadata=True)
    out["sha"] = info.sha
    out["card_license"] = (info.card_data or {}).get("license")
    out["siblings_lfs"] = sorted(s.rfilename for s in info.siblings if s.lfs)

    snap = Path(snapshot_download(repo))
    out["snapshot_equal"] = sorted(
        p.name for p in folder.iterdir() if (snap / p.name).read_bytes() == p.read_bytes()
    )
    out["snapshot_files"] = sorted(str(p.relative_to(snap)) for p in snap.rglob("*") if p.is_file())
    out["download_equal"] = Path(hf_hub_download(repo, "model.safetensors", revision="dev")).read_bytes() == (
        folder / "model.safetensors"
    ).read_bytes()
    out["card"] = ModelCard.load(repo).data.to_dict()

    out["private_flag"] = api.model_info("es-zoo/secret").private
    try:
        HfApi(token=False).model_info("es-zoo/secret")
        out["anonymous_private"] = "no error"
    except RepositoryNotFoundError as e:
        out["anonymous_private"] = e.response.status_code
    print(json.dumps(out))
"""


def test_model_repo_round_trip(hub: HubServer, tmp_path: Path) -> None:
    out = run_client(hub, tmp_path, MODEL_SCRIPT)
    repo = "es-zoo/tiny"
    assert out["user"] == "es-zoo-tester"
    assert out["url"] == f"{hub.url}/{repo}"

    # the identical re-upload makes no commit: the client drops unchanged files and returns the head
    assert out["again"] == out["first"]
    assert any("No files have been modified" in m for m in out["again_messages"])
    log = hub.requests
    branch_at = log.index(("POST", f"/api/models/{repo}/branch/dev", 200))
    before = log[:branch_at]
    sha = hashlib.sha256((tmp_path / "folder" / "model.safetensors").read_bytes()).hexdigest()
    assert [r for r in before if r[0] == "PUT"] == [("PUT", f"/_lfs/upload/models/{repo}/{sha}", 200)]
    assert [r for r in before if r[1].endswith("/commit/main")] == [("POST", f"/api/models/{repo}/commit/main", 200)]
    assert sum(r[1].endswith(".git/info/lfs/objects/batch") for r in before) == 2  # asked twice, upload once

    # server-side state
    main = hub.files(repo)
    assert sorted(main) == [".gitattributes", "README.md", "config.json", "model.safetensors"]
    assert main["config.json"] == b'{"hidden_size": 32}\n'
    commits = hub.commits(repo)
    assert [c["title"] for c in commits] == ["Add model", "initial commit"] == out["commits"]
    assert commits[0]["id"] == out["first"] == out["sha"]
    assert [c["title"] for c in hub.commits(repo, revision="dev")] == ["Dev config", "Add model", "initial commit"]
    assert hub.commits(repo, revision="refs/pr/1")[0]["title"] == "Proposal"
    assert hub.refs(repo)["refs/pr/1"] == out["pr_oid"]
    assert out["pr_revision"] == "refs/pr/1" and out["pr_num"] == 1
    assert "notes/pr.txt" in out["pr_files"] and "config.json" not in out["pr_files"]
    assert "dev.json" in out["dev_files"] and "dev.json" not in out["files"]

    # listings
    assert out["files"] == [".gitattributes", "README.md", "config.json", "model.safetensors"]
    tree = {t["path"]: t for t in out["tree"]}
    assert tree["model.safetensors"]["lfs"] and not tree["config.json"]["lfs"] and not tree["README.md"]["lfs"]
    assert tree["model.safetensors"]["size"] == len(main["model.safetensors"])
    assert tree["config.json"]["last_commit"] == "Add model"
    assert tree[".gitattributes"]["last_commit"] == "initial commit"
    assert out["paths_info"] == ["config.json", "model.safetensors"]
    assert out["exists"] == [True, False, True]
    assert out["siblings_lfs"] == ["model.safetensors"]
    assert out["card_license"] == "apache-2.0"

    # downloads
    assert out["snapshot_equal"] == ["README.md", "config.json", "model.safetensors"]
    assert out["snapshot_files"] == [".gitattributes", "README.md", "config.json", "model.safetensors"]
    assert out["download_equal"] is True
    assert out["card"]["license"] == "apache-2.0" and out["card"]["language"] == "es"

    # private repo
    assert out["private_flag"] is True
    assert out["anonymous_private"] == 404

    # the token never reaches the log
    assert all(TOKEN not in r[1] for r in hub.requests)


DATASET_SCRIPT = """
    import json, sys
    from pathlib import Path
    import datasets
    from huggingface_hub import HfApi

    work = Path(sys.argv[1])
    api = HfApi()
    repo = "es-zoo/corpus"
    api.create_repo(repo, repo_type="dataset", private=True)
    folder = work / "ds"
    (folder / "a").mkdir(parents=True)
    (folder / "b").mkdir(parents=True)
    datasets.Dataset.from_dict({"text": ["uno", "dos", "tres"], "n": [1, 2, 3]}).to_parquet(
        str(folder / "a" / "train-00000-of-00001.parquet"))
    datasets.Dataset.from_dict({"text": ["otro"], "n": [9]}).to_parquet(
        str(folder / "b" / "train-00000-of-00001.parquet"))
    (folder / "README.md").write_text(
        "---\\nconfigs:\\n"
        "- config_name: a\\n  data_files:\\n  - split: train\\n    path: a/train-*.parquet\\n"
        "- config_name: b\\n  data_files:\\n  - split: train\\n    path: b/train-*.parquet\\n"
        "---\\n# Corpus\\n")
    api.upload_folder(repo_id=repo, repo_type="dataset", folder_path=folder, commit_message="Add data")
    ds = datasets.load_dataset(repo, "a", split="train")
    streamed = list(datasets.load_dataset(repo, "b", split="train", streaming=True))
    print(json.dumps({"rows": ds.to_list(), "streamed": streamed}))
"""


def test_load_dataset_from_hub(hub: HubServer, tmp_path: Path) -> None:
    out = run_client(hub, tmp_path, DATASET_SCRIPT)
    assert out["rows"] == [{"text": "uno", "n": 1}, {"text": "dos", "n": 2}, {"text": "tres", "n": 3}]
    assert out["streamed"] == [{"text": "otro", "n": 9}]
    files = hub.files("es-zoo/corpus", repo_type="dataset")
    assert files["a/train-00000-of-00001.parquet"][:4] == b"PAR1"
    # the parquet files went through LFS; streaming read them with Range requests
    assert len(hub.lfs_objects("es-zoo/corpus", repo_type="dataset")) == 2
    assert any(r[1].startswith("/datasets/es-zoo/corpus/resolve/") and r[2] == 206 for r in hub.requests)


ERRORS_SCRIPT = """
    import json
    from huggingface_hub import HfApi, hf_hub_download
    from huggingface_hub.errors import (
        EntryNotFoundError, HfHubHTTPError, RepositoryNotFoundError, RevisionNotFoundError,
    )

    api = HfApi()
    out = {}

    def outcome(name, fn):
        try:
            fn()
            out[name] = "ok"
        except HfHubHTTPError as e:
            out[name] = [type(e).__name__, e.response.status_code]

    api.create_repo("es-zoo/m")
    head = api.upload_file(path_or_fileobj=b"a\\n", path_in_repo="a.txt", repo_id="es-zoo/m").oid
    api.upload_file(path_or_fileobj=b"b\\n", path_in_repo="b.txt", repo_id="es-zoo/m")
    wrong = HfApi(token="hf_not_the_token")
    outcome("wrong_token_create", lambda: wrong.create_repo("es-zoo/other"))
    outcome("wrong_token_read", lambda: wrong.model_info("es-zoo/m"))
    outcome("missing_repo", lambda: api.model_info("es-zoo/missing"))
    outcome("missing_revision", lambda: hf_hub_download("es-zoo/m", "a.txt", revision="nope"))
    outcome("missing_file", lambda: hf_hub_download("es-zoo/m", "nope.txt"))
    outcome("missing_branch", lambda: api.upload_file(
        path_or_fileobj=b"x", path_in_repo="x.txt", repo_id="es-zoo/m", revision="nope"))
    outcome("stale_parent", lambda: api.upload_file(
        path_or_fileobj=b"x", path_in_repo="x.txt", repo_id="es-zoo/m", parent_commit=head))
    outcome("branch_twice", lambda: api.create_branch("es-zoo/m", branch="main"))
    outcome("exist_ok_branch", lambda: api.create_branch("es-zoo/m", branch="main", exist_ok=True))
    try:
        hf_hub_download("es-zoo/m", "nope.txt")
    except EntryNotFoundError:
        out["entry_not_found_class"] = True
    try:
        api.model_info("es-zoo/missing")
    except RepositoryNotFoundError:
        out["repo_not_found_class"] = True
    try:
        api.list_repo_files("es-zoo/m", revision="nope")
    except RevisionNotFoundError:
        out["revision_not_found_class"] = True
    print(json.dumps(out))
"""


def test_client_errors(hub: HubServer, tmp_path: Path) -> None:
    out = run_client(hub, tmp_path, ERRORS_SCRIPT)
    assert out["wrong_token_create"] == ["HfHubHTTPError", 401]
    assert out["wrong_token_read"] == ["HfHubHTTPError", 401]
    assert out["missing_repo"] == ["RepositoryNotFoundError", 404]
    assert out["missing_revision"] == ["RevisionNotFoundError", 404]
    assert out["missing_file"] == ["RemoteEntryNotFoundError", 404]
    assert out["missing_branch"] == ["RevisionNotFoundError", 404]
    assert out["stale_parent"] == ["HfHubHTTPError", 412]
    assert out["branch_twice"] == ["HfHubHTTPError", 409]
    assert out["exist_ok_branch"] == "ok"
    assert out["entry_not_found_class"] and out["repo_not_found_class"] and out["revision_not_found_class"]
    assert [c["title"] for c in hub.commits("es-zoo/m")] == ["Upload b.txt with huggingface_hub",
                                                            "Upload a.txt with huggingface_hub", "initial commit"]
    assert not any(r[1] == "/api/repos/create" and r[2] == 200 for r in hub.requests[1:])  # wrong token made nothing


FAULTS_SCRIPT = """
    import json, time
    from huggingface_hub import CommitOperationAdd, HfApi, hf_hub_download
    from huggingface_hub.errors import HfHubHTTPError

    api = HfApi()
    out = {}
    repo = "es-zoo/faulty"
    api.create_repo(repo)
    weights = bytes(range(256)) * 16

    def commit():
        ops = [CommitOperationAdd("config.json", b'{"a": 1}\\n'), CommitOperationAdd("weights.bin", weights)]
        return api.create_commit(repo, operations=ops, commit_message="Add weights").oid

    try:
        commit()
        out["first_try"] = "ok"
    except HfHubHTTPError as e:
        out["first_try"] = e.response.status_code
    out["files_after_failure"] = api.list_repo_files(repo)
    out["retry"] = commit()

    t = time.time()
    out["dropped_get"] = open(hf_hub_download(repo, "config.json"), "rb").read().decode()
    out["dropped_get_s"] = time.time() - t
    t = time.time()
    try:
        hf_hub_download(repo, "weights.bin")
        out["dropped_head"] = "ok"
    except Exception as e:
        out["dropped_head"] = type(e).__name__
    out["dropped_head_s"] = time.time() - t
    out["after_drop"] = open(hf_hub_download(repo, "weights.bin"), "rb").read() == weights
    print(json.dumps(out))
"""


def test_fault_injection(hub: HubServer, tmp_path: Path) -> None:
    repo = "es-zoo/faulty"
    commit_path = f"/api/models/{repo}/commit/main"
    hub.fail_next("POST", "^" + commit_path + "$", status=500)
    hub.fail_next("GET", r"/resolve/main/config\.json$", drop=True)
    hub.fail_next("HEAD", r"/resolve/main/weights\.bin$", drop=True)
    out = run_client(hub, tmp_path, FAULTS_SCRIPT)

    # a 500 on the commit: the client raises at once (no retry), the repo is unchanged, a retry succeeds
    assert out["first_try"] == 500
    assert out["files_after_failure"] == [".gitattributes"]
    assert [r for r in hub.requests if r[1] == commit_path] == [("POST", commit_path, 500), ("POST", commit_path, 200)]
    assert hub.commits(repo)[0]["id"] == out["retry"]
    assert [c["title"] for c in hub.commits(repo)] == ["Add weights", "initial commit"]
    assert sorted(hub.files(repo)) == [".gitattributes", "config.json", "weights.bin"]
    # the LFS object uploaded before the failed commit is not uploaded again
    assert sum(r[0] == "PUT" for r in hub.requests) == 1

    # a dropped GET: the client resumes the download (after a 1 s pause) and gets the file
    assert out["dropped_get"] == '{"a": 1}\n'
    assert out["dropped_get_s"] < 15
    gets = [r for r in hub.requests if r[0] == "GET" and r[1].endswith("/config.json")]
    assert gets[0][2] == 0 and gets[-1][2] == 200

    # a dropped HEAD: the client raises, without hanging; the next call works
    assert out["dropped_head"] != "ok"
    assert out["dropped_head_s"] < 15
    assert ("HEAD", f"/{repo}/resolve/main/weights.bin", 0) in hub.requests
    assert out["after_drop"] is True


# ------------------------------------------------------------------------------------------- raw HTTP, no client
def call(hub: HubServer, method: str, path: str, body: object = None, token: str | None = TOKEN, headers=None):
    """One request: returns (status, headers, body bytes)."""
    conn = http.client.HTTPConnection(hub.url.removeprefix("http://"), timeout=10)
    hdrs = dict(headers or {})
    if token is not None:
        hdrs["Authorization"] = f"Bearer {token}"
    if isinstance(body, (dict, list)):
        body, hdrs["Content-Type"] = json.dumps(body).encode(), "application/json"
    try:
        conn.request(method, path, body=body, headers=hdrs)
        resp = conn.getresponse()
        return resp.status, resp.headers, resp.read()
    finally:
        conn.close()


def ndjson(*items: dict) -> bytes:
    return b"".join(json.dumps(i).encode() + b"\n" for i in items)


def test_auth_and_error_headers(hub: HubServer) -> None:
    create = {"type": "model", "name": "m", "organization": "es-zoo"}
    for token in (None, "hf_wrong_token"):
        status, headers, body = call(hub, "POST", "/api/repos/create", create, token=token)
        assert status == 401
        assert headers["X-Error-Message"] == "Invalid credentials in Authorization header"
        assert json.loads(body)["error"].startswith("Invalid credentials")
        assert b"hf_wrong_token" not in body and TOKEN.encode() not in body
    assert call(hub, "GET", "/api/whoami-v2", token=None)[0] == 401
    assert json.loads(call(hub, "GET", "/api/whoami-v2")[2])["name"] == "es-zoo-tester"

    assert call(hub, "POST", "/api/repos/create", create)[0] == 200
    status, _, body = call(hub, "POST", "/api/repos/create", create)
    assert status == 409 and json.loads(body)["url"] == f"{hub.url}/es-zoo/m"
    private = {"type": "dataset", "name": "p", "organization": "es-zoo", "visibility": "private"}
    assert call(hub, "POST", "/api/repos/create", private)[0] == 200

    # every write needs the token
    for method, path, body in [
        ("POST", "/api/models/es-zoo/m/preupload/main", {"files": []}),
        ("POST", "/es-zoo/m.git/info/lfs/objects/batch", {"operation": "upload", "objects": []}),
        ("POST", "/api/models/es-zoo/m/commit/main", ndjson({"key": "header", "value": {"summary": "x"}})),
        ("POST", "/api/models/es-zoo/m/branch/dev", {}),
    ]:
        status, headers, _ = call(hub, method, path, body, token=None)
        assert (status, headers["X-Error-Message"]) == (401, "Invalid credentials in Authorization header"), path

    # error codes the client maps to its exceptions
    def code(method: str, path: str, token: str | None = TOKEN) -> tuple:
        status, headers, _ = call(hub, method, path, token=token)
        return status, headers.get("X-Error-Code")

    assert code("GET", "/api/models/es-zoo/missing") == (404, "RepoNotFound")
    assert code("GET", "/api/datasets/es-zoo/p", token=None) == (404, "RepoNotFound")
    assert code("HEAD", "/datasets/es-zoo/p/resolve/main/.gitattributes", token=None) == (404, "RepoNotFound")
    assert code("GET", "/api/datasets/es-zoo/p") == (200, None)
    assert code("GET", "/api/models/es-zoo/m/revision/nope") == (404, "RevisionNotFound")
    assert code("HEAD", "/es-zoo/m/resolve/nope/x.txt") == (404, "RevisionNotFound")
    assert code("HEAD", "/es-zoo/m/resolve/main/x.txt") == (404, "EntryNotFound")
    assert call(hub, "HEAD", "/es-zoo/m/resolve/main/x.txt")[1]["X-Repo-Commit"] == hub.commits("es-zoo/m")[0]["id"]
    assert code("GET", "/api/models/es-zoo/m", token="hf_wrong_token") == (401, None)

    assert all(TOKEN not in r[1] and "hf_wrong_token" not in r[1] for r in hub.requests)
    assert "hf_" not in repr(hub)


def test_lfs_commit_and_download_rules(hub: HubServer) -> None:
    repo, api = "es-zoo/m", "/api/models/es-zoo/m"
    call(hub, "POST", "/api/repos/create", {"name": "m", "organization": "es-zoo"})
    initial = hub.commits(repo)[0]["id"]

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode()

    files = [
        {"path": "w.safetensors", "sample": b64(b"abc"), "size": 3},
        {"path": "notes.txt", "sample": b64("señal".encode()), "size": 6},
        {"path": "blob", "sample": b64(b"\x00\x01\xff"), "size": 3},
        {"path": "big.txt", "sample": b64(b"text"), "size": 11 * 1024 * 1024},
        {"path": "cut.txt", "sample": b64(("a" * 511 + "ñ").encode()[:512]), "size": 600},
    ]
    status, _, body = call(hub, "POST", f"{api}/preupload/main", {"files": files})
    assert status == 200
    modes = {f["path"]: f["uploadMode"] for f in json.loads(body)["files"]}
    assert modes == {
        "w.safetensors": "lfs",  # .gitattributes pattern
        "notes.txt": "regular",
        "blob": "lfs",  # binary sample
        "big.txt": "lfs",  # 10 MiB or more
        "cut.txt": "regular",  # UTF-8 text whose sample ends in the middle of a character
    }

    content = os.urandom(3000)
    oid = hashlib.sha256(content).hexdigest()
    header = {"key": "header", "value": {"summary": "Add weights"}}
    lfs_op = {"key": "lfsFile", "value": {"path": "w.safetensors", "algo": "sha256", "oid": oid, "size": len(content)}}
    text_op = {"key": "file", "value": {"path": "dir/a.txt", "content": b64(b"hola\n"), "encoding": "base64"}}
    # an LFS pointer to an object never uploaded is refused, and nothing changes
    status, _, body = call(hub, "POST", f"{api}/commit/main", ndjson(header, lfs_op, text_op))
    assert status == 400 and "never uploaded" in json.loads(body)["error"]
    assert len(hub.commits(repo)) == 1

    batch = {"operation": "upload", "transfers": ["basic"], "objects": [{"oid": oid, "size": len(content)}]}
    status, headers, body = call(hub, "POST", "/es-zoo/m.git/info/lfs/objects/batch", batch)
    assert status == 200 and headers["Content-Type"].startswith("application/vnd.git-lfs+json")
    actions = json.loads(body)["objects"][0]["actions"]
    href = actions["upload"]["href"].removeprefix(hub.url)
    assert call(hub, "PUT", href, content[:-1], token=None)[0] == 400  # size mismatch
    assert call(hub, "PUT", href, content[::-1], token=None)[0] == 400  # sha256 mismatch
    assert call(hub, "PUT", href.replace("sig=", "sig=0"), content, token=None)[0] == 403
    assert call(hub, "PUT", href, content, token=None)[0] == 200
    verify = actions["verify"]["href"].removeprefix(hub.url)
    assert call(hub, "POST", verify, {"oid": oid, "size": len(content)})[0] == 200
    status, _, body = call(hub, "POST", "/es-zoo/m.git/info/lfs/objects/batch", batch)
    assert "actions" not in json.loads(body)["objects"][0]  # already stored

    status, _, body = call(hub, "POST", f"{api}/commit/main", ndjson(header, lfs_op, text_op))
    assert status == 200
    result = json.loads(body)
    assert result["commitOid"] == hub.commits(repo)[0]["id"] and result["pullRequestUrl"] is None
    assert result["commitUrl"] == f"{hub.url}/{repo}/commit/{result['commitOid']}"
    assert hub.files(repo)["w.safetensors"] == content

    # preupload reports the remote oid: sha256 for LFS files, git blob sha1 for regular ones
    status, _, body = call(hub, "POST", f"{api}/preupload/main", {"files": [
        {"path": "w.safetensors", "sample": b64(content[:512]), "size": len(content)},
        {"path": "dir/a.txt", "sample": b64(b"hola\n"), "size": 5},
    ]})
    git_sha1 = hashlib.sha1(b"blob 5\0hola\n").hexdigest()
    assert [f["oid"] for f in json.loads(body)["files"]] == [oid, git_sha1]

    # download headers and ranges
    status, headers, _ = call(hub, "HEAD", "/es-zoo/m/resolve/main/w.safetensors")
    assert status == 200 and headers["ETag"] == f'"{oid}"' and headers["X-Linked-Etag"] == f'"{oid}"'
    assert headers["X-Linked-Size"] == headers["Content-Length"] == str(len(content))
    assert headers["X-Repo-Commit"] == result["commitOid"]
    status, headers, body = call(hub, "GET", "/es-zoo/m/resolve/main/dir/a.txt")
    assert (status, body, headers["ETag"]) == (200, b"hola\n", f'"{git_sha1}"') and "X-Linked-Etag" not in headers
    status, headers, body = call(hub, "GET", "/es-zoo/m/resolve/main/w.safetensors", headers={"Range": "bytes=10-19"})
    assert (status, body, headers["Content-Range"]) == (206, content[10:20], f"bytes 10-19/{len(content)}")
    assert call(hub, "GET", "/es-zoo/m/resolve/main/w.safetensors", headers={"Range": "bytes=-5"})[2] == content[-5:]
    status, headers, _ = call(hub, "GET", "/es-zoo/m/resolve/main/w.safetensors", headers={"Range": "bytes=5000-"})
    assert (status, headers["Content-Range"]) == (416, f"bytes */{len(content)}")
    status, _, body = call(hub, "GET", f"/es-zoo/m/resolve/{result['commitOid'][:7]}/dir/a.txt")
    assert (status, body) == (200, b"hola\n")

    # commit preconditions
    del_op = {"key": "deletedFile", "value": {"path": "nope.txt"}}
    status, headers, _ = call(hub, "POST", f"{api}/commit/main", ndjson(header, del_op))
    assert (status, headers["X-Error-Code"]) == (404, "EntryNotFound")
    status, headers, _ = call(hub, "POST", f"{api}/commit/nope", ndjson(header, text_op))
    assert (status, headers["X-Error-Code"]) == (404, "RevisionNotFound")
    stale = {"key": "header", "value": {"summary": "Late", "parentCommit": initial}}
    assert call(hub, "POST", f"{api}/commit/main", ndjson(stale, text_op))[0] == 412
    fresh = {"key": "header", "value": {"summary": "Drop dir", "parentCommit": result["commitOid"]}}
    folder_op = {"key": "deletedFolder", "value": {"path": "dir"}}
    assert call(hub, "POST", f"{api}/commit/main", ndjson(fresh, folder_op))[0] == 200
    assert sorted(hub.files(repo)) == [".gitattributes", "w.safetensors"]

    # a pull request gets its own ref; main does not move
    head = hub.commits(repo)[0]["id"]
    status, _, body = call(hub, "POST", f"{api}/commit/main?create_pr=1", ndjson(header, text_op))
    assert json.loads(body)["pullRequestUrl"] == f"{hub.url}/{repo}/discussions/1"
    assert hub.commits(repo)[0]["id"] == head
    assert "dir/a.txt" in hub.files(repo, revision="refs/pr/1")
    # pushing to the PR ref (the client quotes the revision)
    more = {"key": "file", "value": {"path": "more.txt", "content": b64(b"+"), "encoding": "base64"}}
    assert call(hub, "POST", f"{api}/commit/refs%2Fpr%2F1", ndjson(header, more))[0] == 200
    assert "more.txt" in hub.files(repo, revision="refs/pr/1") and "more.txt" not in hub.files(repo)

    # fault injection: twice a 503, then the real answer; the log records all three
    hub.fail_next("GET", r"/tree/main$", status=503, times=2)
    statuses = [call(hub, "GET", f"{api}/tree/main")[0] for _ in range(3)]
    assert statuses == [503, 503, 200]
    assert [r[2] for r in hub.requests if r[1] == f"{api}/tree/main"] == [503, 503, 200]
