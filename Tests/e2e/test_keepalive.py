"""Pings: the server pings every WebSocket connection each --ping-interval and
closes (1001, 'ping timeout') one from which nothing arrived for an interval
after a ping; anything the client sends counts, and everyone else is served."""
import struct
import threading

from conftest import DEADLINE, RawClient, Stream, append, wait_for

INTERVAL = "0.3"


def close_of(payload):
    return struct.unpack(">H", payload[:2])[0], payload[2:].decode()


class Answering(threading.Thread):
    """A raw client that reads everything; each server ping is answered with a
    pong, or (when `own_pings`) with a ping of its own instead (any inbound
    traffic must count). Collects the lines and the close, if any."""

    def __init__(self, port, own_pings=False):
        super().__init__(daemon=True)
        self.client = RawClient(port, "?format=text")
        self.own_pings = own_pings
        self.pings = 0
        self.lines = []
        self.close = None
        self.error = None

    def run(self):
        try:
            while self.close is None:
                opcode, payload = self.client.frame()
                if opcode == 9:
                    self.pings += 1
                    self.client.send_frame(9 if self.own_pings else 10, payload if not self.own_pings else b"mine")
                elif opcode == 1:
                    self.lines.extend(payload.decode().splitlines())
                elif opcode == 8:
                    self.close = close_of(payload)
        except Exception as error:  # the connection ending is reported through .close / .error
            self.error = error


def test_a_silent_client_is_closed_1001_while_answering_ones_stay_and_get_lines(serve, tmp_path):
    log = tmp_path / "app.log"
    log.touch()
    server = serve("--file", f"app={log}", "--initial-lines", "0", "--ping-interval", INTERVAL)
    silent = RawClient(server.port, "?format=text")
    answering = [Answering(server.port), Answering(server.port, own_pings=True)]
    for client in answering:
        client.start()
    wait_for(lambda: server.health()["subscribers"] == 3)

    # The silent client gets pings, then the close, then the end of the connection.
    pings, close = 0, None
    while close is None:
        opcode, payload = silent.frame()
        if opcode == 9:
            pings += 1
        elif opcode == 8:
            close = close_of(payload)
        else:
            raise AssertionError(f"unexpected frame {opcode} {payload!r}")
    assert pings >= 1, "a ping comes before the close"
    assert close == (1001, "ping timeout")
    try:
        assert silent.sock.recv(1) == b"", "the server closes the connection after the close frame"
    except ConnectionResetError:
        pass
    wait_for(lambda: server.health()["subscribers"] == 2, message="the silent subscriber to be gone")

    # The others have been pinged more than once by now, and are still served.
    wait_for(lambda: all(c.pings >= 3 for c in answering), message="three pings each")
    append(log, "after the close\n")
    wait_for(lambda: all(c.lines == ["after the close"] for c in answering), message="the line to reach both")
    assert [(c.close, c.error) for c in answering] == [(None, None), (None, None)]
    assert server.health()["subscribers"] == 2


def test_a_client_with_compression_is_pinged_stays_open_while_it_answers_and_gets_its_lines(serve, tmp_path):
    """permessage-deflate connections send their frames through the WebSocket
    handler's writer (which compresses), not straight to the socket: the
    same pings reach them, and the websockets library's own answers keep
    them open."""
    log = tmp_path / "app.log"
    log.touch()
    server = serve("--file", f"app={log}", "--initial-lines", "0", "--ping-interval", INTERVAL)
    stream = Stream(server.ws_url)
    try:
        assert "permessage-deflate" in stream.ws.response.headers.get("Sec-WebSocket-Extensions", "")
        assert stream.next()["type"] == "hello"
        # A raw client beside it counts the intervals: four pings, answered.
        clock = Answering(server.port)
        clock.start()
        wait_for(lambda: clock.pings >= 4, message="four pings")
        append(log, "compressed\n")
        assert stream.lines(1)[0]["msg"] == "compressed"
        assert server.health()["subscribers"] == 2, "both still connected"
        wait_for(lambda: clock.lines == ["compressed"])
    finally:
        stream.close()


def test_a_client_that_stops_reading_is_closed_even_with_lines_pending(serve, tmp_path):
    """A stalled client cannot answer pings: it is disconnected after an
    unanswered ping although its socket is full (the close cannot wait for
    room), and the server goes on serving a reading client."""
    log = tmp_path / "app.log"
    log.touch()
    server = serve("--file", f"app={log}", "--initial-lines", "0", "--ping-interval", INTERVAL)
    stalled = RawClient(server.port, "?format=text", rcvbuf=4096)
    reading = Answering(server.port)
    reading.start()
    wait_for(lambda: server.health()["subscribers"] == 2)
    with open(log, "a") as handle:
        handle.write("".join(f"pending {i} {'x' * 200}\n" for i in range(20_000)))
    wait_for(lambda: server.health()["subscribers"] == 1, message="the stalled subscriber to be disconnected")
    wait_for(lambda: len(reading.lines) == 20_000, message="every line to reach the reading client")
    assert reading.lines[-1].startswith("pending 19999 ") and (reading.close, reading.error) == (None, None)
    stalled.close()


def test_no_frame_follows_the_close_handshake_while_lines_flow(serve, tmp_path):
    """The client closes while lines keep arriving: the server answers with
    its close frame and sends nothing after it (RFC 6455 5.5.1), whichever
    of its writers had a frame ready."""
    log = tmp_path / "app.log"
    log.touch()
    server = serve("--file", f"app={log}", "--initial-lines", "0")
    for round in range(5):
        client = RawClient(server.port, "?format=text")
        wait_for(lambda: server.health()["subscribers"] == 1)
        stop = threading.Event()

        def write():
            i = 0
            while not stop.is_set():
                append(log, f"round {round} line {i}\n")
                i += 1

        writer = threading.Thread(target=write, daemon=True)
        writer.start()
        try:
            while True:  # lines are flowing
                opcode, payload = client.frame()
                if opcode == 1:
                    break
            client.send_frame(8, struct.pack(">H", 1000))
            after_close = []
            closed = False
            while True:
                try:
                    opcode, payload = client.frame()
                except (EOFError, ConnectionResetError):
                    break
                if closed:
                    after_close.append(opcode)
                elif opcode == 8:
                    closed = True
            assert closed, "the server answered the close"
            assert after_close == [], f"frames after the close frame: {after_close[:10]}"
        finally:
            stop.set()
            writer.join()
            client.close()
        wait_for(lambda: server.health()["subscribers"] == 0)
