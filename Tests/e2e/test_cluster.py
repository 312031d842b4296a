"""Beyond one host: agents publish into a real NATS JetStream stream, gateways
serve the merged stream with the stream sequence as `seq` (real nats-server,
real logcast processes)."""
import glob
import json
import os
import shutil
import subprocess
import tempfile

import pytest

from conftest import Server, Stream, append, crash_or_tail, wait_for

NATS_SERVER = shutil.which("nats-server") or "/usr/sbin/nats-server"


class NATSServer:
    """A nats-server with JetStream on a free loopback port, in a directory of its own."""

    def __init__(self, extra=()):
        self.directory = tempfile.mkdtemp(prefix="logcast-nats-")
        self.url = None
        self.extra = list(extra)
        self.start("-1")

    def start(self, port):
        for old in glob.glob(os.path.join(self.directory, "nats-server_*.ports")):
            os.unlink(old)
        self.proc = subprocess.Popen(
            [NATS_SERVER, "-js", "-a", "127.0.0.1", "-p", port, "-sd", self.directory, "--ports_file_dir", self.directory, *self.extra],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )

        def ready():
            files = glob.glob(os.path.join(self.directory, "nats-server_*.ports"))
            if not files:
                return False
            try:
                self.url = json.load(open(files[0]))["nats"][0]
            except (ValueError, KeyError, IndexError):
                return False
            return True

        wait_for(ready, message="nats-server to listen")

    def down(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)

    def up(self):
        """Starts again on the same port, with the same JetStream store."""
        self.start(self.url.rsplit(":", 1)[1])

    def stop(self):
        self.down()
        shutil.rmtree(self.directory, ignore_errors=True)


def free_ports(count):
    import socket
    sockets = [socket.socket() for _ in range(count)]
    for sock in sockets:
        sock.bind(("127.0.0.1", 0))
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


class NATSCluster:
    """Three nats-servers with routes between them, JetStream clustered (replicas up to 3)."""

    def __init__(self):
        client, routes = free_ports(3), free_ports(3)
        self.nodes = []
        for i in range(3):
            peers = ",".join(f"nats://127.0.0.1:{routes[j]}" for j in range(3) if j != i)
            self.nodes.append(NATSServer.__new__(NATSServer))
            node = self.nodes[-1]
            node.directory = tempfile.mkdtemp(prefix=f"logcast-nats{i}-")
            node.url = None
            node.extra = ["-n", f"n{i}", "--cluster_name", "logcast-test", "--cluster", f"nats://127.0.0.1:{routes[i]}", "--routes", peers]
        for i, node in enumerate(self.nodes):
            node.start(str(client[i]))
        self.urls = [node.url for node in self.nodes]
        wait_for(self.has_leader, message="the JetStream cluster to elect a leader")

    def has_leader(self):
        try:
            reply = json.loads(nats_request(self.urls[0], "$JS.API.INFO", timeout=2))
        except (OSError, AssertionError, ValueError):
            return False
        return "error" not in reply

    def stop(self):
        for node in self.nodes:
            if node.proc.poll() is None:
                node.down()
            shutil.rmtree(node.directory, ignore_errors=True)


def start_agent(url, host, log):
    """An agent on NATS at `url` following `log` as source `app`, from its end."""
    return Server(["--nats", url, "--role", "agent", "--host-name", host, "--file", f"app={log}", "--initial-lines", "0"]).start()


class Gateway(Server):
    """A server that serves the stream: started once it follows the stream and holds its newest lines."""

    def start(self):
        super().start()
        wait_for(lambda: self.get("/healthz")[0] == 200, message="the gateway to follow the stream")
        return self


@pytest.fixture
def nats():
    server = NATSServer()
    yield server
    server.stop()


