"""Bad start-up configuration: exit code 2 and a message naming what is wrong and what would be right."""
import glob
import os
import subprocess

import pytest

from conftest import BINARY


def run(*args, cwd):
    return subprocess.run([str(BINARY), "serve", *args], cwd=cwd, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(
    "args, words",
    [
        (["--file", "a=/tmp/x.log", "--file", "a=/tmp/y.log"], ["two sources are named 'a'", "/tmp/x.log", "/tmp/y.log", "NAME=PATH"]),
        (["--file", "/tmp/x.log", "--listen", "localhost"], ["--listen 'localhost'", "HOST:PORT"]),
        (["--file", "/tmp/x.log", "--listen", "127.0.0.1:99999"], ["--listen '127.0.0.1:99999'"]),
        (["--file", "/tmp/x.log", "--slow-consumer", "panic"], ["--slow-consumer 'panic'", "catch-up, drop or disconnect"]),
        (["--file", "/tmp/x.log", "--history", "0"], ["--history must be at least 1"]),
        (["--file", "/tmp/x.log", "--ping-interval", "0"], ["--ping-interval"]),
        (["--file", "/tmp/x.log", "--file-poll-interval", "0.05"], ["--file-poll-interval must be between 0.1 and 3600 seconds (got 0.05)"]),
        (["--file", "/tmp/*/x.log"], ["wildcards are supported in the file name only"]),
        (["--file", "bad name=/tmp/x.log"], ["source name 'bad name'"]),
        (["--file", "/tmp/x.log", "--log-level", "loud"], ["--log-level 'loud'"]),
        (["--file", "/tmp/x.log", "--web-root", "/nonexistent"], ["--web-root /nonexistent has no index.html"]),
    ],
)
def test_bad_flags_exit_2_with_a_precise_message(tmp_path, args, words):
    result = run(*args, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    for word in words:
        assert word in result.stderr


@pytest.mark.skipif(
    any(os.access(p, os.R_OK) for p in ("/var/log/syslog", "/var/log/messages",
                                        *glob.glob("/run/log/journal/*/system*.journal"),
                                        *glob.glob("/var/log/journal/*/system*.journal"))),
    reason="this machine has a default log (syslog or a readable system journal) to follow",
)
def test_nothing_to_follow_exits_2(tmp_path):
    result = run(cwd=tmp_path)
    assert result.returncode == 2
    assert "nothing to follow" in result.stderr and "--file" in result.stderr
