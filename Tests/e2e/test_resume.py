"""Resume with after/epoch: exactly the missed lines; gaps for eviction and restart."""
from conftest import Server, append


def test_reconnect_with_after_gets_exactly_the_missed_lines(serve, stream, tmp_path):
    log = tmp_path / "app.log"
    log.touch()
    server = serve("--file", f"app={log}", "--initial-lines", "0")
    s = stream(server.ws_url)
    epoch = s.next()["epoch"]
    append(log, "".join(f"seen {i}\n" for i in range(5)))
    last = s.lines(5)[-1]["seq"]
    s.close()

    append(log, "".join(f"missed {i}\n" for i in range(7)))
    # Wait until the server has them all (so the reconnect has something to resume).
    from conftest import wait_for
    wait_for(lambda: server.health()["last_seq"] == last + 7)

    r = stream(f"{server.ws_url}?after={last}&epoch={epoch}")
    assert r.next()["type"] == "hello"
    got = [o for o in r.until_barrier() if o["type"] == "line"]
    assert [l["msg"] for l in got] == [f"missed {i}" for i in range(7)]
    assert [l["seq"] for l in got] == list(range(last + 1, last + 8))


def test_after_older_than_history_gets_evicted_gap(serve, stream, tmp_path):
    log = tmp_path / "app.log"
    log.touch()
    server = serve("--file", f"app={log}", "--initial-lines", "0", "--history", "5", "--state-directory", "none")  # memory only: the history ends at --history
    s = stream(server.ws_url)
    epoch = s.next()["epoch"]
    append(log, "".join(f"n{i}\n" for i in range(1, 21)))
    assert s.lines(20)[-1]["seq"] == 20

    r = stream(f"{server.ws_url}?after=2&epoch={epoch}")
    assert r.next()["type"] == "hello"
    items = r.until_barrier()
    gap = items[0]
    assert gap == {"type": "gap", "after": 2, "next": 16, "missed": 13, "reason": "evicted"}
    assert [l["seq"] for l in items[1:]] == [16, 17, 18, 19, 20]


def test_server_restart_gives_restart_gap_then_backlog(tmp_path):
    log = tmp_path / "app.log"
    append(log, "one\ntwo\nthree\n")
    first = Server(["--file", f"app={log}"], cwd=tmp_path).start()
    try:
        from conftest import Stream
        s = Stream(first.ws_url)
        old_epoch = s.next()["epoch"]
        last = s.lines(3)[-1]["seq"]
        s.close()
    finally:
        first.stop()

    second = Server(["--file", f"app={log}"], cwd=tmp_path).start()
    try:
        r = Stream(f"{second.ws_url}?after={last}&epoch={old_epoch}&backlog=2")
        hello = r.next()
        assert hello["epoch"] != old_epoch
        gap = r.next()
        assert gap["type"] == "gap" and gap["reason"] == "restart"
        assert "missed" not in gap
        assert gap["after"] == last
        lines = r.lines(2)
        assert [l["msg"] for l in lines] == ["two", "three"]
        assert gap["next"] == lines[0]["seq"]
        r.close()
    finally:
        second.stop()
