"""`logcast tail`, the real binary, against a live server: filters, output
modes, --no-follow, resume across cut connections and restarts, notices on
stderr, refusals and exit codes."""
import datetime
import json
import os
import signal
import socket
import ssl
import subprocess
import threading
import time

import pytest

from conftest import BINARY, DEADLINE, Server, Stream, append, make_certificate, wait_for
from viewer_support import PacedWriter, Proxy

TOKEN = "tail-token-0123456789abcdef"


class Tail:
    """A running `logcast tail`; stdout and stderr collected line by line."""

    def __init__(self, *args, env=None):
        self.proc = subprocess.Popen(
            [str(BINARY), "tail", *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, **(env or {})},
        )
        self.out, self.err = [], []
        for stream, sink in ((self.proc.stdout, self.out), (self.proc.stderr, self.err)):
            threading.Thread(target=self._read, args=(stream, sink), daemon=True).start()

    @staticmethod
    def _read(stream, sink):
        for line in stream:
            sink.append(line.rstrip("\n"))

    def lines(self, count):
        wait_for(lambda: len(self.out) >= count, message=f"{count} lines on stdout (have {len(self.out)}; stderr {self.err})")
        return self.out[:count]

    def stderr_has(self, text):
        return wait_for(lambda: any(text in line for line in self.err), message=f"{text!r} on stderr (stderr: {self.err})")

    def wait(self):
        return self.proc.wait(timeout=DEADLINE)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=DEADLINE)
            except subprocess.TimeoutExpired:
                self.proc.kill()


@pytest.fixture
def tails():
    started = []

    def start(*args, env=None):
        t = Tail(*args, env=env)
        started.append(t)
        return t

    yield start
    for t in started:
        t.stop()


def run_tail(*args, env=None):
    return subprocess.run([str(BINARY), "tail", *args], capture_output=True, text=True, timeout=DEADLINE,
                          env={**os.environ, **(env or {})})


@pytest.fixture
def app(serve, tmp_path):
    log = tmp_path / "app.log"
    other = tmp_path / "other.log"
    append(log, "INFO start\nERROR db timeout\nWARN slow\nINFO GET /healthz\n")
    append(other, "ERROR other failed\n")
    server = serve("--file", f"app={log}", "--file", f"other={other}", "--initial-lines", "100", "--host-name", "web1")
    wait_for(lambda: sum(s["lines_read"] for s in json.loads(server.get("/api/v1/sources")[2])) == 5, message="initial lines")
    server.log = log
    server.url = f"ws://127.0.0.1:{server.port}"
    return server


def test_no_follow_prints_the_backlog_and_exits_0(app):
    result = run_tail(app.url, "--no-follow", "-n", "3", "-o", "cat", "-s", "app")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["ERROR db timeout", "WARN slow", "INFO GET /healthz"]


@pytest.mark.parametrize("args, expected", [
    (["-s", "app", "-g", "timeout"], ["ERROR db timeout"]),
    (["-p", "err"], ["ERROR db timeout", "ERROR other failed"]),
    (["-p", "warning..warning"], ["WARN slow"]),
    (["-s", "app", "--exclude", "healthz", "-g", "^(INFO|WARN)"], ["INFO start", "WARN slow"]),
    (["-s", "app", "-g", "TIMEOUT"], []),  # smart case: an upper-case letter makes it exact
    # -g is a regex as in journalctl; -F keeps the fixed string.
    (["-s", "app", "-g", "time.ut"], ["ERROR db timeout"]),
    (["-s", "app", "-F", "time.ut"], []),
    (["-s", "app", "-F", "timeout", "-F", "db"], ["ERROR db timeout"]),
    (["-s", "app", "--regex", "slow$"], ["WARN slow"]),
    # --case-sensitive[=BOOL] as journalctl takes it, overriding smart case both ways.
    (["-s", "app", "-g", "TIMEOUT", "--case-sensitive=no"], ["ERROR db timeout"]),
    (["-s", "app", "-g", "TIMEOUT", "--case-sensitive=0"], ["ERROR db timeout"]),
    (["-g", "error"], ["ERROR db timeout", "ERROR other failed"]),
    (["-g", "error", "--case-sensitive"], []),
    (["-g", "error", "--case-sensitive=yes"], []),
    (["-g", "ERROR", "--case-sensitive=true"], ["ERROR db timeout", "ERROR other failed"]),
    # journalctl habits that change nothing here: -f, -x, --no-pager.
    (["-s", "app", "-x", "--no-pager", "-g", "slow"], ["WARN slow"]),
    (["--host", "web1", "-s", "other"], ["ERROR other failed"]),
    (["-u", "nginx"], []),  # file lines carry no unit
])
def test_filters(app, args, expected):
    result = run_tail(app.url, "--no-follow", "-n", "100", "-o", "cat", *args)
    assert result.returncode == 0, result.stderr
    assert sorted(result.stdout.splitlines()) == sorted(expected)


