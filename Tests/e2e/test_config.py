"""The config file, LOGCAST_* variables and SIGHUP, against the real binary."""
import json
import os
import signal
import subprocess

import pytest
from websockets.exceptions import ConnectionClosed

from conftest import BINARY, DEADLINE, Server, Stream, append, wait_for
from journal_support import JournalWriter


def check(*args, env=None, cwd=None):
    return subprocess.run([str(BINARY), "serve", "--check-config", *args], capture_output=True, text=True,
                          timeout=DEADLINE, env={**os.environ, **(env or {})}, cwd=cwd)


def settings_of(result):
    """--check-config prints `key: <JSON value>` lines (valid YAML too)."""
    assert result.returncode == 0, result.stderr
    settings = {}
    for line in result.stdout.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        key, _, value = line.partition(": ")
        settings[key] = json.loads(value)
    return settings


@pytest.fixture
def files(tmp_path):
    for name in ("a.log", "b.log"):
        (tmp_path / name).write_text("")
    (tmp_path / "web").mkdir()
    (tmp_path / "web" / "index.html").write_text("<!doctype html><title>x</title>")
    (tmp_path / "tokens").write_text("config-token-1\n")
    (tmp_path / "journal").mkdir()
    return tmp_path


def every_key(tmp_path):
    """A config that sets every key to something other than its default."""
    return {
        "listen": "127.0.0.1:0",
        "file": [f"a={tmp_path}/a.log", f"b={tmp_path}/b.log"],
        "journal": False,
        "journal-directory": [f"jd={tmp_path}/journal"],
        "journal-file": [f"jf={tmp_path}/journal/x.journal"],
        "journal-unit": ["nginx.service", "cron.service"],
        "multiline": ["a=indented", "b=^\\d{4}-\\d{2}-\\d{2} "],
        "multiline-timeout": 1.5,
        "file-poll-interval": 2.5,
        "demo": False,
        "history": 1234,
        "history-bytes": 2048000,
        "initial-lines": 3,
        "queue": 99,
        "queue-bytes": 4096,
        "slow-consumer": "disconnect",
        "ping-interval": 12.5,
        "sse-heartbeat": 3.0,
        "max-subscribers": 7,
        "max-connections-per-address": 5,
        "max-connections": 300,
        "request-head-timeout": 4.5,
        "allow-origin": ["https://logs.example.com"],
        "allow-host": ["logs.example.com"],
        "token-file": f"{tmp_path}/tokens",
        "tls-cert": None,
        "tls-key": None,
        "web-root": f"{tmp_path}/web",
        "host-name": "configured-host",
        "log-level": "debug",
        "state-directory": f"{tmp_path}/state",
        "history-disk-bytes": 2097152,
        "history-max-age": 3600,
        "max-catch-up-bytes": 4096,
        "reset-state": True,
        "nats": ["nats://127.0.0.1:4222", "tls://nats.example.com:4222"],
        "nats-creds": f"{tmp_path}/nats.creds",
        "nats-ca-file": f"{tmp_path}/ca.pem",
        "role": "agent",
        "nats-stream": "LOGS",
        "nats-max-age": 3600,
        "nats-max-bytes": 1048576,
        "nats-replicas": 3,
    }


def write_yaml(path, settings):
    lines = []
    for key, value in settings.items():
        if isinstance(value, list):
            lines.append(f"{key}:")
            lines += [f"  - {json.dumps(item)}" for item in value]
        elif value is None:
            lines.append(f"{key}:")
        elif isinstance(value, bool):
            lines.append(f"{key}: {'yes' if value else 'no'}")
        else:
            lines.append(f"{key}: {json.dumps(value)}")
    path.write_text("# written by the test\n" + "\n".join(lines) + "\n")


def test_every_key_round_trips(files):
    wanted = every_key(files)
    config = files / "config.yaml"
    write_yaml(config, wanted)
    got = settings_of(check("--config", str(config)))
    assert got == wanted
    # The printed settings are themselves a config file that gives the same settings.
    again = files / "again.yaml"
    again.write_text(check("--config", str(config)).stdout)
    assert settings_of(check("--config", str(again))) == wanted


