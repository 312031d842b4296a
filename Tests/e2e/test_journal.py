"""The journal source: a real journal file appended by systemd-journal-remote
while logcast follows it, checked against what journalctl prints."""
import json
import os
import random
import shutil
import signal
import tempfile
import time
from pathlib import Path

import pytest

from conftest import DEADLINE, Server, append, wait_for
from journal_support import THIS_BOOT_ID, JournalWriter, journalctl, message_text, rfc3339


class JournalDirectory:
    """A temporary journal directory and the writers appending to it."""

    def __init__(self, path):
        self.path = path
        self.writers = []

    def __fspath__(self):
        return str(self.path)

    def __str__(self):
        return str(self.path)

    def writer(self, name="test"):
        w = JournalWriter(self.path, name)
        self.writers.append(w)
        return w


@pytest.fixture
def journal_dir(tmp_path):
    directory = tmp_path / "journal"
    directory.mkdir()
    journal = JournalDirectory(directory)
    yield journal
    for w in journal.writers:
        w.close()


def writer_for(directory, name="test"):
    return directory.writer(name)


def sources(server):
    return {s["name"]: s for s in json.loads(server.get("/api/v1/sources")[2])}


def lines_read(server, name="journal"):
    return sources(server)[name]["lines_read"]


UNITS = ["nginx.service", "cron.service", "ssh.service", None]
IDENTIFIERS = ["nginx", "CRON", "sshd", None]


def varied_entries(count, seed=7):
    """Entries with a mix of fields, including ones without a priority,
    PID 1 messages about a unit, multi-line and non-UTF-8 messages."""
    rng = random.Random(seed)
    entries = []
    for i in range(count):
        fields = {"MESSAGE": f"entry {i} " + rng.choice(["started", "timeout talking to db", "ok", "denied"])}
        if i % 11 != 5:
            fields["PRIORITY"] = rng.randrange(0, 8)
        unit = rng.choice(UNITS)
        identifier = rng.choice(IDENTIFIERS)
        if i % 9 == 4:
            # systemd (PID 1) reporting on a unit: journalctl -u counts it for that unit.
            fields.update({"_PID": 1, "UNIT": unit or "nginx.service", "SYSLOG_IDENTIFIER": "systemd", "_SYSTEMD_UNIT": "init.scope", "_UID": 0})
        else:
            fields["_PID"] = 100 + i
            if unit:
                fields["_SYSTEMD_UNIT"] = unit
            if identifier:
                fields["SYSLOG_IDENTIFIER"] = identifier
        if i % 13 == 3:
            fields["MESSAGE"] = f"entry {i} first line\n  second line\n  third line"
        if i % 17 == 6:
            fields["MESSAGE"] = f"entry {i} binary ".encode() + b"\xff\x00tail"
        if i % 19 == 7:
            fields["MESSAGE"] = f"entry {i} ünïcødé ✓"
        entries.append(fields)
    return entries


def test_entries_arrive_once_in_order_with_the_fields_journalctl_prints(serve, stream, journal_dir):
    server = serve("--journal-directory", str(journal_dir), "--initial-lines", "0")
    s = stream(server.ws_url + "?backlog=0")
    assert s.next()["type"] == "hello"
    writer = writer_for(journal_dir)
    entries = varied_entries(150)
    for start in range(0, len(entries), 25):
        writer.write(*entries[start:start + 25])
    got = s.lines(len(entries))

    assert [line["seq"] for line in got] == sorted({line["seq"] for line in got})
    assert [int(line["msg"].split()[1]) for line in got] == list(range(len(entries)))
    expected = journalctl(journal_dir)
    assert len(expected) == len(entries)
    for line, entry in zip(got, expected):
        assert line["source"] == "journal"
        assert line["msg"] == message_text(entry)
        assert line["ts"] == rfc3339(entry["__REALTIME_TIMESTAMP"])
        assert line["cursor"] == entry["__CURSOR"]
        assert line["host"] == entry["_HOSTNAME"]
        assert line["pid"] == int(entry["_PID"])
        assert line.get("priority") == (int(entry["PRIORITY"]) if "PRIORITY" in entry else None)
        assert line.get("unit") == entry.get("_SYSTEMD_UNIT")
        assert line.get("identifier") == entry.get("SYSLOG_IDENTIFIER")
        assert "path" not in line and "relatedUnit" not in line
    # A multi-line message stays one record; binary bytes become U+FFFD.
    assert "first line\n  second line\n  third line" in got[3]["msg"]
    assert got[6]["msg"] == "entry 6 binary \ufffd\x00tail"
    assert sources(server)["journal"]["state"] == "following"


