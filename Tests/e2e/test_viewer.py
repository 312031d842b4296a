"""The browser viewer (web/), in a real headless Chromium against the real server.

Each test starts `logcast serve` following a temporary file, opens the page
and writes lines to the file. Assertions read the page through its documented
test hook `window.logcast` (see web/app.js) and through the DOM itself.
Every wait polls a condition against a deadline.
"""
import base64
import json
import re
import time
from urllib.parse import quote

import pytest
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from conftest import ROOT, append, wait_for
from viewer_support import PacedWriter, Proxy, make_driver, severe_console_entries

WEB_ROOT = ROOT / "web"
SCREENSHOTS = ROOT / "screenshots"

# Console noise that is expected when a test cuts connections on purpose.
CONNECTION_NOISE = ("WebSocket connection to", "net::ERR_")


@pytest.fixture(scope="module")
def browser():
    driver = make_driver()
    yield driver
    driver.quit()


@pytest.fixture
def page(browser):
    """The shared browser, reset after each test (theme emulation, window size, console)."""
    browser.get_log("browser")  # drop what earlier tests left
    yield browser
    browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": []})
    browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    browser.get("about:blank")


def state(driver):
    return driver.execute_script("return window.logcast.state()")


def model_lines(driver):
    return driver.execute_script("return window.logcast.lines()")


def model_messages(driver):
    return [line["msg"] for line in model_lines(driver)]


def dom_messages(driver):
    """The message text of the line rows drawn in the DOM, top to bottom."""
    return driver.execute_script(
        "return [...document.querySelectorAll('#rows .row.line .c-msg')].map(e => e.textContent)"
    )


def open_viewer(driver, serve, tmp_path, query="", files=("app",), extra=(), live=True):
    """Starts a server following fresh files and opens the viewer; returns (server, {name: path})."""
    paths = {}
    args = ["--web-root", str(WEB_ROOT), "--initial-lines", "0", *extra]
    for name in files:
        path = tmp_path / f"{name}.log"
        path.touch()
        paths[name] = path
        args += ["--file", f"{name}={path}"]
    server = serve(*args)
    driver.get(f"http://127.0.0.1:{server.port}/{query}")
    wait_for(lambda: driver.execute_script("return !!window.logcast"), message="the viewer to start")
    if live:
        wait_for(lambda: state(driver)["status"] == "live", message="the viewer to connect")
    return server, paths


def assert_clean_console(driver, allow=()):
    entries = severe_console_entries(driver, allow)
    assert entries == [], f"console errors: {entries}"
    assert state(driver)["cspViolations"] == []


def assert_chrome_matches_rows(driver, all_fit=False):
    """What the page says about the list agrees with the rows it shows, right now
    (no waiting: the count and the empty state are painted with the rows).

    With rows on screen the empty-state text is hidden and the footer count is
    the number of lines in the model; with `all_fit`, every line of the model is
    drawn in the visible part of the list.
    """
    info = driver.execute_script("""
        const view = document.getElementById('viewport').getBoundingClientRect();
        const visible = [...document.querySelectorAll('#rows .row')].filter(r => {
            const box = r.getBoundingClientRect();
            return box.height > 0 && box.bottom > view.top && box.top < view.bottom;
        });
        const empty = document.getElementById('empty');
        return {
            rows: visible.length,
            lineRows: visible.filter(r => r.classList.contains('line')).length,
            emptyShown: empty.checkVisibility(),
            emptyText: empty.textContent,
            count: document.getElementById('count').textContent,
            lines: window.logcast.lines().length,
        };
    """)
    assert info["rows"] > 0, info
    assert not info["emptyShown"], f"the empty state shows over {info['rows']} rows: {info}"
    lines = info["lines"]
    assert info["count"] == f"{lines:,} line{'' if lines == 1 else 's'}", info
    if all_fit:
        assert info["lineRows"] == lines, info


def rgb(css_colour):
    match = re.match(r"rgba?\((\d+), (\d+), (\d+)", css_colour)
    assert match, css_colour
    return tuple(int(v) for v in match.groups())


# The longest a script may wait for a busy page before it counts as frozen
# (the flood test's bound).
RESPONSIVE = 3.0


def wait_while_responsive(condition, message):
    """wait_for(condition), timing every poll; returns the slowest.

    Each poll is a script run in the page, which waits while the page's
    thread is busy: a page that froze shows as a slow poll.
    """
    latencies = []

    def timed():
        started = time.monotonic()
        try:
            return condition()
        finally:
            latencies.append(time.monotonic() - started)

    wait_for(timed, message=message)
    return max(latencies)


def run_modules(driver, modules, body, *args):
    """Imports the viewer's `modules` (paths under web/) into the open page and
    runs `body`, a JavaScript function body that sees their namespaces as
    `m[0]`, `m[1]`, … and the extra arguments as `args`; returns its result."""
    script = (
        "const done = arguments[arguments.length - 1];\n"
        "const args = [...arguments].slice(0, -1);\n"
        f"Promise.all({json.dumps(['/' + path for path in modules])}.map((path) => import(path)))\n"
        "  .then((m) => done({ok: (() => {\n" + body + "\n})()}))\n"
        "  .catch((error) => done({error: String((error && error.stack) || error)}));"
    )
    result = driver.execute_async_script(script, *args)
    assert "error" not in result, result["error"]
    return result["ok"]


# ---- 1 -------------------------------------------------------------------

def test_lines_appear_as_they_are_written(page, serve, tmp_path):
    server, files = open_viewer(page, serve, tmp_path)
    log = files["app"]
    for i in range(1, 6):
        append(log, f"INFO request {i} served\n")
        wait_for(lambda: dom_messages(page)[-1:] == [f"INFO request {i} served"], message=f"line {i} on screen")
    append(log, "ERROR upstream timeout\n")
    wait_for(lambda: dom_messages(page)[-1:] == ["ERROR upstream timeout"], message="the error line")

    assert model_messages(page) == [f"INFO request {i} served" for i in range(1, 6)] + ["ERROR upstream timeout"]
    last = page.find_elements(By.CSS_SELECTOR, "#rows .row.line")[-1]
    assert last.find_element(By.CSS_SELECTOR, ".c-src").text == "app"
    assert last.find_element(By.CSS_SELECTOR, ".c-lvl").text == "ERROR"
    assert "lvl-err" in last.get_attribute("class")
    assert re.fullmatch(r"\d\d:\d\d:\d\d\.\d\d\d", last.find_element(By.CSS_SELECTOR, ".c-time").text)
    assert state(page)["connections"] == 1
    assert page.find_element(By.ID, "status").get_attribute("data-state") == "live"
    # Under the page's CSP (meta tag) nothing was blocked, and nothing 404'd (favicon included).
    assert_clean_console(page)
    # ... and the policy is really in force: an inline style attribute is refused.
    page.execute_script("document.body.setAttribute('style', 'color: red')")
    wait_for(lambda: any("style-src" in v for v in state(page)["cspViolations"]), message="a CSP violation report")


# ---- 2 -------------------------------------------------------------------

def test_filter_typed_in_the_page_narrows_the_stream_without_reconnecting(page, serve, tmp_path):
    server, files = open_viewer(page, serve, tmp_path, query="?backlog=100")
    log = files["app"]
    append(log, "alpha 1\nbeta 1\nalpha 2\nbeta 2\n")
    wait_for(lambda: len(model_lines(page)) == 4, message="the first four lines")
    page.execute_script("window.sameDocument = true")

    page.find_element(By.TAG_NAME, "body").send_keys("/")  # the shortcut focuses the text filter
    field = page.find_element(By.ID, "f-grep")
    assert page.switch_to.active_element == field
    field.send_keys("beta")
    # The subscribe reply replaces the view with the backlog under the new filter.
    wait_for(lambda: model_messages(page) == ["beta 1", "beta 2"], message="only beta lines")
    assert "grep=beta" in page.current_url
    assert "backlog=100" in page.current_url

    append(log, "alpha 3\nbeta 3\n")
    wait_for(lambda: dom_messages(page)[-1:] == ["beta 3"], message="a new beta line")
    assert model_messages(page) == ["beta 1", "beta 2", "beta 3"]
    # Matches of the filter are highlighted.
    marks = page.execute_script(
        "return [...document.querySelectorAll('#rows .row.line .c-msg mark')].map(m => m.textContent)")
    assert marks == ["beta"] * 3

    # A regex the server refuses: its error is shown next to the filter; the old filter stays.
    regex = page.find_element(By.ID, "f-regex")
    regex.send_keys("beta(", Keys.ENTER)
    error = page.find_element(By.ID, "filter-error")
    wait_for(lambda: error.is_displayed() and "regex" in error.text, message="the server's regex error")
    assert regex.get_attribute("aria-invalid") == "true"
    append(log, "alpha 4\nbeta 4\n")
    wait_for(lambda: dom_messages(page)[-1:] == ["beta 4"], message="the old filter still applied")
    assert "alpha 4" not in model_messages(page)

    # Fixing it clears the error.
    regex.send_keys(Keys.BACKSPACE, Keys.ENTER)
    wait_for(lambda: not error.is_displayed(), message="the error to go away")

    # One connection all along, and the page was never reloaded.
    assert state(page)["connections"] == 1
    assert page.execute_script("return window.sameDocument") is True


def test_url_filter_opens_the_view_with_that_filter(page, serve, tmp_path):
    server, files = open_viewer(page, serve, tmp_path, query="?source=app&grep=timeout&backlog=500",
                                files=("app", "web"))
    append(files["web"], "web timeout\n")
    append(files["app"], "app ok\napp timeout\n")
    wait_for(lambda: model_messages(page) == ["app timeout"], message="only app timeouts")
    assert page.find_element(By.ID, "f-grep").get_attribute("value") == "timeout"
    assert page.find_element(By.ID, "source-summary").text == "app"
    assert state(page)["filter"] == {"source": ["app"], "grep": ["timeout"]}


