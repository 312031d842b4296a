"""Structured fields: `field=` conditions and `fields=` output on JSON and
logfmt file lines and on journal entries, checked against a reference of
the documented rules (and, for the journal, against journalctl)."""
import json
import random
import re
import urllib.parse

import pytest

from conftest import DEADLINE, Stream, append, wait_for
from journal_support import JournalWriter, journalctl
from test_doors import parse_sse, read_sse, run_tail

NUMBER = re.compile(r"^[+-]?\d+(\.\d+)?([eE][+-]?\d+)?$")
LOGFMT = re.compile(r'(?:^|(?<=[ \t\r\n]))([A-Za-z_][A-Za-z0-9_.\-/@]*)=("(?:[^"\\]|\\.)*"|[^ \t\r\n]*)')


def reference_fields(message):
    """The fields of a message by the documented rules: [(name, value)] in order, or None."""
    if message.lstrip(" \t\r\n").startswith("{"):
        try:
            obj = json.loads(message, parse_int=str, parse_float=str)
        except ValueError:
            return None
        if not isinstance(obj, dict):
            return None
        out = []

        def walk(prefix, value):
            for key, item in value.items():
                name = f"{prefix}.{key}" if prefix else key
                if isinstance(item, dict):
                    walk(name, item)
                elif item is None:
                    continue
                elif isinstance(item, bool):
                    out.append((name, "true" if item else "false"))
                else:
                    assert not isinstance(item, list), "the generator writes no arrays"
                    out.append((name, item))
        walk("", obj)
        return out or None
    out = []
    for name, value in LOGFMT.findall(message):
        if value.startswith('"'):
            value = re.sub(r'\\(.)', lambda m: {"n": "\n", "t": "\t", "r": "\r"}.get(m.group(1), m.group(1)), value[1:-1])
        out.append((name, value))
    return out or None


def reference_passes(expression, fields):
    """Whether a `field=` expression holds for these fields (the rules of docs/PROTOCOL.md)."""
    name, op, value = re.match(r"^([^=!~<>]+)(!=|>=|<=|=|~|>|<)(.*)$", expression).groups()
    values = [v for n, v in (fields or []) if n == name]

    def one(field):
        if op == "~":
            return re.search(value, field, 0 if any(c.isupper() for c in value) else re.I) is not None
        numbers = NUMBER.match(value) and NUMBER.match(field)
        if op in ("=", "!="):
            equal = float(value) == float(field) if numbers else field == value
            return equal == (op == "=")
        if NUMBER.match(value):
            if not NUMBER.match(field):
                return False
            a, b = float(field), float(value)
        else:
            a, b = field.encode(), value.encode()
        return {">": a > b, ">=": a >= b, "<": a < b, "<=": a <= b}[op]
    return any(one(v) for v in values)


USERS = ["bob", "alice", "Admin", "adm-x", "zoë"]


def varied_lines(count, seed=7):
    """JSON, logfmt and plain lines; some lack fields, some have them as strings."""
    rnd = random.Random(seed)
    lines = []
    for i in range(count):
        status = rnd.choice([200, 201, 304, 404, 499, 500, 503])
        user = rnd.choice(USERS)
        kind = i % 5
        if kind == 0:
            lines.append(json.dumps({"level": rnd.choice(["info", "error"]), "status": status, "user": user,
                                     "http": {"status": status, "path": f"/p/{i}"}, "dur": rnd.choice([0.5, 1.5, 12]), "n": i}))
        elif kind == 1:
            lines.append(json.dumps({"status": str(status) + (".0" if i % 3 == 0 else ""), "user": None, "ok": i % 2 == 0, "n": i}))
        elif kind == 2:
            lines.append(f'2026-12-04 INFO level={rnd.choice(["info", "warn"])} status={status} user={user} '
                         f'msg="hello \\"world\\" {i}" dur={rnd.choice(["1.5", "0.25", "x"])} n={i}')
        elif kind == 3:
            lines.append(f"plain text line {i} without pairs")
        else:
            lines.append(f"ts=2026-12-{1 + i % 9:02d} status={status} n={i} empty=")
    return lines