def test_initial_lines_load_the_last_entries_then_follow(serve, stream, journal_dir):
    writer = writer_for(journal_dir)
    writer.write(*({"MESSAGE": f"old {i}", "PRIORITY": 6} for i in range(30)))
    wait_for(lambda: len(journalctl(journal_dir)) == 30, message="journal-remote to write 30 entries")
    server = serve("--journal-directory", f"sys={journal_dir}", "--initial-lines", "5")
    s = stream(server.ws_url + "?backlog=100")
    assert s.next()["type"] == "hello"
    backlog = s.until_barrier()
    assert [line["msg"] for line in backlog] == [f"old {i}" for i in range(25, 30)]
    assert {line["source"] for line in backlog} == {"sys"}
    writer.write({"MESSAGE": "new 0", "PRIORITY": 6})
    assert s.lines(1)[0]["msg"] == "new 0"


def load_varied(serve, journal_dir, count=200, *extra):
    writer = writer_for(journal_dir)
    writer.write(*varied_entries(count, seed=11))
    wait_for(lambda: len(journalctl(journal_dir)) == count, message="journal-remote to write the entries")
    server = serve("--journal-directory", str(journal_dir), "--initial-lines", str(count), "--history", "1000", *extra)
    wait_for(lambda: lines_read(server) == count, message="logcast to read every entry")
    return server


@pytest.mark.parametrize(
    "query, journalctl_args",
    [
        ("unit=nginx", ["-u", "nginx"]),
        ("unit=cron.service&unit=ssh", ["-u", "cron.service", "-u", "ssh"]),
        ("identifier=sshd", ["-t", "sshd"]),
        ("identifier=nginx,CRON", ["-t", "nginx", "-t", "CRON"]),
        ("priority=warning", ["-p", "warning"]),
        ("priority=err", ["-p", "err"]),
        ("priority=notice..err", ["-p", "notice..err"]),
        ("priority=debug..info", ["-p", "info..debug"]),
        ("priority=3", ["-p", "3"]),
        ("unit=nginx&priority=warning", ["-u", "nginx", "-p", "warning"]),
    ],
)
def test_unit_identifier_priority_filters_match_journalctl(serve, stream, journal_dir, query, journalctl_args):
    server = load_varied(serve, journal_dir)
    s = stream(server.ws_url + "?backlog=1000&" + query)
    assert s.next()["type"] == "hello"
    got = [line["cursor"] for line in s.until_barrier()]
    expected = [entry["__CURSOR"] for entry in journalctl(journal_dir, *journalctl_args)]
    assert expected, "the sample must contain matching entries"
    assert got == expected


def test_journal_unit_flag_reads_only_that_unit_like_journalctl_u(serve, stream, journal_dir):
    server = serve("--journal-directory", str(journal_dir), "--journal-unit", "nginx", "--initial-lines", "0")
    s = stream(server.ws_url + "?backlog=0")
    assert s.next()["type"] == "hello"
    writer = writer_for(journal_dir)
    writer.write(*varied_entries(120, seed=3))
    expected = [entry["__CURSOR"] for entry in wait_for(
        lambda: len(journalctl(journal_dir)) == 120 and journalctl(journal_dir, "-u", "nginx"),
        message="the entries in the journal")]
    got = [line["cursor"] for line in s.lines(len(expected))]
    assert got == expected
    # Nothing else was read at all: the match is pushed down into sd-journal.
    wait_for(lambda: lines_read(server) == len(expected), message="lines_read to settle")
    writer.write({"MESSAGE": "other unit", "_SYSTEMD_UNIT": "cron.service", "PRIORITY": 6},
                 {"MESSAGE": "nginx again", "_SYSTEMD_UNIT": "nginx.service", "PRIORITY": 6})
    assert s.lines(1)[0]["msg"] == "nginx again"


