"""Context lines (grep -C, live), checked against grep itself on the same file."""
import json
import os
import subprocess
import urllib.parse

import pytest

from conftest import BINARY, DEADLINE, Server, Stream, append, wait_for
from test_doors import parse_sse, read_sse, run_tail


def write_lines(path, count, start=0, every=13, word="ERROR"):
    """Lines `ok N`, with `ERROR N` at irregular places (runs of matches, lone ones, long quiet stretches)."""
    lines = []
    for i in range(start, start + count):
        hit = i % every == 0 or i % 37 == 1 or i % 37 == 2
        lines.append(f"{word if hit else 'ok'} {i}")
    append(path, "".join(line + "\n" for line in lines))
    return lines


def grep(path, before, after, pattern="ERROR"):
    """What grep prints for the file: its lines and `--` separators."""
    result = subprocess.run(["grep", "-B", str(before), "-A", str(after), pattern, str(path)], capture_output=True, text=True)
    return result.stdout.splitlines()


def grep_context_flags(path, before, after, pattern="ERROR"):
    """For each line grep prints (not separators): whether it is context (`N-`) or a match (`N:`)."""
    result = subprocess.run(["grep", "-n", "-B", str(before), "-A", str(after), pattern, str(path)], capture_output=True, text=True)
    flags = []
    for line in result.stdout.splitlines():
        if line == "--":
            continue
        number = len(line) - len(line.lstrip("0123456789"))
        flags.append(line[number] == "-")
    return flags


def rendered(objects):
    """Stream objects as grep prints them: a line's message, `--` for a separator."""
    out = []
    for o in objects:
        if o["type"] == "line":
            out.append(o["msg"])
        elif o["type"] == "separator":
            out.append("--")
    return out


def flags(objects):
    return [o.get("context", False) for o in objects if o["type"] == "line"]


WINDOWS = [(2, 2), (0, 3), (3, 0), (1, 5)]


@pytest.mark.parametrize("before, after", WINDOWS)
def test_every_transport_sends_what_grep_prints_for_the_file(serve, tmp_path, before, after):
    log = tmp_path / "app.log"
    write_lines(log, 300)
    server = serve("--file", f"app={log}", "--initial-lines", "1000")
    wait_for(lambda: server.health()["last_seq"] == 300, message="the file read")
    expected, expected_flags = grep(log, before, after), grep_context_flags(log, before, after)
    assert expected.count("--") > 3 and any(expected_flags) and not all(expected_flags)
    query = f"grep=ERROR&before-context={before}&after-context={after}&backlog=1000"

    status, _, body = server.get(f"/api/v1/lines?{query}")
    objects = [json.loads(line) for line in body.decode().splitlines()]
    assert status == 200 and rendered(objects) == expected and flags(objects) == expected_flags
    assert all(o["type"] in ("line", "separator") for o in objects)
    assert [o for o in objects if o["type"] == "separator"] == [{"type": "separator"}] * expected.count("--")
    _, _, text = server.get(f"/api/v1/lines?{query}&format=text")
    assert text.decode().splitlines() == expected

    s = Stream(f"{server.ws_url}?{query}")
    hello = s.next()
    assert hello["filter"] == {"grep": ["ERROR"], **({"before-context": before} if before else {}), **({"after-context": after} if after else {})}
    got = s.until_barrier()
    assert rendered(got) == expected and flags(got) == expected_flags
    s.close()
    s = Stream(f"{server.ws_url}?{query}&format=text")
    text_frames = []
    while len(text_frames) < len(expected):
        text_frames.extend(s.ws.recv(timeout=DEADLINE).splitlines())
    assert text_frames == expected
    s.close()

    for fmt in ("json", "text"):
        _, sse = read_sse(server.port, f"/sse?{query}&format={fmt}",
                          lambda t: len([e for e in parse_sse(t)[0] if e.get("event") in (None, "separator")]) >= len(expected))
        events = [e for e in parse_sse(sse)[0] if e.get("event") in (None, "separator")]
        if fmt == "json":
            objects = [json.loads(e["data"]) for e in events]
            assert rendered(objects) == expected and flags(objects) == expected_flags
            assert all("id" in e for e in events if e.get("event") is None), "context lines have ids: a reconnect resumes after them"
        else:
            assert [e["data"] for e in events] == expected

    tail = run_tail(f"ws://127.0.0.1:{server.port}", "--no-follow", "-n", "1000", "-F", "ERROR", "-B", str(before), "-A", str(after), "-o", "cat")
    assert tail.returncode == 0 and tail.stdout.splitlines() == expected, tail.stderr


