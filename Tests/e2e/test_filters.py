"""Filter keys against real lines: each key, smart case, AND/OR, priority detection."""
import json

import pytest

from conftest import append, wait_for

LINES = [
    "2026-11-25 INFO  http: GET /api 200",
    "2026-11-25 ERROR db: connection Timeout after 3s",
    "2026-11-25 WARN  http: slow request",
    "<3>kernel: disk failure",
    "level=debug msg=\"cache miss\"",
    "E1125 09:00:00.000 worker.go:12] job failed",
    "plain line without a level",
    "2026-11-25 CRIT  payments: timeout talking to bank",
]


@pytest.fixture
def two_sources(serve, tmp_path):
    app = tmp_path / "app.log"
    other = tmp_path / "other.log"
    append(app, "".join(l + "\n" for l in LINES))
    append(other, "ERROR other: timeout in other\nINFO other: fine\n")
    server = serve("--file", f"app={app}", "--file", f"other={other}", "--initial-lines", "100", "--host-name", "web1")
    # The tailers load the existing lines concurrently with the listener starting.
    wait_for(lambda: [s["lines_read"] for s in json.loads(server.get("/api/v1/sources")[2])] == [len(LINES), 2],
             message="both sources to load their lines")
    return server


def backlog(stream, server, query):
    s = stream(server.ws_url + "?backlog=1000&" + query)
    hello = s.next()
    assert hello["type"] == "hello"
    return [o["msg"] for o in s.until_barrier() if o["type"] == "line"], hello["filter"]


@pytest.mark.parametrize(
    "query, expected",
    [
        ("source=other", ["ERROR other: timeout in other", "INFO other: fine"]),
        # smart case: lower-case pattern matches any case
        ("source=app&grep=timeout", [LINES[1], LINES[7]]),
        # smart case: an upper-case letter makes it case-sensitive
        ("source=app&grep=Timeout", [LINES[1]]),
        # repeated grep: all must match
        ("source=app&grep=timeout&grep=bank", [LINES[7]]),
        ("source=app&grep=timeout,bank", [LINES[7]]),
        ("source=app&regex=^2026.*(ERROR|CRIT)", [LINES[1], LINES[7]]),
        ("source=app&regex=%5Cbhttp%3A", [LINES[0], LINES[2]]),
        ("source=app&exclude=http&exclude=2026", [LINES[3], LINES[4], LINES[5], LINES[6]]),
        # priority: that level or more severe; lines without a level never pass
        ("source=app&priority=err", [LINES[1], LINES[3], LINES[5], LINES[7]]),
        ("source=app&priority=warning..err", [LINES[1], LINES[2], LINES[3], LINES[5]]),
        ("source=app&priority=4..3", [LINES[1], LINES[2], LINES[3], LINES[5]]),
        ("source=app&priority=debug", LINES[:6] + [LINES[7]]),
        ("source=app&priority=crit", [LINES[7]]),
        # OR within source, AND across keys
        ("source=app,other&grep=timeout&priority=err", [LINES[1], LINES[7], "ERROR other: timeout in other"]),
        ("host=web1&source=other", ["ERROR other: timeout in other", "INFO other: fine"]),
        ("host=elsewhere", []),
        # file lines carry no unit or identifier: those filters pass nothing
        ("unit=nginx", []),
        ("identifier=sshd", []),
    ],
)
def test_filter_keys(stream, two_sources, query, expected):
    got, _ = backlog(stream, two_sources, query)
    if "," in query or "source=" not in query:
        # Two tailers start concurrently: order across sources is seq order, not list order.
        assert sorted(got) == sorted(expected)
    else:
        assert got == expected


def test_normalised_filter_is_echoed_in_hello(stream, two_sources):
    _, echoed = backlog(stream, two_sources, "source=app&grep=a,b&priority=warn..error&unit=nginx&grep=")
    assert echoed == {"source": ["app"], "grep": ["a", "b"], "priority": "err..warning", "unit": ["nginx.service"]}


def test_detected_priority_is_on_the_wire(stream, two_sources):
    s = stream(two_sources.ws_url + "?backlog=1000&source=app")
    s.next()
    lines = {o["msg"]: o.get("priority") for o in s.until_barrier() if o["type"] == "line"}
    assert lines[LINES[0]] == 6
    assert lines[LINES[1]] == 3
    assert lines[LINES[2]] == 4
    assert lines[LINES[3]] == 3
    assert lines[LINES[4]] == 7
    assert lines[LINES[5]] == 3
    assert lines[LINES[6]] is None
    assert lines[LINES[7]] == 2


def test_redos_pattern_does_not_stall_other_subscribers(serve, stream, tmp_path):
    log = tmp_path / "app.log"
    log.touch()
    server = serve("--file", f"app={log}", "--initial-lines", "0")
    evil = stream(server.ws_url + "?regex=%28a%2B%29%2B%24")
    normal = stream(server.ws_url)
    assert evil.next()["type"] == "hello" and normal.next()["type"] == "hello"
    append(log, "".join("a" * 40 + "b\n" for _ in range(50)) + "done\n")
    got = normal.lines(51)
    assert got[-1]["msg"] == "done"
