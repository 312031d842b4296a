"""Operations: sd_notify, /metrics, /sse, /api/v1/lines, the systemd unit
and the install layout, against the real binary."""
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import BINARY, DEADLINE, ROOT, Server, Stream, append, wait_for


@pytest.fixture
def log(tmp_path):
    path = tmp_path / "app.log"
    path.write_text("")
    return path


# --- sd_notify ------------------------------------------------------------

class NotifySocket:
    """A datagram socket standing in for systemd's NOTIFY_SOCKET."""

    def __init__(self, path):
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.messages = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        while True:
            try:
                data = self.sock.recv(4096)
            except OSError:
                return
            self.messages.append(data.decode())

    def received(self, text):
        return [m for m in self.messages if text in m.split("\n")]


def test_sd_notify_ready_after_listening_watchdog_and_stopping(tmp_path, log):
    notify = NotifySocket(tmp_path / "notify.sock")
    server = Server(["--file", f"app={log}"], cwd=tmp_path,
                    env={"NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": "400000"})
    server.start()
    try:
        ready = wait_for(lambda: notify.received("READY=1"), message="READY=1")[0]
        # READY comes once the socket listens: the port it names accepts connections at once.
        port = int(re.search(r"listening on 127\.0\.0\.1:(\d+)", ready).group(1))
        assert port == server.port
        socket.create_connection(("127.0.0.1", port), timeout=DEADLINE).close()
        assert notify.messages.index(ready) <= min(notify.messages.index(m) for m in notify.received("WATCHDOG=1") or [ready])
        # WATCHDOG=1 at half of WATCHDOG_USEC, again and again while healthy.
        wait_for(lambda: len(notify.received("WATCHDOG=1")) >= 4, message="repeated WATCHDOG=1")
        assert not notify.received("STOPPING=1")
        server.proc.send_signal(signal.SIGTERM)
        assert server.proc.wait(timeout=DEADLINE) == 0
        assert notify.received("STOPPING=1")
    finally:
        server.stop()


def test_sighup_tells_systemd_when_the_reload_begins_and_ends(tmp_path, log):
    notify = NotifySocket(tmp_path / "notify.sock")
    tokens = tmp_path / "tokens"
    tokens.write_text("reload-token-1\n")
    server = Server(["--file", f"app={log}", "--token-file", str(tokens)], cwd=tmp_path, env={"NOTIFY_SOCKET": notify.path})
    server.start()
    try:
        ready = wait_for(lambda: notify.received("READY=1"), message="READY=1")[0]
        status = [field for field in ready.split("\n") if field.startswith("STATUS=")]
        # A good reload and one whose token file is refused both end with READY=1.
        for content in ["reload-token-2\n", "# no tokens now\n"]:
            tokens.write_text(content)
            seen = len(notify.messages)
            before = time.monotonic_ns() // 1000
            server.proc.send_signal(signal.SIGHUP)
            wait_for(lambda: any("READY=1" in m.split("\n") for m in notify.messages[seen:]), message="READY=1 after the reload")
            after = time.monotonic_ns() // 1000
            sent = notify.messages[seen:]
            reloading = [m for m in sent if "RELOADING=1" in m.split("\n")]
            assert len(reloading) == 1, sent
            fields = dict(field.split("=", 1) for field in reloading[0].split("\n") if field)
            # MONOTONIC_USEC is CLOCK_MONOTONIC, the clock systemd compares it with.
            assert before <= int(fields["MONOTONIC_USEC"]) <= after
            done = next(m for m in sent if "READY=1" in m.split("\n"))
            assert sent.index(reloading[0]) < sent.index(done)
            assert [field for field in done.split("\n") if field.startswith("STATUS=")] == status
        assert server.get("/api/v1/sources", {"Authorization": "Bearer reload-token-2"})[0] == 200
    finally:
        server.stop()


def test_without_notify_socket_nothing_is_sent_and_all_works(serve, log):
    server = serve("--file", f"app={log}")
    assert server.health()["status"] == "ok"


# --- /metrics -------------------------------------------------------------

def metrics(server, headers=None):
    status, response_headers, body = server.get("/metrics", headers)
    assert status == 200, body
    assert response_headers["Content-Type"].startswith("text/plain; version=0.0.4")
    samples = {}
    families = {}
    for family in text_string_to_metric_families(body.decode()):
        families[family.name] = family
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return families, samples


