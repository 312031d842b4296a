#!/usr/bin/env python3
"""Journal ingest: how fast journal entries become delivered lines.

The same writer (this process) appends --entries entries at once to a
journal file through `systemd-journal-remote -o FILE -` (the export format
on its stdin), in a fresh directory per run. Two readers follow that
directory from its live edge, one at a time:

- logcast: `logcast serve --journal-directory DIR` at its defaults, with one
  subscriber on `/sse?backlog=0` (JSON lines, read by this process);
- journalctl: `journalctl -f -o json -n 0 --directory DIR`, its stdout a
  pipe this process reads.

Each run waits until the reader has shown a warm-up entry (so both start at
the live edge, with their files open), then times from the first byte of the
batch written to the moment the reader has delivered the batch's last entry;
every entry must arrive exactly once. Reported: entries/s (the median of
--repeat runs), the reader's CPU seconds, and the ratio. journal-remote's
own time is in both figures alike (it writes the file both read).

    Benchmarks/journal_ingest.py --logcast-bin .build/release/logcast [--entries 200000] [--repeat 3]

Only the Python standard library is used.
"""
import argparse
import json
import os
import re
import select
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import uuid

TICKS = os.sysconf("SC_CLK_TCK")
BOOT_ID = uuid.uuid4().hex


def journal_remote():
    for path in ("/lib/systemd/systemd-journal-remote", "/usr/lib/systemd/systemd-journal-remote"):
        if os.path.exists(path):
            return path
    raise SystemExit("systemd-journal-remote is missing: apt-get install -y systemd-journal-remote")


def export_entry(fields):
    out = b""
    for key, value in fields.items():
        value = str(value).encode() if not isinstance(value, bytes) else value
        if b"\n" in value:
            out += key.encode() + b"\n" + struct.pack("<Q", len(value)) + value + b"\n"
        else:
            out += key.encode() + b"=" + value + b"\n"
    return out + b"\n"


class Entries:
    """Export-format entries with rising stamps: `MESSAGE=<tag> <n> <padding>`."""

    def __init__(self):
        self.realtime = int(time.time() * 1_000_000)
        self.monotonic = 1_000_000

    def batch(self, tag, count, first=0):
        chunks = []
        padding = "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor"
        for n in range(first, first + count):
            self.realtime += 1
            self.monotonic += 1
            chunks.append(export_entry({
                "__REALTIME_TIMESTAMP": self.realtime,
                "__MONOTONIC_TIMESTAMP": self.monotonic,
                "_BOOT_ID": BOOT_ID,
                "_HOSTNAME": "bench",
                "_PID": 4242,
                "SYSLOG_IDENTIFIER": "bench",
                "PRIORITY": 6,
                "MESSAGE": f"{tag} {n:08d} {padding}",
            }))
        return b"".join(chunks)


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


class Reader:
    """Reads a byte stream (a socket or a pipe) and counts entries by their marker."""

    def __init__(self, fd):
        self.fd = fd
        self.buffer = b""

    def read(self, deadline):
        ready, _, _ = select.select([self.fd], [], [], max(0.0, deadline - time.monotonic()))
        return os.read(self.fd, 1 << 20) if ready else None

    def until(self, marker, deadline):
        """Reads until `marker` has been seen; returns how many times `B ` entries were seen on the way."""
        count = 0
        while True:
            index = self.buffer.find(marker)
            if index >= 0:
                count += self.buffer.count(b'"B ', 0, index)
                self.buffer = self.buffer[index + len(marker):]
                return count
            # Keep a tail that may hold the start of a marker or an entry split across reads;
            # entries that begin in it are counted with the next read.
            cut = max(0, len(self.buffer) - max(len(marker) - 1, 2))
            count += self.buffer.count(b'"B ') - self.buffer.count(b'"B ', cut)
            self.buffer = self.buffer[cut:]
            data = self.read(deadline)
            if data is None:
                raise SystemExit(f"timed out waiting for {marker!r}")
            if not data:
                raise SystemExit(f"the reader's stream ended before {marker!r}")
            self.buffer += data


