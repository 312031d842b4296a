"""File following like `tail -F`: every line once, in order, with the right source events.

Most tests run twice: with the poll at its default (every file checked once
a second) and with it at an hour, so that what they check is done on the
directory's inotify events alone and not found later by the poll.
"""
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


def test_rename_rotation_drains_old_file_then_reads_new(serve, stream, tmp_path, polling):
    log, server, s = follow(serve, stream, tmp_path, *polling)
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


def test_copytruncate_emits_truncated_and_rereads_from_start(serve, stream, tmp_path, polling):
    log, server, s = follow(serve, stream, tmp_path, *polling)
    append(log, "before 1\nbefore 2\n")
    assert read_items(s, 2) == ["before 1", "before 2"]
    os.truncate(log, 0)
    wait_for(lambda: server.get("/api/v1/sources")[2].count(b'"truncated":1') == 1, message="truncation seen")
    append(log, "after 1\n")
    assert read_items(s, 1) == ["<truncated>", "after 1"]


def test_delete_and_recreate(serve, stream, tmp_path, polling):
    log, server, s = follow(serve, stream, tmp_path, *polling)
    append(log, "first\n")
    assert read_items(s, 1) == ["first"]
    os.unlink(log)
    assert s.next_of("source")["event"] == "missing"
    append(log, "second\nthird\n")
    assert read_items(s, 2) == ["<created>", "second", "third"]


def test_missing_at_start_is_waited_for(serve, stream, tmp_path, polling):
    log = tmp_path / "late.log"
    server = serve("--file", f"late={log}", *polling)
    wait_for(lambda: server.health()["sources"]["late"] == "waiting")
    s = stream(server.ws_url)
    assert s.next()["type"] == "hello"
    append(log, "finally\n")
    assert read_items(s, 1) == ["<missing>", "<created>", "finally"], "the backlog carries the missing event of the start"
    assert server.health()["sources"]["late"] == "following"


def test_partial_line_held_then_completed(serve, stream, tmp_path, polling):
    log, server, s = follow(serve, stream, tmp_path, *polling)
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


def test_glob_follows_existing_and_new_files_with_paths(serve, stream, tmp_path, polling):
    logs = tmp_path / "logs"
    logs.mkdir()
    append(logs / "a.log", "from a\n")
    (logs / "ignored.txt").write_text("not matched\n")
    server = serve("--file", f"web={logs}/*.log", *polling)
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


def test_a_file_renamed_away_and_still_written_is_read_before_its_successor(serve, stream, tmp_path, polling):
    """A program that keeps writing to its renamed file until it reopens
    (the new file not there yet): those writes carry the new name, and are
    read as they come, then the successor from its start."""
    log, server, s = follow(serve, stream, tmp_path, *polling)
    append(log, "a1\n")
    assert read_items(s, 1) == ["a1"]
    with open(log, "ab") as old:
        os.rename(log, tmp_path / "app.log.1")
        for i in range(2, 5):
            old.write(f"a{i}\n".encode())
            old.flush()
            assert read_items(s, 1) == [f"a{i}"], "a write to the renamed file, before any successor"
    append(log, "b1\n")
    assert read_items(s, 1) == ["<rotated>", "b1"]


def test_a_symbolic_link_in_the_same_directory_follows_its_targets_writes(serve, stream, tmp_path, polling):
    """Writes to a link's target carry the target's name; re-pointing the
    link (`ln -sfn`: a new link renamed over it) is a rotation. Each step
    comes after a file created in the directory, which checks every path in
    full and so decides anew whether the path is a link."""
    (tmp_path / "app-1.log").touch()
    link = tmp_path / "app.log"
    os.symlink("app-1.log", link)
    server = serve("--file", f"app={link}", "--initial-lines", "0", *polling)
    s = stream(server.ws_url)
    assert s.next()["type"] == "hello"
    (tmp_path / "unrelated-1").touch()
    append(tmp_path / "app-1.log", "one\n")
    assert read_items(s, 1) == ["one"]
    append(tmp_path / "app-1.log", "two\n")
    assert read_items(s, 1) == ["two"]
    append(tmp_path / "app-2.log", "")
    os.symlink("app-2.log", tmp_path / "app.log.tmp")
    os.rename(tmp_path / "app.log.tmp", link)
    append(tmp_path / "app-2.log", "three\n")
    assert read_items(s, 1) == ["<rotated>", "three"]
    (tmp_path / "unrelated-2").touch()
    append(tmp_path / "app-1.log", "not followed any more\n")
    append(tmp_path / "app-2.log", "four\n")
    assert read_items(s, 1) == ["four"]
    append(tmp_path / "app-2.log", "five\n")
    assert read_items(s, 1) == ["five"]


def test_writes_to_other_files_of_the_directory_are_not_lines(serve, stream, tmp_path, polling):
    """A busy neighbour in the same directory, between writes to the
    followed file: exactly the followed file's lines arrive, in order."""
    log, server, s = follow(serve, stream, tmp_path, *polling)
    neighbour = tmp_path / "other.log"
    with open(neighbour, "ab") as other:
        for i in range(200):
            other.write(b"neighbour line\n")
            other.flush()
            if i % 20 == 0:
                append(log, f"mine {i // 20}\n")
    assert read_items(s, 10) == [f"mine {i}" for i in range(10)]
    append(log, "last\n")
    assert read_items(s, 1) == ["last"]


def test_a_write_through_another_name_is_found_by_the_poll(serve, stream, tmp_path):
    """A hard link names the same file: its writes carry the other name, and
    the poll (once a second, by default) reads them."""
    log, server, s = follow(serve, stream, tmp_path)
    os.link(log, tmp_path / "alias.log")
    append(tmp_path / "alias.log", "through the alias\n")
    assert read_items(s, 1) == ["through the alias"]
    append(log, "through the name\n")
    assert read_items(s, 1) == ["through the name"]


def test_a_large_glob_reads_each_member_it_is_written_to_and_times_out_their_partial_lines(serve, stream, tmp_path, polling):
    """Thirty members, written in turn: a write reads the member it names
    (without checking the other twenty-nine), each line arrives once, in its
    member's order and with its path, and a partial line left in one member
    while others are written is still sent after its quiet period."""
    logs = tmp_path / "logs"
    logs.mkdir()
    members = [logs / f"m{i:02d}.log" for i in range(30)]
    for member in members:
        member.touch()
    server = serve("--file", f"web={logs}/*.log", "--initial-lines", "0", *polling)
    s = stream(server.ws_url + "?backlog=0")
    assert s.next()["type"] == "hello"
    append(members[7], "no newline in m07")
    expected = []
    for round in range(3):
        for i in (3, 17, 29, 0, 12):
            append(members[i], f"round {round} m{i:02d}\n")
            expected.append((f"round {round} m{i:02d}", str(members[i])))
    got = []
    while len(got) < len(expected) + 1:
        line = s.lines(1)[0]
        got.append((line["msg"], line["path"]))
    partial = ("no newline in m07", str(members[7]))
    assert partial in got, "the partial line of a member not written since is sent after its quiet period"
    got.remove(partial)
    # Each member's lines in its order; members read in one wake-up come in
    # path order, not in the order of the writes across files.
    for member in members:
        assert [m for m, p in got if p == str(member)] == [m for m, p in expected if p == str(member)]
    assert sorted(got) == sorted(expected)
    append(members[7], "m07 again\n")
    assert s.lines(1)[0]["msg"] == "m07 again"
