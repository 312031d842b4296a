"""Filtered fan-out at the default settings: many subscribers with different filters during a burst larger
than a subscriber queue and the memory history, live and resuming, over WebSocket and SSE. Each must get
exactly the lines its filter passes, in order: whether the server finds them through the shared text index
(grep texts, a regex's required text), line by line (texts it cannot index: caseless k and s, caseless
non-ASCII, regexes without a required text), or from the history (a resume)."""
import http.client
import json
import re
import urllib.parse

import pytest

from conftest import DEADLINE, Stream, append, wait_for

APP_LINES = 60_000
OTHER_LINES = 6_000
VOCABULARY = ["timeout", "Timeout", "TIMEOUT", "disk", "DISK", "di\u017fk", "\u212aelvin", "kelvin", "\u017fsh", "ssh", "SSH",
              "\u00e9t\u00e9", "\u00c9T\u00c9", "noise", "ok", "fine", "G1x"]
SENTINEL = "SENTINEL G7 G1 G12 G3 G5 timeout Timeout disk kelvin ssh \u00e9t\u00e9"

# (query, transport, joins): live subscribers connect before the burst; "resume" ones connect halfway
# through it and resume from the first line (after=0 in the stream's epoch).
FILTERS = [
    ("grep=G7%20", "ws", "live"),
    ("grep=timeout", "ws", "live"),
    ("grep=Timeout", "ws", "live"),
    ("grep=disk", "ws", "live"),
    ("grep=kelvin", "ws", "live"),
    ("grep=ssh", "ws", "live"),
    ("grep=%C3%A9t%C3%A9", "ws", "live"),
    ("regex=%5CbG1%5Cb", "ws", "live"),
    ("regex=G1%5Cd%5Cb", "ws", "live"),
    ("regex=timeout%5Cb", "ws", "live"),
    ("regex=(disk%7Cssh)", "ws", "live"),
    ("grep=timeout&exclude=noise", "ws", "live"),
    ("grep=G3%20&source=app", "ws", "live"),
    ("grep=timeout&grep=G5%20", "ws", "live"),
    ("", "ws", "live"),
    ("grep=never-in-any-line", "ws", "live"),
    ("grep=G7%20", "sse", "live"),
    ("grep=kelvin", "sse", "live"),
    ("regex=%5CbG1%5Cb", "sse", "live"),
    ("grep=timeout&exclude=noise", "sse", "live"),
    ("grep=G7%20", "ws", "resume"),
    ("grep=ssh", "ws", "resume"),
    ("regex=timeout%5Cb", "ws", "resume"),
    ("grep=timeout&exclude=noise", "ws", "resume"),
    ("grep=kelvin", "sse", "resume"),
    ("regex=%5CbG1%5Cb", "sse", "resume"),
]


def line_text(source, i):
    return f"{source} {i:06d} G{i % 23} {VOCABULARY[i * 7 % len(VOCABULARY)]} {VOCABULARY[i * 13 % len(VOCABULARY)]}"


def has_upper(pattern, regex):
    """logcast's smart case: an upper-case letter (outside escapes, for a regex) makes it case-sensitive."""
    if regex:
        pattern = re.sub(r"\\.", "", pattern)
    return any(c.isupper() for c in pattern)


def reference(query):
    """What a filter passes, written plainly: PCRE2's caseless matching is Python's casefold for this text."""
    keys = urllib.parse.parse_qs(query)
    greps = [g for value in keys.get("grep", []) for g in value.split(",") if g]
    excludes = [e for value in keys.get("exclude", []) for e in value.split(",") if e]
    regex = keys.get("regex", [None])[0]
    sources = keys.get("source", [])

    def contains(text, pattern):
        return pattern in text if has_upper(pattern, False) else pattern.casefold() in text.casefold()

    def passes(source, text):
        if sources and source not in sources:
            return False
        if not all(contains(text, g) for g in greps) or any(contains(text, e) for e in excludes):
            return False
        return regex is None or re.search(regex, text, 0 if has_upper(regex, True) else re.IGNORECASE) is not None
    return passes


def read_ws(stream, count):
    """Lines until `count` of them or the sentinel."""
    got = []
    while len(got) < count and not (got and got[-1][1] == SENTINEL):
        obj = stream.next(timeout=DEADLINE * 4)
        assert obj["type"] in ("line", "hello"), f"unexpected {obj}"
        if obj["type"] == "line":
            got.append((obj["seq"], obj["msg"]))
    return got


