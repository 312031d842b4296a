#!/usr/bin/env python3
"""How long logcast takes to start again with a full durable history.

Fills a state directory with about --bytes of history (default 1 GiB: the
default --history-disk-bytes) by having logcast follow a file that grows
by that much, stops it (SIGTERM), then starts it again on the same state
directory and times how long until it listens, and until a client that
resumes from the oldest stored line has read its first line. Prints the
figures beside the time the same logcast takes to start with
--state-directory none, from the same run.

    Benchmarks/restart.py --logcast-bin .build/release/logcast [--bytes 1073741824]
"""
import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request


def start(binary, state, log, extra=()):
    began = time.monotonic()
    proc = subprocess.Popen([binary, "serve", "--listen", "127.0.0.1:0", "--file", f"bench={log}", "--initial-lines", "0",
                             "--state-directory", state, *extra],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    for line in proc.stderr:
        match = re.search(r"address=https?://127\.0\.0\.1:(\d+)", line)
        if match:
            import threading
            threading.Thread(target=lambda: [None for _ in proc.stderr], daemon=True).start()  # keep draining
            return proc, int(match.group(1)), time.monotonic() - began
    raise SystemExit("logcast exited at start: " + str(proc.wait()))


def health(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=60) as response:
        return json.load(response)


def stop(proc):
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=120)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--logcast-bin", default=os.environ.get("LOGCAST_BIN", ".build/release/logcast"))
    ap.add_argument("--bytes", type=int, default=1 << 30)
    ap.add_argument("--line-bytes", type=int, default=200)
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="logcast-restart-")
    try:
        log = os.path.join(work, "input.log")
        open(log, "w").close()
        state = os.path.join(work, "state")
        proc, port, _ = start(args.logcast_bin, state, log)
        lines = args.bytes // (args.line_bytes + 80)  # each stored line costs its text and about 80 bytes of fields
        filler = "x" * (args.line_bytes - 12)
        chunk = "".join(f"{i:10d} {filler}\n" for i in range(10000))
        written = 0
        began = time.monotonic()
        with open(log, "a") as f:
            while written < lines:
                f.write(chunk)
                written += 10000
        while health(port)["last_seq"] < written:
            time.sleep(0.2)
        fill_seconds = time.monotonic() - began
        stop(proc)
        stored = sum(os.path.getsize(os.path.join(state, "history", n)) for n in os.listdir(os.path.join(state, "history")))
        proc, port, listen_seconds = start(args.logcast_bin, state, log)
        epoch = health(port)["epoch"]
        began = time.monotonic()
        sock = socket.create_connection(("127.0.0.1", port))
        sock.sendall(f"GET /ws?after=0&epoch={epoch} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n".encode())
        data = b""
        while b'"type":"line"' not in data:
            data += sock.recv(65536)
        first_line_seconds = time.monotonic() - began
        sock.close()
        stop(proc)
        proc, _, memory_seconds = start(args.logcast_bin, "none", log)
        stop(proc)
        print(f"history: {written:,} lines, {stored / 2**20:,.0f} MiB stored (filled in {fill_seconds:.1f} s, "
              f"{written / fill_seconds:,.0f} lines/s through the durable history)")
        print(f"{'start until listening, full history':42s} {listen_seconds:8.2f} s")
        print(f"{'start until listening, --state-directory none':42s} {memory_seconds:8.2f} s")
        print(f"{'resume from the oldest stored line: 1st line':42s} {first_line_seconds:8.3f} s")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
