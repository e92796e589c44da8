"""The admin page with jobs that wait: a queued job's badge and place, cancelling it, a scheduled
job's start time and Start now, the status filter, and a start time given in the creation form.
Playwright with Debian's Chromium, as tests/test_browser.py."""
import datetime
import time

from tests.test_browser import admin, browser, expect, server  # noqa: F401

HOLD = """import time

from jobjoker import Worker


class Hold(Worker):
    \"\"\"Runs until stopped; one at a time.\"\"\"

    max_active = 1

    def run(self):
        while self.is_active():
            time.sleep(0.02)
"""


def test_a_queued_job_shows_its_place_and_can_be_cancelled(admin, server):
    server.api("PUT", "/workers/Hold", HOLD)
    first = server.create_job("Hold")
    queued = server.create_job("Hold")
    assert queued["status"] == "queued"
    admin.goto()
    page = admin.page
    expect(admin.row(queued["id"]).locator(".badge")).to_have_text("queued #1")
    admin.open_job(queued["id"])
    expect(admin.status_badge).to_have_text("queued #1")
    expect(page.locator("#job-detail-facts")).to_contain_text("#1 in the queue")
    expect(page.locator("#job-detail-actions-hint")).to_contain_text("Queued")
    page.get_by_role("button", name="Cancel", exact=True).click()
    page.get_by_role("button", name="Cancel it").click()
    expect(admin.status_badge).to_have_text("stop")
    assert server.job(queued["id"])["reason"] == "cancelled"
    # a third joins the queue and shows in the filtered list, then starts when the slot frees
    third = server.create_job("Hold")
    page.select_option("#jobs-filter-status", "queued")
    expect(admin.row(third["id"]).locator(".badge")).to_have_text("queued #1")
    expect(admin.row(first["id"])).to_have_count(0)
    server.api("PUT", "/jobs/%s/status" % first["id"], "kill")
    expect(admin.row(third["id"])).to_have_count(0)  # it left the queue: started
    server.api("PUT", "/jobs/%s/status" % third["id"], "kill")
    assert admin.dialogs == []


def test_a_scheduled_job_shows_its_time_and_starts_now(admin, server):
    job = server.api("POST", "/jobs", {"worker": "Echo", "start_at": time.time() + 3600})[0]
    assert job["status"] == "scheduled"
    admin.goto()
    page = admin.page
    expect(admin.row(job["id"]).locator(".badge")).to_have_text("scheduled")
    expect(admin.row(job["id"])).to_contain_text("at ")
    admin.open_job(job["id"])
    expect(page.locator("#job-detail-facts")).to_contain_text("Starts at")
    page.get_by_role("button", name="Start now", exact=True).click()
    expect(admin.status_badge).to_have_text("done")


def test_the_form_schedules_a_start(admin, server):
    admin.goto("#create-job")
    page = admin.page
    page.select_option("#create-job-worker", "Echo")
    later = datetime.datetime.now() + datetime.timedelta(hours=1)
    page.fill("#create-job-start-at", later.strftime("%Y-%m-%dT%H:%M:%S"))
    page.click("#create-job-submit")
    expect(page.locator("#panel-jobs")).to_be_visible()
    expect(admin.status_badge).to_have_text("scheduled")
    job_id = page.locator("#job-detail-facts .job-id").inner_text()
    assert abs(server.job(job_id)["start_at"] - later.timestamp()) < 1.5
    server.api("DELETE", "/jobs/%s" % job_id)
