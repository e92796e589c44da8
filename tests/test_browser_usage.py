"""A job's resource use in the job view, in a real browser (the fixtures are
tests/test_browser.py's): the totals and the CPU and memory charts appear for a running job,
grow live from its stream, and stay once it has ended."""
import re

from tests.test_browser import admin, browser, server  # noqa: F401 (fixtures)

try:
    from playwright.sync_api import expect
except ImportError:  # the browser fixture skips (or fails in CI) with the reason
    expect = None


def drawn_points(chart):
    return int(chart.get_attribute("data-points") or 0)


def test_the_charts_of_a_running_job_appear_and_grow_live(admin, server):
    job = server.create_job("TestWorker", {"count": 1000, "sleep": 0.1})
    admin.goto()
    admin.open_job(job["id"])
    page = admin.page
    usage = page.locator("#job-usage")
    expect(usage).to_be_visible()
    expect(usage.locator("[data-usage=cpu] strong")).to_have_text(re.compile(r"^\d+\.\d\d s$"))
    expect(usage.locator("[data-usage=rss]")).to_contain_text("Memory now")
    expect(usage.locator("[data-usage=peak] strong")).to_have_text(re.compile(r"MiB$"))
    cpu = usage.locator("[data-chart=cpu]")
    memory = usage.locator("[data-chart=memory]")
    expect(cpu.locator("svg polyline")).to_have_attribute("points", re.compile(r"\d,\d.* \d"))
    # Live: more points arrive from the stream's usage messages, without reading again.
    before = drawn_points(memory)
    page.wait_for_function("(n) => Number(document.querySelector("
                           "'#job-usage [data-chart=memory]').dataset.points) > n", arg=before)
    server.api("PUT", "/jobs/%s/status" % job["id"], "kill")
    expect(admin.status_badge).to_have_text("stop")
    # Once ended: the stored figures and series, final.
    expect(usage.locator("[data-usage=rss]")).to_contain_text("Memory at the end")
    expect(usage).to_be_visible()
    assert drawn_points(memory) >= 1


def test_an_idle_job_shows_no_charts(admin, server):
    job = server.create_job("TestWorker", {"count": 1}, start=False)
    admin.goto()
    admin.open_job(job["id"])
    expect(admin.page.locator("#job-detail-facts .job-id")).to_have_text(job["id"])
    expect(admin.page.locator("#job-usage")).to_have_count(1)
    expect(admin.page.locator("#job-usage")).to_be_hidden()
