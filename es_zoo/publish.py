"""Publish what es-zoo makes to the Hugging Face Hub: model run folders, fine-tunes and suite datasets.

Everything goes through one path, :func:`publish_files`: an explicit allowlist picks the files, the
remote tree is compared first so unchanged files are not uploaded, and all changes land in one commit
(or nothing does: LFS objects uploaded before a failed commit are invisible, and re-running the same
command finishes the job). ``dry_run`` writes the files and a manifest of the operations to a folder
and touches no network. The token comes from ``HF_TOKEN`` or the huggingface_hub login and never
appears in output, files or error messages.

Example:
    >>> from es_zoo.publish import publish_run
    >>> publish_run("runs/t5s-tiny", "my-org/t5s-tiny", dry_run="/tmp/t5s-dry")  # doctest: +SKIP
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from es_zoo.cards import card_state, finetune_card_text, model_card_text
from es_zoo.errors import EsZooError
from es_zoo.recipes import read_yaml, resolved_from_dict
from es_zoo.runinfo import atomic_write, sha256_file
from es_zoo.tasks.definitions import load_task

# The files of a model repo; nothing else leaves the machine (optimizer states, logs, checkpoints,
# predictions, results files, .env files and caches are never matched). Top-level names only.
MODEL_ALLOW = (
    "model.safetensors", "model-*-of-*.safetensors", "model.safetensors.index.json",
    "parser_head.safetensors",  # the biaffine head of a parsing fine-tune (es-zoo's own head)
    "config.json", "generation_config.json",
    "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",
    "vocab.txt", "vocab.json", "merges.txt", "spiece.model", "sentencepiece.bpe.model",
    "README.md", "loss_curve.png", "recipe.yaml", "finetune.json",
)
# A suite dataset: its card, the es-zoo description of its configs and the parquet shards.
DATASET_ALLOW = ("README.md", "es_zoo_dataset.json", "*/*.parquet")
_PICKLES = ("*.bin", "*.pt", "*.pth", "*.pkl", "*.pickle", "*.ckpt")
_REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")


class PublishError(EsZooError):
    """Publishing cannot start or did not finish; the message says what to fix and whether to retry."""


# --------------------------------------------------------------------------------------------------
# Inputs: repo ids, tokens, allowlists
# --------------------------------------------------------------------------------------------------

def check_repo_id(repo_id: str) -> str:
    """``ORG/NAME`` as the Hub accepts it, or a clear error (before anything is uploaded)."""
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    problem = None
    if not _REPO_ID.match(repo_id or ""):
        problem = "expected ORG/NAME (letters, digits, '-', '_', '.'; one '/')"
    else:
        try:
            validate_repo_id(repo_id)
        except HFValidationError as exc:
            problem = str(exc).split(". ")[0]
        if repo_id.endswith(".git") or len(repo_id) > 96:
            problem = "at most 96 characters and not ending in .git"
    if problem:
        raise PublishError(f"repo id {repo_id!r} is not valid: {problem}, e.g. my-org/t5s-tiny")
    return repo_id


def get_token() -> str:
    """The write token: ``HF_TOKEN`` or the one saved by ``hf auth login``. Never printed."""
    from huggingface_hub import get_token as hf_token

    token = hf_token()
    if not token:
        raise PublishError("no Hugging Face token: set HF_TOKEN to a token with write access, or run "
                           "`hf auth login` (or use --dry-run OUT_DIR to see what would be uploaded)")
    return token


def allowed(path: str, patterns: tuple[str, ...]) -> bool:
    """``path`` (POSIX, relative to the repo root) matches one of ``patterns``; a pattern without '/'
    only matches top-level files."""
    return any(fnmatch.fnmatchcase(path, p) and path.count("/") == p.count("/") for p in patterns)


def contained(path: Path, root: Path, what: str | None = None) -> Path:
    """``path`` if it is a regular file whose real location (links resolved) is inside ``root``;
    otherwise a :class:`PublishError` naming it. Nothing outside the folder being published can go up,
    whatever links inside it point to."""
    name = what or str(path)
    real, top = Path(os.path.realpath(path)), Path(os.path.realpath(root))
    if real != top and top not in real.parents:
        raise PublishError(f"{name}: a link to {real}, outside {top}; only files inside the folder are "
                           "published (replace the link by a copy of the file)")
    if not real.is_file():
        raise PublishError(f"{name}: not a regular file; only regular files are published")
    return path


def collect(folder: Path, patterns: tuple[str, ...], root: Path | None = None) -> dict[str, Path]:
    """The files of ``folder`` an allowlist lets through, keyed by their path in the repo. Each must be a
    regular file inside ``root`` (default ``folder``) once links are resolved, or it is refused by name."""
    out = {}
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder).as_posix()
        if allowed(rel, patterns) and (p.is_symlink() or not p.is_dir()):
            out[rel] = contained(p, root or folder, str(p))
    return out


def check_weight_shards(files: dict[str, Path], model_dir: Path) -> dict[str, str]:
    """Sharded safetensors go up only with their index and only when complete. Returns the shards that
    are left out (path -> why); raises when the weights cannot be published as they are."""
    shards = {k for k in files if fnmatch.fnmatchcase(k, "model-*-of-*.safetensors")}
    index_name = "model.safetensors.index.json"
    if index_name not in files:
        if shards and "model.safetensors" not in files:
            raise PublishError(f"{model_dir}: weight shards ({', '.join(sorted(shards))}) without "
                               f"{index_name}; export the model again (save_pretrained writes both)")
        return {k: f"a weight shard without {index_name}: model.safetensors holds the weights" for k in shards}
    if "model.safetensors" in files:
        raise PublishError(f"{model_dir}: both model.safetensors and {index_name}; a model has one or the other "
                           "(remove the one that is not current)")
    index_path = model_dir / index_name
    try:
        weight_map = json.loads(files[index_name].read_text(encoding="utf-8"))["weight_map"]
        needed = set(weight_map.values())
        if not all(isinstance(v, str) for v in needed) or not needed:
            raise TypeError
    except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError):
        raise PublishError(f"{index_path}: expected JSON with a \"weight_map\" of tensor names to shard "
                           "files") from None
    missing = sorted(needed - set(files))
    if missing:
        raise PublishError(f"{index_path}: the sharded weights are incomplete (missing {', '.join(missing)}); "
                           "finish or redo the export before publishing")
    return {k: f"a weight shard that {index_name} does not list" for k in sorted(shards - needed)}


# --------------------------------------------------------------------------------------------------
# Run folders
# --------------------------------------------------------------------------------------------------

@dataclass
class Run:
    """A run folder ready to publish: what kind, where its model is, and what it measured."""

    path: Path
    kind: str  # "reproduce" or "finetune"
    model_dir: Path
    results: dict
    spec: dict = field(default_factory=dict)  # finetune.json of a fine-tune

    @property
    def title(self) -> str:
        if self.kind == "reproduce":
            return f"{self.results.get('recipe')} ({self.results.get('preset')} preset)"
        return f"{self.results.get('task')} fine-tune"


def inspect_run(run_dir: str | Path) -> Run:
    """Check that ``run_dir`` is a finished es-zoo run (``es-zoo reproduce`` or ``es-zoo finetune``)
    whose ``model/`` can be published; every problem is an error before anything is uploaded."""
    path = Path(run_dir).expanduser()
    if not path.is_dir():
        raise PublishError(f"{path}: no such run folder")
    if (path / "config.json").is_file() and (path.parent / "results.json").is_file() and path.name == "model":
        path = path.parent  # the model/ folder of a run was given: publish its run
    if (path / "recipe.yaml").is_file() and (path / "run_info.json").is_file():
        kind = "reproduce"
    elif (path / "finetune.json").is_file():
        kind = "finetune"
    else:
        raise PublishError(f"{path}: not an es-zoo run folder (no recipe.yaml + run_info.json from `es-zoo "
                           "reproduce`, no finetune.json from `es-zoo finetune`)")
    partial = sorted(p.relative_to(path).as_posix() for p in list(path.glob("checkpoints/.tmp-*"))
                     + list(path.glob(".tmp-*")))
    if partial:
        raise PublishError(f"{path}: the run was interrupted (partial checkpoint or export: {', '.join(partial)}); "
                           "finish it with the same command and --resume before publishing")
    for name in ("recipe.yaml", "run_info.json", "finetune.json", "results.json", "model/README.md"):
        if (path / name).is_symlink() or (path / name).exists():
            contained(path / name, path, str(path / name))
    results_path = path / "results.json"
    if not results_path.is_file():
        raise PublishError(f"{path}: no results.json, so the run has not finished its evaluation; finish it with "
                           "--resume (nothing is published without measured results)")
    try:
        results = json.loads(results_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise PublishError(f"{results_path}: not valid JSON (line {exc.lineno}: {exc.msg})") from None
    model_dir = path / "model"
    if not (model_dir / "config.json").is_file():
        hint = " (a fine-tune without --save-model keeps no model)" if kind == "finetune" else ""
        raise PublishError(f"{path}: no exported model/ folder with a config.json{hint}")
    weights = [p.name for p in model_dir.iterdir() if p.suffix == ".safetensors"]
    if not weights:
        pickles = [p.name for p in model_dir.iterdir() if any(fnmatch.fnmatch(p.name, q) for q in _PICKLES)]
        raise PublishError(f"{model_dir}: no safetensors weights" + (f" (only pickle files: {', '.join(pickles)}; "
                           "es-zoo never publishes pickles)" if pickles else ""))
    spec = {}
    if kind == "finetune":
        spec = json.loads((path / "finetune.json").read_text(encoding="utf-8"))
        if "metrics" not in results:
            raise PublishError(f"{results_path}: no scores (\"metrics\") in it; the fine-tune did not finish")
    elif "heldout" not in results:
        raise PublishError(f"{results_path}: no held-out scores (\"heldout\") in it; the run did not finish")
    return Run(path, kind, model_dir, results, spec)


def render_card(run: Run, repo_id: str | None = None) -> str:
    """The run's model card, rendered from what it measured (``results.json``) and how it was made."""
    if run.kind == "reproduce":
        cfg = resolved_from_dict(read_yaml(run.path / "recipe.yaml"), str(run.path / "recipe.yaml"))
        return model_card_text(cfg, run.results, repo_id)

    return finetune_card_text(load_task(run.results["task"]), run.results, repo_id)


