"""``eeap explore``'s answer time: a date's output, n best and alignment table, measured in the server (the page's
function, ``Explorer.answer``) and from a client (``gradio_client``, through HTTP and Gradio's queue).

    python bench/explore.py CHECKPOINT_OR_RUN_DIR [--requests 50] [--beam 1]

Target: ≤ 150 ms server time on 2 CPU cores after the first request. The server runs in its own process, as
``eeap explore`` runs it (with torch's default threads, or OMP_NUM_THREADS=1 when the shell sets it); the first
request is reported apart (it warms the model up), then min and median of the rest; the load average before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DATES = ["March 5, 2021", "12/25/2023", "1 Jan 1999", "2020-02-29", "Sunday, July 4, 1976", "05.10.86"]


def in_process(target: str, requests: int, beam: int) -> list[float]:
    """Server time: ``Explorer.stream`` (the answer on a decoding thread, the page's updates) run to its answer as
    Gradio runs it, in this process."""
    from eeap.model.checkpoints import load_task
    from eeap.serving.explore import Explorer, find_model

    path = find_model(target)
    explorer = Explorer(load_task(path).eval(), str(path))
    times = []
    for i in range(requests + 1):
        start = time.perf_counter()
        list(explorer.stream(DATES[i % len(DATES)], beam, "mean"))
        times.append(time.perf_counter() - start)
    return times


def through_http(target: str, requests: int, beam: int) -> list[float]:
    """Client time: ``eeap explore`` in its own process, reached through ``gradio_client``."""
    from gradio_client import Client

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"}
    server = subprocess.Popen(
        [sys.executable, "-m", "eeap", "explore", target, "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.2)
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        times = []
        for i in range(requests + 1):
            start = time.perf_counter()
            client.predict(DATES[i % len(DATES)], beam, "mean", 1, api_name="/translate")
            times.append(time.perf_counter() - start)
        return times
    finally:
        server.terminate()
        server.wait()


def summary(name: str, times: list[float]) -> dict:
    rest = [t * 1000 for t in times[1:]]
    return {
        "where": name,
        "first_ms": round(times[0] * 1000, 1),
        "min_ms": round(min(rest), 1),
        "median_ms": round(statistics.median(rest), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("target", help="a checkpoint, model folder or run folder of a translation model")
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--beam", type=int, default=1)
    args = parser.parse_args()
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    load = os.getloadavg()
    results = [
        summary("server (Explorer.stream)", in_process(args.target, args.requests, args.beam)),
        summary("client (gradio_client over HTTP)", through_http(args.target, args.requests, args.beam)),
    ]
    threads = os.environ.get("OMP_NUM_THREADS", "torch's default")
    print(json.dumps({"beam": args.beam, "threads": threads, "load_before": load, "load_after": os.getloadavg()}))
    for row in results:
        print(json.dumps(row))


if __name__ == "__main__":
    main()
