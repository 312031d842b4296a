"""File following like `tail -F`: every line once, in order, with the right source events."""
import os

from conftest import append, wait_for


def follow(serve, stream, tmp_path, *extra):
    log = tmp_path / "app.log"
    if not extra or "--keep-missing" not in extra:
        log.touch()
    args = [a for a in extra if a != "--keep-missing"]
    server = serve("--file", f"app={log}", "--initial-lines", "0", *args)
    s = stream(server.ws_url)
    assert s.next()["type"] == "hello"
    return log, server, s


def read_items(s, lines_wanted):
    """Lines and source events until `lines_wanted` lines have arrived."""
    items = []
    count = 0
    while count < lines_wanted:
        obj = s.next()
        if obj["type"] == "line":
            items.append(obj["msg"])
            count += 1
        elif obj["type"] == "source":
            items.append(f"<{obj['event']}>")
    return items


def test_rename_rotation_drains_old_file_then_reads_new(serve, stream, tmp_path):
    log, server, s = follow(serve, stream, tmp_path)
    append(log, "a1\na2\n")
    assert read_items(s, 2) == ["a1", "a2"]
    # The writer still has the old file open: lines written after the rename go to it.
    with open(log, "ab") as old:
        os.rename(log, tmp_path / "app.log.1")
        old.write(b"a3\na4\n")
        old.flush()
        append(log, "b1\nb2\n")
    assert read_items(s, 4) == ["a3", "a4", "<rotated>", "b1", "b2"]
    append(log, "b3\n")
    assert read_items(s, 1) == ["b3"]


def test_copytruncate_emits_truncated_and_rereads_from_start(serve, stream, tmp_path):
    log, server, s = follow(serve, stream, tmp_path)
    append(log, "before 1\nbefore 2\n")
    assert read_items(s, 2) == ["before 1", "before 2"]
    os.truncate(log, 0)
    wait_for(lambda: server.get("/api/v1/sources")[2].count(b'"truncated":1') == 1, message="truncation seen")
    append(log, "after 1\n")
    assert read_items(s, 1) == ["<truncated>", "after 1"]


def test_delete_and_recreate(serve, stream, tmp_path):
    log, server, s = follow(serve, stream, tmp_path)
    append(log, "first\n")
    assert read_items(s, 1) == ["first"]
    os.unlink(log)
    assert s.next_of("source")["event"] == "missing"
    append(log, "second\nthird\n")
    assert read_items(s, 2) == ["<created>", "second", "third"]


def test_missing_at_start_is_waited_for(serve, stream, tmp_path):
    log = tmp_path / "late.log"
    server = serve("--file", f"late={log}")
    wait_for(lambda: server.health()["sources"]["late"] == "waiting")
    s = stream(server.ws_url)
    assert s.next()["type"] == "hello"
    append(log, "finally\n")
    assert read_items(s, 1) == ["<missing>", "<created>", "finally"], "the backlog carries the missing event of the start"
    assert server.health()["sources"]["late"] == "following"


def test_partial_line_held_then_completed(serve, stream, tmp_path):
    log, server, s = follow(serve, stream, tmp_path)
    append(log, "complete\nhalf")
    assert read_items(s, 1) == ["complete"]
    append(log, " and half\n")
    assert read_items(s, 1) == ["half and half"]


def test_partial_line_is_flushed_after_quiet_period(serve, stream, tmp_path):
    log, server, s = follow(serve, stream, tmp_path)
    append(log, "no newline yet")
    assert read_items(s, 1) == ["no newline yet"]


def test_crlf_invalid_utf8_and_long_lines(serve, stream, tmp_path):
    log, server, s = follow(serve, stream, tmp_path)
    long_line = "é" * 70_000  # 140,000 bytes: split at 64 KiB on character boundaries
    append(log, b"windows\r\n" + b"bad \xff\xfe bytes\n" + long_line.encode() + b"\n")
    got = s.lines(2 + 3)
    assert got[0]["msg"] == "windows"
    assert got[1]["msg"] == "bad \ufffd\ufffd bytes"
    pieces = [l["msg"] for l in got[2:]]
    assert all(len(p.encode()) <= 64 * 1024 for p in pieces)
    assert "".join(pieces) == long_line


def test_glob_follows_existing_and_new_files_with_paths(serve, stream, tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    append(logs / "a.log", "from a\n")
    (logs / "ignored.txt").write_text("not matched\n")
    server = serve("--file", f"web={logs}/*.log")
    s = stream(server.ws_url)
    assert s.next()["type"] == "hello"
    first = s.lines(1)[0]
    assert (first["msg"], first["path"], first["source"]) == ("from a", str(logs / "a.log"), "web")
    append(logs / "b.log", "from b\n")
    event = s.next_of("source")
    assert (event["event"], event["path"]) == ("created", str(logs / "b.log"))
    line = s.lines(1)[0]
    assert (line["msg"], line["path"]) == ("from b", str(logs / "b.log"))
    append(logs / "ignored.txt", "still not matched\n")
    append(logs / "a.log", "a again\n")
    assert s.lines(1)[0]["msg"] == "a again"


def test_initial_lines_loads_the_tail_of_existing_files(serve, stream, tmp_path):
    log = tmp_path / "app.log"
    append(log, "".join(f"old {i}\n" for i in range(100)))
    server = serve("--file", f"app={log}", "--initial-lines", "3")
    s = stream(server.ws_url + "?backlog=50")
    assert s.next()["type"] == "hello"
    assert [l["msg"] for l in s.until_barrier() if l["type"] == "line"] == ["old 97", "old 98", "old 99"]