def live_subscribers(server):
    """One /ws and one /sse subscriber at the live edge: (ws, sse connection, sse response)."""
    ws = Stream(server.ws_url + "?backlog=0")
    assert ws.next()["type"] == "hello"
    sse = http.client.HTTPConnection("127.0.0.1", server.port, timeout=DEADLINE)
    sse.request("GET", "/sse?backlog=0")
    sse_response = sse.getresponse()
    wait_for(lambda: server.health()["subscribers"] == 2, message="two subscribers")
    return ws, sse, sse_response


def test_metrics_parse_and_count_what_was_sent(serve, log, tmp_path):
    server = serve("--file", f"app={log}", "--initial-lines", "0")
    ws, sse, sse_response = live_subscribers(server)
    append(log, "".join(f"line {i}\n" for i in range(250)))
    assert len(ws.lines(250)) == 250
    read_sse_lines(sse_response, 250)
    families, samples = metrics(server)
    for name in ["logcast_build_info", "logcast_source_lines_read", "logcast_lines_delivered", "logcast_subscribers",
                 "logcast_bytes_sent", "logcast_gaps", "logcast_lines_dropped", "logcast_source_events", "logcast_source_up",
                 "logcast_hub_lines", "logcast_subscriber_queue_lines", "logcast_connections"]:
        assert name in families, name
        assert families[name].documentation, f"{name} has help text"
    assert samples[("logcast_build_info", (("version", "0.1.0"),))] == 1
    assert samples[("logcast_source_lines_read_total", (("source", "app"),))] == 250
    assert samples[("logcast_hub_lines_total", ())] == 250
    wait_for(lambda: metrics(server)[1][("logcast_lines_delivered_total", (("transport", "ws"),))] == 250, message="ws count")
    wait_for(lambda: metrics(server)[1][("logcast_lines_delivered_total", (("transport", "sse"),))] == 250, message="sse count")
    _, samples = metrics(server)
    assert samples[("logcast_subscribers", (("transport", "ws"),))] == 1
    assert samples[("logcast_subscribers", (("transport", "sse"),))] == 1
    assert samples[("logcast_bytes_sent_total", (("transport", "ws"),))] > 250 * len("line 0")
    assert samples[("logcast_source_up", (("source", "app"),))] == 1
    # Rotation is counted per source.
    os.rename(log, tmp_path / "app.log.1")
    append(log, "after rotation\n")
    wait_for(lambda: metrics(server)[1][("logcast_source_events_total", (("event", "rotated"), ("source", "app")))] == 1,
             message="the rotation counted")
    ws.close()
    sse.close()
    wait_for(lambda: metrics(server)[1][("logcast_subscribers", (("transport", "ws"),))] == 0, message="ws gauge back to 0")


def sample(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))), 0)


