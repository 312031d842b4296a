"""The stream: hello, backlog, live lines, batching, client messages, refusals."""
import json
import os

import pytest

from conftest import RawClient, append, wait_for


def test_hello_then_backlog_then_live_lines(serve, stream, tmp_path):
    log = tmp_path / "app.log"
    append(log, "".join(f"line {i}\n" for i in range(1, 16)))
    server = serve("--file", f"app={log}")
    s = stream(server.ws_url)

    # The client offered permessage-deflate; the server accepted it.
    assert "permessage-deflate" in s.ws.response.headers["Sec-WebSocket-Extensions"]
    hello = s.next()
    assert hello["type"] == "hello"
    assert hello["version"] == 1
    assert len(hello["epoch"]) == 16
    assert hello["sources"] == ["app"]
    assert hello["server"].startswith("logcast/")
    assert hello["filter"] == {}

    backlog = s.lines(10)
    assert [l["msg"] for l in backlog] == [f"line {i}" for i in range(6, 16)]
    assert [l["seq"] for l in backlog] == list(range(1, 11))
    assert all(l["source"] == "app" and l["path"] == str(log) for l in backlog)
    assert all(l["ts"].endswith("Z") and len(l["ts"]) == 27 for l in backlog)

    append(log, "live one\n")
    live = s.lines(1)[0]
    assert live["msg"] == "live one"
    assert live["seq"] == 11


def test_burst_is_batched_into_fewer_frames(serve, stream, tmp_path):
    log = tmp_path / "app.log"
    log.touch()
    server = serve("--file", f"app={log}", "--initial-lines", "0")
    s = stream(server.ws_url)
    assert s.next()["type"] == "hello"
    frames_before = s.frames
    append(log, "".join(f"burst {i}\n" for i in range(5000)))
    lines = s.lines(5000)
    assert [l["msg"] for l in lines] == [f"burst {i}" for i in range(5000)]
    assert s.frames - frames_before < 5000 / 4, "lines were not batched"


def test_backlog_zero_and_format_text(serve, stream, tmp_path):
    log = tmp_path / "app.log"
    append(log, "old\n")
    server = serve("--file", f"app={log}")
    s = stream(server.ws_url + "?format=text&backlog=0")
    # Text streams carry no hello: wait until the server has registered the subscriber.
    wait_for(lambda: server.health()["subscribers"] == 1)
    append(log, "fresh \x1b[31mred\x1b[0m\n")
    frame = s.ws.recv(timeout=30)
    assert frame == "fresh \x1b[31mred\x1b[0m\n"


def test_plain_get_on_ws_is_426(serve, tmp_path):
    log = tmp_path / "a.log"
    log.touch()
    server = serve("--file", str(log))
    status, headers, body = server.get("/ws")
    assert status == 426
    assert "error" in json.loads(body)


@pytest.mark.parametrize(
    "query, status, words",
    [
        ("?source=nope", 400, ["unknown source 'nope'", "known sources: app"]),
        ("?priority=loud", 400, ["priority 'loud'", "emerg"]),
        ("?regex=(unclosed", 400, ["bad regex", "offset"]),
        ("?regex=" + "a" * 1025, 400, ["regex is 1025 bytes", "1024"]),
        ("?colour=red", 400, ["unknown parameter 'colour'", "grep"]),
        ("?backlog=-1", 400, ["backlog '-1'"]),
        ("?after=yesterday", 400, ["after 'yesterday'"]),
        ("?epoch=XYZ", 400, ["epoch 'XYZ'"]),
        ("?format=xml", 400, ["format 'xml'", "json or text"]),
        ("?regex=a&regex=b", 400, ["regex given more than once"]),
    ],
)
def test_invalid_query_is_refused_before_upgrade(serve, tmp_path, query, status, words):
    log = tmp_path / "app.log"
    log.touch()
    server = serve("--file", f"app={log}")
    got, headers, body = server.upgrade("/ws" + query)
    assert got == status
    assert headers["Content-Type"] == "application/json"
    payload = json.loads(body)
    assert set(payload) == {"error", "hint"}
    text = payload["error"] + " " + payload["hint"]
    for word in words:
        assert word in text
    # The server keeps serving.
    assert server.health()["status"] == "ok"


def test_upgrade_on_unknown_path_is_404(serve, tmp_path):
    log = tmp_path / "app.log"
    log.touch()
    server = serve("--file", f"app={log}")
    status, _, body = server.upgrade("/nowhere")
    assert status == 404
    assert json.loads(body)["hint"] == "connect to /ws"