def write_card(run_dir: str | Path, repo_id: str | None = None, overwrite_card: bool = False) -> Path:
    """``es-zoo card``: (re)render ``model/README.md`` from the run's results. A card that a person
    edited (its es-zoo signature no longer matches) is kept unless ``overwrite_card``."""
    run = inspect_run(run_dir)
    target = run.model_dir / "README.md"
    if target.is_file() and not overwrite_card:
        state = card_state(target.read_text(encoding="utf-8"))
        if state != "es-zoo":
            raise PublishError(f"{target} was {'edited after es-zoo wrote it' if state == 'edited' else 'not written by es-zoo'}; "
                               "it is kept. Pass --overwrite-card to replace it with a freshly rendered card")

    atomic_write(target, render_card(run, repo_id))
    return target


# --------------------------------------------------------------------------------------------------
# One publish: compare, stage, commit
# --------------------------------------------------------------------------------------------------

def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _scrub(text: str, token: str | None) -> str:
    return text.replace(token, "***") if token else text


def _hub_error(exc: BaseException, repo_id: str, token: str | None, stage: str) -> PublishError:
    """A client or network failure as one clear message (the token scrubbed out)."""
    from huggingface_hub.errors import HfHubHTTPError

    retry = "Nothing was committed; run the same command again to retry (files already uploaded are skipped)."
    if isinstance(exc, HfHubHTTPError) and exc.response is not None:
        status = exc.response.status_code
        server = (exc.server_message or "").strip().splitlines()[0][:300] if exc.server_message else ""
        detail = f" (server: {_scrub(server, token)})" if server else ""
        if status == 401:
            msg = (f"the Hub refused the token while {stage} (HTTP 401){detail}: set HF_TOKEN to a valid token with "
                   "write access, or run `hf auth login`")
        elif status == 403:
            msg = (f"the token may not write to '{repo_id}' (HTTP 403){detail}: use a token with write access to "
                   "that organisation")
        elif status == 404:
            msg = (f"'{repo_id}' or the revision was not found while {stage} (HTTP 404){detail}; check the repo id "
                   "and that the token can see it")
        elif status in (409, 412):
            msg = (f"conflict while {stage} (HTTP {status}){detail}: the repo or branch changed on the Hub meanwhile "
                   f"(or exists with another type). {retry}")
            return PublishError(msg)
        elif status >= 500:
            msg = f"the Hub failed while {stage} (HTTP {status}){detail}. {retry}"
            return PublishError(msg)
        else:
            msg = f"the Hub answered HTTP {status} while {stage}{detail}"
        return PublishError(f"{msg}. Nothing was committed.")
    name = type(exc).__name__
    return PublishError(f"could not reach the Hub while {stage} ({name}: {_scrub(str(exc), token)[:300]}). {retry}")