EXPRESSIONS = [
    ["status=500"], ["status!=200"], ["status>=500"], ["status<300"], ["http.status>=500"], ["user=bob"], ["user!=bob"],
    ["user~^a"], ["user~^A"], ["msg~world"], ["level=error"], ["dur>1"], ["ts>=2026-12-05"], ["empty="], ["ok=true"],
    ["status>=500", "user=bob"], ["n<=10", "n>5"],
]


def expected_messages(lines, expressions):
    return [line for line in lines if all(reference_passes(e, reference_fields(line)) for e in expressions)]


def field_query(expressions):
    return "&".join("field=" + urllib.parse.quote(e, safe="") for e in expressions)


@pytest.fixture
def structured(serve, tmp_path):
    log = tmp_path / "app.log"
    lines = varied_lines(250)
    append(log, "".join(line + "\n" for line in lines))
    server = serve("--file", f"app={log}", "--initial-lines", "1000")
    wait_for(lambda: server.health()["last_seq"] == len(lines), message="the file read")
    return server, log, lines


@pytest.mark.parametrize("expressions", EXPRESSIONS, ids=["&".join(e) for e in EXPRESSIONS])
def test_a_read_of_the_history_selects_what_the_rules_say(structured, expressions):
    server, _, lines = structured
    expected = expected_messages(lines, expressions)
    assert 0 < len(expected) < len(lines), "each expression both selects and refuses"
    status, _, body = server.get(f"/api/v1/lines?{field_query(expressions)}&backlog=1000")
    assert status == 200
    got = [o["msg"] for o in map(json.loads, body.decode().splitlines()) if o["type"] == "line"]
    assert got == expected


def test_live_lines_on_every_transport_select_what_the_rules_say(structured):
    server, log, lines = structured
    expressions = ["status>=500", "user~^(bob|zoë)$"]
    more = varied_lines(200, seed=11)
    expected = expected_messages(more, expressions)
    assert expected
    query = f"{field_query(expressions)}&backlog=0"
    s = Stream(f"{server.ws_url}?{query}")
    hello = s.next()
    assert hello["filter"] == {"field": expressions}
    s.ws.send('{"type":"barrier"}')
    assert "barrier" in s.next_of("error")["error"], "subscribed before the lines are written"
    append(log, "".join(line + "\n" for line in more))
    assert [o["msg"] for o in s.lines(len(expected))] == expected
    s.close()
    # SSE and the client read the same lines back from the history.
    every = expected_messages(lines + more, expressions)
    _, sse = read_sse(server.port, f"/sse?{field_query(expressions)}&backlog=1000",
                      lambda t: len([e for e in parse_sse(t)[0] if e.get("event") is None]) >= len(every))
    assert [json.loads(e["data"])["msg"] for e in parse_sse(sse)[0] if e.get("event") is None] == every
    tail = run_tail(f"ws://127.0.0.1:{server.port}", "--no-follow", "-n", "1000", "--field", expressions[0],
                    "--field", expressions[1], "-o", "cat")
    assert tail.returncode == 0 and tail.stdout.splitlines() == every, tail.stderr


