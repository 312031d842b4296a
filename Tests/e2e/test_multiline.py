"""Multi-line records: real traces in real files, joined into one line object each."""
import json
import os
import subprocess

import pytest

from conftest import BINARY, Server, Stream, append, wait_for
from test_doors import parse_sse, read_sse

JAVA = (
    "2026-12-03 10:00:00 ERROR request failed\n"
    "java.lang.IllegalStateException: boom\n"
    "\tat com.example.A.run(A.java:10)\n"
    "\tat com.example.B.main(B.java:5)\n"
    "Caused by: java.io.IOException: disk full\n"
    "\tat com.example.C.io(C.java:3)\n"
    "\t... 2 more\n"
)
PYTHON = (
    "2026-12-03 10:00:01 ERROR job crashed\n"
    "Traceback (most recent call last):\n"
    '  File "job.py", line 3, in <module>\n'
    '    int("x")\n'
    "ValueError: invalid literal for int() with base 10: 'x'\n"
)
PLAIN = "2026-12-03 10:00:02 INFO all good\n"


def follow(serve, tmp_path, *extra):
    """A server following an empty app.log with --multiline app=indented, and a subscriber past its hello."""
    log = tmp_path / "app.log"
    log.touch()
    server = serve("--file", f"app={log}", "--multiline", "app=indented", "--initial-lines", "0", *extra)
    s = Stream(server.ws_url)
    s.next()
    return log, server, s


def messages(objects):
    return [o["msg"] for o in objects if o["type"] == "line"]


def test_traces_are_one_record_each_and_a_grep_selects_the_whole_trace(serve, tmp_path):
    log, server, s = follow(serve, tmp_path)
    append(log, JAVA + PYTHON + PLAIN)
    got = s.lines(3)
    assert messages(got) == [JAVA.rstrip("\n"), PYTHON.rstrip("\n"), PLAIN.rstrip("\n")]
    assert [o.get("lines") for o in got] == [7, 5, None]
    assert got[0]["priority"] == 3 and got[2]["priority"] == 6, "the level of a record is its first line's"
    assert [o["seq"] for o in got] == [1, 2, 3]
    s.close()
    _, _, body = server.get("/api/v1/lines?grep=IOException&backlog=10")
    assert messages(map(json.loads, body.decode().splitlines())) == [JAVA.rstrip("\n")]
    _, _, body = server.get("/api/v1/lines?priority=err&context=1&backlog=10")
    assert len(messages(map(json.loads, body.decode().splitlines()))) == 3, "context counts records"


def test_text_framing_indents_continuations_and_sse_keeps_a_record_in_one_event(serve, tmp_path):
    log = tmp_path / "app.log"
    append(log, JAVA + PLAIN)
    server = serve("--file", f"app={log}", "--multiline", "app=indented", "--initial-lines", "100")
    wait_for(lambda: server.health()["last_seq"] == 2, message="the two records")
    _, _, body = server.get("/api/v1/lines?backlog=10&format=text")
    lines = body.decode().split("\n")[:-1]
    assert lines == [JAVA.splitlines()[0]] + ["\t" + l for l in JAVA.splitlines()[1:]] + [PLAIN.rstrip("\n")]
    # A reader splits records at lines that do not start with a tab, and drops that one tab.
    records, current = [], None
    for line in lines:
        if line.startswith("\t") and current is not None:
            current.append(line[1:])
        else:
            current = [line]
            records.append(current)
    assert ["\n".join(r) for r in records] == [JAVA.rstrip("\n"), PLAIN.rstrip("\n")]
    _, text = read_sse(server.port, "/sse?backlog=10&format=text", lambda t: len([e for e in parse_sse(t)[0] if "id" in e]) >= 2)
    events = [e for e in parse_sse(text)[0] if "id" in e]
    assert [e["data"] for e in events] == [JAVA.rstrip("\n"), PLAIN.rstrip("\n")]


def test_a_record_waits_for_its_continuation_then_goes_out_after_the_timeout(serve, tmp_path):
    log, server, s = follow(serve, tmp_path, "--multiline-timeout", "0.3")
    append(log, "ERROR first\n")
    append(log, "\tat one\n")
    # No start line follows: the timeout publishes it, with both lines.
    assert messages(s.lines(1)) == ["ERROR first\n\tat one"]
    append(log, "\tat late\n")
    assert messages(s.lines(1)) == ["\tat late"], "a continuation after the record went out begins a record of its own"
    s.close()


