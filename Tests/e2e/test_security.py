"""Security rules against the live binary: tokens, origin, limits, TLS,
static files, and a hostile-input sweep after which everything still works.

(The ReDoS rule, a pathological regex next to a normal subscriber, is pinned
in test_filters.py.)"""
import base64
import http.client
import json
import os
import random
import signal
import socket
import ssl
import subprocess
import time
from pathlib import Path

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect as ws_connect

from conftest import BINARY, DEADLINE, RawClient, Server, Stream, append, make_certificate, wait_for

TOKEN = "tok-" + "7f3a9c" * 6


@pytest.fixture
def token_file(tmp_path):
    path = tmp_path / "tokens"
    path.write_text(f"# test tokens\n{TOKEN}\nsecond-token-value-1234\n")
    return path


@pytest.fixture
def log(tmp_path):
    path = tmp_path / "app.log"
    path.write_text("")
    return path


def refused(url, **kwargs):
    """Tries a WebSocket connection that must be refused; returns (status, headers, json body)."""
    with pytest.raises(InvalidStatus) as caught:
        ws_connect(url, open_timeout=DEADLINE, **kwargs).__enter__()
    response = caught.value.response
    return response.status_code, response.headers, json.loads(response.body)


def b64url(text):
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


# --- tokens ---------------------------------------------------------------

def test_stream_without_token_is_401_with_challenge(serve, token_file, log):
    server = serve("--file", f"app={log}", "--token-file", str(token_file))
    status, headers, body = refused(server.ws_url)
    assert status == 401
    assert headers["WWW-Authenticate"].startswith("Bearer")
    assert body["error"] == "token required"
    assert "Authorization: Bearer" in body["hint"]


def test_token_is_checked_before_the_filter_so_sources_do_not_leak(serve, token_file, log):
    server = serve("--file", f"app={log}", "--token-file", str(token_file))
    status, _, body = refused(server.ws_url + "?source=nope")
    assert status == 401
    assert "app" not in json.dumps(body)


def test_token_accepted_by_header(serve, token_file, log):
    server = serve("--file", f"app={log}", "--token-file", str(token_file))
    s = Stream(server.ws_url, additional_headers={"Authorization": f"Bearer {TOKEN}"})
    assert s.next()["type"] == "hello"
    append(log, "secret line\n")
    assert s.lines(1)[0]["msg"] == "secret line"
    s.close()
    s = Stream(server.ws_url, additional_headers={"Authorization": "Bearer second-token-value-1234"})
    assert s.next()["type"] == "hello"
    s.close()


def test_token_accepted_by_subprotocol_and_v1_selected(serve, token_file, log):
    server = serve("--file", f"app={log}", "--token-file", str(token_file))
    s = Stream(server.ws_url, subprotocols=["logcast.v1", "logcast.token." + b64url(TOKEN)])
    assert s.ws.subprotocol == "logcast.v1"
    assert s.next()["type"] == "hello"
    s.close()


def test_wrong_token_is_401_invalid_token(serve, token_file, log):
    server = serve("--file", f"app={log}", "--token-file", str(token_file))
    status, headers, body = refused(server.ws_url, additional_headers={"Authorization": "Bearer wrong"})
    assert status == 401 and body["error"] == "token not accepted"
    assert 'error="invalid_token"' in headers["WWW-Authenticate"]
    status, _, body = refused(server.ws_url, subprotocols=["logcast.v1", "logcast.token." + b64url("wrong")])
    assert status == 401


@pytest.mark.parametrize("key", ["token", "access_token"])
def test_token_in_query_string_is_refused(serve, token_file, log, key):
    server = serve("--file", f"app={log}", "--token-file", str(token_file))
    status, _, body = refused(server.ws_url + f"?{key}={TOKEN}")
    assert status == 401
    assert "URL" in body["error"]
    status, _, _ = server.get(f"/api/v1/sources?{key}={TOKEN}")
    assert status == 401