def test_live_context_comes_from_each_file_alone_and_after_context_follows_later_writes(serve, tmp_path):
    logs = {name: tmp_path / f"{name}.log" for name in ("a", "b")}
    for log in logs.values():
        log.touch()
    server = serve("--file", f"a={logs['a']}", "--file", f"b={logs['b']}", "--initial-lines", "0")
    s = Stream(f"{server.ws_url}?grep=ERROR&context=2&backlog=0")
    s.next()
    # The files' lines interleave; each write is a few lines, so after-context arrives in later writes.
    for round in range(40):
        for offset, (name, log) in enumerate(logs.items()):
            write_lines(log, 3, start=round * 3, every=5 + offset * 3)
    total = 40 * 3 * 2
    wait_for(lambda: server.health()["last_seq"] == total, message="every line read")
    got = s.until_barrier()
    for name, log in logs.items():
        mine = [o for o in got if o["type"] == "line" and o["source"] == name]
        expected = [line for line in grep(log, 2, 2) if line != "--"]
        assert [o["msg"] for o in mine] == expected, f"{name}: grep -C2 of its own file"
        assert [o.get("context", False) for o in mine] == grep_context_flags(log, 2, 2)
    assert rendered(got).count("--") == sum(grep(log, 2, 2).count("--") for log in logs.values())
    seqs = [o["seq"] for o in got if o["type"] == "line"]
    assert len(seqs) == len(set(seqs)), "no line twice"
    s.close()


def test_a_rotation_ends_the_files_context(serve, tmp_path):
    log = tmp_path / "app.log"
    append(log, "old 1\nold 2\nold 3\n")
    server = serve("--file", f"app={log}", "--initial-lines", "10")
    s = Stream(f"{server.ws_url}?grep=ERROR&before-context=5&after-context=1&backlog=0")
    s.next()
    wait_for(lambda: server.health()["last_seq"] == 3, message="the old lines")
    os.rename(log, tmp_path / "app.log.1")
    append(log, "new 1\nERROR new\nnew 2\nnew 3\n")
    objects = []
    while len([o for o in objects if o["type"] == "line"]) < 3:
        objects.append(s.next())
    assert [o["event"] for o in objects if o["type"] == "source"] == ["rotated"]
    assert [(o["msg"], o.get("context", False)) for o in objects if o["type"] == "line"] == [
        ("new 1", True), ("ERROR new", False), ("new 2", True)
    ], "nothing of the rotated file is context for the new one"
    s.close()


def test_a_resume_goes_on_as_the_unbroken_stream_does(serve, tmp_path):
    log = tmp_path / "app.log"
    log.touch()
    server = serve("--file", f"app={log}", "--initial-lines", "0")
    query = "grep=ERROR&before-context=3&after-context=2&backlog=0"
    unbroken = Stream(f"{server.ws_url}?{query}")
    broken = Stream(f"{server.ws_url}?{query}")
    epoch = unbroken.next()["epoch"]
    broken.next()
    received = []
    written = 0
    for part in range(6):
        written += len(write_lines(log, 50, start=part * 50))
        wait_for(lambda: server.health()["last_seq"] == written, message="the part read")
        received += [o for o in broken.until_barrier() if o["type"] != "error"]
        broken.close()
        # Lines written while it is away.
        written += len(write_lines(log, 17, start=1000 + part * 17))
        wait_for(lambda: server.health()["last_seq"] == written, message="the lines while away")
        last = max(o["seq"] for o in received if o["type"] == "line")
        broken = Stream(f"{server.ws_url}?{query}&after={last}&epoch={epoch}")
        assert broken.next()["type"] == "hello"
    received += [o for o in broken.until_barrier() if o["type"] != "error"]
    whole = unbroken.until_barrier()
    assert [(o["seq"], o.get("context", False)) for o in received if o["type"] == "line"] == [
        (o["seq"], o.get("context", False)) for o in whole if o["type"] == "line"
    ], "every line once, in the same order, as context where it was"
    assert len([o for o in whole if o["type"] == "line"]) > 100
    for s in (broken, unbroken):
        s.close()