def test_bad_filter_in_the_url_shows_the_server_error_until_fixed(page, serve, tmp_path):
    server, files = open_viewer(page, serve, tmp_path, query="?regex=time(out", live=False)
    error = page.find_element(By.ID, "filter-error")
    wait_for(lambda: error.is_displayed() and "regex" in error.text, message="the server's regex error")
    assert state(page)["status"] == "stopped"
    assert page.find_element(By.ID, "f-regex").get_attribute("aria-invalid") == "true"

    regex = page.find_element(By.ID, "f-regex")
    regex.clear()
    regex.send_keys("time\\(out", Keys.ENTER)
    wait_for(lambda: state(page)["status"] == "live", message="connected with the fixed filter")
    wait_for(lambda: not error.is_displayed(), message="the error to go away")
    append(files["app"], "no match\nwaiting time(out) reached\n")
    wait_for(lambda: model_messages(page) == ["waiting time(out) reached"], message="the matching line")
    assert "regex=time%5C%28out" in page.current_url


# Patterns a backtracking engine (JavaScript's RegExp has no match limit) can
# take for ever on; the old guard in front of RegExp let all but (?:a+)+ through.
CATASTROPHIC = ["((a+))+$", "(a|aa)+$", "(?:a+)+", "((a)+)+"]


def marks_by_row(driver):
    """The highlighted texts of each line row drawn, top to bottom."""
    return driver.execute_script(
        "return [...document.querySelectorAll('#rows .row.line .c-msg')]"
        ".map(m => [...m.querySelectorAll('mark')].map(k => k.textContent))")


def test_catastrophic_regex_highlights_leave_the_page_responsive(page, serve, tmp_path):
    server, files = open_viewer(page, serve, tmp_path)
    # Forty a's not followed by the end of the line: 2^40 ways to fail for a
    # backtracking engine. They are on screen when each pattern is typed (the
    # rows are redrawn with the new highlight before the server's reply).
    bait = [f"{'a' * 40}!{i}" for i in range(3)]
    keys = ["key=aaaa", "b aa"]
    lines = bait + keys
    append(files["app"], "".join(line + "\n" for line in lines))
    wait_for(lambda: model_messages(page) == lines, message="every line")
    regex = page.find_element(By.ID, "f-regex")
    note = page.find_element(By.ID, "highlight-note")

    for pattern in CATASTROPHIC:
        anchored = pattern.endswith("$")
        shown = keys if anchored else lines
        marks = ([] if anchored else [["a" * 40]] * 3) + [["aaaa"], ["aa"]]
        regex.send_keys(pattern, Keys.ENTER)
        slowest = wait_while_responsive(
            lambda: model_messages(page) == shown and marks_by_row(page) == marks,
            message=f"the lines matching {pattern} with their matches highlighted")
        assert slowest < RESPONSIVE, f"the page stopped answering for {slowest:.1f}s with {pattern}"
        # The pattern is highlighted, not refused: nothing to tell the user.
        assert not note.is_displayed() and state(page)["highlightNote"] is None

        regex.clear()
        regex.send_keys(Keys.ENTER)
        wait_for(lambda: model_messages(page) == lines and marks_by_row(page) == [[]] * 5,
                 message="every line again, nothing highlighted")

    # A pattern the viewer cannot highlight in bounded time: the server still
    # filters with it, and the page says why nothing is highlighted.
    regex.send_keys("(a)\\1", Keys.ENTER)
    slowest = wait_while_responsive(
        lambda: note.is_displayed() and state(page)["filter"].get("regex") == "(a)\\1",
        message="the note about the regex")
    assert slowest < RESPONSIVE
    assert "not highlighted" in note.text and "back-references" in note.text
    assert state(page)["highlightNote"] == note.text
    wait_for(lambda: model_messages(page) == lines, message="the lines with a doubled a")
    assert marks_by_row(page) == [[]] * 5
    regex.clear()
    regex.send_keys(Keys.ENTER)
    wait_for(lambda: not note.is_displayed(), message="the note to go away")
    assert_clean_console(page)


HIGHLIGHT_CASES = [
    # (regex, grep terms, text, expected ranges or None)
    ("((a+))+$", [], "a" * 40 + "!", None),
    ("((a+))+$", [], "key=aaaa", [[4, 8]]),
    ("(a|aa)+$", [], "a" * 40 + "!", None),
    ("(a|aa)+$", [], "b aa", [[2, 4]]),
    ("(?:a+)+", [], "b" + "a" * 40 + "!", [[1, 41]]),
    ("((a)+)+", [], "xaaay", [[1, 4]]),
    ("(?:a+)+b", [], "ab" + "a" * 5000, [[0, 2]]),
    (".*.*.*x", [], "a" * 20000, None),  # no nested quantifier, and cubic for RegExp
    ("a*a*a*a*a*x", [], "a" * 3000, None),
    ("timeout|refused", [], "connect refused after timeout", [[8, 15], [22, 29]]),
    ("error", [], "ERROR Error error", [[0, 5], [6, 11], [12, 17]]),  # smart-case
    ("Error", [], "ERROR Error error", [[6, 11]]),
    ("(?i)ERROR", [], "error", [[0, 5]]),
    (r"\bid=\d+", [], "pid=1 id=42", [[6, 11]]),
    (r"^\S+ (\d{3})\b", [], "GET 404 /x", [[0, 7]]),
    (r"(?P<code>5\d\d)|[[:upper:]]{3,}", [], "WARN 503 ok", [[0, 4], [5, 8]]),
    ("a.c", ["a.c"], "abc a.c", [[0, 3], [4, 7]]),
    ("", ["a.c", "(x+)+y"], "abc a.c (x+)+y", [[4, 7], [8, 14]]),  # text terms are literal
]

UNHIGHLIGHTABLE = [
    ("(a)\\1", "back-references"),
    ("(?<=a)b", "lookaround"),
    ("a++b", "possessive quantifiers"),
    ("(?>a+)b", "atomic groups"),
    ("(?:a{100}){100}", "a pattern this large"),
]


def test_highlighter_output_in_the_browser(page, serve, tmp_path):
    """filter.js's highlighter, run directly: what it marks, and what it refuses."""
    open_viewer(page, serve, tmp_path)
    got = run_modules(page, ["js/filter.js"], """
        const [filter] = m;
        const marks = args[0].map(([regex, grep, text]) => {
          const highlight = filter.makeHighlighter({...filter.emptyFilter(), regex, grep});
          return highlight ? highlight(text) : "no highlighter";
        });
        const notes = args[1].map(([regex]) => [
          filter.makeHighlighter({...filter.emptyFilter(), regex}),
          filter.highlightNote({...filter.emptyFilter(), regex}),
        ]);
        return {marks, notes};
    """, [list(case[:3]) for case in HIGHLIGHT_CASES], [list(case) for case in UNHIGHLIGHTABLE])
    for (regex, grep, text, expected), ranges in zip(HIGHLIGHT_CASES, got["marks"]):
        assert ranges == expected, (regex, grep, text[:40])
    for (regex, reason), (highlighter, note) in zip(UNHIGHLIGHTABLE, got["notes"]):
        assert highlighter is None, regex
        assert note and "not highlighted" in note and reason in note, (regex, note)


# ---- 3 -------------------------------------------------------------------

def test_reconnect_after_a_dropped_connection_has_no_duplicates_and_no_holes(page, serve, tmp_path):
    log = tmp_path / "app.log"
    log.touch()
    server = serve("--web-root", str(WEB_ROOT), "--initial-lines", "0", "--file", f"app={log}")
    proxy = Proxy(server.port).start()
    try:
        # A small backlog: a reconnect that did not resume would visibly lose lines.
        page.get(f"http://127.0.0.1:{proxy.port}/?backlog=20")
        wait_for(lambda: page.execute_script("return window.logcast && window.logcast.state().status === 'live'"),
                 message="the viewer to connect through the proxy")
        total = 600
        writer = PacedWriter(log, total, rate=150, make_line=lambda i: f"line {i:05d}")
        writer.start()
        for cut_at, connections in ((100, 2), (300, 3)):
            wait_for(lambda: len(model_lines(page)) >= cut_at, message=f"{cut_at} lines before the cut")
            assert proxy.cut() >= 1
            wait_for(lambda: state(page)["connections"] >= connections and state(page)["status"] == "live",
                     message="the viewer to reconnect by itself")
        writer.join(timeout=60)
        assert writer.error is None
        wait_for(lambda: len(model_lines(page)) >= total, message="every line after the reconnects")

        lines = model_lines(page)
        assert [line["msg"] for line in lines] == [f"line {i:05d}" for i in range(1, total + 1)]
        assert [line["seq"] for line in lines] == list(range(1, total + 1))
        final = state(page)
        assert final["duplicates"] == 0, "the resume asked for lines it already had"
        assert final["connections"] >= 3
        assert all(entry["kind"] == "line" for entry in page.execute_script("return window.logcast.entries()"))
        wait_for(lambda: dom_messages(page)[-1:] == [f"line {total:05d}"], message="the last line drawn")
    finally:
        proxy.close()
    assert_clean_console(page, allow=CONNECTION_NOISE)


# ---- 4 -------------------------------------------------------------------

XSS = """<img src=x onerror=alert(1)> <script>alert(2)</script> <b onmouseover="alert(3)">&amp; "quoted"</b>"""