def test_follow_prints_new_lines_with_filters(app, tails):
    t = tails(app.url, "-n", "0", "-o", "cat", "-g", "needle")
    wait_for(lambda: json.loads(app.get("/healthz")[2])["subscribers"] == 1, message="tail to connect")
    append(app.log, "hay\nneedle 1\nhay\nneedle 2\n")
    assert t.lines(2) == ["needle 1", "needle 2"]


def test_output_modes(app):
    stream = Stream(f"{app.url}/ws?backlog=100&source=app")
    assert stream.next()["type"] == "hello"
    objects = stream.until_barrier()
    stream.close()
    as_json = run_tail(app.url, "--no-follow", "-n", "100", "-s", "app", "-o", "json")
    assert [json.loads(line) for line in as_json.stdout.splitlines()] == objects
    short = run_tail(app.url, "--no-follow", "-n", "100", "-s", "app").stdout.splitlines()
    assert len(short) == 4
    first = short[1]
    ts = objects[1]["ts"]
    assert first.startswith(ts[:23]) and " web1 app: ERROR db timeout" in first
    assert "\x1b[" not in "".join(short), "no colours when stdout is not a terminal"
    # journalctl's modes show a file line's source where a journal line has its identifier, in local time.
    iso = run_tail(app.url, "--no-follow", "-n", "100", "-s", "app", "-o", "short-iso", env={"TZ": "Asia/Kolkata"}).stdout.splitlines()
    local = datetime.datetime.fromisoformat(ts.replace("Z", "+00:00")).astimezone(datetime.timezone(datetime.timedelta(hours=5, minutes=30)))
    assert iso[1] == local.strftime("%Y-%m-%dT%H:%M:%S+0530") + " web1 app: ERROR db timeout", iso
    coloured = run_tail(app.url, "--no-follow", "-n", "100", "-s", "app", "--color", "always").stdout.splitlines()
    assert "\x1b[1;31mERROR db timeout\x1b[0m" in coloured[1]
    assert "\x1b[33mWARN slow\x1b[0m" in coloured[2]
    never = run_tail(app.url, "--no-follow", "-n", "100", "-s", "app", "--color", "never").stdout
    assert "\x1b[" not in never


def test_resume_after_cut_connections_loses_and_repeats_nothing(app, tails):
    proxy = Proxy(app.port).start()
    try:
        t = tails(f"ws://127.0.0.1:{proxy.port}", "-n", "0", "-o", "cat", "-s", "app")
        wait_for(lambda: json.loads(app.get("/healthz")[2])["subscribers"] == 1, message="tail to connect")
        writer = PacedWriter(app.log, 3000, 1000, lambda i: f"line {i}")
        writer.start()
        for cut_after in (500, 1500):
            wait_for(lambda: len(t.out) >= cut_after, message=f"{cut_after} lines before the cut")
            assert proxy.cut() >= 1
        writer.join(timeout=DEADLINE)
        assert writer.error is None
        got = t.lines(3000)
        assert got == [f"line {i}" for i in range(1, 3001)]
        assert t.stderr_has("reconnected; resuming after line")
    finally:
        proxy.close()