def test_fields_adds_the_chosen_fields_to_each_line_object(structured):
    server, _, lines = structured
    _, _, body = server.get("/api/v1/lines?fields=*&backlog=1000")
    objects = [json.loads(line) for line in body.decode().splitlines()]
    assert len(objects) == len(lines)
    for obj, line in zip(objects, lines):
        want = reference_fields(line)
        if want is None:
            assert "fields" not in obj, line
        else:
            last = {}
            for name, value in want:
                last[name] = value
            assert obj["fields"] == last, line
            assert list(obj["fields"]) == list(dict.fromkeys(n for n, _ in want)), "in the order names first occur"
    # SSE frames the same objects, fields and all.
    _, sse = read_sse(server.port, "/sse?fields=*&backlog=1000",
                      lambda t: len([e for e in parse_sse(t)[0] if e.get("event") is None]) >= len(lines))
    sse_objects = [json.loads(e["data"]) for e in parse_sse(sse)[0] if e.get("event") is None]
    assert [o.get("fields") for o in sse_objects] == [o.get("fields") for o in objects]
    _, _, body = server.get("/api/v1/lines?fields=user,status,http.status&grep=level&backlog=1000")
    for obj in map(json.loads, body.decode().splitlines()):
        want = dict(reference_fields(obj["msg"]) or [])
        chosen = {name: want[name] for name in ("user", "status", "http.status") if name in want}
        assert obj.get("fields") == (chosen or None)
    # With context, context lines carry their fields too.
    _, _, body = server.get("/api/v1/lines?fields=n&grep=plain&context=1&backlog=3")
    objects = [json.loads(line) for line in body.decode().splitlines() if '"line"' in line]
    assert any(o.get("context") for o in objects)
    assert all(("fields" in o) == (reference_fields(o["msg"]) is not None) for o in objects)
    # And so do the lines around one (the viewer's "show context").
    _, _, body = server.get(f"/api/v1/lines?around={objects[0]['seq']}&context=2&fields=n")
    around = [json.loads(line) for line in body.decode().splitlines()]
    assert len(around) == 5 and all(o.get("fields") == ({"n": dict(reference_fields(o["msg"]))["n"]} if reference_fields(o["msg"]) else None)
                                    for o in around)
    tail = run_tail(f"ws://127.0.0.1:{server.port}", "--no-follow", "-n", "3", "--fields", "n", "-o", "json")
    printed = [json.loads(line) for line in tail.stdout.splitlines()]
    assert tail.returncode == 0 and [o.get("fields") for o in printed] == [
        ({"n": dict(reference_fields(line))["n"]} if reference_fields(line) else None) for line in lines[-3:]], tail.stderr


def test_a_json_level_sets_the_priority(serve, tmp_path):
    log = tmp_path / "app.log"
    append(log, "".join(json.dumps(o) + "\n" for o in [
        {"level": 50, "msg": "pino error"}, {"level": 30, "msg": "pino info"}, {"msg": "x", "severity": "WARNING"},
        {"lvl": "crit", "msg": "y"}, {"level": 3, "msg": "syslog number"}, {"msg": "no level", "n": 1}]))
    server = serve("--file", f"app={log}", "--initial-lines", "100")
    wait_for(lambda: server.health()["last_seq"] == 6, message="the lines")
    _, _, body = server.get("/api/v1/lines?backlog=100")
    assert [o.get("priority") for o in map(json.loads, body.decode().splitlines()) if o["type"] == "line"] == [3, 6, 4, 2, 3, None]
    _, _, body = server.get("/api/v1/lines?priority=err&backlog=100")
    assert [json.loads(line)["msg"] for line in body.decode().splitlines()] == [
        '{"level": 50, "msg": "pino error"}', '{"lvl": "crit", "msg": "y"}', '{"level": 3, "msg": "syslog number"}']


