"""The admin page's job control: Pause and Resume buttons that follow the job's state, and a
time limit given in the creation form, shown in the job's view and ending it ``error``.
Playwright with Debian's Chromium, as tests/test_browser.py."""
import re

from jobjoker import proc
from tests.support import until
from tests.test_browser import admin, browser, expect, server  # noqa: F401

LIMITED = """import time

from jobjoker import Worker


class Limited(Worker):
    \"\"\"Declares a time limit of its own.\"\"\"

    timeout = 2 * 60 * 60

    def run(self):
        time.sleep(0.1)
"""


def test_pause_and_resume_buttons_follow_the_job(admin, server):
    job = server.create_job("TestWorker", {"count": 300, "sleep": 0.2})
    admin.goto()
    admin.open_job(job["id"])
    page = admin.page
    pause = page.get_by_role("button", name="Pause", exact=True)
    resume = page.get_by_role("button", name="Resume", exact=True)
    expect(admin.status_badge).to_have_text("active")
    expect(pause).to_be_enabled()
    expect(resume).to_be_disabled()
    expect(resume).to_have_attribute("title", re.compile("only a paused job can resume"))
    pause.click()  # no question asked: a pause is undone by a resume
    expect(admin.status_badge).to_have_text("paused")
    expect(admin.row(job["id"]).locator(".badge")).to_have_text("paused")
    assert proc.state(job["pid"]) == "T"  # its process really is stopped
    expect(pause).to_be_disabled()
    expect(resume).to_be_enabled()
    expect(page.locator("#job-detail-actions-hint")).to_contain_text("Paused")
    expect(page.locator("#job-detail-facts")).to_contain_text("Pause asked")
    expect(admin.log_lines.filter(has_text="PAUSED")).to_have_count(1)
    # Stop and kill are offered on a paused job.
    expect(page.get_by_role("button", name="Kill", exact=True)).to_be_enabled()
    resume.click()
    expect(admin.status_badge).to_have_text("active")
    expect(admin.log_lines.filter(has_text="RESUMED")).to_have_count(1)
    until(lambda: proc.state(job["pid"]) in ("R", "S"), what="the process to run again")
    page.get_by_role("button", name="Kill", exact=True).click()
    page.get_by_role("button", name="Kill it").click()
    expect(admin.status_badge).to_have_text("stop")
    assert admin.dialogs == []


def test_a_time_limit_set_in_the_form_is_shown_and_ends_the_job(admin, server):
    admin.goto("#create-job")
    page = admin.page
    page.select_option("#create-job-worker", "TestWorker")
    expect(page.locator("#create-job-timeout")).to_have_attribute("placeholder", "")
    form = page.locator("#create-job-params .params-form")
    form.get_by_label("count", exact=True).fill("300")
    form.get_by_label("sleep", exact=True).fill("0.2")
    page.fill("#create-job-timeout", "1.5")
    page.click("#create-job-submit")
    expect(page.locator("#panel-jobs")).to_be_visible()
    facts = page.locator("#job-detail-facts")
    expect(facts).to_contain_text("Time limit")
    expect(page.locator("#job-detail-facts [data-fact=timeout]")).to_have_text("1.5 s")
    expect(admin.status_badge).to_have_text("error")
    expect(facts).to_contain_text("timed out after 1.5 s")
    expect(facts).to_contain_text("its time limit")
    job_id = page.locator("#job-detail-facts .job-id").inner_text()
    job = server.job(job_id)
    assert (job["timeout"], job["error"]) == (1.5, "timed out after 1.5 s")


def test_the_form_shows_the_workers_own_time_limit(admin, server):
    server.api("PUT", "/workers/Limited", LIMITED)
    admin.goto("#create-job")
    admin.page.select_option("#create-job-worker", "Limited")
    expect(admin.page.locator("#create-job-timeout")).to_have_attribute(
        "placeholder", "Limited's own: 7200")


def test_a_bad_time_limit_in_the_form_gets_the_servers_refusal(admin, server):
    admin.goto("#create-job")
    page = admin.page
    page.select_option("#create-job-worker", "TestWorker")
    page.fill("#create-job-timeout", "-3")
    page.click("#create-job-submit")
    expect(admin.alert).to_contain_text('"timeout" must be a positive number')
