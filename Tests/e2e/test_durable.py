"""A restart loses nothing: the state directory keeps the history, the epoch
and the sources' positions (real binary, real files, real signals)."""
import json
import os
import shutil
import signal
import subprocess
import threading
import time

import pytest

from conftest import BINARY, DEADLINE, Server, Stream, append, wait_for


class Writer(threading.Thread):
    """Appends numbered lines to a file until stopped, a few per millisecond."""

    def __init__(self, path, prefix="w"):
        super().__init__(daemon=True)
        self.path = path
        self.prefix = prefix
        self.count = 0
        self.running = True

    def run(self):
        while self.running:
            with open(self.path, "a") as f:
                for _ in range(5):
                    f.write(f"{self.prefix} {self.count}\n")
                    self.count += 1
            time.sleep(0.002)

    def stop(self):
        self.running = False
        self.join()
        return [f"{self.prefix} {i}" for i in range(self.count)]


def collect(url, want, seen, timeout=DEADLINE):
    """Reads a stream until `want` lines are in `seen` (dicts of the objects); returns every other object."""
    stream = Stream(url)
    others = []
    try:
        hello = stream.next()
        assert hello["type"] == "hello"
        end = time.monotonic() + timeout
        while len(seen) < want:
            obj = stream.next(max(0.01, end - time.monotonic()))
            if obj["type"] == "line":
                seen.append(obj)
            else:
                others.append(obj)
    finally:
        stream.close()
    return hello, others


@pytest.mark.parametrize("stop_signal", [signal.SIGKILL, signal.SIGTERM])
def test_a_client_resumes_across_a_restart_with_every_line_exactly_once(tmp_path, stop_signal):
    log = tmp_path / "app.log"
    log.touch()
    state = tmp_path / "state"
    args = ["--file", f"app={log}", "--initial-lines", "0", "--state-directory", str(state)]
    writer = Writer(log)
    first = Server(args).start()
    seen = []
    try:
        stream = Stream(first.ws_url)
        epoch = stream.next()["epoch"]
        writer.start()
        while len(seen) < 200:
            obj = stream.next()
            if obj["type"] == "line":
                seen.append(obj)
        first.stop(stop_signal)
    finally:
        first.stop()
    time.sleep(0)  # the writer goes on while logcast is down
    wait_for(lambda: writer.count > len(seen) + 500, message="lines written while logcast is down")
    second = Server(args).start()
    try:
        lines = writer.stop()
        last = seen[-1]["seq"]
        hello, others = collect(f"{second.ws_url}?after={last}&epoch={epoch}", len(lines), seen)
        assert hello["epoch"] == epoch, "the epoch survives the restart"
        assert [o for o in others if o["type"] == "gap"] == [], "no gap"
        assert [l["msg"] for l in seen] == lines, "every line, once, in order"
        assert [l["seq"] for l in seen] == list(range(seen[0]["seq"], seen[0]["seq"] + len(lines))), "seq continues"
    finally:
        writer.running = False
        second.stop()


def test_lines_rotated_away_while_down_are_read_from_the_old_file(tmp_path):
    log = tmp_path / "app.log"
    append(log, "before 0\nbefore 1\n")
    state = tmp_path / "state"
    args = ["--file", f"app={log}", "--initial-lines", "10", "--state-directory", str(state)]
    first = Server(args).start()
    try:
        wait_for(lambda: first.health()["last_seq"] == 2, message="the first lines")
        epoch = first.health()["epoch"]
    finally:
        first.stop(signal.SIGKILL)
    append(log, "down 0\ndown 1\n")
    os.rename(log, tmp_path / "app.log.1")
    append(log, "new 0\nnew 1\n")
    second = Server(args).start()
    try:
        seen = []
        hello, others = collect(f"{second.ws_url}?after=2&epoch={epoch}", 4, seen)
        assert [l["msg"] for l in seen] == ["down 0", "down 1", "new 0", "new 1"]
        assert [l["seq"] for l in seen] == [3, 4, 5, 6]
        assert not [o for o in others if o["type"] == "gap"]
        assert [(o["type"], o.get("event")) for o in others] == [("source", "rotated")], "the rotation while down is told in place"
    finally:
        second.stop()


