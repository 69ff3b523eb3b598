"""A small in-memory Hugging Face Hub look-alike for tests (standard library only).

The real ``huggingface_hub`` client and ``datasets.load_dataset`` talk to it when ``HF_ENDPOINT`` points at
``HubServer.url`` and ``HF_HUB_DISABLE_XET=1`` (uploads then use the git-LFS "basic" transfer instead of Xet)::

    server = HubServer(token="hf_test_token").start()
    ...  # run the client with HF_ENDPOINT=server.url, HF_TOKEN=..., HF_HUB_DISABLE_XET=1
    server.files("org/name")      # {path: bytes} at main
    server.commits("org/name")    # newest first, each with "id" and "title"
    server.refs("org/name"), server.lfs_objects("org/name")
    server.stop()

What it serves (the subset of the Hub API the client uses, with the Hub's status codes and error headers):

- ``GET /api/whoami-v2``; ``POST /api/repos/create`` (409 when the repo exists); ``DELETE /api/repos/delete``;
  ``POST /api/validate-yaml`` (always valid); ``PUT /api/{type}s/{repo}/settings`` (``private``/``visibility``).
- ``GET /api/{type}s/{repo}[/revision/{rev}]`` (``sha``, ``siblings`` -- with ``size``/``blobId``/``lfs`` when
  ``blobs=1`` -- ``id``, ``private``, ``lastModified``, ``cardData`` when PyYAML is importable).
- ``GET /api/{type}s/{repo}/tree/{rev}[/{path}]`` (``recursive``, ``expand``: adds ``lastCommit``; one page, no
  ``Link`` header); ``POST /api/{type}s/{repo}/paths-info/{rev}`` (form ``paths``, ``expand``).
- ``GET /api/{type}s/{repo}/refs`` (``include_prs``); ``GET /api/{type}s/{repo}/commits/{rev}``.
- ``POST /api/{type}s/{repo}/preupload/{rev}`` -> ``files: [{path, uploadMode, shouldIgnore, oid}]``. ``oid`` is the
  remote file's sha256 (LFS) or git blob sha1 (regular): the client drops unchanged files from the commit by
  comparing it with its own. ``shouldIgnore`` means "matched by .gitignore" (the client leaves such files out).
  Upload mode: LFS when the path matches an LFS pattern of the revision's ``.gitattributes``, the file is 10 MiB or
  more, or its 512-byte sample is not UTF-8 text; regular otherwise.
- ``POST /{[datasets/|spaces/]repo}.git/info/lfs/objects/batch`` (basic transfer; objects already stored in the repo
  get no ``actions``); the upload ``href`` is a signed URL on this server (the client PUTs without Authorization,
  as it does to S3), the PUT checks size and sha256; ``verify`` (Bearer token) checks the object is stored.
- ``POST /api/{type}s/{repo}/commit/{rev}`` (NDJSON: ``header``, ``file``, ``lfsFile``, ``deletedFile``,
  ``deletedFolder``; ``create_pr=1`` opens ``refs/pr/N``): 404 RevisionNotFound when ``rev`` is not a branch or PR
  ref, 412 when ``parentCommit`` is stale, 400 when an ``lfsFile`` object was never uploaded.
- ``POST|DELETE /api/{type}s/{repo}/branch/{branch}`` (409 if it exists), ``POST /api/{type}s/{repo}/tag/{rev}``,
  ``DELETE /api/{type}s/{repo}/tag/{tag}``.
- ``GET|HEAD /{[datasets/|spaces/]repo}/resolve/{rev}/{path}``: ``X-Repo-Commit``, quoted ``ETag`` (sha256 for LFS
  files, git blob sha1 otherwise), ``X-Linked-Etag``/``X-Linked-Size`` for LFS files, ``Content-Length``, single
  ``Range`` requests (206 / 416). No redirects.

Auth: a request carrying a wrong ``Authorization: Bearer`` token gets 401 with ``X-Error-Message: Invalid credentials
in Authorization header`` (which the client raises as a plain ``HfHubHTTPError``); writes without a token get the
same 401; reads of a private repo without a valid token get 404 ``RepoNotFound``. The token is never logged nor
echoed. Errors carry ``X-Error-Code`` (``RepoNotFound``, ``RevisionNotFound``, ``EntryNotFound``) and
``X-Error-Message`` headers plus a JSON ``{"error": ...}`` body, which is how the client picks its exception class.

Fault injection: ``fail_next(method, path_regex, status, times, drop)``. ``requests`` logs ``(method, path, status)``
for every request (path without the query string; status 0 for a dropped connection).
"""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import hmac
import json
import re
import secrets
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

__all__ = ["HubServer"]

REPO_TYPES = ("model", "dataset", "space", "kernel")
_URL_PREFIX = {"model": "", "dataset": "datasets/", "space": "spaces/", "kernel": "kernels/"}
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")
_HEX_RE = re.compile(r"^[0-9a-f]{5,40}$")
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
LFS_THRESHOLD = 10 * 1024 * 1024
INVALID_CREDENTIALS = "Invalid credentials in Authorization header"

# Patterns tracked by LFS in a new repo's ``.gitattributes`` (the kind of list the Hub seeds a repo with).
_LFS_PATTERNS = (
    "*.7z *.arrow *.bin *.bz2 *.ckpt *.ftz *.gz *.h5 *.joblib *.lfs.* *.mlmodel *.model *.msgpack *.npy *.npz "
    "*.onnx *.ot *.parquet *.pb *.pickle *.pkl *.pt *.pth *.rar *.safetensors saved_model/**/* *.tar.* *.tar "
    "*.tflite *.tgz *.wasm *.xz *.zip *.zst *tfevents* *.mds *.lz4 *.flac *.mp3 *.ogg *.wav *.bmp *.gif *.jpeg "
    "*.jpg *.png *.tiff *.webp *.mp4 *.webm"
).split()
DEFAULT_GITATTRIBUTES = "".join(f"{p} filter=lfs diff=lfs merge=lfs -text\n" for p in _LFS_PATTERNS).encode()


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(ts * 1000) % 1000:03d}Z"


def _git_oid(kind: str, payload: bytes) -> str:
    return hashlib.sha1(f"{kind} {len(payload)}\0".encode() + payload).hexdigest()