def test_markup_in_a_line_renders_as_text_and_runs_nothing(page, serve, tmp_path):
    # With a grep filter, so the highlighting path (which splits the text) is exercised too.
    server, files = open_viewer(page, serve, tmp_path, query="?grep=img")
    append(files["app"], XSS + "\n")
    wait_for(lambda: dom_messages(page) == [XSS], message="the line shown literally")
    row = page.find_element(By.CSS_SELECTOR, "#rows .row.line")
    assert row.find_elements(By.CSS_SELECTOR, "img, script, b") == []
    assert [m.text for m in row.find_elements(By.CSS_SELECTOR, "mark")] == ["img"]
    row.click()  # the details panel renders the message too
    wait_for(lambda: page.find_element(By.ID, "details-msg").text == XSS, message="the details panel")
    assert page.find_elements(By.CSS_SELECTOR, "#details img, #details script, #details b") == []
    try:
        alert = page.switch_to.alert
        text = alert.text
        alert.dismiss()
        pytest.fail(f"an alert fired: {text}")
    except NoAlertPresentException:
        pass
    assert page.execute_script("return document.querySelectorAll('img').length") == 1  # the logo only
    assert_clean_console(page)


# ---- access token --------------------------------------------------------

TOKEN = "viewer-token-7Qx/3+z="  # '/', '+' and '=' so base64url and URL-quoting differ from it
# Records every WebSocket the page opens (URL and subprotocols), before its own scripts run.
RECORD_WEBSOCKETS = """
window.__sockets = [];
window.WebSocket = new Proxy(window.WebSocket, {
  construct(target, args) {
    window.__sockets.push({url: String(args[0]), protocols: args[1] === undefined ? [] : [].concat(args[1])});
    return Reflect.construct(target, args);
  },
});
"""


def b64url(text):
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def assert_token_not_in_urls(driver, token):
    """No URL the page has been at or fetched carries the token, in any spelling."""
    urls = driver.execute_script("""
        return [location.href,
                ...performance.getEntriesByType('navigation').map(e => e.name),
                ...performance.getEntriesByType('resource').map(e => e.name),
                ...window.__sockets.map(s => s.url)];
    """)
    assert any("/api/v1/sources" in url for url in urls), urls  # the fetches are in the list
    assert any("/ws" in url for url in urls), urls
    for url in urls:
        for spelling in (token, b64url(token), quote(token, safe=""), quote(token)):
            assert spelling not in url, f"the token is in a URL: {url}"


def test_token_is_asked_for_kept_for_the_tab_and_never_put_in_a_url(page, serve, tmp_path):
    tokens = tmp_path / "tokens"
    tokens.write_text(f"# viewer test\n{TOKEN}\n")
    script = page.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": RECORD_WEBSOCKETS})
    try:
        server, files = open_viewer(page, serve, tmp_path, query="?backlog=50",
                                    extra=("--token-file", str(tokens)), live=False)
        log = files["app"]
        dialog = page.find_element(By.ID, "token-dialog")
        field = dialog.find_element(By.NAME, "token")
        reason = dialog.find_element(By.CSS_SELECTOR, ".dialog-reason")

        # The page learned "401 token required" (from /api/v1/sources or the refused upgrade).
        wait_for(lambda: dialog.is_displayed(), message="the token dialog")
        assert dialog.get_attribute("data-reason") == "token required"
        assert "needs an access token" in dialog.text
        assert not reason.is_displayed()
        assert page.switch_to.active_element == field
        assert state(page)["status"] != "live"

        # A wrong token: the server's reason is shown and the page asks again.
        field.send_keys("not-the-token", Keys.ENTER)
        wait_for(lambda: dialog.is_displayed() and reason.is_displayed(), message="the dialog asking again")
        assert dialog.get_attribute("data-reason") == "token not accepted"
        assert "token not accepted" in reason.text
        assert "token file" in reason.text  # the server's hint
        assert field.get_attribute("value") == ""
        assert page.execute_script("return sessionStorage.getItem('logcast.token')") is None, \
            "a refused token is not kept"
        assert state(page)["status"] != "live"

        # The right token: lines stream, the token is kept for the tab.
        field.send_keys(TOKEN)
        dialog.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        wait_for(lambda: state(page)["status"] == "live", message="connected with the token")
        assert not dialog.is_displayed()
        append(log, "first with token\nsecond with token\n")
        wait_for(lambda: model_messages(page) == ["first with token", "second with token"], message="the lines")
        assert page.execute_script("return sessionStorage.getItem('logcast.token')") == TOKEN
        # /api/v1/sources answered too (its state shows in the source picker).
        wait_for(lambda: page.find_elements(By.CSS_SELECTOR, "#source-list .source-state"),
                 message="the source list from /api/v1/sources")
        sockets = page.execute_script("return window.__sockets")
        assert sockets[-1]["protocols"] == ["logcast.v1", "logcast.token." + b64url(TOKEN)]
        assert state(page)["tokenPrompts"] == 2
        assert_token_not_in_urls(page, TOKEN)

        # A reload does not ask again: the tab still has the token.
        page.refresh()
        wait_for(lambda: page.execute_script("return !!window.logcast"), message="the viewer to start again")
        wait_for(lambda: state(page)["status"] == "live", message="connected after the reload")
        append(log, "after reload\n")
        wait_for(lambda: model_messages(page)[-1:] == ["after reload"], message="a line after the reload")
        assert model_messages(page) == ["first with token", "second with token", "after reload"]
        wait_for(lambda: page.find_elements(By.CSS_SELECTOR, "#source-list .source-state"),
                 message="the source list after the reload")
        assert state(page)["tokenPrompts"] == 0
        assert not page.find_element(By.ID, "token-dialog").is_displayed()
        assert_token_not_in_urls(page, TOKEN)

        # The token shows nowhere in the console either; the only errors are the refusals.
        entries = page.get_log("browser")
        assert not [e for e in entries if TOKEN in e["message"] or b64url(TOKEN) in e["message"]]
        severe = [e for e in entries if e["level"] == "SEVERE"
                  and not any(noise in e["message"] for noise in ("status of 401", "WebSocket connection to"))]
        assert severe == [], severe
        assert state(page)["cspViolations"] == []
    finally:
        page.execute_cdp_cmd("Page.removeScriptToEvaluateOnNewDocument", {"identifier": script["identifier"]})
        page.execute_script("sessionStorage.clear()")


# ---- 5 -------------------------------------------------------------------

def test_ansi_colours_render_as_coloured_spans(page, serve, tmp_path):
    server, files = open_viewer(page, serve, tmp_path)
    line = ("\x1b[31mred\x1b[0m plain \x1b[1;38;5;208mbold orange\x1b[0m "
            "\x1b[38;2;10;200;30mtrue green\x1b[0m \x1b]0;window title\x07\x1b[2K\x1b[4;42munder\x1b[24m\x1b[49m end")
    append(files["app"], line + "\n")
    wait_for(lambda: dom_messages(page) == ["red plain bold orange true green under end"],
             message="the line without escape sequences")
    message = page.find_element(By.CSS_SELECTOR, "#rows .row.line .c-msg")
    text = message.text
    assert "\x1b" not in text and "[31m" not in text and "title" not in text

    spans = {span.text: span for span in message.find_elements(By.CSS_SELECTOR, "span")}
    red = spans["red"]
    assert "fg-1" in red.get_attribute("class")
    r, g, b = rgb(red.value_of_css_property("color"))
    assert r > 150 and g < 100 and b < 100, (r, g, b)

    orange = spans["bold orange"]
    assert rgb(orange.value_of_css_property("color")) == (255, 135, 0)  # xterm 208
    assert orange.value_of_css_property("font-weight") == "700"
    assert rgb(spans["true green"].value_of_css_property("color")) == (10, 200, 30)
    under = spans["under"]
    assert "underline" in under.value_of_css_property("text-decoration-line")
    assert "bg-2" in under.get_attribute("class")
    assert "plain" not in spans  # unstyled text is not wrapped
    assert_clean_console(page)


def test_unterminated_escape_sequences_leave_the_page_responsive(page, serve, tmp_path):
    # These used to cost the parser quadratic time: each unterminated OSC
    # searched the rest of the line for its end, 32,000 times over (seconds
    # for every drawing of the row).
    server, files = open_viewer(page, serve, tmp_path)
    osc = "osc " + "\x1b]" * 32_000
    csi = "csi \x1b[" + "1;" * 20_000
    after = "\x1b[31mred after\x1b[0m them"
    append(files["app"], osc + "\n" + csi + "\n" + after + "\n")
    slowest = wait_while_responsive(lambda: dom_messages(page) == ["osc ", "csi ", "red after them"],
                                    message="the three lines drawn")
    assert slowest < RESPONSIVE, f"the page stopped answering for {slowest:.1f}s"
    assert model_messages(page) == [osc, csi, after]  # kept as they came; only the drawing drops escapes

    message = page.find_elements(By.CSS_SELECTOR, "#rows .row.line .c-msg")[-1]
    spans = message.find_elements(By.CSS_SELECTOR, "span")
    assert [span.text for span in spans] == ["red after"]
    assert "fg-1" in spans[0].get_attribute("class")
    r, g, b = rgb(spans[0].value_of_css_property("color"))
    assert r > 150 and g < 100 and b < 100, (r, g, b)

    # The details panel draws the message too.
    page.find_elements(By.CSS_SELECTOR, "#rows .row.line")[0].click()
    slowest = wait_while_responsive(
        lambda: page.execute_script("return document.getElementById('details-msg').textContent") == "osc ",
        message="the details of the OSC line")
    assert slowest < RESPONSIVE
    assert_clean_console(page)


