"""Flow control and shutdown: a stalled subscriber costs the others nothing; SIGTERM flushes then closes 1001."""
import http.client
import json
import signal
import socket
import threading

import pytest

from conftest import DEADLINE, RawClient, Stream, append, wait_for
from test_ops import read_sse_events

BURST = 200_000


def write_burst(path, count, prefix="burst", first=0):
    """Appends lines `prefix first` to `prefix count-1`, 10,000 to a write."""
    with open(path, "ab") as handle:
        for start in range(first, count, 10_000):
            handle.write("".join(f"{prefix} {i}\n" for i in range(start, min(count, start + 10_000))).encode())


def read_objects_through(client, last_seq):
    """Every object a raw client receives until it has the line `last_seq` (or a gap past it)."""
    objects = []
    while not any(o.get("seq") == last_seq or (o["type"] == "gap" and o["next"] > last_seq) for o in objects[-2000:]):
        opcode, payload = client.frame()
        if opcode == 1:
            objects.extend(json.loads(l) for l in payload.decode().splitlines())
    return objects


def metric(server, name, labels):
    text = server.get("/metrics")[2].decode()
    for line in text.splitlines():
        if line.startswith(name + labels + " "):
            return float(line.split()[-1])
    raise AssertionError(f"no {name}{labels} in /metrics")


@pytest.mark.parametrize("history", ["memory", "state directory"])
def test_stalled_subscriber_catches_up_with_every_line_by_default(serve, tmp_path, history):
    """Default settings: a subscriber that stops reading during a burst far larger than its queue and
    the memory history gets every line once it reads again, from memory and from the state directory;
    the others get every line meanwhile. Without a state directory, only what memory no longer holds
    is one slow-consumer gap, and the rest follows contiguously."""
    log = tmp_path / "app.log"
    log.touch()
    args = ["--file", f"app={log}", "--initial-lines", "0", "--ping-interval", "900"]
    if history == "memory":
        args += ["--state-directory", "none"]
    server = serve(*args)
    stalled = RawClient(server.port, rcvbuf=4096)
    reader = Stream(server.ws_url, compression=None)
    assert reader.next()["type"] == "hello"
    wait_for(lambda: server.health()["subscribers"] == 2)
    if history == "memory":
        # Without a state directory a reader keeps every line only while it
        # stays within what memory holds (10,000 lines), which depends on how
        # fast it reads. So the burst goes in pieces of 5,000, each once the
        # reader has the one before: only the stalled subscriber falls out.
        seqs = []
        for first in range(0, BURST, 5_000):
            write_burst(log, first + 5_000, first=first)
            seqs += [obj["seq"] for obj in reader.lines(5_000, timeout=120)]
    else:
        write_burst(log, BURST)
        seqs = [obj["seq"] for obj in reader.lines(BURST, timeout=120)]
    assert seqs == list(range(1, BURST + 1)), "the reading subscriber lost or repeated lines"

    objects = read_objects_through(stalled, BURST)
    assert objects[0]["type"] == "hello"
    lines = [o for o in objects if o["type"] == "line"]
    gaps = [o for o in objects if o["type"] == "gap"]
    assert {o["type"] for o in objects} <= {"hello", "line", "gap"}
    got = [o["seq"] for o in lines]
    assert got == sorted(set(got)), "lines out of order or repeated"
    assert all(o["msg"] == f"burst {o['seq'] - 1}" for o in lines)
    if history == "state directory":
        assert gaps == []
        assert got == list(range(1, BURST + 1))
        assert metric(server, "logcast_catch_up_reads_total", '{from="stored"}') > 0
    else:
        # Memory holds the newest 10,000 lines: what the queue held, one gap, then the rest in order.
        assert len(gaps) == 1 and gaps[0]["reason"] == "slow-consumer"
        gap = gaps[0]
        before = [s for s in got if s <= gap["after"]]
        after = [s for s in got if s >= gap["next"]]
        assert before == list(range(1, gap["after"] + 1))
        assert after == list(range(gap["next"], BURST + 1))
        assert gap["missed"] == gap["next"] - gap["after"] - 1 and len(got) + gap["missed"] == BURST
        assert BURST - gap["next"] + 1 >= 10_000, "lines memory still held were not sent"
        assert metric(server, "logcast_gaps_total", '{reason="slow-consumer"}') == 1
    assert metric(server, "logcast_catch_up_reads_total", '{from="memory"}') > 0

    # Live again: a new line reaches it at once.
    append(log, "after the burst\n")
    tail = read_objects_through(stalled, BURST + 1)
    assert [o["msg"] for o in tail if o["type"] == "line"] == ["after the burst"]
    stalled.close()
    reader.close()