@pytest.mark.parametrize("after", [["after 0"], [f"after {i} " + "x" * 60 for i in range(10)]], ids=["shorter", "longer"])
def test_a_file_truncated_while_down_is_read_from_its_start(tmp_path, after):
    log = tmp_path / "app.log"
    append(log, "old line that is long enough 0\nold line that is long enough 1\n")
    state = tmp_path / "state"
    args = ["--file", f"app={log}", "--initial-lines", "10", "--state-directory", str(state)]
    first = Server(args).start()
    try:
        wait_for(lambda: first.health()["last_seq"] == 2, message="the first lines")
    finally:
        first.stop()
    # copytruncate while down: the same file (inode), emptied, then written again.
    shutil.copy(log, tmp_path / "app.log.1")
    with open(log, "r+") as f:
        f.truncate(0)
    append(log, "".join(line + "\n" for line in after))
    second = Server(args).start()
    try:
        stream = Stream(f"{second.ws_url}?backlog=20")
        stream.next()
        got = [stream.next() for _ in range(3 + len(after))]
        assert [o.get("msg", o.get("event")) for o in got] == [
            "old line that is long enough 0",
            "old line that is long enough 1",
            "truncated",
        ] + after, "shorter than before or not, the truncated event is kept in place, so a later reader sees it too"
    finally:
        second.stop()


def test_memory_evicted_lines_come_from_the_state_directory(serve, stream, tmp_path):
    log = tmp_path / "app.log"
    log.touch()
    server = serve("--file", f"app={log}", "--initial-lines", "0", "--history", "5")
    s = stream(server.ws_url)
    epoch = s.next()["epoch"]
    append(log, "".join(f"n{i}\n" for i in range(1, 21)))
    assert s.lines(20)[-1]["seq"] == 20
    r = stream(f"{server.ws_url}?after=2&epoch={epoch}")
    assert r.next()["type"] == "hello"
    items = r.until_barrier()
    assert [o["type"] for o in items] == ["line"] * 18, "no evicted gap: the stored history reaches back"
    assert [o["msg"] for o in items] == [f"n{i}" for i in range(3, 21)]


def test_a_torn_last_record_is_cut_and_the_rest_served(tmp_path):
    log = tmp_path / "app.log"
    append(log, "".join(f"l{i}\n" for i in range(10)))
    state = tmp_path / "state"
    args = ["--file", f"app={log}", "--initial-lines", "10", "--state-directory", str(state)]
    first = Server(args).start()
    try:
        wait_for(lambda: first.health()["last_seq"] == 10, message="the lines")
    finally:
        first.stop(signal.SIGKILL)
    segment = sorted((state / "history").iterdir())[-1]
    with open(segment, "r+b") as f:
        f.truncate(segment.stat().st_size - 7)  # tear the last record
    second = Server(args).start()
    try:
        assert any("torn record" in line for line in second.stderr_lines)
        r = Stream(f"{second.ws_url}?backlog=20")
        r.next()
        msgs = [o["msg"] for o in r.until_barrier() if o["type"] == "line"]
        assert msgs[:8] == [f"l{i}" for i in range(8)], msgs
        append(log, "more\n")
        wait_for(lambda: second.health()["last_seq"] >= 10, message="lines after the cut")
    finally:
        second.stop()