ANSI_CASES = [
    # (input, visible text, runs as [start, end, fg, bold])
    ("\x1b[31mred\x1b[0m plain", "red plain", [[0, 3, 1, False]]),
    ("\x1b[1;38;5;208mX\x1b[22mY", "XY", [[0, 1, 208, True], [1, 2, 208, False]]),
    ("a\x1b]0;title\x07b", "ab", []),
    ("a\x1b]8;;http://x/\x1b\\link\x1b]8;;\x1b\\", "alink", []),
    ("\x1b]" * 32_000, "", []),
    ("osc \x1b]0;title", "osc 0;title", []),  # unterminated: only the introducer goes
    ("\x1b]0;a" * 3, "0;a0;a0;a", []),
    ("\x1bPq" * 1000 + "\x07z", "z", []),  # the first DCS runs to the BEL
    ("csi \x1b[" + "1;" * 20_000, "csi ", []),  # unterminated: what was read goes
    ("a\x1b[12;3\x01b", "a\u2401b", []),  # ended by a control: that control is shown
    ("\x1b[" + "1;" * 40 + "mX", "X", []),  # over MAX_CSI_PARAMS: dropped, not applied
    ("\x1b[1;3;4;9;38;2;255;255;255;48;5;208mX", "X", [[0, 1, [255, 255, 255], True]]),
    ("\x1b[?25lcursor\x1b[2K", "cursor", []),
    ("\x1b(Bx\x1b(\x01y", "x\u2401y", []),
    ("tab\there\x07", "tab\there\u2407", []),
]


def test_ansi_parser_output_in_the_browser(page, serve, tmp_path):
    """ansi.js's parser, run directly on well-formed, unterminated and over-long sequences."""
    open_viewer(page, serve, tmp_path)
    got = run_modules(page, ["js/ansi.js"], """
        const [ansi] = m;
        return args[0].map((input) => {
          const {text, runs} = ansi.parseAnsi(input);
          return [text, runs.map((r) => [r.start, r.end, r.style.fg, r.style.bold])];
        });
    """, [case[0] for case in ANSI_CASES])
    for (source, text, runs), (got_text, got_runs) in zip(ANSI_CASES, got):
        assert (got_text, got_runs) == (text, runs), repr(source[:40])


# ---- 6 -------------------------------------------------------------------

def test_pause_buffers_lines_and_resume_shows_them(page, serve, tmp_path):
    server, files = open_viewer(page, serve, tmp_path)
    log = files["app"]
    append(log, "".join(f"before {i}\n" for i in range(1, 4)))
    wait_for(lambda: dom_messages(page)[-1:] == ["before 3"], message="the first lines")

    page.find_element(By.TAG_NAME, "body").send_keys(" ")  # Space pauses
    wait_for(lambda: state(page)["paused"], message="paused")
    pause = page.find_element(By.ID, "pause")
    assert pause.get_attribute("aria-pressed") == "true"

    append(log, "".join(f"held {i}\n" for i in range(1, 21)))
    wait_for(lambda: state(page)["waiting"] == 20, message="20 lines waiting")
    info = page.find_element(By.ID, "paused-info")
    wait_for(lambda: "20 waiting" in info.text, message="the waiting count shown")
    assert model_messages(page) == ["before 1", "before 2", "before 3"]
    assert not any(text.startswith("held") for text in dom_messages(page))

    pause.click()  # resume
    wait_for(lambda: dom_messages(page)[-1:] == ["held 20"], message="the held lines on screen")
    assert model_messages(page) == [f"before {i}" for i in range(1, 4)] + [f"held {i}" for i in range(1, 21)]
    assert state(page)["waiting"] == 0
    assert not info.is_displayed()