@pytest.mark.parametrize("how", ["rotate", "truncate", "delete"])
def test_a_file_that_is_left_publishes_its_pending_record_first_and_nothing_joins_across(serve, tmp_path, how):
    log, server, s = follow(serve, tmp_path, "--multiline-timeout", "3600")
    append(log, "ERROR old file\n\tat old.frame\n")
    old = len("ERROR old file\n\tat old.frame\n")
    wait_for(lambda: json.loads(server.get("/api/v1/sources")[2])[0]["bytes_read"] == old, message="the old lines read (not yet published)")
    if how == "rotate":
        os.rename(log, tmp_path / "app.log.1")
        append(log, "\tat new.frame\nINFO new\n")
    elif how == "truncate":
        with open(log, "r+") as f:
            f.truncate(0)
        append(log, "\tat new.frame\nINFO new\n")
    else:
        os.unlink(log)
        append(log, "\tat new.frame\nINFO new\n")
    got = []
    while len(got) < 2:
        o = s.next()
        if o["type"] == "line":
            got.append(o["msg"])
    assert got == ["ERROR old file\n\tat old.frame", "\tat new.frame"], "the old file's record is whole and first"
    s.close()


def test_a_record_is_cut_at_500_lines_and_the_rest_is_marked_continued(serve, tmp_path):
    log, server, s = follow(serve, tmp_path)
    frames = [f"\tat frame{i}" for i in range(1, 700)]
    append(log, "ERROR huge trace\n" + "".join(f + "\n" for f in frames) + "INFO after\n")
    got = s.lines(3)
    assert [o.get("lines") for o in got] == [500, 200, None]
    assert [o.get("continued", False) for o in got] == [False, True, False]
    assert "\n".join(o["msg"] for o in got[:2]) == "ERROR huge trace\n" + "\n".join(frames), "nothing lost at the cut"
    s.close()


def test_a_start_pattern_and_a_restart_with_a_record_pending_loses_and_repeats_nothing(tmp_path):
    log = tmp_path / "app.log"
    state = tmp_path / "state"
    args = ["--file", f"app={log}", "--multiline", r"app=^\d{4}-\d{2}-\d{2} ", "--multiline-timeout", "3600",
            "--initial-lines", "0", "--state-directory", str(state)]
    log.touch()
    server = Server(args).start()
    try:
        s = Stream(server.ws_url)
        epoch = s.next()["epoch"]
        append(log, "2026-12-03 first\nmore of first\n2026-12-03 second\nmore of second\n")
        assert messages(s.lines(1)) == ["2026-12-03 first\nmore of first"]
        s.close()
    finally:
        server.stop()  # "second" is pending: not published, so its bytes are not counted as read
    append(log, "still second\n2026-12-03 third\n")
    server = Server(args).start()
    try:
        s = Stream(f"{server.ws_url}?after=1&epoch={epoch}")
        assert s.next()["epoch"] == epoch
        assert messages(s.lines(1)) == ["2026-12-03 second\nmore of second\nstill second"], "read again whole after the restart"
        append(log, "2026-12-03 fourth\n")
        assert messages(s.lines(1)) == ["2026-12-03 third"]
        s.close()
    finally:
        server.stop()


@pytest.mark.parametrize(
    "args, words",
    [
        (["--multiline", "app"], ["--multiline 'app' is not SOURCE=START"]),
        (["--multiline", "app="], ["is not SOURCE=START"]),
        (["--multiline", "app=(x"], ["'app=(x': bad START pattern", "missing closing parenthesis"]),
        (["--multiline", "zz=indented"], ["no file source is named 'zz'", "file sources: app"]),
        (["--multiline", "app=indented", "--multiline", "app=none"], ["'app' is given more than once"]),
        (["--multiline-timeout", "0"], ["--multiline-timeout must be between 0.1 and 3600 seconds"]),
    ],
)
def test_bad_multiline_settings_exit_2_naming_the_problem(tmp_path, args, words):
    result = subprocess.run([str(BINARY), "serve", "--file", f"app={tmp_path / 'a.log'}", "--state-directory", "none", *args],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stderr
    for word in words:
        assert word in result.stderr, result.stderr


def test_a_journal_source_is_not_joined(tmp_path):
    result = subprocess.run([str(BINARY), "serve", "--journal-directory", f"logs={tmp_path}", "--multiline", "logs=indented",
                             "--state-directory", "none"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "'logs' is a journal source" in result.stderr, result.stderr


def test_a_last_line_without_its_newline_joins_the_record_and_goes_out_with_it(serve, tmp_path):
    # The record waits longer (2 s) than a partial line does (0.5 s): the partial line goes into the record.
    log, server, s = follow(serve, tmp_path, "--multiline-timeout", "2")
    append(log, "ERROR x\n\tat partial")
    assert messages(s.lines(1)) == ["ERROR x\n\tat partial"]
    s.close()