def test_two_agents_and_two_gateways_serve_one_merged_stream(nats, tmp_path):
    logs = {host: tmp_path / f"{host}.log" for host in ("a1", "a2")}
    for log in logs.values():
        log.touch()
    agents = [
        Server(["--nats", nats.url, "--role", "agent", "--host-name", host, "--file", f"app={log}", "--initial-lines", "0"]).start()
        for host, log in logs.items()
    ]
    gateways = [Gateway(["--nats", nats.url, "--role", "gateway"]).start() for _ in range(2)]
    try:
        epochs = {g.health()["epoch"] for g in gateways}
        assert len(epochs) == 1, "every gateway names the stream alike"
        streams = [Stream(g.ws_url) for g in gateways]
        for s in streams:
            assert s.next()["type"] == "hello"
        for i in range(50):
            append(logs["a1"], f"a1 line {i}\n")
            append(logs["a2"], f"a2 line {i}\n")
        got = [s.lines(100) for s in streams]
        for lines in got:
            assert sorted(l["msg"] for l in lines) == sorted([f"a1 line {i}" for i in range(50)] + [f"a2 line {i}" for i in range(50)])
            assert [l["seq"] for l in lines] == list(range(1, 101)), "the stream sequence is the seq"
            for host in ("a1", "a2"):
                assert [l["msg"] for l in lines if l["host"] == host] == [f"{host} line {i}" for i in range(50)], "each host in its file order"
        assert [l["msg"] for l in got[0]] == [l["msg"] for l in got[1]], "the same order on every gateway"

        # A client moves to the other gateway with after + epoch: the rest, once.
        epoch = epochs.pop()
        streams[0].close()
        for i in range(50, 60):
            append(logs["a1"], f"a1 line {i}\n")
        resumed = Stream(f"{gateways[1].ws_url}?after=100&epoch={epoch}")
        assert resumed.next()["epoch"] == epoch
        later = resumed.lines(10)
        assert [l["msg"] for l in later] == [f"a1 line {i}" for i in range(50, 60)]
        assert [l["seq"] for l in later] == list(range(101, 111))
        assert not [o for o in resumed.until_barrier() if o["type"] != "line"], "no gap, nothing twice"
        resumed.close()
        streams[1].close()
    finally:
        for server in agents + gateways:
            server.stop()


def test_an_agent_restarted_publishes_nothing_twice_and_nothing_lost(nats, tmp_path):
    log = tmp_path / "app.log"
    log.touch()
    state = tmp_path / "state"
    args = ["--nats", nats.url, "--role", "agent", "--host-name", "h", "--file", f"app={log}", "--initial-lines", "0", "--state-directory", str(state)]
    gateway = Gateway(["--nats", nats.url, "--role", "gateway"]).start()
    agent = Server(args).start()
    try:
        s = Stream(gateway.ws_url)
        s.next()
        append(log, "".join(f"before {i}\n" for i in range(20)))
        assert [l["msg"] for l in s.lines(20)] == [f"before {i}" for i in range(20)]
        agent.stop(9)
        append(log, "".join(f"down {i}\n" for i in range(20)))
        agent = Server(args).start()
        got = s.lines(20)
        assert [l["msg"] for l in got] == [f"down {i}" for i in range(20)]
        assert [l["seq"] for l in got] == list(range(21, 41))
        assert not [o for o in s.until_barrier() if o["type"] != "line"]
        s.close()
    finally:
        agent.stop()
        gateway.stop()


def test_a_gateway_that_cannot_reach_nats_at_start_refuses_streams_until_it_can(nats, tmp_path):
    nats.down()  # its port is known: the gateway is pointed at a NATS that is not there yet
    gateway = Server(["--nats", nats.url, "--role", "gateway"]).start()
    try:
        status, headers, body = gateway.get("/healthz")
        health = json.loads(body)
        assert status == 503 and health["status"] == "starting", health
        assert "has not reached the NATS stream LOGCAST yet" in health["waiting"] and "epoch" not in health
        for path in ("/api/v1/lines", "/sse"):
            status, headers, body = gateway.get(path)
            assert status == 503 and headers.get("Retry-After") == "2", (path, status)
            assert "has not reached the NATS stream LOGCAST yet" in json.loads(body)["error"]
        status, _, body = gateway.upgrade("/ws")
        assert status == 503 and "has not reached the NATS stream" in json.loads(body)["error"]
        assert metric(gateway, "logcast_nats_gateway_following") == 0

        nats.up()
        wait_for(lambda: gateway.health()["status"] == "ok", message="the gateway to reach the stream")
        assert len(gateway.health()["epoch"]) == 16
        log = tmp_path / "app.log"
        log.touch()
        agent = start_agent(nats.url, "h", log)
        try:
            s = Stream(gateway.ws_url)
            assert s.next()["epoch"] == gateway.health()["epoch"]
            append(log, "after 1\nafter 2\n")
            assert [l["msg"] for l in s.lines(2)] == ["after 1", "after 2"]
            s.close()
        finally:
            agent.stop()
    finally:
        gateway.stop()


