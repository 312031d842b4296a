"""`--journal` against a real systemd-journald, the closest thing to
production: logcast runs with its own log going into that journal (through
systemd-cat, as under a unit), and must not feed it back into the stream."""
import glob
import http.client
import json
import os
import signal
import socket
import subprocess
import uuid

import pytest

from conftest import BINARY, DEADLINE, Stream, wait_for

JOURNALD = "/lib/systemd/systemd-journald"


def system_journal_files():
    return glob.glob("/run/log/journal/*/system*.journal") + glob.glob("/var/log/journal/*/system*.journal")


@pytest.fixture(scope="module")
def journald():
    """A running journald: the machine's, or one started here (as root)."""
    running = subprocess.run(["pgrep", "-x", "systemd-journal"], capture_output=True).returncode == 0
    started = None
    if not running:
        if os.geteuid() != 0:
            pytest.skip("no systemd-journald running, and starting one needs root")
        started = subprocess.Popen([JOURNALD], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(system_journal_files, message="journald to create its journal")
    # Ready when a line written now can be read back.
    probe = "probe-" + uuid.uuid4().hex[:8]

    def probe_readable():
        subprocess.run(["systemd-cat", "-t", probe], input=b"probe\n", capture_output=True)
        return journalctl_local("-t", probe)
    wait_for(probe_readable, message="journald to accept and store a line")
    yield
    if started:
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