def test_a_subscribe_message_takes_context_and_a_bad_one_changes_nothing(serve, tmp_path):
    log = tmp_path / "app.log"
    log.touch()
    server = serve("--file", f"app={log}", "--initial-lines", "0")
    s = Stream(server.ws_url)
    s.next()
    s.send({"type": "subscribe", "filter": {"grep": ["ERROR"], "context": 1, "after-context": 0}, "backlog": 0})
    assert s.next_of("subscribed")["filter"] == {"grep": ["ERROR"], "before-context": 1}
    for bad, words in [({"context": 101}, "context '101' is not a number of lines from 0 to 100"),
                       ({"after-context": "x"}, "after-context 'x' is not a number of lines from 0 to 100"),
                       ({"around": 5}, "around reads once")]:
        s.send({"type": "subscribe", "filter": bad})
        assert words in s.next_of("error")["error"]
    append(log, "a\nb\nERROR c\nd\n")
    assert [(o["msg"], o.get("context", False)) for o in s.lines(2)] == [("b", True), ("ERROR c", False)]
    s.close()


ROUTES = ["/ws", "/sse", "/api/v1/lines"]
BAD_NUMBERS = ["101", "-1", "three", "1.5", "+2", "1e2", "99999999999999999999"]


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("key", ["context", "before-context", "after-context"])
def test_a_bad_context_value_is_refused_before_the_stream_naming_the_key(serve, tmp_path, route, key):
    log = tmp_path / "app.log"
    log.touch()
    server = serve("--file", f"app={log}")
    for bad in BAD_NUMBERS:
        target = f"{route}?{key}={urllib.parse.quote(bad)}"
        status, _, body = server.upgrade(target) if route == "/ws" else server.get(target)
        refusal = json.loads(body)
        assert status == 400 and refusal["error"] == f"{key} '{bad}' is not a number of lines from 0 to 100", (target, refusal)
        assert refusal["hint"].startswith(f"e.g. {key}=3")
    status, _, body = server.get(f"{route}?{key}=1&{key}=2") if route != "/ws" else server.upgrade(f"{route}?{key}=1&{key}=2")
    assert status == 400 and json.loads(body)["error"] == f"{key} given more than once"
    assert server.health()["status"] == "ok"