def test_api_needs_the_token_healthz_and_viewer_do_not(serve, token_file, log):
    server = serve("--file", f"app={log}", "--token-file", str(token_file))
    status, headers, body = server.get("/api/v1/sources")
    assert status == 401 and headers["WWW-Authenticate"].startswith("Bearer")
    assert json.loads(body)["error"] == "token required"
    status, _, body = server.get("/api/v1/sources", {"Authorization": f"Bearer {TOKEN}"})
    assert status == 200 and json.loads(body)[0]["name"] == "app"
    assert server.get("/healthz")[0] == 200
    assert server.get("/")[0] == 200


def test_token_never_appears_in_the_log(serve, token_file, log):
    server = serve("--file", f"app={log}", "--token-file", str(token_file), "--log-level", "trace")
    Stream(server.ws_url, additional_headers={"Authorization": f"Bearer {TOKEN}"}).close()
    Stream(server.ws_url, subprotocols=["logcast.v1", "logcast.token." + b64url(TOKEN)]).close()
    refused(server.ws_url + f"?token={TOKEN}")
    server.get("/api/v1/sources", {"Authorization": f"Bearer {TOKEN}"})
    wait_for(lambda: sum("subscriber disconnected" in line for line in server.stderr_lines) >= 2, message="disconnect logs")
    text = "".join(server.stderr_lines)
    assert TOKEN not in text and b64url(TOKEN) not in text


def test_bad_token_files_stop_the_start(tmp_path):
    empty = tmp_path / "empty"
    empty.write_text("# nothing here\n")
    too_long = tmp_path / "too-long"
    too_long.write_text("fine\n" + "x" * 513 + "\n")
    for path, words in [(tmp_path / "absent", "does not exist"), (empty, "holds no token"),
                        (too_long, "line 2: a token is at most 512 bytes")]:
        result = subprocess.run([str(BINARY), "serve", "--demo", "--listen", "127.0.0.1:0", "--token-file", str(path)],
                                capture_output=True, text=True, timeout=DEADLINE)
        assert result.returncode == 2
        assert "--token-file" in result.stderr and words in result.stderr


def test_token_file_from_environment(tmp_path, token_file, log):
    env_server = Server(["--file", f"app={log}"], cwd=tmp_path, env={"LOGCAST_TOKEN_FILE": str(token_file)}).start()
    try:
        assert refused(env_server.ws_url)[0] == 401
        Stream(env_server.ws_url, additional_headers={"Authorization": f"Bearer {TOKEN}"}).close()
    finally:
        env_server.stop()


# --- origin ---------------------------------------------------------------

def test_forged_origin_is_403_own_and_allowed_origins_pass(serve, log):
    server = serve("--file", f"app={log}", "--allow-origin", "https://logs.example.com")
    status, _, body = refused(server.ws_url, origin="http://evil.example")
    assert status == 403
    assert "evil.example" in body["error"] and "--allow-origin" in body["hint"]
    status, _, _ = server.get("/api/v1/sources", {"Origin": "http://evil.example"})
    assert status == 403
    own = Stream(server.ws_url, origin=f"http://127.0.0.1:{server.port}")
    assert own.next()["type"] == "hello"
    own.close()
    allowed = Stream(server.ws_url, origin="https://logs.example.com")
    assert allowed.next()["type"] == "hello"
    allowed.close()
    no_origin = Stream(server.ws_url)
    assert no_origin.next()["type"] == "hello"
    no_origin.close()


def test_origin_is_checked_even_with_a_valid_token(serve, token_file, log):
    server = serve("--file", f"app={log}", "--token-file", str(token_file))
    status, _, _ = refused(server.ws_url, origin="http://evil.example", additional_headers={"Authorization": f"Bearer {TOKEN}"})
    assert status == 403


# --- limits ---------------------------------------------------------------

