"""Retention (jobjoker.retention, jobjoker.pruner, jobjoker.jobremoval): what a prune deletes,
what it never touches, and a dry run that changes nothing.

Most tests build rows in every state through ``jobstore.insert`` in a storage transaction (real
processes cannot be held in each state cheaply), on SQLite and MariaDB; one runs real jobs on a
server and shows that everything of a pruned job goes: row, entries, data, folder.
"""
import os

import pytest

from jobjoker import jobstore, models, pruner, retention
from jobjoker.logstore import DELETE_BATCH, LogStore
from jobjoker.retention import DAY, Policy
from tests.support import poll

pytestmark = pytest.mark.both_databases

NOW = 2_000_000_000.0
OLD = NOW - 10 * DAY


def job_row(worker="w", status="done", ended=OLD, **fields):
    return dict({"id": jobstore.new_job_id(), "worker": worker, "status": status,
                 "created": ended - 60, "stoptime": ended if status in ("done", "error", "stop")
                 else None}, **fields)


async def insert_jobs(storage, rows):
    await storage.transaction(jobstore.insert, rows)
    return [row["id"] for row in rows]


def remaining_ids():
    return {job_id for job_id, in models.Job.select(models.Job.id).tuples()}


async def prune(storage, tmp_path, policy, now=NOW, **kwargs):
    return await pruner.prune(storage, LogStore(), tmp_path / "jobs", policy, now=now, pause=0,
                              **kwargs)


@pytest.mark.gen_test(timeout=60)
async def test_only_finished_jobs_go(storage, tmp_path):
    """Idle, scheduled, queued, active and paused jobs stay however old; finished ones go."""
    spared = await insert_jobs(storage, [
        job_row(status=status) for status in ("idle", "scheduled", "queued", "active", "paused")])
    finished = await insert_jobs(storage, [job_row(status=s) for s in ("stop", "error", "done")])
    report = await prune(storage, tmp_path, Policy(keep_days=1, keep_per_worker=1))
    assert remaining_ids() == set(spared)
    assert report.counts["jobs"] == 3 and sorted(report.job_ids) == sorted(finished)


@pytest.mark.gen_test(timeout=60)
async def test_keep_days_goes_by_end_time(storage, tmp_path):
    """A job that ended more than keep-days ago goes, whenever it was created."""
    gone = await insert_jobs(storage, [job_row(ended=NOW - 3 * DAY),
                                       job_row(ended=NOW - 2 * DAY - 1)])
    kept = await insert_jobs(storage, [job_row(ended=NOW - 2 * DAY + 60),
                                       # created long ago, ended an hour ago: kept
                                       job_row(ended=NOW - 3600, created=NOW - 30 * DAY)])
    report = await prune(storage, tmp_path, Policy(keep_days=2))
    assert remaining_ids() == set(kept)
    assert sorted(report.job_ids) == sorted(gone)


@pytest.mark.gen_test(timeout=60)
async def test_keep_per_worker_keeps_the_newest_ends(storage, tmp_path):
    """Per worker, the newest N finished jobs by end time stay (not by id); the unfinished
    ones count for nothing."""
    # Ids in creation order; ends in another order: the third created ended last.
    ends = [NOW - 5 * DAY, NOW - 1 * DAY, NOW - 4 * DAY, NOW - 3 * DAY, NOW - 2 * DAY]
    a_jobs = await insert_jobs(storage, [job_row("a", ended=end) for end in ends])
    b_jobs = await insert_jobs(storage, [job_row("b"), job_row("b")])
    running = await insert_jobs(storage, [job_row("a", status="active")])
    await prune(storage, tmp_path, Policy(keep_per_worker=2))
    # a: the two latest ends are the 2nd (1 day ago) and the 5th (2 days ago)
    assert remaining_ids() == {a_jobs[1], a_jobs[4], *b_jobs, *running}