def test_reset_state_starts_a_new_epoch(tmp_path):
    log = tmp_path / "app.log"
    append(log, "x\n")
    state = tmp_path / "state"
    args = ["--file", f"app={log}", "--state-directory", str(state)]
    first = Server(args).start()
    epoch = first.health()["epoch"]
    first.stop()
    again = Server(args).start()
    assert again.health()["epoch"] == epoch
    again.stop()
    reset = Server([*args, "--reset-state"]).start()
    try:
        assert reset.health()["epoch"] != epoch
    finally:
        reset.stop()


def run_serve(*args, env=None):
    return subprocess.run([str(BINARY), "serve", "--listen", "127.0.0.1:0", *args], capture_output=True, text=True,
                          timeout=DEADLINE, env={**os.environ, **(env or {})})


def test_state_directory_problems_exit_2_and_say_what_to_do(tmp_path):
    log = tmp_path / "app.log"
    log.touch()
    a_file = tmp_path / "plain-file"
    a_file.write_text("")
    newer = tmp_path / "newer"
    newer.mkdir()
    (newer / "VERSION").write_text("99\n")
    locked = tmp_path / "locked"
    holder = Server(["--file", f"app={log}", "--state-directory", str(locked)]).start()
    try:
        cases = [
            (a_file, "is not a directory"),
            (newer, "newer logcast (format 99"),
            (locked, "in use by another logcast (pid"),
        ]
        for path, words in cases:
            result = run_serve("--file", f"app={log}", "--state-directory", str(path))
            assert result.returncode == 2, (path, result.stderr)
            assert words in result.stderr and str(path) in result.stderr, result.stderr
        # --check-config says the same of each, without taking, creating or writing anything.
        for path, words in cases[:2]:
            result = run_serve("--check-config", "--file", f"app={log}", "--state-directory", str(path))
            assert result.returncode == 2 and words in result.stderr and "--state-directory" in result.stderr, result.stderr
        result = run_serve("--check-config", "--file", f"app={log}", "--state-directory", str(locked))
        assert result.returncode == 0, result.stderr
        assert f"# state directory: {locked}, epoch {holder.health()['epoch']}" in result.stdout
        assert f"in use by pid {holder.proc.pid}" in result.stdout
        fresh = tmp_path / "fresh" / "state"
        result = run_serve("--check-config", "--file", f"app={log}", "--state-directory", str(fresh))
        assert result.returncode == 0 and "does not exist yet; it will be created" in result.stdout, result.stdout
        assert not (tmp_path / "fresh").exists(), "a check creates nothing"
        if os.geteuid() == 0:
            # A directory logcast's user may not write (as another user: root ignores the mode).
            import tempfile
            unwritable = tempfile.mkdtemp(prefix="logcast-unwritable-")  # in /tmp, which anyone may enter
            os.chmod(unwritable, 0o555)
            result = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", str(BINARY), "serve",
                                     "--listen", "127.0.0.1:0", "--file", "app=/dev/null/x", "--state-directory", str(unwritable)],
                                    capture_output=True, text=True, timeout=DEADLINE)
            assert result.returncode == 2 and "is not writable" in result.stderr and unwritable in result.stderr, result.stderr
            os.rmdir(unwritable)
    finally:
        holder.stop()


def test_the_default_state_directory_is_the_xdg_one_and_none_turns_it_off(tmp_path):
    log = tmp_path / "app.log"
    log.touch()
    out = subprocess.run([str(BINARY), "serve", "--check-config", "--file", str(log)], capture_output=True, text=True,
                         env={**os.environ, "XDG_STATE_HOME": str(tmp_path / "xdg")}, timeout=DEADLINE)
    assert f'state-directory: "{tmp_path}/xdg/logcast"' in out.stdout
    out = subprocess.run([str(BINARY), "serve", "--check-config", "--file", str(log)], capture_output=True, text=True,
                         env={**os.environ, "STATE_DIRECTORY": "/var/lib/logcast"}, timeout=DEADLINE)
    assert 'state-directory: "/var/lib/logcast"' in out.stdout
    server = Server(["--file", f"app={log}", "--state-directory", "none"], cwd=tmp_path).start()
    server.stop()
    assert not (tmp_path / "xdg").exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root (CI runs as root)")