class HubError(Exception):
    """An HTTP error answer: status, message, optional ``X-Error-Code``."""

    def __init__(
        self, status: int, message: str, code: str | None = None, headers: dict | None = None, extra: dict | None = None
    ):
        super().__init__(message)
        self.status, self.message, self.code, self.headers = status, message, code, headers or {}
        self.extra = extra or {}  # more keys for the JSON body


class _Dropped(Exception):
    """Close the connection without answering."""


class Entry:
    """One file's content in a commit; ``lfs`` says how it is stored. Hashes are computed once, on demand."""

    __slots__ = ("content", "lfs", "_sha256", "_oid")

    def __init__(self, content: bytes, lfs: bool):
        self.content, self.lfs = content, lfs
        self._sha256: str | None = None
        self._oid: str | None = None

    @property
    def size(self) -> int:
        return len(self.content)

    @property
    def sha256(self) -> str:
        if self._sha256 is None:
            self._sha256 = hashlib.sha256(self.content).hexdigest()
        return self._sha256

    @property
    def pointer(self) -> bytes:
        return f"version https://git-lfs.github.com/spec/v1\noid sha256:{self.sha256}\nsize {self.size}\n".encode()

    @property
    def oid(self) -> str:
        """Git blob id: of the pointer file for an LFS file, of the content otherwise."""
        if self._oid is None:
            self._oid = _git_oid("blob", self.pointer if self.lfs else self.content)
        return self._oid

    def etag(self) -> str:
        return self.sha256 if self.lfs else self.oid

    def lfs_json(self) -> dict:
        return {"oid": self.sha256, "size": self.size, "pointerSize": len(self.pointer)}


@dataclass
class Commit:
    id: str
    parents: list[str]
    title: str
    message: str
    author: str
    date: float
    files: dict[str, Entry]
    _trees: dict[str, str] | None = field(default=None, repr=False)

    def dirs(self) -> dict[str, str]:
        """Git tree id of every directory ("" is the root)."""
        if self._trees is None:
            self._trees = _tree_oids(self.files)
        return self._trees


def _tree_oids(files: dict[str, Entry]) -> dict[str, str]:
    children: dict[str, dict[str, tuple[str, str | None]]] = {"": {}}
    for path in files:
        parts = path.split("/")
        for i in range(len(parts) - 1):
            parent, name = "/".join(parts[:i]), parts[i]
            children.setdefault(parent, {})[name] = ("dir", None)
            children.setdefault("/".join(parts[: i + 1]), {})
        children.setdefault("/".join(parts[:-1]), {})[parts[-1]] = ("file", path)
    oids: dict[str, str] = {}
    for d in sorted(children, key=lambda p: -p.count("/") if p else 1):  # deepest first, root last
        items = []
        for name, (kind, path) in children[d].items():
            full = f"{d}/{name}" if d else name
            if kind == "dir":
                items.append((name + "/", b"40000 " + name.encode() + b"\0" + bytes.fromhex(oids[full])))
            else:
                items.append((name, b"100644 " + name.encode() + b"\0" + bytes.fromhex(files[path].oid)))
        oids[d] = _git_oid("tree", b"".join(raw for _, raw in sorted(items)))
    return oids


@dataclass
class Repo:
    type: str
    id: str
    private: bool
    created: float
    commits: dict[str, Commit] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    prs: dict[int, str] = field(default_factory=dict)
    lfs: dict[str, bytes] = field(default_factory=dict)  # sha256 -> content of uploaded LFS objects
    sdk: str | None = None

    def resolve(self, rev: str) -> str | None:
        if rev in self.branches:
            return self.branches[rev]
        if rev in self.tags:
            return self.tags[rev]
        for prefix, refs in (("refs/heads/", self.branches), ("refs/tags/", self.tags)):
            if rev.startswith(prefix) and rev[len(prefix) :] in refs:
                return refs[rev[len(prefix) :]]
        m = re.fullmatch(r"refs/pr/(\d+)", rev)
        if m:
            return self.prs.get(int(m.group(1)))
        rev = rev.lower()
        if rev in self.commits:
            return rev
        if len(rev) >= 7 and _HEX_RE.match(rev):
            hits = [c for c in self.commits if c.startswith(rev)]
            if len(hits) == 1:
                return hits[0]
        return None

    def history(self, sha: str) -> list[Commit]:
        """First-parent history from ``sha``, newest first."""
        out = []
        while sha:
            c = self.commits[sha]
            out.append(c)
            sha = c.parents[0] if c.parents else ""
        return out

    def last_commit(self, head: str, path: str, is_dir: bool) -> Commit:
        """The newest commit of ``head``'s history that changed ``path`` (a file oid or a directory's tree oid)."""
        hist = self.history(head)

        def key(c: Commit) -> str | None:
            if is_dir:
                return c.dirs().get(path)
            e = c.files.get(path)
            return e.oid if e else None

        current = key(hist[0])
        for older, newer in zip(hist[1:], hist):
            if key(older) != current:
                return newer
        return hist[-1]


def _gitattributes_lfs(files: dict[str, Entry], path: str) -> bool:
    entry = files.get(".gitattributes")
    if entry is None:
        return False
    tracked = False
    for line in entry.content.decode("utf-8", "replace").splitlines():
        parts = line.split()
        if not parts or parts[0].startswith("#"):
            continue
        pattern, attrs = parts[0], parts[1:]
        if "/" in pattern.strip("/"):
            hit = fnmatch.fnmatchcase(path, pattern.lstrip("/"))
        else:
            hit = fnmatch.fnmatchcase(path.rsplit("/", 1)[-1], pattern.strip("/"))
        if hit:
            if "filter=lfs" in attrs:
                tracked = True
            elif "-filter" in attrs or "!filter" in attrs:
                tracked = False
    return tracked


def _looks_binary(sample: bytes) -> bool:
    if b"\0" in sample:
        return True
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError as e:
        # a multi-byte character cut by the 512-byte sample is still text
        return not (e.reason == "unexpected end of data" and e.start >= len(sample) - 3)
    return False


