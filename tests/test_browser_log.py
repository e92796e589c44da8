"""The log viewer in a real browser (the fixtures are tests/test_browser.py's): colours and
progress rewrites as a terminal shows them, a search across the whole log that jumps to what it
found, going to an entry by its number, wrapping on and off, and full screen."""
from tests.test_browser import admin, browser, server  # noqa: F401 (fixtures)

try:
    from playwright.sync_api import expect
except ImportError:  # the browser fixture skips (or fails in CI) with the reason
    expect = None

ESC = "\x1b"


def open_log(admin, server, worker, parameters):
    job = server.create_job(worker, parameters)
    server.wait_for_job(job["id"])
    admin.goto()
    admin.open_job(job["id"])
    expect(admin.log_lines.last).to_contain_text("ENDED done")
    return job


def row(admin, seq):
    return admin.page.locator('#job-log-lines .line[data-seq="%d"]' % seq)


def test_colours_show_as_colours_and_other_escapes_never_show(admin, server):
    lines = [ESC + "[31mred" + ESC + "[0m plain",
             ESC + "[1;38;2;0;255;0mgreen and bold" + ESC + "[m",
             ESC + "]0;a window title\x07" + ESC + "[2K" + ESC + "[10;5Hclean" + ESC + "(B",
             "<b>" + ESC + "[44mnot bold</b>"]
    open_log(admin, server, "Echo", {"lines": lines})
    red = admin.page.locator("#job-log-lines .ansi-fg-1", has_text="red")
    expect(red).to_have_css("color", "rgb(205, 49, 49)")
    green = admin.page.locator("#job-log-lines .ansi-bold", has_text="green and bold")
    expect(green).to_have_class("ansi-fg-46 ansi-bold")  # truecolour: the nearest of the 256
    expect(green).to_have_css("font-weight", "700")
    admin.screenshot("log-colours")
    for seq, text in ((1, "red plain"), (2, "green and bold"), (3, "clean"),
                      (4, "<b>not bold</b>")):
        expect(row(admin, seq).locator(".line-text")).to_have_text(text)
    texts = admin.page.locator("#job-log-lines").inner_text()
    assert ESC not in texts and "\x07" not in texts and "window title" not in texts
    assert admin.page.locator("#job-log-lines b").count() == 0


def test_a_progress_bar_rewritten_with_cr_takes_one_row(admin, server):
    lines = ["downloading 10%\rdownloading 60%\rdownloading 95%",  # one entry, rewritten
             "step 1 of 3\r", "step 2 of 3\r", "step 3 of 3\r",  # flushed before each newline
             "all steps done", "abcdef\rxy"]
    open_log(admin, server, "Echo", {"lines": lines})
    expect(row(admin, 1).locator(".line-text")).to_have_text("downloading 95%")
    # Entries 2-5: the first three ended in a bare \r, so each next one overwrote the row.
    merged = row(admin, 2)
    expect(merged.locator(".line-text")).to_have_text("all steps done")
    expect(merged).to_have_attribute("data-last", "5")
    assert row(admin, 3).count() == 0
    expect(row(admin, 6).locator(".line-text")).to_have_text("xycdef")  # as a terminal shows


def test_search_finds_text_across_the_whole_log_and_jumps_to_it(admin, server):
    open_log(admin, server, "Counter", {"count": 20000})  # 1,000 of them shown at first
    admin.page.fill("#job-log-search", "LINE 1234")
    admin.page.click("#job-log .log-search button[type=submit]")
    results = admin.page.locator("#job-log-search-results .search-result")
    # "line 1234" and "line 12340" .. "line 12349", each with its seq (STARTED is 0)
    expect(results).to_have_count(11)
    expect(results.first).to_contain_text("#1235")
    expect(results.first).to_contain_text("line 1234")
    expect(admin.page.locator("#job-log-search-summary")).to_contain_text(
        "11 matches for “LINE 1234” in all 20,002 entries")
    results.first.click()
    target = row(admin, 1235)
    expect(target).to_have_class("line target")
    expect(target).to_be_in_viewport()
    expect(target.locator(".line-text")).to_have_text("line 1234")
    expect(admin.page.locator("#job-log-follow")).not_to_be_checked()
    admin.page.locator("#job-log-search-panel").scroll_into_view_if_needed()
    admin.screenshot("log-search")
    # Match case: nothing is upper-case.
    admin.page.uncheck("#job-log-search-case")
    admin.page.click("#job-log .log-search button[type=submit]")
    expect(admin.page.locator("#job-log-search-summary")).to_contain_text("0 matches")
    expect(results).to_have_count(0)


def test_go_to_an_entry_by_its_number_and_back_to_the_latest(admin, server):
    open_log(admin, server, "Counter", {"count": 5000})
    admin.page.fill("#job-log-jump", "500")
    admin.page.click("#job-log .jump button")
    target = row(admin, 500)
    expect(target).to_have_class("line target")
    expect(target).to_be_in_viewport()
    expect(target.locator(".line-text")).to_have_text("line 499")
    expect(admin.page.locator("#job-log .tail-cut")).to_be_visible()  # newer ones wait
    admin.page.fill("#job-log-jump", "99999")
    admin.page.click("#job-log .jump button")
    expect(admin.page.locator("#job-log .jump-note")).to_have_text("There is no entry 99,999.")
    admin.page.click("#job-log .tail-cut button")
    expect(admin.log_lines.last).to_contain_text("ENDED done")


def test_wrap_turns_off_and_full_screen_covers_the_page_until_escape(admin, server):
    open_log(admin, server, "Echo", {"lines": ["long " * 200]})
    text = row(admin, 1).locator(".line-text")
    expect(text).to_have_css("white-space", "pre-wrap")
    admin.page.uncheck("#job-log-wrap")
    expect(text).to_have_css("white-space", "pre")
    lines = admin.page.locator("#job-log-lines")
    assert lines.evaluate("(node) => node.scrollWidth > node.clientWidth")
    admin.page.check("#job-log-wrap")
    expect(text).to_have_css("white-space", "pre-wrap")

    section = admin.page.locator("#job-log")
    admin.page.click("#job-log-full-screen")
    expect(section).to_have_class("entries full-screen")
    expect(admin.page.locator("#job-log-full-screen")).to_have_attribute("aria-pressed", "true")
    box, viewport = section.bounding_box(), admin.page.viewport_size
    assert (box["x"], box["y"], box["width"], box["height"]) == (
        0, 0, viewport["width"], viewport["height"])
    lines.focus()
    admin.page.keyboard.press("Escape")
    expect(section).to_have_class("entries")
    expect(admin.page.locator("#job-log-full-screen")).to_have_text("Full screen")


def test_opening_another_job_closes_the_search_results_of_the_first(admin, server):
    first = open_log(admin, server, "Echo", {"lines": ["needle here"]})
    admin.page.fill("#job-log-search", "needle")
    admin.page.click("#job-log .log-search button[type=submit]")
    expect(admin.page.locator("#job-log-search-results .search-result")).to_have_count(1)
    second = server.create_job("Echo", {"lines": ["nothing"]})
    server.wait_for_job(second["id"])
    admin.row(second["id"]).wait_for()
    admin.open_job(second["id"])
    expect(admin.page.locator("#job-log-search-panel")).to_be_hidden()
    assert first["id"] != second["id"]