def test_an_agent_that_cannot_reach_nats_at_start_serves_locally_and_publishes_later(nats, tmp_path):
    nats.down()
    log = tmp_path / "app.log"
    log.touch()
    agent = start_agent(nats.url, "h", log)
    try:
        local = Stream(agent.ws_url)
        local.next()
        append(log, "".join(f"early {i}\n" for i in range(5)))
        assert [l["msg"] for l in local.lines(5)] == [f"early {i}" for i in range(5)]
        wait_for(lambda: agent.health()["status"] == "degraded", message="the agent to say NATS is down")
        nats.up()
        gateway = Gateway(["--nats", nats.url, "--role", "gateway"]).start()
        try:
            s = Stream(f"{gateway.ws_url}?backlog=10")
            s.next()
            assert [l["msg"] for l in s.lines(5)] == [f"early {i}" for i in range(5)]
            s.close()
        finally:
            gateway.stop()
        local.close()
    finally:
        agent.stop()


def run_serve(*args):
    import subprocess as sp
    from conftest import BINARY, DEADLINE
    return sp.run([str(BINARY), "serve", "--listen", "127.0.0.1:0", "--state-directory", "none", *args],
                  capture_output=True, text=True, timeout=DEADLINE)


@pytest.mark.parametrize("flag,value,given,actual", [
    ("--nats-max-age", "7200", "7200 s", "3600 s"),
    ("--nats-max-bytes", "1048576", "1048576 bytes", "no size limit"),
    ("--nats-replicas", "3", "3", "1 replicas"),
])
def test_a_stream_that_differs_from_a_given_limit_stops_the_start_naming_it(nats, flag, value, given, actual):
    first = Gateway(["--nats", nats.url, "--role", "gateway", "--nats-max-age", "3600"]).start()
    first.stop()
    for role in ("gateway", "agent", "both"):
        result = run_serve("--nats", nats.url, "--role", role, "--demo", flag, value)
        assert result.returncode == 2, result.stderr
        assert f"{flag} is {given}, but the stream LOGCAST exists with {actual}" in result.stderr, result.stderr
    # Limits left at their defaults yield to the stream's.
    Gateway(["--nats", nats.url, "--role", "gateway"]).start().stop()


def nats_request(url, subject, payload=b"", headers=None, timeout=10):
    """One request over the NATS text protocol (PUB or HPUB, then the reply on an inbox): the reply's payload."""
    import socket
    host, port = url.rsplit("//", 1)[1].rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        reader = sock.makefile("rb")
        assert reader.readline().startswith(b"INFO ")
        sock.sendall(b'CONNECT {"verbose":false,"headers":true,"no_responders":true}\r\nSUB _INBOX.t 1\r\n')
        if headers:
            head = b"NATS/1.0\r\n" + b"".join(f"{k}: {v}\r\n".encode() for k, v in headers.items()) + b"\r\n"
            sock.sendall(f"HPUB {subject} _INBOX.t {len(head)} {len(head) + len(payload)}\r\n".encode() + head + payload + b"\r\n")
        else:
            sock.sendall(f"PUB {subject} _INBOX.t {len(payload)}\r\n".encode() + payload + b"\r\n")
        sock.sendall(b"PING\r\n")
        while True:
            line = reader.readline()
            if line.startswith(b"PING"):
                sock.sendall(b"PONG\r\n")
            elif line.startswith(b"MSG ") or line.startswith(b"HMSG "):
                size = int(line.split()[-1])
                data = reader.read(size + 2)[:-2]
                if line.startswith(b"HMSG "):
                    data = data[int(line.split()[-2]):]
                return data
            elif not line:
                raise AssertionError("NATS closed the connection")


