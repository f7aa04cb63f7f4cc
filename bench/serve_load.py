"""Load on a live `textrnn serve` (127.0.0.1 only): micro-batching on against off, side by side in one run.

    python bench/serve_load.py                  # about 2 minutes on 2 cores (needs the serve extra)
    python bench/serve_load.py --model DIR --clients 32 --requests 4000 --rounds 2

The model is the default one (`textrnn train` with no flags: a masked BiLSTM, 128-d embedding, 64 units), trained
2 epochs on ag_news_mini, unless --model names a directory. For each round and each mode (interleaved: on, off,
on, off, ...) a fresh `textrnn serve` process starts on a free port; `--clients` concurrent clients, each on one
kept-alive connection, post one ag_news_mini test text per request ({"text": ...}) and wait for the answer
before sending the next. The first 10 % of a run's requests warm it up and are not counted; the rest give
throughput, latency percentiles and errors (any status but 200, or a broken connection). Every run is bounded
(--requests, at most 20,000 in all) and stops by itself; each server is stopped after its run.

The client is a few lines of asyncio on raw sockets rather than an HTTP library, so that on a 2-core machine it
takes as little of the CPU from the server as it can (an HTTP client library costs several times more per
request).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
MAX_REQUESTS = 20_000


def train_default(directory: Path) -> Path:
    from textrnn import TextClassifier, load_dataset

    ds = load_dataset("ag_news", DATA / "ag_news_mini")
    clf = TextClassifier(epochs=2, progress=False).fit(ds.train.texts(ds.text), ds.labels_of(ds.train),
                                                       classes=ds.classes)
    return clf.save_pretrained(directory)


def start_server(model: Path, micro_batching: bool, threads: int | None) -> tuple[subprocess.Popen, int]:
    command = [sys.executable, "-m", "textrnn", "serve", str(model), "--port", "0"]
    if not micro_batching:
        command.append("--no-micro-batching")
    if threads:
        command += ["--threads", str(threads)]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    line = process.stderr.readline()
    match = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
    if not match:
        process.kill()
        raise SystemExit(f"the server did not start: {line}{process.stderr.read()}")
    return process, int(match.group(1))


def stop_server(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGINT)
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    process.stderr.close()


async def wait_ready(port: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /readyz HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
            answer = await reader.read()
            writer.close()
            if answer.startswith(b"HTTP/1.1 200"):
                return
        except OSError:
            pass
        await asyncio.sleep(0.1)
    raise SystemExit("the server never became ready")


def request_bytes(text: str) -> bytes:
    body = json.dumps({"text": text}).encode()
    return (b"POST /v1/predict HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)


async def one_client(port: int, requests: list[bytes], latencies: list[float], errors: list[str]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for request in requests:
            start = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - start)
            if not head.startswith(b"HTTP/1.1 200"):
                errors.append(head.split(b"\r\n", 1)[0].decode())
    except (OSError, asyncio.IncompleteReadError, AttributeError) as exc:
        errors.append(f"connection: {exc!r}")
    finally:
        writer.close()


async def load(port: int, texts: list[str], clients: int, total: int) -> dict:
    await wait_ready(port)
    encoded = [request_bytes(t) for t in texts]
    per_client = total // clients
    warm = max(1, per_client // 10)
    plans = [[encoded[(c * per_client + i) % len(encoded)] for i in range(per_client)] for c in range(clients)]
    # warm-up: the same clients, uncounted
    await asyncio.gather(*(one_client(port, plan[:warm], [], []) for plan in plans))
    latencies: list[float] = []
    errors: list[str] = []
    start = time.perf_counter()
    await asyncio.gather(*(one_client(port, plan[warm:], latencies, errors) for plan in plans))
    seconds = time.perf_counter() - start
    latencies.sort()

    def pct(q: float) -> float:
        return 1e3 * latencies[min(len(latencies) - 1, int(q * len(latencies)))]

    return {"requests": len(latencies), "seconds": seconds, "throughput": len(latencies) / seconds,
            "p50": pct(0.50), "p95": pct(0.95), "p99": pct(0.99), "mean": 1e3 * statistics.fmean(latencies),
            "errors": len(errors), "error_kinds": sorted(set(errors))[:5]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, help="model directory (default: train the default BiLSTM)")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--requests", type=int, default=4000, help="requests per run, warm-up included")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds of (on, off)")
    parser.add_argument("--threads", type=int, help="the server's PyTorch threads (default: textrnn serve's own)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    if args.requests * args.rounds * 2 > MAX_REQUESTS:
        raise SystemExit(f"at most {MAX_REQUESTS:,} requests in all: lower --requests or --rounds")
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    from textrnn import load_dataset

    texts = load_dataset("ag_news", DATA / "ag_news_mini").test.texts()
    with tempfile.TemporaryDirectory() as tmp:
        model = args.model or train_default(Path(tmp) / "default-bilstm")
        results = {"on": [], "off": []}
        for round_ in range(args.rounds):
            for mode in ("on", "off"):
                process, port = start_server(model, mode == "on", args.threads)
                try:
                    result = asyncio.run(load(port, texts, args.clients, args.requests))
                finally:
                    stop_server(process)
                results[mode].append(result)
                print(f"round {round_ + 1} micro-batching {mode:>3}: {result['throughput']:7,.0f} req/s  "
                      f"p50 {result['p50']:6.1f} ms  p95 {result['p95']:6.1f}  p99 {result['p99']:6.1f}  "
                      f"errors {result['errors']}", file=sys.stderr, flush=True)
    print(f"\n{args.clients} clients, one text per request, {args.requests:,} requests a run (10 % warm-up), "
          f"{args.rounds} interleaved rounds; model: {args.model or 'default BiLSTM, 2 epochs on ag_news_mini'}\n")
    print("| micro-batching | round | requests/s | p50 ms | p95 ms | p99 ms | errors |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for mode in ("on", "off"):
        for i, r in enumerate(results[mode]):
            print(f"| {mode} | {i + 1} | {r['throughput']:,.0f} | {r['p50']:.1f} | {r['p95']:.1f} | {r['p99']:.1f} | "
                  f"{r['errors']} |")
    ratios = [on["throughput"] / off["throughput"] for on, off in zip(results["on"], results["off"])]
    print(f"\nthroughput on / off, round by round: {', '.join(f'{r:.2f}x' for r in ratios)}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
