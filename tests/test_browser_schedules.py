"""The Schedules tab in a real browser (the fixtures are tests/test_browser.py's): an operator
creates a schedule through the form, sees its next five times, runs it now and sees the run's
outcome with a link to its job, pauses, resumes, edits and deletes it; a refused cron shows the
server's reason; a viewer reads the list without the form or the actions."""
import re

from tests.test_browser import AdminPage, admin, browser, new_user, server  # noqa: F401

try:
    from playwright.sync_api import expect
except ImportError:  # the browser fixture skips (or fails in CI) with the reason
    expect = None


def schedule_row(page, name):
    return page.locator("#schedules-rows tr", has_text=name)


def test_create_run_now_pause_resume_edit_and_delete_a_schedule(admin, server):  # noqa: F811
    admin.goto("#schedules")
    page = admin.page
    expect(page.locator("#panel-schedules")).to_be_visible()
    page.fill("#schedule-name", "<b>nightly</b>")
    page.select_option("#schedule-worker", "TestWorker")
    page.fill("#schedule-cron", "61 * * * *")
    page.fill("#schedule-timezone", "Europe/Berlin")
    page.fill("#schedule-parameters", '{"count": 1, "sleep": 0}')
    page.click("#schedule-submit")
    expect(page.locator("#schedule-form-error")).to_contain_text("cron:")
    expect(page.locator("#schedule-form-error")).to_contain_text("out of range")
    page.fill("#schedule-cron", "0 3 * * *")
    page.click("#schedule-submit")
    row = schedule_row(page, "<b>nightly</b>")  # shown as text, never as HTML
    expect(row).to_have_count(1)
    expect(row.locator(".next-runs li")).to_have_count(5)
    expect(row).to_contain_text("Europe/Berlin")
    expect(row.locator(".last-runs")).to_have_text("none yet")

    row.get_by_role("button", name="Run now").click()
    expect(row.locator(".last-runs li")).to_have_count(1)
    expect(row.locator(".last-runs li .run-outcome")).to_have_text("started")
    link = row.locator(".last-runs a")
    expect(link).to_have_text(re.compile(r"^job \S{6}$"))
    expect(row.locator(".last-runs li")).to_contain_text(re.compile(r"\((active|done)\)"))
    admin.screenshot("laptop-schedules", full_page=True)

    row.get_by_role("button", name="Pause").click()
    expect(row.locator(".schedule-state")).to_have_text("paused: paused by admin")
    expect(row.locator(".next-runs")).to_have_text("—")
    row.get_by_role("button", name="Resume").click()
    expect(row.locator(".schedule-state")).to_have_text("active")
    expect(row.locator(".next-runs li")).to_have_count(5)

    row.get_by_role("button", name="Edit").click()
    expect(page.locator("#schedule-submit")).to_have_text("Save changes")
    page.fill("#schedule-cron", "@hourly")
    page.click("#schedule-submit")
    expect(row.locator("code", has_text="@hourly")).to_have_count(1)
    expect(page.locator("#schedule-submit")).to_have_text("Create schedule")

    link.click()
    expect(page.locator("#panel-jobs")).to_be_visible()
    expect(page.locator("#job-detail-facts .job-id")).to_have_count(1)

    admin.tab("schedules")
    delete = row.get_by_role("button", name="Delete")
    delete.click()
    row.get_by_role("button", name="Really delete?").click()
    expect(row).to_have_count(0)


def test_a_viewer_reads_schedules_without_the_form_or_actions(browser, server):  # noqa: F811
    server.api("POST", "/schedules", {"name": "for-viewers", "worker": "TestWorker",
                                      "cron": "@daily"})
    viewer = AdminPage(browser, server, user=new_user(server, "viewer"))
    try:
        viewer.goto("#schedules")
        page = viewer.page
        row = schedule_row(page, "for-viewers")
        expect(row.locator(".next-runs li")).to_have_count(5)
        expect(row.get_by_role("button", name="Run now")).to_be_hidden()
        expect(page.locator("#schedule-form")).to_be_hidden()
    finally:
        viewer.close()