def test_a_stream_of_other_subjects_is_refused_naming_the_stream_setting(nats):
    config = {"name": "LOGCAST", "subjects": ["other.>"], "storage": "file", "num_replicas": 1}
    reply = json.loads(nats_request(nats.url, "$JS.API.STREAM.CREATE.LOGCAST", json.dumps(config).encode()))
    assert "error" not in reply, reply
    result = run_serve("--nats", nats.url, "--role", "gateway")
    assert result.returncode == 2, result.stderr
    assert "the stream LOGCAST exists for other subjects (other.>), not logcast.>; choose another --nats-stream" in result.stderr
    Gateway(["--nats", nats.url, "--role", "gateway", "--nats-stream", "LOGS"]).start().stop()


def test_messages_that_are_not_logcast_records_are_counted_skipped_and_logged_once(nats, tmp_path):
    log = tmp_path / "app.log"
    log.touch()
    agent = start_agent(nats.url, "h", log)
    gateway = Gateway(["--nats", nats.url, "--role", "gateway"]).start()
    try:
        s = Stream(gateway.ws_url)
        s.next()
        append(log, "before\n")
        assert s.lines(1)[0]["msg"] == "before"
        bad = [b"not json", b'{"type":"gap"}', b'{"type":"line","ts":"2026-01-01T00:00:00Z"}', b'[1,2]']
        for body in bad:
            ack = json.loads(nats_request(nats.url, "logcast.intruder.x", body))
            assert ack.get("stream") == "LOGCAST", ack
        append(log, "after\n")
        got = s.lines(1)
        assert got[0]["msg"] == "after" and got[0]["seq"] == 2 + len(bad), "the others keep being served, in the stream's numbering"
        assert metric(gateway, "logcast_nats_refused_messages_total") == len(bad)
        logged = [l for l in gateway.stderr_lines if "not a logcast record" in l]
        assert len(logged) == 1 and "logcast.intruder.x" in logged[0], logged
        s.close()
        # A resume across the skipped numbers, from memory and from the stream: they were never lines, so no gap.
        epoch = gateway.health()["epoch"]
        small = Gateway(["--nats", nats.url, "--role", "gateway", "--history", "1"]).start()
        try:
            for target in (gateway, small):
                resumed = Stream(f"{target.ws_url}?after=1&epoch={epoch}")
                resumed.next()
                got = resumed.until_barrier()
                assert [(o["type"], o.get("msg")) for o in got] == [("line", "after")], got
                resumed.close()
        finally:
            small.stop()
    finally:
        agent.stop()
        gateway.stop()


def test_refused_credentials_stop_the_start_naming_the_setting(tmp_path):
    server = NATSServer(["--user", "logcast", "--pass", "right"])
    try:
        port = server.url.rsplit(":", 1)[1]
        result = run_serve("--nats", f"nats://logcast:wrong@127.0.0.1:{port}", "--role", "agent", "--demo")
        assert result.returncode == 2, result.stderr
        assert "--nats: cannot connect to NATS" in result.stderr and "uthoriz" in result.stderr, result.stderr
        ok = Gateway(["--nats", f"nats://logcast:right@127.0.0.1:{port}", "--role", "gateway"]).start()
        assert ok.health()["status"] == "ok"
        ok.stop()
    finally:
        server.stop()


@pytest.mark.parametrize("value", ["http://x:4222", "nats:/x", "nats://"])
def test_a_bad_nats_url_is_refused_naming_it(tmp_path, value):
    import subprocess as sp
    from conftest import BINARY, DEADLINE
    result = sp.run([str(BINARY), "serve", "--check-config", "--nats", value, "--demo"], capture_output=True, text=True, timeout=DEADLINE)
    assert result.returncode == 2 and "--nats" in result.stderr and "is not a NATS URL" in result.stderr, result.stderr


def test_both_roles_in_one_process_deliver_its_own_lines_once(nats, tmp_path):
    log = tmp_path / "app.log"
    log.touch()
    server = Gateway(["--nats", nats.url, "--host-name", "solo", "--file", f"app={log}", "--initial-lines", "0"]).start()
    try:
        s = Stream(server.ws_url)
        assert s.next()["type"] == "hello"
        append(log, "".join(f"line {i}\n" for i in range(30)))
        got = s.lines(30)
        assert [l["msg"] for l in got] == [f"line {i}" for i in range(30)]
        assert [l["seq"] for l in got] == list(range(1, 31))
        assert all(l["host"] == "solo" for l in got)
        assert not [o for o in s.until_barrier() if o["type"] != "line"], "its own lines once, through the stream"
        s.close()
    finally:
        server.stop()