def _network_errors() -> tuple[type[BaseException], ...]:
    from huggingface_hub.errors import HfHubHTTPError

    errors: list[type[BaseException]] = [HfHubHTTPError, OSError, ConnectionError, TimeoutError]
    import importlib

    for name in ("httpx2", "httpx", "requests"):  # huggingface_hub 2.x talks through httpx2
        try:
            mod = importlib.import_module(name)
        except ImportError:
            continue
        errors.append(getattr(mod, "HTTPError", None) or getattr(mod, "RequestException"))
    return tuple(e for e in errors if isinstance(e, type))


@dataclass
class Plan:
    """What one publish does: the operations, the commit message and what was skipped and why."""

    repo_id: str
    repo_type: str
    files: dict[str, Path]
    message: str
    description: str = ""
    private: bool = False
    revision: str | None = None
    create_pr: bool = False
    skipped: dict[str, str] = field(default_factory=dict)  # path -> why it is not uploaded

    def manifest(self, dry_run: bool) -> dict:
        ops: list[dict[str, Any]] = [{"op": "create_repo", "repo_id": self.repo_id, "repo_type": self.repo_type,
                                      "private": self.private, "exist_ok": True}]
        if self.revision:
            ops.append({"op": "create_branch", "branch": self.revision, "exist_ok": True})
        adds = [{"op": "add", "path": k, "size": v.stat().st_size, "sha256": sha256_file(v)}
                for k, v in sorted(self.files.items()) if k not in self.skipped]
        ops.append({"op": "commit", "revision": self.revision or "main", "create_pr": self.create_pr,
                    "message": self.message, "description": self.description, "files": adds})
        out = {"es_zoo_dry_run" if dry_run else "es_zoo_publish": 1, "repo_id": self.repo_id,
               "repo_type": self.repo_type, "operations": ops,
               "skipped": [{"path": k, "why": v} for k, v in sorted(self.skipped.items())]}
        if dry_run:
            out["note"] = ("dry run: the Hub was not contacted, so every file is listed; a real publish skips the "
                           "files the Hub already holds unchanged and keeps a README.md edited on the Hub")
        return out


