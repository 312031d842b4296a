#!/usr/bin/env python3
"""The cluster beside one process: lines through NATS JetStream.

One logcast following a file and serving its subscribers itself
(`logcast-single`), beside the same file followed by an agent that
publishes into a real nats-server (JetStream, file storage) and read by a
gateway that serves the subscribers (`logcast-cluster`: agent -> NATS ->
gateway, all on this machine). The same writer, the same client and the
same checks as `fanout.py` (every subscriber, every line, once, in order,
contiguous `seq`); both with logcast's default settings.

1. burst:   N subscribers (default 100) on the gateway, L lines (default
            15,000: a burst the default queue holds, so the figure is
            throughput, not the slow-consumer policy) appended at once;
            delivered lines per second.
2. latency: 10 subscribers, a line every 1 ms (1,000 lines/s) for 3,000
            lines; p50/p99/max of receive time minus write time, end to end.

CPU seconds count every process of the setup: for the cluster, the
gateway, the agent and nats-server together.

    Benchmarks/cluster.py --logcast-bin .build/release/logcast [--subscribers 100 --lines 15000 --repeat 3]
"""
import argparse
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fanout  # noqa: E402

NATS_SERVER = shutil.which("nats-server") or "/usr/sbin/nats-server"


class ClusterServer(fanout.Server):
    """`logcast-single`: one logcast; `logcast-cluster`: nats-server, an agent and a gateway in one process group."""

    def start(self, queue_lines, queue_bytes, subscribers):
        if self.kind != "logcast-cluster":
            return self.start_single(subscribers)
        work = os.path.dirname(self.file)
        nats_dir = tempfile.mkdtemp(prefix="nats-", dir=work)
        nats_port, self.port = fanout.free_port(), fanout.free_port()
        nats = f"nats://127.0.0.1:{nats_port}"
        common = ["--nats", nats, "--initial-lines", "0"]
        agent = [self.args.logcast_bin, "serve", "--listen", "127.0.0.1:0", "--role", "agent", "--host-name", "bench",
                 "--file", "bench=" + self.file, "--state-directory", os.path.join(work, "agent-state-" + os.path.basename(self.file)), *common]
        gateway = [self.args.logcast_bin, "serve", "--listen", f"127.0.0.1:{self.port}", "--role", "gateway", "--state-directory", "none",
                   "--max-connections-per-address", "4096", "--max-subscribers", str(max(1024, subscribers + 16)), *common]
        quote = lambda words: " ".join("'" + w.replace("'", "'\\''") + "'" for w in words)
        # The gateway execs in place of the shell: nats-server and the agent are its children, one tree to measure.
        script = (f"{quote([NATS_SERVER, '-js', '-a', '127.0.0.1', '-p', str(nats_port), '-sd', nats_dir])} & "
                  f"{quote(agent)} & exec {quote(gateway)}")
        self.launch(["sh", "-c", script])
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise fanout.ScenarioError("the cluster exited at start; its log:\n%s" % self.log_tail())
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=2) as response:
                    if json.load(response).get("status") == "ok":
                        return
            except (OSError, ValueError, urllib.error.HTTPError):
                pass
            time.sleep(0.05)
        raise fanout.ScenarioError("the gateway did not reach the stream within 120 s; its log:\n%s" % self.log_tail())

    def launch(self, command):
        """Starts `command` in a process group of its own (stopped as one), its output to the log."""
        self.command = command
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(command, stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True)
        fanout.STARTED.append(self.proc)

    def start_single(self, subscribers):
        state = os.path.join(os.path.dirname(self.file), "state-" + os.path.basename(self.file))
        self.command = [self.args.logcast_bin, "serve", "--state-directory", state, "--file", "bench=" + self.file,
                        "--listen", "127.0.0.1:0", "--initial-lines", "0",
                        "--max-connections-per-address", "4096", "--max-subscribers", str(max(1024, subscribers + 16))]
        self.launch(self.command)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise fanout.ScenarioError("logcast exited at start; its log:\n%s" % self.log_tail())
            import re
            match = re.search(r"address=https?://127\.0\.0\.1:(\d+)", self.log_tail(20000))
            if match:
                self.port = int(match.group(1))
                return
            time.sleep(0.05)
        raise fanout.ScenarioError("logcast did not start listening within 120 s")