def test_flags_override_environment_override_file(files):
    config = files / "config.yaml"
    config.write_text(f"file: {files}/a.log\nhistory: 100\nqueue: 200\nlisten: 127.0.0.1:9\n")
    got = settings_of(check("--config", str(config), "--history", "300",
                            env={"LOGCAST_HISTORY": "150", "LOGCAST_QUEUE": "250", "LOGCAST_ALLOW_ORIGIN": "https://a.example, https://b.example"}))
    assert got["history"] == 300, "a flag beats the environment and the file"
    assert got["queue"] == 250, "the environment beats the file"
    assert got["listen"] == "127.0.0.1:9", "the file beats the default"
    assert got["allow-origin"] == ["https://a.example", "https://b.example"]
    assert got["max-subscribers"] == 1024, "unset keys keep their defaults"


@pytest.mark.parametrize("text, words", [
    ("histroy: 5\n", ["config.yaml:1", "unknown setting 'histroy'", "did you mean 'history'"]),
    ("file: /tmp/x.log\n\nhistory: lots\n", ["config.yaml:3", "history must be a whole number (got 'lots')"]),
    ("file: /tmp/x.log\nhistory: 0\n", ["config.yaml:2: history must be at least 1 (got 0)"]),
    ("file: /tmp/x.log\nslow-consumer: maybe\n", ["config.yaml:2: slow-consumer 'maybe' is not a policy", "catch-up, drop or disconnect"]),
    ("file: /tmp/x.log\nlisten: nowhere\n", ["config.yaml:2: listen 'nowhere' is not HOST:PORT"]),
    ("file: /tmp/x.log\njournal: perhaps\n", ["config.yaml:2: journal must be true or false"]),
    ("file: /tmp/x.log\nlisten: [a, b]\n", ["config.yaml:2: listen must be a single value"]),
    ("file:\n  - name=\n", ["config.yaml:1: file", "has no path"]),
    ("- just\n- a list\n", ["config.yaml:1", "must be a mapping"]),
    ("file: [unclosed\n", ["config.yaml", "not valid YAML", "line 2"]),
    ("file: /tmp/x.log\nping-interval: fast\n", ["config.yaml:2: ping-interval must be a number"]),
    ("file: /tmp/x.log\ntoken-file: /nonexistent/tokens\n", ["config.yaml:2: token-file", "does not exist"]),
])
def test_bad_configs_fail_with_file_line_and_key(tmp_path, text, words):
    config = tmp_path / "config.yaml"
    config.write_text(text)
    for args in (["--check-config"], []):
        result = subprocess.run([str(BINARY), "serve", "--config", str(config), "--listen", "127.0.0.1:0", *args] if "listen" not in text else
                                [str(BINARY), "serve", "--config", str(config), *args],
                                capture_output=True, text=True, timeout=DEADLINE)
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        for word in words:
            assert word in result.stderr, (word, result.stderr)


def test_missing_config_file_and_bad_environment_values(tmp_path):
    result = check("--config", str(tmp_path / "absent.yaml"))
    assert result.returncode == 2 and "--config" in result.stderr and "does not exist" in result.stderr
    result = check("--demo", env={"LOGCAST_HISTORY": "many"})
    assert result.returncode == 2 and "LOGCAST_HISTORY must be a whole number (got 'many')" in result.stderr
    result = check("--demo", env={"LOGCAST_MAX_SUBSCRIBERS": "0"})
    assert result.returncode == 2 and "LOGCAST_MAX_SUBSCRIBERS must be at least 1" in result.stderr


def test_server_runs_from_a_config_file(files):
    config = files / "config.yaml"
    config.write_text(f"file:\n  - app={files}/a.log\ninitial-lines: 0\nhost-name: from-config\n")
    server = Server(["--config", str(config)], cwd=files).start()
    try:
        s = Stream(server.ws_url + "?backlog=0")
        hello = s.next()
        assert hello["host"] == "from-config" and hello["sources"] == ["app"]
        append(files / "a.log", "configured line\n")
        assert s.lines(1)[0]["msg"] == "configured line"
        s.close()
    finally:
        server.stop()