def test_around_shows_the_lines_of_a_lines_file_around_it(serve, tmp_path):
    logs = {name: tmp_path / f"{name}.log" for name in ("a", "b")}
    for name, log in logs.items():
        append(log, "".join(f"{name} {i}\n" for i in range(40)))
    server = serve("--file", f"a={logs['a']}", "--file", f"b={logs['b']}", "--initial-lines", "100")
    wait_for(lambda: server.health()["last_seq"] == 80, message="both files")
    _, _, body = server.get("/api/v1/lines?backlog=80")
    by_msg = {o["msg"]: o["seq"] for o in map(json.loads, body.decode().splitlines()) if o["type"] == "line"}
    seq = by_msg["a 20"]
    status, headers, body = server.get(f"/api/v1/lines?around={seq}&context=3")
    objects = [json.loads(line) for line in body.decode().splitlines()]
    assert status == 200 and headers["Logcast-Epoch"] == server.health()["epoch"]
    assert [(o["msg"], o.get("context", False)) for o in objects] == [
        ("a 17", True), ("a 18", True), ("a 19", True), ("a 20", False), ("a 21", True), ("a 22", True), ("a 23", True)
    ]
    _, _, text = server.get(f"/api/v1/lines?around={by_msg['b 0']}&before-context=5&after-context=1&format=text")
    assert text.decode().splitlines() == ["b 0", "b 1"], "the file's first line has nothing before it"
    _, _, body = server.get(f"/api/v1/lines?around={by_msg['b 39']}")
    assert [json.loads(l)["msg"] for l in body.decode().splitlines()] == [f"b {i}" for i in range(29, 40)], "10 either side by default"

    status, _, body = server.get("/api/v1/lines?around=81")
    assert status == 404 and json.loads(body) == {"error": "no line has seq 81 yet", "hint": "the newest line is 80"}
    for bad in ["0", "-3", "x", "1.5", "", "+4", "99999999999999999999999"]:
        status, _, body = server.get(f"/api/v1/lines?around={urllib.parse.quote(bad)}")
        assert status == 400 and json.loads(body)["error"] == f"bad around '{bad}'", bad
    for key, value in [("after", "3"), ("epoch", "ab"), ("backlog", "5"), ("since", "-1h"), ("until", "-1h"), ("grep", "x"),
                       ("regex", "x"), ("exclude", "x"), ("priority", "err"), ("limit", "5")]:
        status, _, body = server.get(f"/api/v1/lines?around={seq}&{key}={value}")
        assert status == 400 and json.loads(body)["error"] == f"around reads the lines around one line; {key} does not go with it"
    for route in ("/sse", "/ws"):
        status, _, body = server.get(f"{route}?around={seq}") if route == "/sse" else server.upgrade(f"{route}?around={seq}")
        assert status == 400 and json.loads(body)["error"].startswith("around reads once")


def test_around_a_line_no_longer_held_is_404(tmp_path):
    log = tmp_path / "app.log"
    append(log, "".join(f"line {i}\n" for i in range(30)))
    server = Server(["--file", f"app={log}", "--initial-lines", "100", "--history", "10", "--state-directory", "none"]).start()
    try:
        wait_for(lambda: server.health()["last_seq"] == 30, message="the file")
        status, _, body = server.get("/api/v1/lines?around=3")
        assert status == 404 and json.loads(body) == {"error": "line 3 is no longer held", "hint": "the oldest line held is 21"}
        status, _, body = server.get("/api/v1/lines?around=25&context=2&format=text")
        assert status == 200 and body.decode().splitlines() == [f"line {i}" for i in range(22, 27)]
    finally:
        server.stop()


def test_with_context_priority_chooses_the_matches_and_context_is_any_level(serve, tmp_path):
    log = tmp_path / "app.log"
    append(log, "INFO starting\nINFO listening\nERROR disk full\nINFO retrying\nDEBUG tick\nDEBUG tock\nERROR gave up\n")
    server = serve("--file", f"app={log}", "--initial-lines", "100")
    wait_for(lambda: server.health()["last_seq"] == 7, message="the file")
    _, _, body = server.get("/api/v1/lines?priority=err&context=1&backlog=10&format=text")
    assert body.decode().splitlines() == ["INFO listening", "ERROR disk full", "INFO retrying", "--", "DEBUG tock", "ERROR gave up"]
    _, _, plain = server.get("/api/v1/lines?priority=err&backlog=10&format=text")
    assert plain.decode().splitlines() == ["ERROR disk full", "ERROR gave up"]


def test_tail_refuses_context_out_of_range(serve, tmp_path):
    for flag in ("-C", "-A", "-B"):
        result = subprocess.run([str(BINARY), "tail", "ws://127.0.0.1:9", flag, "101"], capture_output=True, text=True, timeout=DEADLINE)
        assert result.returncode == 2 and "must be a number of lines from 0 to 100 (got 101)" in result.stderr, result.stderr