def median_run(runs):
    good = [r for r in runs if r["ok"]]
    if len(good) < len(runs):
        return next(r for r in runs if not r["ok"])
    good.sort(key=lambda r: r["lines_per_second"])
    return good[len(good) // 2]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--logcast-bin", default=os.environ.get("LOGCAST_BIN", ".build/release/logcast"))
    ap.add_argument("--subscribers", type=int, default=100)
    ap.add_argument("--lines", type=int, default=15_000)
    ap.add_argument("--repeat", type=int, default=3, help="burst runs per setup; the median is reported")
    ap.add_argument("--latency-subscribers", type=int, default=10)
    ap.add_argument("--latency-lines", type=int, default=3000)
    ap.add_argument("--latency-interval", type=float, default=0.001, help="seconds between latency lines")
    ap.add_argument("--clients", type=int, default=2)
    ap.add_argument("--json", help="also write all results to this file")
    args = ap.parse_args()
    # What fanout's scenarios read from their arguments.
    args.full_check_every, args.stall_timeout, args.deadline = 10, 20.0, 600.0
    args.queue = args.queue_bytes = None  # unused: both setups run on logcast's defaults
    fanout.Server = ClusterServer
    workdir = tempfile.mkdtemp(prefix="logcast-cluster-bench-")
    kinds = ["logcast-single", "logcast-cluster"]
    bursts, lats = {}, {}
    try:
        expected = fanout.Expected(args.lines)
        runs = {kind: [] for kind in kinds}
        for rep in range(args.repeat):
            for kind in kinds:
                print(f"burst: {kind}, {args.subscribers} subscribers x {args.lines} lines (run {rep + 1} of {args.repeat}) ...", flush=True)
                r = fanout.run_burst(kind, args, expected, workdir, rep)
                runs[kind].append(r)
                print("  " + (fanout.fmt_rate(r) if r["ok"] else "FAILED: " + "; ".join(r["problems"])), flush=True)
        bursts = {kind: median_run(r) for kind, r in runs.items()}
        for kind in kinds:
            print(f"latency: {kind}, {args.latency_subscribers} subscribers, a line every {args.latency_interval * 1000:.0f} ms ...", flush=True)
            lats[kind] = fanout.run_latency(kind, args, workdir)
    finally:
        fanout.cleanup_all()
        shutil.rmtree(workdir, ignore_errors=True)

    single, cluster = bursts["logcast-single"], bursts["logcast-cluster"]
    ls, lc = lats["logcast-single"], lats["logcast-cluster"]

    def ok(r, key):
        return r.get(key) if r.get("ok") else None

    rows = [("scenario", "one process", "agent->NATS->gateway", "ratio")]
    rows.append((f"burst {args.subscribers}x{args.lines}", fanout.fmt_rate(single), fanout.fmt_rate(cluster),
                 fanout.fmt_ratio(ok(cluster, "lines_per_second"), ok(single, "lines_per_second"))))
    rows.append(("  per subscriber", rate(single), rate(cluster),
                 fanout.fmt_ratio(ok(cluster, "seconds") and args.lines / cluster["seconds"], ok(single, "seconds") and args.lines / single["seconds"])))

    def lat(r):
        return "%.2f/%.2f ms" % (r["p50_ms"], r["p99_ms"]) if r.get("ok") else "FAILED"
    lat_ratio = "%.2fx/%.2fx" % (lc["p50_ms"] / ls["p50_ms"], lc["p99_ms"] / ls["p99_ms"]) if ls.get("ok") and lc.get("ok") else "-"
    rows.append((f"latency p50/p99 @{1 / args.latency_interval:.0f}/s", lat(ls), lat(lc), lat_ratio))
    rows.append(("CPU seconds (burst)", "%.2f" % single["server_cpu"] if single.get("ok") else "-",
                 "%.2f" % cluster["server_cpu"] if cluster.get("ok") else "-",
                 fanout.fmt_ratio(ok(cluster, "server_cpu"), ok(single, "server_cpu"))))
    rows.append(("peak RSS", fanout.mb(single["peak_rss"]) if single.get("ok") else "-",
                 fanout.mb(cluster["peak_rss"]) if cluster.get("ok") else "-",
                 fanout.fmt_ratio(ok(cluster, "peak_rss"), ok(single, "peak_rss"))))
    print()
    for row in rows:
        print("".join(str(c).ljust(w) for c, w in zip(row, (26, 18, 22, 10))).rstrip())
    print()
    print("ratio = cluster / one process: above 1 is better for lines/s; below 1 is better for latency, CPU and RSS.")
    print("CPU and RSS of the cluster are the gateway, the agent and nats-server together (one process tree).")
    for name, r in (("one process", ls), ("cluster", lc)):
        if r.get("ok"):
            print(f"latency {name}: {r['samples']} samples, max {r['max_ms']:.2f} ms")
    failed = False
    for name, r in [("burst " + k, v) for k, v in bursts.items()] + [("latency " + k, v) for k, v in lats.items()]:
        if not r.get("ok"):
            failed = True
            print(f"FAILED: {name}: " + "; ".join(r["problems"]))
            for line in r.get("log", "").strip().splitlines()[-10:]:
                print("    " + line)
    print(f"setup ({time.strftime('%Y-%m-%d %H:%M:%S')}, {os.cpu_count()} cores): {fanout.logcast_description(args.logcast_bin)}; "
          f"{subprocess.run([NATS_SERVER, '--version'], capture_output=True, text=True).stdout.strip()}; logcast defaults")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "bursts": bursts, "latency": lats}, f, indent=2, default=str)
    return 1 if failed else 0


def rate(r):
    """Lines per second each subscriber received (the burst's lines over its time)."""
    if not r.get("ok") or not r.get("seconds"):
        return "-"
    return "%.0f k lines/s" % (r["lines"] / r["seconds"] / 1e3)


if __name__ == "__main__":
    sys.exit(main())
