#!/usr/bin/env python3
"""Where an idle line's time goes: the system calls of each line, timed by
the kernel, for logcast and for websocketd + `tail -F`.

A line every `--interval` seconds is appended to a file both servers
follow; one raw WebSocket client reads each back before the next is
written. Meanwhile `perf record -a` records every system call's entry and
exit and the scheduler's switches and wake-ups. Each line then reads as a
row of system calls; printed are the medians and p90s (microseconds, from
the writer's `write`) of:

  wake      the source's thread returns from `poll` (inotify: logcast's
            file thread, or `tail`)
  handover  that thread hands the line on: logcast's first `eventfd`
            write (8 bytes; the durable history's `write` comes before
            it), `tail`'s `write` to its pipe
  send      the first write to a socket by another thread (logcast's event
            loop, websocketd)

and, from the client, the end-to-end latency (kernel receive timestamp
minus the time taken just before the `write`).

Needs `perf` (Debian: linux-perf) and root, or a perf_event_paranoid that
allows tracepoints. Caveat: `perf` writing every system call keeps one core
busy, so everything else shares the other; compare traces with traces, not
with `fanout.py`'s figures. Only the Python standard library is used.

    python3 Benchmarks/idle_trace.py --logcast-bin .build/release/logcast
"""

import argparse
import os
import re
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fanout  # noqa: E402  (its WebSocket handshake and process helpers)

SO_TIMESTAMPNS = 35
NR_READ, NR_WRITE, NR_POLL, NR_WRITEV, NR_SENDTO, NR_SENDMSG = 0, 1, 7, 20, 44, 46


