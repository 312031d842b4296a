"""End-to-end test support: run the real `logcast` binary, talk to it over real sockets.

Every wait is a condition polled against a deadline, never a bare sleep.
"""
import base64
import http.client
import json
import os
import re
import signal
import socket
import struct
import subprocess
import threading
import time
from pathlib import Path

import pytest
from websockets.sync.client import connect as ws_connect


def connect(url, **kwargs):
    return ws_connect(url, **kwargs).__enter__()

ROOT = Path(__file__).resolve().parents[2]
BINARY = Path(os.environ.get("LOGCAST_BIN", ROOT / ".build" / "debug" / "logcast"))
DEADLINE = float(os.environ.get("LOGCAST_TEST_DEADLINE", "30"))


def wait_for(condition, timeout=DEADLINE, message="condition"):
    """Polls `condition` until it returns a truthy value or the deadline passes."""
    end = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(0.02)


def crash_or_tail(lines, tail=40):
    """A server's stderr for a failure report: from its crash report's start
    (a fatal error and the backtrace of every thread) if it crashed, else its last lines."""
    for index, line in enumerate(lines):
        if "Fatal error" in line or "Program crashed" in line:
            return lines[max(0, index - 5):]
    return lines[-tail:]


class Server:
    """A running `logcast serve` on a free port."""

    def __init__(self, args, cwd=None, wrapper=(), env=None):
        self.args = args
        self.cwd = cwd
        self.env = env
        # A command that runs the binary, e.g. ("setpriv", "--reuid=65534", ...).
        self.wrapper = list(wrapper)
        self.stderr_lines = []
        self.port = None
        self.proc = None
        # The state directory made for this server (removed when it stops).
        self.own_state = None

    def start(self):
        args = list(self.args)
        if not any(a == "--state-directory" or a.startswith("--state-directory=") for a in args):
            # A state directory of its own; a test that restarts a server on the
            # same state passes --state-directory itself.
            import tempfile
            state = self.own_state = tempfile.mkdtemp(prefix="logcast-state-")
            if self.wrapper:
                os.chmod(state, 0o777)  # the wrapper may run logcast as another user
            args = ["--state-directory", state, *args]
        self.proc = subprocess.Popen(
            [*self.wrapper, str(BINARY), "serve", "--listen", "127.0.0.1:0", *args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            cwd=self.cwd,
            text=True,
            env={**os.environ, **self.env} if self.env else None,
        )
        threading.Thread(target=self._read_stderr, daemon=True).start()
        wait_for(lambda: self.port or self.proc.poll() is not None, message="server to listen")
        if self.port is None:
            raise AssertionError("server exited: " + "".join(self.stderr_lines))
        return self

    def _read_stderr(self):
        for line in self.proc.stderr:
            self.stderr_lines.append(line)
            match = re.search(r"address=https?://[^ ]+:(\d+)", line)
            if match and self.port is None:
                self.port = int(match.group(1))

    @property
    def ws_url(self):
        return f"ws://127.0.0.1:{self.port}/ws"

    def get(self, path, headers=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=DEADLINE)
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        body = response.read()
        conn.close()
        return response.status, dict(response.getheaders()), body

    def upgrade(self, path):
        """A WebSocket upgrade request by hand: returns (status, headers, body)."""
        key = base64.b64encode(os.urandom(16)).decode()
        return self.get(path, {
            "Connection": "Upgrade",
            "Upgrade": "websocket",
            "Sec-WebSocket-Version": "13",
            "Sec-WebSocket-Key": key,
        })

    def health(self):
        return json.loads(self.get("/healthz")[2])

    def stop(self, sig=signal.SIGTERM):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=DEADLINE)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.own_state and self.proc and self.proc.poll() is not None:
            import shutil
            shutil.rmtree(self.own_state, ignore_errors=True)
            self.own_state = None

    def rss_kib(self):
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0