def test_metrics_histograms_move_when_lines_are_delivered(serve, log):
    started = time.time()
    server = serve("--file", f"app={log}", "--initial-lines", "0")
    ws, sse, sse_response = live_subscribers(server)
    families, before = metrics(server)
    for name, family in families.items():
        assert family.documentation, f"{name} has help text"
    assert families["logcast_delivery_latency_seconds"].type == "histogram"
    assert families["logcast_frame_bytes"].type == "histogram"

    append(log, "".join(f"live {i}\n" for i in range(100)))
    assert len(ws.lines(100)) == 100
    read_sse_lines(sse_response, 100)
    for transport in ("ws", "sse"):
        wait_for(lambda: sample(metrics(server)[1], "logcast_lines_delivered_total", transport=transport) == 100,
                 message=f"{transport} lines counted")
    _, after = metrics(server)
    for transport in ("ws", "sse"):
        count = sample(after, "logcast_delivery_latency_seconds_count", transport=transport)
        assert count >= 1, f"{transport}: a latency per frame"
        assert sample(after, "logcast_delivery_latency_seconds_sum", transport=transport) > 0
        assert sample(after, "logcast_delivery_latency_seconds_bucket", transport=transport, le="+Inf") == count
        assert sample(after, "logcast_delivery_latency_seconds_bucket", transport=transport, le="10.0") == count, "under 10 s"
        # Every byte sent went out in a frame the size histogram saw.
        assert sample(after, "logcast_frame_bytes_sum", transport=transport) == \
            sample(after, "logcast_bytes_sent_total", transport=transport) > 0
        assert sample(after, "logcast_frame_bytes_count", transport=transport) >= count

    # A backlog is not live: its lines are delivered without a latency sample.
    latency_before = sample(after, "logcast_delivery_latency_seconds_count", transport="ws")
    late = Stream(server.ws_url + "?backlog=100")
    assert late.next()["type"] == "hello"
    assert len(late.lines(100)) == 100
    wait_for(lambda: sample(metrics(server)[1], "logcast_lines_delivered_total", transport="ws") == 200, message="backlog counted")
    _, after_backlog = metrics(server)
    assert sample(after_backlog, "logcast_delivery_latency_seconds_count", transport="ws") == latency_before

    # /api/v1/lines reads are counted with their lines and bytes.
    status, _, body = server.get("/api/v1/lines?backlog=10")
    assert status == 200
    # Counted once the body is written, which may be just after the client has read it.
    polls_before = sample(after_backlog, "logcast_poll_requests_total")
    wait_for(lambda: sample(metrics(server)[1], "logcast_poll_requests_total") == polls_before + 1, message="the read counted")
    _, polled = metrics(server)
    assert sample(polled, "logcast_poll_requests_total") == polls_before + 1
    assert sample(polled, "logcast_lines_delivered_total", transport="poll") == 10
    assert sample(polled, "logcast_bytes_sent_total", transport="poll") == len(body)
    assert sample(polled, "http_server_requests_total", http_route="/api/v1/lines", http_request_method="GET",
                  http_response_status_code="200") == 1

    # The process's own figures.
    assert started - 5 <= sample(polled, "process_start_time_seconds") <= time.time() + 1
    assert sample(polled, "process_resident_memory_bytes") > 1 << 20
    assert sample(polled, "process_cpu_seconds_total") > 0
    assert 3 <= sample(polled, "process_open_fds") <= sample(polled, "process_max_fds")
    assert sample(polled, "process_threads") >= 2
    for stream in (ws, late):
        stream.close()
    sse.close()


def test_metrics_count_refusals_by_reason_on_every_path(serve, log, tmp_path):
    tokens = tmp_path / "tokens"
    tokens.write_text("refusal-token-123\n")
    server = serve("--file", f"app={log}", "--token-file", str(tokens), "--max-subscribers", "1")
    auth = {"Authorization": "Bearer refusal-token-123"}

    def refusals():
        return {labels[0][1]: value for (name, labels), value in metrics(server, auth)[1].items()
                if name == "logcast_refusals_total"}

    before = refusals()
    expected = {}

    def refused(reason, status, answer):
        assert answer[0] == status, answer
        expected[reason] = expected.get(reason, 0) + 1

    # Routes, middleware and the upgrade path, each answering its own refusal.
    refused("unauthorized", 401, server.get("/api/v1/lines"))
    refused("unauthorized", 401, server.get("/sse/"))
    refused("unauthorized", 401, server.upgrade("/ws"))
    refused("bad-request", 400, server.get("/api/v1/lines?priority=loud", auth))
    refused("bad-request", 400, server.get("/api/v1/lines?limit=0", auth))
    refused("not-found", 404, server.get("/nope", auth))
    refused("unknown-host", 421, server.get("/healthz", {"Host": "evil.example"}))
    refused("upgrade-required", 426, server.get("/ws", auth))
    held = Stream(server.ws_url + "?backlog=0", additional_headers=auth)
    assert held.next()["type"] == "hello"
    refused("too-many-subscribers", 503, server.get("/sse", auth))
    after = refusals()
    for reason, count in expected.items():
        assert after.get(reason, 0) - before.get(reason, 0) == count, (reason, after, before)
    held.close()


def test_metrics_need_the_token_when_one_is_set(serve, log, tmp_path):
    tokens = tmp_path / "tokens"
    tokens.write_text("metrics-token-123\n")
    server = serve("--file", f"app={log}", "--token-file", str(tokens))
    assert server.get("/metrics")[0] == 401
    metrics(server, {"Authorization": "Bearer metrics-token-123"})


# --- /sse -----------------------------------------------------------------

