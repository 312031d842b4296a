"""The doors a review found open (issue 11), each pinned against the real
binary: access decided by the route whatever the spelling, DNS rebinding,
SSE framing, bounded resources, the tailer's identity rules, journal and SSE
resume, clients, and the smaller doors."""
import base64
import json
import os
import re
import socket
import subprocess

import pytest

from conftest import BINARY, DEADLINE, Server, append, wait_for

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
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
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
    elif response_headers.get("transfer-encoding") == "chunked" and status != 200:
        while not body.endswith(b"0\r\n\r\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            body += chunk
        body = dechunk(body)
    sock.close()
    return status, response_headers, body


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
