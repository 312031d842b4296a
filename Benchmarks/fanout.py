#!/usr/bin/env python3
"""Side-by-side fan-out benchmark: logcast against websocketd + `tail -n0 -F`.

Both servers follow the same kind of file, written by the same writer (this
process), and are read by the same client (worker processes with a minimal
RFC 6455 client of their own, see `Conn*` below). Scenarios:

1. burst:   N idle subscribers, then L lines appended at once; time from the
            first write until every subscriber holds every line.
2. latency: 10 subscribers, one line every 10 ms carrying its write time;
            p50/p99 of receive time minus write time.
3. resources during the burst: peak RSS of the server's process tree
            (websocketd with all its tail children) and CPU seconds.
4. slow consumer: the burst to 10 subscribers, alone and with one more
            that stops reading at the first burst line (a 4 KiB receive
            buffer); the cost to the 10 is the change in their lines/s. The
            stalled one then reads on and must get every line as well.
5. latency under a burst: the latency scenario on one source while the
            burst runs to N subscribers on another.
6. many subscribers: the burst at 1,000 subscribers (10,000 lines).
7. filtered fan-out: 100 subscribers, each with its own `grep` (then each
            with its own `regex`), beside websocketd running
            `tail -n0 -F FILE | grep --line-buffered PATTERN` per connection;
            each subscriber must get exactly its 1% of the lines. Then each
            `grep` with `context=3`, beside `grep -C3`: each must get exactly
            the lines within 3 of its own (7% of the lines, every other
            group's lines as context; separators not counted). Then each
            subscriber with `field=g=<g>` (every line holds the logfmt pair
            g=<its group>), beside grep -F 'g=<g> '.
8. idle scale: 10,000 idle subscribers: server memory per subscriber, and
            how long one line takes to reach all of them (kernel receive
            timestamps). websocketd gets as many as its descriptor limit
            allows (a socket and three pipes each, in one process).

Every subscriber must receive every line exactly once, in order (and for
logcast with contiguous `seq`); a run where one does not is reported FAILED.
logcast runs at its default settings (queues, slow-consumer policy, state
directory) unless `--queue`, `--queue-bytes` or `--raised-queues` say
otherwise.

Only the Python standard library is used. The client is written so that the
client is not what gets measured: websocketd's stream is fully predictable
(one text frame per line), so it is checked by comparing the received bytes
with the expected byte stream (memcmp speed, every byte checked); logcast's
NDJSON frames are parsed frame by frame and checked by their first and last
line plus the line count, and every `--full-check-every`-th subscriber has
every line of every frame checked (seq and msg).
"""

import argparse
import base64
import bisect
import hashlib
import http.client
import itertools
import json
import math
import multiprocessing
import multiprocessing.connection
import os
import re
import resource
import selectors
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time

PAGE = os.sysconf("SC_PAGE_SIZE")
TICKS = os.sysconf("SC_CLK_TCK")
WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

# ---------------------------------------------------------------------------
# Lines written to the followed file.
#
# Burst lines:   B<8-digit id> <padding>            (~100 bytes)
# Latency lines: B<8-digit id> t=<monotonic ns> <padding>
# Warm-up lines: W<8-digit n> warmup                (barrier before a scenario)
# Only plain ASCII words: nothing that JSON escapes, no level words.

WORDS = (b"lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod "
         b"tempor incididunt ut labore et dolore magna aliqua ut enim ad minim ") * 3


def padding(i, base=80):
    start = (i * 7) % 61
    return WORDS[start:start + base + i % 13].rstrip()


def burst_line(i):
    """The message of burst line i, without the newline."""
    return b"B%08d %s" % (i, padding(i))


def latency_line(i, t_ns):
    return b"B%08d t=%d %s" % (i, t_ns, padding(i, 60))


def warm_line(n):
    return b"W%08d warmup" % n


FILTER_GROUPS = 100

# Kinds that run the 100-subscriber burst only: logcast without its state
# directory, and logcast's subscribers asking for format=text.
BURST_ONLY = ("logcast-memory", "logcast-text")