def read_sse_events(response, count, kinds=("line",)):
    """Reads SSE events until `count` of the wanted kinds arrived; returns
    all events as (event, id, data, comment) in order."""
    events, wanted = [], 0
    current = {"event": "message", "id": None, "data": [], "comment": None}
    while wanted < count:
        raw = response.readline()  # decodes the chunked transfer encoding
        if not raw:
            raise AssertionError("stream ended early")
        line = raw.decode().rstrip("\n")
        if line == "":
            if current["data"] or current["comment"] is not None:
                data = "\n".join(current["data"])
                kind = "line" if current["id"] is not None else current["event"]
                events.append((current["event"], current["id"], data, current["comment"]))
                if kind in kinds or (current["comment"] is not None and "comment" in kinds):
                    wanted += 1
            current = {"event": "message", "id": None, "data": [], "comment": None}
        elif line.startswith(":"):
            current["comment"] = line[1:].strip()
        else:
            field, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field == "data":
                current["data"].append(value)
            elif field in ("event", "id"):
                current[field] = value
    return events


def read_sse_lines(response, count):
    return [json.loads(data) for _, event_id, data, _ in read_sse_events(response, count) if event_id is not None]


def open_sse(server, query="", headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=DEADLINE)
    conn.request("GET", "/sse" + query, headers=headers or {})
    response = conn.getresponse()
    return conn, response


def test_sse_stream_ids_are_epoch_and_seq_and_control_objects_are_named_events(serve, log):
    server = serve("--file", f"app={log}", "--initial-lines", "0")
    conn, response = open_sse(server, "?backlog=0")
    assert response.status == 200
    assert response.getheader("Content-Type").startswith("text/event-stream")
    first = read_sse_events(response, 1, kinds=("hello",))
    assert first[0][0] == "hello" and json.loads(first[0][2])["type"] == "hello"
    append(log, "one\ntwo\n")
    events = read_sse_events(response, 2)
    lines = [(event_id, json.loads(data)) for _, event_id, data, _ in events if event_id]
    epoch = server.health()["epoch"]
    assert [(i, o["msg"]) for i, o in lines] == [(f"{epoch}-{o['seq']}", o["msg"]) for _, o in lines]
    assert [o["msg"] for _, o in lines] == ["one", "two"]
    with open(log, "r+b") as handle:
        handle.truncate(0)
    events = read_sse_events(response, 1, kinds=("source",))
    assert events[-1][0] == "source" and json.loads(events[-1][2])["event"] == "truncated"
    conn.close()


def test_sse_last_event_id_resumes_with_exactly_the_missed_lines(serve, log):
    server = serve("--file", f"app={log}", "--initial-lines", "0")
    conn, response = open_sse(server, "?backlog=0&grep=keep")
    append(log, "keep 1\ndrop\nkeep 2\n")
    got = read_sse_lines(response, 2)
    last_id = got[-1]["seq"]
    conn.close()
    wait_for(lambda: server.health()["subscribers"] == 0, message="the first stream to end")
    append(log, "keep 3\ndrop\nkeep 4\n")
    wait_for(lambda: server.health()["last_seq"] == 6, message="lines published while away")
    conn, response = open_sse(server, "?grep=keep", {"Last-Event-ID": str(last_id)})
    resumed = read_sse_lines(response, 2)
    assert [line["msg"] for line in resumed] == ["keep 3", "keep 4"]
    append(log, "keep 5\n")
    assert [line["msg"] for line in read_sse_lines(response, 1)] == ["keep 5"]
    conn.close()


def test_sse_heartbeat_comments_and_text_format(serve, log):
    server = serve("--file", f"app={log}", "--initial-lines", "0", "--sse-heartbeat", "0.2")
    conn, response = open_sse(server, "?backlog=0&format=text")
    events = read_sse_events(response, 2, kinds=("comment",))
    assert [e[3] for e in events if e[3] is not None][:2] == ["heartbeat", "heartbeat"]
    append(log, "plain text line\n")
    events = read_sse_events(response, 1)
    assert events[-1][2] == "plain text line" and events[-1][1] is not None
    conn.close()


def test_sse_bad_filter_is_400_json_and_curl_works(serve, log):
    server = serve("--file", f"app={log}", "--initial-lines", "0")
    status, _, body = server.get("/sse?priority=loud")
    assert status == 400 and "priority" in json.loads(body)["error"]
    append(log, "for curl\n")
    # curl is installed by scripts/install-deps --test; --max-time ends the endless stream.
    result = subprocess.run(["curl", "-sN", "--max-time", "2", f"http://127.0.0.1:{server.port}/sse?backlog=5&grep=curl"],
                            capture_output=True, text=True)
    assert "event: hello" in result.stdout and '"msg":"for curl"' in result.stdout