# --- SIGHUP ---------------------------------------------------------------

def test_sighup_keeps_subscribers_and_reloads_the_token_file(files):
    tokens = files / "tokens"
    server = Server(["--file", f"a={files}/a.log", "--initial-lines", "0", "--token-file", str(tokens)], cwd=files).start()
    try:
        s = Stream(server.ws_url + "?backlog=0", additional_headers={"Authorization": "Bearer config-token-1"})
        assert s.next()["type"] == "hello"
        append(files / "a.log", "before reload\n")
        assert s.lines(1)[0]["msg"] == "before reload"
        tokens.write_text("# rotated\nconfig-token-2\n")
        server.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: any("token file reloaded" in line for line in server.stderr_lines), message="the reload")
        assert server.get("/api/v1/sources", {"Authorization": "Bearer config-token-2"})[0] == 200
        assert server.get("/api/v1/sources", {"Authorization": "Bearer config-token-1"})[0] == 401
        # The subscriber that connected with the revoked token is closed (4401);
        # one with the new token is served.
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                s.next()
        assert closed.value.rcvd.code == 4401
        s = Stream(server.ws_url + "?backlog=0", additional_headers={"Authorization": "Bearer config-token-2"})
        assert s.next()["type"] == "hello"
        append(files / "a.log", "after reload\n")
        assert s.lines(1)[0]["msg"] == "after reload"
        # A bad token file on reload keeps the tokens in force.
        tokens.write_text("# empty now\n")
        server.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: any("previous tokens stay in force" in line for line in server.stderr_lines), message="the refused reload")
        assert server.get("/api/v1/sources", {"Authorization": "Bearer config-token-2"})[0] == 200
        assert server.proc.poll() is None
        s.close()
    finally:
        server.stop()


def test_sighup_reopens_the_journal_without_losing_or_repeating_entries(files):
    journal_dir = files / "journal"
    writer = JournalWriter(journal_dir)
    try:
        server = Server(["--journal-directory", str(journal_dir), "--file", f"a={files}/a.log", "--initial-lines", "0"], cwd=files).start()
        try:
            s = Stream(server.ws_url + "?backlog=0")
            assert s.next()["type"] == "hello"
            writer.write(*({"MESSAGE": f"j {i}", "PRIORITY": 6} for i in range(20)))
            assert [line["msg"] for line in s.lines(20)] == [f"j {i}" for i in range(20)]
            server.proc.send_signal(signal.SIGHUP)
            event = s.next_of("source")
            assert event["event"] == "reopened" and event["source"] == "journal"
            writer.write(*({"MESSAGE": f"j {i}", "PRIORITY": 6} for i in range(20, 40)))
            append(files / "a.log", "file line\n")
            got = s.lines(21)
            assert [line["msg"] for line in got if line["source"] == "journal"] == [f"j {i}" for i in range(20, 40)]
            assert [line["msg"] for line in got if line["source"] == "a"] == ["file line"]
            s.close()
        finally:
            server.stop()
    finally:
        writer.close()


def test_a_flag_turns_off_a_switch_the_file_turns_on(files):
    config = files / "config.yaml"
    config.write_text(f"file: {files}/a.log\ndemo: yes\njournal: yes\n")
    got = settings_of(check("--config", str(config), "--no-demo", "--no-journal"))
    assert got["demo"] is False and got["journal"] is False
    assert settings_of(check("--config", str(config), "--no-journal"))["demo"] is True


def test_help_lists_every_setting_check_config_prints(files):
    help_text = subprocess.run([str(BINARY), "serve", "--help"], capture_output=True, text=True, timeout=DEADLINE)
    assert help_text.returncode == 0, help_text.stderr
    keys = settings_of(check("--file", f"{files}/a.log"))
    for key in keys:
        assert f"  --{key}" in help_text.stdout, key
    # --key=value is the same as --key value, for every kind of setting.
    assert settings_of(check(f"--file={files}/a.log", "--history=77", "--ping-interval=2.5", "--journal=false")) == {
        **keys, "history": 77, "ping-interval": 2.5}