def test_over_max_subscribers_is_503_with_retry_after(serve, log):
    server = serve("--file", f"app={log}", "--max-subscribers", "2")
    first, second = Stream(server.ws_url), Stream(server.ws_url)
    assert first.next()["type"] == "hello" and second.next()["type"] == "hello"
    status, headers, body = refused(server.ws_url)
    assert status == 503 and int(headers["Retry-After"]) > 0
    assert "too many subscribers" in body["error"]
    first.close()
    third = wait_for(lambda: _try_stream(server.ws_url), message="a slot to free up")
    assert third.next()["type"] == "hello"
    third.close()
    second.close()


def _try_stream(url):
    try:
        return Stream(url)
    except InvalidStatus:
        return None


def test_connections_per_address_are_limited_with_429(serve, log):
    server = serve("--file", f"app={log}", "--max-connections-per-address", "2")
    streams = [Stream(server.ws_url) for _ in range(2)]
    status, headers, body = refused(server.ws_url)
    assert status == 429 and "Retry-After" in headers
    assert "127.0.0.1" in body["error"]
    for s in streams:
        s.close()


def test_over_long_request_target_is_414(serve, log):
    server = serve("--file", f"app={log}")
    long_query = "?" + "&".join(f"grep=x{i}" for i in range(4000))
    status, _, body = server.upgrade("/ws" + long_query)
    assert status == 414 and "longer than" in json.loads(body)["error"]
    status, _, _ = server.get("/api/v1/sources" + long_query)
    assert status == 414


def test_too_many_filter_values_and_long_regex_are_400(serve, log):
    server = serve("--file", f"app={log}")
    status, _, body = server.upgrade("/ws?" + "&".join(f"grep=x{i}" for i in range(40)))
    assert status == 400 and "grep" in json.loads(body)["error"]
    status, _, body = server.upgrade("/ws?regex=" + "a" * 1025)
    assert status == 400 and "1024" in body.decode()


def test_subscribe_flood_is_rate_limited_and_the_connection_survives(serve, log):
    server = serve("--file", f"app={log}", "--initial-lines", "0")
    s = Stream(server.ws_url + "?backlog=0")
    assert s.next()["type"] == "hello"
    for i in range(60):
        s.send({"type": "subscribe", "filter": {"grep": [f"x{i}"]}, "backlog": 0})
    # (A later subscribe supersedes what an earlier one queued, so not every
    # `subscribed` is seen; the refusals are.)
    seen = {"subscribed": 0, "limited": 0}
    while not (seen["subscribed"] and seen["limited"]):
        obj = s.next()
        if obj["type"] == "subscribed":
            seen["subscribed"] += 1
        elif obj["type"] == "error":
            assert "too many messages" in obj["error"], obj
            seen["limited"] += 1
    # The connection is still usable once the rate allows. A try whose answer was taken for a
    # refusal (a late error of the flood) may still be accepted after the one that counts, and
    # a subscribe replaces what is queued: with a backlog, that one sends the line again.
    def resubscribed():
        s.send({"type": "subscribe", "filter": {"grep": ["final"]}, "backlog": 10})
        while True:
            obj = s.next()
            # Replies to the flood may still be on their way (every message is
            # answered): only the answer to this subscribe counts.
            if obj["type"] == "subscribed" and obj["filter"] == {"grep": ["final"]}:
                return obj
            if obj["type"] == "error":
                return None
    assert wait_for(resubscribed, message="a subscribe to be accepted again")["filter"] == {"grep": ["final"]}
    append(log, "not this\nfinal line\n")
    assert s.lines(1)[0]["msg"] == "final line"