def test_mixed_stream_shows_error_lines_of_file_and_journal(serve, stream, journal_dir, tmp_path):
    log = tmp_path / "app.log"
    log.write_text("")
    server = serve("--file", f"app={log}", "--journal-directory", str(journal_dir), "--initial-lines", "0")
    s = stream(server.ws_url + "?backlog=0&priority=err")
    assert s.next()["type"] == "hello"
    writer = writer_for(journal_dir)
    append(log, "INFO all good\nERROR disk full\n")
    writer.write({"MESSAGE": "journal info", "PRIORITY": 6}, {"MESSAGE": "journal crit", "PRIORITY": 2})
    got = s.lines(2)
    assert sorted((line["source"], line["msg"]) for line in got) == [("app", "ERROR disk full"), ("journal", "journal crit")]
    append(log, "WARN not enough\n[error] second\n")
    writer.write({"MESSAGE": "journal err", "PRIORITY": 3})
    got = s.lines(2)
    assert sorted((line["source"], line["msg"]) for line in got) == [("app", "[error] second"), ("journal", "journal err")]


def test_unreadable_journal_directory_fails_clearly_and_files_keep_streaming(stream):
    # pytest's tmp_path is private to root; the unprivileged server needs a world-readable base.
    base = Path(tempfile.mkdtemp(prefix="logcast-perm-"))
    os.chmod(base, 0o755)
    locked = base / "locked"
    locked.mkdir()
    JournalWriter(locked).close()
    os.chmod(locked, 0o700)
    log = base / "app.log"
    log.write_text("")
    os.chmod(log, 0o644)
    nobody = ("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups")
    server = Server(["--file", f"app={log}", "--journal-directory", str(locked)], cwd="/", wrapper=nobody).start()
    try:
        journal = wait_for(lambda: (s := sources(server)["journal"])["state"] == "failing" and s,
                           message="the journal source to report failing")
        assert "cannot read journal directory" in journal["last_error"]
        assert "Permission denied" in journal["last_error"]
        assert "systemd-journal" in journal["last_error"]
        status, _, body = server.get("/healthz")
        assert status == 503
        assert "journal" in body.decode()
        s = stream(server.ws_url + "?backlog=0")
        assert s.next()["type"] == "hello"
        append(log, "still here\n")
        assert s.lines(1)[0]["msg"] == "still here"
        assert sources(server)["app"]["state"] == "following"
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)


def test_journal_directory_that_appears_later_is_followed(serve, stream, tmp_path):
    directory = tmp_path / "later"
    server = serve("--journal-directory", str(directory), "--initial-lines", "0")
    journal = wait_for(lambda: (s := sources(server)["journal"])["state"] == "waiting" and s, message="waiting state")
    assert "does not exist" in journal["last_error"]
    s = stream(server.ws_url + "?backlog=0")
    assert s.next()["type"] == "hello"
    directory.mkdir()
    writer = JournalWriter(directory)
    try:
        writer.write({"MESSAGE": "first", "PRIORITY": 6}, {"MESSAGE": "second", "PRIORITY": 6})
        event = s.next_of("source")
        assert event == {"type": "source", "source": "journal", "event": "created", "path": str(directory)}
        assert [line["msg"] for line in s.lines(2)] == ["first", "second"]
    finally:
        writer.close()


def test_rotation_and_vacuum_lose_nothing(serve, stream, journal_dir):
    server = serve("--journal-directory", str(journal_dir), "--initial-lines", "0")
    s = stream(server.ws_url + "?backlog=0")
    assert s.next()["type"] == "hello"
    first = writer_for(journal_dir, "system@0001")
    first.write(*({"MESSAGE": f"a {i}", "PRIORITY": 6} for i in range(50)))
    assert [line["msg"] for line in s.lines(50)] == [f"a {i}" for i in range(50)]
    # Rotate: the old file is closed and archived, a new one takes the writes.
    first.close()
    second = writer_for(journal_dir, "system")
    second.realtime = first.realtime
    second.write(*({"MESSAGE": f"b {i}", "PRIORITY": 6} for i in range(50)))
    assert [line["msg"] for line in s.lines(50)] == [f"b {i}" for i in range(50)]
    # Vacuum: the archived file is deleted; following goes on.
    os.unlink(first.path)
    second.write(*({"MESSAGE": f"c {i}", "PRIORITY": 6} for i in range(50)))
    assert [line["msg"] for line in s.lines(50)] == [f"c {i}" for i in range(50)]
    assert sources(server)["journal"]["state"] == "following"