def test_a_full_disk_degrades_to_memory_and_writing_resumes(tmp_path):
    mount = tmp_path / "small"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], check=True)
    try:
        log = tmp_path / "app.log"
        log.touch()
        state = mount / "state"
        server = Server(["--file", f"app={log}", "--initial-lines", "0", "--state-directory", str(state)]).start()
        try:
            stream = Stream(server.ws_url)
            stream.next()
            # Fill the disk: a file takes what the history has not.
            filler = mount / "filler"
            subprocess.run(["dd", "if=/dev/zero", f"of={filler}", "bs=4k", "count=1000"], capture_output=True)
            append(log, "".join(f"full {i} {'x' * 200}\n" for i in range(200)))
            got = [line["msg"].split(" ")[1] for line in stream.lines(200)]
            assert got == [str(i) for i in range(200)], "everything is still streamed, from memory"
            wait_for(lambda: server.health()["status"] == "degraded", message="/healthz to say degraded")
            assert "cannot write the history" in server.health()["degraded"][0]
            metrics = server.get("/metrics")[2].decode()
            errors = [line for line in metrics.splitlines() if line.startswith("logcast_history_write_errors_total ")]
            assert errors and float(errors[0].split()[1]) >= 1, metrics[-1500:]
            filler.unlink()
            append(log, "room again\n")
            assert stream.lines(1)[0]["msg"] == "room again"
            wait_for(lambda: server.health()["status"] == "ok", message="writing to resume")
            epoch = server.health()["epoch"]
        finally:
            server.stop()
        # After a restart the lines the full disk kept out are a hole in the history: a resume across it
        # gets an evicted gap for exactly those seqs, not a silent skip.
        server = Server(["--file", f"app={log}", "--initial-lines", "0", "--state-directory", str(state)]).start()
        try:
            stream = Stream(f"{server.ws_url}?after=0&epoch={epoch}")
            stream.next()
            objects = stream.until_barrier()
            lines = [o["seq"] for o in objects if o["type"] == "line"]
            gaps = [o for o in objects if o["type"] == "gap"]
            assert lines[-1] == 201 and len(lines) < 201, "some lines were not stored"
            missing = sorted(set(range(1, 202)) - set(lines))
            assert sum(g["missed"] for g in gaps) == len(missing), (gaps, missing)
            assert all(g["reason"] == "evicted" for g in gaps)
            for gap in gaps:
                assert list(range(gap["after"] + 1, gap["next"])) == [s for s in missing if gap["after"] < s < gap["next"]]
        finally:
            server.stop()
    finally:
        subprocess.run(["umount", "-l", str(mount)])