def test_download_saves_the_lines_shown(page, serve, tmp_path):
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    page.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    server, files = open_viewer(page, serve, tmp_path)
    append(files["app"], "INFO first\nERROR \x1b[31msecond\x1b[0m\nthird\n")
    wait_for(lambda: dom_messages(page)[-1:] == ["third"], message="three lines")
    page.find_element(By.ID, "download").click()
    saved = wait_for(lambda: [p for p in downloads.glob("*.log")], message="the downloaded file")
    wait_for(lambda: saved[0].read_text().count("\n") == 3, message="the whole file")
    rows = saved[0].read_text().splitlines()
    assert [row.split(" ", 3)[1:] for row in rows] == [
        ["app", "INFO", "INFO first"], ["app", "ERROR", "ERROR second"], ["app", "-", "third"]]
    assert all(re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z ", row) for row in rows)


# ---- follow mode ---------------------------------------------------------

def first_visible_message(driver):
    """The message of the first line row whose top is inside the scroll area."""
    return driver.execute_script("""
        const top = document.getElementById('viewport').getBoundingClientRect().top;
        const row = [...document.querySelectorAll('#rows .row.line')]
            .find(r => r.getBoundingClientRect().top >= top - 0.5);
        return row ? row.querySelector('.c-msg').textContent : null;
    """)


def selected_row_in_view(driver):
    """The message of the selected row if it lies wholly inside the scroll area, else None."""
    return driver.execute_script("""
        const view = document.getElementById('viewport').getBoundingClientRect();
        const row = document.querySelector('#rows .row.selected');
        if (!row) return null;
        const box = row.getBoundingClientRect();
        return box.top >= view.top - 0.5 && box.bottom <= view.bottom + 0.5
            ? row.querySelector('.c-msg').textContent : null;
    """)


@pytest.mark.parametrize("wrap", [False, True], ids=["nowrap", "wrap"])
def test_scrolling_up_keeps_the_place_while_old_lines_fall_off(page, serve, tmp_path, wrap):
    # max=300: the view keeps 300 lines, so the next ones push the oldest out.
    server, files = open_viewer(page, serve, tmp_path, query="?max=300")
    log = files["app"]
    if wrap:  # rows of different heights: the measured layout
        page.find_element(By.TAG_NAME, "body").send_keys("w")
        wait_for(lambda: state(page)["wrap"], message="wrap on")
    filler = " ".join(f"word{j}" for j in range(90))
    append(log, "".join(f"row {i}{' ' + filler if wrap and i % 4 == 0 else ''}\n" for i in range(1, 301)))
    wait_for(lambda: dom_messages(page)[-1:] and dom_messages(page)[-1].startswith("row 300"),
             message="300 rows, following")

    page.execute_script("const v = document.getElementById('viewport'); v.scrollTop = v.scrollHeight / 2")
    wait_for(lambda: not state(page)["following"], message="following to stop")
    reading = first_visible_message(page)
    append(log, "".join(f"more {i}\n" for i in range(1, 51)))
    wait_for(lambda: state(page)["dropped"] == 50, message="50 old lines to fall off")
    latest = page.find_element(By.ID, "latest")
    wait_for(lambda: latest.is_displayed() and "50 new" in latest.text, message="the jump button with a count")
    assert first_visible_message(page) == reading, "the view moved while the reader was reading"
    assert state(page)["size"] == 300

    # At the top, a marker says what fell off.
    page.execute_script("document.getElementById('viewport').scrollTop = 0")
    wait_for(lambda: "50 older lines dropped" in page.execute_script(
        "return document.querySelector('#rows .row').textContent"), message="the dropped marker")

    page.find_element(By.TAG_NAME, "body").send_keys(Keys.END)
    wait_for(lambda: state(page)["following"] and dom_messages(page)[-1:] == ["more 50"], message="back at the latest")
    wait_for(lambda: not latest.is_displayed(), message="the jump button to hide")


def test_selecting_a_line_keeps_it_in_view_and_offers_a_jump_only_when_lines_are_below(page, serve, tmp_path):
    server, files = open_viewer(page, serve, tmp_path)
    log = files["app"]
    append(log, "".join(f"row {i}\n" for i in range(1, 61)))  # more than fit
    wait_for(lambda: dom_messages(page)[-1:] == ["row 60"], message="60 rows, following")
    latest = page.find_element(By.ID, "latest")
    page.find_elements(By.CSS_SELECTOR, "#rows .row.line")[-1].click()  # "row 60", at the bottom
    wait_for(lambda: state(page)["selectedUid"] is not None, message="the selection")
    # The details panel opened below the list and took room from it; the
    # selected line is still in sight.
    wait_for(lambda: selected_row_in_view(page) == "row 60", message="the selected line in view")
    # Following stops (the line must not move away), but nothing is below: no jump button.
    assert state(page)["following"] is False and state(page)["atBottom"] is True
    assert not latest.is_displayed()

    append(log, "".join(f"next {i}\n" for i in range(1, 6)))
    wait_for(lambda: latest.is_displayed() and "5 new" in latest.text, message="the jump button with a count")
    assert selected_row_in_view(page) == "row 60", "the selected line moved away"
    assert state(page)["atBottom"] is False
    assert_chrome_matches_rows(page)

    latest.click()
    wait_for(lambda: state(page)["following"] and not latest.is_displayed(), message="following again")
    wait_for(lambda: first_visible_message(page) != "row 1" and state(page)["atBottom"], message="at the bottom")
    assert dom_messages(page)[-1:] == ["next 5"]


def test_wrapped_long_lines_are_virtualised_without_overlap(page, serve, tmp_path):
    server, files = open_viewer(page, serve, tmp_path)
    page.find_element(By.TAG_NAME, "body").send_keys("w")
    wait_for(lambda: state(page)["wrap"], message="wrap on")
    words = " ".join(f"word{j}" for j in range(120))
    append(files["app"], "".join(f"long {i} {words if i % 3 == 0 else 'short'}\n" for i in range(1, 401)))
    wait_for(lambda: dom_messages(page)[-1:] and dom_messages(page)[-1].startswith("long 400 "),
             message="the last long line drawn")
    geometry = page.execute_script("""
        const view = document.getElementById('viewport').getBoundingClientRect();
        const rows = [...document.querySelectorAll('#rows .row')].map(r => r.getBoundingClientRect());
        return {view: {top: view.top, bottom: view.bottom}, rows: rows.map(r => ({top: r.top, bottom: r.bottom}))};
    """)
    rows = geometry["rows"]
    assert len(rows) < 100, "only the visible rows are in the DOM"
    assert any(r["bottom"] - r["top"] > 40 for r in rows), "long lines take several rows"
    for upper, lower in zip(rows, rows[1:]):
        assert upper["bottom"] <= lower["top"] + 0.5, "rows overlap"
    assert abs(rows[-1]["bottom"] - geometry["view"]["bottom"]) <= 2, "the last line sits at the bottom"


# ---- 7 -------------------------------------------------------------------

def test_line_bound_holds_and_page_stays_responsive_in_a_flood(page, serve, tmp_path):
    total = 200_000  # 10 s at 20,000 lines/s
    server, files = open_viewer(page, serve, tmp_path, query="?backlog=0")
    assert state(page)["max"] == 10_000
    assert state(page)["timelineShown"], "the timeline is on, as it is by default"
    levels = ("INFO", "WARN", "ERROR", "DEBUG")
    writer = PacedWriter(
        files["app"], total, rate=20_000,
        make_line=lambda i: f"{levels[i % 4]} flood {i} \x1b[3{i % 8}mcoloured\x1b[0m request_id={i * 7919 % 100000:05d} took={i % 997}ms",
    )
    writer.start()
    latencies = []
    samples = []
    heap_mid = None
    while writer.is_alive():
        started = time.monotonic()
        sample = page.execute_script(
            "const s = window.logcast.state(); s.heap = performance.memory.usedJSHeapSize; return s")
        latencies.append(time.monotonic() - started)
        samples.append(sample)
        assert sample["size"] <= sample["max"] == 10_000
        assert sample["highWater"] <= 10_000
        assert sample["domRows"] < 120, "rows are virtualised"
        if heap_mid is None and writer.written > total // 2:
            heap_mid = page.execute_script("window.gc(); return performance.memory.usedJSHeapSize")
    assert writer.error is None

    wait_for(lambda: state(page)["lastSeq"] == total, timeout=60, message="the page to receive the last line")
    final = state(page)
    assert final["size"] == 10_000 and final["highWater"] == 10_000
    # The timeline counts what the page holds: lines dropped from the top left it too.
    def timeline_counts():
        shot = page.execute_script("return window.logcast.timeline()")
        return shot["total"], sum(b["total"] for b in shot["buckets"])
    wait_for(lambda: timeline_counts() == (10_000, 10_000) and final["lineCount"] == 10_000,
             message="the timeline drawn with what the page holds")
    assert final["dropped"] > 0, "the flood went over the bound"
    assert final["domRows"] < 120
    wait_for(lambda: dom_messages(page)[-1:] and dom_messages(page)[-1].startswith(f"INFO flood {total} "),
             message="the newest line drawn")
    heap_end = page.execute_script("window.gc(); return performance.memory.usedJSHeapSize")
    peak_rate = max(sample["rate"] for sample in samples)
    print(f"\nflood: {len(samples)} samples, max execute_script latency {max(latencies):.3f}s, "
          f"peak rate {peak_rate:.0f} lines/s, heap mid {heap_mid and heap_mid / 1e6:.1f} MB, "
          f"end {heap_end / 1e6:.1f} MB, received {final['received']}")
    assert max(latencies) < 3.0, "the page stopped answering during the flood"
    assert len(samples) >= 3
    assert peak_rate > 2_000, "the rate meter shows the flood"
    # Memory stays flat: after twice as many lines the heap is about what it was
    # half-way (keeping all 200,000 lines would take well over 40 MB).
    assert heap_mid is not None
    assert heap_end < heap_mid + 16e6, (heap_mid, heap_end)
    assert heap_end < 40e6, heap_end


# ---- 8 -------------------------------------------------------------------

SAMPLE = [
    ("app", "INFO  server listening on 0.0.0.0:8443 (tls, h2)"),
    ("app", "INFO  GET /api/orders/4411 200 12ms user=ana"),
    ("web", '192.0.2.14 - - "GET /static/app.css HTTP/1.1" 200 5120 "-" "Mozilla/5.0"'),
    ("app", "DEBUG cache hit key=orders:4411 ttl=58s"),
    ("app", "WARN  slow query on orders (812ms): SELECT * FROM orders WHERE customer_id = $1"),
    ("web", '192.0.2.15 - - "POST /api/login HTTP/1.1" 401 87 "-" "curl/8.5.0"'),
    ("app", "ERROR upstream timeout after 30s: payments.internal:443 (attempt 3/3)"),
    ("app", "\x1b[32m✔\x1b[0m migrations up to date \x1b[2m(42 applied)\x1b[0m"),
    ("app", "NOTICE config reloaded from /etc/app/config.toml"),
    ("web", '192.0.2.14 - - "GET /api/orders?page=2 HTTP/1.1" 200 20811 "-" "Mozilla/5.0"'),
    ("app", "INFO  \x1b[1;34mworker\x1b[0m 3 picked job \x1b[33m#88213\x1b[0m (email.send)"),
    ("app", "ERROR job #88213 failed: SMTP 421 4.7.0 try again later"),
    ("app", "INFO  GET /healthz 200 0ms"),
]


def test_screenshots_in_light_and_dark_themes(page, serve, tmp_path):
    SCREENSHOTS.mkdir(exist_ok=True)
    page.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                         {"width": 1280, "height": 720, "deviceScaleFactor": 1, "mobile": False})
    server, files = open_viewer(page, serve, tmp_path, files=("app", "web"))
    for source, text in SAMPLE[:9]:
        append(files[source], text + "\n")
        wait_for(lambda: len(model_lines(page)) and model_lines(page)[-1]["msg"] == text, message=text)
    # A rotation of the web log shows as an inline event.
    files["web"].rename(tmp_path / "web.log.1")
    append(tmp_path / "web.log", SAMPLE[9][1] + "\n")
    wait_for(lambda: any("rotated" in e["text"] for e in page.execute_script("return window.logcast.entries()")),
             message="the rotation event")
    for source, text in SAMPLE[10:]:
        append(files[source], text + "\n")
    wait_for(lambda: dom_messages(page)[-1:] == [SAMPLE[-1][1]], message="the sample log")

    backgrounds = {}
    for theme in ("light", "dark"):
        page.execute_cdp_cmd("Emulation.setEmulatedMedia",
                             {"features": [{"name": "prefers-color-scheme", "value": theme}]})
        wait_for(lambda: page.execute_script(
            f"return matchMedia('(prefers-color-scheme: {theme})').matches"), message=theme)
        backgrounds[theme] = rgb(page.execute_script("return getComputedStyle(document.body).backgroundColor"))
        assert_chrome_matches_rows(page, all_fit=True)
        assert page.find_element(By.ID, "count").text == "13 lines"  # the rotation note is a row, not a line
        path = SCREENSHOTS / f"viewer-{theme}.png"
        assert page.save_screenshot(str(path))
        assert path.stat().st_size > 10_000

    # The same page with a filter highlighted, a selected line and the help overlay, in dark.
    page.get(f"http://127.0.0.1:{server.port}/?grep=order")
    ordered = [text for _, text in SAMPLE if "order" in text]
    wait_for(lambda: dom_messages(page) == ordered, message="the filtered view")
    assert_chrome_matches_rows(page, all_fit=True)
    latest = page.find_element(By.ID, "latest")
    page.find_elements(By.CSS_SELECTOR, "#rows .row.line")[1].click()
    wait_for(lambda: page.find_element(By.ID, "details").is_displayed(), message="the details panel")
    # Selecting stops following (the line stays put as others arrive), but all
    # four lines fit: there is nothing below to jump to, so no jump button.
    assert state(page)["following"] is False and state(page)["atBottom"] is True
    assert not latest.is_displayed()
    assert_chrome_matches_rows(page, all_fit=True)
    assert page.save_screenshot(str(SCREENSHOTS / "viewer-dark-filtered.png"))
    page.find_element(By.TAG_NAME, "body").send_keys("?")
    wait_for(lambda: page.find_element(By.ID, "help").is_displayed(), message="the help overlay")
    assert page.save_screenshot(str(SCREENSHOTS / "viewer-dark-help.png"))
    page.find_element(By.ID, "help-close").click()

    # Closing the selection at the bottom follows again.
    page.find_element(By.ID, "details-close").click()
    wait_for(lambda: state(page)["following"], message="following again")
    assert not latest.is_displayed()

    light, dark = (sum(backgrounds[t]) / 3 for t in ("light", "dark"))
    assert light > 200 and dark < 50, backgrounds
    assert_clean_console(page)


def test_since_and_until_fields_read_a_time_range_and_go_in_the_url(page, serve, tmp_path):
    import datetime

    def utc_now():
        return datetime.datetime.now(datetime.timezone.utc)

    server, files = open_viewer(page, serve, tmp_path)
    append(files["app"], "".join(f"old {i}\n" for i in range(5)))
    wait_for(lambda: server.health()["last_seq"] == 5, message="the old lines")
    boundary = utc_now()
    wait_for(lambda: utc_now() - boundary > datetime.timedelta(milliseconds=2), message="the clock to move past the boundary")
    append(files["app"], "".join(f"new {i}\n" for i in range(3)))
    wait_for(lambda: server.health()["last_seq"] == 8, message="the new lines")
    stamp = boundary.strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    page.get(f"http://127.0.0.1:{server.port}/?since={stamp}")
    wait_for(lambda: state(page)["status"] == "live", message="the viewer to connect")
    wait_for(lambda: model_messages(page) == ["new 0", "new 1", "new 2"], message="only the lines since the boundary")
    assert page.find_element(By.ID, "f-since").get_attribute("value") == stamp
    assert state(page)["filter"] == {"since": stamp}

    until = page.find_element(By.ID, "f-until")
    until.send_keys("soon", Keys.ENTER)
    error = page.find_element(By.ID, "filter-error")
    wait_for(lambda: error.is_displayed() and "until" in error.text, message="the server's error for until")
    assert until.get_attribute("aria-invalid") == "true"
    assert page.find_element(By.ID, "f-since").get_attribute("aria-invalid") == "false"

    until.clear()
    until.send_keys(Keys.ENTER)
    since = page.find_element(By.ID, "f-since")
    since.clear()
    since.send_keys("-1d", Keys.ENTER)
    wait_for(lambda: model_messages(page) == [f"old {i}" for i in range(5)] + [f"new {i}" for i in range(3)], message="the whole day")
    wait_for(lambda: not error.is_displayed(), message="the error to go away")
    assert "since=-1d" in page.current_url and "until" not in page.current_url
    append(files["app"], "live\n")
    wait_for(lambda: model_messages(page)[-1] == "live", message="live lines after the range")
    assert_clean_console(page)