def test_a_stalled_sse_subscriber_catches_up_with_every_line_by_default(serve, tmp_path):
    """SSE shares the catch-up: an EventSource-like client that stops reading during a burst far larger
    than its queue gets every line, with its id, once it reads again, and no gap."""
    log = tmp_path / "app.log"
    log.touch()
    server = serve("--file", f"app={log}", "--initial-lines", "0")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: a small window from the start
    sock.settimeout(DEADLINE)
    sock.connect(("127.0.0.1", server.port))
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=DEADLINE)
    conn.sock = sock
    conn.request("GET", "/sse?backlog=0")
    response = conn.getresponse()
    assert response.status == 200
    wait_for(lambda: server.health()["subscribers"] == 1)
    write_burst(log, BURST)
    wait_for(lambda: server.health()["last_seq"] == BURST, timeout=120, message="the burst to be read")
    events = read_sse_events(response, BURST)
    assert [kind for kind, event_id, _, _ in events if event_id is None and kind != "message"] == ["hello"], "no gap"
    lines = [(event_id, json.loads(data)) for _, event_id, data, _ in events if event_id is not None]
    assert [line["seq"] for _, line in lines] == list(range(1, BURST + 1))
    assert all(event_id.endswith(f"-{line['seq']}") and line["msg"] == f"burst {line['seq'] - 1}" for event_id, line in lines)
    assert metric(server, "logcast_catch_up_reads_total", '{from="stored"}') > 0
    conn.close()


def test_stalled_subscriber_under_drop_policy_gets_gap_while_others_get_everything(serve, tmp_path):
    log = tmp_path / "app.log"
    log.touch()
    # A stalled client cannot answer pings: keep the ping timeout out of this test.
    server = serve(
        "--file", f"app={log}", "--initial-lines", "0", "--queue", "50000", "--ping-interval", "900", "--slow-consumer", "drop"
    )
    stalled = RawClient(server.port, rcvbuf=4096)  # handshake done, then never reads during the burst
    readers = [Stream(server.ws_url, compression=None) for _ in range(2)]
    for r in readers:
        assert r.next()["type"] == "hello"

    results = [None, None]

    def consume(index):
        seqs = []
        while len(seqs) < BURST:
            obj = readers[index].next(timeout=120)
            assert obj["type"] == "line", obj
            seqs.append(obj["seq"])
        results[index] = seqs

    threads = [threading.Thread(target=consume, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    write_burst(log, BURST)
    for t in threads:
        t.join(timeout=300)
    for seqs in results:
        assert seqs == list(range(1, BURST + 1)), "a reading subscriber lost or repeated lines"

    # Memory stays bounded: history (10k lines) + queues, not the 200k-line burst per subscriber.
    assert server.rss_kib() < 400 * 1024

    # The stalled one now reads: it sees a slow-consumer gap, and seq continuity around it.
    objects = read_objects_through(stalled, BURST)
    gaps = [o for o in objects if o["type"] == "gap"]
    assert gaps and all(g["reason"] == "slow-consumer" and g["missed"] > 0 for g in gaps)
    lines = [o["seq"] for o in objects if o["type"] == "line"]
    assert lines == sorted(lines) and len(set(lines)) == len(lines)
    missed = sum(g["missed"] for g in gaps)
    assert len(lines) + missed == BURST
    for index, obj in enumerate(objects):
        if obj["type"] == "gap":
            following = next(o for o in objects[index + 1:] if o["type"] == "line")
            assert following["seq"] == obj["next"]
    stalled.close()
    for r in readers:
        r.close()


def test_disconnect_policy_closes_stalled_subscriber_with_1013(serve, stream, tmp_path):
    log = tmp_path / "app.log"
    log.touch()
    server = serve("--file", f"app={log}", "--initial-lines", "0", "--queue", "20000", "--slow-consumer", "disconnect")
    stalled = RawClient(server.port, rcvbuf=4096)
    normal = stream(server.ws_url)
    assert normal.next()["type"] == "hello"
    write_burst(log, 100_000)
    assert normal.lines(100_000, timeout=120)[-1]["msg"] == "burst 99999"
    _, code = stalled.read_until_close()
    assert code == 1013
    stalled.close()


def test_sigterm_flushes_queued_lines_then_closes_1001(serve, tmp_path):
    log = tmp_path / "app.log"
    log.touch()
    server = serve("--file", f"app={log}", "--initial-lines", "0")
    client = RawClient(server.port, rcvbuf=4096)  # not reading yet: lines pile up in its queue
    wait_for(lambda: server.health()["subscribers"] == 1)
    write_burst(log, 5000, prefix="queued")
    wait_for(lambda: server.health()["last_seq"] == 5000)
    server.proc.send_signal(signal.SIGTERM)
    objects, code = client.read_until_close()
    assert code == 1001
    assert [o["msg"] for o in objects if o["type"] == "line"] == [f"queued {i}" for i in range(5000)]
    assert server.proc.wait(timeout=30) == 0


def test_sigterm_closes_idle_subscribers_1001_with_and_without_compression(serve, tmp_path):
    """Idle streams at shutdown: the uncompressed one (whose writer holds no
    task while idle) and the compressed one (whose frames go through the
    WebSocket handler) both get their last line, then 1001."""
    log = tmp_path / "app.log"
    log.touch()
    server = serve("--file", f"app={log}", "--initial-lines", "0")
    raw = RawClient(server.port, "?format=text")
    compressed = Stream(server.ws_url)
    assert compressed.next()["type"] == "hello"
    wait_for(lambda: server.health()["subscribers"] == 2)
    append(log, "the last line\n")
    assert compressed.lines(1)[0]["msg"] == "the last line"
    opcode, payload = raw.frame()
    assert (opcode, payload) == (1, b"the last line\n")
    server.proc.send_signal(signal.SIGTERM)
    assert raw.read_until_close() == ([], 1001)
    with pytest.raises(Exception) as closed:
        while True:
            compressed.next()
    assert getattr(closed.value, "rcvd", None) is not None and closed.value.rcvd.code == 1001
    assert server.proc.wait(timeout=30) == 0