def utc_now():
    from datetime import datetime, timezone
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def test_since_and_until_read_a_time_range_from_disk_and_memory(serve, tmp_path):
    import json
    import urllib.parse
    log = tmp_path / "app.log"
    log.touch()
    # Memory holds 2 lines: the rest of every range comes from the state directory.
    server = serve("--file", f"app={log}", "--initial-lines", "0", "--history", "2")
    t0 = utc_now()
    append(log, "a 0\na 1\na 2\n")
    wait_for(lambda: server.health()["last_seq"] == 3, message="the first lines")
    t1 = utc_now()
    append(log, "b 0\nb 1\nb 2\n")
    wait_for(lambda: server.health()["last_seq"] == 6, message="the next lines")
    t2 = utc_now()

    def read(query):
        status, headers, body = server.get("/api/v1/lines?" + urllib.parse.urlencode(query))
        assert status == 200, body
        return [json.loads(line)["msg"] for line in body.decode().splitlines() if json.loads(line)["type"] == "line"]

    assert read({"since": t0}) == ["a 0", "a 1", "a 2", "b 0", "b 1", "b 2"]
    assert read({"since": t1}) == ["b 0", "b 1", "b 2"]
    assert read({"since": t0, "until": t1}) == ["a 0", "a 1", "a 2"]
    assert read({"since": "-1h", "grep": "1"}) == ["a 1", "b 1"]
    assert read({"since": t2}) == []
    assert read({"since": t0, "limit": 2}) == ["a 0", "a 1"]
    # A stream from a time: the range, then live lines.
    s = Stream(f"{server.ws_url}?since={urllib.parse.quote(t1)}")
    hello = s.next()
    assert hello["filter"]["since"].startswith(t1[:19])
    assert [o["msg"] for o in s.lines(3)] == ["b 0", "b 1", "b 2"]
    append(log, "c 0\n")
    assert s.lines(1)[0]["msg"] == "c 0"
    s.close()
    # Bad values are refused with what would be right.
    for query, words in [({"since": "yesterday"}, "since 'yesterday' is not a time"),
                         ({"since": t1, "until": t0}, "is before since")]:
        status, _, body = server.get("/api/v1/lines?" + urllib.parse.urlencode(query))
        assert status == 400 and words in json.loads(body)["error"], body
        assert "RFC 3339" in json.loads(body)["hint"] or "until" in json.loads(body)["hint"]
    # logcast tail -S/-U, like journalctl.
    out = subprocess.run([str(BINARY), "tail", f"ws://127.0.0.1:{server.port}", "-S", t0, "-U", t1, "-o", "cat"],
                         capture_output=True, text=True, timeout=DEADLINE)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["a 0", "a 1", "a 2"]
    bad = subprocess.run([str(BINARY), "tail", f"ws://127.0.0.1:{server.port}", "-S", "soon"], capture_output=True, text=True,
                         timeout=DEADLINE)
    assert bad.returncode == 2 and "--since 'soon' is not a time" in bad.stderr


def test_a_source_given_another_path_starts_from_its_tail(tmp_path):
    first_log, other_log = tmp_path / "app.log", tmp_path / "other.log"
    append(first_log, "first\n")
    append(other_log, "".join(f"old {i}\n" for i in range(50)))
    state = tmp_path / "state"
    first = Server(["--file", f"app={first_log}", "--state-directory", str(state)]).start()
    try:
        wait_for(lambda: first.health()["last_seq"] == 1, message="the first line")
    finally:
        first.stop()
    # The same source name, now for another file: not a continuation of the first one.
    second = Server(["--file", f"app={other_log}", "--initial-lines", "2", "--state-directory", str(state)]).start()
    try:
        wait_for(lambda: second.health()["last_seq"] == 3, message="the new file's tail")
        r = Stream(f"{second.ws_url}?backlog=10")
        r.next()
        items = r.until_barrier()
        assert [o.get("msg") for o in items] == ["first", "old 48", "old 49"], items
    finally:
        second.stop()


@pytest.mark.parametrize("change", ["rename", "copytruncate"])
def test_a_file_rotated_while_up_resumes_from_the_new_file_after_a_restart(tmp_path, change):
    log = tmp_path / "app.log"
    # More than the 256 bytes a fingerprint covers, so the next generation's must be taken anew.
    append(log, "gen1 " + "x" * 300 + "\n")
    state = tmp_path / "state"
    args = ["--file", f"app={log}", "--initial-lines", "10", "--state-directory", str(state)]
    first = Server(args).start()
    try:
        wait_for(lambda: first.health()["last_seq"] == 1, message="the first line")
        epoch = first.health()["epoch"]
        if change == "rename":
            os.rename(log, tmp_path / "app.log.1")
        else:
            shutil.copy(log, tmp_path / "app.log.1")
            with open(log, "r+") as f:
                f.truncate(0)
        append(log, "gen2 0\n")
        wait_for(lambda: first.health()["last_seq"] == 2, message="the rotated file's line")
    finally:
        first.stop(signal.SIGKILL)
    append(log, "gen2 1\n")
    second = Server(args).start()
    try:
        seen = []
        _, others = collect(f"{second.ws_url}?after=1&epoch={epoch}", 2, seen)
        assert [l["msg"] for l in seen] == ["gen2 0", "gen2 1"]
        r = Stream(f"{second.ws_url}?after=1&epoch={epoch}")
        r.next()
        assert [o.get("msg") for o in r.until_barrier() if o["type"] == "line"] == ["gen2 0", "gen2 1"], "nothing twice"
    finally:
        second.stop()