def test_sse_stream_ends_on_shutdown_after_flushing(serve, log):
    server = serve("--file", f"app={log}", "--initial-lines", "0")
    conn, response = open_sse(server, "?backlog=0")
    read_sse_events(response, 1, kinds=("hello",))
    append(log, "".join(f"bye {i}\n" for i in range(100)))
    wait_for(lambda: server.health()["last_seq"] == 100, message="lines published")
    server.proc.send_signal(signal.SIGTERM)
    got = read_sse_lines(response, 100)
    assert [line["msg"] for line in got] == [f"bye {i}" for i in range(100)]
    assert response.read() == b"", "the stream ends after the flush"
    assert server.proc.wait(timeout=DEADLINE) == 0


# --- /api/v1/lines --------------------------------------------------------

def poll(server, query, headers=None):
    status, response_headers, body = server.get("/api/v1/lines" + query, headers)
    objects = [json.loads(line) for line in body.decode().splitlines()] if status == 200 else json.loads(body)
    return status, response_headers, objects


def test_polling_lines_after_a_seq_with_limit(serve, log):
    server = serve("--file", f"app={log}", "--initial-lines", "0", "--history", "50")
    append(log, "".join(f"l {i}\n" for i in range(1, 31)))
    wait_for(lambda: server.health()["last_seq"] == 30, message="lines published")
    status, headers, objects = poll(server, "?after=10&limit=5")
    assert status == 200 and headers["Content-Type"] == "application/x-ndjson"
    assert [o["seq"] for o in objects] == [11, 12, 13, 14, 15]
    assert headers["Logcast-Last-Seq"] == "30"
    epoch = headers["Logcast-Epoch"]
    _, _, objects = poll(server, f"?after=28&epoch={epoch}")
    assert [o["seq"] for o in objects] == [29, 30]
    # text format: raw lines
    status, _, body = server.get("/api/v1/lines?backlog=3&format=text")
    assert body.decode() == "l 28\nl 29\nl 30\n"
    _, _, objects = poll(server, "?after=30")
    assert objects == []


def test_polling_reports_eviction_and_restart_gaps(serve, log):
    server = serve("--file", f"app={log}", "--initial-lines", "0", "--history", "10", "--state-directory", "none")  # memory only: the history ends at --history
    append(log, "".join(f"l {i}\n" for i in range(1, 41)))
    wait_for(lambda: server.health()["last_seq"] == 40, message="lines published")
    _, headers, objects = poll(server, "?after=5&limit=3")
    assert objects[0] == {"type": "gap", "after": 5, "next": 31, "missed": 25, "reason": "evicted"}
    assert [o["seq"] for o in objects[1:]] == [31, 32, 33]
    _, _, objects = poll(server, "?after=5&epoch=0123456789abcdef&backlog=2")
    assert objects[0]["type"] == "gap" and objects[0]["reason"] == "restart"
    assert [o["seq"] for o in objects[1:]] == [39, 40]


@pytest.mark.parametrize("query, words", [("?limit=0", "limit"), ("?limit=abc", "limit"), ("?limit=20000", "limit"), ("?source=nope", "unknown source")])
def test_polling_bad_queries_are_400(serve, log, query, words):
    server = serve("--file", f"app={log}")
    status, _, body = poll(server, query)
    assert status == 400 and words in body["error"]


# --- the unit and the install ---------------------------------------------

