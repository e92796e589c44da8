"""A job's progress and result in a real browser (the fixtures are tests/test_browser.py's): the
progress bar in the job list and the job view moves live, step by step, as the worker reports
(each step waits for a file the test writes), with a time left; and the job's structured result
is shown pretty-printed, as text."""
import re

from tests.test_browser import admin, browser, server  # noqa: F401 (fixtures)

try:
    from playwright.sync_api import expect
except ImportError:  # the browser fixture skips (or fails in CI) with the reason
    expect = None

STEPPER = b'''import os, time
from jobjoker import Worker

class Stepper(Worker):
    """Reports progress in four steps, each after the file `gate`-N exists; then a result."""
    def run(self):
        for step in range(1, 5):
            self.progress(step, 4, "step %d of 4" % step)
            if step == 4:
                break
            while not os.path.exists("%s-%d" % (self.params["gate"], step)):
                time.sleep(0.02)
        self.result({"answer": 42, "html": "<b>not bold</b>", "rows": [1, 2]})
'''


def test_the_progress_bar_moves_live_and_the_result_is_shown(admin, server, tmp_path):
    reply = server.call("PUT", "/workers/Stepper", STEPPER,
                        headers={"Content-Type": "text/x-python"})
    assert reply.code in (200, 201), reply
    gate = str(tmp_path / "gate")
    job = server.create_job("Stepper", {"gate": gate})
    admin.goto()
    admin.mark()
    admin.open_job(job["id"])
    page = admin.page
    in_list = admin.row(job["id"]).locator(".job-progress")
    in_view = page.locator("#job-detail-facts .job-progress")
    expect(in_list).to_contain_text("25%")
    expect(in_view).to_contain_text(re.compile(r"25% · (\d+:\d\d|—) left · step 1 of 4"))
    expect(in_view.locator("progress")).to_have_attribute("aria-label", "progress 25%")
    expect(page.locator("#job-detail-result")).to_be_hidden()
    for step in (1, 2):
        open("%s-%d" % (gate, step), "w").close()
        percent = "%d%%" % ((step + 1) * 25)
        expect(in_list).to_contain_text(percent)  # moved by the live feed, no reload
        expect(in_view).to_contain_text("%s · " % percent)
        expect(in_view).to_contain_text("step %d of 4" % (step + 1))
    open("%s-3" % gate, "w").close()
    expect(admin.status_badge).to_have_text("done")
    expect(in_view).to_contain_text("100%")
    result = page.locator("#job-detail-result-text")
    expect(result).to_be_visible()
    expect(result).to_contain_text('"answer": 42')
    expect(result).to_contain_text('"html": "<b>not bold</b>"')
    assert result.locator("b").count() == 0  # shown as text, never as markup
    admin.assert_not_reloaded()
    # Opened afresh, the job shows its result from GET /jobs/ID.
    admin.goto()
    admin.open_job(job["id"])
    expect(page.locator("#job-detail-result-text")).to_contain_text('"rows": [')