def test_hostile_lines_cost_bounded_work_and_everyone_keeps_being_served(serve, tmp_path):
    log = tmp_path / "app.log"
    deep = '{"a":' * 10_000 + "1" + "}" * 10_000
    wide = '{"a":"' + "x" * (1 << 20) + '"}'
    many = " ".join(f"k{i}=v" for i in range(5000))
    arrays = '{"a":' + "[" * 20_000 + "]" * 20_000 + "}"
    append(log, "\n".join([deep, wide, many, arrays, '{"status":500}']) + "\n")
    server = serve("--file", f"app={log}", "--initial-lines", "100")
    wait_for(lambda: server.get("/api/v1/lines?grep=status&backlog=1")[2], message="the last line")
    status, _, body = server.get("/api/v1/lines?field=status%3E%3D500&fields=*&backlog=100")
    assert status == 200 and [json.loads(line)["msg"] for line in body.decode().splitlines()] == ['{"status":500}']
    status, _, body = server.get("/api/v1/lines?field=a=1&backlog=100")
    assert status == 200 and body == b"", "lines over the parser's bounds have no fields"
    _, _, body = server.get("/api/v1/lines?fields=*&backlog=100")
    objects = [json.loads(line) for line in body.decode().splitlines()]
    assert [("fields" in o) for o in objects] == [False] * (len(objects) - 1) + [True]
    assert server.health()["status"] == "ok"


ROUTES = ["/ws", "/sse", "/api/v1/lines"]
BAD = [
    ("field=status", "field 'status' has no operator"),
    ("field=%3D500", "field '=500' has no name before its operator"),
    ("field=a%20b%3D1", "field name 'a b' has 'a blank', which a field name cannot have"),
    ("field=st!500", "field 'st!500': '!' must be followed by '=' (NAME!=VALUE)"),
    ("field=n%3E", "field 'n>' has nothing to compare with after '>'"),
    ("field=n~", "field 'n~' has nothing to compare with after '~'"),
    ("field=user~(", "bad regex in field 'user~(': missing closing parenthesis at offset 1"),
    ("field=x%3D" + "y" * 1100, "field is 1102 bytes long; at most 1024 are allowed"),
    ("&".join(f"field=f{i}%3D1" for i in range(33)), "too many field values (more than 32)"),
    ("fields=a%20b", "fields name 'a b' has 'a blank', which a field name cannot have"),
    ("fields=,", "fields ',' names no field"),
    ("fields=status&format=text", "fields needs format=json: text lines carry only the message"),
    ("fields=a&fields=b", "fields given more than once"),
]


@pytest.mark.parametrize("route", ROUTES)
def test_bad_field_keys_are_refused_before_the_stream_naming_the_key(serve, tmp_path, route):
    log = tmp_path / "app.log"
    log.touch()
    server = serve("--file", f"app={log}")
    for query, error in BAD:
        target = f"{route}?{query}"
        status, _, body = server.upgrade(target) if route == "/ws" else server.get(target)
        refusal = json.loads(body)
        assert status == 400 and refusal["error"] == error, (target, refusal)
        assert "field" in refusal["hint"], refusal
    assert server.health()["status"] == "ok"


def test_a_subscribe_message_takes_field_conditions_and_a_bad_one_changes_nothing(serve, tmp_path):
    log = tmp_path / "app.log"
    log.touch()
    server = serve("--file", f"app={log}", "--initial-lines", "0")
    s = Stream(server.ws_url)
    s.next()
    s.send({"type": "subscribe", "filter": {"field": ["status>=500"]}, "backlog": 0})
    assert s.next_of("subscribed")["filter"] == {"field": ["status>=500"]}
    for bad, words in [({"field": ["status"]}, "field 'status' has no operator"),
                       ({"field": ["u~("]}, "bad regex in field 'u~('"),
                       ({"fields": "status"}, "'fields' cannot change on an open stream")]:
        s.send({"type": "subscribe", "filter": bad})
        assert words in s.next_of("error")["error"]
    append(log, "status=200\nstatus=503 a\n")
    assert [o["msg"] for o in s.lines(1)] == ["status=503 a"]
    s.close()


def test_tail_shows_the_servers_refusal_of_a_bad_field(serve, tmp_path):
    log = tmp_path / "app.log"
    log.touch()
    server = serve("--file", f"app={log}")
    tail = run_tail(f"ws://127.0.0.1:{server.port}", "--no-follow", "--field", "status")
    assert tail.returncode != 0 and "field 'status' has no operator" in tail.stderr and "field=status>=500" in tail.stderr
    tail = run_tail(f"ws://127.0.0.1:{server.port}", "--no-follow", "--fields", "a")
    assert tail.returncode != 0 and "--fields needs -o json" in tail.stderr