# --- pages of another origin (CORS) ----------------------------------------

CROSS_ORIGIN_READ = """
const [base, token, done] = [arguments[0], arguments[1], arguments[arguments.length - 1]];
(async () => {
  const out = {};
  try {
    const response = await fetch(base + '/api/v1/lines?backlog=10', {headers: {Authorization: 'Bearer ' + token}});
    out.status = response.status;
    out.lastSeq = response.headers.get('Logcast-Last-Seq');
    out.lines = (await response.text()).split('\\n').filter(Boolean).map(JSON.parse).filter(o => o.type === 'line').map(o => o.msg);
  } catch (error) { out.error = String(error); }
  try {
    const response = await fetch(base + '/api/v1/lines');
    out.refusedStatus = response.status;
    out.refused = (await response.json()).error;
  } catch (error) { out.refusedError = String(error); }
  try {
    // EventSource cannot send a token; a page reads /sse with fetch and a reader.
    const controller = new AbortController();
    const response = await fetch(base + '/sse?backlog=3', {headers: {Authorization: 'Bearer ' + token}, signal: controller.signal});
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let text = '';
    while (!text.includes('third')) {
      const {value, done: ended} = await reader.read();
      if (ended) break;
      text += decoder.decode(value, {stream: true});
    }
    controller.abort();
    out.sse = text;
  } catch (error) { out.sseError = String(error); }
  done(out);
})();
"""


def test_a_page_of_an_allowed_origin_reads_lines_and_sse_and_others_cannot(page, serve, tmp_path):
    """A page on a second origin (another port) reads /api/v1/lines and /sse
    with a token (preflight and all, in Chromium); the same page on a third
    origin (another host name) is kept out by the browser."""
    import http.server
    import threading

    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text("<!doctype html><title>other origin</title><p>another site</p>\n")
    handler = lambda *args, **kwargs: http.server.SimpleHTTPRequestHandler(*args, directory=str(site), **kwargs)
    other = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=other.serve_forever, daemon=True).start()
    try:
        token = "cors-token-" + "9c" * 12
        (tmp_path / "tokens").write_text(token + "\n")
        (tmp_path / "app.log").write_text("")
        allowed = f"http://127.0.0.1:{other.server_address[1]}"
        server = serve("--file", f"app={tmp_path}/app.log", "--token-file", str(tmp_path / "tokens"), "--allow-origin", allowed)
        append(tmp_path / "app.log", "first\nsecond\nthird\n")
        wait_for(lambda: json.loads(server.get("/healthz", {"Authorization": f"Bearer {token}"})[2])["last_seq"] == 3, message="the lines")
        base = f"http://127.0.0.1:{server.port}"

        page.get(allowed + "/")
        out = page.execute_async_script(CROSS_ORIGIN_READ, base, token)
        assert out.get("status") == 200 and out["lines"] == ["first", "second", "third"], out
        assert out["lastSeq"] == "3", out  # an exposed header
        assert out.get("refusedStatus") == 401 and "token" in out["refused"], out
        assert "data: " in out.get("sse", "") and "third" in out["sse"], out

        # The same page from localhost is another origin, not allowed: the browser refuses to hand it anything.
        page.get(f"http://localhost:{other.server_address[1]}/")
        out = page.execute_async_script(CROSS_ORIGIN_READ, base, token)
        assert "status" not in out and "TypeError" in out["error"], out
        assert "refusedStatus" not in out and "sse" not in out, out
    finally:
        other.shutdown()
        other.server_close()


def test_context_lines_are_dimmed_with_separators_and_a_trace_shows_its_first_line_and_count(page, serve, tmp_path):
    server, files = open_viewer(page, serve, tmp_path, query="?grep=ERROR&context=1",
                                extra=("--multiline", "app=indented", "--multiline-timeout", "0.2"))
    trace = ("ERROR request failed\njava.lang.IllegalStateException: boom\n\tat com.example.A.run(A.java:10)\n"
             "Caused by: java.io.IOException: disk full\n\tat com.example.C.io(C.java:3)\n")
    append(files["app"], "INFO a\n" + trace + "INFO b\nINFO c\nINFO d\nERROR again\nINFO e\n")
    expected = ["INFO a", "ERROR request failed +4 lines", "INFO b", "INFO d", "ERROR again", "INFO e"]
    wait_for(lambda: dom_messages(page) == expected, message="the matches with their context")
    rows = page.find_elements(By.CSS_SELECTOR, "#rows .row")
    kinds = [("separator" if "tone-separator" in r.get_attribute("class") else
              "context" if "context" in r.get_attribute("class").split() else "match") for r in rows]
    assert kinds == ["context", "match", "context", "separator", "context", "match", "context"]
    assert rows[3].find_element(By.CSS_SELECTOR, ".c-msg").text == "--"
    assert "+4 lines" in rows[1].find_element(By.CSS_SELECTOR, ".more-lines").text
    rows[1].click()  # the details panel shows the whole record
    wait_for(lambda: page.execute_script("return document.getElementById('details-msg').textContent") == trace.rstrip("\n"),
             message="the whole trace in the details panel")
    # Typing another term keeps the context keys of the URL.
    box = page.find_element(By.ID, "f-grep")
    box.clear()
    box.send_keys("again", Keys.ENTER)
    wait_for(lambda: "context=1" in page.current_url and "grep=again" in page.current_url, message="the URL")
    assert_clean_console(page)


# ---- the timeline, field columns, folded records, context on demand -----

def journal_viewer(page, serve, tmp_path, entries, query="", extra=()):
    """A viewer on a journal written by systemd-journal-remote with these entries (their own stamps)."""
    from journal_support import JournalWriter
    directory = tmp_path / "journal"
    directory.mkdir()
    writer = JournalWriter(directory)
    writer.write(*entries)
    writer.close()
    server = serve("--web-root", str(WEB_ROOT), "--journal-directory", str(directory), "--initial-lines", "10000", *extra)
    wait_for(lambda: server.health()["last_seq"] == len(entries), message="the journal read")
    page.get(f"http://127.0.0.1:{server.port}/{query}")
    wait_for(lambda: page.execute_script("return !!window.logcast") and state(page)["status"] == "live", message="the viewer")
    wait_for(lambda: state(page)["lineCount"] == len(entries), message="the backlog in the page")
    return server


def spread_entries(count, seconds_apart=2, start=1_780_000_000):
    """Journal entries `seconds_apart` apart, cycling through the levels (and one without)."""
    priorities = [3, 4, 6, 6, 7, None, 5, 2]
    out = []
    for i in range(count):
        entry = {"MESSAGE": f"entry {i:04d}", "__REALTIME_TIMESTAMP": (start + i * seconds_apart) * 1_000_000,
                 "_PID": 100 + i, "SYSLOG_IDENTIFIER": "app", "REQUEST_STATUS": [200, 500][i % 2]}
        if priorities[i % len(priorities)] is not None:
            entry["PRIORITY"] = priorities[i % len(priorities)]
        out.append(entry)
    return out


def timeline(driver):
    return driver.execute_script("return window.logcast.timeline()")


def ts_ms(ts):
    from datetime import datetime
    return datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=__import__("datetime").timezone.utc).timestamp() * 1000


