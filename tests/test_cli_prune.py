"""``jobjoker prune [--dry-run]`` (jobjoker.prune_command) and the retention options: the command
opens the server's database from the server's options, a dry run lists and changes nothing, a
real run deletes, and a bad value of an option is refused naming it.
"""
import json
import time

import pytest

from jobjoker import cli, jobstore, models
from jobjoker.config import load_config
from jobjoker.errors import StartupError

pytestmark = pytest.mark.both_databases
DAY = 86400.0


@pytest.fixture
def filled(database_url, tmp_path):
    """A migrated database holding 4 finished jobs ended 10 days ago, one queued and one
    idle job as old, and an audit entry 10 days old; returns (the server's flags, the ids of
    the finished jobs, of the others)."""
    db = models.open_database(database_url)
    old = time.time() - 10 * DAY
    finished = [jobstore.new_job_id() for _ in range(4)]
    others = [jobstore.new_job_id() for _ in range(2)]
    rows = [{"id": job_id, "worker": "w", "status": "done", "created": old, "stoptime": old}
            for job_id in finished]
    rows += [{"id": job_id, "worker": "w", "status": status, "created": old}
             for job_id, status in zip(others, ("queued", "idle"))]
    with db.atomic():
        for row in rows:
            models.Job.create(**row)
        models.AuditEntry.create(time=old, action="job.delete")
    db.close()
    models.database.initialize(None)
    flags = ["--data-dir", str(tmp_path / "data"), "--database", database_url,
             "--workers-dir", str(tmp_path / "workers")]
    return flags, finished, others


def stored(database_url):
    db = models.open_database(database_url)
    try:
        return ({job_id for job_id, in models.Job.select(models.Job.id).tuples()},
                models.AuditEntry.select().where(models.AuditEntry.action == "job.delete")
                .count())
    finally:
        db.close()
        models.database.initialize(None)


def test_dry_run_lists_what_would_go_and_changes_nothing(filled, database_url, capsys):
    flags, finished, others = filled
    assert cli.main(["prune", "--dry-run", "--keep-days", "3", "--keep-audit-days", "5",
                     "--show", "2"] + flags) == 0
    out = capsys.readouterr().out
    assert out.startswith("would remove (keep days: 3, keep per worker: all, "
                          "keep audit days: 5):")
    assert "  jobs                4\n" in out and "  audit entries       1\n" in out
    assert "jobs: %s %s (and 2 more)" % tuple(finished[:2]) in out
    assert stored(database_url) == (set(finished) | set(others), 1)


def test_prune_deletes_and_reports(filled, database_url, capsys, monkeypatch):
    """Options come from the environment too, as for the server."""
    flags, finished, others = filled
    monkeypatch.setenv("JOBJOKER_KEEP_DAYS", "3")
    assert cli.main(["prune", "--json"] + flags) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["dry_run"] is False
    assert report["counts"]["jobs"] == 4 and report["counts"]["audit_entries"] == 0
    assert sorted(report["job_ids"]) == sorted(finished)
    assert stored(database_url) == (set(others), 1)
    db = models.open_database(database_url)
    try:
        assert [(e.actor, e.target, e.detail) for e in models.AuditEntry.select().where(
            models.AuditEntry.action == "retention.prune")] == [
            (None, None, "4 jobs; by jobjoker prune on the server's machine")]
    finally:
        db.close()
        models.database.initialize(None)


def test_without_options_nothing_goes(filled, database_url, capsys):
    flags, finished, others = filled
    assert cli.main(["prune"] + flags) == 0
    assert "  jobs                0\n" in capsys.readouterr().out
    assert stored(database_url) == (set(finished) | set(others), 1)


@pytest.mark.parametrize("option", ["--keep-days", "--keep-per-worker", "--keep-audit-days"])
@pytest.mark.parametrize("value", ["0", "-3", "1.5", "ten", ""])
def test_a_bad_value_is_refused_naming_the_option(filled, database_url, capsys, option,
                                                  value):
    flags, finished, others = filled
    assert cli.main(["prune", option + "=" + value] + flags) == 2
    err = capsys.readouterr().err
    name = option[2:].replace("-", "_")
    assert "option %s: %s=%r is not a valid positive whole number" % (option, name, value) \
        in err
    assert stored(database_url) == (set(finished) | set(others), 1)


def test_the_server_refuses_them_too(tmp_path):
    with pytest.raises(StartupError, match="environment JOBJOKER_KEEP_PER_WORKER: "
                                           "keep_per_worker='0' is not a valid positive"):
        load_config({"data_dir": tmp_path}, environ={"JOBJOKER_KEEP_PER_WORKER": "0"})
    (tmp_path / "c.toml").write_text("keep_audit_days = 2.5\n")
    with pytest.raises(StartupError, match="keep_audit_days=2.5 is not a valid positive"):
        load_config({"data_dir": tmp_path}, environ={}, config_file=tmp_path / "c.toml")
    config = load_config({"data_dir": tmp_path, "keep_days": "30"}, environ={})
    assert (config.keep_days, config.keep_per_worker, config.prune_interval) == (30, None, 3600)


def test_a_database_of_another_schema_is_refused(tmp_path, capsys):
    url = "sqlite:///%s" % (tmp_path / "empty.sqlite3")
    assert cli.main(["prune", "--data-dir", str(tmp_path / "data"), "--database", url]) == 1
    assert "schema version None" in capsys.readouterr().err