def _gitignored(gitignore: str | None, path: str) -> bool:
    if not gitignore:
        return False
    ignored = False
    for line in gitignore.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = line[1:] if negate else line
        pattern = pattern.rstrip("/")
        if "/" in pattern:
            hit = fnmatch.fnmatchcase(path, pattern.lstrip("/")) or path.startswith(pattern.lstrip("/") + "/")
        else:
            parts = path.split("/")
            hit = any(fnmatch.fnmatchcase(p, pattern) for p in parts)
        if hit:
            ignored = not negate
    return ignored


def _card_data(files: dict[str, Entry]) -> dict | None:
    readme = files.get("README.md")
    if readme is None:
        return None
    text = readme.content.decode("utf-8", "replace")
    m = re.match(r"^---\s*\n(.*?)\n---\s*(\n|$)", text, re.S)
    if not m:
        return None
    try:
        import yaml  # optional: only to fill `cardData` in repo info
    except ImportError:
        return None
    try:
        data = yaml.safe_load(m.group(1))
    except Exception:
        return None
    return data if isinstance(data, dict) else None


class HubServer:
    """In-memory Hub on 127.0.0.1; see the module docstring for what it serves."""

    def __init__(self, token: str = "hf_test_token", user: str = "es-zoo-tester"):
        self._token = token
        self.user = user
        self.url = ""
        self.requests: list[tuple[str, str, int]] = []
        self._repos: dict[tuple[str, str], Repo] = {}
        self._faults: list[dict] = []
        self._lock = threading.RLock()
        self._secret = secrets.token_bytes(32)
        self._shas: set[str] = set()  # every commit id made, so that each commit gets a new one
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:  # never shows the token
        return f"HubServer(url={self.url!r}, user={self.user!r}, repos={len(self._repos)})"

    # ----------------------------------------------------------------------------------------- lifecycle
    def start(self) -> HubServer:
        server = self

        class Handler(_Handler):
            hub = server

        self._httpd = _QuietServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), name="hub-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> HubServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # ----------------------------------------------------------------------------------------- test helpers
    def fail_next(self, method: str, path_regex: str, status: int = 500, times: int = 1, drop: bool = False) -> None:
        """Make the next ``times`` requests whose method is ``method`` ("*" for any) and whose path (no query
        string, still %-encoded as sent: a quoted revision reads ``refs%2Fpr%2F1``) matches ``path_regex``
        (``re.search``) fail with ``status`` and a JSON error body, or, with
        ``drop=True``, have their connection closed without any answer (after the request body was read)."""
        if times < 1:
            return
        with self._lock:
            self._faults.append(
                {"method": method.upper(), "re": re.compile(path_regex), "status": status, "times": times, "drop": drop}
            )

    def files(self, repo_id: str, repo_type: str = "model", revision: str = "main") -> dict[str, bytes]:
        """``{path: content}`` of the repo at ``revision`` (branch, tag, ``refs/pr/N`` or commit sha), including
        the ``.gitattributes`` of the initial commit."""
        with self._lock:
            repo = self._repo_or_raise(repo_type, repo_id)
            sha = repo.resolve(revision)
            if sha is None:
                raise KeyError(f"revision {revision!r} not found in {repo_type} {repo_id}")
            return {p: e.content for p, e in sorted(repo.commits[sha].files.items())}

    def commits(self, repo_id: str, repo_type: str = "model", revision: str = "main") -> list[dict]:
        """First-parent history of ``revision``, newest first: ``id``, ``title``, ``message``, ``parents``,
        ``author``, ``date`` (ISO)."""
        with self._lock:
            repo = self._repo_or_raise(repo_type, repo_id)
            sha = repo.resolve(revision)
            if sha is None:
                raise KeyError(f"revision {revision!r} not found in {repo_type} {repo_id}")
            return [
                {
                    "id": c.id,
                    "title": c.title,
                    "message": c.message,
                    "parents": list(c.parents),
                    "author": c.author,
                    "date": _iso(c.date),
                }
                for c in repo.history(sha)
            ]

    def refs(self, repo_id: str, repo_type: str = "model") -> dict[str, str]:
        """Every ref of the repo: ``{"refs/heads/main": sha, "refs/tags/v1": sha, "refs/pr/1": sha, ...}``."""
        with self._lock:
            repo = self._repo_or_raise(repo_type, repo_id)
            out = {f"refs/heads/{b}": s for b, s in repo.branches.items()}
            out.update({f"refs/tags/{t}": s for t, s in repo.tags.items()})
            out.update({f"refs/pr/{n}": s for n, s in repo.prs.items()})
            return out

    def seed(self, repo_id: str, files: dict[str, bytes], repo_type: str = "dataset", revision: str = "main",
             title: str = "Add data") -> str:
        """Put ``files`` in a (new or existing) public repo as one commit on main, and make ``revision`` name it:
        a branch of that name (``refs/convert/parquet`` included, as the Hub's parquet conversion is), or, for
        40 hex digits, a commit with that id (so a revision pinned to a real Hub commit resolves here).
        Returns the commit id ``revision`` resolves to. Binary files and ``*.parquet`` are stored as LFS."""
        import dataclasses

        with self._lock:
            repo = self._repos.get((repo_type, repo_id))
            if repo is None:
                repo = self._repos[(repo_type, repo_id)] = self._new_repo(repo_type, repo_id, private=False)
            head = repo.commits[repo.branches["main"]]
            entries = dict(head.files)
            for path, content in files.items():
                lfs = path.endswith(".parquet") or b"\0" in content[:512]
                entries[path] = Entry(content, lfs=lfs)
                if lfs:
                    repo.lfs[hashlib.sha256(content).hexdigest()] = content
            commit = self._make_commit(repo, [head.id], entries, title, "", self.user)
            repo.branches["main"] = commit.id
            if revision == "main":
                return commit.id
            if re.fullmatch(r"[0-9a-f]{40}", revision):
                repo.commits[revision] = dataclasses.replace(commit, id=revision)
                self._shas.add(revision)
                return revision
            repo.branches[revision] = commit.id
            return commit.id

    def lfs_objects(self, repo_id: str, repo_type: str = "model") -> set[str]:
        """sha256 of every LFS object uploaded to the repo."""
        with self._lock:
            return set(self._repo_or_raise(repo_type, repo_id).lfs)

    def _repo_or_raise(self, repo_type: str, repo_id: str) -> Repo:
        repo = self._repos.get((repo_type, repo_id))
        if repo is None:
            raise KeyError(f"no {repo_type} repo {repo_id!r}")
        return repo

    # ----------------------------------------------------------------------------------------- internals
    def _check_fault(self, method: str, path: str) -> dict | None:
        with self._lock:
            for fault in self._faults:
                if fault["method"] in ("*", method) and fault["re"].search(path):
                    fault["times"] -= 1
                    if fault["times"] <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def _token_ok(self, given: str) -> bool:
        return hmac.compare_digest(given.encode(), self._token.encode())

    def _sign(self, *parts: str) -> str:
        return hmac.new(self._secret, "\n".join(parts).encode(), hashlib.sha256).hexdigest()

    def _new_repo(self, repo_type: str, repo_id: str, private: bool) -> Repo:
        now = time.time()
        repo = Repo(type=repo_type, id=repo_id, private=private, created=now)
        files = {".gitattributes": Entry(DEFAULT_GITATTRIBUTES, lfs=False)}
        commit = self._make_commit(repo, [], files, "initial commit", "", "system", now)
        repo.branches["main"] = commit.id
        return repo

    def _make_commit(
        self, repo: Repo, parents: list[str], files: dict[str, Entry], title: str, message: str, author: str,
        when: float | None = None,
    ) -> Commit:
        """A real git commit object id; identical commits made in the same second (e.g. two identical PRs, or two
        repos' initial commits) are told apart by moving the later one's timestamp on by a second."""
        when = time.time() if when is None else when
        tree = _tree_oids(files)
        full_message = title + ("\n\n" + message if message else "") + "\n"
        while True:
            ident = f"{author} <{author}@users.noreply.huggingface.co> {int(when)} +0000"
            body = f"tree {tree['']}\n" + "".join(f"parent {p}\n" for p in parents)
            body += f"author {ident}\ncommitter {ident}\n\n{full_message}"
            sha = _git_oid("commit", body.encode())
            if sha not in self._shas:
                break
            when += 1
        self._shas.add(sha)
        commit = Commit(sha, list(parents), title, message, author, when, dict(files), tree)
        repo.commits[sha] = commit
        return commit