@pytest.mark.gen_test(timeout=60)
async def test_both_limits_each_choose(storage, tmp_path):
    """With both options a job goes when either lets it go."""
    old, recent = await insert_jobs(storage, [job_row("a", ended=NOW - 9 * DAY),
                                              job_row("a", ended=NOW - 3600)])
    extra = await insert_jobs(storage, [job_row("b", ended=NOW - 7200 - i) for i in range(3)])
    await prune(storage, tmp_path, Policy(keep_days=5, keep_per_worker=2))
    assert remaining_ids() == {recent, extra[0], extra[1]}


@pytest.mark.gen_test(timeout=60)
async def test_nothing_goes_without_options(storage, tmp_path):
    ids = await insert_jobs(storage, [job_row(ended=NOW - 900 * DAY) for _ in range(3)])
    report = await prune(storage, tmp_path, Policy())
    assert remaining_ids() == set(ids) and report.counts["jobs"] == 0


@pytest.mark.gen_test(timeout=60)
async def test_a_schedules_last_runs_are_spared(storage, tmp_path):
    """The jobs of a schedule's newest RUNS_SHOWN runs, and its newest RUNS_SHOWN jobs by
    schedule_id, stay; older ones go. A deleted schedule's jobs are spared no more."""
    shown = models.RUNS_SHOWN
    by_run = await insert_jobs(storage, [job_row("s") for _ in range(shown + 2)])
    by_id = await insert_jobs(storage, [job_row("t", schedule_id="S2")
                                        for _ in range(shown + 2)])
    orphans = await insert_jobs(storage, [job_row("t", schedule_id="S3") for _ in range(2)])

    def runs(tx):
        models.Schedule.create(id="S2", worker="t", cron="@daily", timezone="UTC",
                               missed="skip", overlap="allow", owner="admin", created=OLD)
        for i, job_id in enumerate(by_run):  # the first ones are the oldest runs
            models.ScheduleRun.create(schedule="S1", scheduled_for=OLD + i, fired=OLD + i,
                                      job=job_id, outcome="started")
    await storage.transaction(runs)
    await prune(storage, tmp_path, Policy(keep_days=1))
    assert remaining_ids() == set(by_run[2:]) | set(by_id[2:])
    assert not set(orphans) & remaining_ids()  # S3 was deleted: its jobs are old jobs


@pytest.mark.gen_test(timeout=60)
async def test_a_job_goes_with_its_data_chunks_and_folder(storage, tmp_path):
    """Its job_data (result, usage series), all its chunks (a big log: more than one
    transaction's worth, between small ones) and its folder go; another job's stay."""
    small, big, other, kept = await insert_jobs(
        storage, [job_row(), job_row(), job_row(), job_row(ended=NOW)])
    chunks = {small: 3, big: DELETE_BATCH + 7, other: 1, kept: 2}

    def fill(tx):
        for job_id in (small, big, kept):
            for kind in ("result", "usage"):
                models.JobData.create(job=job_id, kind=kind, value="{}")
        rows = [{"job": job_id, "stream": stream, "first_seq": seq, "count": 1, "data": b"x"}
                for job_id, count in chunks.items() for stream in (0, 1)
                for seq in range(count)]
        models.Chunk.insert_many(rows).execute()
    await storage.transaction(fill)
    folder = tmp_path / "jobs" / big
    folder.mkdir(parents=True)
    (folder / "left-behind.txt").write_text("x")
    report = await prune(storage, tmp_path, Policy(keep_days=1))
    assert report.counts["jobs"] == 3
    assert remaining_ids() == {kept}
    assert {row.job for row in models.JobData.select()} == {kept}
    assert models.Chunk.select().where(models.Chunk.job != kept).count() == 0
    assert models.Chunk.select().where(models.Chunk.job == kept).count() == 4
    assert not folder.exists()