def read_sse(response, count):
    """Lines until `count` of them or the sentinel."""
    got, data, event_id = [], [], None
    while len(got) < count and not (got and got[-1][1] == SENTINEL):
        raw = response.readline()
        assert raw, "the SSE stream ended early"
        line = raw.decode().rstrip("\n")
        if line.startswith("data: "):
            data.append(line[6:])
        elif line.startswith("id: "):
            event_id = line[4:]
        elif line.startswith("event: "):
            assert line in ("event: hello",), f"unexpected {line}"
        elif line == "" and data:
            obj = json.loads("\n".join(data))
            if event_id is not None:
                got.append((obj["seq"], obj["msg"]))
            data, event_id = [], None
    return got


def test_many_filters_each_get_exactly_their_lines(serve, tmp_path):
    app = tmp_path / "app.log"
    other = tmp_path / "other.log"
    app.touch()
    other.touch()
    server = serve("--file", f"app={app}", "--file", f"other={other}", "--initial-lines", "0")
    first = Stream(server.ws_url + "?backlog=0")
    epoch = first.next()["epoch"]
    first.close()

    subscribers = []

    def connect(query, transport, after=None):
        full = "&".join(q for q in (query, "backlog=0" if after is None else f"after={after}&epoch={epoch}") if q)
        if transport == "ws":
            stream = Stream(server.ws_url + "?" + full, compression=None)
            assert stream.next()["type"] == "hello"
            return stream
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=DEADLINE * 4)
        connection.request("GET", "/sse?" + full)
        response = connection.getresponse()
        assert response.status == 200
        return response

    for query, transport, joins in FILTERS:
        if joins == "live":
            subscribers.append((query, transport, connect(query, transport)))
    wait_for(lambda: server.health()["subscribers"] == len(subscribers))

    def burst(lines, source, path, start, end):
        with open(path, "ab") as handle:
            for at in range(start, end, 5000):
                handle.write("".join(line_text(source, i) + "\n" for i in range(at, min(end, at + 5000))).encode())
        lines.extend((source, line_text(source, i)) for i in range(start, end))

    written = []
    burst(written, "app", app, 0, APP_LINES // 2)
    burst(written, "other", other, 0, OTHER_LINES // 2)
    wait_for(lambda: sum(s["lines_read"] for s in json.loads(server.get("/api/v1/sources")[2])) == len(written),
             timeout=DEADLINE * 4, message="the first half to be read")
    for query, transport, joins in FILTERS:
        if joins == "resume":
            subscribers.append((query, transport, connect(query, transport, after=0)))
    burst(written, "app", app, APP_LINES // 2, APP_LINES)
    burst(written, "other", other, OTHER_LINES // 2, OTHER_LINES)
    wait_for(lambda: sum(s["lines_read"] for s in json.loads(server.get("/api/v1/sources")[2])) == len(written),
             timeout=DEADLINE * 4, message="the burst to be read")
    # The last line (of app, the one source any filter here names) passes every filter but the one
    # that passes nothing: each of their streams ends with it.
    append(app, SENTINEL + "\n")
    wait_for(lambda: server.health()["last_seq"] == len(written) + 1, message="the sentinel")

    # Lines in seq order: the server's, read back once (sources interleave in publishing order).
    everything = Stream(server.ws_url + f"?after=0&epoch={epoch}", compression=None)
    assert everything.next()["type"] == "hello"
    stream_order = read_ws(everything, len(written) + 1)
    assert sorted(m for _, m in stream_order[:-1]) == sorted(t for _, t in written), "every line was read once"
    source_of = {text: source for source, text in written}
    source_of[SENTINEL] = "app"

    for query, transport, handle in subscribers:
        passes = reference(query)
        expected = [(seq, msg) for seq, msg in stream_order if passes(source_of[msg], msg)]
        if not expected:
            assert [o for o in handle.until_barrier() if o["type"] != "hello"] == [], f"{query!r} passed lines"
            continue
        got = read_ws(handle, len(expected)) if transport == "ws" else read_sse(handle, len(expected))
        assert got == expected, f"{transport} {query!r}: {len(got)} lines, the first difference at " + next(
            (f"#{i}: {a} != {b}" for i, (a, b) in enumerate(zip(got, expected)) if a != b), "the end")
        assert expected[-1][1] == SENTINEL, "every stream ends with the sentinel"
