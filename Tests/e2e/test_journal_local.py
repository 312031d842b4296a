"""`--journal` against a real systemd-journald, the closest thing to
production: logcast runs with its own log going into that journal (through
systemd-cat, as under a unit), and must not feed it back into the stream."""
import contextlib
import fcntl
import glob
import http.client
import json
import os
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid

import pytest

from conftest import BINARY, DEADLINE, Stream, wait_for

JOURNALD = "/lib/systemd/systemd-journald"


def system_journal_files():
    return glob.glob("/run/log/journal/*/system*.journal") + glob.glob("/var/log/journal/*/system*.journal")


# The machine has one journald, whichever test run started it.
TURN_LOCK = "/tmp/logcast-e2e-journald.lock"


@contextlib.contextmanager
def journald_turn(timeout=300):
    """Test runs on one machine take turns with its journald: a run that
    started one stops it when done, and must not stop it under another run
    that found it running (two runs side by side saw it vanish mid-test)."""
    with open(TURN_LOCK, "w") as lock:
        end = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > end:
                    raise AssertionError(f"another test run kept the machine's journald for {timeout}s")
                threading.Event().wait(0.05)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@pytest.fixture(scope="module")
def journald():
    """A running journald: the machine's, or one started here (as root),
    for this run alone while the module's tests use it."""
    with journald_turn():
        running = subprocess.run(["pgrep", "-x", "systemd-journal"], capture_output=True).returncode == 0
        started = None
        if not running:
            if os.geteuid() != 0:
                pytest.skip("no systemd-journald running, and starting one needs root")
            log = tempfile.TemporaryFile(mode="w+")
            started = subprocess.Popen([JOURNALD], stdout=subprocess.DEVNULL, stderr=log)

        def said():
            log.seek(0)
            return log.read().strip()
        try:
            if started:
                wait_for(lambda: system_journal_files() or started.poll() is not None, message="journald to create its journal")
            # Ready when a line written now can be read back (or said why not).
            probe = "probe-" + uuid.uuid4().hex[:8]

            def probe_readable():
                if started and started.poll() is not None:
                    raise AssertionError(f"journald exited with {started.returncode}: {said()}")
                subprocess.run(["systemd-cat", "-t", probe], input=b"probe\n", capture_output=True)
                return journalctl_local("-t", probe)
            try:
                wait_for(probe_readable, message="journald to accept and store a line")
            except AssertionError as error:
                # What the next look needs: is a journald there, does a write reach it, what did ours say.
                alive = subprocess.run(["pgrep", "-ax", "systemd-journal"], capture_output=True, text=True).stdout.strip()
                sent = subprocess.run(["systemd-cat", "-t", probe], input=b"probe\n", capture_output=True, text=True)
                ours = said() if started else "(not started here)"
                raise AssertionError(
                    f"{error}; journald processes: {alive or 'none'}; systemd-cat: {sent.returncode} {sent.stderr.strip()}; journald said: {ours}"
                ) from None
            yield
        finally:
            # Stopped whatever happened, so that the next run starts its own.
            if started and started.poll() is None:
                started.send_signal(signal.SIGTERM)
                started.wait(timeout=DEADLINE)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_local_journal_streams_entries_and_never_its_own_log(journald, tmp_path):
    tag = "logcast-e2e-" + uuid.uuid4().hex[:8]
    port = free_port()
    # Like a unit: logcast's stdout and stderr go to the journal, under its own PID.
    server = subprocess.Popen(
        ["systemd-cat", "-t", tag, str(BINARY), "serve", "--journal", "--initial-lines", "0",
         "--listen", f"127.0.0.1:{port}", "--log-level", "debug"],
        cwd=tmp_path,
    )
    try:
        def sources():
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                conn.request("GET", "/api/v1/sources")
                return json.loads(conn.getresponse().read())
            except OSError:
                return None
        status = wait_for(lambda: (s := sources()) and s[0]["state"] == "following" and s, message="journal source following")
        assert status[0]["kind"] == "journal"
        s = Stream(f"ws://127.0.0.1:{port}/ws?backlog=0")
        assert s.next()["type"] == "hello"
        marker = "marker-" + uuid.uuid4().hex[:8]
        for level in ("err", "info"):
            subprocess.run(["systemd-cat", "-t", marker, "-p", level], input=f"{marker} {level}\n".encode(), check=True)
        got = []
        while len([line for line in got if line.get("identifier") == marker]) < 2:
            obj = s.next()
            if obj["type"] == "line":
                got.append(obj)
        mine = [line for line in got if line.get("identifier") == marker]
        assert [(line["msg"], line["priority"]) for line in mine] == [(f"{marker} err", 3), (f"{marker} info", 6)]
        assert all(line["source"] == "journal" and line["cursor"] for line in mine)
        # logcast logged the connection into the journal, and did not stream it back.
        own = wait_for(lambda: [e for e in journalctl_local("-t", tag) if "subscriber connected" in str(e.get("MESSAGE"))],
                       message="logcast's own log entry in the journal")
        assert own
        assert not [line for line in got if line.get("identifier") == tag]
        s.close()
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=DEADLINE)