def test_own_log_entries_are_not_fed_back(serve, stream, journal_dir):
    server = serve("--journal-directory", str(journal_dir), "--initial-lines", "0")
    s = stream(server.ws_url + "?backlog=0")
    assert s.next()["type"] == "hello"
    writer = writer_for(journal_dir)
    writer.write(
        {"MESSAGE": "logcast's own log line", "_PID": server.proc.pid, "_BOOT_ID": THIS_BOOT_ID, "PRIORITY": 6},
        {"MESSAGE": "same pid, other boot", "_PID": server.proc.pid, "PRIORITY": 6},
        {"MESSAGE": "another process", "_PID": server.proc.pid + 1, "_BOOT_ID": THIS_BOOT_ID, "PRIORITY": 6},
    )
    assert [line["msg"] for line in s.lines(2)] == ["same pid, other boot", "another process"]
    wait_for(lambda: lines_read(server) == 2, message="lines_read")


def test_journal_file_sources_group_by_name_and_shutdown_is_prompt(serve, stream, journal_dir):
    writer = writer_for(journal_dir)
    writer.write({"MESSAGE": "in file", "PRIORITY": 4})
    wait_for(lambda: len(journalctl(journal_dir)) == 1, message="entry written")
    server = serve("--journal-file", f"jf={writer.path}", "--initial-lines", "10")
    s = stream(server.ws_url + "?backlog=10&source=jf")
    assert s.next()["type"] == "hello"
    assert [line["msg"] for line in s.until_barrier()] == ["in file"]
    writer.write({"MESSAGE": "appended", "PRIORITY": 4})
    assert s.lines(1)[0]["msg"] == "appended"
    started = time.monotonic()
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(timeout=DEADLINE) == 0
    assert time.monotonic() - started < DEADLINE


@pytest.mark.parametrize("stop_signal", [signal.SIGKILL, signal.SIGTERM])
def test_entries_written_while_logcast_is_down_arrive_after_a_restart(journal_dir, tmp_path, stop_signal):
    from conftest import Stream
    writer = writer_for(journal_dir)
    writer.write(*({"MESSAGE": f"up {i}", "PRIORITY": 6} for i in range(5)))
    wait_for(lambda: len(journalctl(journal_dir)) == 5, message="journal-remote to write 5 entries")
    args = ["--journal-directory", f"sys={journal_dir}", "--initial-lines", "5", "--state-directory", str(tmp_path / "state")]
    first = Server(args).start()
    try:
        wait_for(lambda: lines_read(first, "sys") == 5, message="the first entries")
        epoch = first.health()["epoch"]
    finally:
        first.stop(stop_signal)
    writer.write(*({"MESSAGE": f"down {i}", "PRIORITY": 6} for i in range(7)))
    wait_for(lambda: len(journalctl(journal_dir)) == 12, message="entries written while logcast is down")
    second = Server(args).start()
    try:
        s = Stream(f"{second.ws_url}?after=5&epoch={epoch}")
        assert s.next()["epoch"] == epoch
        got = s.lines(7)
        assert [line["msg"] for line in got] == [f"down {i}" for i in range(7)]
        assert [line["seq"] for line in got] == list(range(6, 13))
        assert not [o for o in s.until_barrier() if o["type"] != "line"], "no gap, nothing twice"
        s.close()
    finally:
        second.stop()


def test_more_journal_entries_while_down_than_the_catch_up_bound_are_skipped_with_a_downtime_gap(journal_dir, tmp_path):
    from conftest import Stream
    writer = writer_for(journal_dir)
    writer.write(*({"MESSAGE": f"up {i}", "PRIORITY": 6} for i in range(5)))
    wait_for(lambda: len(journalctl(journal_dir)) == 5, message="journal-remote to write 5 entries")
    args = [
        "--journal-directory", f"sys={journal_dir}", "--initial-lines", "5", "--state-directory", str(tmp_path / "state"),
        "--max-catch-up-bytes", "100",
    ]
    first = Server(args).start()
    try:
        wait_for(lambda: lines_read(first, "sys") == 5, message="the first entries")
        epoch = first.health()["epoch"]
    finally:
        first.stop(signal.SIGKILL)
    # 50 messages of 10 bytes: the newest 10 fit the bound of 100 bytes.
    writer.write(*({"MESSAGE": f"down {i:05d}", "PRIORITY": 6} for i in range(50)))
    wait_for(lambda: len(journalctl(journal_dir)) == 55, message="entries written while logcast is down")
    second = Server(args).start()
    try:
        s = Stream(f"{second.ws_url}?after=5&epoch={epoch}")
        assert s.next()["epoch"] == epoch
        objects = s.until_barrier()
        assert objects[0]["type"] == "gap"
        assert {k: objects[0][k] for k in ("after", "next", "reason", "source", "skipped_bytes")} == {
            "after": 5, "next": 6, "reason": "downtime", "source": "sys", "skipped_bytes": 400,
        }
        assert [o["msg"] for o in objects[1:]] == [f"down {i:05d}" for i in range(40, 50)]
        assert [o["seq"] for o in objects[1:]] == list(range(6, 16))
        writer.write({"MESSAGE": "live", "PRIORITY": 6})
        assert s.lines(1)[0]["msg"] == "live"
        s.close()
    finally:
        second.stop()