def test_lines_evicted_while_disconnected_are_reported_on_stderr(serve, tails, tmp_path):
    log = tmp_path / "app.log"
    log.write_text("")
    server = serve("--file", f"app={log}", "--initial-lines", "0", "--history", "20", "--state-directory", "none")  # memory only: the history ends at --history
    proxy = Proxy(server.port).start()
    try:
        t = tails(f"ws://127.0.0.1:{proxy.port}", "-n", "0", "-o", "cat")
        wait_for(lambda: json.loads(server.get("/healthz")[2])["subscribers"] == 1, message="tail to connect")
        append(log, "first\n")
        assert t.lines(1) == ["first"]
        # Hold the network down while 100 lines go by (the history keeps 20).
        proxy.held = True
        proxy.cut()
        wait_for(lambda: json.loads(server.get("/healthz")[2])["subscribers"] == 0, message="the server to see the cut")
        append(log, "".join(f"missed {i}\n" for i in range(100)))
        wait_for(lambda: json.loads(server.get("/healthz")[2])["last_seq"] == 101, message="lines published")
        proxy.held = False
        t.stderr_has("lines missed while disconnected")
        got = t.lines(21)
        assert got[1:] == [f"missed {i}" for i in range(80, 100)]
        assert any("80 lines missed" in line for line in t.err)
    finally:
        proxy.close()


def test_server_restart_is_reported_then_streaming_goes_on(tmp_path, tails):
    log = tmp_path / "app.log"
    log.write_text("")
    first = Server(["--file", f"app={log}", "--initial-lines", "0"], cwd=tmp_path).start()
    port = first.port
    t = tails(f"ws://127.0.0.1:{port}", "-n", "0", "-o", "cat")
    try:
        wait_for(lambda: json.loads(first.get("/healthz")[2])["subscribers"] == 1, message="tail to connect")
        append(log, "before restart\n")
        assert t.lines(1) == ["before restart"]
        first.stop()
        second = Server(["--file", f"app={log}", "--initial-lines", "0", "--listen", f"127.0.0.1:{port}"], cwd=tmp_path).start()
        try:
            t.stderr_has("the server restarted")
            wait_for(lambda: json.loads(second.get("/healthz")[2])["subscribers"] == 1, message="tail to reconnect")
            append(log, "after restart\n")
            assert t.lines(2) == ["before restart", "after restart"]
        finally:
            second.stop()
    finally:
        first.stop()


def test_source_events_go_to_stderr_not_stdout(app, tails):
    t = tails(app.url, "-n", "0", "-o", "cat", "-s", "app")
    wait_for(lambda: json.loads(app.get("/healthz")[2])["subscribers"] == 1, message="tail to connect")
    with open(app.log, "r+b") as handle:
        handle.truncate(0)
    append(app.log, "after truncation\n")
    assert t.lines(1) == ["after truncation"]
    t.stderr_has("— app truncated")
    assert all("truncated" not in line for line in t.out)


def test_bad_url_exits_2():
    for url in ("foo://x", "ws://", "not a url", "ws://host:8080/ws?grep=x"):
        result = run_tail(url)
        assert result.returncode == 2, url
        assert "bad URL" in result.stderr


def test_refused_filter_exits_3_with_the_server_reason(app):
    result = run_tail(app.url, "-s", "nope")
    assert result.returncode == 3
    assert "400 unknown source 'nope' (known sources: app, other)" in result.stderr
    result = run_tail(app.url, "-p", "loud", "--no-follow")
    assert result.returncode == 3 and "400" in result.stderr and "priority" in result.stderr


def test_token_required_wrong_and_given(serve, tmp_path):
    log = tmp_path / "app.log"
    log.write_text("")
    token_file = tmp_path / "tokens"
    token_file.write_text(TOKEN + "\n")
    server = serve("--file", f"app={log}", "--token-file", str(token_file))
    url = f"ws://127.0.0.1:{server.port}"
    missing = run_tail(url)
    assert missing.returncode == 4
    assert "401 token required" in missing.stderr
    wrong = run_tail(url, env={"LOGCAST_TOKEN": "wrong"})
    assert wrong.returncode == 4 and "401 token not accepted" in wrong.stderr
    append(log, "with token\n")
    by_env = run_tail(url, "--no-follow", "-o", "cat", env={"LOGCAST_TOKEN": TOKEN})
    assert by_env.returncode == 0 and by_env.stdout == "with token\n"
    mine = tmp_path / "mine"
    mine.write_text(f"# my token\n{TOKEN}\n")
    by_file = run_tail(url, "--no-follow", "-o", "cat", "--token-file", str(mine))
    assert by_file.returncode == 0 and by_file.stdout == "with token\n"


