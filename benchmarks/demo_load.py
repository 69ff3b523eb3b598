"""Fire concurrent requests at a running es-zoo demo and report latency and errors.

Starts the demo in this process (``es_zoo.demos.launch``, the same hardened settings as ``es-zoo demo``),
then sends ``--requests`` predictions from ``--clients`` threads at once through ``gradio_client`` and
prints p50/p95/max latency, throughput, the error count (none allowed: the script exits 1 otherwise)
and the queue settings used. Record the figures in docs/demos.md.

    python benchmarks/demo_load.py --task pos --model runs/beto-tiny/glues/pos --requests 50
    python benchmarks/demo_load.py --task translation --model runs/t5s-tiny/seq2seq/translation --concurrency 2
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time

INPUTS = {
    "pos": ("El gato negro duerme tranquilamente sobre la alfombra.",),
    "ner": ("Gabriel García Márquez nació en Aracataca y trabajó en Bogotá.",),
    "fill-mask": ("La capital de Chile es [MASK].",),
    "translation": ("El tren sale de la estación a las ocho de la mañana.", "es → en"),
    "qa": ("¿Dónde nació Gabriel?", "Gabriel nació en Aracataca, Colombia, en 1927."),
    "parsing": ("María compró flores para su madre.",),
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--task", default="pos", choices=sorted(INPUTS))
    ap.add_argument("--model", required=True, help="the model the demo serves (a local folder)")
    ap.add_argument("--requests", type=int, default=50)
    ap.add_argument("--clients", type=int, default=50, help="threads sending at once")
    ap.add_argument("--max-queue", type=int, default=64)
    ap.add_argument("--concurrency", type=int, default=1)
    args = ap.parse_args()

    from gradio_client import Client

    from es_zoo.demos import launch

    app = launch(args.task, model=args.model, port=None, block=False, max_queue=args.max_queue,
                 concurrency=args.concurrency)
    url = app.local_url
    Client(url, verbose=False).predict(*INPUTS[args.task], api_name="/predict")  # warm-up: model in memory
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    todo = list(range(args.requests))

    def worker() -> None:
        client = Client(url, verbose=False)
        while True:
            with lock:
                if not todo:
                    return
                todo.pop()
            t0 = time.perf_counter()
            try:
                client.predict(*INPUTS[args.task], api_name="/predict")
                with lock:
                    latencies.append(time.perf_counter() - t0)
            except Exception as exc:  # noqa: BLE001 - every failure is counted and shown
                with lock:
                    errors.append(f"{type(exc).__name__}: {exc}")

    started = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(min(args.clients, args.requests))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    app.close()
    lat = sorted(latencies)
    q = statistics.quantiles(lat, n=100) if len(lat) >= 2 else lat * 99
    print(f"demo {args.task} ({args.model}); queue max_size={args.max_queue}, concurrency_limit={args.concurrency}, "
          f"{min(args.clients, args.requests)} clients")
    print(f"requests {args.requests}: ok {len(lat)}, errors {len(errors)}; wall {wall:.1f} s, "
          f"{len(lat) / wall:.1f} requests/s")
    if lat:
        print(f"latency p50 {q[49]:.3f} s, p95 {q[94]:.3f} s, max {lat[-1]:.3f} s")
    for e in errors[:5]:
        print("error:", e)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
