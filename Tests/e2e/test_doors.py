"""The doors a review found open (issue 11), each pinned against the real
binary: access decided by the route whatever the spelling, DNS rebinding,
SSE framing, bounded resources, the tailer's identity rules, journal and SSE
resume, clients, and the smaller doors."""
import base64
import json
import os
import re
import signal
import socket
import struct
import subprocess
import threading
import time
import urllib.parse

import pytest
from websockets.exceptions import ConnectionClosed

from conftest import BINARY, DEADLINE, RawClient, Server, Stream, append, wait_for

TOKEN = "door-" + "5e1f0a" * 6


@pytest.fixture
def token_file(tmp_path):
    path = tmp_path / "tokens"
    path.write_text(TOKEN + "\n")
    return path


@pytest.fixture
def log(tmp_path):
    path = tmp_path / "app.log"
    path.write_text("first line\n")
    return path


def raw_request(port, target, headers=None, method="GET", host=None):
    """Sends one request exactly as given (no client-side normalisation).

    Returns (status, headers, body). A response without a length (a
    stream) is read only up to its head plus what arrived with it.
    """
    sock = socket.create_connection(("127.0.0.1", port), timeout=DEADLINE)
    lines = [f"{method} {target} HTTP/1.1"]
    all_headers = {"Host": host if host is not None else f"127.0.0.1:{port}", "Connection": "close"}
    all_headers.update(headers or {})
    lines += [f"{name}: {value}" for name, value in all_headers.items() if value is not None]
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
    head, _, body = read_head(sock).partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    status = int(status_line.split()[1])
    response_headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        response_headers[name.strip().lower()] = value.strip()
    if "content-length" in response_headers:
        length = int(response_headers["content-length"])
        while len(body) < length:
            chunk = sock.recv(65536)
            if not chunk:
                break
            body += chunk
    elif response_headers.get("transfer-encoding") == "chunked" and "event-stream" not in response_headers.get("content-type", ""):
        while not body.endswith(b"0\r\n\r\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            body += chunk
        body = dechunk(body)
    sock.close()
    return status, response_headers, body


def read_head(sock):
    """Reads until the end of a response head (or EOF); returns all bytes read."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def dechunk(data):
    out = b""
    while data:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out += data[:size]
        data = data[size + 2:]
    return out


def upgrade_headers(extra=None):
    headers = {
        "Connection": "Upgrade",
        "Upgrade": "websocket",
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode(),
    }
    headers.update(extra or {})
    return headers


def routes_of(args):
    """The router's own route list, as `--check-config` prints it."""
    out = subprocess.run([str(BINARY), "serve", *args, "--check-config"], capture_output=True, text=True, timeout=DEADLINE)
    assert out.returncode == 0, out.stderr
    routes = re.findall(r"^# route: (\S+) (\S+) (token|open)$", out.stdout, re.M)
    assert routes, out.stdout
    return routes


def spellings(path, port):
    """Spellings of `path` that a router or a proxy might treat as the same path."""
    parts = path.strip("/").split("/")
    out = {
        path + "/",
        "/" + path,
        path + "//",
        "//" + "//".join(parts),
        "/" + "/".join(parts) + "/./",
        "/./" + "/".join(parts),
        "/" + "/./".join(parts),
        path + "/.",
        path + "/..",
        "/" + "/".join(parts[:-1] + ["x", "..", parts[-1]]),
        path + "?",
        path + "?&",
        path + ";",
        path + "%2f",
        path + "%2F",
        path + "#fragment",
        path.upper(),
        "/" + "/".join(p.capitalize() for p in parts),
        path.replace("/", "\\"),
        f"http://127.0.0.1:{port}{path}",
        f"HTTP://127.0.0.1:{port}{path}",
        f"http://127.0.0.1:{port}/{path}",
        f"http://127.0.0.1:{port}{path}/",
    }
    # Every letter percent-encoded, one at a time, and all at once.
    for index, char in enumerate(path):
        if char.isalnum():
            out.add(path[:index] + f"%{ord(char):02x}" + path[index + 1:])
            out.add(path[:index] + f"%{ord(char):02X}" + path[index + 1:])
    out.add("".join(f"%{ord(c):02x}" if c.isalnum() else c for c in path))
    out.add(path.replace("/", "%2f"))
    out.discard(path)
    return sorted(out)


# --- CORS: pages of allowed origins may read, nobody else ----------------

ALLOWED = "https://logs.example.com"
PREFLIGHT = {"Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "authorization"}


def test_cors_grants_reading_to_allowed_origins_only_on_every_route_and_spelling(tmp_path, token_file, log):
    args = ["--file", f"app={log}", "--token-file", str(token_file), "--allow-origin", ALLOWED]
    routes = routes_of(args)
    server = Server(args, cwd=tmp_path).start()
    try:
        auth = {"Authorization": f"Bearer {TOKEN}"}
        own = f"http://127.0.0.1:{server.port}"
        targets = [path + "?backlog=0" if path == "/sse" else path for _, path, _ in routes] + ["/", "/app.js", "/no-such-file"]
        for path in targets:
            for target in [path] + ([spelling for spelling in spellings(path, server.port) if "#" not in spelling][:6] if "?" not in path else []):
                plain = raw_request(server.port, target, auth)
                if "content-security-policy" not in plain[1]:
                    continue  # refused by the HTTP parser (e.g. no leading slash): never reaches the application
                # An allowed origin reads what anyone with the token reads, with the grant.
                granted = raw_request(server.port, target, {"Origin": ALLOWED, **auth})
                assert granted[0] == plain[0], (target, granted[0], plain[0])
                assert granted[1].get("access-control-allow-origin") == ALLOWED, (target, granted[1])
                assert granted[1]["vary"] == "Origin" and "Logcast-Last-Seq" in granted[1]["access-control-expose-headers"]
                # Its preflight is answered without a token (browsers send none), whatever the route.
                preflight = raw_request(server.port, target, {"Origin": ALLOWED, **PREFLIGHT}, method="OPTIONS")
                assert preflight[0] == 204 and preflight[2] == b"", (target, preflight)
                assert preflight[1]["access-control-allow-origin"] == ALLOWED
                assert "GET" in preflight[1]["access-control-allow-methods"]
                assert "authorization" in preflight[1]["access-control-allow-headers"].lower()
                # Others get no grant: not a foreign page, not `null`, not the server's own pages (same origin needs none).
                for origin in ["https://evil.example", "null", "https://logs.example.com.evil.example", "http://logs.example.com", own]:
                    other = raw_request(server.port, target, {"Origin": origin, **auth})
                    assert "access-control-allow-origin" not in other[1], (target, origin)
                    if origin != own:
                        refused = raw_request(server.port, target, {"Origin": origin, **PREFLIGHT}, method="OPTIONS")
                        assert refused[0] == 403 and "access-control-allow-origin" not in refused[1], (target, origin, refused)
                        assert "--allow-origin" in json.loads(refused[2])["hint"]
        # A refusal is readable by the allowed page: it learns it needs a token.
        without = raw_request(server.port, "/api/v1/lines", {"Origin": ALLOWED})
        assert without[0] == 401 and without[1]["access-control-allow-origin"] == ALLOWED
        assert "token" in json.loads(without[2])["error"]
        # An OPTIONS that is not a preflight is not answered as one.
        bare = raw_request(server.port, "/api/v1/lines", {"Origin": ALLOWED}, method="OPTIONS")
        assert bare[0] != 204 and "access-control-allow-methods" not in bare[1]
    finally:
        server.stop()
    # `--allow-origin '*'` grants every http(s) origin, by name (never `*`, never `null`).
    anyone = Server(["--file", f"app={log}", "--allow-origin", "*"], cwd=tmp_path).start()
    try:
        for origin in ["https://a.example", "http://10.1.2.3:8000"]:
            granted = raw_request(anyone.port, "/api/v1/lines", {"Origin": origin})
            assert granted[0] == 200 and granted[1]["access-control-allow-origin"] == origin
        assert "access-control-allow-origin" not in raw_request(anyone.port, "/api/v1/lines", {"Origin": "null"})[1]
    finally:
        anyone.stop()


# --- 1. access control belongs to the route ---------------------------------

def test_every_spelling_that_reaches_a_protected_route_gets_the_canonical_refusal(tmp_path, token_file, log):
    args = ["--file", f"app={log}", "--token-file", str(token_file)]
    routes = routes_of(args)
    assert ("GET", "/healthz", "open") in routes
    protected = [path for method, path, access in routes if access == "token"]
    assert {"/ws", "/sse", "/api/v1/lines", "/api/v1/sources", "/metrics"} <= set(protected)
    server = Server(args, cwd=tmp_path).start()
    try:
        auth = {"Authorization": f"Bearer {TOKEN}"}
        reached = 0
        for path in protected:
            canonical = raw_request(server.port, path)
            assert canonical[0] == 401, (path, canonical)
            canonical_body = json.loads(canonical[2])
            foreign = raw_request(server.port, path, {"Origin": "https://evil.example", **auth})
            assert foreign[0] == 403, (path, foreign)
            for spelling in spellings(path, server.port):
                with_token = raw_request(server.port, spelling, auth)
                without = raw_request(server.port, spelling)
                cross_site = raw_request(server.port, spelling, {"Origin": "https://evil.example", **auth})
                if with_token[0] == 404 or b"malformed HTTP request" in with_token[2]:
                    # Not this route (nor any), or not HTTP at all: nothing is
                    # served, with or without a token.
                    assert without[0] == cross_site[0] == with_token[0], (spelling, without, cross_site)
                    continue
                reached += 1
                assert without[0] == 401, (spelling, without)
                assert json.loads(without[2]) == canonical_body, spelling
                assert without[1]["www-authenticate"] == canonical[1]["www-authenticate"]
                assert cross_site[0] == 403, (spelling, cross_site)
            # The same for WebSocket upgrades of every spelling.
            for spelling in [path] + spellings(path, server.port):
                upgraded = raw_request(server.port, spelling, upgrade_headers(auth))
                refused = raw_request(server.port, spelling, upgrade_headers())
                if upgraded[0] == 101:
                    assert path == "/ws"
                    assert refused[0] == 401 and json.loads(refused[2]) == canonical_body if path == "/ws" else True
                else:
                    assert refused[0] in (upgraded[0], 401), (spelling, upgraded[0], refused[0])
                    assert refused[0] != 101
        # The router does accept other spellings (trailing and doubled
        # slashes, absolute form): the test must have exercised them.
        assert reached >= 5 * len(protected)
    finally:
        server.stop()


def test_healthz_without_the_token_says_only_its_status(serve, token_file, log, tmp_path):
    server = serve("--file", f"app={log}", "--token-file", str(token_file))
    status, _, body = raw_request(server.port, "/healthz")
    assert status == 200 and json.loads(body) == {"status": "ok"}
    status, _, body = raw_request(server.port, "/healthz", {"Authorization": f"Bearer {TOKEN}"})
    details = json.loads(body)
    assert status == 200 and details["sources"] == {"app": "following"} and "epoch" in details
    # A failing source: still only the status without the token, no path, no error text.
    failing = serve("--file", f"secret={log}/private.log", "--token-file", str(token_file))
    wait_for(lambda: raw_request(failing.port, "/healthz")[0] == 503, message="the source to fail")
    status, _, body = raw_request(failing.port, "/healthz")
    assert json.loads(body) == {"status": "failing"}
    status, _, body = raw_request(failing.port, "/healthz", {"Authorization": f"Bearer {TOKEN}"})
    assert status == 503 and "private.log" in json.loads(body)["failing"][0]


# --- 2. DNS rebinding ------------------------------------------------------

def test_foreign_host_is_refused_on_every_route_and_upgrade(serve, log):
    server = serve("--file", f"app={log}")
    rebound = f"evil.example:{server.port}"
    targets = ["/", "/index.html", "/app.js", "/healthz", "/api/v1/sources", "/api/v1/lines", "/metrics", "/sse", "/ws", "/nope"]
    for target in targets:
        status, headers, body = raw_request(server.port, target, host=rebound)
        assert status == 421, (target, status)
        refusal = json.loads(body)
        assert "evil.example" in refusal["error"] and "--allow-host evil.example" in refusal["hint"], refusal
        assert headers["content-type"] == "application/json"
    # The rebinding attack itself: a page on evil.example opening a stream.
    status, _, body = raw_request(server.port, "/ws", upgrade_headers({"Origin": f"http://{rebound}"}), host=rebound)
    assert status == 421 and "--allow-host" in json.loads(body)["hint"]
    # Garbage in Host is refused too: by the HTTP parser, or as not a name.
    status, _, body = raw_request(server.port, "/", host="evil\x01.example")
    assert status == 400 and b"\x01" not in body
    status, _, body = raw_request(server.port, "/", host="evil!.example:x")
    assert status == 421 and "--allow-host NAME" in json.loads(body)["hint"]


@pytest.mark.parametrize("host", ["127.0.0.1:{port}", "localhost:{port}", "LOCALHOST.:{port}", "[::1]:{port}", "10.1.2.3:{port}", "app.localhost:{port}", "logcast-test-host:{port}", None])
def test_own_names_and_addresses_are_answered(serve, log, host):
    server = serve("--file", f"app={log}", "--host-name", "logcast-test-host")
    value = host.format(port=server.port) if host else None
    headers = {}
    if value is None:
        # HTTP/1.0 without Host: not a browser, cannot be a rebinding.
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=DEADLINE)
        sock.sendall(b"GET /healthz HTTP/1.0\r\n\r\n")
        data = b""
        while not data.endswith(b"}"):
            data += sock.recv(65536)
        sock.close()
        assert data.startswith(b"HTTP/1.1 200") or data.startswith(b"HTTP/1.0 200"), data[:100]
        return
    status, _, _ = raw_request(server.port, "/healthz", headers, host=value)
    assert status == 200
    status, _, _ = raw_request(server.port, "/ws", upgrade_headers({"Origin": f"http://{value}"}), host=value)
    assert status == 101


def test_allow_host_admits_a_name_and_star_admits_any(serve, log):
    server = serve("--file", f"app={log}", "--allow-host", "logs.example.com")
    assert raw_request(server.port, "/healthz", host="logs.example.com")[0] == 200
    assert raw_request(server.port, "/healthz", host="LOGS.example.com:443")[0] == 200
    assert raw_request(server.port, "/healthz", host="other.example.com")[0] == 421
    star = serve("--file", f"app={log}", "--allow-host", "*")
    assert raw_request(star.port, "/healthz", host="anything.example")[0] == 200


@pytest.mark.parametrize("value", ["http://logs.example.com", "logs.example.com/path", "a b", ""])
def test_bad_allow_host_stops_the_start(tmp_path, log, value):
    out = subprocess.run([str(BINARY), "serve", "--file", str(log), "--allow-host", value, "--check-config"], capture_output=True, text=True, timeout=DEADLINE)
    assert out.returncode == 2
    assert "--allow-host" in out.stderr and "not a host name" in out.stderr


# --- 3. SSE framing survives any line ending -------------------------------

def parse_sse(text):
    """A parser that follows the SSE spec's line rules (CR, LF and CRLF all
    end a line): returns the dispatched events as dicts, and the last retry."""
    events, data, fields, retry = [], [], {}, None
    for line in re.split(r"\r\n|\r|\n", text):
        if line == "":
            if data or fields:
                events.append({**fields, "data": "\n".join(data)})
            data, fields = [], {}
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "data":
            data.append(value)
        elif name == "retry":
            retry = value
        elif name in ("id", "event"):
            fields[name] = value
    return events, retry


def read_sse(port, target, until, headers=None, timeout=DEADLINE):
    """Reads an SSE response until `until(text)` holds; returns (status, text)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    sock.sendall(f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{extra}\r\n".encode())
    data = b""
    try:
        while b"\r\n\r\n" not in data:
            data += sock.recv(65536)
        head, _, body = data.partition(b"\r\n\r\n")
        status = int(head.split()[1])
        if status != 200:
            # A refusal: its whole body (the head and the body may come in separate writes).
            length = int(re.search(rb"(?im)^content-length:\s*(\d+)", head).group(1))
            while len(body) < length:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                body += chunk
            return status, body.decode()
        text = dechunk_partial(body)
        while not until(text):
            chunk = sock.recv(65536)
            if not chunk:
                break
            body += chunk
            text = dechunk_partial(body)
        return status, text
    finally:
        sock.close()


def dechunk_partial(data):
    out = b""
    while True:
        size_line, sep, rest = data.partition(b"\r\n")
        if not sep:
            break
        size = int(size_line.split(b";")[0] or b"0", 16)
        if size == 0 or len(rest) < size + 2:
            break
        out += rest[:size]
        data = rest[size + 2:]
    return out.decode()


HOSTILE = ["x\rid: 999\rretry: 99999999", "a\r\rb", "event: gap\rdata: {}", "\rid:1", "mid\r\rtail\r"]


def as_read(message):
    """The message as logcast stores it: a trailing CR (of a CRLF line end) is dropped."""
    return message[:-1] if message.endswith("\r") else message


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_sse_framing_survives_any_line_ending(serve, log, fmt):
    server = serve("--file", f"app={log}", "--initial-lines", "0")
    for message in HOSTILE:
        append(log, message + "\n")
    append(log, "last\n")
    wanted = len(HOSTILE) + 1
    status, text = read_sse(server.port, f"/sse?backlog=100&format={fmt}",
                            lambda t: len([e for e in parse_sse(t)[0] if "id" in e]) >= wanted)
    assert status == 200
    events, retry = parse_sse(text)
    lines = [e for e in events if "id" in e]
    assert retry is None
    assert len(lines) == wanted
    assert all(re.fullmatch(r"[0-9a-f]{16}-\d+", e["id"]) for e in lines), [e["id"] for e in lines]
    assert all("event" not in e for e in lines)
    for event, message in zip(lines, HOSTILE + ["last"]):
        if fmt == "json":
            assert json.loads(event["data"])["msg"] == as_read(message)
        else:
            # Every CR became a line break of the data, none a field of its own.
            assert event["data"] == re.sub(r"\r\n|\r", "\n", as_read(message))


def test_sse_framing_in_a_real_event_source(serve, log):
    from viewer_support import make_driver
    server = serve("--file", f"app={log}", "--initial-lines", "0")
    for message in HOSTILE:
        append(log, message + "\n")
    driver = make_driver()
    try:
        driver.get(f"http://127.0.0.1:{server.port}/")
        got = driver.execute_async_script("""
            const done = arguments[arguments.length - 1];
            const seen = [];
            const source = new EventSource('/sse?format=text&backlog=100');
            source.onmessage = (e) => {
                seen.push({id: e.lastEventId, data: e.data});
                if (seen.length === arguments[0]) { source.close(); done(seen); }
            };
            source.onerror = () => { source.close(); done(seen); };
        """, len(HOSTILE))
    finally:
        driver.quit()
    assert [e["data"] for e in got] == [re.sub(r"\r\n|\r", "\n", as_read(m)) for m in HOSTILE]
    assert all(re.fullmatch(r"[0-9a-f]{16}-\d+", e["id"]) for e in got)


# --- 7c. SSE ids carry the epoch; Last-Event-ID wins --------------------------

def sse_lines(text):
    return [e for e in parse_sse(text)[0] if "id" in e]


def test_last_event_id_wins_over_after_in_the_url(serve, log):
    server = serve("--file", f"app={log}", "--initial-lines", "0")
    for i in range(5):
        append(log, f"line {i}\n")
    wait_for(lambda: server.health()["last_seq"] == 5)
    _, text = read_sse(server.port, "/sse?backlog=5", lambda t: len(sse_lines(t)) >= 5)
    ids = [e["id"] for e in sse_lines(text)]
    epoch = ids[0].split("-")[0]
    # An EventSource reconnects to its original URL (after=0) with Last-Event-ID: the header wins.
    _, text = read_sse(server.port, "/sse?after=0&backlog=0", lambda t: len(sse_lines(t)) >= 2,
                       headers={"Last-Event-ID": ids[2]})
    assert [json.loads(e["data"])["msg"] for e in sse_lines(text)] == ["line 3", "line 4"]
    # A malformed Last-Event-ID is refused with a hint.
    status, body = read_sse(server.port, "/sse", lambda t: True, headers={"Last-Event-ID": "x y"})
    assert status == 400 and "EPOCH-SEQ" in json.loads(body)["hint"]
    assert epoch == server.health()["epoch"]


def test_sse_resume_across_a_restart_gets_a_restart_gap(tmp_path, log):
    server = Server(["--file", f"app={log}", "--initial-lines", "0"], cwd=tmp_path).start()
    append(log, "before\n")
    _, text = read_sse(server.port, "/sse", lambda t: len(sse_lines(t)) >= 1)
    last_id = sse_lines(text)[0]["id"]
    server.stop()
    again = Server(["--file", f"app={log}", "--initial-lines", "0"], cwd=tmp_path).start()
    try:
        append(log, "after\n")
        wait_for(lambda: again.health()["last_seq"] == 1)
        _, text = read_sse(again.port, "/sse", lambda t: len(sse_lines(t)) >= 1, headers={"Last-Event-ID": last_id})
        events, _ = parse_sse(text)
        gaps = [json.loads(e["data"]) for e in events if e.get("event") == "gap"]
        assert gaps and gaps[0]["reason"] == "restart"
        assert [json.loads(e["data"])["msg"] for e in sse_lines(text)] == ["after"]
        assert sse_lines(text)[0]["id"].split("-")[0] != last_id.split("-")[0]
    finally:
        again.stop()


# --- 5. bounded everything ---------------------------------------------------

def test_sse_clients_that_vanish_at_once_leave_no_subscription(serve, log):
    server = serve("--file", f"app={log}")
    for _ in range(300):
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=DEADLINE)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.sendall(f"GET /sse HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n\r\n".encode())
        sock.close()  # a reset, before the response head is read
    wait_for(lambda: server.health()["subscribers"] == 0, message="every subscription to go")
    # And the stream still works.
    append(log, "still here\n")
    wait_for(lambda: server.health()["last_seq"] == 2, message="the line to be read")
    _, text = read_sse(server.port, "/sse?backlog=1", lambda t: len(sse_lines(t)) >= 1)
    assert json.loads(sse_lines(text)[0]["data"])["msg"] == "still here"


def test_sse_honours_the_per_address_limit(serve, log):
    server = serve("--file", f"app={log}", "--max-connections-per-address", "2")
    socks = []
    for _ in range(2):
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=DEADLINE)
        sock.sendall(f"GET /sse HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n\r\n".encode())
        data = b""
        while b"\r\n\r\n" not in data:
            data += sock.recv(65536)
        assert data.startswith(b"HTTP/1.1 200")
        socks.append(sock)
    status, _, body = raw_request(server.port, "/sse")
    assert status == 429 and "--max-connections-per-address" in json.loads(body)["hint"]
    # WebSocket streams count against the same limit.
    assert raw_request(server.port, "/ws", upgrade_headers())[0] == 429
    for sock in socks:
        sock.close()
    wait_for(lambda: raw_request(server.port, "/ws", upgrade_headers())[0] == 101, message="the places to be given back")


def test_a_burst_of_connects_never_exceeds_the_limits(serve, log):
    server = serve("--file", f"app={log}", "--max-connections-per-address", "16", "--max-subscribers", "1024")
    barrier = threading.Barrier(200)
    results, socks, lock = [], [], threading.Lock()

    def connect():
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=DEADLINE)
        request = (f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   f"Sec-WebSocket-Key: {base64.b64encode(os.urandom(16)).decode()}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode()
        barrier.wait()
        sock.sendall(request)
        data = read_head(sock)
        with lock:
            results.append(int(data.split()[1]))
            socks.append(sock)

    threads = [threading.Thread(target=connect) for _ in range(200)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert results.count(101) == 16, sorted(results)
        assert results.count(429) == 184
        assert server.health()["subscribers"] == 16
    finally:
        for sock in socks:
            sock.close()


def test_a_client_flooding_messages_without_reading_is_closed_with_1008(serve, log):
    server = serve("--file", f"app={log}")
    client = RawClient(server.port, "?backlog=0")
    for _ in range(150):
        client.send_frame(1, json.dumps({"type": "subscribe", "filter": {}}).encode())
    objects, code = client.read_until_close()
    client.close()
    assert code == 1008
    errors = [o for o in objects if o["type"] == "error"]
    # At most one reply per refused message (merged while unsent: when the
    # writer is slower than the flood, the one merged reply may still be
    # queued when the close drops the queue), and the connection ends at the
    # documented count.
    assert len(errors) <= 100, len(errors)
    for error in errors:
        assert "too many messages" in error["error"]
        assert int(re.search(r"\((\d+) in a row", error["error"]).group(1)) <= 99
    # Everyone else goes on.
    s = Stream(server.ws_url + "?backlog=0")
    assert s.next()["type"] == "hello"
    append(log, "after the flood\n")
    assert s.lines(1)[0]["msg"] == "after the flood"
    s.close()


# --- 10. replies survive a resubscribe -------------------------------------

def test_an_error_reply_survives_the_next_subscribe(serve, log):
    server = serve("--file", f"app={log}", "--initial-lines", "0")
    for attempt in range(20):
        s = Stream(server.ws_url + "?backlog=0")
        assert s.next()["type"] == "hello"
        # Both in one burst: the reply to the first must not be lost to the second.
        s.ws.send('{"type":"no-such-type"}')
        s.send({"type": "subscribe", "filter": {"grep": ["x"]}, "backlog": 0})
        first, second = s.next(), s.next()
        assert first["type"] == "error" and "no-such-type" in first["error"], first
        assert second["type"] == "subscribed"
        s.close()


# --- 9a. a revoked token closes its streams ---------------------------------

# With and without permessage-deflate: an idle uncompressed stream's writer
# runs on the event loop without a task, a compressed one's in a task.
@pytest.mark.parametrize("compression", ["deflate", None])
def test_revoking_a_token_closes_its_streams_and_only_those(serve, tmp_path, log, compression):
    tokens = tmp_path / "tokens"
    tokens.write_text("keep-this-token-1234\nrevoke-this-token-5678\n")
    server = serve("--file", f"app={log}", "--token-file", str(tokens), "--initial-lines", "0")
    kept = Stream(server.ws_url + "?backlog=0", additional_headers={"Authorization": "Bearer keep-this-token-1234"},
                  compression=compression)
    doomed = Stream(server.ws_url + "?backlog=0", additional_headers={"Authorization": "Bearer revoke-this-token-5678"},
                    compression=compression)
    assert kept.next()["type"] == "hello" and doomed.next()["type"] == "hello"
    sse = socket.create_connection(("127.0.0.1", server.port), timeout=DEADLINE)
    sse.sendall(f"GET /sse?backlog=0 HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nAuthorization: Bearer revoke-this-token-5678\r\n\r\n".encode())
    data = b""
    while b"event: hello" not in data:
        data += sse.recv(65536)
    tokens.write_text("keep-this-token-1234\n")
    server.proc.send_signal(signal.SIGHUP)
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            doomed.next()
    assert closed.value.rcvd.code == 4401 and closed.value.rcvd.reason == "token revoked"
    # The SSE stream with the revoked token ends too (its last chunk).
    while not data.endswith(b"\r\n0\r\n\r\n"):
        chunk = sse.recv(65536)
        assert chunk, "connection closed before the stream ended"
        data += chunk
    sse.close()
    append(log, "still streaming\n")
    assert kept.lines(1)[0]["msg"] == "still streaming"
    kept.close()


# --- 6. the file tailer: every generation once, renamed members, odd files ---

def collect_lines(s, count):
    out = []
    while len(out) < count:
        obj = s.next()
        if obj["type"] == "line":
            out.append(obj["msg"])
    return out


def test_two_quick_rotations_while_a_large_file_drains_lose_nothing(serve, stream, tmp_path, polling):
    log = tmp_path / "app.log"
    log.touch()
    server = serve("--file", f"app={log}", "--initial-lines", "0", *polling)
    s = stream(server.ws_url + "?backlog=0")
    assert s.next()["type"] == "hello"
    big = [f"big {i:05d} " + "x" * 2000 for i in range(3000)]
    for attempt in range(3):
        tag = f"r{attempt}"
        append(log, "".join(f"{tag} {line}\n" for line in big))
        os.rename(log, tmp_path / f"app.log.{tag}.1")
        append(log, f"{tag} A\n", mode="w")
        os.rename(log, tmp_path / f"app.log.{tag}.2")
        append(log, f"{tag} B1\n{tag} B2\n", mode="w")
        got = collect_lines(s, len(big) + 3)
        assert got == [f"{tag} {line}" for line in big] + [f"{tag} A", f"{tag} B1", f"{tag} B2"]
    # And nothing more (no generation read twice): a marker comes next.
    append(log, "marker\n")
    assert collect_lines(s, 1) == ["marker"]


def test_a_glob_matching_rotated_names_reads_each_file_once_and_skips_compressed(serve, stream, tmp_path, polling):
    import gzip
    logs = tmp_path / "logs"
    logs.mkdir()
    with gzip.open(logs / "app.log.3.gz", "wb") as handle:
        handle.write(b"compressed old line\n" * 100)
    (logs / "app.log").write_text("")
    server = serve("--file", f"app={logs}/*.log*", "--initial-lines", "0", *polling)
    s = stream(server.ws_url + "?backlog=0")
    assert s.next()["type"] == "hello"
    append(logs / "app.log", "one\ntwo\n")
    assert collect_lines(s, 2) == ["one", "two"]
    for generation in range(3):
        os.rename(logs / "app.log", logs / f"app.log.{generation + 1}.tmp")
        append(logs / "app.log", f"gen {generation}\n", mode="w")
        assert collect_lines(s, 1) == [f"gen {generation}"]
    # The renamed files were not read again from the start, and writes to one
    # of them (a writer that still has it open) are still followed.
    append(logs / "app.log.1.tmp", "late line in the renamed file\n")
    items = []
    while len([i for i in items if i["type"] == "line"]) < 1:
        items.append(s.next())
    assert [i["msg"] for i in items if i["type"] == "line"] == ["late line in the renamed file"]
    append(logs / "app.log", "marker\n")
    assert collect_lines(s, 1) == ["marker"]
    sources = json.loads(server.get("/api/v1/sources")[2])
    assert sources[0]["events"].get("skipped") == 1
    assert not any("compressed old line" in str(i) for i in items)


def test_a_new_compressed_member_gets_a_skipped_event(serve, stream, tmp_path):
    import gzip
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "app.log").write_text("")
    server = serve("--file", f"app={logs}/*", "--initial-lines", "0")
    s = stream(server.ws_url + "?backlog=0")
    assert s.next()["type"] == "hello"
    with gzip.open(logs / "app.log.1.gz", "wb") as handle:
        handle.write(b"binary\n" * 10)
    event = s.next_of("source")
    assert event["event"] == "skipped" and event["path"].endswith("app.log.1.gz")
    assert "gzip" in event["reason"]
    append(logs / "app.log", "text line\n")
    assert collect_lines(s, 1) == ["text line"]


def test_a_fifo_is_refused_with_a_clear_error(serve, tmp_path):
    fifo = tmp_path / "pipe.log"
    os.mkfifo(fifo)
    server = serve("--file", f"pipe={fifo}")
    wait_for(lambda: server.get("/healthz")[0] == 503, message="the source to fail")
    source = json.loads(server.get("/api/v1/sources")[2])[0]
    assert source["state"] == "failing"
    assert "not a regular file (a FIFO)" in source["last_error"]


def test_a_dev_zero_symlink_in_a_glob_is_skipped_and_does_not_starve_the_rest(tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    os.symlink("/dev/zero", logs / "zero.log")
    (logs / "app.log").write_text("")
    server = Server(["--file", f"app={logs}/*.log", "--initial-lines", "0"], cwd=tmp_path).start()
    try:
        s = Stream(server.ws_url + "?backlog=0")
        assert s.next()["type"] == "hello"
        append(logs / "app.log", "real line\n")
        assert collect_lines(s, 1) == ["real line"]
        sources = json.loads(server.get("/api/v1/sources")[2])
        assert sources[0]["events"].get("skipped") == 1
        s.close()
        server.proc.send_signal(signal.SIGTERM)
        assert server.proc.wait(timeout=DEADLINE) == 0
    finally:
        server.stop()


# --- 5d. timeouts and a cap on connections ------------------------------------

def open_fds(server):
    return len(os.listdir(f"/proc/{server.proc.pid}/fd"))


def half_sent(port, count):
    socks = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=DEADLINE)
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHo")
        socks.append(sock)
    return socks


def closed_by_server(sock):
    sock.settimeout(DEADLINE)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def test_half_sent_requests_are_closed_after_the_head_timeout(serve, log):
    server = serve("--file", f"app={log}", "--request-head-timeout", "1")
    baseline = open_fds(server)
    socks = half_sent(server.port, 300)
    try:
        for sock in socks:
            assert closed_by_server(sock)
        wait_for(lambda: open_fds(server) <= baseline + 5, message="the descriptors to be given back")
        # A complete request on a connection is not cut by the head timeout.
        assert raw_request(server.port, "/healthz")[0] == 200
        assert dropped(server, "head-timeout") == 300
        # A connection its client closes before sending anything is not a timeout.
        quiet = socket.create_connection(("127.0.0.1", server.port), timeout=DEADLINE)
        quiet.close()
        timed_out = half_sent(server.port, 1)
        assert closed_by_server(timed_out[0])
        timed_out[0].close()
        assert dropped(server, "head-timeout") == 301
        assert dropped(server, "over-capacity") == 0
    finally:
        for sock in socks:
            sock.close()


def dropped(server, reason):
    text = server.get("/metrics")[2].decode()
    line = f'logcast_connections_dropped_total{{reason="{reason}"}} '
    return int(float(next(l for l in text.splitlines() if l.startswith(line)).split()[-1]))


def test_sources_can_open_files_when_clients_hold_every_descriptor(tmp_path, log):
    # soft = hard limit: logcast cannot raise it, so the cap must come from the limit.
    server = Server(["--file", f"app={log}", "--initial-lines", "0"], cwd=tmp_path,
                    wrapper=("prlimit", "--nofile=300:300", "--")).start()
    socks = []
    try:
        s = Stream(server.ws_url + "?backlog=0")
        assert s.next()["type"] == "hello"
        socks = half_sent(server.port, 400)
        assert open_fds(server) < 300
        # Rotation needs a descriptor for the new file: there is one.
        os.rename(log, tmp_path / "app.log.1")
        append(log, "after rotation\n", mode="w")
        assert collect_lines(s, 1) == ["after rotation"]
        # Connections over the cap were closed at once, not left hanging,
        # counted, and logged once (not once per connection).
        assert sum(1 for sock in socks[-100:] if closed_by_server(sock)) == 100
        for sock in socks:
            sock.close()
        wait_for(lambda: open_fds(server) < 100, message="the half-sent connections to be closed")
        assert dropped(server, "over-capacity") >= 100
        notices = [l for l in server.stderr_lines if "closing connections over the connection limit" in l]
        assert len(notices) == 1, notices
        assert "--max-connections" in notices[0]
        s.close()
    finally:
        for sock in socks:
            sock.close()
        server.stop()


# --- 4. no filter work under the hub's lock -----------------------------------

HOSTILE_REGEX = "(.*?){30}(?!)"


def test_hostile_scans_neither_stall_publishing_nor_other_subscribers(serve, log):
    server = serve("--file", f"app={log}", "--initial-lines", "0")
    append(log, "".join(f"history line {i} with some text to backtrack over\n" for i in range(10_000)))
    wait_for(lambda: server.health()["last_seq"] == 10_000, message="the history to fill")
    s = Stream(server.ws_url + "?backlog=0")
    assert s.next()["type"] == "hello"
    stop = threading.Event()
    scans = []

    def hostile():
        query = "/api/v1/lines?limit=1&regex=" + urllib.parse.quote(HOSTILE_REGEX)
        while not stop.is_set():
            status, headers, body = raw_request(server.port, query)
            scans.append((status, headers.get("logcast-scan"), body))

    threads = [threading.Thread(target=hostile) for _ in range(6)]
    for thread in threads:
        thread.start()
    try:
        wait_for(lambda: len(scans) >= 1, message="a hostile scan to finish")
        # While they repeat, a normal subscriber keeps receiving, and a new
        # one can subscribe and /healthz answers.
        for i in range(20):
            append(log, f"live {i}\n")
            assert collect_lines(s, 1) == [f"live {i}"]
        assert server.get("/healthz")[0] == 200
        other = Stream(server.ws_url + "?backlog=1")
        assert other.next()["type"] == "hello" and other.lines(1)[0]["msg"] == "live 19"
        other.close()
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    # Each hostile read ends; one cut short says so, in the header and the body.
    for status, scan, body in scans:
        assert status in (200, 503), status
        if status == 200 and scan == "incomplete":
            tail = json.loads(body.decode().splitlines()[-1])
            assert tail["type"] == "incomplete" and tail["reason"] == "scan-budget" and "after=" in tail["hint"]
    assert any(status == 200 for status, _, _ in scans)


def test_lines_reads_are_bounded_in_concurrency(serve, log):
    server = serve("--file", f"app={log}", "--initial-lines", "0")
    append(log, "".join(f"line {i}\n" for i in range(10_000)))
    wait_for(lambda: server.health()["last_seq"] == 10_000, message="the history to fill")
    barrier = threading.Barrier(24)
    statuses = []

    def read():
        barrier.wait()
        statuses.append(raw_request(server.port, "/api/v1/lines?limit=10000&regex=" + urllib.parse.quote(HOSTILE_REGEX))[0])

    threads = [threading.Thread(target=read) for _ in range(24)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert set(statuses) <= {200, 503} and 200 in statuses
    # A plain read streams the whole history.
    status, headers, body = raw_request(server.port, "/api/v1/lines?limit=10000&format=text")
    assert status == 200 and headers["logcast-scan"] == "complete"
    assert body.decode().splitlines() == [f"line {i}" for i in range(10_000)]


# --- 9b, 9c. the viewer comes from the install, the demo from a private directory

def test_the_viewer_is_never_served_from_the_working_directory(serve, tmp_path, log):
    (tmp_path / "web").mkdir()
    (tmp_path / "web" / "index.html").write_text("<html>PLANTED VIEWER</html>")
    server = serve("--file", f"app={log}")  # started in tmp_path
    status, _, body = raw_request(server.port, "/")
    assert b"PLANTED" not in body
    assert any("serving the viewer" in line and str(tmp_path) not in line for line in server.stderr_lines)


def test_demo_writes_into_a_private_new_directory(serve):
    server = serve("--demo")
    pattern = json.loads(server.get("/api/v1/sources")[2])[0]["pattern"]
    directory = os.path.dirname(pattern)
    assert not re.search(r"logcast-demo-\d+$", directory), directory
    assert os.stat(directory).st_mode & 0o777 == 0o700
    other = serve("--demo")
    assert os.path.dirname(json.loads(other.get("/api/v1/sources")[2])[0]["pattern"]) != directory


# --- 8b. logcast tail does not let a log line drive the terminal ---------------

def run_tail(*args):
    """Runs `logcast tail`; stdout and stderr decoded as they are (no newline translation: a CR stays a CR)."""
    result = subprocess.run([str(BINARY), "tail", *args], capture_output=True, timeout=DEADLINE)
    result.stdout, result.stderr = result.stdout.decode(), result.stderr.decode()
    return result


def test_tail_shows_control_characters_visibly(serve, tmp_path):
    log = tmp_path / "app.log"
    hostile = "title \x1b]0;pwned\x07 clear \x1b[2J\x1b[H back\rover \x1b[31mred\x1b[0m bell\x07 c1\u009b bidi\u202e"
    append(log, hostile + "\n")
    server = serve("--file", f"app={log}", "--initial-lines", "10", "--host-name", "evil\x1b[2Jhost")
    wait_for(lambda: server.health()["last_seq"] == 1, message="the line")
    url = f"ws://127.0.0.1:{server.port}"
    for mode in ("short", "cat"):
        out = run_tail(url, "--no-follow", "-o", mode).stdout
        assert "\x1b" not in out and "\r" not in out and "\x07" not in out and "\u009b" not in out and "\u202e" not in out
        assert "\\x1b]0;pwned\\x07" in out and "back\\rover" in out and "\\x9b" in out and "\\x202e" in out
    short = run_tail(url, "--no-follow").stdout
    assert "evil\\x1b[2Jhost" in short
    # Colours from the log are kept only when asked, everything else stays escaped.
    coloured = run_tail(url, "--no-follow", "-o", "cat", "--control-characters", "color").stdout
    assert "\x1b[31mred\x1b[0m" in coloured and "\\x1b]0;pwned" in coloured and "\\x1b[2J" in coloured
    assert "\x1b]" not in coloured and "\x07" not in coloured and "\x1b[2J" not in coloured
    raw = run_tail(url, "--no-follow", "-o", "cat", "--control-characters", "raw").stdout
    assert raw.rstrip("\n") == hostile
    bad = run_tail(url, "--no-follow", "--control-characters", "nope")
    assert bad.returncode == 2 and "--control-characters" in bad.stderr


# --- 7. the journal: no replay on an early reopen, own entries told apart ------

def journalctl_count(directory):
    out = subprocess.run(["journalctl", "--directory", str(directory), "-o", "cat", "--no-pager"], capture_output=True, text=True)
    return len(out.stdout.splitlines()) if out.returncode == 0 else 0


def test_a_reopen_before_the_first_new_entry_does_not_replay_the_journal(tmp_path):
    from journal_support import JournalWriter
    journal_dir = tmp_path / "journal"
    journal_dir.mkdir()
    writer = JournalWriter(journal_dir)
    try:
        writer.write(*({"MESSAGE": f"old {i}", "PRIORITY": 6} for i in range(30)))
        wait_for(lambda: journalctl_count(journal_dir) >= 1, message="the entries in the journal")
        server = Server(["--journal-directory", str(journal_dir), "--initial-lines", "0"], cwd=tmp_path).start()
        try:
            s = Stream(server.ws_url + "?backlog=0")
            assert s.next()["type"] == "hello"
            server.proc.send_signal(signal.SIGHUP)
            assert s.next_of("source")["event"] == "reopened"
            writer.write({"MESSAGE": "new entry", "PRIORITY": 6})
            assert [line["msg"] for line in s.lines(1)] == ["new entry"]
            assert server.health()["last_seq"] == 1
            s.close()
        finally:
            server.stop()
    finally:
        writer.close()


def test_as_pid_1_the_hosts_pid_1_entries_are_streamed(tmp_path):
    from journal_support import THIS_BOOT_ID, JournalWriter
    journal_dir = tmp_path / "journal"
    journal_dir.mkdir()
    writer = JournalWriter(journal_dir)
    try:
        writer.write({"MESSAGE": "before", "PRIORITY": 6})
        wait_for(lambda: journalctl_count(journal_dir) >= 1, message="the entries in the journal")
        # A new PID namespace: logcast is PID 1 there, as in a container.
        server = Server(["--journal-directory", str(journal_dir), "--initial-lines", "0"], cwd=tmp_path,
                        wrapper=("unshare", "--pid", "--fork", "--mount-proc", "--kill-child")).start()
        try:
            s = Stream(server.ws_url + "?backlog=0")
            assert s.next()["type"] == "hello"
            writer.write(
                {"MESSAGE": "Started nginx.service.", "PRIORITY": 6, "_PID": 1, "_COMM": "systemd", "_BOOT_ID": THIS_BOOT_ID,
                 "__REALTIME_TIMESTAMP": int(time.time() * 1_000_000)},
                {"MESSAGE": "logcast's own line", "PRIORITY": 6, "_PID": 1, "_COMM": "logcast", "_BOOT_ID": THIS_BOOT_ID,
                 "__REALTIME_TIMESTAMP": int(time.time() * 1_000_000) + 1},
                {"MESSAGE": "marker", "PRIORITY": 6},
            )
            assert [line["msg"] for line in s.lines(2)] == ["Started nginx.service.", "marker"]
            s.close()
        finally:
            server.stop()
    finally:
        writer.close()