def journalctl_local(*args):
    result = subprocess.run(["journalctl", "-o", "json", "--no-pager", *args], capture_output=True)
    return [json.loads(line) for line in result.stdout.decode().splitlines() if line.strip()]


def journal_stream(identifier):
    """A stream to journald set up as systemd does for `StandardError=journal`:
    returns the socket and the JOURNAL_STREAM value naming it."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect("/run/systemd/journal/stdout")
    # identifier, unit id, priority, level prefix, forward to syslog, kmsg, console
    sock.sendall(f"{identifier}\n\n6\n1\n0\n0\n0\n".encode())
    sock.shutdown(socket.SHUT_RD)
    status = os.fstat(sock.fileno())
    return sock, f"{status.st_dev}:{status.st_ino}"


def test_own_log_is_native_to_the_journal_when_stderr_is_the_journal(journald, tmp_path):
    """With JOURNAL_STREAM naming stderr, each entry has its priority and its
    metadata as fields; without it, the same stream gets plain lines."""
    port = free_port()
    sock, stream_id = journal_stream("logcast")
    # Listening on all addresses without a token logs a warning with the address as metadata.
    args = [str(BINARY), "serve", "--file", f"app={tmp_path}/app.log", "--listen", f"0.0.0.0:{port}", "--log-level", "debug"]
    server = subprocess.Popen(args, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=sock.fileno(),
                              env={**os.environ, "JOURNAL_STREAM": stream_id})
    sock.close()
    try:
        entries = lambda *match: journalctl_local(f"_PID={server.pid}", *match)
        listening = wait_for(lambda: [e for e in entries() if str(e.get("MESSAGE", "")).startswith("listening ")],
                             message="the listening entry")[0]
        assert listening["PRIORITY"] == "5" and listening["SYSLOG_IDENTIFIER"] == "logcast"
        assert listening["ADDRESS"] == f"http://0.0.0.0:{port}"
        assert listening["MESSAGE"] == f"listening address=http://0.0.0.0:{port}"
        assert listening["CODE_FILE"].endswith(".swift") and int(listening["CODE_LINE"]) > 0 and listening["CODE_FUNC"]
        assert "_TRANSPORT" in listening and listening["_TRANSPORT"] == "journal"  # the native protocol, not the stream
        warning = wait_for(lambda: [e for e in entries("-p", "warning")], message="the warning, found by priority")
        assert [e["PRIORITY"] for e in warning] == ["4"] and "without --token-file" in warning[0]["MESSAGE"]
        assert warning[0]["ADDRESS"] == "0.0.0.0"
        # Fields are searchable as journalctl FIELD=value.
        assert [e["MESSAGE"] for e in entries(f"ADDRESS=http://0.0.0.0:{port}")] == [listening["MESSAGE"]]
        # Debug entries are kept at priority 7, below -p info.
        assert all(int(e["PRIORITY"]) <= 6 for e in entries("-p", "info"))
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=DEADLINE)

    # The same stream without JOURNAL_STREAM (or naming another descriptor): plain lines, one priority.
    for environment in [{}, {"JOURNAL_STREAM": "1:2"}]:
        sock, _ = journal_stream("logcast-plain")
        env = {key: value for key, value in os.environ.items() if key != "JOURNAL_STREAM"}
        plain = subprocess.Popen(args[:-4] + ["--listen", f"127.0.0.1:{free_port()}"], cwd=tmp_path, stdout=subprocess.DEVNULL,
                                 stderr=sock.fileno(), env={**env, **environment})
        sock.close()
        try:
            line = wait_for(lambda: [e for e in journalctl_local(f"_PID={plain.pid}") if "listening" in str(e.get("MESSAGE"))],
                            message="the plain listening line")[0]
            assert line["_TRANSPORT"] == "stdout" and line["PRIORITY"] == "6" and "ADDRESS" not in line, line
        finally:
            plain.send_signal(signal.SIGTERM)
            plain.wait(timeout=DEADLINE)