def start_logcast(binary, directory, work):
    proc = subprocess.Popen([binary, "serve", "--listen", "127.0.0.1:0", "--journal-directory", f"bench={directory}",
                             "--initial-lines", "0", "--state-directory", os.path.join(work, "state")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    for line in proc.stderr:
        match = re.search(r"address=https?://127\.0\.0\.1:(\d+)", line)
        if match:
            import threading
            threading.Thread(target=lambda: [None for _ in proc.stderr], daemon=True).start()
            port = int(match.group(1))
            sock = socket.create_connection(("127.0.0.1", port))
            sock.sendall(b"GET /sse?backlog=0 HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n")
            return proc, Reader(sock.fileno()), sock
    raise SystemExit("logcast exited at start: " + str(proc.wait()))


def start_journalctl(directory):
    proc = subprocess.Popen(["journalctl", "-f", "-o", "json", "-n", "0", "--no-pager", "--directory", directory],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    return proc, Reader(proc.stdout.fileno()), None


def run(kind, binary, entries, work):
    directory = os.path.join(work, "journal")
    shutil.rmtree(directory, ignore_errors=True)
    os.makedirs(directory)
    remote = subprocess.Popen([journal_remote(), "-o", os.path.join(directory, "bench.journal"), "-"],
                              stdin=subprocess.PIPE, stderr=subprocess.DEVNULL)
    source = Entries()
    try:
        # The file exists before the reader opens the directory.
        remote.stdin.write(source.batch("W", 1))
        remote.stdin.flush()
        deadline = time.monotonic() + 30
        # The file exists and holds its first entry before the reader opens the directory
        # (journalctl -f exits with status 1 when it opens a file journal-remote is still creating).
        while b"W 00000000" not in subprocess.run(["journalctl", "--directory", directory, "-o", "cat", "-n", "1", "-q"],
                                                  capture_output=True).stdout:
            if time.monotonic() > deadline:
                raise SystemExit("journal-remote wrote no readable file")
            time.sleep(0.01)
        proc, reader, sock = start_logcast(binary, directory, work) if kind == "logcast" else start_journalctl(directory)
        try:
            # Warm up: entries written until one shows, so the reader is at the live edge.
            for attempt in range(1, 600):
                remote.stdin.write(source.batch("W", 1, first=attempt))
                remote.stdin.flush()
                try:
                    reader_deadline = time.monotonic() + 0.1
                    reader.until(f"W {attempt:08d}".encode(), reader_deadline)
                    break
                except SystemExit as error:
                    if "timed out" not in str(error):
                        raise SystemExit(f"{kind}: {error} (reader exit status: {proc.poll()})")
            else:
                raise SystemExit(f"{kind} never showed a warm-up entry")
            batch = source.batch("B", entries) + source.batch("E", 1)
            cpu_before = cpu_seconds(proc.pid)
            started = time.monotonic()
            remote.stdin.write(batch)
            remote.stdin.flush()
            seen = reader.until(b"E 00000000", started + 600)
            elapsed = time.monotonic() - started
            cpu = cpu_seconds(proc.pid) - cpu_before
            if seen != entries:
                raise SystemExit(f"{kind}: {seen} of {entries} entries delivered")
            return {"entries_per_second": entries / elapsed, "seconds": elapsed, "cpu_seconds": cpu}
        finally:
            if sock:
                sock.close()
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
    finally:
        remote.stdin.close()
        remote.wait(timeout=60)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--logcast-bin", default=os.environ.get("LOGCAST_BIN", ".build/release/logcast"))
    ap.add_argument("--entries", type=int, default=200_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="logcast-journal-ingest-")
    results = {"logcast": [], "journalctl": []}
    try:
        for _ in range(args.repeat):
            for kind in ("logcast", "journalctl"):
                results[kind].append(run(kind, args.logcast_bin, args.entries, work))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    median = {kind: {key: statistics.median(r[key] for r in runs) for key in runs[0]} for kind, runs in results.items()}
    print(f"journal ingest: {args.entries} entries at once through systemd-journal-remote, median of {args.repeat}")
    print(f"{'reader':<34} {'entries/s':>12} {'seconds':>9} {'reader CPU s':>13}")
    for kind, label in (("logcast", "logcast (defaults, one /sse reader)"), ("journalctl", "journalctl -f -o json")):
        m = median[kind]
        print(f"{label:<34} {m['entries_per_second']:>12,.0f} {m['seconds']:>9.2f} {m['cpu_seconds']:>13.2f}")
    ratio = median["logcast"]["entries_per_second"] / median["journalctl"]["entries_per_second"]
    print(f"ratio logcast/journalctl: {ratio:.2f}x (target >= 1.00x: {'met' if ratio >= 1 else 'NOT met'})")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"entries": args.entries, "repeat": args.repeat, "runs": results, "median": median, "ratio": ratio}, f, indent=2)


if __name__ == "__main__":
    sys.exit(main())
