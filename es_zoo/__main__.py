"""``python -m es_zoo`` (what ``accelerate launch -m es_zoo`` runs).

accelerate 1.x starts a *single* process for ``accelerate launch --cpu --num_processes N`` unless an
MPI hostfile is given (its "simple launcher" only sets MASTER_ADDR/MASTER_PORT). So that the documented
``accelerate launch --num_processes 2 --cpu -m es_zoo reproduce ...`` really runs N processes, es-zoo
recognises that situation and starts the N workers itself through ``torch.distributed.run`` (torchrun),
which is what accelerate uses for GPUs; every worker then joins one gloo process group.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes")


def _requested_processes() -> int | None:
    """``--num_processes`` of the ``accelerate launch`` that started us (command line, then config)."""
    try:
        raw = Path(f"/proc/{os.getppid()}/cmdline").read_bytes()
    except OSError:
        return None
    args = [a.decode(errors="replace") for a in raw.split(b"\0") if a]
    if not any(a == "launch" or a.endswith(("accelerate.commands.launch", "accelerate-launch")) for a in args):
        return None
    if "es_zoo" in args:  # only the launcher's own options count
        args = args[: args.index("es_zoo")]
    config = None
    for i, a in enumerate(args):
        for flag in ("--num_processes", "--num-processes"):
            if a == flag and i + 1 < len(args):
                return int(args[i + 1])
            if a.startswith(flag + "="):
                return int(a.split("=", 1)[1])
        if a in ("--config_file", "--config-file") and i + 1 < len(args):
            config = Path(args[i + 1])
    if config is None:
        home = Path(os.environ.get("HF_HOME", Path.home() / ".cache" / "huggingface"))
        config = home / "accelerate" / "default_config.yaml"
    if config.is_file():
        import yaml

        return int((yaml.safe_load(config.read_text()) or {}).get("num_processes", 1))
    return None


def _spawn_cpu_workers() -> bool:
    """Re-launch as N torchrun workers when accelerate's CPU launcher asked for N > 1 but started one."""
    env = os.environ
    launched_by_accelerate_cpu = _truthy(env.get("ACCELERATE_USE_CPU")) and "MASTER_ADDR" in env
    already_distributed = any(k in env for k in ("RANK", "WORLD_SIZE", "OMPI_COMM_WORLD_SIZE", "PMI_SIZE"))
    if not launched_by_accelerate_cpu or already_distributed:
        return False
    n = _requested_processes()
    if n is None:
        print("es-zoo: started by accelerate's CPU launcher, which runs one process; could not read its "
              "--num_processes, so this runs as one process. For N CPU processes use: "
              "ACCELERATE_USE_CPU=1 torchrun --nproc_per_node N -m es_zoo ...", file=sys.stderr)
    if not n or n < 2:
        return False
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import main as torchrun

    print(f"es-zoo: starting {n} CPU worker processes (torchrun) for accelerate launch --cpu", file=sys.stderr)
    try:
        torchrun([
            "--nproc_per_node", str(n), "--master_addr", env["MASTER_ADDR"],
            "--master_port", env.get("MASTER_PORT", "29500"), "-m", "es_zoo", *sys.argv[1:],
        ])
    except ChildFailedError as exc:  # the worker has printed its one-line error; no launcher traceback
        codes = sorted({f.exitcode for f in exc.failures.values() if f.exitcode > 0}) or [1]
        sys.exit(codes[0])
    return True


if __name__ == "__main__":
    if not _spawn_cpu_workers():
        from es_zoo.cli import main

        main()