def test_public_bind_without_token_warns(serve, token_file, log):
    # The later --listen wins over the 127.0.0.1:0 the fixture passes.
    open_server = serve("--file", f"app={log}", "--listen", "0.0.0.0:0")
    wait_for(lambda: any("without --token-file" in line for line in open_server.stderr_lines), message="the warning")
    guarded = serve("--file", f"app={log}", "--listen", "0.0.0.0:0", "--token-file", str(token_file))
    Stream(guarded.ws_url, additional_headers={"Authorization": f"Bearer {TOKEN}"}).close()
    wait_for(lambda: any("subscriber disconnected" in line for line in guarded.stderr_lines), message="a later log line")
    assert not any("without --token-file" in line for line in guarded.stderr_lines)


# --- TLS ------------------------------------------------------------------

@pytest.fixture
def certificate(tmp_path):
    return make_certificate(tmp_path)


def served_certificate(port):
    """The DER certificate a new TLS connection to the port is given."""
    return ssl.PEM_cert_to_DER_cert(ssl.get_server_certificate(("127.0.0.1", port), timeout=DEADLINE))


def der(cert_path):
    return ssl.PEM_cert_to_DER_cert(cert_path.read_text())


def test_sighup_reloads_the_tls_certificate_and_keeps_it_when_the_new_files_are_bad(serve, certificate, log, tmp_path):
    cert, key = certificate
    first = cert.read_bytes(), key.read_bytes()
    renewed_cert, renewed_key = make_certificate(tmp_path / "renewed", "renewed")
    server = serve("--file", f"app={log}", "--tls-cert", str(cert), "--tls-key", str(key))
    assert served_certificate(server.port) == der(cert)
    stream = Stream(f"wss://127.0.0.1:{server.port}/ws?backlog=0", ssl=ssl.create_default_context(cafile=str(cert)))
    assert stream.next()["type"] == "hello"

    def reload(expected):
        count = sum(expected in line for line in server.stderr_lines)
        server.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: sum(expected in line for line in server.stderr_lines) > count, message=expected)

    # Renewal: new connections get the new certificate; the open stream goes on.
    cert.write_bytes(renewed_cert.read_bytes())
    key.write_bytes(renewed_key.read_bytes())
    reload("TLS certificate reloaded")
    assert served_certificate(server.port) == der(renewed_cert)
    append(log, "after renewal\n")
    assert stream.lines(1)[0]["msg"] == "after renewal"
    renewed = ssl.create_default_context(cafile=str(renewed_cert))
    fresh = Stream(f"wss://127.0.0.1:{server.port}/ws?backlog=0", ssl=renewed)
    assert fresh.next()["type"] == "hello"
    fresh.close()

    # Files that do not load (each way they can be bad) leave the renewed certificate in use.
    garbage = b"not a certificate\n"
    for bad_cert, bad_key, what in [
        (garbage, renewed_key.read_bytes(), "--tls-cert"),
        (renewed_cert.read_bytes(), garbage, "--tls-key"),
        (renewed_cert.read_bytes(), first[1], "does not fit"),  # another certificate's key
        (b"", renewed_key.read_bytes(), "--tls-cert"),
    ]:
        cert.write_bytes(bad_cert)
        key.write_bytes(bad_key)
        reload("the previous certificate stays in use")
        assert what in [line for line in server.stderr_lines if "previous certificate stays in use" in line][-1]
        assert served_certificate(server.port) == der(renewed_cert), what
        assert server.proc.poll() is None
    append(log, "still served\n")
    assert stream.lines(1)[0]["msg"] == "still served"
    stream.close()
    https = http.client.HTTPSConnection("127.0.0.1", server.port, context=renewed, timeout=DEADLINE)
    https.request("GET", "/healthz")
    assert https.getresponse().status == 200