def metric(server, name):
    for line in server.get("/metrics")[2].decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def test_while_nats_is_down_the_agent_says_so_and_catches_up_after(nats, tmp_path):
    log = tmp_path / "app.log"
    log.touch()
    agent = start_agent(nats.url, "h", log)
    gateway = Gateway(["--nats", nats.url, "--role", "gateway"]).start()
    try:
        s = Stream(gateway.ws_url)
        s.next()
        append(log, "up 0\n")
        assert s.lines(1)[0]["msg"] == "up 0"
        assert metric(agent, "logcast_nats_connected") == 1
        assert metric(agent, "logcast_nats_acknowledged_total") == 1
        assert metric(agent, "logcast_nats_acknowledgement_seconds_total") > 0
        assert metric(gateway, "logcast_nats_stream_seq") == 1

        nats.down()
        append(log, "".join(f"down {i}\n" for i in range(10)))
        wait_for(lambda: agent.health()["status"] == "degraded", message="the agent to say NATS is down")
        assert "not publishing to NATS" in agent.health()["degraded"][0]
        wait_for(lambda: metric(agent, "logcast_nats_publish_backlog_lines") >= 9, message="the backlog to show")
        local = Stream(f"{agent.ws_url}?backlog=20")  # the agent goes on serving its own subscribers
        local.next()
        assert [l["msg"] for l in local.lines(11)] == ["up 0"] + [f"down {i}" for i in range(10)]
        local.close()

        nats.up()
        got = s.lines(10)
        assert [l["msg"] for l in got] == [f"down {i}" for i in range(10)], "caught up, in order"
        assert [l["seq"] for l in got] == list(range(2, 12)), "nothing twice: the stream dropped any repeat"
        wait_for(lambda: agent.health()["status"] == "ok", message="the agent to be healthy again")
        assert metric(agent, "logcast_nats_publish_backlog_lines") == 0
        s.close()
    finally:
        agent.stop()
        gateway.stop()


@pytest.fixture
def cluster():
    nodes = NATSCluster()
    yield nodes
    nodes.stop()