@pytest.mark.gen_test(timeout=60)
async def test_other_kinds_go_as_documented(storage, tmp_path, make_user):
    """Audit entries past keep-audit-days; sessions and tokens spent longer than their grace;
    finished deliveries and schedule runs past keep-days (beyond the shown runs); code
    versions no job uses beyond a worker's newest."""
    make_user("ann", "operator")
    session_gone = NOW - retention.SESSION_GRACE_DAYS * DAY - 1
    token_gone = NOW - retention.TOKEN_GRACE_DAYS * DAY - 1
    recent = NOW - 3600
    from jobjoker import codestore

    def fill(tx):
        for i, when in enumerate([NOW - 4 * DAY, NOW - 3 * DAY + 60]):
            models.AuditEntry.create(id=i + 1, time=when, action="job.delete")
        for name, expires, revoked in [("s-expired", session_gone, None),
                                       ("s-revoked", NOW + DAY, session_gone),
                                       ("s-recent", recent, None), ("s-live", NOW + DAY, None)]:
            models.Session.create(id=name, user="ann", expires=expires, revoked=revoked)
        for name, expires, revoked in [("t-expired", token_gone, None),
                                       ("t-revoked", None, token_gone),
                                       ("t-recent", recent, recent), ("t-forever", None, None)]:
            models.Token.create(id=name, user="ann", name=name, secret_hash="0" * 64,
                                role="viewer", expires=expires, revoked=revoked)
        for state, finished in [("delivered", NOW - 3 * DAY), ("failed", NOW - 3 * DAY),
                                ("delivered", recent), ("pending", None)]:
            models.WebhookDelivery.create(hook="h", job="j", body="{}", state=state,
                                          created=NOW - 4 * DAY, finished=finished)
        for i in range(models.RUNS_SHOWN + 3):  # the 3 oldest are beyond the shown ones
            models.ScheduleRun.create(schedule="S", scheduled_for=NOW - 5 * DAY + i,
                                      fired=NOW - 5 * DAY + i, outcome="failed")
        versions = codestore.KEEP_NEWEST + 2
        for i in range(versions):
            codestore.record(tx, "v", "%064x" % i, "source %d" % i, saved=NOW - versions + i)
        # the oldest version is still used by a job: it stays
        jobstore.insert(tx, [job_row("v", status="idle", code_hash="%064x" % 0)])
    await storage.transaction(fill)
    report = await prune(storage, tmp_path, Policy(keep_days=2, keep_audit_days=3))
    assert report.counts == {"jobs": 0, "audit_entries": 1, "sessions": 2, "tokens": 2,
                             "webhook_deliveries": 2, "schedule_runs": 3, "code_versions": 1}
    assert [e.id for e in models.AuditEntry.select() if e.action != "retention.prune"] == [2]
    assert {s.id for s in models.Session.select()} == {"s-recent", "s-live"}
    assert {t.id for t in models.Token.select()} == {"t-recent", "t-forever"}
    assert sorted(d.state for d in models.WebhookDelivery.select()) == ["delivered", "pending"]
    assert models.ScheduleRun.select().count() == models.RUNS_SHOWN
    assert "%064x" % 0 in {v.hash for v in models.WorkerVersion.select()}
    assert "%064x" % 1 not in {v.hash for v in models.WorkerVersion.select()}


@pytest.mark.gen_test(timeout=60)
async def test_audit_entries_stay_without_the_option(storage, tmp_path):
    await storage.transaction(lambda tx: models.AuditEntry.create(time=1.0, action="x"))
    await prune(storage, tmp_path, Policy(keep_days=1))
    assert models.AuditEntry.select().count() == 1


@pytest.mark.gen_test(timeout=60)
async def test_dry_run_lists_and_changes_nothing(storage, tmp_path):
    ids = await insert_jobs(storage, [job_row() for _ in range(5)])
    kept = await insert_jobs(storage, [job_row(status="queued")])

    def fill(tx):
        models.AuditEntry.create(time=1.0, action="x")
    await storage.transaction(fill)
    report = await pruner.plan(storage, Policy(keep_days=1, keep_audit_days=1), now=NOW,
                               shown=3)
    assert report.dry_run and report.counts["jobs"] == 5 and report.counts["audit_entries"] == 1
    assert report.job_ids == ids[:3]
    assert remaining_ids() == set(ids) | set(kept)
    assert models.AuditEntry.select().count() == 1