def test_server_down_is_retried_then_reported_after_connect_timeout(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = run_tail(f"ws://127.0.0.1:{port}", "--connect-timeout", "1")
    assert result.returncode == 1
    assert "cannot connect to" in result.stderr and "connection refused" in result.stderr


def test_server_that_comes_up_later_is_waited_for(tmp_path, tails):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = tmp_path / "app.log"
    log.write_text("")
    t = tails(f"ws://127.0.0.1:{port}", "-n", "0", "-o", "cat", "--connect-timeout", "60")
    t.stderr_has("reconnecting")
    server = Server(["--file", f"app={log}", "--initial-lines", "0", "--listen", f"127.0.0.1:{port}"], cwd=tmp_path).start()
    try:
        wait_for(lambda: json.loads(server.get("/healthz")[2])["subscribers"] == 1, message="tail to connect")
        append(log, "finally\n")
        assert t.lines(1) == ["finally"]
    finally:
        server.stop()


def test_piped_to_head_and_ctrl_c_exit_cleanly(app, tails):
    pipeline = subprocess.Popen(f"'{BINARY}' tail {app.url} -n 100 -o cat -s app | head -1; echo \"tail=${{PIPESTATUS[0]}}\"",
                                shell=True, executable="/bin/bash", stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # Like tail -f | head, the closed pipe is noticed at the next write after head has
    # exited. A line written before that (both may reach the pipe while head starts) is
    # not one: lines go on being written until the pipeline ends.
    wait_for(lambda: json.loads(app.get("/healthz")[2])["subscribers"] == 1, message="tail to connect")
    deadline = time.monotonic() + DEADLINE
    written = 0
    while pipeline.poll() is None:
        assert time.monotonic() < deadline, f"logcast tail did not end after {written} lines to a closed pipe"
        append(app.log, f"one more {written}\n")
        written += 1
        try:
            pipeline.wait(timeout=0.5)
        except subprocess.TimeoutExpired:
            pass
    stdout, stderr = pipeline.communicate(timeout=DEADLINE)
    assert stdout.splitlines() == ["INFO start", "tail=0"]
    assert stderr == "", stderr
    t = tails(app.url, "-n", "1", "-o", "cat")
    t.lines(1)
    t.proc.send_signal(signal.SIGINT)
    assert t.wait() == 0
    assert not any("Fatal" in line for line in t.err)


def test_wss_with_verification(serve, tmp_path):
    cert, key = make_certificate(tmp_path)
    log = tmp_path / "app.log"
    log.write_text("secure line\n")
    server = serve("--file", f"app={log}", "--tls-cert", str(cert), "--tls-key", str(key))
    url = f"wss://localhost:{server.port}"
    trusted = run_tail(url, "--no-follow", "-o", "cat", "--ca-file", str(cert))
    assert trusted.returncode == 0, trusted.stderr
    assert trusted.stdout == "secure line\n"
    untrusted = run_tail(url, "--no-follow", "-o", "cat")
    assert untrusted.returncode == 1
    assert "certificate" in untrusted.stderr.lower() or "tls" in untrusted.stderr.lower()
    insecure = run_tail(url, "--no-follow", "-o", "cat", "--insecure")
    assert insecure.returncode == 0 and insecure.stdout == "secure line\n"
    following = Tail(url, "-n", "1", "-o", "cat", "--ca-file", str(cert))
    try:
        assert following.lines(1) == ["secure line"]
    finally:
        following.stop()


# --- journalctl habits ------------------------------------------------------

@pytest.mark.parametrize("args, words", [
    (["-g", "x", "--case-sensitive=maybe"], "--case-sensitive 'maybe' is not a boolean"),
    (["--case-sensitive"], "--case-sensitive applies to -g/--grep"),
    (["-f", "--no-follow"], "-f/--follow and --no-follow contradict"),
    (["-f", "--until=-1m"], "-f/--follow cannot be combined with --until"),
    (["--lines", "many"], "Error: The value 'many' is invalid for '--lines <N>'"),  # the parser's own refusals exit 2 too
    (["--no-such-flag"], "Unknown option '--no-such-flag'"),
    (["-r"], "-r/--reverse needs lines that end"),
    (["-o", "short-unix"], "--output 'short-unix' is not a mode; use short, short-iso, short-precise, short-full, with-unit, json, cat"),
    (["-g", "("], None),  # the server's regex error, exit 3
])
def test_journalctl_flags_refused_with_a_reason(app, args, words):
    result = run_tail(app.url, *args)
    if words is None:
        assert result.returncode == 3 and "regex" in result.stderr, result.stderr
    else:
        assert result.returncode == 2, result.stderr
        assert words in result.stderr, result.stderr


def test_reverse_and_pager_end_and_follow_as_journalctl(app, tails):
    newest_first = run_tail(app.url, "--no-follow", "-r", "-n", "3", "-o", "cat", "-s", "app")
    assert newest_first.returncode == 0, newest_first.stderr
    assert newest_first.stdout.splitlines() == ["INFO GET /healthz", "WARN slow", "ERROR db timeout"]
    until = run_tail(app.url, "-U", "now", "-r", "--since=-1d", "-o", "cat", "-s", "app")
    assert until.stdout.splitlines() == ["INFO GET /healthz", "WARN slow", "ERROR db timeout", "INFO start"], until.stderr
    # -e means the last 1000 unless -n says otherwise; -xe is a habit.
    append(app.log, "".join(f"more {i}\n" for i in range(1100)))
    wait_for(lambda: json.loads(app.get("/healthz")[2])["last_seq"] == 1105, message="the new lines")
    end = run_tail(app.url, "--no-follow", "-xe", "-o", "cat", "-s", "app")
    assert end.stdout.splitlines() == [f"more {i}" for i in range(100, 1100)], end.stderr
    assert run_tail(app.url, "--no-follow", "-e", "-n", "2", "-o", "cat", "-s", "app").stdout.splitlines() == ["more 1098", "more 1099"]
    # -f is the default spelled out.
    t = tails(app.url, "-f", "-n", "1", "-o", "cat", "-s", "app")
    assert t.lines(1) == ["more 1099"]
    append(app.log, "followed\n")
    assert t.lines(2)[1] == "followed"


def test_quiet_leaves_out_connection_notices_and_source_events_but_not_gaps(app, tails):
    loud = tails(app.url, "-n", "0", "-o", "cat", "-s", "app")
    quiet = tails(app.url, "-q", "-n", "0", "-o", "cat", "-s", "app")
    wait_for(lambda: json.loads(app.get("/healthz")[2])["subscribers"] == 2, message="both tails to connect")
    app.log.write_text("")  # truncated: a source event
    append(app.log, "after truncation\n")
    assert loud.lines(1) == ["after truncation"] and quiet.lines(1) == ["after truncation"]
    loud.stderr_has("app truncated")
    # A server restart: the loud one says it reconnects; the quiet one says only what may be lost.
    port = app.port
    app.stop()
    loud.stderr_has("reconnecting")
    again = Server(["--file", f"app={app.log}", "--listen", f"127.0.0.1:{port}", "--initial-lines", "0"], cwd=app.log.parent).start()
    try:
        loud.stderr_has("the server restarted")
        quiet.stderr_has("the server restarted")
        append(app.log, "after restart\n")
        assert loud.lines(2)[1] == "after restart" and quiet.lines(2)[1] == "after restart"
        loud.stderr_has("reconnected")
        assert not any("truncated" in line or "reconnect" in line for line in quiet.err), quiet.err
    finally:
        again.stop()


def test_journalctl_output_modes_print_what_journalctl_prints(serve, tmp_path):
    from journal_support import JournalWriter

    journal = tmp_path / "journal"
    journal.mkdir()
    writer = JournalWriter(journal)
    try:
        entries = [
            {"MESSAGE": "with unit", "PRIORITY": 6, "SYSLOG_IDENTIFIER": "nginx", "_PID": 4242, "_SYSTEMD_UNIT": "nginx.service"},
            {"MESSAGE": "no unit", "PRIORITY": 3, "SYSLOG_IDENTIFIER": "cron", "_PID": 77},
            {"MESSAGE": "bare", "PRIORITY": 5, "SYSLOG_IDENTIFIER": "kernel"},
        ]
        writer.write(*entries)
        server = serve("--journal-directory", str(journal), "--initial-lines", "10")
        wait_for(lambda: json.loads(server.get("/healthz")[2])["last_seq"] == 3, message="the journal entries")
        url = f"ws://127.0.0.1:{server.port}"
        for zone in ["UTC", "America/New_York", "Asia/Kolkata"]:
            for mode in ["short-iso", "short-precise", "short-full", "with-unit"]:
                expected = subprocess.run(["journalctl", "--directory", str(journal), "-o", mode, "--no-pager", "-q"],
                                          capture_output=True, text=True, env={**os.environ, "TZ": zone}, check=True).stdout.splitlines()
                got = run_tail(url, "--no-follow", "-o", mode, env={"TZ": zone})
                assert got.returncode == 0, got.stderr
                assert got.stdout.splitlines() == expected, (zone, mode)
    finally:
        writer.close()


class SNIProxy:
    """A TLS front for a plain server that records the server name (SNI) of
    each handshake, refuses names other than `name` (as a virtual-hosting
    front does), and relays the bytes."""

    def __init__(self, cert, key, upstream_port, name="localhost"):
        self.names = []
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(str(cert), str(key))

        def on_name(connection, server_name, context):
            self.names.append(server_name)
            if server_name is not None and server_name != name:
                return ssl.ALERT_DESCRIPTION_UNRECOGNIZED_NAME
            return None
        self.context.sni_callback = on_name
        self.upstream_port = upstream_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client):
        try:
            secure = self.context.wrap_socket(client, server_side=True)
        except (ssl.SSLError, OSError):
            client.close()
            return
        upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
        threading.Thread(target=Proxy._pump, args=(upstream, secure), daemon=True).start()
        Proxy._pump(secure, upstream)

    def close(self):
        self.listener.close()


def test_server_name_is_sent_over_tls_for_names_and_not_for_addresses(serve, tmp_path):
    cert, key = make_certificate(tmp_path)
    log = tmp_path / "app.log"
    log.write_text("behind a front\n")
    server = serve("--file", f"app={log}", "--allow-host", "*")
    front = SNIProxy(cert, key, server.port)
    try:
        for scheme in ["https", "wss"]:
            # --no-follow reads over HTTPGet; a refusal check too. Both send the name.
            got = run_tail(f"{scheme}://localhost:{front.port}", "--no-follow", "-o", "cat", "--ca-file", str(cert))
            assert got.returncode == 0 and got.stdout == "behind a front\n", got.stderr
        assert front.names and set(front.names) == {"localhost"}, front.names
        # Following (the WebSocket client) sends it as well.
        seen = len(front.names)
        following = Tail(f"wss://localhost:{front.port}", "-n", "1", "-o", "cat", "--ca-file", str(cert))
        try:
            assert following.lines(1) == ["behind a front"]
            assert front.names[seen:] and set(front.names[seen:]) == {"localhost"}, front.names
        finally:
            following.stop()
        # An address is not a name: no SNI (RFC 6066).
        seen = len(front.names)
        got = run_tail(f"https://127.0.0.1:{front.port}", "--no-follow", "-o", "cat", "--ca-file", str(cert))
        assert got.returncode == 0 and got.stdout == "behind a front\n", got.stderr
        assert front.names[seen:] == [None], front.names
    finally:
        front.close()