def write_dry_run(plan: Plan, out_dir: str | Path) -> Path:
    """Write the files that would be uploaded under ``OUT_DIR/files/`` and ``OUT_DIR/manifest.json``.
    A folder holding anything but an earlier es-zoo dry run is refused (nothing is overwritten)."""
    out = Path(out_dir).expanduser()
    if out.exists() and any(out.iterdir()):
        previous = out / "manifest.json"
        try:
            mine = previous.is_file() and "es_zoo_dry_run" in json.loads(previous.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            mine = False
        if not mine or set(p.name for p in out.iterdir()) - {"files", "manifest.json"}:
            raise PublishError(f"--dry-run {out}: the folder is not empty and is not an earlier es-zoo dry run; "
                               "choose an empty or new folder")
        shutil.rmtree(out / "files", ignore_errors=True)
        previous.unlink()
    (out / "files").mkdir(parents=True, exist_ok=True)
    for rel, src in plan.files.items():
        if rel in plan.skipped:
            continue
        dest = out / "files" / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dest)
    (out / "manifest.json").write_text(json.dumps(plan.manifest(dry_run=True), indent=2, ensure_ascii=False) + "\n",
                                       encoding="utf-8")
    return out


def publish_files(plan: Plan, dry_run: str | Path | None = None, overwrite_card: bool = False,
                  echo: Callable[[str], Any] = print) -> dict:
    """Create the repo (and branch), skip what the Hub already holds unchanged, keep a README.md that a
    person edited on the Hub (unless ``overwrite_card``), and commit the rest in one commit.

    Returns a summary: ``{"repo_id", "commit" (url or None), "uploaded": [...], "unchanged": [...],
    "skipped": {...}}``. With ``dry_run`` nothing is contacted and the files go to that folder."""
    for rel in plan.files:
        if any(fnmatch.fnmatch(Path(rel).name, q) for q in _PICKLES):
            raise PublishError(f"{rel}: pickle files are never published")  # defence in depth
    if dry_run is not None:
        out = write_dry_run(plan, dry_run)
        echo(f"dry run: {len(plan.files) - len(plan.skipped)} file(s) and manifest.json written to {out}; "
             "nothing was uploaded")
        return {"repo_id": plan.repo_id, "commit": None, "dry_run": str(out),
                "uploaded": sorted(k for k in plan.files if k not in plan.skipped), "unchanged": [],
                "skipped": dict(plan.skipped)}
    from huggingface_hub import CommitOperationAdd, HfApi
    from huggingface_hub.errors import RevisionNotFoundError

    token = get_token()
    api = HfApi(token=token)
    kind = plan.repo_type
    stage = "creating the repository"
    try:
        api.create_repo(plan.repo_id, repo_type=kind, private=plan.private, exist_ok=True,
                        space_sdk="gradio" if kind == "space" else None)
        if plan.revision:
            stage = f"creating the branch '{plan.revision}'"
            api.create_branch(plan.repo_id, repo_type=kind, branch=plan.revision, exist_ok=True)
        stage = "reading the repository"
        revision = plan.revision or "main"
        try:
            info = api.repo_info(plan.repo_id, repo_type=kind, revision=revision)
            remote = {f.path: f for f in api.list_repo_tree(plan.repo_id, repo_type=kind, revision=info.sha,
                                                            recursive=True) if hasattr(f, "blob_id")}
            parent = info.sha
        except RevisionNotFoundError:  # a repo created without any commit
            remote, parent = {}, None
        unchanged, ops = [], []
        for rel, src in sorted(plan.files.items()):
            if rel in plan.skipped:
                continue
            r = remote.get(rel)
            if r is not None and _same(src, r):
                unchanged.append(rel)
                continue
            if rel == "README.md" and r is not None and not overwrite_card:
                stage = "reading the card on the Hub"
                if _hub_card_state(api, plan, info.sha) != "es-zoo":
                    plan.skipped[rel] = ("the card on the Hub was edited by a person (or not written by es-zoo); kept. "
                                         "Pass --overwrite-card to replace it")
                    echo(f"README.md: {plan.skipped[rel]}")
                    continue
            ops.append(CommitOperationAdd(path_in_repo=rel, path_or_fileobj=str(src)))
        if not ops:
            echo(f"{plan.repo_id}: nothing to upload ({len(unchanged)} file(s) already on the Hub unchanged)")
            return {"repo_id": plan.repo_id, "commit": None, "uploaded": [], "unchanged": unchanged,
                    "skipped": dict(plan.skipped)}
        stage = "uploading and committing"
        commit = api.create_commit(plan.repo_id, operations=ops, repo_type=kind, revision=plan.revision,
                                   commit_message=plan.message, commit_description=plan.description or None,
                                   create_pr=plan.create_pr or None, parent_commit=parent)
    except PublishError:
        raise
    except _network_errors() as exc:
        raise _hub_error(exc, plan.repo_id, token, stage) from None
    url = commit.pr_url or commit.commit_url
    echo(f"{plan.repo_id}: committed {len(ops)} file(s) ({len(unchanged)} unchanged): {url}")
    return {"repo_id": plan.repo_id, "commit": url, "oid": commit.oid, "uploaded": [op.path_in_repo for op in ops],
            "unchanged": unchanged, "skipped": dict(plan.skipped)}