@pytest.mark.gen_test(timeout=60)
async def test_a_prune_is_recorded_once_in_the_audit_trail(storage, tmp_path):
    from jobjoker.audit import AuditLog
    await insert_jobs(storage, [job_row() for _ in range(3)])
    await prune(storage, tmp_path, Policy(keep_days=1), audit=AuditLog(storage))
    entries = list(models.AuditEntry.select().where(models.AuditEntry.action
                                                    == "retention.prune"))
    assert [e.detail for e in entries] == ["3 jobs"]
    # a prune that removes nothing records nothing
    await prune(storage, tmp_path, Policy(keep_days=1), audit=AuditLog(storage))
    assert models.AuditEntry.select().where(
        models.AuditEntry.action == "retention.prune").count() == 1


@pytest.mark.gen_test(timeout=60)
async def test_many_jobs_go_in_many_short_transactions(storage, tmp_path, monkeypatch):
    """More jobs than a pass reads, in batches: all go, none of the spared."""
    monkeypatch.setattr(pruner, "JOB_PASS", 7)
    monkeypatch.setattr(pruner, "JOB_BATCH", 3)
    ids = await insert_jobs(storage, [job_row() for _ in range(25)])
    idle = await insert_jobs(storage, [job_row(status="idle")])
    report = await prune(storage, tmp_path, Policy(keep_days=1), shown=10)
    assert remaining_ids() == set(idle)
    assert report.counts["jobs"] == 25 and report.job_ids == ids[:10]


@pytest.mark.gen_test(timeout=60)
async def test_the_server_prunes_every_interval(storage, tmp_path):
    """The Pruner runs by itself, again after each interval, and stops."""
    keeper = pruner.Pruner(storage, LogStore(), tmp_path / "jobs", Policy(keep_days=1), 0.2,
                           audit=None).start()
    try:
        for _ in range(2):  # a job that ended long ago goes, then another one
            [job_id] = await insert_jobs(storage, [job_row(ended=1_000_000.0)])

            async def gone():
                return job_id not in await storage.read(remaining_ids)
            await poll(gone, 30, "the pruner to delete job %s" % job_id)
    finally:
        await keeper.stop()
    assert keeper._task is None


# --- a real server ------------------------------------------------------------------------

@pytest.fixture
def config_overrides():
    return {"keep_per_worker": 1, "prune_interval": 0}


@pytest.mark.gen_test(timeout=120)
async def test_a_real_finished_job_goes_with_everything(server, api, run_job, config):
    """Two real jobs with logs: the server's prune (keep-per-worker 1) deletes the older one,
    its entries, data and folder; the newer stays whole; the metrics count it."""
    first = await run_job("TestWorker", {"sleep": 0}, wait=True)
    second = await run_job("TestWorker", {"sleep": 0}, wait=True)
    assert first["status"] == second["status"] == "done"
    assert models.Chunk.select().where(models.Chunk.job == first["id"]).count() > 0
    folder = config.jobs_dir / first["id"]
    os.makedirs(folder, exist_ok=True)
    (folder / "stray").write_text("left by the job")
    report = await server.pruner.prune_once()
    assert report.job_ids == [first["id"]]
    assert (await api("GET", "/jobs/%s" % first["id"])).code == 404
    assert models.Chunk.select().where(models.Chunk.job == first["id"]).count() == 0
    assert models.JobData.select().where(models.JobData.job == first["id"]).count() == 0
    assert not folder.exists()
    assert (await api("GET", "/jobs/%s/log" % second["id"])).code == 200
    assert models.Chunk.select().where(models.Chunk.job == second["id"]).count() > 0
    audit = await api("GET", "/audit?action=retention.prune")
    assert [entry["detail"] for entry in audit.data] == ["1 jobs"]
    metrics = (await api("GET", "/metrics")).body.decode()
    assert 'jobjoker_pruned_total{kind="jobs"} 1.0' in metrics