def test_subscribe_message_swaps_the_filter_live(serve, stream, tmp_path):
    log = tmp_path / "app.log"
    append(log, "alpha 1\nbeta 1\nalpha 2\n")
    server = serve("--file", f"app={log}")
    s = stream(server.ws_url)
    assert s.next()["type"] == "hello"
    assert len(s.lines(3)) == 3

    s.send({"type": "subscribe", "filter": {"grep": ["beta"]}, "backlog": 5})
    subscribed = s.next_of("subscribed")
    assert subscribed["filter"] == {"grep": ["beta"]}
    assert [l["msg"] for l in s.lines(1)] == ["beta 1"]
    append(log, "alpha 3\nbeta 2\n")
    assert s.lines(1)[0]["msg"] == "beta 2"


@pytest.mark.parametrize(
    "message, words",
    [
        ("not json", ["not a JSON object"]),
        ('{"type":"dance"}', ["unknown message type 'dance'"]),
        ('{"type":"subscribe","filter":{"regex":"(x"}}', ["bad regex"]),
        ('{"type":"subscribe","filter":{"source":["zzz"]}}', ["unknown source 'zzz'"]),
        ('{"type":"subscribe","filter":"grep=x"}', ["\"filter\" is not an object"]),
    ],
)
def test_bad_client_message_gets_error_and_keeps_old_filter(serve, stream, tmp_path, message, words):
    log = tmp_path / "app.log"
    log.touch()
    server = serve("--file", f"app={log}")
    s = stream(server.ws_url + "?grep=keep")
    assert s.next()["type"] == "hello"
    s.ws.send(message)
    error = s.next_of("error")
    for word in words:
        assert word in error["error"]
    append(log, "drop me\nkeep me\n")
    assert s.lines(1)[0]["msg"] == "keep me"


def test_oversized_client_message_closes_1009_others_unaffected(serve, stream, tmp_path):
    log = tmp_path / "app.log"
    log.touch()
    server = serve("--file", f"app={log}")
    bystander = stream(server.ws_url)
    assert bystander.next()["type"] == "hello"
    raw = RawClient(server.port)
    raw.send_frame(1, b"x" * (70 * 1024))
    _, code = raw.read_until_close()
    assert code == 1009
    append(log, "still here\n")
    assert bystander.lines(1)[0]["msg"] == "still here"


def test_healthz_and_sources(serve, tmp_path):
    log = tmp_path / "app.log"
    append(log, "a\nb\n")
    server = serve("--file", f"app={log}", "--file", f"gone={tmp_path / 'missing.log'}")
    wait_for(lambda: server.health()["sources"] == {"app": "following", "gone": "waiting"})
    status, headers, body = server.get("/api/v1/sources")
    assert status == 200
    sources = {s["name"]: s for s in json.loads(body)}
    assert sources["app"]["kind"] == "file"
    assert sources["app"]["paths"] == [str(log)]
    assert sources["app"]["lines_read"] == 2
    assert sources["gone"]["state"] == "waiting"
    assert sources["gone"]["events"] == {"missing": 1}


def test_a_file_sources_status_follows_the_file_through_deletion_a_fifo_and_its_return(serve, tmp_path):
    """The source thread tells the registry its open paths and last error only
    when they change: each change must still show."""
    log = tmp_path / "app.log"
    append(log, "a\n")
    server = serve("--file", f"app={log}")

    def source():
        return json.loads(server.get("/api/v1/sources")[2])[0]

    def shows(state, paths, error=None):
        s = source()
        return (s["state"] == state and s["paths"] == paths
                and (s.get("last_error") is None if error is None else error in (s.get("last_error") or "")))

    wait_for(lambda: shows("following", [str(log)]), message="following the file")
    log.unlink()
    wait_for(lambda: shows("waiting", []), message="waiting once the file is gone")
    os.mkfifo(log)
    wait_for(lambda: shows("failing", [], "not a regular file (a FIFO)"), message="failing on a FIFO in its place")
    log.unlink()
    append(log, "b\n")
    wait_for(lambda: shows("following", [str(log)]), message="following the file again, the error cleared")


def test_viewer_is_served(serve, tmp_path):
    log = tmp_path / "app.log"
    log.touch()
    from conftest import ROOT
    server = serve("--file", f"app={log}", "--web-root", str(ROOT / "web"))
    status, headers, body = server.get("/")
    assert status == 200
    assert b"logcast" in body
