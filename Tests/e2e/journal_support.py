"""A real journal to follow: systemd-journal-remote appending entries in the
journal export format to a journal file, and journalctl reading it back."""
import json
import os
import struct
import subprocess
import time
import uuid
from pathlib import Path

JOURNAL_REMOTE = next(
    (p for p in ("/lib/systemd/systemd-journal-remote", "/usr/lib/systemd/systemd-journal-remote") if os.path.exists(p)),
    "/lib/systemd/systemd-journal-remote",
)
BOOT_ID = uuid.uuid4().hex
THIS_BOOT_ID = Path("/proc/sys/kernel/random/boot_id").read_text().strip().replace("-", "")


def export_entry(fields):
    """One entry in the journal export format; values with a newline or
    non-text bytes use the binary (length-prefixed) form."""
    out = b""
    for key, value in fields.items():
        if isinstance(value, int):
            value = str(value)
        if isinstance(value, str):
            value = value.encode()
        if b"\n" in value or any(b < 0x20 or b >= 0x80 for b in value):
            out += key.encode() + b"\n" + struct.pack("<Q", len(value)) + value + b"\n"
        else:
            out += key.encode() + b"=" + value + b"\n"
    return out + b"\n"


class JournalWriter:
    """Appends entries to DIR/NAME.journal for as long as it runs."""

    _monotonic = 1_000_000

    def __init__(self, directory, name="test"):
        self.path = Path(directory) / f"{name}.journal"
        self.stderr_path = Path(directory).parent / f"{Path(directory).name}-{name}-remote.log"
        self.proc = subprocess.Popen(
            [JOURNAL_REMOTE, "-o", str(self.path), "-"],
            stdin=subprocess.PIPE,
            stderr=open(self.stderr_path, "wb"),
        )
        self.realtime = int(time.time() * 1_000_000)

    def write(self, *entries):
        """Writes entries (dicts of fields); fills in timestamps and boot id.
        Returns the realtime stamps used."""
        stamps = []
        data = b""
        for fields in entries:
            JournalWriter._monotonic += 1000
            self.realtime += 1000
            full = {
                "__REALTIME_TIMESTAMP": self.realtime,
                "__MONOTONIC_TIMESTAMP": JournalWriter._monotonic,
                "_BOOT_ID": BOOT_ID,
                "_HOSTNAME": "web1",
            }
            full.update(fields)
            stamps.append(int(full["__REALTIME_TIMESTAMP"]))
            data += export_entry(full)
        self.proc.stdin.write(data)
        self.proc.stdin.flush()
        return stamps

    def close(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.wait(timeout=30)


def journalctl(directory, *args):
    """Entries as journalctl prints them with -o json."""
    result = subprocess.run(
        ["journalctl", "--directory", str(directory), "-o", "json", "--no-pager", *args],
        capture_output=True, check=False,
    )
    assert result.returncode in (0, 1), result.stderr.decode()
    return [json.loads(line) for line in result.stdout.decode().splitlines() if line.strip()]


def message_text(entry):
    """MESSAGE as text: journalctl prints binary values as a list of bytes."""
    value = entry.get("MESSAGE", "")
    if isinstance(value, list):
        return bytes(value).decode("utf-8", errors="replace")
    return value


def rfc3339(micros):
    seconds, fraction = divmod(int(micros), 1_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{fraction:06d}Z"