def wait_listening(port, proc, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit("the server exited at start (%s)" % proc.returncode)
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit("the server did not listen within %d s" % timeout)


def connect(port, path):
    """A WebSocket client (fanout.py's handshake), blocking, with kernel receive timestamps."""
    try:
        sock, _ = fanout.ws_connect(port, path)
    except fanout.HandshakeError as error:
        sys.exit(str(error))
    sock.setblocking(True)
    sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    return sock


def write_and_read(sock, out, i, pending):
    """Appends line `i` and reads until it arrives; returns the write time
    (CLOCK_REALTIME, ns) and the kernel's receive timestamp of the data
    that completed it."""
    marker = b"idle-trace %d " % i
    t = time.clock_gettime_ns(time.CLOCK_REALTIME)
    os.write(out, marker + b"%d\n" % t)
    stamp = None
    while marker not in pending:
        data, ancillary, _, _ = sock.recvmsg(65536, 1024)
        if not data:
            sys.exit("the server closed the stream")
        for level, kind, value in ancillary:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                seconds, nanoseconds = struct.unpack("qq", value[:16])
                stamp = seconds * 10**9 + nanoseconds
        pending += data
    return t, stamp, pending[pending.index(marker) + len(marker):]


def warm_up(sock, out, timeout=30.0):
    """Writes warm-up lines until the stream carries them (a subscriber with
    backlog=0 gets only lines written after it subscribed, and websocketd
    starts `tail` only when a client connects); returns what arrived after
    the last of them."""
    deadline = time.monotonic() + timeout
    sock.settimeout(0.1)
    pending = b""
    try:
        n = 0
        while b"warm-up" not in pending:
            if time.monotonic() > deadline:
                sys.exit("no warm-up line arrived within %.0f s" % timeout)
            os.write(out, b"warm-up %d\n" % n)
            n += 1
            try:
                data = sock.recv(65536)
            except socket.timeout:
                continue
            if not data:
                sys.exit("the server closed the stream during the warm-up")
            pending += data
        os.write(out, b"warm-up done\n")
        while b"warm-up done" not in pending:
            data = sock.recv(65536)
            if not data:
                sys.exit("the server closed the stream during the warm-up")
            pending += data
    finally:
        sock.settimeout(None)
    return b""


ROW = re.compile(r"\s*(.+?)\s+(\d+)/(\d+)\s+\[(\d+)\]\s+([\d.]+):\s+(\S+):\s+(.*)")


def parse(script_output):
    rows = []
    for line in script_output.splitlines():
        m = ROW.match(line)
        if not m:
            continue
        event, trace = m.group(6), m.group(7)
        if not event.startswith("raw_syscalls:"):
            continue
        nr = re.match(r"NR (\d+)", trace)
        if not nr:
            continue
        args = re.match(r"NR \d+ \(([^)]*)\)", trace)
        rows.append({
            "pid": int(m.group(2)), "tid": int(m.group(3)), "time": float(m.group(5)) * 1e6,
            "enter": event.endswith("sys_enter"), "nr": int(nr.group(1)),
            "args": [a.strip() for a in args.group(1).split(",")] if args else [],
        })
    return rows


def steps(rows, writer_pid, input_fd, server_pids, kind):
    """Per line: the times of wake, handover and send after the writer's write."""
    starts = [i for i, r in enumerate(rows)
              if r["pid"] == writer_pid and r["enter"] and r["nr"] == NR_WRITE and r["args"]
              and int(r["args"][0], 16) == input_fd]
    result = []
    for a, b in zip(starts, starts[1:] + [len(rows)]):
        t0 = rows[a]["time"]
        wake = handover = send = None
        woken = None
        for r in rows[a + 1:b]:
            if r["pid"] not in server_pids:
                continue
            if wake is None:
                if not r["enter"] and r["nr"] == NR_POLL:
                    wake, woken = r["time"] - t0, r["tid"]
                continue
            if handover is None and r["tid"] == woken and r["enter"] and r["nr"] == NR_WRITE:
                if kind != "logcast" or (len(r["args"]) > 2 and int(r["args"][2], 16) == 8):
                    handover = r["time"] - t0
            if (send is None and r["tid"] != woken and r["enter"]
                    and r["nr"] in (NR_WRITE, NR_WRITEV, NR_SENDTO, NR_SENDMSG)):
                send = r["time"] - t0
        if wake is not None and handover is not None and send is not None:
            result.append((wake, handover, send))
    return result


def run(kind, args, workdir):
    # The followed file alone in its directory: logcast watches the directory,
    # and perf's output or a server log beside it would wake it too.
    inputs = os.path.join(workdir, "input-" + kind)
    os.mkdir(inputs)
    path = os.path.join(inputs, "app.log")
    open(path, "wb").close()
    port = fanout.free_port()
    if kind == "logcast":
        state = args.state_directory or os.path.join(workdir, "state")
        command = [args.logcast_bin, "serve", "--file", "bench=" + path, "--listen", "127.0.0.1:%d" % port,
                   "--initial-lines", "0", "--state-directory", state]
        request = "/ws?backlog=0"
    else:
        command = [args.websocketd_bin, "--port=%d" % port, "--address=127.0.0.1", "tail", "-n0", "-F", path]
        request = "/"
    log = open(os.path.join(workdir, "%s.server.log" % kind), "wb")
    server = subprocess.Popen(command, stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_listening(port, server)
        sock = connect(port, request)
        out = os.open(path, os.O_WRONLY | os.O_APPEND)
        pending = warm_up(sock, out)
        server_pids = set(fanout.process_tree(server.pid))
        data = os.path.join(workdir, "%s.perf" % kind)
        perf = subprocess.Popen([args.perf_bin, "record", "-q", "-a", "-o", data,
                                 "-e", "raw_syscalls:sys_enter", "-e", "raw_syscalls:sys_exit",
                                 "-e", "sched:sched_switch", "-e", "sched:sched_wakeup"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(1.0)  # perf attaches to every CPU
        latencies = []
        for i in range(args.lines):
            t, stamp, pending = write_and_read(sock, out, i, pending)
            if stamp is not None:
                latencies.append((stamp - t) / 1000)
            time.sleep(args.interval)
        perf.send_signal(signal.SIGINT)
        _, errors = perf.communicate(timeout=120)
        if perf.returncode not in (0, -signal.SIGINT):
            sys.exit("perf record failed: %s" % errors.decode(errors="replace")[-500:])
        script = subprocess.run([args.perf_bin, "script", "-i", data, "-F", "comm,pid,tid,cpu,time,event,trace"],
                                capture_output=True, text=True, errors="replace").stdout
        os.unlink(data)
        sock.close()
        os.close(out)
        return steps(parse(script), os.getpid(), out, server_pids, kind), latencies
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
        log.close()


def quantiles(values):
    values = sorted(values)
    return statistics.median(values), values[min(len(values) - 1, int(len(values) * 0.9))]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--logcast-bin", default=".build/release/logcast")
    ap.add_argument("--websocketd-bin", default=shutil.which("websocketd") or "websocketd")
    ap.add_argument("--perf-bin", default=shutil.which("perf") or "perf")
    ap.add_argument("--only", choices=["logcast", "websocketd"])
    ap.add_argument("--lines", type=int, default=100)
    ap.add_argument("--interval", type=float, default=0.02, help="seconds between lines (default 0.02)")
    ap.add_argument("--state-directory", help="logcast's --state-directory (default: one in the work directory; 'none')")
    args = ap.parse_args()
    if shutil.which(args.perf_bin) is None:
        sys.exit("perf not found (Debian: apt-get install linux-perf)")
    kinds = [args.only] if args.only else ["logcast", "websocketd"]
    workdir = tempfile.mkdtemp(prefix="logcast-idle-trace-")
    try:
        print("%d lines, one every %.0f ms; microseconds after the writer's write, p50 / p90"
              % (args.lines, args.interval * 1000))
        print("%-11s %13s %13s %13s %15s %6s" % ("", "wake", "handover", "send", "end to end", "lines"))
        for kind in kinds:
            found, latencies = run(kind, args, workdir)
            if not found:
                print("%-11s no line traced (is perf allowed to record tracepoints?)" % kind)
                continue
            cells = ["%5.0f / %5.0f" % quantiles([row[k] for row in found]) for k in range(3)]
            print("%-11s %13s %13s %13s %15s %6d" % (kind, cells[0], cells[1], cells[2],
                                                    "%5.0f / %5.0f" % quantiles(latencies), len(found)))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