def test_a_file_deleted_while_down_is_missing_once_then_followed_when_it_returns(tmp_path):
    import json
    log = tmp_path / "app.log"
    append(log, "before\n")
    state = tmp_path / "state"
    args = ["--file", f"app={log}", "--initial-lines", "10", "--state-directory", str(state)]
    first = Server(args).start()
    try:
        wait_for(lambda: first.health()["last_seq"] == 1, message="the first line")
        epoch = first.health()["epoch"]
    finally:
        first.stop()
    log.unlink()
    second = Server(args).start()
    try:
        def events():
            return json.loads(second.get("/api/v1/sources")[2])[0]["events"]
        wait_for(lambda: events().get("missing", 0) >= 1, message="a missing event")
        s = Stream(f"{second.ws_url}?after=1&epoch={epoch}")
        s.next()
        append(log, "back\n")
        assert s.lines(1)[0]["msg"] == "back"
        assert events().get("missing") == 1, events()
        s.close()
    finally:
        second.stop()


def numbered(prefix, count, width=40):
    """Lines of exactly `width` bytes with their newline."""
    return [f"{prefix} {i:05d}".ljust(width - 1, ".") for i in range(count)]


def source_events(server, name="app"):
    return next(s for s in json.loads(server.get("/api/v1/sources")[2]) if s["name"] == name)["events"]


def resume_after_downtime(tmp_path, while_down, budget, lines, downtime=True):
    """Runs logcast on app.log, stops it, lets `while_down(log)` write, starts it
    again with `--max-catch-up-bytes budget`, waits for its catch-up (`lines`
    lines, and a downtime gap if `downtime`), and resumes after the first
    run's line: returns the stream and the second server (running)."""
    log = tmp_path / "app.log"
    append(log, "before\n")
    args = ["--file", f"app={log}", "--initial-lines", "10", "--state-directory", str(tmp_path / "state"), "--max-catch-up-bytes", str(budget)]
    first = Server(args).start()
    try:
        wait_for(lambda: first.health()["last_seq"] == 1, message="the first line")
        epoch = first.health()["epoch"]
    finally:
        first.stop(signal.SIGKILL)
    while_down(log)
    second = Server(args).start()
    wait_for(lambda: second.health()["last_seq"] == 1 + lines, message=f"{lines} lines caught up")
    wait_for(lambda: source_events(second).get("downtime", 0) == (1 if downtime else 0), message="the downtime gap")
    stream = Stream(f"{second.ws_url}?after=1&epoch={epoch}")
    assert stream.next()["epoch"] == epoch
    return stream, second


def test_more_written_while_down_than_the_catch_up_bound_is_skipped_with_a_downtime_gap(tmp_path):
    written = numbered("down", 1000)  # 40,000 bytes
    stream, server = resume_after_downtime(tmp_path, lambda log: append(log, "".join(l + "\n" for l in written)), budget=4000, lines=100)
    try:
        objects = stream.until_barrier()
        gaps = [o for o in objects if o["type"] == "gap"]
        assert gaps == [
            {"type": "gap", "after": 1, "next": 2, "reason": "downtime", "source": "app", "path": str(tmp_path / "app.log"), "skipped_bytes": 36000}
        ]
        assert objects[0] == gaps[0], "the gap comes before the lines read after the skip"
        lines = [o for o in objects if o["type"] == "line"]
        assert [l["msg"] for l in lines] == written[-100:], "the newest 4,000 bytes, whole lines only"
        assert [l["seq"] for l in lines] == list(range(2, 102))
        append(tmp_path / "app.log", "live\n")
        assert stream.lines(1)[0]["msg"] == "live"
        assert source_events(server).get("downtime") == 1
        # A cut in the middle of a line moves to the next line; a later reader gets the same gap from the history.
        later = Stream(f"{server.ws_url}?after=1&epoch={server.health()['epoch']}")
        later.next()
        assert [o for o in later.until_barrier() if o["type"] == "gap"] == gaps
        later.close()
        stream.close()
    finally:
        server.stop()


