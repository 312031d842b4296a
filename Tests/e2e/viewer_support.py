"""Support for the browser viewer tests: a headless Chromium, a cuttable TCP
proxy and a paced log writer.

Chromium and chromedriver come from Debian (`chromium`, `chromium-driver`),
selenium from PyPI. A missing browser is a test failure, not a skip: CI
installs it, and a viewer nobody tested in a browser is not tested.
"""
import os
import shutil
import socket
import threading
import time
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

CHROMIUM = os.environ.get("LOGCAST_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("LOGCAST_CHROMEDRIVER", "/usr/bin/chromedriver")


def make_driver(width=1280, height=800):
    """A headless Chromium that keeps its console log and exposes gc()."""
    for path in (CHROMIUM, CHROMEDRIVER):
        if not (Path(path).exists() or shutil.which(path)):
            raise AssertionError(
                f"{path} is missing: install Debian's browser with "
                "`apt-get install -y chromium chromium-driver`"
            )
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-extensions",
        "--no-first-run",
        f"--window-size={width},{height}",
        "--js-flags=--expose-gc",
        "--enable-precise-memory-info",
        "--lang=en-US",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # Service with an explicit path: selenium must not try to download a driver.
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_script_timeout(30)
    driver.set_page_load_timeout(60)
    return driver


def severe_console_entries(driver, allow=()):
    """Console entries at SEVERE level, minus those containing an allowed fragment."""
    return [
        entry for entry in driver.get_log("browser")
        if entry["level"] == "SEVERE" and not any(fragment in entry["message"] for fragment in allow)
    ]


class Proxy:
    """A TCP proxy between the browser and the server that can cut every
    connection at once (the network dropping, without the server restarting)."""

    def __init__(self, upstream_port):
        self.upstream_port = upstream_port
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self.lock = threading.Lock()
        self.pairs = []
        self.accepted = 0
        self.closed = False
        # While set, new connections are dropped at once (see test_tail.py).
        self.held = False

    def start(self):
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def _accept(self):
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.held:
                client.close()  # the network is down: refuse new connections too
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            except OSError:
                client.close()
                continue
            with self.lock:
                self.pairs.append((client, upstream))
                self.accepted += 1
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client), daemon=True).start()

    @staticmethod
    def _pump(source, sink):
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                sink.sendall(data)
        except OSError:
            pass
        for sock in (source, sink):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut(self):
        """Drops every open connection (both directions), as a network failure would."""
        with self.lock:
            pairs, self.pairs = self.pairs, []
        for pair in pairs:
            for sock in pair:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                sock.close()
        return len(pairs)

    def close(self):
        self.closed = True
        self.cut()
        self.listener.close()


class PacedWriter(threading.Thread):
    """Appends `count` lines made by `make_line(i)` (i from 1) to `path` at
    about `rate` lines per second, in small chunks, like a busy program.

    The pacing wait is a rate limiter for the writer, not a wait for a result:
    tests wait for results by polling conditions.
    """

    def __init__(self, path, count, rate, make_line, chunk=None):
        super().__init__(daemon=True)
        self.path = path
        self.count = count
        self.rate = rate
        self.make_line = make_line
        self.chunk = chunk or max(1, rate // 100)
        self.written = 0
        self.stop_event = threading.Event()
        self.error = None

    def run(self):
        try:
            start = time.monotonic()
            with open(self.path, "ab", buffering=0) as handle:
                while self.written < self.count and not self.stop_event.is_set():
                    due = min(self.count, int((time.monotonic() - start) * self.rate) + self.chunk)
                    if due > self.written:
                        lines = "".join(self.make_line(i) + "\n" for i in range(self.written + 1, due + 1))
                        handle.write(lines.encode())
                        self.written = due
                    else:
                        self.stop_event.wait(self.chunk / self.rate / 2)
        except Exception as error:  # surfaced by the test through .error
            self.error = error

    def stop(self):
        self.stop_event.set()
        self.join(timeout=30)