def ndjson(body):
    return [json.loads(line) for line in body.decode().splitlines()]


@pytest.mark.parametrize("state", ["kept", "none"])
def test_since_older_than_the_history_is_read_from_the_journal_itself(journal_dir, tmp_path, state):
    from conftest import Stream
    writer = writer_for(journal_dir)
    day = 86_400_000_000
    now = int(time.time() * 1_000_000)
    old = [{"MESSAGE": f"old {i}", "PRIORITY": 6, "__REALTIME_TIMESTAMP": now - 2 * day + i * 1_000_000} for i in range(5)]
    recent = [{"MESSAGE": f"recent {i}", "PRIORITY": 6, "__REALTIME_TIMESTAMP": now - 3_000_000 + i * 1000} for i in range(3)]
    writer.write(*old, *recent)
    wait_for(lambda: len(journalctl(journal_dir)) == 8, message="journal-remote to write 8 entries")
    args = ["--journal-directory", f"sys={journal_dir}", "--initial-lines", "3"]
    if state == "none":
        args += ["--state-directory", "none"]
    server = Server(args).start()
    try:
        wait_for(lambda: lines_read(server, "sys") == 3, message="the last 3 entries as initial lines")
        status, _, body = server.get("/api/v1/lines?since=-3d")
        assert status == 200
        got = [(o.get("seq"), o["msg"]) for o in ndjson(body)]
        assert got == [(None, f"old {i}") for i in range(5)] + [(1, "recent 0"), (2, "recent 1"), (3, "recent 2")], (
            "the journal's own entries before the history, without seq, then the history: each line once"
        )
        journal_line = ndjson(body)[0]
        assert journal_line["source"] == "sys" and journal_line["cursor"] and journal_line["ts"].endswith("Z")

        # until, and the other filters, apply to what the journal gives.
        import datetime
        until_us = now - 2 * day + 2_500_000  # between old 2 and old 3
        until = datetime.datetime.fromtimestamp(until_us / 1e6, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        _, _, body = server.get(f"/api/v1/lines?since=-3d&until={until}")
        assert [o["msg"] for o in ndjson(body)] == ["old 0", "old 1", "old 2"]
        _, _, body = server.get("/api/v1/lines?since=-3d&grep=old%203")
        assert [o["msg"] for o in ndjson(body)] == ["old 3"]
        _, _, body = server.get("/api/v1/lines?since=-3d&limit=2")
        objects = ndjson(body)
        assert [o.get("msg") for o in objects[:2]] == ["old 0", "old 1"]
        assert objects[2]["type"] == "incomplete" and objects[2]["reason"] == "limit"
        _, _, body = server.get("/api/v1/lines?since=-1h")
        assert [o["msg"] for o in ndjson(body)] == ["recent 0", "recent 1", "recent 2"], "a since within the history reads no journal"

        # A stream: the journal's part, the history, then live lines with their seq.
        s = Stream(f"{server.ws_url}?since=-3d")
        assert s.next()["type"] == "hello"
        got = s.lines(8)
        assert [(o.get("seq"), o["msg"]) for o in got] == [(None, f"old {i}") for i in range(5)] + [(i + 1, f"recent {i}") for i in range(3)]
        writer.write({"MESSAGE": "live", "PRIORITY": 6})
        live = s.lines(1)[0]
        assert (live["seq"], live["msg"]) == (4, "live")
        s.close()
    finally:
        server.stop()