def test_three_agents_on_a_cluster_of_three_reach_two_gateways_through_node_loss_and_a_full_outage(cluster, tmp_path):
    hosts = ["web1", "web2", "db1"]
    logs = {host: tmp_path / f"{host}.log" for host in hosts}
    for log in logs.values():
        log.touch()
    every = ",".join(cluster.urls)
    agents = {
        host: Server(["--nats", cluster.urls[i], "--nats", every, "--role", "agent", "--host-name", host,
                      "--nats-replicas", "3", "--file", f"app={logs[host]}", "--initial-lines", "0"]).start()
        for i, host in enumerate(hosts)
    }
    gateways = [Gateway(["--nats", cluster.urls[i], "--nats", every, "--role", "gateway", "--nats-replicas", "3"]).start() for i in (1, 2)]
    written = {host: [] for host in hosts}

    def write(tag, count):
        for i in range(count):
            for host in hosts:
                line = f"{host} {tag} {i}"
                written[host].append(line)
                append(logs[host], line + "\n")

    # Phases in which the stream's leader may change: lines a host had in
    # flight then may be stored after later ones (README, "What each
    # guarantee rests on"), so within such a phase only "every line once"
    # is checked; the phases themselves stay in order.
    leader_may_change = {"two-nodes", "outage"}

    def check(lines):
        for host in hosts:
            got = [l["msg"] for l in lines if l["host"] == host]
            missing = [m for m in written[host] if m not in got]
            twice = sorted({m for m in got if got.count(m) > 1})
            assert not missing and not twice and len(got) == len(written[host]), \
                f"{host}: every line once; missing {missing}, twice {twice}, received {len(lines)}"
            phases = list(dict.fromkeys(m.split()[1] for m in written[host]))
            got_phases = [m.split()[1] for m in got]
            assert got_phases == sorted(got_phases, key=phases.index), f"{host}: the phases in order: {got}"
            for phase in phases:
                got_in = [m for m in got if m.split()[1] == phase]
                written_in = [m for m in written[host] if m.split()[1] == phase]
                if phase in leader_may_change:
                    assert sorted(got_in) == sorted(written_in), f"{host}: every {phase} line once"
                else:
                    assert got_in == written_in, f"{host}: the {phase} lines in file order"

    try:
        streams = [Stream(g.ws_url) for g in gateways]
        for s in streams:
            s.next()
        write("first", 30)
        got = [s.lines(90) for s in streams]
        for lines in got:
            check(lines)
        assert [l["seq"] for l in got[0]] == [l["seq"] for l in got[1]] and [l["msg"] for l in got[0]] == [l["msg"] for l in got[1]]

        # One node of three stops: the stream (replicas 3) goes on.
        cluster.nodes[0].down()
        write("two-nodes", 30)
        for i, s in enumerate(streams):
            got[i] += s.lines(90)
        for lines in got:
            check(lines)
        cluster.nodes[0].up()

        # All of NATS stops: agents go on following and serving locally, and catch up afterwards.
        for node in cluster.nodes:
            node.down()
        write("outage", 30)
        for host, agent in agents.items():
            wait_for(lambda: agent.health()["status"] == "degraded", message=f"{host} to say NATS is down")
        for node in cluster.nodes:
            node.start(node.url.rsplit(":", 1)[1])
        for i, s in enumerate(streams):
            got[i] += s.lines(90, timeout=90)
        for lines in got:
            check(lines)
            assert [l["seq"] for l in lines] == sorted(set(l["seq"] for l in lines)), "one order, nothing twice"
        assert [l["msg"] for l in got[0]] == [l["msg"] for l in got[1]], "the same order on both gateways"
        for s in streams:
            assert not [o for o in s.until_barrier() if o["type"] != "line"], "no gap"
            s.close()
    except BaseException:
        for name, server in [*agents.items(), ("gateway 1", gateways[0]), ("gateway 2", gateways[1])]:
            print(f"--- {name}:\n" + "".join(crash_or_tail(server.stderr_lines)))
            print(server.get("/metrics")[2].decode())
        raise
    finally:
        for server in list(agents.values()) + gateways:
            server.stop()


def test_a_subscriber_whose_gateway_is_killed_mid_stream_resumes_on_the_other_once(nats, tmp_path):
    import threading
    log = tmp_path / "app.log"
    log.touch()
    agent = start_agent(nats.url, "h", log)
    gateways = [Gateway(["--nats", nats.url, "--role", "gateway"]).start() for _ in range(2)]
    total = 3000
    writing = threading.Thread(target=lambda: [append(log, "".join(f"line {i + j}\n" for j in range(10))) for i in range(0, total, 10)])
    try:
        s = Stream(gateways[0].ws_url)
        epoch = s.next()["epoch"]
        writing.start()
        got = s.lines(500)
        gateways[0].stop(9)  # mid-stream: lines keep coming
        while True:
            try:
                obj = s.next(timeout=5)
            except Exception:
                break
            if obj["type"] == "line":
                got.append(obj)
        s.close()
        resumed = Stream(f"{gateways[1].ws_url}?after={got[-1]['seq']}&epoch={epoch}")
        assert resumed.next()["epoch"] == epoch
        got += resumed.lines(total - len(got))
        writing.join()
        assert [l["msg"] for l in got] == [f"line {i}" for i in range(total)], "every line once, in order"
        assert [l["seq"] for l in got] == list(range(1, total + 1))
        assert not [o for o in resumed.until_barrier() if o["type"] != "line"]
        resumed.close()
    finally:
        writing.join()
        agent.stop()
        for g in gateways:
            g.stop()


