#!/usr/bin/env python3
"""Hostile scans: a normal subscriber's latency while hostile /api/v1/lines
requests repeat, beside the same subscriber's latency with no hostile load,
in one run with the default settings.

A history of 10,000 lines is loaded, a subscriber connects, and a marker
line is appended every 10 ms; its latency is the time from the append to
its arrival on the WebSocket. The hostile load is `--rate` requests per
second (default 20, spread over 6 clients) of
`/api/v1/lines?limit=1&regex=(.*?){30}(?!)`, a pattern that backtracks on
every line. Prints p50/p99/max for both runs, their ratio, and how the
hostile reads ended (complete, incomplete at the scan budget, refused with
503 over the concurrency bound).

    Benchmarks/hostile_scans.py --logcast-bin .build/release/logcast
"""
import argparse
import base64
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

HOSTILE = "/api/v1/lines?limit=1&regex=" + urllib.parse.quote("(.*?){30}(?!)")


def start(binary, log, workdir):
    proc = subprocess.Popen([binary, "serve", "--listen", "127.0.0.1:0", "--file", f"app={log}", "--initial-lines", "10000"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=workdir)
    for line in proc.stderr:
        if "address=http://" in line:
            port = int(line.split("address=http://")[1].split()[0].rsplit(":", 1)[1])
            threading.Thread(target=lambda: [None for _ in proc.stderr], daemon=True).start()
            return proc, port
    raise SystemExit("logcast did not start")


def get(port, target):
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall(f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    sock.close()
    head = data.split(b"\r\n\r\n", 1)[0].decode()
    status = int(head.split()[1])
    scan = next((line.split(":", 1)[1].strip() for line in head.split("\r\n") if line.lower().startswith("logcast-scan:")), None)
    return status, scan


class Subscriber:
    """A minimal WebSocket client that records when each marker arrives."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(f"GET /ws?backlog=0&format=text HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                          f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode())
        buffer = b""
        while b"\r\n\r\n" not in buffer:
            buffer += self.sock.recv(4096)
        self.buffer = buffer.split(b"\r\n\r\n", 1)[1]
        self.arrivals = {}
        threading.Thread(target=self.read, daemon=True).start()

    def read(self):
        while True:
            while len(self.buffer) < 2:
                self.buffer += self.sock.recv(65536)
            length = self.buffer[1] & 0x7F
            offset = 2
            if length == 126:
                while len(self.buffer) < 4:
                    self.buffer += self.sock.recv(65536)
                length = int.from_bytes(self.buffer[2:4], "big")
                offset = 4
            elif length == 127:
                while len(self.buffer) < 10:
                    self.buffer += self.sock.recv(65536)
                length = int.from_bytes(self.buffer[2:10], "big")
                offset = 10
            while len(self.buffer) < offset + length:
                self.buffer += self.sock.recv(65536)
            payload = self.buffer[offset:offset + length]
            self.buffer = self.buffer[offset + length:]
            now = time.monotonic_ns()
            for line in payload.decode(errors="replace").splitlines():
                if line.startswith("marker "):
                    self.arrivals[int(line.split()[1])] = now


def measure(binary, markers, rate, hostile):
    workdir = tempfile.mkdtemp(prefix="logcast-bench-")
    log = Path(workdir) / "app.log"
    log.write_text("".join(f"history line {i} with some text to backtrack over\n" for i in range(10_000)))
    proc, port = start(binary, log, workdir)
    outcomes = {"complete": 0, "incomplete": 0, "503": 0}
    stop = threading.Event()
    try:
        subscriber = Subscriber(port)
        time.sleep(0.2)  # the subscription settles before the first marker (not a test)

        def hostile_client(period):
            while not stop.is_set():
                began = time.monotonic()
                status, scan = get(port, HOSTILE)
                outcomes["503" if status == 503 else (scan or "complete")] += 1
                time.sleep(max(0.0, period - (time.monotonic() - began)))

        threads = []
        if hostile:
            clients = 6
            for _ in range(clients):
                thread = threading.Thread(target=hostile_client, args=(clients / rate,), daemon=True)
                thread.start()
                threads.append(thread)
            time.sleep(0.5)
        sent = {}
        with open(log, "a") as handle:
            for i in range(markers):
                sent[i] = time.monotonic_ns()
                handle.write(f"marker {i}\n")
                handle.flush()
                time.sleep(0.010)
        deadline = time.monotonic() + 60
        while len(subscriber.arrivals) < markers and time.monotonic() < deadline:
            time.sleep(0.05)
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
        latencies = sorted((subscriber.arrivals[i] - sent[i]) / 1e6 for i in sent if i in subscriber.arrivals)
        missing = markers - len(latencies)
        return latencies, missing, outcomes
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def pct(values, q):
    return values[min(len(values) - 1, int(q * (len(values) - 1)))] if values else float("nan")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--logcast-bin", default=os.environ.get("LOGCAST_BIN", ".build/release/logcast"))
    parser.add_argument("--markers", type=int, default=300)
    parser.add_argument("--rate", type=float, default=20.0, help="hostile requests per second")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    args.logcast_bin = os.path.abspath(args.logcast_bin)
    quiet, _, _ = measure(args.logcast_bin, args.markers, args.rate, hostile=False)
    loaded, missing, outcomes = measure(args.logcast_bin, args.markers, args.rate, hostile=True)
    result = {
        "markers": args.markers,
        "hostile_rate": args.rate,
        "quiet_ms": {"p50": pct(quiet, 0.5), "p99": pct(quiet, 0.99), "max": quiet[-1] if quiet else None},
        "hostile_ms": {"p50": pct(loaded, 0.5), "p99": pct(loaded, 0.99), "max": loaded[-1] if loaded else None},
        "markers_missing": missing,
        "hostile_reads": outcomes,
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"normal subscriber, marker every 10 ms, {args.markers} markers, default settings")
    print(f"  quiet:              p50 {result['quiet_ms']['p50']:.2f} ms  p99 {result['quiet_ms']['p99']:.2f} ms  max {result['quiet_ms']['max']:.2f} ms")
    print(f"  {args.rate:.0f} hostile reads/s: p50 {result['hostile_ms']['p50']:.2f} ms  p99 {result['hostile_ms']['p99']:.2f} ms  max {result['hostile_ms']['max']:.2f} ms")
    print(f"  ratio (hostile / quiet): p50 {result['hostile_ms']['p50'] / result['quiet_ms']['p50']:.1f}x  p99 {result['hostile_ms']['p99'] / result['quiet_ms']['p99']:.1f}x")
    print(f"  markers missing: {missing}; hostile reads: {outcomes}")
    sys.exit(1 if missing else 0)


if __name__ == "__main__":
    main()