def filtered_line(i):
    """Line i of the filtered burst: group G<i mod 100>, numbered within its
    group (so each group's subscriber sees ids 0, 1, 2, ... in order)."""
    return b"B%08d G%02d g=%02d %s" % (i // FILTER_GROUPS, i % FILTER_GROUPS, i % FILTER_GROUPS, padding(i))


def filtered_warm_line(n):
    """A warm-up line that every group's filter lets through."""
    return b"W%08d warmup %s %s ." % (n, b" ".join(b"G%02d" % g for g in range(FILTER_GROUPS)),
                                      b" ".join(b"g=%02d" % g for g in range(FILTER_GROUPS)))


CONTEXT_LINES = 3


def context_filler_lines():
    """Written after the warm-up of the context scenario: the warm-up line
    matches every group, so these are its after-context, and the burst
    starts with no context owed."""
    return b"".join(b"F%08d filler\n" % n for n in range(CONTEXT_LINES))


def context_share(count, group):
    """The burst lines grep -C3 'G<group> ' sends of the filtered burst:
    every line within 3 of one of the group's lines (a line once)."""
    wanted = set()
    for i in range(group, count, FILTER_GROUPS):
        wanted.update(range(max(0, i - CONTEXT_LINES), min(count, i + CONTEXT_LINES + 1)))
    return sorted(wanted)


def ws_text_frame(payload):
    """An unmasked server-to-client text frame, as websocketd sends it."""
    n = len(payload)
    if n < 126:
        head = bytes((0x81, n))
    elif n < 65536:
        head = bytes((0x81, 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((0x81, 127)) + n.to_bytes(8, "big")
    return head + payload


class Expected:
    """What every subscriber must receive in a burst of `count` lines (or of
    the messages `msgs`, when they are given: a filtered subscriber's share)."""

    def __init__(self, count, msgs=None, sequence=False):
        # `sequence`: the lines carry ids of the whole burst, not of this
        # share (context lines of other groups): received lines are compared
        # one by one with `msgs`, in order, instead of by their ids.
        self.sequence = sequence
        self.msgs = msgs if msgs is not None else [burst_line(i) for i in range(count)]
        self.count = count = len(self.msgs)
        self.file_chunks = []
        chunk = 1000
        for s in range(0, count, chunk):
            self.file_chunks.append(b"".join(m + b"\n" for m in self.msgs[s:s + chunk]))
        # websocketd: one text frame per line, newline stripped.
        frames = [ws_text_frame(m) for m in self.msgs]
        self.offsets = [0] * (count + 1)
        total = 0
        for i, f in enumerate(frames):
            self.offsets[i] = total
            total += len(f)
        self.offsets[count] = total
        self.wsd_stream = b"".join(frames)
        self.file_bytes = sum(len(c) for c in self.file_chunks)
        self._text = None
        # logcast: msg_bytes[i] is the length of the messages before line i, for
        # LogcastConn's length check (None when a message would need escaping in JSON).
        plain = all(re.fullmatch(rb"[\x20-\x7e]*", m) and b'"' not in m and b"\\" not in m for m in self.msgs)
        self.msg_bytes = list(itertools.accumulate((len(m) for m in self.msgs), initial=0)) if plain else None

    @property
    def text(self):
        """logcast `format=text`: the messages, each followed by a newline
        (the file's bytes), and where each line starts in them."""
        if self._text is None:
            offsets = [0] * (self.count + 1)
            total = 0
            for i, m in enumerate(self.msgs):
                offsets[i] = total
                total += len(m) + 1
            offsets[self.count] = total
            self._text = (b"".join(self.file_chunks), offsets)
        return self._text


# ---------------------------------------------------------------------------
# A minimal WebSocket client connection (RFC 6455), non-blocking after the
# handshake. Subclasses decide what a received frame means.

class HandshakeError(Exception):
    pass


class ScenarioError(Exception):
    pass


def ws_connect(port, path, timeout=30.0, small_buffer=False):
    if small_buffer:
        # Set before connecting, so the window is small from the start and the
        # kernel does not grow it: the peer's writes block almost at once.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.settimeout(timeout)
        sock.connect(("127.0.0.1", port))
    else:
        sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    key = base64.b64encode(os.urandom(16))
    request = (b"GET " + path.encode() + b" HTTP/1.1\r\n"
               b"Host: 127.0.0.1:" + str(port).encode() + b"\r\n"
               b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
               b"Sec-WebSocket-Key: " + key + b"\r\n"
               b"Sec-WebSocket-Version: 13\r\n\r\n")
    sock.sendall(request)
    data = b""
    while b"\r\n\r\n" not in data:
        more = sock.recv(65536)
        if not more:
            raise HandshakeError("connection closed during the handshake: %r" % data[:200])
        data += more
        if len(data) > 65536:
            raise HandshakeError("oversized handshake response")
    head, rest = data.split(b"\r\n\r\n", 1)
    lines = head.split(b"\r\n")
    status = lines[0]
    if b" 101 " not in status + b" ":
        raise HandshakeError("upgrade refused: %s %r" % (status.decode(errors="replace"), rest[:300]))
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(b":")
        headers[k.strip().lower()] = v.strip()
    accept = base64.b64encode(hashlib.sha1(key + WS_GUID).digest())
    if headers.get(b"sec-websocket-accept") != accept:
        raise HandshakeError("bad Sec-WebSocket-Accept")
    sock.setblocking(False)
    return sock, rest


def masked_frame(opcode, payload=b""):
    mask = os.urandom(4)
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes((0x80 | opcode, 0x80 | len(payload))) + mask + body


class ConnBase:
    def __init__(self, index, sock, total_lines, record_latency=False):
        self.index = index
        self.sock = sock
        self.total = total_lines
        self.record_latency = record_latency
        self.buf = bytearray()
        self.frag = None          # fragmented message being assembled
        self.next_id = 0          # next burst line expected
        self.phase = "warm"       # warm -> burst -> done
        self.warm = False
        self.closed = False
        self.close_reason = None
        self.errors = 0
        self.error_samples = []
        self.gaps = 0
        self.gap_missed = 0
        self.others = {}
        self.frames = 0
        self.bytes = 0
        self.t_done = None
        self.t_first = None
        self.latencies = []
        # With kernel stamps: when this process read the line (CLOCK_REALTIME ns), and those latencies.
        self.read_ns = None
        self.read_latencies = []

    # -- bookkeeping
    def error(self, text):
        self.errors += 1
        if len(self.error_samples) < 5:
            self.error_samples.append(text)

    @property
    def done(self):
        return self.phase == "done" or self.closed

    def lines_received(self):
        return self.next_id

    def finished(self, now):
        if self.phase != "done":
            self.phase = "done"
            self.t_done = now

    # -- frames
    def send_control(self, opcode, payload=b""):
        try:
            self.sock.setblocking(True)
            self.sock.sendall(masked_frame(opcode, payload[:125]))
        except OSError:
            pass
        finally:
            try:
                self.sock.setblocking(False)
            except OSError:
                pass

    def take(self, data, now):
        """Parses every complete frame of what was held back and `data`,
        copying each payload once (from the receive buffer itself when
        nothing was held back); keeps the incomplete rest."""
        if self.buf:
            self.buf += data
            view = memoryview(self.buf)
        else:
            view = memoryview(data)
        try:
            off = self.parse_frames(view, now)
            rest = None if self.buf else bytearray(view[off:])
        finally:
            view.release()
        if rest is None:
            del self.buf[:off]
        else:
            self.buf = rest

    def parse_frames(self, buf, now):
        """Parses every complete frame in `buf` (a memoryview); returns the bytes they took."""
        off = 0
        end = len(buf)
        while end - off >= 2:
            b0 = buf[off]
            b1 = buf[off + 1]
            n = b1 & 0x7F
            head = 2
            if n == 126:
                if end - off < 4:
                    break
                n = int.from_bytes(buf[off + 2:off + 4], "big")
                head = 4
            elif n == 127:
                if end - off < 10:
                    break
                n = int.from_bytes(buf[off + 2:off + 10], "big")
                head = 10
            if b1 & 0x80:
                self.error("server sent a masked frame")
                head += 4
            if end - off < head + n:
                break
            payload = buf[off + head:off + head + n].tobytes()
            off += head + n
            self.frames += 1
            opcode = b0 & 0x0F
            fin = b0 & 0x80
            if opcode == 0x9:
                self.send_control(0xA, payload)
            elif opcode == 0xA:
                pass
            elif opcode == 0x8:
                code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else None
                self.close_reason = "server closed (%s %s)" % (code, payload[2:].decode(errors="replace"))
                self.send_control(0x8, payload[:2])
                self.closed = True
                break
            elif opcode in (0x1, 0x2, 0x0):
                if opcode != 0x0:
                    self.frag = None
                if not fin:
                    self.frag = (self.frag or b"") + payload
                    continue
                if self.frag is not None:
                    payload = self.frag + payload
                    self.frag = None
                self.on_message(payload, now)
            else:
                self.error("unknown opcode %d" % opcode)
        return off


class LogcastConn(ConnBase):
    """logcast NDJSON frames: first object `hello`, then `line` objects."""

    LINE_HEAD = b'{"type":"line","seq":'
    MSG_B = b'"msg":"B'
    SEQ_RE = re.compile(rb'"seq":(\d+),')
    MSG_RE = re.compile(rb'"msg":"([^"]*)"')
    LAT_RE = re.compile(rb'"msg":"B(\d{8}) t=(\d+) ')

    def __init__(self, index, sock, total_lines, expected=None, full_check=False, record_latency=False,
                 contiguous=True):
        super().__init__(index, sock, total_lines, record_latency)
        self.contiguous = contiguous  # False for a subscriber with a source filter: other sources' seq between
        self.last_seq = None
        self.expected = expected
        self.full_check = full_check and expected is not None
        self.hello = False
        self.seq_base = None
        self.fast_frames = 0
        self.max_lines_per_frame = 0
        self.line_fixed = None      # see fast_frame: None learning, False given up, else the bytes
        self.line_candidate = None

    def feed(self, data, now):
        self.bytes += len(data)
        self.take(data, now)

    def on_message(self, payload, now):
        sequence = self.expected is not None and self.expected.sequence
        if self.phase == "burst" and not self.record_latency and not sequence and self.fast_frame(payload, now):
            return
        self.slow_frame(payload, now)

    def fast_frame(self, p, now):
        """Checks a frame made only of burst lines by its ends and its count.

        The count is the frame's newlines, or, once the frames have shown
        that every line object is a fixed part plus its `seq` digits and its
        message (`line_fixed`), the line count that makes the frame exactly
        as long as the lines first..last: a line missing or repeated inside
        the frame changes its length as it changes its newlines, and the
        length costs nothing to read while counting costs a pass over every
        byte (the client's largest cost in the burst)."""
        if not p.startswith(self.LINE_HEAD):
            return False
        try:
            first_nl = p.index(b"\n")
            fs = int(p[21:p.index(b",", 21)])
            li = p.rfind(self.LINE_HEAD, 0, len(p) - 1)
            ls = int(p[li + 21:p.index(b",", li + 21)])
            fi = p.find(self.MSG_B)
            lj = p.rfind(self.MSG_B)
            fid = int(p[fi + 8:fi + 16])
            lid = int(p[lj + 8:lj + 16])
        except ValueError:
            return False
        by_length = (self.line_fixed and self.contiguous and not self.full_check and ls >= fs
                     and 0 <= fid <= lid < self.total)
        if by_length:
            nl = ls - fs + 1
            if len(p) != self.frame_length(fid, lid, fs, ls):
                # Not what the model says: count instead (from now on; a wrong frame then fails below).
                by_length = False
                self.line_fixed = False
        if not by_length:
            nl = p.count(b"\n")
        if self.contiguous:
            seq_ok = ls - fs + 1 == nl and fs - fid == self.seq_base and ls - lid == self.seq_base
        else:
            # Other sources' lines take seq numbers between these: rising is all that holds.
            seq_ok = (self.last_seq is None or fs > self.last_seq) and ls - fs + 1 >= nl
        if not (fi < first_nl and lj > li and fid == self.next_id and lid - fid + 1 == nl and seq_ok
                and lid < self.total):
            return False
        if self.full_check:
            seqs = [int(s) for s in self.SEQ_RE.findall(p)]
            msgs = self.MSG_RE.findall(p)
            if len(seqs) != nl or (seqs != list(range(fs, fs + nl)) if self.contiguous
                                   else any(b <= a for a, b in zip(seqs, seqs[1:]))):
                self.error("seq not contiguous inside a frame (lines %d..%d)" % (fid, lid))
            if msgs != self.expected.msgs[fid:fid + nl]:
                self.error("wrong or repeated msg inside a frame (lines %d..%d)" % (fid, lid))
        if (not by_length and self.line_fixed is not False and self.contiguous and self.expected is not None
                and self.expected.msg_bytes is not None):
            self.learn_line_fixed(len(p), fid, lid, fs, ls)
        self.fast_frames += 1
        self.max_lines_per_frame = max(self.max_lines_per_frame, nl)
        self.last_seq = ls
        self.next_id = lid + 1
        if self.next_id == self.total:
            self.finished(now)
        return True

    @staticmethod
    def digits(a, b):
        """The decimal digits of the numbers a..b written out (a, b >= 1)."""
        total, low, width = 0, 1, 1
        while low <= b:
            high = low * 10 - 1
            if high >= a:
                total += (min(b, high) - max(a, low) + 1) * width
            low, width = low * 10, width + 1
        return total

    def frame_length(self, fid, lid, fs, ls):
        """The bytes of lines fid..lid with seq fs..ls, each the fixed part, its seq and its message."""
        msgs = self.expected.msg_bytes[lid + 1] - self.expected.msg_bytes[fid]
        return (lid - fid + 1) * self.line_fixed + msgs + self.digits(fs, ls)

    def learn_line_fixed(self, length, fid, lid, fs, ls):
        """From a frame checked by its newlines: what each line object takes besides its seq and
        message. Kept once two frames agree; a disagreement gives the model up (None: learning,
        False: given up)."""
        n = lid - fid + 1
        rest = length - (self.expected.msg_bytes[lid + 1] - self.expected.msg_bytes[fid]) - self.digits(fs, ls)
        if rest % n:
            self.line_fixed = False
            return
        fixed = rest // n
        if self.line_candidate is None:
            self.line_candidate = fixed
        elif self.line_candidate == fixed:
            self.line_fixed = fixed
        else:
            self.line_fixed = False

    def slow_frame(self, p, now):
        objects = p.split(b"\n")
        if objects and objects[-1] == b"":
            objects.pop()
        else:
            self.error("frame does not end with a newline")
        nlines = 0
        for raw in objects:
            try:
                obj = json.loads(raw)
            except ValueError:
                self.error("invalid JSON object: %r" % raw[:120])
                continue
            kind = obj.get("type")
            if kind == "hello":
                if self.hello:
                    self.error("second hello")
                self.hello = True
                continue
            if not self.hello:
                self.error("%s before hello" % kind)
                self.hello = True
            if kind == "line":
                nlines += 1
                self.on_line(obj, now)
            elif kind == "gap":
                self.gaps += 1
                self.gap_missed += int(obj.get("missed") or 0)
                self.error("gap: %s" % raw.decode(errors="replace")[:200])
            else:
                self.others[kind] = self.others.get(kind, 0) + 1
        self.max_lines_per_frame = max(self.max_lines_per_frame, nlines)

    def on_line(self, obj, now):
        msg = obj.get("msg", "")
        seq = obj.get("seq")
        if self.expected is not None and self.expected.sequence:
            on_sequence_line(self, msg.encode(), now)
            return
        if msg.startswith("W"):
            self.warm = True
            if self.phase != "warm":
                self.error("warm-up line after the first burst line")
            return
        if not msg.startswith("B"):
            self.error("unexpected line %r" % msg[:80])
            return
        try:
            lid = int(msg[1:9])
        except ValueError:
            self.error("unexpected line %r" % msg[:80])
            return
        if self.phase == "warm":
            self.phase = "burst"
            self.t_first = now
        if self.seq_base is None:
            self.seq_base = seq - lid
        if lid != self.next_id:
            if lid > self.next_id:
                self.error("missing lines %d..%d" % (self.next_id, lid - 1))
            else:
                self.error("line %d again (expected %d)" % (lid, self.next_id))
        if self.contiguous and seq - lid != self.seq_base:
            self.error("seq %d for line %d: not contiguous" % (seq, lid))
        if self.last_seq is not None and seq <= self.last_seq:
            self.error("seq %d after %d: not rising" % (seq, self.last_seq))
        self.last_seq = seq
        if lid >= self.total:
            self.error("line %d is past the end of the burst" % lid)
            return
        if self.expected is not None and msg.encode() != self.expected.msgs[lid]:
            self.error("line %d has the wrong text" % lid)
        if self.record_latency:
            t = msg.split(" ", 2)[1]
            if t.startswith("t="):
                self.latencies.append(now - int(t[2:]))
                if self.read_ns is not None:
                    self.read_latencies.append(self.read_ns - int(t[2:]))
        self.next_id = max(self.next_id, lid + 1)
        if self.next_id >= self.total:
            self.finished(now)


class LogcastTextConn(ConnBase):
    """logcast `format=text`: frames of raw messages, each followed by a
    newline, and no control objects (a gap is not sent in this format, so a
    lost line shows as a line missing from the stream).

    After the warm-up every burst frame must continue the known stream
    exactly: each frame is compared with it (every byte of every frame on
    every subscriber). A frame that does not is taken apart line by line
    to say what went wrong."""

    def __init__(self, index, sock, total_lines, expected=None, record_latency=False):
        super().__init__(index, sock, total_lines, record_latency)
        self.expected = expected
        self.pos = 0  # in expected.text, once the burst has begun
        self.max_lines_per_frame = 0

    def lines_received(self):
        if self.phase == "warm":
            return 0
        return bisect.bisect_right(self.expected.text[1], self.pos) - 1

    def feed(self, data, now):
        self.bytes += len(data)
        self.take(data, now)

    def on_message(self, p, now):
        if not p.endswith(b"\n"):
            self.error("frame does not end with a newline")
            return
        stream, offsets = self.expected.text
        if self.phase == "burst" and stream.startswith(p, self.pos):
            self.pos += len(p)
            lines = bisect.bisect_right(offsets, self.pos) - 1 - self.next_id
            self.max_lines_per_frame = max(self.max_lines_per_frame, lines)
            self.next_id += lines
            if self.pos == len(stream):
                self.finished(now)
            return
        lines = p[:-1].split(b"\n")
        self.max_lines_per_frame = max(self.max_lines_per_frame, len(lines))
        for m in lines:
            self.on_line(m, now)

    def on_line(self, m, now):
        lid = on_raw_line(self, m, now, "line")
        if lid is None:
            return
        self.next_id = max(self.next_id, lid + 1)
        self.pos = self.expected.text[1][self.next_id]
        if self.next_id >= self.total:
            self.finished(now)


class WebsocketdConn(ConnBase):
    """websocketd + tail: one text frame per line, the newline stripped.

    In the burst, the byte stream after the warm-up is known in advance, so
    received bytes are compared with it directly ("fast" mode). Anything
    unexpected (a ping, a missing or repeated line) drops to frame-by-frame
    parsing from the last frame boundary, which also says what went wrong.
    """

    def __init__(self, index, sock, total_lines, expected=None, record_latency=False):
        super().__init__(index, sock, total_lines, record_latency)
        self.expected = expected
        self.fast = False
        self.pos = 0

    def lines_received(self):
        if self.fast:
            return bisect.bisect_right(self.expected.offsets, self.pos) - 1
        return self.next_id

    def feed(self, data, now):
        self.bytes += len(data)
        if self.fast:
            exp = self.expected
            if exp.wsd_stream.startswith(data, self.pos):
                self.pos += len(data)
                if self.pos == len(exp.wsd_stream):
                    self.fast = False
                    self.next_id = self.total
                    self.finished(now)
                return
            # Leave fast mode at the last frame boundary before the mismatch.
            k = bisect.bisect_right(exp.offsets, self.pos) - 1
            self.buf = bytearray(exp.wsd_stream[exp.offsets[k]:self.pos])
            self.next_id = k
            self.fast = False
        self.take(data, now)
        # Back to comparing bytes once the complete frames are parsed; what is
        # left in the buffer is the start of the next frame.
        if (self.expected is not None and self.phase == "burst" and not self.record_latency
                and not self.expected.sequence and self.frag is None and self.next_id < self.total):
            pos = self.expected.offsets[self.next_id]
            if self.expected.wsd_stream.startswith(self.buf, pos):
                self.fast = True
                self.pos = pos + len(self.buf)
                self.buf = bytearray()

    def on_message(self, p, now):
        if self.expected is not None and self.expected.sequence:
            if p != b"--":  # grep's separator between context groups
                on_sequence_line(self, p, now)
            return
        lid = on_raw_line(self, p, now, "message")
        if lid is None:
            return
        if self.record_latency:
            parts = p.split(b" ", 2)
            if len(parts) > 1 and parts[1].startswith(b"t="):
                self.latencies.append(now - int(parts[1][2:]))
                if self.read_ns is not None:
                    self.read_latencies.append(self.read_ns - int(parts[1][2:]))
        self.next_id = max(self.next_id, lid + 1)
        if self.next_id >= self.total:
            self.finished(now)


def on_raw_line(conn, msg, now, what):
    """A raw line of the burst (a websocketd message, a logcast `format=text`
    line): a warm-up line marks the subscriber warm; a burst line must be the
    next one, with the right text. Returns the burst line's id, or None for
    a warm-up or unexpected line (`what` names it in the error)."""
    if msg.startswith(b"W"):
        conn.warm = True
        if conn.phase != "warm":
            conn.error("warm-up line after the first burst line")
        return None
    try:
        lid = int(msg[1:9]) if msg.startswith(b"B") else None
    except ValueError:
        lid = None
    if lid is None or lid >= conn.total:
        conn.error("unexpected %s %r" % (what, msg[:80]))
        return None
    if conn.phase == "warm":
        conn.phase = "burst"
        conn.t_first = now
    if lid != conn.next_id:
        conn.error("missing lines %d..%d" % (conn.next_id, lid - 1) if lid > conn.next_id
                   else "line %d again (expected %d)" % (lid, conn.next_id))
    if conn.expected is not None and msg != conn.expected.msgs[lid]:
        conn.error("line %d has the wrong text" % lid)
    return lid


def on_sequence_line(conn, msg, now):
    """A line of a subscriber whose share is a sequence (``Expected.sequence``):
    warm-up and filler lines are skipped, burst lines must be the next of its share."""
    if msg.startswith(b"W"):
        conn.warm = True
        if conn.phase != "warm":
            conn.error("warm-up line after the first burst line")
        return
    if msg.startswith(b"F"):
        if conn.phase != "warm":
            conn.error("filler line after the first burst line")
        return
    if conn.phase == "warm":
        conn.phase = "burst"
        conn.t_first = now
    if conn.next_id >= conn.total:
        conn.error("line past the end of its share: %r" % msg[:40])
        return
    if msg != conn.expected.msgs[conn.next_id]:
        conn.error("line %d of its share is %r, not %r" % (conn.next_id, msg[:20], conn.expected.msgs[conn.next_id][:20]))
    conn.next_id += 1
    if conn.next_id >= conn.total:
        conn.finished(now)


# ---------------------------------------------------------------------------
# Client worker process.

def cpu_self():
    t = os.times()
    return t.user + t.system


SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)   # Linux; also the cmsg type


def kernel_stamp(ancillary):
    """The CLOCK_REALTIME ns of an `SO_TIMESTAMPNS` control message, or None."""
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(data) >= 16:
            sec, nsec = struct.unpack("qq", data[:16])
            return sec * 1_000_000_000 + nsec
    return None


def client_worker(ctrl, kind, port, path, indexes, total, expected, full_every, record_latency,
                  stall_timeout, deadline_s, stall=False, kernel_stamps=False):
    """Connects its subscribers, reports, then reads until done or stalled.

    With `stall`, its subscribers stop reading at "go" (with a receive buffer
    of a few KiB, so the kernel does not read for them) and read on only at
    "resume": the slow consumer of the slow-consumer scenario.

    With `kernel_stamps`, a line's receive time is the kernel's
    (`SO_TIMESTAMPNS`, CLOCK_REALTIME: when the data reached the socket), not
    when this process got round to reading it: with thousands of sockets per
    worker the client's own delay would otherwise be measured. Latency lines
    then carry `time.time_ns()`.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    now_ns = time.monotonic_ns if record_latency else time.monotonic
    conns = []
    i = indexes[0] if indexes else 0
    try:
        for i in indexes:
            # A scenario whose subscribers differ (each its own filter) gives functions of the index.
            p = path(i) if callable(path) else path
            e = expected(i) if callable(expected) else expected
            t = e.count if callable(expected) else total
            sock, rest = ws_connect(port, p, small_buffer=stall)
            if kernel_stamps:
                sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            if kind == "logcast-text":
                c = LogcastTextConn(i, sock, t, e, record_latency=record_latency)
            elif kind.startswith("logcast"):
                c = LogcastConn(i, sock, t, e, full_check=(full_every > 0 and i % full_every == 0),
                                record_latency=record_latency,
                                contiguous=not any(k in p for k in ("source=", "grep=", "regex=", "field=")))
            else:
                c = WebsocketdConn(i, sock, t, e, record_latency=record_latency)
            conns.append(c)
            if rest:
                c.feed(rest, now_ns())
    except Exception as e:  # noqa: BLE001 - reported to the parent
        ctrl.send(("error", "subscriber %d could not connect: %s" % (i, e)))
        return
    ctrl.send(("connected", len(conns)))

    sel = selectors.DefaultSelector()
    for c in conns:
        sel.register(c.sock, selectors.EVENT_READ, c)
    sel.register(ctrl.fileno(), selectors.EVENT_READ, None)
    buf = bytearray(1 << 20)
    view = memoryview(buf)
    warm_reported = False
    go_at = None
    cpu_go = None
    last_progress = time.monotonic()
    stop = False
    stalled = False
    while not stop:
        pending = [c for c in conns if not c.done]
        if go_at is not None and not pending:
            break
        events = sel.select(0.5)
        for key, _ in events:
            c = key.data
            if c is None:
                try:
                    msg = ctrl.recv()
                except EOFError:
                    stop = True
                    break
                if msg == "go":
                    go_at = time.monotonic()
                    cpu_go = cpu_self()
                    last_progress = go_at
                    if stall:
                        stalled = True
                        for c in conns:
                            if not c.closed:
                                sel.unregister(c.sock)
                elif msg == "resume" and stalled:
                    stalled = False
                    last_progress = time.monotonic()
                    for c in conns:
                        if not c.closed:
                            sel.register(c.sock, selectors.EVENT_READ, c)
                elif msg == "stop":
                    stop = True
                continue
            try:
                if kernel_stamps:
                    n, anc, _, _ = c.sock.recvmsg_into([buf], 64)
                    stamp = kernel_stamp(anc)
                else:
                    n = c.sock.recv_into(buf)
            except BlockingIOError:
                continue
            except OSError as e:
                n = 0
                c.close_reason = "socket error: %s" % e
            if n == 0:
                sel.unregister(c.sock)
                if not c.closed:
                    c.closed = True
                    c.close_reason = c.close_reason or "server closed the TCP connection"
                continue
            if kernel_stamps:
                c.read_ns = time.time_ns()
            c.feed(view[:n], stamp if kernel_stamps and stamp else now_ns())
            if c.closed:
                try:
                    sel.unregister(c.sock)
                except (KeyError, ValueError):
                    pass
            last_progress = time.monotonic()
        if not warm_reported and all(c.warm or c.done for c in conns):
            ctrl.send(("warm", len(conns)))
            warm_reported = True
        if go_at is not None and not stalled:
            t = time.monotonic()
            if t - last_progress > stall_timeout or t - go_at > deadline_s:
                break
    cpu = cpu_self() - (cpu_go if cpu_go is not None else cpu_self())
    results = []
    for c in conns:
        results.append({
            "index": c.index,
            "lines": c.lines_received(),
            "done": c.phase == "done",
            "t_done": c.t_done,
            "t_first": c.t_first,
            "errors": c.errors,
            "error_samples": c.error_samples,
            "gaps": c.gaps,
            "gap_missed": c.gap_missed,
            "others": c.others,
            "frames": c.frames,
            "bytes": c.bytes,
            "closed": c.close_reason if c.closed and c.phase != "done" else None,
            "full_check": getattr(c, "full_check", True),
            "max_lines_per_frame": getattr(c, "max_lines_per_frame", 1),
            "latencies": c.latencies,
            "read_latencies": c.read_latencies,
        })
        try:
            c.sock.close()
        except OSError:
            pass
    ctrl.send(("result", cpu, results))


# ---------------------------------------------------------------------------
# Processes, /proc accounting.

STARTED = []   # Popen objects to clean up


def proc_children_map():
    children = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name, "rb") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2:].split()
        children.setdefault(int(fields[1]), []).append(int(name))
    return children


def proc_name(pid):
    try:
        with open("/proc/%d/comm" % pid) as f:
            return f.read().strip()
    except OSError:
        return ""


def process_tree(root):
    children = proc_children_map()
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def cpu_seconds(pids):
    total = 0
    for p in pids:
        try:
            with open("/proc/%d/stat" % p, "rb") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2:].split()
        total += int(fields[11]) + int(fields[12])   # utime, stime
    return total / TICKS


def rss_bytes(pids):
    total = 0
    for p in pids:
        try:
            with open("/proc/%d/statm" % p, "rb") as f:
                total += int(f.read().split()[1]) * PAGE
        except (OSError, IndexError, ValueError):
            continue
    return total


def pss_bytes(pids):
    total = 0
    for p in pids:
        try:
            with open("/proc/%d/smaps_rollup" % p, "rb") as f:
                for line in f:
                    if line.startswith(b"Pss:"):
                        total += int(line.split()[1]) * 1024
                        break
        except (OSError, ValueError):
            continue
    return total


def vm_hwm(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


class RssSampler(threading.Thread):
    """Peak of the summed RSS of a process tree, sampled every `period` s."""

    def __init__(self, root, period=0.1):
        super().__init__(daemon=True)
        self.root = root
        self.period = period
        self.peak = 0
        self.pids = [root]
        self.stopping = threading.Event()

    def run(self):
        n = 0
        while not self.stopping.is_set():
            if n % 10 == 0:
                self.pids = process_tree(self.root)
            n += 1
            self.peak = max(self.peak, rss_bytes(self.pids))
            self.stopping.wait(self.period)

    def stop(self):
        self.stopping.set()
        self.join()
        self.pids = process_tree(self.root)
        self.peak = max(self.peak, rss_bytes(self.pids))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_process(proc, grace=5.0):
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            pass
    # The whole group: websocketd's tail children too.
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        pass
    if proc in STARTED:
        STARTED.remove(proc)


def cleanup_all():
    for proc in list(STARTED):
        stop_process(proc, grace=1.0)
    while RESTORE:
        path, value = RESTORE.pop()
        try:
            with open(path, "w") as f:
                f.write(value)
        except OSError:
            pass


class Server:
    """One server under test. `grep`, for websocketd: each connection runs
    `tail -n0 -F FILE | grep --line-buffered` with the pattern its query
    string names ("fixed": `-F 'G<nn> '`, "regex": `-E '\\bG<nn>\\b'`)."""

    def __init__(self, kind, args, workdir, tag, marker_file=None, grep=None):
        self.kind = kind
        self.grep = grep
        self.args = args
        self.log_path = os.path.join(workdir, "%s-%s.log" % (kind, tag))
        self.file = os.path.join(workdir, "%s-%s.input.log" % (kind, tag))
        open(self.file, "wb").close()
        self.marker_file = marker_file  # logcast: a second source, "marker"
        if marker_file:
            open(marker_file, "wb").close()
        self.proc = None
        self.port = None
        self.command = None

    def start(self, queue_lines, queue_bytes, subscribers):
        log = open(self.log_path, "wb")
        if self.kind.startswith("logcast"):
            # logcast: the defaults, so the durable history is on (its state
            # directory in the work directory); logcast-memory: --state-directory none.
            state = "none" if self.kind == "logcast-memory" else os.path.join(os.path.dirname(self.file), "state-%s" % os.path.basename(self.file))
            self.command = [self.args.logcast_bin, "serve",
                            "--state-directory", state,
                            "--file", "bench=" + self.file,
                            "--listen", "127.0.0.1:0",
                            "--initial-lines", "0",
                            "--max-connections", str(max(4096, subscribers + 64)),
                            "--max-connections-per-address", str(max(4096, subscribers + 16)),
                            "--max-subscribers", str(max(1024, subscribers + 16))]
            if self.marker_file:
                self.command += ["--file", "marker=" + self.marker_file]
            # The queues stay at logcast's defaults unless asked (--queue,
            # --queue-bytes): defaults are what a new user measures.
            if queue_lines is not None:
                self.command += ["--queue", str(queue_lines)]
            if queue_bytes is not None:
                self.command += ["--queue-bytes", str(queue_bytes)]
        else:
            self.port = free_port()
            self.command = [self.args.websocketd_bin, "--port=%d" % self.port, "--address=127.0.0.1"]
            if self.grep is None:
                self.command += ["tail", "-n0", "-F", self.file]
            else:
                # websocketd gives the command the query string (?g=37) in QUERY_STRING.
                pattern = {"fixed": '-F -e "G${QUERY_STRING#g=} "',
                           "context": '-F -C%d -e "G${QUERY_STRING#g=} "' % CONTEXT_LINES,
                           "field": '-F -e "g=${QUERY_STRING#g=} "',
                           "regex": '-E -e "\\bG${QUERY_STRING#g=}\\b"'}[self.grep]
                self.command += ["sh", "-c", 'tail -n0 -F "$0" | grep --line-buffered %s' % pattern, self.file]
        self.proc = subprocess.Popen(self.command, stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                                     start_new_session=True)
        STARTED.append(self.proc)
        log.close()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ScenarioError("%s exited at start (%s); its log:\n%s" % (self.kind, self.proc.returncode, self.log_tail()))
            if self.kind.startswith("logcast"):
                m = re.search(r"address=https?://127\.0\.0\.1:(\d+)", self.log_tail(20000))
                if m:
                    self.port = int(m.group(1))
                    return
            else:
                try:
                    socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                    return
                except OSError:
                    pass
            time.sleep(0.05)
        raise ScenarioError("%s did not start listening within 120 s" % self.kind)

    @property
    def path(self):
        if self.kind == "logcast-text":
            return "/ws?backlog=0&format=text"
        return "/ws?backlog=0" if self.kind.startswith("logcast") else "/"

    def log_tail(self, size=3000):
        try:
            with open(self.log_path, "rb") as f:
                f.seek(0, 2)
                f.seek(max(0, f.tell() - size))
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        if self.proc is not None:
            stop_process(self.proc)


# ---------------------------------------------------------------------------
# Scenarios.

def start_clients(kind, port, path, subscribers, total, expected, args, record_latency, first=0, stall=False,
                  kernel_stamps=False):
    workers = max(1, min(args.clients, subscribers))
    ctx = multiprocessing.get_context("fork")
    procs = []
    for w in range(workers):
        indexes = list(range(first + w, first + subscribers, workers))
        parent_end, child_end = ctx.Pipe()
        p = ctx.Process(target=client_worker, daemon=True,
                        args=(child_end, kind, port, path, indexes, total, expected, args.full_check_every,
                              record_latency, args.stall_timeout, args.deadline, stall, kernel_stamps))
        p.start()
        child_end.close()
        procs.append((p, parent_end))
    return procs


def wait_all(procs, tag, timeout):
    """Waits for one message `tag` from every worker."""
    got = {}
    deadline = time.monotonic() + timeout
    while len(got) < len(procs):
        left = deadline - time.monotonic()
        if left <= 0:
            raise ScenarioError("timed out waiting for subscribers (%s)" % tag)
        ready = multiprocessing.connection.wait([c for p, c in procs if c not in got], timeout=min(left, 0.2))
        for conn in ready:
            try:
                msg = conn.recv()
            except EOFError:
                raise ScenarioError("a client worker died")
            if msg[0] == "error":
                raise ScenarioError(msg[1])
            if msg[0] != tag:
                raise ScenarioError("client worker said %r, expected %r" % (msg[0], tag))
            got[conn] = msg
    return [got[c] for p, c in procs]


def warm_up(fd, procs, server, timeout=60.0, line=warm_line):
    """Writes warm-up lines until every subscriber has received one.

    This is the barrier that makes sure every subscriber is really following
    the file (a websocketd tail has started and opened it; a logcast
    subscription is registered) before the measured part starts.
    """
    deadline = time.monotonic() + timeout
    n = 0
    pending = {c for p, c in procs}
    while pending:
        if not server.alive():
            raise ScenarioError("%s exited during the warm-up; its log:\n%s" % (server.kind, server.log_tail()))
        os.write(fd, line(n) + b"\n")
        n += 1
        end = time.monotonic() + 0.25
        while pending and time.monotonic() < end:
            for conn in multiprocessing.connection.wait(list(pending), timeout=0.05):
                msg = conn.recv()
                if msg[0] != "warm":
                    raise ScenarioError("client worker said %r during the warm-up" % (msg,))
                pending.discard(conn)
        if time.monotonic() > deadline:
            raise ScenarioError("subscribers did not all see the warm-up line within %d s" % timeout)
    time.sleep(0.3)
    return n


def finish_clients(procs, timeout):
    results, cpu = [], 0.0
    for msg in wait_all(procs, "result", timeout):
        cpu += msg[1]
        results.extend(msg[2])
    for p, c in procs:
        p.join(5)
        if p.is_alive():
            p.terminate()
    return results, cpu


def kill_clients(procs):
    for p, c in procs:
        if p.is_alive():
            p.terminate()
        p.join(2)


def end_run(fd, procs, server):
    """Closes the writer's file, stops the clients and the server."""
    if fd is not None:
        os.close(fd)
    kill_clients(procs)
    server.stop()


def verdict(kind, results, total, subscribers, alive=True):
    """Returns (ok, problems) for a run: every subscriber, every line, once,
    and (`alive`) the server still running at the end."""
    problems = [] if alive else ["%s exited during the run" % kind]
    if len(results) != subscribers:
        problems.append("%d of %d subscribers reported" % (len(results), subscribers))
    incomplete = [r for r in results if not r["done"]]
    wrong = [r for r in results if r["errors"]]
    if incomplete:
        r = incomplete[0]
        problems.append("%d subscribers incomplete (e.g. #%d got %d of %d lines%s)" % (
            len(incomplete), r["index"], r["lines"], total, "; " + r["closed"] if r["closed"] else ""))
    if wrong:
        r = wrong[0]
        problems.append("%d subscribers saw wrong, missing or repeated lines (e.g. #%d: %s)" % (
            len(wrong), r["index"], "; ".join(r["error_samples"][:3])))
    gaps = sum(r["gaps"] for r in results)
    if gaps:
        problems.append("%d gap objects, %d lines missed" % (gaps, sum(r["gap_missed"] for r in results)))
    return not problems, problems


def run_burst(kind, args, expected, workdir, rep, subscribers=None, stalled=0, tag="burst", filtered=None):
    """The burst: `subscribers` read every line; `stalled` more stop reading
    at the first burst line and read on only once the others are done.

    `filtered` = (grep, path, share): the filtered fan-out. Subscriber i
    connects to `path(i)` and must receive exactly `share(i)` (an Expected);
    `grep` tells websocketd's server how to filter ("fixed", "regex").
    `expected` is then what the writer writes."""
    n, total = subscribers or args.subscribers, expected.count
    grep, path, share = filtered or (None, None, None)
    server = Server(kind, args, workdir, "%s%d" % (tag, rep), grep=grep)
    procs = []
    slow = []
    sampler = None
    fd = None
    stalled_results = []
    try:
        server.start(args.queue, args.queue_bytes, n + stalled)
        sampler = RssSampler(server.proc.pid)
        sampler.start()
        fd = os.open(server.file, os.O_WRONLY | os.O_APPEND)
        procs = start_clients(kind, server.port, path or server.path, n, total, share or expected, args,
                              record_latency=False)
        if stalled:
            slow = start_clients(kind, server.port, server.path, stalled, total, expected, args,
                                 record_latency=False, first=n, stall=True)
        wait_all(procs + slow, "connected", 120 + n / 20)
        warm_up(fd, procs + slow, server, line=filtered_warm_line if filtered else warm_line)
        if grep == "context":
            os.write(fd, context_filler_lines())
        tree = process_tree(server.proc.pid)
        if kind == "websocketd":
            tails = len([p for p in tree if proc_name(p) == "tail"])
            if tails < n + stalled:
                raise ScenarioError("only %d tail processes for %d subscribers" % (tails, n))
        sampler.pids = tree
        cpu0 = cpu_seconds(tree)
        for p, c in procs + slow:
            c.send("go")
        t0 = time.monotonic()
        for chunk in expected.file_chunks:
            os.write(fd, chunk)
        t_written = time.monotonic()
        results, client_cpu = finish_clients(procs, args.deadline + args.stall_timeout + 60)
        if slow:
            # Measured above: the healthy ones, with the stalled one behind.
            # Now the stalled one reads on: it must get every line too.
            for p, c in slow:
                c.send("resume")
            stalled_results, _ = finish_clients(slow, args.deadline + args.stall_timeout + 60)
        tree = process_tree(server.proc.pid)
        cpu1 = cpu_seconds(tree)
        pss = pss_bytes(tree)
        sampler.stop()
        peak = sampler.peak
        hwm = vm_hwm(server.proc.pid) if len(tree) == 1 else 0
        alive = server.alive()
    except ScenarioError as e:
        return {"kind": kind, "ok": False, "problems": [str(e)], "log": server.log_tail()}
    finally:
        if fd is not None:
            os.close(fd)
        kill_clients(procs + slow)
        if sampler is not None and sampler.is_alive():
            sampler.stop()
        server.stop()
    ok, problems = verdict(kind, results, total, n)
    if stalled:
        slow_ok, slow_problems = verdict(kind, stalled_results, total, stalled)
        if not slow_ok:
            ok = False
            problems.extend("stalled subscriber: " + p for p in slow_problems)
    if not alive:
        ok = False
        problems.append("%s exited during the burst" % kind)
    done_times = sorted(r["t_done"] - t0 for r in results if r["done"])
    elapsed = max(done_times) if done_times and len(done_times) == len(results) else None
    delivered = sum(r["lines"] for r in results)
    frames = sum(r["frames"] for r in results)
    return {
        "kind": kind, "ok": ok, "problems": problems, "command": server.command,
        "subscribers": n, "stalled": stalled, "lines": total, "seconds": elapsed,
        "stalled_others": merge_counts(r["others"] for r in stalled_results),
        "write_seconds": t_written - t0,
        "lines_per_second": (delivered / elapsed) if elapsed else None,
        "delivered": delivered,
        "first_done": done_times[0] if done_times else None,
        "median_done": statistics.median(done_times) if done_times else None,
        "server_cpu": cpu1 - cpu0, "client_cpu": client_cpu,
        "peak_rss": max(peak, hwm), "pss_after": pss, "processes": len(tree),
        "frames": frames, "bytes": sum(r["bytes"] for r in results),
        "max_lines_per_frame": max((r["max_lines_per_frame"] for r in results), default=0),
        "full_checked": sum(1 for r in results if r["full_check"]),
        "others": merge_counts(r["others"] for r in results),
        "log": server.log_tail() if not ok else "",
    }


def merge_counts(dicts):
    out = {}
    for d in dicts:
        for k, v in d.items():
            out[k] = out.get(k, 0) + v
    return out


def percentile(sorted_values, q):
    if not sorted_values:
        return None
    k = min(len(sorted_values) - 1, max(0, math.ceil(q / 100.0 * len(sorted_values)) - 1))
    return sorted_values[k]


def write_paced(fd, count, interval, start=None, clock=time.monotonic_ns):
    """Writes `count` latency lines to `fd`, one every `interval` seconds from
    `start` (monotonic ns; now when None), each carrying its write time
    (read from `clock`)."""
    start = time.monotonic_ns() if start is None else start
    step = int(interval * 1e9)
    for i in range(count):
        target = start + i * step
        while True:
            left = target - time.monotonic_ns()
            if left <= 0:
                break
            time.sleep(left / 1e9)
        os.write(fd, latency_line(i, clock()) + b"\n")


def run_latency(kind, args, workdir):
    n, total = args.latency_subscribers, args.latency_lines
    server = Server(kind, args, workdir, "latency")
    procs = []
    fd = None
    try:
        server.start(args.queue, args.queue_bytes, n)
        fd = os.open(server.file, os.O_WRONLY | os.O_APPEND)
        lat_args = argparse.Namespace(**vars(args))
        lat_args.clients = 1
        # Kernel receive stamps, as in the loaded scenario: the ten subscribers
        # share one client process, which reads a line's ten frames one after
        # another and parses each; stamped on reading, a subscriber's latency
        # would include the client's work on the frames read before its own,
        # and a JSON frame costs the client more than a plain line. When the
        # client read it is reported beside.
        procs = start_clients(kind, server.port, server.path, n, total, None, lat_args, record_latency=True,
                              kernel_stamps=True)
        wait_all(procs, "connected", 120)
        warm_up(fd, procs, server)
        for p, c in procs:
            c.send("go")
        write_paced(fd, total, args.latency_interval, clock=time.time_ns)
        results, client_cpu = finish_clients(procs, args.stall_timeout + 60)
        alive = server.alive()
    except ScenarioError as e:
        return {"kind": kind, "ok": False, "problems": [str(e)], "log": server.log_tail()}
    finally:
        end_run(fd, procs, server)
    ok, problems = verdict(kind, results, total, n, alive)
    lat = sorted(x for r in results for x in r["latencies"])
    read = sorted(x for r in results for x in r["read_latencies"])
    return {
        "kind": kind, "ok": ok, "problems": problems, "samples": len(lat),
        "p50_ms": percentile(lat, 50) / 1e6 if lat else None,
        "p99_ms": percentile(lat, 99) / 1e6 if lat else None,
        "max_ms": lat[-1] / 1e6 if lat else None,
        "read_p50_ms": percentile(read, 50) / 1e6 if read else None,
        "read_p99_ms": percentile(read, 99) / 1e6 if read else None,
        "log": server.log_tail() if not ok else "",
    }


def fill_history(fd, server, count):
    """Appends `count` lines, and for logcast waits until its history holds
    the last (websocketd's `tail -n0` starts after them anyway)."""
    if count <= 0:
        return
    for start in range(0, count, 1000):
        os.write(fd, b"".join(b"H%08d %s\n" % (i, padding(i)) for i in range(start, min(count, start + 1000))))
    if not server.kind.startswith("logcast"):
        return
    last = b"H%08d " % (count - 1)
    deadline = time.monotonic() + 60
    while True:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
            conn.request("GET", "/api/v1/lines?backlog=1")
            body = conn.getresponse().read()
            conn.close()
            if last in body:
                return
        except OSError:
            pass
        if time.monotonic() > deadline or not server.alive():
            raise ScenarioError("logcast did not hold the %d history lines within 60 s" % count)
        time.sleep(0.05)


def run_idle(kind, args, workdir, n):
    """Idle scale: `n` subscribers connected and idle. Memory: the server's
    RSS (and PSS, which counts websocketd's many `tail`s' shared pages once)
    after they are all connected and warm, minus before the first one
    connected, per subscriber. Reach: `--idle-lines` lines, one every
    `--idle-interval` s, each stamped with its write time; per line, the
    latest arrival over all `n` (max) and the 99th percentile; the medians
    over the lines are reported. Receive times are the kernel's, so the
    client's own delay with thousands of sockets is not counted.

    Before they connect, `--idle-history` lines (logcast's default history,
    10,000) are written, so the subscribers connect, as after a restart or a
    deploy, to a server that has been running: logcast holds them in
    memory. Reported beside the connect time: the server's CPU seconds
    (websocketd's with its `tail`s) from the first connection to the last."""
    lines = args.idle_lines
    server = Server(kind, args, workdir, "idle")
    procs = []
    fd = None
    try:
        server.start(args.queue, args.queue_bytes, n)
        fd = os.open(server.file, os.O_WRONLY | os.O_APPEND)
        fill_history(fd, server, args.idle_history)
        time.sleep(0.5)
        tree0 = process_tree(server.proc.pid)
        rss0, pss0 = rss_bytes(tree0), pss_bytes(tree0)
        t_connect = time.monotonic()
        cpu_connect = cpu_seconds(tree0)
        procs = start_clients(kind, server.port, server.path, n, lines, None, args, record_latency=True,
                              kernel_stamps=True)
        wait_all(procs, "connected", 120 + n / 20)
        connect_seconds = time.monotonic() - t_connect
        connect_cpu = cpu_seconds(process_tree(server.proc.pid)) - cpu_connect
        warm_up(fd, procs, server, timeout=120 + n / 50)
        tree = process_tree(server.proc.pid)
        if kind == "websocketd":
            tails = len([p for p in tree if proc_name(p) == "tail"])
            if tails < n:
                raise ScenarioError("only %d tail processes for %d subscribers" % (tails, n))
        rss1, pss1 = rss_bytes(tree), pss_bytes(tree)
        for p, c in procs:
            c.send("go")
        write_paced(fd, lines, args.idle_interval, clock=time.time_ns)
        results, client_cpu = finish_clients(procs, args.stall_timeout + 60 + n / 100)
        alive = server.alive()
    except ScenarioError as e:
        return {"kind": kind, "ok": False, "problems": [str(e)], "log": server.log_tail(), "subscribers": n}
    finally:
        end_run(fd, procs, server)
    ok, problems = verdict(kind, results, lines, n, alive)
    per_line_max, per_line_p99 = [], []
    if ok:
        for i in range(lines):
            lat = sorted(r["latencies"][i] for r in results)
            per_line_max.append(lat[-1] / 1e6)
            per_line_p99.append(percentile(lat, 99) / 1e6)
    return {
        "kind": kind, "ok": ok, "problems": problems, "subscribers": n, "command": server.command,
        "rss_before": rss0, "rss_after": rss1, "pss_before": pss0, "pss_after": pss1,
        "rss_per_subscriber": (rss1 - rss0) / n, "pss_per_subscriber": (pss1 - pss0) / n,
        "processes": len(tree), "connect_seconds": connect_seconds, "connect_cpu": connect_cpu,
        "history": args.idle_history,
        "reach_max_ms": statistics.median(per_line_max) if per_line_max else None,
        "reach_p99_ms": statistics.median(per_line_p99) if per_line_p99 else None,
        "reach_max_ms_each": per_line_max, "reach_p99_ms_each": per_line_p99,
        "client_cpu": client_cpu,
        "log": server.log_tail() if not ok else "",
    }


# ---------------------------------------------------------------------------
# Report.

def run_loaded_latency(kind, args, expected, workdir):
    """Latency of a marker line every 10 ms on one source while the burst
    runs to `--subscribers` others on another source.

    logcast: one server following both files; the burst subscribers select
    `source=bench`, the latency ones `source=marker`. websocketd: one server
    per file (each connection has its own tail anyway)."""
    n, total = args.subscribers, args.lines
    m, markers = args.latency_subscribers, args.loaded_markers
    marker_path = os.path.join(workdir, "%s-loaded.marker.log" % kind)
    server = Server(kind, args, workdir, "loaded", marker_file=marker_path if kind.startswith("logcast") else None)
    marker_server = None
    procs, lat_procs = [], []
    fd = mfd = None
    writer = None
    try:
        server.start(args.queue, args.queue_bytes, n + m)
        if kind.startswith("logcast"):
            marker_server, burst_path, lat_path = server, "/ws?backlog=0&source=bench", "/ws?backlog=0&source=marker"
            marker_file = marker_path
        else:
            marker_server = Server(kind, args, workdir, "loaded-marker")
            marker_server.start(args.queue, args.queue_bytes, m)
            burst_path = lat_path = "/"
            marker_file = marker_server.file
        fd = os.open(server.file, os.O_WRONLY | os.O_APPEND)
        mfd = os.open(marker_file, os.O_WRONLY | os.O_APPEND)
        procs = start_clients(kind, server.port, burst_path, n, total, expected, args, record_latency=False)
        lat_args = argparse.Namespace(**vars(args))
        lat_args.clients = 1
        # Kernel receive stamps: the marker's client shares the two cores with
        # the burst's, which a faster server keeps busier; when the marker
        # reached its socket is what the server controls. When the client read
        # it is reported beside.
        lat_procs = start_clients(kind, marker_server.port, lat_path, m, markers, None, lat_args,
                                  record_latency=True, first=n, kernel_stamps=True)
        wait_all(procs + lat_procs, "connected", 120)
        warm_up(fd, procs, server)
        warm_up(mfd, lat_procs, marker_server)
        for p, c in procs + lat_procs:
            c.send("go")

        def write_burst():
            for chunk in expected.file_chunks:
                os.write(fd, chunk)
        writer = threading.Thread(target=write_burst, daemon=True)
        start = time.monotonic_ns()
        writer.start()
        step = int(args.latency_interval * 1e9)
        write_paced(mfd, markers, args.latency_interval, start, clock=time.time_ns)
        writer.join()
        lat_results, _ = finish_clients(lat_procs, args.stall_timeout + 60)
        results, _ = finish_clients(procs, args.deadline + args.stall_timeout + 60)
        alive = server.alive() and marker_server.alive()
    except ScenarioError as e:
        return {"kind": kind, "ok": False, "problems": [str(e)], "log": server.log_tail()}
    finally:
        for f in (fd, mfd):
            if f is not None:
                os.close(f)
        kill_clients(procs + lat_procs)
        server.stop()
        if marker_server is not None and marker_server is not server:
            marker_server.stop()
    ok, problems = verdict(kind, lat_results, markers, m)
    burst_ok, burst_problems = verdict(kind, results, total, n)
    if not burst_ok:
        ok = False
        problems.extend("burst subscriber: " + p for p in burst_problems)
    if not alive:
        ok = False
        problems.append("%s exited during the run" % kind)
    lat = sorted(x for r in lat_results for x in r["latencies"])
    read = sorted(x for r in lat_results for x in r["read_latencies"])
    done = [r["t_done"] for r in results if r["done"]]
    burst_end_ns = max(done) * 1e9 if done and len(done) == len(results) else None
    during = sum(1 for i in range(markers) if burst_end_ns is None or start + i * step < burst_end_ns)
    return {
        "kind": kind, "ok": ok, "problems": problems, "samples": len(lat),
        "p50_ms": percentile(lat, 50) / 1e6 if lat else None,
        "p99_ms": percentile(lat, 99) / 1e6 if lat else None,
        "max_ms": lat[-1] / 1e6 if lat else None,
        "read_p50_ms": percentile(read, 50) / 1e6 if read else None,
        "read_p99_ms": percentile(read, 99) / 1e6 if read else None,
        "markers_during_burst": during,
        "burst_seconds": (burst_end_ns - start) / 1e9 if burst_end_ns else None,
        "log": server.log_tail() if not ok else "",
    }


def median_latency(runs):
    """The latency runs of one server as one: the medians of their p50s, p99s
    and read times, every run's figures beside (`runs`), or the first failed
    run if one failed."""
    failed = [r for r in runs if not r["ok"]]
    if failed:
        return failed[0]
    out = {"kind": runs[0]["kind"], "ok": True, "problems": [], "samples": sum(r["samples"] for r in runs),
           "max_ms": max(r["max_ms"] for r in runs), "log": "",
           "runs": [{k: r[k] for k in ("p50_ms", "p99_ms", "read_p50_ms", "read_p99_ms")} for r in runs]}
    for key in ("p50_ms", "p99_ms", "read_p50_ms", "read_p99_ms"):
        values = sorted(r[key] for r in runs)
        out[key] = values[len(values) // 2] if len(values) % 2 else (values[len(values) // 2 - 1] + values[len(values) // 2]) / 2
    return out


def pair_ratios(ll, lw, key):
    """logcast / websocketd of `key`, pair by pair (the runs alternate), sorted."""
    if not ll or not lw or "runs" not in ll or "runs" not in lw:
        return []
    return sorted(a[key] / b[key] for a, b in zip(ll["runs"], lw["runs"]) if a[key] and b[key])


def median_run(runs):
    """The median run by lines/s, or the first failed one if any failed."""
    good = sorted((r for r in runs if r["ok"]), key=lambda r: r["lines_per_second"])
    return good[len(good) // 2] if len(good) == len(runs) else next(r for r in runs if not r["ok"])


def raise_limits(subscribers):
    """Raises this process's descriptor limit (inherited by the servers and
    the client workers) as far as the hard limit allows, and as root the
    per-user inotify instance limit, so that thousands of `tail -F` each get
    an inotify instance rather than falling back to polling once a second.
    Returns what was set, for the report."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = max(soft, min(hard, 4 * subscribers + 1024)) if hard != resource.RLIM_INFINITY else 4 * subscribers + 1024
    if want > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    out = {"nofile_soft": resource.getrlimit(resource.RLIMIT_NOFILE)[0], "nofile_hard": hard}
    path = "/proc/sys/fs/inotify/max_user_instances"
    try:
        with open(path) as f:
            old = int(f.read())
        out["inotify_instances"] = old
        if old < subscribers + 1024 and os.geteuid() == 0:
            with open(path, "w") as f:
                f.write(str(subscribers + 1024))
            out["inotify_instances"] = subscribers + 1024
            RESTORE.append((path, str(old)))
    except (OSError, ValueError):
        pass
    return out


RESTORE = []   # (path, value) of system settings to put back at exit


def fmt_rate(r):
    if not r.get("ok"):
        return "FAILED"
    return "%.2f M lines/s" % (r["lines_per_second"] / 1e6)


def fmt_ratio(a, b, ok=True):
    if not ok or a is None or b is None or b == 0:
        return "-"
    return "%.2fx" % (a / b)


def mb(x):
    return "%.0f MB" % (x / 1e6) if x is not None else "-"


def report(args, bursts, lats, logcast_info, slows=None, loaded=None, scale=None, limits=None, slow_changes=None):
    slows = slows or {}
    slow_changes = slow_changes or {}
    loaded = loaded or {}
    scale = scale or {}
    limits = limits or {}
    lc, wd = bursts.get("logcast"), bursts.get("websocketd")
    lm, lt = bursts.get("logcast-memory"), bursts.get("logcast-text")
    ll, lw = lats.get("logcast"), lats.get("websocketd")
    w = [34, 18, 22, 10]
    rows = []

    def row(*cells):
        rows.append("".join(str(c).ljust(w[i]) for i, c in enumerate(cells)).rstrip())

    def get(r, key):
        return r.get(key) if r and r.get("ok") else None

    row("scenario", "logcast", "websocketd+tail -F", "ratio")
    if lc or wd:
        row("burst %dx%d" % (args.subscribers, args.lines),
            fmt_rate(lc) if lc else "-", fmt_rate(wd) if wd else "-",
            fmt_ratio(get(lc, "lines_per_second"), get(wd, "lines_per_second")))
    if lt:
        row("  format=text (the peer's bytes)", fmt_rate(lt), fmt_rate(wd) if wd else "-",
            fmt_ratio(get(lt, "lines_per_second"), get(wd, "lines_per_second")))
    mc, mw = scale.get(("many", "logcast")), scale.get(("many", "websocketd"))
    if mc or mw:
        row("burst %dx%d" % (args.many_subscribers, args.many_lines),
            fmt_rate(mc) if mc else "-", fmt_rate(mw) if mw else "-",
            fmt_ratio(get(mc, "lines_per_second"), get(mw, "lines_per_second")))
    for mode in ("fixed", "regex", "context", "field"):
        fc, fw = scale.get(("filter-" + mode, "logcast")), scale.get(("filter-" + mode, "websocketd"))
        if fc or fw:
            names = {"fixed": "%d greps (fixed)" % FILTER_GROUPS, "regex": "%d regexes" % FILTER_GROUPS,
                     "context": "%d greps, context=%d" % (FILTER_GROUPS, CONTEXT_LINES),
                     "field": "%d field=g=NN (logfmt)" % FILTER_GROUPS}
            row(names[mode],
                fmt_rate(fc) if fc else "-", fmt_rate(fw) if fw else "-",
                fmt_ratio(get(fc, "lines_per_second"), get(fw, "lines_per_second")))
            row("  CPU seconds", "%.2f" % fc["server_cpu"] if get(fc, "server_cpu") is not None else "-",
                "%.2f" % fw["server_cpu"] if get(fw, "server_cpu") is not None else "-",
                fmt_ratio(get(fc, "server_cpu"), get(fw, "server_cpu")))
    ic, iw = scale.get(("idle", "logcast")), scale.get(("idle", "websocketd"))
    if ic or iw:
        def kib(r, key):
            if not r:
                return "-"
            return "%.1f KiB" % (r[key] / 1024) if r["ok"] else "FAILED"

        def reach(r):
            if not r:
                return "-"
            return "%.1f/%.1f ms" % (r["reach_p99_ms"], r["reach_max_ms"]) if r["ok"] else "FAILED"
        label = "idle %d" % ic["subscribers"] if ic else "idle"
        if iw and ic and iw["subscribers"] != ic["subscribers"]:
            label += " (peer %d)" % iw["subscribers"]
        row(label + ": RSS each", kib(ic, "rss_per_subscriber"), kib(iw, "rss_per_subscriber"),
            fmt_ratio(get(ic, "rss_per_subscriber"), get(iw, "rss_per_subscriber")))
        row("  PSS each", kib(ic, "pss_per_subscriber"), kib(iw, "pss_per_subscriber"),
            fmt_ratio(get(ic, "pss_per_subscriber"), get(iw, "pss_per_subscriber")))
        row("  reach all p99/max", reach(ic), reach(iw),
            fmt_ratio(get(ic, "reach_max_ms"), get(iw, "reach_max_ms")))

        def connect(r):
            if not r:
                return "-"
            return "%.0f us" % (r["connect_cpu"] / r["subscribers"] * 1e6) if r["ok"] else "FAILED"
        row("  CPU per connect", connect(ic), connect(iw),
            fmt_ratio(get(ic, "connect_cpu") and ic["connect_cpu"] / ic["subscribers"],
                      get(iw, "connect_cpu") and iw["connect_cpu"] / iw["subscribers"]))
    if lc and lm:
        row("  state dir vs none", fmt_rate(lc), fmt_rate(lm), fmt_ratio(get(lc, "lines_per_second"), get(lm, "lines_per_second")))
    if slows:
        def cost(kind):
            changes = sorted(slow_changes.get(kind) or [])
            if not changes:
                return "FAILED" if slows.get((kind, 0)) or slows.get((kind, 1)) else "-"
            middle = len(changes) // 2
            median = changes[middle] if len(changes) % 2 else (changes[middle - 1] + changes[middle]) / 2
            if len(changes) == 1:
                return "%+.1f%%" % (100.0 * median)
            return "%+.1f%% (%+.0f..%+.0f)" % (100.0 * median, 100.0 * changes[0], 100.0 * changes[-1])
        row("%d + 1 stalled" % args.slow_healthy, cost("logcast"), cost("websocketd"), "")
    def read2(r):
        if not r or r.get("read_p50_ms") is None:
            return "-"
        return "%.2f/%.2f ms" % (r["read_p50_ms"], r["read_p99_ms"]) if r["ok"] else "FAILED"
    if ll or lw:
        def lat(r):
            if not r:
                return "-"
            if not r["ok"]:
                return "FAILED"
            return "%.2f/%.2f ms" % (r["p50_ms"], r["p99_ms"])
        def paired(key50, key99):
            """The median of the pairs' ratios (the runs alternate), else the ratio of the medians."""
            if not (get(ll, key50) and get(lw, key50)):
                return "-"
            r50, r99 = pair_ratios(ll, lw, key50), pair_ratios(ll, lw, key99)
            if r50 and r99:
                return "%.2fx/%.2fx" % (r50[len(r50) // 2], r99[len(r99) // 2])
            return "%.2fx/%.2fx" % (ll[key50] / lw[key50], ll[key99] / lw[key99])
        row("latency p50/p99", lat(ll), lat(lw), paired("p50_ms", "p99_ms"))
        row("  read by the client", read2(ll), read2(lw), paired("read_p50_ms", "read_p99_ms"))
    if loaded:
        def lat2(r):
            if not r:
                return "-"
            return "%.2f/%.2f ms" % (r["p50_ms"], r["p99_ms"]) if r["ok"] else "FAILED"
        la, lb = loaded.get("logcast"), loaded.get("websocketd")
        ratio = "-"
        if get(la, "p50_ms") and get(lb, "p50_ms"):
            ratio = "%.2fx/%.2fx" % (la["p50_ms"] / lb["p50_ms"], la["p99_ms"] / lb["p99_ms"])
        row("  during a burst", lat2(la), lat2(lb), ratio)

        ratio = "-"
        if get(la, "read_p50_ms") and get(lb, "read_p50_ms"):
            ratio = "%.2fx/%.2fx" % (la["read_p50_ms"] / lb["read_p50_ms"], la["read_p99_ms"] / lb["read_p99_ms"])
        row("    read by the client", read2(la), read2(lb), ratio)
    if lc or wd:
        def res(r, key, f):
            if not r or r.get(key) is None:
                return "-"
            return f(r[key]) + ("" if r["ok"] else " (FAILED run)")
        row("peak RSS", res(lc, "peak_rss", mb), res(wd, "peak_rss", mb),
            fmt_ratio(lc and lc.get("peak_rss"), wd and wd.get("peak_rss")))
        row("CPU seconds (burst)", res(lc, "server_cpu", lambda v: "%.2f" % v),
            res(wd, "server_cpu", lambda v: "%.2f" % v),
            fmt_ratio(lc and lc.get("server_cpu"), wd and wd.get("server_cpu")))
    print()
    print("\n".join(rows))
    print()
    print("ratio = logcast / websocketd: above 1 is better for lines/s; below 1 is better for latency, RSS and CPU.")
    if lt:
        print("'format=text': the same burst, logcast's subscribers asking for format=text (raw lines, as websocketd "
              "sends them: the same bytes on the wire), beside websocketd's run above.")
    if lc and lm:
        print("'state dir vs none': logcast with its durable history (the default) / logcast with --state-directory none.")
    if slows:
        print("'%d + 1 stalled': lines/s of %d healthy subscribers while one more stops reading at the first burst "
              "line, against the same %d alone (negative: the stalled one costs them), the median over %d pairs "
              "run alternately, and in brackets the lowest and highest pair; the stalled one then reads on and "
              "must get every line too." % (args.slow_healthy, args.slow_healthy, args.slow_healthy, args.slow_pairs))
    print()
    print("details")
    for name, r in (("logcast", lc), ("text", lt), ("websocketd", wd)):
        if not r:
            continue
        if r.get("seconds") is not None:
            print("  burst %-10s %.2f s until the last subscriber had every line (writing took %.3f s); "
                  "subscribers done after %.2f s (first) / %.2f s (median); server busy on %.2f cores on average"
                  % (name, r["seconds"], r["write_seconds"], r["first_done"], r["median_done"],
                     r["server_cpu"] / r["seconds"]))
        if "frames" in r:
            framing = ("%d frames, up to %d lines in a frame" % (r["frames"], r["max_lines_per_frame"])
                       if name != "websocketd" else "one frame per line")
            print("  burst %-10s %.0f MB received, %s; client CPU %.2f s; server: %d process(es), "
                  "PSS after the burst %s"
                  % (name, r["bytes"] / 1e6, framing, r["client_cpu"], r["processes"], mb(r["pss_after"])))
            print("  burst %-10s checked: %s" % (name,
                  "every line (seq and msg) on %d subscribers; the rest by the first and last line and the "
                  "line count of each frame" % r["full_checked"] if name == "logcast"
                  else "every byte of every frame on every subscriber"))
        if r.get("others"):
            print("  burst %-10s other objects received: %s" % (name, r["others"]))
    for name, r in (("logcast", ll), ("websocketd", lw)):
        if r and r.get("ok"):
            runs = r.get("runs", [])
            print("  latency %-8s %d samples (%d run(s) of %d subscribers x %d lines every %.0f ms), max %.2f ms; "
                  "p50/p99 per run: %s"
                  % (name, r["samples"], max(1, len(runs)), args.latency_subscribers, args.latency_lines,
                     args.latency_interval * 1000, r["max_ms"],
                     ", ".join("%.2f/%.2f" % (x["p50_ms"], x["p99_ms"]) for x in runs) or "-"))
    r50, r99 = pair_ratios(ll, lw, "p50_ms"), pair_ratios(ll, lw, "p99_ms")
    if r50:
        print("  latency  ratios of the %d pairs (logcast / websocketd, alternating runs; the table has their median): "
              "p50 %s; p99 %s" % (len(r50), " ".join("%.2f" % x for x in r50), " ".join("%.2f" % x for x in r99)))
    for kind, r in sorted(loaded.items()):
        if r and r.get("ok"):
            print("  loaded %-9s %d samples, max %.2f ms; %d of %d markers written before the last burst "
                  "subscriber was done (%.2f s); latency to the subscriber's socket (kernel receive stamp), "
                  "and beside it to the client's read" % (kind, r["samples"], r["max_ms"], r["markers_during_burst"],
                                                         args.loaded_markers, r["burst_seconds"] or 0))
    for (scenario, kind), r in sorted(scale.items()):
        if not r or not r.get("ok"):
            continue
        if scenario == "idle":
            print("  idle %-11s %d subscribers connected in %.1f s (server CPU %.2f s, %.0f us each, %d lines "
                  "in the file before); server RSS %s -> %s, PSS %s -> %s "
                  "(%d process(es)); per line (max over subscribers, ms): %s"
                  % (kind, r["subscribers"], r["connect_seconds"], r["connect_cpu"],
                     r["connect_cpu"] / r["subscribers"] * 1e6, r["history"], mb(r["rss_before"]), mb(r["rss_after"]),
                     mb(r["pss_before"]), mb(r["pss_after"]), r["processes"],
                     " ".join("%.1f" % x for x in r["reach_max_ms_each"])))
        else:
            print("  %-16s %s: %.2f s, %d lines delivered, server CPU %.2f s, client CPU %.2f s, "
                  "%d frames, up to %d lines in a frame"
                  % (scenario, kind, r["seconds"], r["delivered"], r["server_cpu"], r["client_cpu"], r["frames"],
                     r["max_lines_per_frame"]))
    for (kind, stalled), r in sorted(slows.items()):
        if r and r.get("ok"):
            print("  slow %-11s %d healthy%s: %s%s" % (kind, args.slow_healthy, " + 1 stalled" if stalled else "",
                  fmt_rate(r), ("; the stalled one got, besides its lines: %s" % r["stalled_others"])
                  if stalled and r.get("stalled_others") else ""))
    failed = False
    checks = [("burst logcast", lc), ("burst websocketd", wd), ("latency logcast", ll), ("latency websocketd", lw)]
    checks += [("slow consumer %s%s" % (k, " + 1 stalled" if st else ""), r) for (k, st), r in sorted(slows.items())]
    checks += [("latency during a burst %s" % k, r) for k, r in sorted(loaded.items())]
    checks += [("%s %s" % k, r) for k, r in sorted(scale.items())]
    for label, r in checks:
        if r and not r["ok"]:
            failed = True
            print()
            print("FAILED: %s" % label)
            for p in r["problems"]:
                print("  - " + p)
            if r.get("log"):
                print("  server log (end):")
                for line in r["log"].strip().splitlines()[-15:]:
                    print("    " + line)
    print()
    print("setup (%s, %d cores):" % (time.strftime("%Y-%m-%d %H:%M:%S"), os.cpu_count() or 0))
    print("  logcast %s" % logcast_info)
    queues = "".join(" --%s %d" % (k, v) for k, v in (("queue", args.queue), ("queue-bytes", args.queue_bytes))
                     if v is not None)
    print("    serve --initial-lines 0%s --max-connections-per-address max(4096, N+16) "
          "--max-subscribers max(1024, N+16)" % queues)
    print("    (the two limits are raised only where N subscribers exceed the defaults: 1024 subscribers, "
          "64 connections per address)")
    if not queues:
        print("    (queues and slow-consumer policy at their defaults: a subscriber whose queue fills catches "
              "up from the history; any gap FAILS the run)")
    else:
        print("    (queues raised from their defaults: this is not what a new user gets)")
    print("  %s: one `tail -n0 -F FILE` per subscriber, one message per line"
          % websocketd_version(args.websocketd_bin))
    if scale:
        print("  filtered fan-out: line i carries group G<i mod %d>; subscriber g asks logcast for grep=G<g>%%20 "
              "(or regex=\\bG<g>\\b) and websocketd runs `tail -n0 -F FILE | grep --line-buffered -F 'G<g> '` "
              "(or -E '\\bG<g>\\b'; with context=3, grep -F -C3); the line also holds the logfmt pair g=<g>, and "
              "with field=g=<g> websocketd's grep is -F 'g=<g> '" % FILTER_GROUPS)
        print("  limits: descriptors %s (hard %s), inotify instances per user %s; websocketd needs a socket and "
              "three pipes per subscriber in its one process"
              % (limits.get("nofile_soft"), limits.get("nofile_hard"), limits.get("inotify_instances", "?")))
    print("  writer: lines of about %d bytes, the burst in writes of 1000 lines; client: %d worker process(es), "
          "a raw WebSocket client; subscribers: /ws?backlog=0 (NDJSON) and /"
          % (round(sum(len(burst_line(i)) + 1 for i in range(1000)) / 1000), args.clients))
    return failed


def websocketd_version(binary):
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10)
        return (out.stdout + out.stderr).strip().splitlines()[0]
    except (OSError, subprocess.SubprocessError, IndexError):
        return "?"


def logcast_description(binary, build=""):
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=30)
        version = (out.stdout + out.stderr).strip().splitlines()[0]
    except (OSError, subprocess.SubprocessError, IndexError):
        version = "?"
    real = os.path.realpath(binary)
    if not build:
        build = "release build" if "/release/" in real else ("debug build" if "/debug/" in real else "build unknown")
    return "%s (%s, %s)" % (version, binary, build)


def self_test():
    """Feeds the checkers synthetic streams: right ones must pass, wrong ones must fail."""
    import random
    rnd = random.Random(7)
    total = 3000
    exp = Expected(total)
    failures = []

    def chunks(data):
        i = 0
        while i < len(data):
            n = rnd.choice((1, 2, 3, 50, 700, 4096, 65536))
            yield data[i:i + n]
            i += n

    def wsd_case(name, frames, want_ok, want_pong=False):
        a, b = socket.socketpair()
        c = WebsocketdConn(0, a, total, exp)
        for part in chunks(b"".join(frames)):
            c.feed(memoryview(part), 0.0)
        ok = c.phase == "done" and c.errors == 0
        b.setblocking(False)
        try:
            pong = b.recv(100)
        except BlockingIOError:
            pong = b""
        a.close(), b.close()
        if ok != want_ok or (want_pong and not pong.startswith(b"\x8a")):
            failures.append("websocketd %s: done=%s errors=%s %s" % (name, c.phase, c.errors, c.error_samples))
        if name == "right stream" and c.frames > total // 5:
            failures.append("websocketd %s: %d frames parsed one by one, the byte comparison is not used"
                            % (name, c.frames))

    warm = [ws_text_frame(warm_line(i)) for i in range(3)]
    good = [ws_text_frame(m) for m in exp.msgs]
    ping = bytes((0x89, 4)) + b"ping"
    wsd_case("right stream", warm + good, True)
    wsd_case("ping in the stream", warm + good[:1234] + [ping] + good[1234:], True, want_pong=True)
    wsd_case("a line missing", warm + good[:100] + good[101:], False)
    wsd_case("a line repeated", warm + good[:2001] + good[2000:], False)
    wsd_case("lines swapped", warm + good[:10] + [good[11], good[10]] + good[12:], False)
    wsd_case("a wrong byte", warm + good[:500] + [ws_text_frame(exp.msgs[500][:-1] + b"#")] + good[501:], False)
    wsd_case("the last line missing", warm + good[:-1], False)

    def lc_line(seq, msg):
        return (b'{"type":"line","seq":%d,"ts":"2026-11-25T10:52:09.092900Z","source":"bench","host":"h",'
                b'"path":"/tmp/x","msg":"%s"}\n' % (seq, msg))

    def lc_frames(objects):
        out, i = [], 0
        while i < len(objects):
            n = rnd.choice((1, 1, 2, 17, 300, 1000))
            out.append(ws_text_frame(b"".join(objects[i:i + n])))
            i += n
        return out

    hello = b'{"type":"hello","version":1,"epoch":"0","server":"logcast","host":"h","sources":["bench"],"filter":{}}\n'
    base = 40
    good_lc = [lc_line(base + i, m) for i, m in enumerate(exp.msgs)]
    warm_lc = [lc_line(base - 3 + i, warm_line(i)) for i in range(3)]

    def lc_case(name, objects, want_ok, full=False, contiguous=True):
        a, b = socket.socketpair()
        c = LogcastConn(0, a, total, exp, full_check=full, contiguous=contiguous)
        for part in chunks(ws_text_frame(hello) + b"".join(lc_frames(warm_lc) + lc_frames(objects))):
            c.feed(memoryview(part), 0.0)
        ok = c.phase == "done" and c.errors == 0 and c.gaps == 0
        a.close(), b.close()
        if ok != want_ok:
            failures.append("logcast %s: done=%s errors=%s %s" % (name, c.phase, c.errors, c.error_samples))
        if want_ok and c.fast_frames == 0:
            failures.append("logcast %s: the per-frame check is not used" % name)
        if want_ok and contiguous and not full and not c.line_fixed:
            failures.append("logcast %s: frames are not checked by their length" % name)

    gap = b'{"type":"gap","after":140,"next":150,"missed":9,"reason":"slow-consumer"}\n'
    for full in (False, True):
        tag = " (every line checked)" if full else ""
        lc_case("right stream" + tag, good_lc, True, full)
        lc_case("a line missing" + tag, good_lc[:100] + good_lc[101:], False, full)
        lc_case("a gap" + tag, good_lc[:100] + [gap] + good_lc[110:], False, full)
        lc_case("a line repeated" + tag, good_lc[:2001] + good_lc[2000:], False, full)
        lc_case("seq jumps" + tag, good_lc[:50] + [lc_line(base + 1000 + i, m) for i, m in enumerate(exp.msgs[50:], 50)],
                False, full)
        lc_case("the last line missing" + tag, good_lc[:-1], False, full)
        # A subscriber of one source: other sources' lines take the seq numbers between.
        spread = [lc_line(base + 3 * i + i % 2, m) for i, m in enumerate(exp.msgs)]
        lc_case("seq rising with holes, selected source" + tag, spread, True, full, contiguous=False)
        if full:  # inside a frame only the per-line check sees it, as with contiguous seq
            lc_case("seq repeated, selected source" + tag, spread[:700] + [lc_line(base + 3 * 699 + 1, exp.msgs[700])]
                    + spread[701:], False, full, contiguous=False)
        lc_case("a line missing, selected source" + tag, spread[:100] + spread[101:], False, full, contiguous=False)
    # Only the per-line check can see a repeat and a loss that cancel out inside one frame.
    twisted = good_lc[:10] + [good_lc[10], good_lc[10]] + good_lc[12:]
    a, b = socket.socketpair()
    c = LogcastConn(0, a, total, exp, full_check=True)
    c.feed(ws_text_frame(hello) + ws_text_frame(b"".join(warm_lc)) + ws_text_frame(b"".join(twisted)), 0.0)
    a.close(), b.close()
    if c.errors == 0:
        failures.append("logcast repeat+loss inside a frame not seen by the per-line check")
    # format=text: frames of whole lines, each with its newline.
    def text_case(name, msgs, want_ok, warm_frame=True):
        a, b = socket.socketpair()
        c = LogcastTextConn(0, a, total, exp)
        frames = [ws_text_frame(b"".join(warm_line(i) + b"\n" for i in range(3)))] if warm_frame else []
        i = 0
        while i < len(msgs):
            n = rnd.choice((1, 1, 2, 17, 300, 1000))
            frames.append(ws_text_frame(b"".join(m + b"\n" for m in msgs[i:i + n])))
            i += n
        for part in chunks(b"".join(frames)):
            c.feed(memoryview(part), 0.0)
        ok = c.phase == "done" and c.errors == 0
        a.close(), b.close()
        if ok != want_ok:
            failures.append("logcast text %s: done=%s errors=%s %s" % (name, c.phase, c.errors, c.error_samples))
        if want_ok and c.lines_received() != total:
            failures.append("logcast text %s: %d lines counted, not %d" % (name, c.lines_received(), total))

    text_case("right stream", exp.msgs, True)
    text_case("warm-up lines in the first burst frame", [warm_line(7)] + exp.msgs, True, warm_frame=False)
    text_case("a line missing", exp.msgs[:100] + exp.msgs[101:], False)
    text_case("a line repeated", exp.msgs[:2001] + exp.msgs[2000:], False)
    text_case("lines swapped", exp.msgs[:10] + [exp.msgs[11], exp.msgs[10]] + exp.msgs[12:], False)
    text_case("a wrong byte", exp.msgs[:500] + [exp.msgs[500][:-1] + b"#"] + exp.msgs[501:], False)
    text_case("the last line missing", exp.msgs[:-1], False)
    text_case("a warm-up line after the burst began", exp.msgs[:5] + [warm_line(9)] + exp.msgs[5:], False)
    # A frame cut inside a line (no newline at its end) is wrong even where the bytes follow on.
    a, b = socket.socketpair()
    c = LogcastTextConn(0, a, total, exp)
    joined = b"".join(m + b"\n" for m in exp.msgs)
    c.feed(ws_text_frame(warm_line(0) + b"\n") + ws_text_frame(joined[:1000]) + ws_text_frame(joined[1000:]), 0.0)
    a.close(), b.close()
    if c.errors == 0 and joined[999:1000] != b"\n":
        failures.append("logcast text: a frame ending inside a line was not seen")
    # A context share (Expected.sequence): lines of other groups as context, separators, fillers.
    burst = [filtered_line(i) for i in range(2000)]
    share = Expected(0, msgs=[burst[i] for i in context_share(2000, 7)], sequence=True)
    fillers = context_filler_lines().split(b"\n")[:-1]
    grep_out = []  # what `grep -F -C3 'G07 '` prints after the fillers: groups split by `--`
    for k, i in enumerate(context_share(2000, 7)):
        if k and i != context_share(2000, 7)[k - 1] + 1:
            grep_out.append(b"--")
        grep_out.append(burst[i])

    def context_case(name, wsd_messages, lc_msgs, want_ok):
        a, b = socket.socketpair()
        c = WebsocketdConn(0, a, share.count, share)
        frames = [ws_text_frame(m) for m in [filtered_warm_line(0)] + fillers + wsd_messages]
        for part in chunks(b"".join(frames)):
            c.feed(memoryview(part), 0.0)
        if (c.phase == "done" and c.errors == 0) != want_ok:
            failures.append("websocketd context %s: done=%s errors=%s %s" % (name, c.phase, c.errors, c.error_samples))
        a.close(), b.close()
        a, b = socket.socketpair()
        c = LogcastConn(0, a, share.count, share, contiguous=False)
        objects = [lc_line(base + i, m) for i, m in enumerate([filtered_warm_line(0)] + fillers + lc_msgs)]
        objects = [o.replace(b'}\n', b',"context":true}\n') if b" G07 " not in o else o for o in objects]
        objects.insert(len(objects) // 2, b'{"type":"separator"}\n')
        for part in chunks(ws_text_frame(hello) + b"".join(lc_frames(objects))):
            c.feed(memoryview(part), 0.0)
        if (c.phase == "done" and c.errors == 0) != want_ok:
            failures.append("logcast context %s: done=%s errors=%s %s" % (name, c.phase, c.errors, c.error_samples))
        a.close(), b.close()

    context_case("right stream", grep_out, share.msgs, True)
    context_case("a context line missing", grep_out[:5] + grep_out[6:], share.msgs[:5] + share.msgs[6:], False)
    context_case("a line twice", grep_out[:9] + grep_out[8:], share.msgs[:9] + share.msgs[8:], False)
    context_case("the last line missing", grep_out[:-1], share.msgs[:-1], False)
    for f in failures:
        print("self-test FAILED: " + f)
    if not failures:
        print("self-test: all checker cases behave (right streams pass, wrong ones fail)")
    return 1 if failures else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--logcast-bin")
    ap.add_argument("--logcast-build", default="", help="how the binary was built, for the report")
    ap.add_argument("--self-test", action="store_true", help="test the stream checkers on synthetic streams and exit")
    ap.add_argument("--websocketd-bin", default=shutil.which("websocketd") or "websocketd")
    ap.add_argument("--subscribers", type=int, default=100)
    ap.add_argument("--lines", type=int, default=100_000)
    ap.add_argument("--quick", action="store_true", help="smoke run: 20 subscribers, 20,000 lines, 200 latency lines")
    ap.add_argument("--latency-subscribers", type=int, default=10)
    ap.add_argument("--latency-lines", type=int, default=500)
    ap.add_argument("--latency-interval", type=float, default=0.010, help="seconds between latency lines")
    ap.add_argument("--clients", type=int, default=max(2, min(4, os.cpu_count() or 2)),
                    help="client worker processes for the burst")
    ap.add_argument("--queue", type=int, default=None, help="logcast --queue (default: logcast's default)")
    ap.add_argument("--queue-bytes", type=int, default=None,
                    help="logcast --queue-bytes (default: logcast's default)")
    ap.add_argument("--raised-queues", action="store_true",
                    help="--queue max(200000, 2 x lines) --queue-bytes max(32 MiB, 512 x lines), as this "
                         "benchmark used before slow subscribers caught up from the history")
    ap.add_argument("--full-check-every", type=int, default=10,
                    help="check every line of every frame on every k-th logcast subscriber (1: all)")
    ap.add_argument("--repeat", type=int, default=1, help="burst runs per server; the median is reported")
    ap.add_argument("--only", choices=["logcast", "logcast-memory", "logcast-text", "websocketd"],
                    help="run one server only")
    ap.add_argument("--skip-text", action="store_true",
                    help="skip the burst's second logcast run, with format=text (the peer's bytes)")
    ap.add_argument("--skip-latency", action="store_true")
    ap.add_argument("--skip-burst", action="store_true")
    ap.add_argument("--skip-slow", action="store_true", help="skip the slow-consumer scenario")
    ap.add_argument("--skip-loaded", action="store_true", help="skip the latency-under-a-burst scenario")
    ap.add_argument("--loaded-markers", type=int, default=300,
                    help="marker lines (one every --latency-interval) during the burst on another source")
    ap.add_argument("--slow-healthy", type=int, default=10,
                    help="healthy subscribers in the slow-consumer scenario (one more stalls)")
    ap.add_argument("--slow-pairs", type=int, default=5,
                    help="runs of the slow-consumer scenario per server, each alone then with the stalled one; "
                         "the median change over the pairs is reported")
    ap.add_argument("--latency-pairs", type=int, default=5,
                    help="runs of the latency scenario per server, alternating; the median of the pairs' ratios "
                         "is reported")
    ap.add_argument("--stall-timeout", type=float, default=20.0,
                    help="give up on a run when no subscriber received anything for this long")
    ap.add_argument("--many-subscribers", type=int, default=1000, help="subscribers in the many-subscribers burst")
    ap.add_argument("--many-lines", type=int, default=10_000, help="lines in the many-subscribers burst")
    ap.add_argument("--skip-many", action="store_true", help="skip the many-subscribers burst")
    ap.add_argument("--idle-subscribers", type=int, default=10_000, help="subscribers in the idle-scale scenario")
    ap.add_argument("--idle-peer-subscribers", type=int, default=None,
                    help="websocketd's subscribers in the idle-scale scenario (default: as many as its "
                         "descriptor limit allows, at most --idle-subscribers)")
    ap.add_argument("--idle-lines", type=int, default=5, help="lines that must reach every idle subscriber")
    ap.add_argument("--idle-interval", type=float, default=1.0, help="seconds between the idle-scale lines")
    ap.add_argument("--idle-history", type=int, default=10_000,
                    help="lines written before the idle subscribers connect (logcast's default history)")
    ap.add_argument("--skip-idle", action="store_true", help="skip the idle-scale scenario")
    ap.add_argument("--skip-filtered", action="store_true", help="skip the filtered fan-out")
    ap.add_argument("--filter-modes", default="fixed,regex,context,field",
                    help="the filtered fan-out's modes, comma-separated (fixed, regex, context, field)")
    ap.add_argument("--deadline", type=float, default=600.0, help="longest a burst may take, in seconds")
    ap.add_argument("--json", help="also write all results to this file")
    ap.add_argument("--keep", action="store_true", help="keep the work directory (server logs, input files)")
    args = ap.parse_args()
    if args.self_test:
        return self_test()
    if not args.logcast_bin:
        ap.error("--logcast-bin is required")
    if args.quick:
        # Smaller defaults; what was given on the command line stays.
        for key, value in (("subscribers", 20), ("lines", 20_000), ("latency_lines", 200), ("many_subscribers", 200),
                           ("many_lines", 5_000), ("idle_subscribers", 1000), ("idle_lines", 3),
                           ("slow_pairs", 2), ("latency_pairs", 1)):
            if getattr(args, key) == ap.get_default(key):
                setattr(args, key, value)
    if args.raised_queues:
        args.queue = args.queue or max(200_000, 2 * args.lines)
        args.queue_bytes = args.queue_bytes or max(32 * 1024 * 1024, 512 * args.lines)
    # logcast-memory (--state-directory none) runs the burst only, to set the
    # durable history's cost beside it.
    # logcast-text (subscribers asking for format=text) too: the burst with the
    # same bytes on the wire as websocketd's, raw lines.
    kinds = [args.only] if args.only else ["logcast", "logcast-memory"] + ([] if args.skip_text else ["logcast-text"]) \
        + ["websocketd"]

    # The other scenarios: logcast at its defaults and websocketd (or, with
    # --only logcast-memory, logcast without a state directory).
    scenario_kinds = [k for k in kinds if k not in BURST_ONLY] or [k for k in kinds if k != "logcast-text"]

    def on_signal(signum, frame):
        cleanup_all()
        sys.exit(128 + signum)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGHUP, on_signal)

    limits = raise_limits(max(args.idle_subscribers, args.many_subscribers, args.subscribers))
    # websocketd holds a socket and three pipes per connection in its one
    # process, and more while it starts a `tail`; near its descriptor limit it
    # drops connections (seen: 4,950 of them with a limit of 20,000), so it
    # gets a margin.
    fd_limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    peer_idle = args.idle_peer_subscribers or min(args.idle_subscribers, (fd_limit - 1000) // 6)
    workdir = tempfile.mkdtemp(prefix="logcast-bench-")
    logcast_info = logcast_description(args.logcast_bin, args.logcast_build)
    bursts, lats, all_bursts = {}, {}, {}
    try:
        print("logcast: %s" % logcast_info, flush=True)
        if not args.skip_burst:
            expected = Expected(args.lines)
            for rep in range(args.repeat):
                for kind in kinds:
                    print("burst: %s, %d subscribers x %d lines (run %d of %d) ..."
                          % (kind, args.subscribers, args.lines, rep + 1, args.repeat), flush=True)
                    r = run_burst(kind, args, expected, workdir, rep)
                    all_bursts.setdefault(kind, []).append(r)
                    print("  %s" % (fmt_rate(r) + ("" if r["ok"] else ": " + "; ".join(r["problems"]))), flush=True)
            for kind, runs in all_bursts.items():
                good = [r for r in runs if r["ok"]]
                if len(good) < len(runs):
                    bursts[kind] = next(r for r in runs if not r["ok"])
                else:
                    good.sort(key=lambda r: r["lines_per_second"])
                    bursts[kind] = good[len(good) // 2]
        slows = {}
        slow_changes = {}
        if not args.skip_slow:
            expected = Expected(args.lines)
            for kind in scenario_kinds:
                # Alone and with the stalled one alternate, so a machine that drifts during the
                # series weighs on both sides alike; each pair gives one change, and their median
                # is reported (a single pair is within this machine's noise of any 5% target).
                runs = {0: [], 1: []}
                changes = []
                for rep in range(args.slow_pairs):
                    pair = {}
                    for stalled in (0, 1):
                        print("slow consumer: %s, %d subscribers%s x %d lines (pair %d of %d) ..."
                              % (kind, args.slow_healthy, " + 1 stalled" if stalled else "", args.lines,
                                 rep + 1, args.slow_pairs), flush=True)
                        r = run_burst(kind, args, expected, workdir, rep, subscribers=args.slow_healthy,
                                      stalled=stalled, tag="slow%d-" % stalled)
                        runs[stalled].append(r)
                        pair[stalled] = r
                        print("  %s" % (fmt_rate(r) + ("" if r["ok"] else ": " + "; ".join(r["problems"]))),
                              flush=True)
                    if pair[0]["ok"] and pair[1]["ok"]:
                        changes.append(pair[1]["lines_per_second"] / pair[0]["lines_per_second"] - 1.0)
                for stalled in (0, 1):
                    all_bursts.setdefault("%s/slow%d" % (kind, stalled), []).extend(runs[stalled])
                    good = sorted((r for r in runs[stalled] if r["ok"]), key=lambda r: r["lines_per_second"])
                    slows[(kind, stalled)] = good[len(good) // 2] if len(good) == len(runs[stalled]) else \
                        next(r for r in runs[stalled] if not r["ok"])
                if len(changes) == args.slow_pairs:
                    slow_changes[kind] = changes
        if not args.skip_latency:
            # The servers alternate, pair by pair, so that a drift of the machine
            # weighs on both; each pair gives a ratio, and their median is reported
            # (one run's p50 differs from the next by more than the two servers do).
            lat_runs = {kind: [] for kind in scenario_kinds}
            for rep in range(args.latency_pairs):
                for kind in scenario_kinds:
                    print("latency: %s, %d subscribers, a line every %.0f ms, %d lines (pair %d of %d) ..."
                          % (kind, args.latency_subscribers, args.latency_interval * 1000, args.latency_lines,
                             rep + 1, args.latency_pairs), flush=True)
                    r = run_latency(kind, args, workdir)
                    lat_runs[kind].append(r)
                    print("  %s" % ("p50/p99 %.2f/%.2f ms" % (r["p50_ms"], r["p99_ms"]) if r["ok"]
                                    else "FAILED: " + "; ".join(r["problems"])), flush=True)
            for kind, runs in lat_runs.items():
                lats[kind] = median_latency(runs)
        loaded = {}
        if not args.skip_loaded:
            expected = Expected(args.lines)
            for kind in scenario_kinds:
                print("latency under a burst: %s, %d subscribers, a line every %.0f ms on one source, "
                      "%d subscribers x %d lines on another ..."
                      % (kind, args.latency_subscribers, args.latency_interval * 1000, args.subscribers, args.lines),
                      flush=True)
                loaded[kind] = run_loaded_latency(kind, args, expected, workdir)
        scale = {}
        if not args.skip_many:
            many_args = argparse.Namespace(**vars(args))
            many_args.lines = args.many_lines
            expected = Expected(args.many_lines)
            for kind in scenario_kinds:
                runs = []
                for rep in range(args.repeat):
                    print("many subscribers: %s, %d subscribers x %d lines (run %d of %d) ..."
                          % (kind, args.many_subscribers, args.many_lines, rep + 1, args.repeat), flush=True)
                    r = run_burst(kind, many_args, expected, workdir, rep, subscribers=args.many_subscribers,
                                  tag="many")
                    runs.append(r)
                    print("  %s" % (fmt_rate(r) + ("" if r["ok"] else ": " + "; ".join(r["problems"]))), flush=True)
                all_bursts.setdefault("%s/many" % kind, []).extend(runs)
                scale[("many", kind)] = median_run(runs)
        if not args.skip_filtered:
            everything = Expected(0, msgs=[filtered_line(i) for i in range(args.lines)])
            shares = [Expected(0, msgs=everything.msgs[g::FILTER_GROUPS]) for g in range(FILTER_GROUPS)]
            context_shares = [Expected(0, msgs=[everything.msgs[i] for i in context_share(args.lines, g)], sequence=True)
                              for g in range(FILTER_GROUPS)]
            paths = {("logcast", "fixed"): lambda i: "/ws?backlog=0&grep=G%02d%%20" % (i % FILTER_GROUPS),
                     ("logcast", "context"): lambda i: "/ws?backlog=0&grep=G%02d%%20&context=3" % (i % FILTER_GROUPS),
                     ("websocketd", "context"): lambda i: "/?g=%02d" % (i % FILTER_GROUPS),
                     ("logcast", "regex"): lambda i: "/ws?backlog=0&regex=%%5CbG%02d%%5Cb" % (i % FILTER_GROUPS),
                     ("websocketd", "fixed"): lambda i: "/?g=%02d" % (i % FILTER_GROUPS),
                     ("websocketd", "regex"): lambda i: "/?g=%02d" % (i % FILTER_GROUPS),
                     ("logcast", "field"): lambda i: "/ws?backlog=0&field=g%%3D%02d" % (i % FILTER_GROUPS),
                     ("websocketd", "field"): lambda i: "/?g=%02d" % (i % FILTER_GROUPS)}
            for mode in [m for m in ("fixed", "regex", "context", "field") if m in args.filter_modes.split(",")]:
                for kind in scenario_kinds:
                    runs = []
                    for rep in range(args.repeat):
                        print("filtered fan-out (%s): %s, %d subscribers with different filters x %d lines "
                              "(run %d of %d) ..." % (mode, kind, FILTER_GROUPS, args.lines, rep + 1, args.repeat),
                              flush=True)
                        share_of = ((lambda i: context_shares[i % FILTER_GROUPS]) if mode == "context"
                                    else (lambda i: shares[i % FILTER_GROUPS]))
                        r = run_burst(kind, args, everything, workdir, rep, subscribers=FILTER_GROUPS,
                                      tag="filter-%s-" % mode, filtered=(mode, paths[(kind.split("-")[0], mode)],
                                                                          share_of))
                        runs.append(r)
                        print("  %s" % (fmt_rate(r) + ("" if r["ok"] else ": " + "; ".join(r["problems"]))),
                              flush=True)
                    all_bursts.setdefault("%s/filter-%s" % (kind, mode), []).extend(runs)
                    scale[("filter-" + mode, kind)] = median_run(runs)
        if not args.skip_idle:
            for kind in scenario_kinds:
                n = args.idle_subscribers if kind.startswith("logcast") else peer_idle
                print("idle scale: %s, %d idle subscribers, %d lines %.1f s apart ..."
                      % (kind, n, args.idle_lines, args.idle_interval), flush=True)
                r = run_idle(kind, args, workdir, n)
                scale[("idle", kind)] = r
                print("  %s" % (("%.1f KiB RSS per subscriber, max %.1f ms to reach all"
                                 % (r["rss_per_subscriber"] / 1024, r["reach_max_ms"])) if r["ok"]
                                else "FAILED: " + "; ".join(r["problems"])), flush=True)
        failed = report(args, bursts, lats, logcast_info, slows, loaded, scale, limits, slow_changes)
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"args": vars(args), "limits": limits, "burst_runs": all_bursts,
                           "latency": lats, "loaded_latency": loaded,
                           "slow_consumer": {"%s/%d" % k: v for k, v in slows.items()},
                           "slow_consumer_changes": slow_changes,
                           "scale": {"%s/%s" % k: v for k, v in scale.items()}},
                          f, indent=2, default=str)
    finally:
        cleanup_all()
        if args.keep:
            print("work directory kept: %s" % workdir)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
