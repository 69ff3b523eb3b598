"""Run `python -m es_zoo ARGS` many times without paying for its imports each time (tests only).

A server process imports es-zoo's heavy dependencies (torch, transformers, datasets) once, then forks
one child per command. The child is a separate process like `python -m es_zoo` would be: its own working
directory, stdin from /dev/null, stdout and stderr to files, an address-space limit if asked, and the same
entry point (``runpy`` runs ``es_zoo.__main__``); the server kills it after the time limit. What differs
from a fresh interpreter is only that the imports are already done, so import-time failures are not exercised
here (the other CLI tests start a fresh interpreter).

The server never runs torch itself before forking (no OpenMP pool to inherit), and it is a process of its
own rather than pytest's, which has threads (a forked multi-threaded process may deadlock).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

_SERVER = r'''
import json, os, resource, runpy, signal, sys, time
import datasets, torch, transformers  # the imports every child then has for free
import es_zoo.cli

for line in sys.stdin:
    req = json.loads(line)
    sys.stdout.flush(); sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.setsid()
            os.chdir(req["cwd"])
            limit = req["memory_limit"]
            if limit is not None:
                resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
            null = os.open(os.devnull, os.O_RDONLY)
            os.dup2(null, 0)
            out = os.open(req["stdout"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            err = os.open(req["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(out, 1)
            os.dup2(err, 2)
            sys.argv = [sys.executable, *req["args"]]
            code = 0
            try:
                runpy.run_module("es_zoo", run_name="__main__", alter_sys=True)
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
                if not isinstance(exc.code, (int, type(None))):
                    print(exc.code, file=sys.stderr)
            except BaseException:
                import traceback
                traceback.print_exc()
                code = 1
            sys.stdout.flush(); sys.stderr.flush()
        finally:
            os._exit(code)
    deadline = time.monotonic() + req["timeout"]
    status = None
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        time.sleep(0.01)
    else:
        os.killpg(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        status = None
    code = None if status is None else os.waitstatus_to_exitcode(status)
    print(json.dumps({"returncode": code}), flush=True)
'''


class ForkServer:
    """``run(args, cwd)`` gives a CompletedProcess as ``subprocess.run([python, -m, es_zoo, *args])`` would
    (returncode None: killed at the time limit)."""

    def __init__(self, env: dict[str, str], memory_limit: int | None, timeout: float) -> None:
        self.memory_limit, self.timeout = memory_limit, timeout
        self.outputs = Path(tempfile.mkdtemp(prefix="es-zoo-forkserver-"))  # never inside a case's folder
        self.proc = subprocess.Popen([sys.executable, "-c", _SERVER], env=env, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)

    def run(self, args: list[str], cwd: Path) -> subprocess.CompletedProcess:
        out, err = self.outputs / "stdout", self.outputs / "stderr"
        req = {"args": [str(a) for a in args], "cwd": str(cwd), "stdout": str(out), "stderr": str(err),
               "memory_limit": self.memory_limit, "timeout": self.timeout}
        self.proc.stdin.write(json.dumps(req) + "\n")
        self.proc.stdin.flush()
        reply = self.proc.stdout.readline()
        if not reply:
            raise RuntimeError("the fork server died")
        code = json.loads(reply)["returncode"]
        if code is None:
            raise subprocess.TimeoutExpired(["es_zoo", *args], self.timeout)
        done = subprocess.CompletedProcess(["es_zoo", *args], code, out.read_text(errors="replace"),
                                           err.read_text(errors="replace"))
        out.unlink()
        err.unlink()
        return done

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.outputs, ignore_errors=True)