def test_a_resume_older_than_the_gateways_memory_is_read_from_the_stream(nats, tmp_path):
    log = tmp_path / "app.log"
    log.touch()
    agent = start_agent(nats.url, "h", log)
    gateway = Gateway(["--nats", nats.url, "--role", "gateway", "--history", "20"]).start()
    try:
        s = Stream(gateway.ws_url)
        epoch = s.next()["epoch"]
        append(log, "".join(f"line {i}\n" for i in range(200)))
        assert len(s.lines(200)) == 200
        s.close()
        for target in (gateway, Gateway(["--nats", nats.url, "--role", "gateway", "--history", "20"]).start()):
            # A gateway that holds the newest 20 lines (the second one started after them all) reads the rest from the stream.
            resumed = Stream(f"{target.ws_url}?after=5&epoch={epoch}")
            resumed.next()
            got = resumed.lines(195)
            assert [l["msg"] for l in got] == [f"line {i}" for i in range(5, 200)]
            assert [l["seq"] for l in got] == list(range(6, 201))
            assert not [o for o in resumed.until_barrier() if o["type"] != "line"], "no evicted gap: the stream still has them"
            resumed.close()
            status, _, body = target.get("/api/v1/lines?after=100&limit=5")
            objects = [json.loads(l) for l in body.decode().splitlines()]
            assert status == 200 and [o["seq"] for o in objects if o["type"] == "line"] == [101, 102, 103, 104, 105], objects
            if target is not gateway:
                target.stop()
    finally:
        agent.stop()
        gateway.stop()


def test_a_resume_older_than_the_stream_keeps_gets_an_evicted_gap(nats, tmp_path):
    log = tmp_path / "app.log"
    log.touch()
    args = ["--nats", nats.url, "--nats-stream", "SMALL"]
    agent = Server([*args, "--role", "agent", "--host-name", "h", "--file", f"app={log}", "--initial-lines", "0"]).start()
    try:
        append(log, "".join(f"line {i}\n" for i in range(50)))
        wait_for(lambda: metric(agent, "logcast_nats_publish_backlog_lines") == 0 and metric(agent, "logcast_nats_acknowledged_total") == 50,
                 message="the agent to publish")
        # The stream drops its oldest 30 messages (as its limits would).
        reply = json.loads(nats_request(nats.url, "$JS.API.STREAM.PURGE.SMALL", json.dumps({"keep": 20}).encode()))
        assert reply.get("success"), reply
        gateway = Gateway([*args, "--role", "gateway", "--history", "10"]).start()
        try:
            epoch = gateway.health()["epoch"]
            s = Stream(f"{gateway.ws_url}?after=5&epoch={epoch}")
            s.next()
            gap = s.next()
            assert gap["type"] == "gap" and gap["reason"] == "evicted" and gap["after"] == 5 and gap["next"] == 31, gap
            got = s.lines(20)
            assert [l["seq"] for l in got] == list(range(31, 51))
            s.close()
        finally:
            gateway.stop()
    finally:
        agent.stop()


def test_logcast_tail_against_a_gateway_picks_hosts(nats, tmp_path):
    import subprocess as sp
    from conftest import BINARY, DEADLINE
    logs = {host: tmp_path / f"{host}.log" for host in ("web1", "web2", "db1")}
    for log in logs.values():
        log.touch()
    agents = [Server(["--nats", nats.url, "--role", "agent", "--host-name", host, "--file", f"app={log}", "--initial-lines", "0"]).start()
              for host, log in logs.items()]
    gateway = Gateway(["--nats", nats.url, "--role", "gateway"]).start()
    try:
        for host, log in logs.items():
            append(log, "".join(f"{host} {i}\n" for i in range(3)))
        wait_for(lambda: metric(gateway, "logcast_nats_stream_seq") == 9, message="the gateway to have every line")
        url = f"ws://127.0.0.1:{gateway.port}"
        out = sp.run([str(BINARY), "tail", url, "-H", "web1", "--host", "db1", "--no-follow", "-n", "100", "-o", "cat"],
                     capture_output=True, text=True, timeout=DEADLINE)
        assert out.returncode == 0, out.stderr
        assert sorted(out.stdout.splitlines()) == sorted([f"web1 {i}" for i in range(3)] + [f"db1 {i}" for i in range(3)])
        short = sp.run([str(BINARY), "tail", url, "-H", "web2", "--no-follow", "-o", "short", "--color", "never"],
                       capture_output=True, text=True, timeout=DEADLINE)
        assert [line.split(" ", 1)[1] for line in short.stdout.splitlines()] == [f"web2 app: web2 {i}" for i in range(3)], short.stdout
    finally:
        for server in agents + [gateway]:
            server.stop()