def test_wss_end_to_end_with_a_self_signed_certificate(serve, certificate, log):
    cert, key = certificate
    server = serve("--file", f"app={log}", "--tls-cert", str(cert), "--tls-key", str(key))
    assert any("address=https://" in line for line in server.stderr_lines)
    context = ssl.create_default_context(cafile=str(cert))
    s = Stream(f"wss://127.0.0.1:{server.port}/ws", ssl=context)
    assert s.next()["type"] == "hello"
    append(log, "over tls\n")
    assert s.lines(1)[0]["msg"] == "over tls"
    s.close()
    https = http.client.HTTPSConnection("127.0.0.1", server.port, context=context, timeout=DEADLINE)
    https.request("GET", "/healthz")
    assert https.getresponse().status == 200
    # Verification is real: a client that does not trust the certificate fails.
    with pytest.raises(ssl.SSLCertVerificationError):
        ws_connect(f"wss://127.0.0.1:{server.port}/ws", ssl=ssl.create_default_context(), open_timeout=DEADLINE)
    # Plain HTTP to the TLS port gets no answer a client could take for a page.
    with socket.create_connection(("127.0.0.1", server.port), timeout=DEADLINE) as plain:
        plain.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        data = plain.recv(4096)
        assert not data.startswith(b"HTTP/1.1 200")


def test_bad_tls_files_stop_the_start(tmp_path, certificate):
    cert, key = certificate
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    cases = [
        (["--tls-cert", str(cert)], "--tls-cert needs --tls-key"),
        (["--tls-key", str(key)], "--tls-key needs --tls-cert"),
        (["--tls-cert", str(garbage), "--tls-key", str(key)], "--tls-cert"),
        (["--tls-cert", str(cert), "--tls-key", str(garbage)], "--tls-key"),
        (["--tls-cert", str(tmp_path / "absent.pem"), "--tls-key", str(key)], "--tls-cert"),
    ]
    for args, words in cases:
        result = subprocess.run([str(BINARY), "serve", "--demo", "--listen", "127.0.0.1:0", *args],
                                capture_output=True, text=True, timeout=DEADLINE)
        assert result.returncode == 2, args
        assert words in result.stderr, (args, result.stderr)


# --- static files ---------------------------------------------------------