# The journal: every field of the entry, as journalctl has them.

def journal_entries(count):
    entries = []
    for i in range(count):
        entry = {"MESSAGE": f"entry {i}", "_PID": 1000 + i % 4, "SYSLOG_IDENTIFIER": "app", "PRIORITY": 6,
                 "REQUEST_STATUS": [200, 500, 503][i % 3], "USER_NAME": ["bob", "alice"][i % 2], "_TRANSPORT": "journal"}
        if i % 4 == 0:
            entry["MULTI_LINE"] = f"one\ntwo {i}"
        if i % 5 == 0:
            entry["BLOB"] = b"\x00\x01binary"
        entries.append(entry)
    return entries


def test_journal_entries_have_all_their_fields(serve, tmp_path):
    directory = tmp_path / "journal"
    directory.mkdir()
    writer = JournalWriter(directory)
    try:
        server = serve("--journal-directory", str(directory), "--initial-lines", "0")
        s = Stream(f"{server.ws_url}?backlog=0&fields=*")
        s.next()
        s.ws.send('{"type":"barrier"}')
        s.next_of("error")
        entries = journal_entries(40)
        writer.write(*entries)
        got = s.lines(len(entries))
        expected = journalctl(directory)
        assert len(expected) == len(entries)
        for line, entry in zip(got, expected):
            want = {k: v for k, v in entry.items()
                    if not k.startswith("__") and k != "MESSAGE" and isinstance(v, str)}
            assert line["fields"] == want, line["msg"]
            if "BLOB" in entry:
                assert "BLOB" not in line["fields"], "binary fields are left out"
        assert sum("BLOB" in e for e in expected) == 8
        s.close()

        # field= selects as journalctl FIELD=value selects.
        for expression, journalctl_match in [("_PID=1001", "_PID=1001"), ("USER_NAME=bob", "USER_NAME=bob"),
                                             ("REQUEST_STATUS=503", "REQUEST_STATUS=503")]:
            _, _, body = server.get(f"/api/v1/lines?field={urllib.parse.quote(expression)}&backlog=1000")
            mine = [json.loads(line)["cursor"] for line in body.decode().splitlines()]
            theirs = [e["__CURSOR"] for e in journalctl(directory, journalctl_match)]
            assert mine == theirs and mine, expression
        _, _, body = server.get("/api/v1/lines?field=REQUEST_STATUS%3E%3D500&field=MULTI_LINE~two&backlog=1000")
        assert [json.loads(line)["msg"] for line in body.decode().splitlines()] == [
            e["MESSAGE"] for e in entries if e["REQUEST_STATUS"] >= 500 and "MULTI_LINE" in e]
    finally:
        writer.close()


def test_journal_fields_outlive_a_restart(serve, tmp_path):
    directory = tmp_path / "journal"
    directory.mkdir()
    state = tmp_path / "state"
    writer = JournalWriter(directory)
    try:
        writer.write(*journal_entries(12))
        args = ("--journal-directory", str(directory), "--initial-lines", "100", "--state-directory", str(state))
        server = serve(*args)
        wait_for(lambda: server.health()["last_seq"] == 12, message="the entries")
        _, _, before = server.get("/api/v1/lines?field=USER_NAME%3Dbob&fields=_PID,REQUEST_STATUS&backlog=100")
        server.stop()
        server = serve(*args, "--history", "1")
        wait_for(lambda: server.health()["last_seq"] == 12, message="the restart")
        _, _, after = server.get("/api/v1/lines?field=USER_NAME%3Dbob&fields=_PID,REQUEST_STATUS&after=0")
        assert after == before and len(before.splitlines()) == 6, "read back from the state directory with their fields"
    finally:
        writer.close()
