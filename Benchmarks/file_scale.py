#!/usr/bin/env python3
"""What following many files costs: logcast beside GNU `tail -F`.

Two scenarios, each run against both, with a fresh directory each time:

  glob of N   N files (`--members`, by default 1, 100 and 500), all followed
              (logcast: one glob source `DIR/*.log`; `tail -n0 -F` with
              every file named), one of them written a line at a time
              (`--lines` lines, `--interval` apart).
  neighbour   one file followed, another file of the same directory written
              as above: writes that are no one's lines.

Reported: the follower's CPU time (every thread's, from
/proc/PID/task/*/schedstat) from the first write until `--settle` seconds
after the last, per line written. logcast does more per line than `tail`
(a record, its JSON, the durable history, the hub; see README.md), so the
number to read is how each grows with N, and what a neighbour's write costs.
"""
import argparse
import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time


def cpu_seconds(pid):
    total = 0
    for task in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/schedstat" % (pid, task)) as f:
                total += int(f.read().split()[0])
        except OSError:
            pass
    return total / 1e9


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(kind, args, directory, followed):
    """The follower of `followed` (a list of paths, or one glob for logcast)."""
    if kind == "logcast":
        port = free_port()
        proc = subprocess.Popen([args.logcast_bin, "serve", "--file", "app=" + followed, "--listen", "127.0.0.1:%d" % port,
                                 "--state-directory", os.path.join(directory, "state"), "--initial-lines", "0"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    sys.exit("file_scale: logcast did not start")
                time.sleep(0.05)
    else:
        paths = sorted(glob.glob(followed)) if "*" in followed else [followed]
        proc = subprocess.Popen(["tail", "-n0", "-F"] + paths, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # Past the start-up (and logcast's first poll, which settles what each file is).
    time.sleep(args.start_wait)
    return proc


def run(kind, args, members, neighbour):
    directory = tempfile.mkdtemp(prefix="logcast-file-scale-")
    try:
        logs = os.path.join(directory, "logs")
        os.mkdir(logs)
        for i in range(members):
            open(os.path.join(logs, "m%04d.log" % i), "w").close()
        written = os.path.join(logs, "m0000.log")
        followed = os.path.join(logs, "*.log")
        if neighbour:
            followed = os.path.join(logs, "m0000.log")
            written = os.path.join(logs, "other.txt")
        proc = start(kind, args, directory, followed)
        try:
            fd = os.open(written, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
            before = cpu_seconds(proc.pid)
            line = b"x" * 90 + b"\n"
            for _ in range(args.lines):
                os.write(fd, line)
                time.sleep(args.interval)
            time.sleep(args.settle)
            used = cpu_seconds(proc.pid) - before
            os.close(fd)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait()
        return used / args.lines * 1e6
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--logcast-bin", required=True)
    ap.add_argument("--members", default="1,100,500", help="glob sizes, comma-separated")
    ap.add_argument("--lines", type=int, default=5000)
    ap.add_argument("--interval", type=float, default=0.0002, help="seconds between the lines written")
    ap.add_argument("--settle", type=float, default=0.5)
    ap.add_argument("--start-wait", type=float, default=1.5, help="seconds between the follower's start and the first line")
    ap.add_argument("--repeat", type=int, default=3, help="runs of each, alternating; the median is reported")
    args = ap.parse_args()
    if shutil.which("tail") is None:
        sys.exit("file_scale: tail is missing")
    scenarios = [("glob of %d, one written" % n, n, False) for n in map(int, args.members.split(","))]
    scenarios.append(("neighbour written (not followed)", 1, True))
    print("%-36s %18s %18s" % ("CPU per line written", "logcast", "tail -F"))
    for name, members, neighbour in scenarios:
        got = {"logcast": [], "tail": []}
        for _ in range(args.repeat):
            for kind in ("logcast", "tail"):
                got[kind].append(run(kind, args, members, neighbour))
        cells = []
        for kind in ("logcast", "tail"):
            values = sorted(got[kind])
            cells.append("%.1f us (%.1f-%.1f)" % (values[len(values) // 2], values[0], values[-1]))
        print("%-36s %18s %18s" % (name, cells[0], cells[1]), flush=True)
    print("\n%d lines %.1f ms apart per run, the median of %d runs (lowest-highest); CPU of every thread of the "
          "follower, from /proc/PID/task/*/schedstat" % (args.lines, args.interval * 1000, args.repeat))


if __name__ == "__main__":
    main()