def raw_get(port, target):
    with socket.create_connection(("127.0.0.1", port), timeout=DEADLINE) as sock:
        sock.sendall(f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def test_static_files_cannot_escape_the_web_root(serve, tmp_path, log):
    web = tmp_path / "web"
    (web / "sub").mkdir(parents=True)
    (web / "index.html").write_text("<!doctype html><title>viewer</title>")
    (web / "sub" / "page.txt").write_text("inside")
    (web / "leak").symlink_to("/etc/passwd")
    (web / "leakdir").symlink_to("/etc")
    (tmp_path / "outside.txt").write_text("root:x:outside")
    server = serve("--file", f"app={log}", "--web-root", str(web))
    assert raw_get(server.port, "/sub/page.txt") == (200, b"inside")
    for target in [
        "/../outside.txt", "/../../../../etc/passwd", "/%2e%2e/outside.txt", "/%2E%2E/%2e%2e/etc/passwd",
        "/..%2foutside.txt", "/sub/..%2f..%2foutside.txt", "/%252e%252e/outside.txt", "/sub/%2e%2e/%2e%2e/outside.txt",
        "/..\\outside.txt", "/leak", "/leakdir/passwd", "/sub/%00", "/%c0%ae%c0%ae/outside.txt",
    ]:
        status, body = raw_get(server.port, target)
        assert status == 404, (target, status)
        assert b"root:" not in body and b"outside" not in body, target


def test_no_directory_listing_and_security_headers(serve, log):
    server = serve("--file", f"app={log}")
    status, _, _ = server.get("/js/")
    assert status == 404
    status, headers, _ = server.get("/")
    assert status == 200
    csp = headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "no-referrer"


# --- hostile sweep --------------------------------------------------------

def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def bad_queries(rng, count):
    pieces = [
        "priority=loud", "priority=9", "priority=err..", "regex=(", "regex=[a-", "regex=" + "a" * 2000,
        "backlog=-1", "backlog=abc", "after=x", "format=xml", "source=nope", "unknown=1", "grep=" + "x" * 5000,
        "after=18446744073709551616", "%", "%zz", "source=%ff%fe", "source=%00", "priority=%c0%80", "&&&=", "=value",
        "regex=%28a%2B%29%2B%24&priority=nope", "epoch=" + "e" * 3000,
    ]
    for _ in range(count):
        yield "&".join(rng.choice(pieces) for _ in range(rng.randint(1, 4)))


def test_hostile_input_sweep_leaves_the_server_serving(serve, log):
    server = serve("--file", f"app={log}", "--initial-lines", "0", "--max-connections-per-address", "4096")
    pid = server.proc.pid
    # Warm up, then take the baseline.
    for _ in range(20):
        Stream(server.ws_url + "?backlog=0").close()
    wait_for(lambda: json.loads(server.get("/healthz")[2])["subscribers"] == 0, message="warm-up streams to close")
    base_fds, base_rss = fd_count(pid), server.rss_kib()
    rng = random.Random(1234)

    # Hundreds of malformed queries: each gets a JSON refusal.
    for query in bad_queries(rng, 300):
        status, _, body = server.upgrade("/ws?" + query)
        assert status in (400, 414), (query, status)
        assert "error" in json.loads(body)

    # Invalid UTF-8 text, binary frames and broken JSON get an error event and
    # the connection stays; an oversized frame closes it with 1009.
    for payload, opcode in [(b"\xff\xfe\xfd", 1), (os.urandom(300), 2), (b'{"type":', 1), (b"x" * 70_000, 1)]:
        raw = RawClient(server.port, "?backlog=0")
        assert json.loads(raw.frame()[1])["type"] == "hello"
        raw.send_frame(opcode, payload)
        reply_opcode, reply = raw.frame()
        if len(payload) > 65536:
            assert reply_opcode == 8 and reply[:2] == (1009).to_bytes(2, "big")
        else:
            assert reply_opcode == 1 and json.loads(reply)["type"] == "error"
        raw.close()

    # Random bytes instead of HTTP (then EOF), and junk after a valid upgrade.
    for _ in range(50):
        with socket.create_connection(("127.0.0.1", server.port), timeout=DEADLINE) as sock:
            sock.sendall(os.urandom(rng.randint(1, 4096)))
            sock.shutdown(socket.SHUT_WR)
            while sock.recv(65536):
                pass
    raw = RawClient(server.port, "?backlog=0")
    raw.sock.sendall(os.urandom(2048))
    raw.close()

    # Half-open connections: requests that never finish, held while others are served.
    half_open = []
    for _ in range(50):
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=DEADLINE)
        sock.sendall(b"GET /ws?backlog=0 HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n")
        half_open.append(sock)

    # A thousand connect/disconnect cycles: full WebSocket handshakes and bare TCP.
    for i in range(1000):
        if i % 2:
            with ws_connect(server.ws_url + "?backlog=0", open_timeout=DEADLINE):
                pass
        else:
            socket.create_connection(("127.0.0.1", server.port), timeout=DEADLINE).close()

    # Meanwhile a normal subscriber gets every line, in order, exactly once.
    normal = Stream(server.ws_url + "?backlog=0")
    assert normal.next()["type"] == "hello"
    append(log, "".join(f"line {i}\n" for i in range(2000)))
    got = normal.lines(2000)
    assert [line["msg"] for line in got] == [f"line {i}" for i in range(2000)]
    assert [line["seq"] for line in got] == list(range(got[0]["seq"], got[0]["seq"] + 2000))
    normal.close()
    for sock in half_open:
        sock.close()

    assert server.proc.poll() is None, "the server must still be running"
    wait_for(lambda: fd_count(pid) <= base_fds + 4, message=f"descriptors back near {base_fds} (now {fd_count(pid)})")
    assert server.rss_kib() < base_rss + 64 * 1024, (base_rss, server.rss_kib())
    assert json.loads(server.get("/healthz")[2])["status"] == "ok"
    assert not any("Fatal error" in line for line in server.stderr_lines)