# --------------------------------------------------------------------------------------------------- HTTP
class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # a client closing its keep-alive connection mid-read is normal: no traceback on stderr
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    hub: HubServer
    protocol_version = "HTTP/1.1"
    server_version = "HubServer/1.0"
    timeout = 60  # idle keep-alive connections are closed after a minute

    # never print anything (the default logs request lines to stderr)
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass

    def do_GET(self) -> None:
        self._handle("GET")

    def do_HEAD(self) -> None:
        self._handle("HEAD")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    # ----------------------------------------------------------------------------------------- plumbing
    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size_line = self.rfile.readline(65537)
                size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline(65537)
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _handle(self, method: str) -> None:
        hub = self.hub
        split = urlsplit(self.path)
        self.raw_path, self.query = split.path, parse_qs(split.query, keep_blank_values=True)
        self.method = method
        try:
            self.body = self._read_body() if method in ("POST", "PUT", "DELETE") else b""
        except (ValueError, OSError):
            self.close_connection = True
            return
        status, headers, body = 500, {}, b""
        try:
            fault = hub._check_fault(method, self.raw_path)
            if fault is not None:
                if fault["drop"]:
                    raise _Dropped()
                raise HubError(fault["status"], f"Injected failure ({fault['status']})")
            status, headers, body = self._route()
        except _Dropped:
            with hub._lock:
                hub.requests.append((method, self.raw_path, 0))
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        except HubError as e:
            status, headers, body = self._error(e)
        except Exception as e:  # a bug in the fake: answer 500 rather than hang the client
            status, headers, body = self._error(HubError(500, f"Internal error in test hub: {type(e).__name__}: {e}"))
        with hub._lock:
            hub.requests.append((method, self.raw_path, status))
        self._send(status, headers, body)

    def _send(self, status: int, headers: dict, body: bytes | tuple[bytes, int]) -> None:
        # body may be (b"", length) for HEAD: headers of the full answer, no payload
        if isinstance(body, tuple):
            payload, length = body
        else:
            payload, length = body, len(body)
        try:
            self.send_response(status)
            for k, v in headers.items():
                # header values must be one latin-1 line: escape anything else (messages may quote paths)
                value = " ".join(str(v).splitlines()).encode("ascii", "backslashreplace").decode("ascii")
                self.send_header(k, value)
            self.send_header("Content-Length", str(length))
            self.end_headers()
            if self.method != "HEAD" and payload:
                self.wfile.write(payload)
            self.wfile.flush()
        except OSError:
            self.close_connection = True

    def _error(self, e: HubError) -> tuple[int, dict, bytes]:
        headers = {"Content-Type": "application/json; charset=utf-8", "X-Error-Message": e.message, **e.headers}
        if e.code:
            headers["X-Error-Code"] = e.code
        return e.status, headers, json.dumps({**e.extra, "error": e.message}).encode()

    @staticmethod
    def _json(data: Any, status: int = 200, headers: dict | None = None, ctype: str = "application/json") -> tuple:
        return status, {"Content-Type": f"{ctype}; charset=utf-8", **(headers or {})}, json.dumps(data).encode()

    def _auth(self) -> bool | None:
        """True: valid token; None: no token. A wrong token is answered 401 right away."""
        value = self.headers.get("Authorization")
        if not value:
            return None
        scheme, _, given = value.partition(" ")
        if scheme.lower() != "bearer" or not self.hub._token_ok(given.strip()):
            raise HubError(401, INVALID_CREDENTIALS)
        return True

    def _require_auth(self) -> None:
        if self._auth() is not True:
            raise HubError(401, INVALID_CREDENTIALS)

    def _param(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else default

    def _flag(self, name: str) -> bool:
        return (self._param(name) or "").lower() in ("1", "true", "yes")

    def _json_body(self) -> Any:
        try:
            return json.loads(self.body or b"{}")
        except ValueError as e:
            raise HubError(400, f"Invalid JSON body: {e}") from None

    def _repo(self, repo_type: str, repo_id: str, write: bool = False) -> Repo:
        authed = self._auth()
        if write and not authed:
            raise HubError(401, INVALID_CREDENTIALS)
        repo = self.hub._repos.get((repo_type, repo_id))
        if repo is None or (repo.private and not authed):
            raise HubError(404, "Repository not found", "RepoNotFound")
        return repo

    @staticmethod
    def _rev(repo: Repo, rev: str) -> Commit:
        sha = repo.resolve(rev)
        if sha is None:
            raise HubError(404, f"Invalid rev id: {rev}", "RevisionNotFound")
        return repo.commits[sha]

    @staticmethod
    def _split_rev(parts: list[str]) -> tuple[str, str]:
        """``[rev, *path]`` -> (revision, path). The revision is one %-quoted segment, or a raw ``refs/x/y``."""
        if not parts or parts == [""]:
            raise HubError(404, "Missing revision", "RevisionNotFound")
        if parts[0] == "refs" and len(parts) >= 3:
            return unquote("/".join(parts[:3])), unquote("/".join(parts[3:]))
        return unquote(parts[0]), unquote("/".join(parts[1:]))

    def _repo_url(self, repo: Repo) -> str:
        return f"{self.hub.url}/{_URL_PREFIX[repo.type]}{repo.id}"

    # ----------------------------------------------------------------------------------------- routing
    def _route(self) -> tuple:
        m = self.method
        segs = self.raw_path.split("/")[1:]
        with self.hub._lock:
            if segs[:1] == ["api"]:
                return self._route_api(segs[1:])
            if segs[:2] == ["_lfs", "upload"] and m == "PUT" and len(segs) == 6:
                return self._lfs_put(segs[2][:-1], f"{unquote(segs[3])}/{unquote(segs[4])}", segs[5])
            if segs[:2] == ["_lfs", "verify"] and m == "POST" and len(segs) == 5:
                return self._lfs_verify(segs[2][:-1], f"{unquote(segs[3])}/{unquote(segs[4])}")
            repo_type = "model"
            if segs and segs[0] in ("datasets", "spaces", "kernels"):
                repo_type, segs = segs[0][:-1], segs[1:]
            if len(segs) >= 2:
                ns, name, rest = unquote(segs[0]), unquote(segs[1]), segs[2:]
                if name.endswith(".git") and rest == ["info", "lfs", "objects", "batch"] and m == "POST":
                    return self._lfs_batch(repo_type, f"{ns}/{name[:-4]}")
                if rest[:1] == ["resolve"] and m in ("GET", "HEAD"):
                    rev, path = self._split_rev(rest[1:])
                    return self._resolve(repo_type, f"{ns}/{name}", rev, path)
        raise HubError(404, f"Not found: {self.method} {self.raw_path}")

    def _route_api(self, segs: list[str]) -> tuple:
        m = self.method
        if segs == ["whoami-v2"] and m == "GET":
            return self._whoami()
        if segs == ["repos", "create"] and m == "POST":
            return self._create_repo()
        if segs == ["repos", "delete"] and m == "DELETE":
            return self._delete_repo()
        if segs == ["validate-yaml"] and m == "POST":
            return self._json({"errors": [], "warnings": []})
        if len(segs) >= 3 and segs[0] in ("models", "datasets", "spaces", "kernels"):
            repo_type, repo_id, rest = segs[0][:-1], f"{unquote(segs[1])}/{unquote(segs[2])}", segs[3:]
            action = rest[0] if rest else ""
            if not rest and m == "GET":
                return self._repo_info(repo_type, repo_id, "main")
            if action == "revision" and m == "GET":
                return self._repo_info(repo_type, repo_id, unquote("/".join(rest[1:])))
            if action == "tree" and m == "GET":
                rev, path = self._split_rev(rest[1:])
                return self._tree(repo_type, repo_id, rev, path)
            if action == "paths-info" and m == "POST":
                return self._paths_info(repo_type, repo_id, unquote("/".join(rest[1:])))
            if action == "refs" and m == "GET" and len(rest) == 1:
                return self._refs(repo_type, repo_id)
            if action == "commits" and m == "GET":
                return self._list_commits(repo_type, repo_id, unquote("/".join(rest[1:])) or "main")
            if action == "preupload" and m == "POST":
                return self._preupload(repo_type, repo_id, unquote("/".join(rest[1:])))
            if action == "commit" and m == "POST":
                return self._commit(repo_type, repo_id, unquote("/".join(rest[1:])))
            if action == "branch" and m in ("POST", "DELETE"):
                return self._branch(repo_type, repo_id, unquote("/".join(rest[1:])))
            if action == "tag" and m in ("POST", "DELETE"):
                return self._tag(repo_type, repo_id, unquote("/".join(rest[1:])))
            if action == "settings" and m == "PUT" and len(rest) == 1:
                return self._settings(repo_type, repo_id)
        raise HubError(404, f"Not found: {self.method} {self.raw_path}")

    # ----------------------------------------------------------------------------------------- account & repos
    def _whoami(self) -> tuple:
        self._require_auth()
        user = self.hub.user
        return self._json(
            {
                "type": "user",
                "id": hashlib.sha1(user.encode()).hexdigest()[:24],
                "name": user,
                "fullname": user,
                "email": f"{user}@example.invalid",
                "emailVerified": True,
                "isPro": False,
                "orgs": [],
                "auth": {"type": "access_token", "accessToken": {"displayName": "test token", "role": "write"}},
            }
        )

    def _create_repo(self) -> tuple:
        self._require_auth()
        data = self._json_body()
        repo_type = data.get("type") or "model"
        if repo_type not in REPO_TYPES:
            raise HubError(400, f"Invalid repo type: {repo_type}")
        name, org = data.get("name"), data.get("organization") or self.hub.user
        if not isinstance(name, str) or not _NAME_RE.match(name) or not _NAME_RE.match(org):
            raise HubError(400, f"Invalid repo name: {org}/{name}")
        if repo_type == "space" and not data.get("sdk"):
            raise HubError(400, "A Space needs an sdk")
        repo_id = f"{org}/{name}"
        visibility = data.get("visibility")
        private = visibility == "private" if visibility is not None else bool(data.get("private", False))
        existing = self.hub._repos.get((repo_type, repo_id))
        if existing is not None:
            url = self._repo_url(existing)
            raise HubError(409, f"You already created this {repo_type} repo", extra={"url": url})
        repo = self.hub._new_repo(repo_type, repo_id, private)
        repo.sdk = data.get("sdk")
        self.hub._repos[(repo_type, repo_id)] = repo
        return self._json({"url": self._repo_url(repo), "name": repo_id, "id": repo_id})

    def _delete_repo(self) -> tuple:
        self._require_auth()
        data = self._json_body()
        repo_type = data.get("type") or "model"
        repo_id = f"{data.get('organization') or self.hub.user}/{data.get('name')}"
        if self.hub._repos.pop((repo_type, repo_id), None) is None:
            raise HubError(404, "Repository not found", "RepoNotFound")
        return self._json({})

    def _settings(self, repo_type: str, repo_id: str) -> tuple:
        repo = self._repo(repo_type, repo_id, write=True)
        data = self._json_body()
        if "private" in data:
            repo.private = bool(data["private"])
        if data.get("visibility") in ("public", "private"):
            repo.private = data["visibility"] == "private"
        return self._json({})

    def _repo_info(self, repo_type: str, repo_id: str, rev: str) -> tuple:
        repo = self._repo(repo_type, repo_id)
        commit = self._rev(repo, rev)
        blobs = self._flag("blobs")
        siblings = []
        for path, e in sorted(commit.files.items()):
            s: dict[str, Any] = {"rfilename": path}
            if blobs:
                s.update(size=e.size, blobId=e.oid)
                if e.lfs:
                    s["lfs"] = {"size": e.size, "sha256": e.sha256, "pointerSize": len(e.pointer)}
            siblings.append(s)
        info: dict[str, Any] = {
            "_id": hashlib.sha1(f"{repo.type}/{repo.id}".encode()).hexdigest()[:24],
            "id": repo.id,
            "author": repo.id.split("/")[0],
            "sha": commit.id,
            "lastModified": _iso(commit.date),
            "createdAt": _iso(repo.created),
            "private": repo.private,
            "gated": False,
            "disabled": False,
            "downloads": 0,
            "likes": 0,
            "tags": [],
            "siblings": siblings,
        }
        if repo_type == "model":
            info["modelId"] = repo.id
        if repo_type == "space":
            info["sdk"] = repo.sdk
        card = _card_data(commit.files)
        if card is not None:
            info["cardData"] = card
        return self._json(info)

    # ----------------------------------------------------------------------------------------- listing
    def _file_json(self, repo: Repo, commit: Commit, path: str, expand: bool) -> dict:
        e = commit.files[path]
        out: dict[str, Any] = {"type": "file", "oid": e.oid, "size": e.size, "path": path}
        if e.lfs:
            out["lfs"] = e.lfs_json()
        if expand:
            last = repo.last_commit(commit.id, path, is_dir=False)
            out["lastCommit"] = {"id": last.id, "title": last.title, "date": _iso(last.date)}
        return out

    def _dir_json(self, repo: Repo, commit: Commit, path: str, expand: bool) -> dict:
        out: dict[str, Any] = {"type": "directory", "oid": commit.dirs()[path], "size": 0, "path": path}
        if expand:
            last = repo.last_commit(commit.id, path, is_dir=True)
            out["lastCommit"] = {"id": last.id, "title": last.title, "date": _iso(last.date)}
        return out

    def _tree(self, repo_type: str, repo_id: str, rev: str, path: str) -> tuple:
        repo = self._repo(repo_type, repo_id)
        commit = self._rev(repo, rev)
        path = path.strip("/")
        dirs = commit.dirs()
        if path not in dirs:
            raise HubError(404, f"Entry not found: {path}", "EntryNotFound", {"X-Repo-Commit": commit.id})
        recursive, expand = self._flag("recursive"), self._flag("expand")
        prefix = path + "/" if path else ""
        entries = []
        for d in sorted(dirs):
            if d and d.startswith(prefix) and (recursive or "/" not in d[len(prefix) :]):
                entries.append(self._dir_json(repo, commit, d, expand))
        for f in sorted(commit.files):
            if f.startswith(prefix) and (recursive or "/" not in f[len(prefix) :]):
                entries.append(self._file_json(repo, commit, f, expand))
        return self._json(entries, headers={"X-Repo-Commit": commit.id})

    def _paths_info(self, repo_type: str, repo_id: str, rev: str) -> tuple:
        repo = self._repo(repo_type, repo_id)
        commit = self._rev(repo, rev)
        ctype = self.headers.get("Content-Type", "")
        if "json" in ctype:
            data = self._json_body()
            paths, expand = data.get("paths", []), bool(data.get("expand"))
        else:
            form = parse_qs(self.body.decode(), keep_blank_values=True)
            paths = form.get("paths", [])
            expand = (form.get("expand", ["false"])[-1]).lower() in ("1", "true")
        out, dirs = [], commit.dirs()
        for p in paths:
            p = p.strip("/")
            if p in commit.files:
                out.append(self._file_json(repo, commit, p, expand))
            elif p and p in dirs:
                out.append(self._dir_json(repo, commit, p, expand))
        return self._json(out, headers={"X-Repo-Commit": commit.id})

    def _refs(self, repo_type: str, repo_id: str) -> tuple:
        repo = self._repo(repo_type, repo_id)

        def ref(name: str, full: str, sha: str) -> dict:
            return {"name": name, "ref": full, "targetCommit": sha}

        data: dict[str, Any] = {
            "branches": [ref(b, f"refs/heads/{b}", s) for b, s in sorted(repo.branches.items())],
            "converts": [],
            "tags": [ref(t, f"refs/tags/{t}", s) for t, s in sorted(repo.tags.items())],
        }
        if self._flag("include_prs"):
            data["pullRequests"] = [ref(f"refs/pr/{n}", f"refs/pr/{n}", s) for n, s in sorted(repo.prs.items())]
        return self._json(data)

    def _list_commits(self, repo_type: str, repo_id: str, rev: str) -> tuple:
        repo = self._repo(repo_type, repo_id)
        commit = self._rev(repo, rev)
        items = [
            {
                "id": c.id,
                "title": c.title,
                "message": c.message,
                "date": _iso(c.date),
                "authors": [{"user": c.author}],
                "parents": list(c.parents),
            }
            for c in repo.history(commit.id)
        ]
        return self._json(items)

    # ----------------------------------------------------------------------------------------- download
    def _resolve(self, repo_type: str, repo_id: str, rev: str, path: str) -> tuple:
        repo = self._repo(repo_type, repo_id)
        commit = self._rev(repo, rev)
        entry = commit.files.get(path)
        if entry is None:
            raise HubError(404, "Entry not found", "EntryNotFound", {"X-Repo-Commit": commit.id})
        total = entry.size
        headers: dict[str, Any] = {
            "Content-Type": "application/octet-stream",
            "Accept-Ranges": "bytes",
            "X-Repo-Commit": commit.id,
            "ETag": f'"{entry.etag()}"',
            "Content-Disposition": f"inline; filename*=UTF-8''{quote(path.rsplit('/', 1)[-1])}",
        }
        if entry.lfs:
            headers["X-Linked-Etag"] = f'"{entry.sha256}"'
            headers["X-Linked-Size"] = str(total)
        status, start, end = 200, 0, total - 1
        rng = self.headers.get("Range")
        if rng:
            m = re.fullmatch(r"\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*", rng)
            if m and (m.group(1) or m.group(2)):
                if m.group(1):
                    start = int(m.group(1))
                    end = min(int(m.group(2)), total - 1) if m.group(2) else total - 1
                else:  # suffix range: the last N bytes
                    start, end = max(total - int(m.group(2)), 0), total - 1
                if start >= total or end < start:
                    raise HubError(416, "Range Not Satisfiable", headers={"Content-Range": f"bytes */{total}"})
                status = 206
                headers["Content-Range"] = f"bytes {start}-{end}/{total}"
        payload = entry.content[start : end + 1] if total else b""
        if self.method == "HEAD":
            return status, headers, (b"", len(payload))
        return status, headers, payload

    # ----------------------------------------------------------------------------------------- upload
    def _preupload(self, repo_type: str, repo_id: str, rev: str) -> tuple:
        repo = self._repo(repo_type, repo_id, write=True)
        commit = self._rev(repo, rev)
        data = self._json_body()
        gitignore = data.get("gitIgnore")
        if gitignore is None and ".gitignore" in commit.files:
            gitignore = commit.files[".gitignore"].content.decode("utf-8", "replace")
        out = []
        for f in data.get("files", []):
            path, size = f.get("path"), int(f.get("size") or 0)
            try:
                sample = base64.b64decode(f.get("sample") or "")
            except ValueError:
                raise HubError(400, f"Invalid base64 sample for {path}") from None
            lfs = size >= LFS_THRESHOLD or _gitattributes_lfs(commit.files, path) or _looks_binary(sample)
            item: dict[str, Any] = {
                "path": path,
                "uploadMode": "lfs" if lfs else "regular",
                "shouldIgnore": _gitignored(gitignore, path),
            }
            existing = commit.files.get(path)
            item["oid"] = existing.etag() if existing is not None else None
            out.append(item)
        return self._json({"files": out, "commitOid": commit.id})

    def _lfs_batch(self, repo_type: str, repo_id: str) -> tuple:
        repo = self._repo(repo_type, repo_id, write=True)
        data = self._json_body()
        lfs_json = "application/vnd.git-lfs+json"
        if data.get("operation") != "upload":
            raise HubError(400, "Only the 'upload' operation is supported by the test hub")
        transfers = data.get("transfers") or ["basic"]
        if "basic" not in transfers:
            raise HubError(400, "Only the 'basic' transfer is supported by the test hub")
        objects = []
        for obj in data.get("objects", []):
            oid, size = obj.get("oid"), obj.get("size")
            if not isinstance(oid, str) or not _SHA256_RE.match(oid) or not isinstance(size, int) or size < 0:
                objects.append(
                    {"oid": str(oid), "size": size if isinstance(size, int) else 0,
                     "error": {"code": 422, "message": "Invalid oid or size"}}
                )
                continue
            item: dict[str, Any] = {"oid": oid, "size": size, "authenticated": True}
            if oid not in repo.lfs:
                key = f"{repo.type}s/{quote(repo.id.split('/')[0])}/{quote(repo.id.split('/')[1])}"
                sig = self.hub._sign(repo.type, repo.id, oid, str(size))
                item["actions"] = {
                    "upload": {"href": f"{self.hub.url}/_lfs/upload/{key}/{oid}?size={size}&sig={sig}", "header": {}},
                    "verify": {"href": f"{self.hub.url}/_lfs/verify/{key}", "header": {}},
                }
            objects.append(item)
        return self._json({"transfer": "basic", "objects": objects}, ctype=lfs_json)

    def _lfs_put(self, repo_type: str, repo_id: str, oid: str) -> tuple:
        size, sig = self._param("size", ""), self._param("sig", "")
        if repo_type not in REPO_TYPES or not hmac.compare_digest(
            self.hub._sign(repo_type, repo_id, oid, size or ""), sig or ""
        ):
            raise HubError(403, "Invalid or expired upload signature")
        repo = self.hub._repos.get((repo_type, repo_id))
        if repo is None:
            raise HubError(404, "Repository not found", "RepoNotFound")
        if str(len(self.body)) != size:
            raise HubError(400, f"Size mismatch: expected {size} bytes, got {len(self.body)}")
        if hashlib.sha256(self.body).hexdigest() != oid:
            raise HubError(400, "sha256 mismatch: the uploaded content does not match the oid")
        repo.lfs[oid] = bytes(self.body)
        return 200, {"ETag": f'"{hashlib.md5(self.body).hexdigest()}"'}, b""

    def _lfs_verify(self, repo_type: str, repo_id: str) -> tuple:
        repo = self._repo(repo_type, repo_id, write=True)
        data = self._json_body()
        content = repo.lfs.get(data.get("oid"))
        if content is None or len(content) != data.get("size"):
            raise HubError(404, "Object not found or size mismatch")
        return self._json({"message": "ok"}, ctype="application/vnd.git-lfs+json")

    def _commit(self, repo_type: str, repo_id: str, rev: str) -> tuple:
        repo = self._repo(repo_type, repo_id, write=True)
        create_pr = self._flag("create_pr")
        try:
            lines = [json.loads(line) for line in self.body.splitlines() if line.strip()]
        except ValueError as e:
            raise HubError(400, f"Invalid NDJSON body: {e}") from None
        if not lines or lines[0].get("key") != "header":
            raise HubError(400, "The first line of a commit must be its header")
        header = lines[0].get("value") or {}
        summary = (header.get("summary") or "").strip()
        if not summary:
            raise HubError(400, "Commit summary must not be empty")
        parent_commit = header.get("parentCommit")

        # the target: a branch, or a PR ref to push to
        pr_num: int | None = None
        m = re.fullmatch(r"refs/pr/(\d+)", rev)
        if m and int(m.group(1)) in repo.prs and not create_pr:
            pr_num = int(m.group(1))
            head = repo.prs[pr_num]
        else:
            branch = rev[len("refs/heads/") :] if rev.startswith("refs/heads/") else rev
            if branch not in repo.branches:
                raise HubError(404, f"Invalid rev id: {rev}", "RevisionNotFound")
            head = repo.branches[branch]
        if parent_commit:
            parent_commit = str(parent_commit).lower()
            if create_pr:
                base = repo.resolve(parent_commit)
                if base is None:
                    raise HubError(404, f"Invalid parent commit: {parent_commit}", "RevisionNotFound")
                head = base
            elif not head.startswith(parent_commit):
                raise HubError(
                    412, "A commit has happened since. Please refresh and try again.", headers={"X-Repo-Commit": head}
                )

        files = dict(repo.commits[head].files)
        for line in lines[1:]:
            key, value = line.get("key"), line.get("value") or {}
            path = str(value.get("path", "")).strip("/")
            if key in ("file", "lfsFile", "deletedFile", "deletedFolder") and not path:
                raise HubError(400, f"Missing path in '{key}' operation")
            if key == "file":
                encoding = value.get("encoding", "base64")
                raw = value.get("content", "")
                try:
                    content = base64.b64decode(raw) if encoding == "base64" else str(raw).encode("utf-8")
                except ValueError:
                    raise HubError(400, f"Invalid base64 content for {path}") from None
                self._put_file(files, path, Entry(content, lfs=False))
            elif key == "lfsFile":
                oid = value.get("oid")
                content = repo.lfs.get(oid)
                if value.get("algo", "sha256") != "sha256" or content is None:
                    raise HubError(
                        400, f"Your push was rejected because an LFS pointer ({path}) points to an object ({oid})"
                        " that was never uploaded",
                    )
                if value.get("size") is not None and int(value["size"]) != len(content):
                    raise HubError(400, f"LFS object size mismatch for {path}")
                self._put_file(files, path, Entry(content, lfs=True))
            elif key == "deletedFile":
                if path not in files:
                    raise HubError(404, f"A file with this name doesn't exist: {path}", "EntryNotFound")
                del files[path]
            elif key == "deletedFolder":
                doomed = [p for p in files if p.startswith(path + "/")]
                if not doomed:
                    raise HubError(404, f"A folder with this name doesn't exist: {path}", "EntryNotFound")
                for p in doomed:
                    del files[p]
            else:
                raise HubError(400, f"Unknown commit operation: {key!r}")

        # reuse unchanged entries so that hashes are computed once
        old = repo.commits[head].files
        for p, e in files.items():
            o = old.get(p)
            if o is not None and o is not e and o.lfs == e.lfs and o.content == e.content:
                files[p] = o
        commit = self.hub._make_commit(repo, [head], files, summary, header.get("description") or "", self.hub.user)
        base_url = self._repo_url(repo)
        result: dict[str, Any] = {
            "success": True,
            "commitOid": commit.id,
            "commitUrl": f"{base_url}/commit/{commit.id}",
        }
        if create_pr:
            pr_num = max(repo.prs, default=0) + 1
            repo.prs[pr_num] = commit.id
            result["pullRequestUrl"] = f"{base_url}/discussions/{pr_num}"
        elif pr_num is not None:
            repo.prs[pr_num] = commit.id
            result["pullRequestUrl"] = f"{base_url}/discussions/{pr_num}"
        else:
            repo.branches[branch] = commit.id
            result["pullRequestUrl"] = None
        return self._json(result)

    @staticmethod
    def _put_file(files: dict[str, Entry], path: str, entry: Entry) -> None:
        parts = path.split("/")
        for i in range(1, len(parts)):
            if "/".join(parts[:i]) in files:
                raise HubError(400, f"Cannot create {path}: {'/'.join(parts[:i])} is a file")
        if any(p.startswith(path + "/") for p in files):
            raise HubError(400, f"Cannot create file {path}: a folder with this name exists")
        files[path] = entry

    def _branch(self, repo_type: str, repo_id: str, branch: str) -> tuple:
        repo = self._repo(repo_type, repo_id, write=True)
        if not branch or branch.startswith("refs/") or not re.fullmatch(r"[A-Za-z0-9._/-]+", branch):
            raise HubError(400, f"Invalid branch name: {branch}")
        if self.method == "DELETE":
            if branch not in repo.branches:
                raise HubError(404, f"Invalid rev id: {branch}", "RevisionNotFound")
            if branch == "main":
                raise HubError(403, "Cannot delete the main branch")
            del repo.branches[branch]
            return self._json({})
        if branch in repo.branches:
            raise HubError(409, f"Reference already exists: refs/heads/{branch}")
        data = self._json_body()
        start = data.get("startingPoint") or "main"
        repo.branches[branch] = self._rev(repo, start).id
        return self._json({})

    def _tag(self, repo_type: str, repo_id: str, arg: str) -> tuple:
        repo = self._repo(repo_type, repo_id, write=True)
        if self.method == "DELETE":
            if arg not in repo.tags:
                raise HubError(404, f"Invalid rev id: {arg}", "RevisionNotFound")
            del repo.tags[arg]
            return self._json({})
        commit = self._rev(repo, arg)
        tag = self._json_body().get("tag")
        if not isinstance(tag, str) or not tag:
            raise HubError(400, "Missing tag name")
        if tag in repo.tags:
            raise HubError(409, f"Reference already exists: refs/tags/{tag}")
        repo.tags[tag] = commit.id
        return self._json({})