def test_install_into_a_prefix_gives_a_working_layout_and_a_valid_unit(tmp_path, log):
    prefix = tmp_path / "prefix"
    result = subprocess.run([str(ROOT / "deploy" / "install.sh")], env={**os.environ, "PREFIX": str(prefix), "LOGCAST_BIN": str(BINARY)},
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    for relative in ["bin/logcast", "share/logcast/web/index.html", "share/logcast/web/app.js",
                     "lib/systemd/system/logcast.service", "lib/systemd/system/logcast.socket", "share/doc/logcast/README.md",
                     "etc/logcast/config.yaml"]:
        assert (prefix / relative).exists(), relative
    assert os.access(prefix / "bin" / "logcast", os.X_OK)
    # The man page renders and documents both commands, with the flags as the parser knows them.
    page = subprocess.run(["groff", "-mandoc", "-Tutf8", "-P-cbou", str(prefix / "share/man/man1/logcast.1")],
                          capture_output=True, text=True, check=True).stdout
    for words in ["logcast", "serve", "tail", "--case-sensitive", "--no-follow", "--tls-cert", "Exit codes"]:
        assert words in page.replace("\u2010", "-"), words
    # Completions for bash (loaded and registered by a real bash), zsh and fish.
    completion = prefix / "share/bash-completion/completions/logcast"
    registered = subprocess.run(["bash", "-c", f"source {completion} && complete -p logcast"], capture_output=True, text=True)
    assert registered.returncode == 0 and "logcast" in registered.stdout, registered.stderr
    assert "--case-sensitive" in completion.read_text()
    assert "#compdef logcast" in (prefix / "share/zsh/vendor-completions/_logcast").read_text()
    assert "complete -c 'logcast'" in (prefix / "share/fish/vendor_completions.d/logcast.fish").read_text()
    unit = (prefix / "lib/systemd/system/logcast.service").read_text()
    assert f"ExecStart={prefix}/bin/logcast serve --config {prefix}/etc/logcast/config.yaml" in unit
    assert f"--web-root {prefix}/share/logcast/web" in unit
    # The example config is valid as installed.
    checked = subprocess.run([str(prefix / "bin" / "logcast"), "serve", "--config", str(prefix / "etc/logcast/config.yaml"), "--check-config"],
                             capture_output=True, text=True, timeout=DEADLINE)
    assert checked.returncode == 0, checked.stderr
    # A second install keeps an edited config.
    (prefix / "etc/logcast/config.yaml").write_text("listen: 127.0.0.1:9999\n")
    again = subprocess.run([str(ROOT / "deploy" / "install.sh")], env={**os.environ, "PREFIX": str(prefix), "LOGCAST_BIN": str(BINARY)},
                           capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and "kept the existing" in again.stdout
    assert (prefix / "etc/logcast/config.yaml").read_text() == "listen: 127.0.0.1:9999\n"
    assert "Type=notify" in unit and "WatchdogSec=" in unit and "DynamicUser=yes" in unit
    # systemd 253+ gets a drop-in so `systemctl reload` waits for READY=1; older systemd (this one, 252) does not know the type.
    drop_in = prefix / "lib/systemd/system/logcast.service.d/notify-reload.conf"
    systemd_version = int(subprocess.run(["systemctl", "--version"], capture_output=True, text=True).stdout.split()[1])
    assert drop_in.exists() == (systemd_version >= 253)
    for choice in ["yes", "no"]:
        forced = subprocess.run([str(ROOT / "deploy" / "install.sh")],
                                env={**os.environ, "PREFIX": str(prefix), "LOGCAST_BIN": str(BINARY), "LOGCAST_NOTIFY_RELOAD": choice},
                                capture_output=True, text=True, timeout=120)
        assert forced.returncode == 0, forced.stderr
        for name in ["logcast.service", "logcast-gateway.service"]:
            path = prefix / f"lib/systemd/system/{name}.d/notify-reload.conf"
            assert path.exists() == (choice == "yes"), (choice, name)
            if choice == "yes":
                assert "Type=notify-reload" in path.read_text() and "\nExecReload=\n" in path.read_text()
    verify = subprocess.run(["systemd-analyze", "verify", str(prefix / "lib/systemd/system/logcast.service")],
                            capture_output=True, text=True)
    assert verify.returncode == 0, verify.stderr
    assert "logcast.service" not in verify.stderr, verify.stderr
    gateway_unit = (prefix / "lib/systemd/system/logcast-gateway.service").read_text()
    assert f"ExecStart={prefix}/bin/logcast serve --config {prefix}/etc/logcast/gateway.yaml" in gateway_unit
    assert "SupplementaryGroups" not in gateway_unit, "a gateway reads no logs"
    # The example gateway config is valid as installed (and names a cluster).
    checked = subprocess.run([str(prefix / "bin" / "logcast"), "serve", "--config", str(prefix / "etc/logcast/gateway.yaml"), "--check-config"],
                             capture_output=True, text=True, timeout=DEADLINE)
    assert checked.returncode == 0 and "role" in checked.stdout and "gateway" in checked.stdout, checked.stderr + checked.stdout
    # The installed binary serves the installed viewer from its own share/ folder.
    proc_binary = prefix / "bin" / "logcast"
    server = subprocess.Popen([str(proc_binary), "serve", "--listen", "127.0.0.1:0", "--file", f"app={log}"],
                              cwd="/", stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        port = None
        while port is None:
            line = server.stderr.readline()
            assert line, "server exited"
            match = re.search(r"address=http://[^ ]+:(\d+)", line)
            port = int(match.group(1)) if match else None
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=DEADLINE)
        conn.request("GET", "/")
        response = conn.getresponse()
        assert response.status == 200 and b"logcast" in response.read()
    finally:
        server.kill()
        server.wait()


@pytest.mark.parametrize("name", ["logcast.service", "logcast-gateway.service"])
def test_repository_unit_verifies_with_systemd_analyze(tmp_path, name):
    unit = (ROOT / "deploy" / name).read_text().replace("/usr/local/bin/logcast", str(BINARY))
    path = tmp_path / name
    path.write_text(unit)
    verify = subprocess.run(["systemd-analyze", "verify", str(path)], capture_output=True, text=True)
    assert verify.returncode == 0 and name not in verify.stderr, verify.stderr
    security = subprocess.run(["systemd-analyze", "security", "--offline=true", str(path)], capture_output=True, text=True)
    match = re.search(r"Overall exposure level for " + re.escape(name) + r": ([0-9.]+)", security.stdout)
    assert match, security.stdout[-500:]
    assert float(match.group(1)) <= 2.0, security.stdout[-2000:]


# --- socket activation ----------------------------------------------------

def test_socket_activation_adopts_the_passed_socket(tmp_path, log):
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    port = listener.getsockname()[1]
    # A client that connects before logcast even runs is queued by the kernel, as with systemd.
    early = socket.create_connection(("127.0.0.1", port), timeout=DEADLINE)
    early.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
    append(log, "hello activated\n")

    def as_fd_3():
        os.dup2(listener.fileno(), 3)

    proc = subprocess.Popen(
        ["sh", "-c", 'LISTEN_PID=$$ LISTEN_FDS=1 exec "$0" "$@"', str(BINARY), "serve", "--file", f"app={log}"],
        preexec_fn=as_fd_3, pass_fds=(3,), cwd=tmp_path,  # keep fd 3 (set by as_fd_3) open
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    listener.close()
    try:
        answer = b""
        while chunk := early.recv(65536):
            answer += chunk
        assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
        s = Stream(f"ws://127.0.0.1:{port}/ws?backlog=5")
        assert s.next()["type"] == "hello"
        assert s.until_barrier()[-1]["msg"] == "hello activated"
        s.close()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=DEADLINE) == 0
        log_text = proc.stderr.read()
        assert "adopted the listening socket passed by systemd" in log_text
        assert f"address=http://127.0.0.1:{port}" in log_text
    finally:
        early.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_socket_unit_verifies(tmp_path):
    unit_dir = tmp_path / "units"
    unit_dir.mkdir()
    (unit_dir / "logcast.service").write_text((ROOT / "deploy" / "logcast.service").read_text().replace("/usr/local/bin/logcast", str(BINARY)))
    (unit_dir / "logcast.socket").write_text((ROOT / "deploy" / "logcast.socket").read_text())
    verify = subprocess.run(["systemd-analyze", "verify", str(unit_dir / "logcast.socket"), str(unit_dir / "logcast.service")],
                            capture_output=True, text=True)
    assert verify.returncode == 0 and "logcast." not in verify.stderr, verify.stderr


@pytest.mark.parametrize("kind", ["file", "glob", "demo", "journal-directory", "journal-file", "system journal"])
def test_sigterm_ends_every_kind_of_source_cleanly(serve, tmp_path, kind):
    """A graceful shutdown (SIGTERM, Ctrl-C under `scripts/run`) ends every
    source's service without an error: exit status 0 and no `Error:` line.
    The demo writer, cancelled in its sleep, used to exit 1 with
    `Error: CancellationError()`."""
    log = tmp_path / "app.log"
    log.write_text("one\n")
    journal_dir = tmp_path / "journal"
    journal_dir.mkdir()
    args = {
        "file": ["--file", f"app={log}"],
        "glob": ["--file", f"app={tmp_path}/*.log"],
        "demo": ["--demo"],
        "journal-directory": ["--journal-directory", f"j={journal_dir}"],
        "journal-file": ["--journal-file", f"j={journal_dir}/none.journal"],
        "system journal": ["--journal"],
    }[kind]
    server = serve(*args)
    assert server.health()  # serving, its sources started
    server.stop(signal.SIGTERM)
    errors = [line for line in server.stderr_lines if line.startswith("Error") or " error " in line]
    assert server.proc.returncode == 0, "".join(server.stderr_lines)
    assert errors == [], errors
