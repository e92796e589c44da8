"""How a job ended (jobjoker.outcome): when, from which evidence, and the closing entry."""
import os

from jobjoker import jobdir
from jobjoker.outcome import end_time, ended_message
from jobjoker.states import JobStatus

NOW = 1_800_000_000.0


def test_the_exit_record_gives_the_end_time_and_needs_no_word():
    assert end_time({"returncode": 0, "time": NOW - 20}, {"time": NOW - 21}, NOW - 30,
                    NOW) == (NOW - 20, None)


def test_without_an_exit_record_the_run_end_record_comes_first():
    when, evidence = end_time({"returncode": None, "lost": "gone"}, {"time": NOW - 21},
                              NOW - 30, NOW)
    assert when == NOW - 21 and evidence == "its run-end record (the exit was not seen)"


def test_then_the_last_output_then_when_the_end_was_found():
    lost = {"returncode": None, "signal": None, "lost": "gone"}
    # A run-end record of an older runner has no time.
    assert end_time(lost, {"outcome": "done"}, NOW - 30, NOW) == (
        NOW - 30, "its last output (the exit was not seen)")
    when, evidence = end_time(lost, None, None, NOW)
    assert when == NOW and "the exit was not seen and it left no trace" in evidence


def test_an_end_time_is_never_in_the_future():
    assert end_time({"time": NOW + 5}, None, None, NOW) == (NOW, None)
    assert end_time({}, {"time": NOW + 5}, None, NOW)[0] == NOW
    assert end_time({}, None, NOW + 5, NOW)[0] == NOW


def test_the_closing_entry_says_where_its_time_came_from_only_when_unseen():
    assert ended_message(JobStatus.DONE, "exit code 0", 2.5) == \
        "ENDED done (exit code 0) after 2.500 s"
    assert ended_message(JobStatus.ERROR, "exit status unknown", 2.5, "its last output") == \
        "ENDED error (exit status unknown) after 2.500 s; end time from its last output"


def test_the_last_output_is_the_latest_change_of_the_job_files(tmp_path):
    folder = tmp_path / "job"
    jobdir.create(folder)
    for name, when in ((jobdir.LOG_SPOOL, NOW - 50), (jobdir.RESPONSE_SPOOL, NOW - 40),
                       (jobdir.EXIT_RECORD, NOW - 1)):
        (folder / name).write_text("x")
        os.utime(folder / name, (when, when))
    owners = jobdir.owners_for()
    assert jobdir.last_modified(folder, jobdir.OUTPUT_FILES, owners) == NOW - 40
    (folder / jobdir.RUN_END).symlink_to(folder / jobdir.EXIT_RECORD)  # refused, not followed
    assert jobdir.last_modified(folder, jobdir.OUTPUT_FILES, owners) == NOW - 40
    assert jobdir.last_modified(tmp_path / "gone", jobdir.OUTPUT_FILES, owners) is None