def test_a_cut_inside_a_line_starts_at_the_next_line(tmp_path):
    written = numbered("down", 100)  # 4,000 bytes; the newest 1,030 begin 10 bytes into line 74
    stream, server = resume_after_downtime(tmp_path, lambda log: append(log, "".join(l + "\n" for l in written)), budget=1030, lines=25)
    try:
        objects = stream.until_barrier()
        assert [o["skipped_bytes"] for o in objects if o["type"] == "gap"] == [75 * 40]
        assert [o["msg"] for o in objects if o["type"] == "line"] == written[75:]
        stream.close()
    finally:
        server.stop()


def test_a_rotation_while_down_beyond_the_bound_skips_the_old_rest_first(tmp_path):
    old_rest = numbered("old", 50)
    new = numbered("new", 50)

    def rotate(log):
        append(log, "".join(l + "\n" for l in old_rest))
        os.rename(log, tmp_path / "app.log.1")
        append(log, "".join(l + "\n" for l in new))

    stream, server = resume_after_downtime(tmp_path, rotate, budget=2400, lines=60)  # all 2,000 new bytes, 400 of the old rest
    try:
        objects = stream.until_barrier()
        summary = [o["msg"] if o["type"] == "line" else o.get("reason", o.get("event")) for o in objects]
        assert summary == ["downtime"] + old_rest[-10:] + ["rotated"] + new
        assert objects[0]["skipped_bytes"] == 1600
        stream.close()
    finally:
        server.stop()


def test_a_new_file_beyond_the_bound_skips_the_rotated_rest_entirely(tmp_path):
    def rotate(log):
        append(log, "old\n")
        os.rename(log, tmp_path / "app.log.1")
        append(log, "".join(l + "\n" for l in numbered("new", 50)))

    stream, server = resume_after_downtime(tmp_path, rotate, budget=400, lines=10)
    try:
        objects = stream.until_barrier()
        summary = [o["msg"] if o["type"] == "line" else o.get("reason", o.get("event")) for o in objects]
        assert summary == ["downtime", "rotated"] + numbered("new", 50)[-10:]
        assert objects[0]["skipped_bytes"] == 4 + 1600
        stream.close()
    finally:
        server.stop()


def test_a_catch_up_within_the_bound_has_no_gap_and_zero_skips_everything_old(tmp_path):
    written = numbered("down", 10)
    stream, server = resume_after_downtime(tmp_path, lambda log: append(log, "".join(l + "\n" for l in written)), budget=400, lines=10, downtime=False)
    try:
        objects = stream.until_barrier()
        assert [o["msg"] for o in objects] == written, "exactly the bound: everything, no gap"
        stream.close()
    finally:
        server.stop()
    (tmp_path / "state").rename(tmp_path / "state-old")
    for name in ("app.log", "app.log.1"):
        (tmp_path / name).unlink(missing_ok=True)
    stream, server = resume_after_downtime(tmp_path, lambda log: append(log, "".join(l + "\n" for l in written)), budget=0, lines=0)
    try:
        objects = stream.until_barrier()
        assert [(o["type"], o.get("skipped_bytes")) for o in objects] == [("gap", 400)]
        append(tmp_path / "app.log", "live\n")
        assert stream.lines(1)[0]["msg"] == "live"
        stream.close()
    finally:
        server.stop()