@pytest.fixture(autouse=True)
def own_state_home(tmp_path_factory, monkeypatch):
    """Each test is a new user: logcast's default state directory
    ($XDG_STATE_HOME/logcast) is the test's own, never the machine's."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path_factory.mktemp("state-home")))
    monkeypatch.delenv("STATE_DIRECTORY", raising=False)


@pytest.fixture(params=["polled", "events-only"])
def polling(request):
    """Extra arguments of a server that checks its files once a second (the
    default) as well as on inotify events, or on events only (the poll at an
    hour): a test of file following run with both shows that the events
    alone do what it checks, not the poll later."""
    return [] if request.param == "polled" else ["--file-poll-interval", "3600"]


@pytest.fixture
def serve(tmp_path):
    """Starts servers; stops them all at the end of the test."""
    servers = []

    def start(*args):
        server = Server(list(args), cwd=tmp_path).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop(signal.SIGKILL)


class Stream:
    """A WebSocket subscriber that reads NDJSON objects one at a time."""

    def __init__(self, url, **kwargs):
        kwargs.setdefault("max_size", None)
        kwargs.setdefault("open_timeout", DEADLINE)
        self.ws = connect(url, **kwargs)
        self.pending = []
        self.frames = 0

    def next(self, timeout=DEADLINE):
        while not self.pending:
            frame = self.ws.recv(timeout=timeout)
            self.frames += 1
            assert frame.endswith("\n"), f"frame does not end with a newline: {frame[-80:]!r}"
            self.pending.extend(frame.splitlines())
        return json.loads(self.pending.pop(0))

    def next_of(self, kind, timeout=DEADLINE):
        while True:
            obj = self.next(timeout)
            if obj["type"] == kind:
                return obj

    def lines(self, count, timeout=DEADLINE):
        out = []
        end = time.monotonic() + timeout
        while len(out) < count:
            obj = self.next(max(0.01, end - time.monotonic()))
            if obj["type"] == "line":
                out.append(obj)
        return out

    def until_barrier(self):
        """Everything up to the reply to a deliberately unknown message.

        The server queues that reply behind whatever it already queued (the
        backlog), so this reads the whole backlog deterministically.
        """
        self.ws.send('{"type":"barrier"}')
        out = []
        while True:
            obj = self.next()
            if obj["type"] == "error" and "barrier" in obj["error"]:
                return out
            out.append(obj)

    def send(self, obj):
        self.ws.send(json.dumps(obj))

    def close(self):
        self.ws.close()


@pytest.fixture
def stream():
    streams = []

    def open_stream(url, **kwargs):
        s = Stream(url, **kwargs)
        streams.append(s)
        return s

    yield open_stream
    for s in streams:
        try:
            s.close()
        except Exception:
            pass


def append(path, text, mode="a"):
    with open(path, mode + "b") as handle:
        handle.write(text.encode() if isinstance(text, str) else text)


class RawClient:
    """A WebSocket client on a bare socket, for stalling and reading close codes."""

    def __init__(self, port, query="", rcvbuf=None):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            # Before connect, so the advertised window matches (shrinking it later stalls TCP).
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(DEADLINE)
        self.sock.connect(("127.0.0.1", port))
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            f"GET /ws{query} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        self.buffer = b""
        while b"\r\n\r\n" not in self.buffer:
            self.buffer += self.sock.recv(4096)
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 101"), head

    def _need(self, count):
        while len(self.buffer) < count:
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise EOFError("connection closed")
            self.buffer += chunk

    def frame(self):
        """Returns (opcode, payload) of the next frame."""
        self._need(2)
        opcode = self.buffer[0] & 0x0F
        length = self.buffer[1] & 0x7F
        offset = 2
        if length == 126:
            self._need(4)
            length = struct.unpack(">H", self.buffer[2:4])[0]
            offset = 4
        elif length == 127:
            self._need(10)
            length = struct.unpack(">Q", self.buffer[2:10])[0]
            offset = 10
        self._need(offset + length)
        payload = self.buffer[offset:offset + length]
        self.buffer = self.buffer[offset + length:]
        return opcode, payload

    def send_frame(self, opcode, payload):
        mask = os.urandom(4)
        header = bytes([0x80 | opcode])
        n = len(payload)
        if n < 126:
            header += bytes([0x80 | n])
        elif n < 65536:
            header += bytes([0x80 | 126]) + struct.pack(">H", n)
        else:
            header += bytes([0x80 | 127]) + struct.pack(">Q", n)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(header + mask + masked)

    def read_until_close(self):
        """Reads everything; returns (objects, close_code)."""
        objects = []
        while True:
            opcode, payload = self.frame()
            if opcode == 1:
                objects.extend(json.loads(line) for line in payload.decode().splitlines())
            elif opcode == 8:
                code = struct.unpack(">H", payload[:2])[0] if len(payload) >= 2 else None
                return objects, code

    def close(self):
        self.sock.close()


def make_certificate(directory, name="localhost"):
    """A self-signed certificate for 127.0.0.1 and localhost, with `name` as
    its CN, written to DIRECTORY/cert.pem and key.pem; returns both paths."""
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN={name}",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    return cert, key
