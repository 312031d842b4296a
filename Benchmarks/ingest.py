#!/usr/bin/env python3
"""How long a burst written to a file takes to reach one filtered subscriber: logcast at its defaults
(one /ws subscriber with grep=LASTLINE) beside `tail -n0 -F FILE | grep --line-buffered LASTLINE`, the same
writer, in the same run. The time runs from the first write to the reader having the last line, which alone
matches: it measures reading, splitting, levels, encoding and storing every line (logcast's ingest), not
the fan-out. Used to find where the filtered fan-out's time goes (Benchmarks/README.md)."""
import argparse
import os
import re
import select
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from websockets.sync.client import connect

LAST = "LASTLINE"


def burst(count):
    lines = "".join(f"2026-12-07T00:00:00Z INFO G{i % 100} request {i} served in 12ms by worker-{i % 7} path=/api/v1/items/{i}\n"
                    for i in range(count - 1))
    return (lines + LAST + "\n").encode()


def write(path, data):
    with open(path, "ab") as handle:
        for at in range(0, len(data), 97_000):
            handle.write(data[at:at + 97_000])
            handle.flush()


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_logcast(binary, workdir, data):
    log = os.path.join(workdir, "logcast.log")
    open(log, "w").close()
    server = subprocess.Popen([binary, "serve", "--file", f"bench={log}", "--listen", "127.0.0.1:0", "--initial-lines", "0",
                               "--state-directory", os.path.join(workdir, "state")], stderr=subprocess.PIPE, text=True)
    try:
        port = None
        for line in server.stderr:
            found = re.search(r"127\.0\.0\.1:(\d+)", line)
            if found:
                port = int(found.group(1))
                break
        assert port, "logcast did not say where it listens"
        with connect(f"ws://127.0.0.1:{port}/ws?backlog=0&grep={LAST}", max_size=None) as ws:
            assert '"hello"' in ws.recv(timeout=30)
            start = time.monotonic()
            write(log, data)
            while LAST not in ws.recv(timeout=120):
                pass
            return time.monotonic() - start, cpu_seconds(server.pid)
    finally:
        server.kill()
        server.wait()


def run_tail(workdir, data):
    log = os.path.join(workdir, "tail.log")
    open(log, "w").close()
    pipeline = subprocess.Popen(["sh", "-c", f"tail -n0 -F {log} | grep --line-buffered {LAST}"], stdout=subprocess.PIPE,
                                start_new_session=True)
    try:
        # tail -n0 only sees lines written after it opened the file: wait for a warm-up line to pass.
        while True:
            write(log, f"{LAST} warm-up\n".encode())
            if select.select([pipeline.stdout], [], [], 0.25)[0]:
                pipeline.stdout.readline()
                break
        start = time.monotonic()
        write(log, data)
        while pipeline.stdout.readline().decode().strip() != LAST:
            pass  # a warm-up line that passed late
        return time.monotonic() - start, None
    finally:
        os.killpg(pipeline.pid, 9)
        pipeline.wait()


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--logcast-bin", default=".build/release/logcast")
    parser.add_argument("--lines", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    data = burst(args.lines)
    results = {"logcast": [], "tail | grep": []}
    for _ in range(args.repeat):
        workdir = tempfile.mkdtemp(prefix="logcast-ingest-")
        try:
            results["logcast"].append(run_logcast(args.logcast_bin, workdir, data))
            results["tail | grep"].append(run_tail(workdir, data))
        finally:
            shutil.rmtree(workdir)
    print(f"{args.lines} lines at once, one filtered reader, median of {args.repeat}")
    medians = {name: statistics.median(t for t, _ in runs) for name, runs in results.items()}
    for name, runs in results.items():
        cpu = [c for _, c in runs if c is not None]
        extra = f", server CPU {statistics.median(cpu):.2f} s" if cpu else ""
        print(f"  {name:12} {medians[name]:.3f} s ({args.lines / medians[name]:,.0f} lines/s){extra}")
    print(f"  ratio (lines/s, logcast / tail | grep): {medians['tail | grep'] / medians['logcast']:.2f}x")


if __name__ == "__main__":
    sys.exit(main())