def test_a_consumer_deleted_under_the_gateway_is_made_again_and_nothing_is_lost(nats, tmp_path):
    log = tmp_path / "app.log"
    log.touch()
    agent = start_agent(nats.url, "h", log)
    gateway = Gateway(["--nats", nats.url, "--role", "gateway"]).start()
    try:
        s = Stream(gateway.ws_url)
        s.next()
        append(log, "one\n")
        assert s.lines(1)[0]["msg"] == "one"
        names = json.loads(nats_request(nats.url, "$JS.API.CONSUMER.NAMES.LOGCAST"))["consumers"]
        assert len(names) == 1, names
        reply = json.loads(nats_request(nats.url, f"$JS.API.CONSUMER.DELETE.LOGCAST.{names[0]}"))
        assert reply.get("success"), reply
        append(log, "".join(f"after {i}\n" for i in range(20)))
        got = s.lines(20)
        assert [l["msg"] for l in got] == [f"after {i}" for i in range(20)]
        assert [l["seq"] for l in got] == list(range(2, 22))
        assert not [o for o in s.until_barrier() if o["type"] != "line"]
        s.close()
    finally:
        agent.stop()
        gateway.stop()


def test_a_host_or_source_filter_is_pushed_down_to_the_read_of_the_stream(nats, tmp_path):
    hosts = ["web1", "web2", "db1"]
    logs = {host: (tmp_path / f"{host}.log", tmp_path / f"{host}.other") for host in hosts}
    for pair in logs.values():
        for log in pair:
            log.touch()
    agents = [Server(["--nats", nats.url, "--role", "agent", "--host-name", host, "--file", f"app={app}", "--file", f"other={other}",
                      "--initial-lines", "0"]).start() for host, (app, other) in logs.items()]
    # A small queue: a read of the whole stream (150 lines) does not fit one.
    gateway = Gateway(["--nats", nats.url, "--role", "gateway", "--history", "10", "--queue", "100"]).start()
    try:
        for i in range(25):
            for host, (app, other) in logs.items():
                append(app, f"{host} app {i}\n")
                append(other, f"{host} other {i}\n")
        wait_for(lambda: metric(gateway, "logcast_nats_stream_seq") == 150, message="the gateway to have every line")
        epoch = gateway.health()["epoch"]
        for query, expected in [
            ("host=web1", {f"web1 {source} {i}" for source in ("app", "other") for i in range(25)}),
            ("host=db1&source=app", {f"db1 app {i}" for i in range(25)}),
            ("source=other&grep=web2", {f"web2 other {i}" for i in range(25)}),  # the rest of the filter applies in the gateway
        ]:
            s = Stream(f"{gateway.ws_url}?after=0&epoch={epoch}&{query}")
            s.next()
            got = s.lines(len(expected))
            assert {l["msg"] for l in got} == expected and len(got) == len(expected), query
            assert [l["seq"] for l in got] == sorted(l["seq"] for l in got)
            assert not [o for o in s.until_barrier() if o["type"] != "line"], f"{query}: no gap, the read selected by subject"
            s.close()
        # Two hosts are no one subject: the stream is read whole, past what one queue holds, and
        # reads on from the stream where the first read stopped: every line, no gap.
        s = Stream(f"{gateway.ws_url}?after=0&epoch={epoch}&host=web1&host=web2")
        s.next()
        expected = [f"{host} {source} {i}" for i in range(25) for host in ("web1", "web2") for source in ("app", "other")]
        objects = []
        while len([o for o in objects if o["type"] == "line"]) < len(expected):
            objects.append(s.next())
        assert [o for o in objects if o["type"] != "line"] == [], "no gap: the stream still holds every line"
        got = [o for o in objects if o["type"] == "line"]
        assert sorted(o["msg"] for o in got) == sorted(expected)
        assert [o["seq"] for o in got] == sorted(o["seq"] for o in got)
        s.close()
    finally:
        for server in agents + [gateway]:
            server.stop()