def _same(local: Path, remote: Any) -> bool:
    if remote.size != local.stat().st_size:
        return False
    if remote.lfs is not None:
        return remote.lfs.sha256 == sha256_file(local)
    return remote.blob_id == git_blob_sha1(local.read_bytes())


def _hub_card_state(api: Any, plan: Plan, revision: str) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        path = api.hf_hub_download(plan.repo_id, "README.md", repo_type=plan.repo_type, revision=revision,
                                   local_dir=tmp)
        return card_state(Path(path).read_text(encoding="utf-8", errors="replace"))


# --------------------------------------------------------------------------------------------------
# es-zoo publish RUN_DIR
# --------------------------------------------------------------------------------------------------

def plan_run(run_dir: str | Path, repo_id: str, staging: Path, private: bool = False, revision: str | None = None,
             create_pr: bool = False) -> Plan:
    """What publishing a run folder uploads: the allowlisted files of its ``model/``, the card rendered
    with ``repo_id`` in its usage (a card edited on disk is published as edited), and the resolved recipe
    (``recipe.yaml``; a fine-tune's ``finetune.json``)."""
    check_repo_id(repo_id)
    run = inspect_run(run_dir)
    files = collect(run.model_dir, MODEL_ALLOW, root=run.path)
    skipped = check_weight_shards(files, run.model_dir)
    local_card = run.model_dir / "README.md"
    card = staging / "README.md"
    if local_card.is_file() and card_state(local_card.read_text(encoding="utf-8")) != "es-zoo":
        shutil.copyfile(local_card, card)  # a person's edits are theirs: published as they are
    else:
        card.write_text(render_card(run, repo_id), encoding="utf-8")
    files["README.md"] = card
    # the resolved recipe / fine-tune settings, with local paths reduced to their names
    if run.kind == "finetune":
        spec = files.get("finetune.json", run.path / "finetune.json")
        files["finetune.json"] = staging / "finetune.json"
        files["finetune.json"].write_text(json.dumps(portable(json.loads(spec.read_text(encoding="utf-8"))), indent=2,
                                                     ensure_ascii=False) + "\n", encoding="utf-8")
    else:
        import yaml

        recipe = files.get("recipe.yaml", run.path / "recipe.yaml")
        files["recipe.yaml"] = staging / "recipe.yaml"
        files["recipe.yaml"].write_text(yaml.safe_dump(portable(read_yaml(recipe)),
                                                       sort_keys=False, allow_unicode=True), encoding="utf-8")
    if run.kind == "reproduce":
        t = run.results.get("training", {})
        message = f"es-zoo: publish {run.title}"
        description = (f"Model trained with `es-zoo reproduce {run.results.get('recipe')}` (preset "
                       f"{run.results.get('preset')}): {t.get('steps', '?')} steps, {t.get('parameters', 0):,} parameters."
                       + (f" Fine-tunes scored: {', '.join(sorted({**(run.results.get('glues') or {}), **(run.results.get('seq2seq') or {})}))}."
                          if run.results.get("glues") or run.results.get("seq2seq") else ""))
    else:
        r = run.results
        message = f"es-zoo: publish {run.title} ({r['metric']['main']} {r['main']:.2f} on {r['split']})"
        description = f"Fine-tuned with `es-zoo finetune --task {r['task']}` on {r['data']['source']}."
    return Plan(repo_id, "model", files, message, description, private, revision, create_pr, skipped)


def portable(obj: Any) -> Any:
    """``obj`` with every absolute local path (also inside ``key=/path`` overrides) reduced to
    ``<local>/NAME``: published files never carry a machine-specific path."""
    import os

    if isinstance(obj, dict):
        return {k: portable(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [portable(v) for v in obj]
    if isinstance(obj, str):
        key, eq, value = obj.partition("=") if "=" in obj and not os.path.isabs(obj) else ("", "", obj)
        bare = value.strip("\"'")
        if os.path.isabs(bare) or bare.startswith("~"):
            return f"{key}{eq}<local>/{Path(bare).name}"
    return obj


def publish_run(run_dir: str | Path, repo_id: str, private: bool = False, revision: str | None = None,
                create_pr: bool = False, dry_run: str | Path | None = None, overwrite_card: bool = False,
                echo: Callable[[str], Any] = print) -> dict:
    """``es-zoo publish``: the run's model repo in one commit (see :func:`publish_files`)."""
    with tempfile.TemporaryDirectory(prefix="es-zoo-publish-") as tmp:
        plan = plan_run(run_dir, repo_id, Path(tmp), private, revision, create_pr)
        return publish_files(plan, dry_run=dry_run, overwrite_card=overwrite_card, echo=echo)