def glob_restart(tmp_path, pattern, before, while_down, want, while_up=None):
    """Runs logcast on a glob, stops it (SIGKILL), lets `while_down()` change the
    files, starts again and resumes: returns the objects after the first run's
    lines, once `want` lines have arrived."""
    state = tmp_path / "state"
    args = ["--file", f"logs={tmp_path}/{pattern}", "--initial-lines", "10", "--state-directory", str(state)]
    before()
    first = Server(args).start()
    try:
        wait_for(lambda: first.health()["last_seq"] >= 1, message="the first lines")
        if while_up:
            while_up(first)
        last = first.health()["last_seq"]
        epoch = first.health()["epoch"]
    finally:
        first.stop(signal.SIGKILL)
    while_down()
    second = Server(args).start()
    try:
        seen = []
        _, others = collect(f"{second.ws_url}?after={last}&epoch={epoch}", want, seen)
        stream = Stream(f"{second.ws_url}?after={last}&epoch={epoch}")
        stream.next()
        everything = stream.until_barrier()
        stream.close()
        return seen, others, everything
    finally:
        second.stop()


def test_glob_members_continue_where_they_stopped_and_new_ones_are_read_whole(tmp_path):
    def before():
        append(tmp_path / "a.log", "a before\n")
        append(tmp_path / "b.log", "b before\n")

    def while_down():
        append(tmp_path / "a.log", "a down 0\na down 1\n")
        append(tmp_path / "b.log", "b down 0\n")
        append(tmp_path / "c.log", "c new 0\nc new 1\n")

    seen, _, everything = glob_restart(tmp_path, "*.log", before, while_down, want=5)
    assert sorted(l["msg"] for l in seen) == ["a down 0", "a down 1", "b down 0", "c new 0", "c new 1"], "each line once"
    events = [(o["event"], os.path.basename(o["path"])) for o in everything if o["type"] == "source"]
    assert events == [("created", "c.log")], "the member that appeared while down is read from its start"
    assert len([o for o in everything if o["type"] == "line"]) == 5
    assert not [o for o in everything if o["type"] == "gap"]


def test_a_glob_member_rotated_within_the_glob_while_down_is_continued_by_identity(tmp_path):
    log = tmp_path / "app.log"

    def while_down():
        append(log, "x 1\n")
        os.rename(log, tmp_path / "app.log.1")
        append(log, "y 0\n")

    seen, _, everything = glob_restart(tmp_path, "app.log*", lambda: append(log, "x 0\n"), while_down, want=2)
    assert sorted(l["msg"] for l in seen) == ["x 1", "y 0"], "the rest of the renamed member, the new one whole, nothing twice"
    assert [(o["event"], os.path.basename(o["path"])) for o in everything if o["type"] == "source"] == [("created", "app.log")]


def test_a_glob_member_renamed_while_up_is_known_by_its_new_name_after_a_restart(tmp_path):
    log = tmp_path / "app.log"

    def while_up(server):
        os.rename(log, tmp_path / "app.log.1")
        append(log, "y 0\n")  # the old file is followed on as app.log.1 once the new app.log is there
        wait_for(lambda: server.health()["last_seq"] == 2, message="the new member's line")
        wait_for(lambda: "app.log.1" in " ".join(source_paths(server)), message="the renamed member followed on")

    def while_down():
        append(tmp_path / "app.log.1", "x 1\n")

    seen, _, everything = glob_restart(tmp_path, "app.log*", lambda: append(log, "x 0\n"), while_down, want=1, while_up=while_up)
    assert [l["msg"] for l in seen] == ["x 1"], "not read again from its start"


def source_paths(server, name="logs"):
    return next(s for s in json.loads(server.get("/api/v1/sources")[2]) if s["name"] == name)["paths"]