def test_the_timeline_counts_every_line_by_level_and_a_click_scrolls_to_a_bucket(page, serve, tmp_path):
    page.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {"width": 1280, "height": 720, "deviceScaleFactor": 1, "mobile": False})
    entries = spread_entries(300)
    journal_viewer(page, serve, tmp_path, entries, query="?backlog=1000")
    # `total` counts as lines arrive; the buckets are those of the last draw (at most 250 ms later).
    wait_for(lambda: timeline(page)["total"] == 300 and sum(b["total"] for b in timeline(page)["buckets"]) == 300,
             message="the timeline drawn with every line")
    shot = timeline(page)
    buckets = shot["buckets"]
    assert sum(b["total"] for b in buckets) == state(page)["lineCount"] == 300
    for b in buckets:
        assert sum(b["levels"].values()) == b["total"]
    want = {"error": 0, "warning": 0, "notice": 0, "info": 0, "debug": 0, "none": 0}
    for e in entries:
        p = e.get("PRIORITY")
        want["none" if p is None else "error" if p <= 3 else ["warning", "notice", "info", "debug"][p - 4]] += 1
    got = {k: sum(b["levels"][k] for b in buckets) for k in want}
    assert got == want
    # Each bucket counts the lines stamped inside it.
    lines = model_lines(page)
    for b in buckets:
        assert b["total"] == sum(1 for line in lines if b["start"] <= ts_ms(line["ts"]) < b["end"])
    assert len(buckets) > 20 and shot["bucketSeconds"] >= 2

    # A click on a bucket in the middle puts its first line at the top of the list.
    from selenium.webdriver.common.action_chains import ActionChains
    target = buckets[len(buckets) // 2]
    first = next(line for line in lines if ts_ms(line["ts"]) >= target["start"])
    canvas = page.find_element(By.ID, "timeline")
    box = canvas.rect
    ActionChains(page).move_to_element_with_offset(canvas, int(target["x"] - box["x"] - box["width"] / 2), 0).click().perform()
    wait_for(lambda: state(page)["firstVisibleUid"] == first["uid"], message="the bucket's first line at the top")
    assert state(page)["following"] is False
    assert first_visible_message(page) == first["msg"]
    # Hovering shows the bucket's counts; the text alternative sums it all up.
    tip = page.find_element(By.ID, "timeline-tip")
    wait_for(lambda: tip.is_displayed() and f"{target['total']} line" in tip.text, message="the hover tip")
    label = canvas.get_attribute("aria-label")
    assert label.startswith("Volume timeline: 300 lines from") and "errors" in label
    # From the keyboard: focus, arrows, Enter.
    canvas.send_keys(Keys.HOME)
    wait_for(lambda: tip.is_displayed() and tip.text.endswith(")") or "line" in tip.text, message="the first bucket's tip")
    canvas.send_keys(Keys.ENTER)
    wait_for(lambda: state(page)["firstVisibleUid"] == lines[0]["uid"], message="the first bucket's line at the top")

    # Dragging across buckets shows that time range (since and until in the URL).
    a, b = buckets[5], buckets[15]
    ActionChains(page).move_to_element_with_offset(canvas, int(a["x"] - box["x"] - box["width"] / 2), 0).click_and_hold() \
        .move_by_offset(int(b["x"] - a["x"]) // 2, 0).move_by_offset(int(b["x"] - a["x"]) - int(b["x"] - a["x"]) // 2, 0).release().perform()
    wait_for(lambda: "since=" in page.current_url and "until=" in page.current_url, message="the range in the URL")
    inside = [e["MESSAGE"] for e in entries if a["start"] <= e["__REALTIME_TIMESTAMP"] / 1000 < b["end"]]
    wait_for(lambda: model_messages(page) == inside, message="the lines of the range")
    assert_clean_console(page)


def test_field_columns_come_from_the_url_and_a_click_on_a_value_filters(page, serve, tmp_path):
    server, files = open_viewer(page, serve, tmp_path, query="?columns=status,user&backlog=100")
    assert state(page)["fieldsOn"] is True and state(page)["columns"] == ["status", "user"]
    rows = [{"status": s, "user": u, "msg": f"request {i}"} for i, (s, u) in
            enumerate([(200, "bob"), (500, "ana"), (500, "bob"), (404, "eve"), (500, "eve")])]
    append(files["app"], "".join(json.dumps(r) + "\n" for r in rows) + "level=info status=500 user=bob logfmt too\nplain\n")
    wait_for(lambda: len(model_lines(page)) == 7, message="the lines")
    cells = lambda: page.execute_script(
        "return [...document.querySelectorAll('#rows .row.line')].map(r => [...r.querySelectorAll('.fv')].map(c => c.textContent))")
    want = [["200", "bob"], ["500", "ana"], ["500", "bob"], ["404", "eve"], ["500", "eve"], ["500", "bob"], ["", ""]]
    wait_for(lambda: cells() == want, message="the field columns drawn")
    stats = page.execute_script("return window.logcast.fieldStats()")
    assert stats["status"] == 6 and stats["user"] == 6 and stats["msg"] == 5 and stats["level"] == 1
    # The picker lists the fields seen, with counts.
    page.find_element(By.CSS_SELECTOR, "#field-picker summary").click()
    listed = lambda: page.execute_script("return [...document.querySelectorAll('#field-list label')].map(l => l.textContent)")
    wait_for(lambda: "status6" in listed() and "msg5" in listed(), message="the picker with counts")
    page.find_element(By.CSS_SELECTOR, "#field-list input[value='msg']").click()
    wait_for(lambda: "columns=status%2Cuser%2Cmsg" in page.current_url, message="the column in the URL")
    page.find_element(By.CSS_SELECTOR, "#field-picker summary").click()
    wait_for(lambda: cells()[:2] == [["200", "bob", "request 0"], ["500", "ana", "request 1"]], message="three columns drawn")
    # A click on a value keeps the lines with it; a shift-click drops those with another.
    click_when_drawn(page, "#rows .row.line .fv[data-field='status']", 1)
    wait_for(lambda: "field=status%3D500" in page.current_url, message="the field filter in the URL")
    wait_for(lambda: [l["msg"] for l in model_lines(page)] == [
        json.dumps(rows[1]), json.dumps(rows[2]), json.dumps(rows[4]), "level=info status=500 user=bob logfmt too"],
        message="the lines with status 500")
    wait_for(lambda: cells() == [["500", "ana", "request 1"], ["500", "bob", "request 2"], ["500", "eve", "request 4"], ["500", "bob", ""]],
             message="the filtered rows drawn")
    click_when_drawn(page, "#rows .row.line .fv[data-field='user']", 1, shift=True)  # bob
    wait_for(lambda: "field=user%21%3Dbob" in page.current_url, message="the exclusion in the URL")
    wait_for(lambda: [l["msg"] for l in model_lines(page)] == [json.dumps(rows[1]), json.dumps(rows[4])], message="bob dropped")
    assert state(page)["filter"]["field"] == ["status=500", "user!=bob"]
    # From the keyboard: the selected line's fields in the details panel, with = and ≠ buttons.
    wait_for(lambda: cells() == [["500", "ana", "request 1"], ["500", "eve", "request 4"]], message="bob's rows gone")
    click_when_drawn(page, "#rows .row.line", 0)
    page.find_element(By.ID, "details-fields-summary").click()
    table = lambda: page.execute_script(
        "return [...document.querySelectorAll('#details-fields tr')].map(r => r.querySelector('th').textContent + '=' + r.children[1].textContent)")
    wait_for(lambda: table() == ["status=500", "user=ana", "msg=request 1"], message="the fields of the selected line")
    keep = page.find_element(By.CSS_SELECTOR, "#details-fields tr:nth-child(3) button")
    keep.send_keys(Keys.ENTER)
    wait_for(lambda: state(page)["filter"]["field"] == ["status=500", "user!=bob", "msg=request 1"], message="the field kept from the panel")
    wait_for(lambda: [l["msg"] for l in model_lines(page)] == [json.dumps(rows[1])], message="only that line")
    page.find_elements(By.CSS_SELECTOR, "#field-chips .chip-remove")[2].click()
    wait_for(lambda: state(page)["filter"]["field"] == ["status=500", "user!=bob"], message="the chip removed")
    # A chip removes its condition.
    page.find_element(By.CSS_SELECTOR, "#field-chips .chip-remove").click()
    wait_for(lambda: state(page)["filter"]["field"] == ["user!=bob"] and "status%3D500" not in page.current_url, message="the chip removed")
    # Fields off: no columns, and lines come without fields again.
    page.find_element(By.ID, "fields-toggle").click()
    wait_for(lambda: state(page)["fieldsOn"] is False and state(page)["columns"] == [], message="fields off")
    wait_for(lambda: model_lines(page) and all(l["fields"] is None for l in model_lines(page)), message="lines without fields")
    assert "columns=" not in page.current_url
    assert_clean_console(page)


TRACE = ("ERROR request failed\njava.lang.IllegalStateException: boom\n\tat com.example.A.run(A.java:10)\n"
         "Caused by: java.io.IOException: disk full\n\tat com.example.C.io(C.java:3)\n")


def row_heights(driver):
    """The heights of the drawn lines' messages (a row may add a pixel of its own around it)."""
    return driver.execute_script("return [...document.querySelectorAll('#rows .row.line .c-msg')].map(r => r.getBoundingClientRect().height)")


@pytest.mark.parametrize("wrap", [False, True], ids=["nowrap", "wrap"])
def test_a_folded_trace_expands_and_collapse_all_folds_it_again(page, serve, tmp_path, wrap):
    server, files = open_viewer(page, serve, tmp_path, query="?backlog=100",
                                extra=("--multiline", "app=indented", "--multiline-timeout", "0.2"))
    if wrap:
        page.find_element(By.TAG_NAME, "body").send_keys("w")
        wait_for(lambda: state(page)["wrap"], message="wrapping")
    append(files["app"], "INFO before\n" + TRACE + "INFO after\n")
    wait_for(lambda: dom_messages(page) == ["INFO before", "ERROR request failed +4 lines", "INFO after"], message="the folded trace")
    one = row_heights(page)[0]
    click_when_drawn(page, "#rows .row.line .more-lines", 0)
    wait_for(lambda: dom_messages(page)[1] == TRACE.rstrip("\n") + "  ▴ fold", message="the whole trace in the list")
    wait_for(lambda: abs(row_heights(page)[1] - 5 * one) < 2, message="the row as tall as its lines")
    # Rows below are placed after it, not under it.
    boxes = page.execute_script("return [...document.querySelectorAll('#rows .row.line')].map(r => [r.getBoundingClientRect().top, r.getBoundingClientRect().bottom])")
    assert boxes[1][0] >= boxes[0][1] - 0.5 and boxes[2][0] >= boxes[1][1] - 0.5
    assert page.execute_script("return window.logcast.folds()") == [{"seq": 2, "lines": 5, "expanded": True}]
    page.find_element(By.ID, "collapse-all").click()
    wait_for(lambda: dom_messages(page)[1] == "ERROR request failed +4 lines", message="folded again")
    wait_for(lambda: abs(row_heights(page)[1] - one) < 2, message="one row tall again")
    # From the keyboard: select it, X expands; ] expands all, and records arriving later too.
    click_when_drawn(page, "#rows .row.line", 1)
    wait_for(lambda: state(page)["selectedUid"] is not None, message="the record selected")
    page.find_element(By.TAG_NAME, "body").send_keys("x")
    wait_for(lambda: page.execute_script("return window.logcast.folds()")[0]["expanded"], message="x expands")
    page.find_element(By.TAG_NAME, "body").send_keys("[")
    wait_for(lambda: not page.execute_script("return window.logcast.folds()")[0]["expanded"], message="[ folds all")
    page.find_element(By.ID, "expand-all").click()
    append(files["app"], TRACE.replace("request failed", "again") + "INFO end\n")
    wait_for(lambda: [f["expanded"] for f in page.execute_script("return window.logcast.folds()")] == [True, True],
             message="every record expanded, the new one too")
    assert_clean_console(page)


def test_show_context_fetches_the_lines_around_a_line_without_leaving_the_live_view(page, serve, tmp_path):
    server, files = open_viewer(page, serve, tmp_path, query="?grep=ERROR")
    append(files["app"], "".join(f"ERROR {i}\n" if i == 20 else f"ok {i}\n" for i in range(40)))
    wait_for(lambda: dom_messages(page) == ["ERROR 20"], message="the match drawn")
    click_when_drawn(page, "#rows .row.line", 0)
    wait_for(lambda: page.find_element(By.ID, "details").is_displayed(), message="the details")
    page.find_element(By.ID, "context-button").click()
    items = lambda: page.execute_script(
        "return [...document.querySelectorAll('#context-lines li')].map(li => [li.className, li.querySelector('.c-msg')?.textContent])")
    wait_for(lambda: len(items()) == 11, message="the lines around it")
    assert [msg for _, msg in items()] == [f"ok {i}" if i != 20 else "ERROR 20" for i in range(15, 26)]
    assert ["anchor" in cls for cls, _ in items()] == [i == 20 for i in range(15, 26)]
    assert "11 lines of app.log around seq 21" in page.find_element(By.ID, "context-title").text
    wait_for(lambda: selected_row_in_view(page) == "ERROR 20", message="the line stays in view beside its context")
    # The live view goes on meanwhile: new matches arrive, the panel stays.
    append(files["app"], "ERROR later\n")
    wait_for(lambda: model_messages(page) == ["ERROR 20", "ERROR later"], message="live lines still arrive")
    assert page.find_element(By.ID, "context-panel").is_displayed()
    page.find_element(By.ID, "context-close").click()
    assert not page.find_element(By.ID, "context-panel").is_displayed()
    # K does the same from the keyboard.
    page.find_element(By.TAG_NAME, "body").send_keys("k")
    wait_for(lambda: len(items()) == 11, message="k shows the context")
    assert_clean_console(page)


def click_when_drawn(driver, css, index=0, shift=False):
    """Clicks the `index`-th element matching `css` once it is drawn. The list
    refills its rows on the next animation frame after a change, so an
    element found a moment before may be gone: find it again and retry."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.action_chains import ActionChains

    def attempt():
        try:
            found = driver.find_elements(By.CSS_SELECTOR, css)
            if not -len(found) <= index < len(found):
                return False
            if shift:
                ActionChains(driver).key_down(Keys.SHIFT).click(found[index]).key_up(Keys.SHIFT).perform()
            else:
                found[index].click()
            return True
        except StaleElementReferenceException:
            ActionChains(driver).key_up(Keys.SHIFT).perform()
            return False
    wait_for(attempt, message=f"a click on {css} [{index}]")


def relative_luminance(rgb_value):
    def channel(c):
        c /= 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4
    r, g, b = (channel(c) for c in rgb_value[:3])
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a, b):
    la, lb = sorted((relative_luminance(a), relative_luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def test_colours_meet_wcag_aa_contrast_in_both_themes(page, serve, tmp_path):
    open_viewer(page, serve, tmp_path)
    text = ["--fg", "--muted", "--faint", "--lvl-err", "--lvl-warn", "--lvl-notice", "--lvl-debug", "--note", "--gap", "--accent"]
    graphics = ["--lvl-err", "--lvl-warn", "--lvl-notice", "--tl-info", "--lvl-debug", "--tl-none"]
    for theme in ("light", "dark"):
        page.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": [{"name": "prefers-color-scheme", "value": theme}]})
        wait_for(lambda: page.execute_script(f"return matchMedia('(prefers-color-scheme: {theme})').matches"), message=theme)
        colours = page.execute_script("""
            const probe = document.createElement('span'); document.body.append(probe);
            const out = {};
            for (const name of arguments[0]) { probe.style.color = `var(${name})`; out[name] = getComputedStyle(probe).color; }
            probe.remove(); return out;""", sorted(set(text + graphics + ["--bg", "--bg-bar", "--bg-input"])))
        for fg in text:
            for bg in ("--bg", "--bg-bar"):
                ratio = contrast(rgb(colours[fg]), rgb(colours[bg]))
                assert ratio >= 4.5, f"{theme}: {fg} on {bg} is {ratio:.2f}:1, below AA's 4.5:1"
        for mark in graphics[:-1]:  # the bars of the timeline (lines without a level are the faintest on purpose)
            ratio = contrast(rgb(colours[mark]), rgb(colours["--bg-bar"]))
            assert ratio >= 3, f"{theme}: timeline {mark} is {ratio:.2f}:1, below the 3:1 of graphics"


def incident_entries(start=1_780_000_000):
    """A believable hour-ish of journal entries: a steady trickle, a burst of errors, a stack trace or two."""
    import random
    rnd = random.Random(3)
    out = []
    t = start
    for i in range(400):
        burst = 150 <= i < 230
        t += rnd.choice([1, 2, 3]) if burst else rnd.choice([5, 8, 12, 20])
        status = 503 if burst and i % 3 else rnd.choice([200, 200, 200, 304, 404])
        priority = 3 if status == 503 else rnd.choice([6, 6, 6, 7, 5, 4])
        message = f"GET /api/orders/{4000 + i} {status} {rnd.randint(2, 900)}ms"
        if burst and i % 25 == 0:
            priority = 2
            message = (f"request {i} failed: upstream timeout\njava.util.concurrent.TimeoutException: payments.internal:443\n"
                       "\tat com.example.pay.Client.call(Client.java:88)\n\tat com.example.api.Orders.create(Orders.java:41)")
        out.append({"MESSAGE": message, "__REALTIME_TIMESTAMP": t * 1_000_000, "PRIORITY": priority, "_PID": 4100 + i % 3,
                    "SYSLOG_IDENTIFIER": "orders", "_SYSTEMD_UNIT": "orders.service", "REQUEST_STATUS": status,
                    "USER_NAME": rnd.choice(["ana", "bob", "eve"])})
    return out


def test_screenshots_of_the_new_views_in_both_themes_and_at_phone_width(page, serve, tmp_path):
    SCREENSHOTS.mkdir(exist_ok=True)
    page.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {"width": 1280, "height": 720, "deviceScaleFactor": 1, "mobile": False})
    entries = incident_entries()
    server = journal_viewer(page, serve, tmp_path, entries, query="?backlog=1000&columns=REQUEST_STATUS,USER_NAME")
    wait_for(lambda: timeline(page)["total"] == len(entries), message="the timeline")

    def shoot(name, theme):
        page.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": [{"name": "prefers-color-scheme", "value": theme}]})
        wait_for(lambda: page.execute_script(f"return matchMedia('(prefers-color-scheme: {theme})').matches"), message=theme)
        page.execute_script("window.dispatchEvent(new Event('resize'))")
        path = SCREENSHOTS / f"{name}-{theme}.png"
        wait_for(lambda: page.save_screenshot(str(path)) and path.stat().st_size > 5_000, message=str(path))

    # 1. The timeline over the incident, and field columns. (Its label follows the counts at its
    # next draw, at most 250 ms later.)
    wait_for(lambda: f"{len(entries)} lines" in page.find_element(By.ID, "timeline").get_attribute("aria-label"),
             message="the timeline's label")
    for theme in ("light", "dark"):
        shoot("viewer-timeline-fields", theme)
    # 2. Filtered on a field value, a trace expanded, and the context of a line open.
    page.get(f"http://127.0.0.1:{server.port}/?backlog=1000&field=REQUEST_STATUS%3D503&columns=USER_NAME")
    wait_for(lambda: state(page)["status"] == "live" and len(page.execute_script("return window.logcast.folds()")) > 0,
             message="the 503s with their traces")
    page.find_element(By.ID, "expand-all").click()
    traced = next(line for line in model_lines(page) if "\n" in line["msg"])
    wait_for(lambda: any("▴ fold" in m for m in dom_messages(page)), message="the traces expanded")
    click_when_drawn(page, "#rows .row.line", -3)
    wait_for(lambda: page.find_element(By.ID, "details").is_displayed(), message="the details")
    page.find_element(By.ID, "context-button").click()
    wait_for(lambda: len(page.find_elements(By.CSS_SELECTOR, "#context-lines li")) >= 6, message="the context panel")
    assert traced
    for theme in ("light", "dark"):
        shoot("viewer-fields-folds-context", theme)
    # 3. A phone, 390 px wide: the bars wrap, the list stays readable.
    page.get(f"http://127.0.0.1:{server.port}/?backlog=1000")
    wait_for(lambda: state(page)["status"] == "live" and state(page)["lineCount"] == len(entries), message="the full view")
    page.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {"width": 390, "height": 844, "deviceScaleFactor": 1, "mobile": True})
    wait_for(lambda: page.execute_script("return document.documentElement.clientWidth") == 390, message="phone width")
    assert page.execute_script("return document.documentElement.scrollWidth") <= 390, "nothing sticks out sideways"
    assert page.execute_script(
        "return [...document.querySelectorAll('.actions button')].every(b => b.getBoundingClientRect().right <= 390)"), \
        "every view button is on screen"
    msg = page.execute_script("const m = document.querySelector('#rows .row.line .c-msg').getBoundingClientRect(); return [m.left, m.width]")
    assert msg[0] < 250 and msg[1] > 120, f"the message column keeps room: {msg}"
    for theme in ("light", "dark"):
        shoot("viewer-phone", theme)
    assert_clean_console(page)
