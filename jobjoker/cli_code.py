"""The client subcommands about the code a job ran and running a job again.

Contract: ``rerun_command`` (``jobjoker rerun ID [-p KEY=VALUE] [--no-start] [--timeout S]
[-f]``) runs a job again through ``POST /jobs/ID/rerun`` and prints the new job's id (or follows
it like ``run --follow``); what the server says of secret parameters it did not copy goes to
standard error as a warning. ``code_command`` (``jobjoker code ID [--diff]``) prints the source
a job ran, or a unified diff from it to today's worker file. ``workers_versions`` (``jobjoker
workers versions NAME``) lists a worker's kept versions. Each returns an exit code of
``jobjoker.cli_actions``.
"""
from jobjoker.cli_actions import EXIT_OK, follow_job, print_outcome
from jobjoker.cli_output import format_time, print_table, show, warn
from jobjoker.cli_retries import retry_settings


def rerun_command(client, args):
    parameters = {**(args.params_json or {}), **dict(args.param)}
    job, message = client.rerun(args.job, parameters or None, start=not args.no_start,
                                timeout=args.timeout, with_message=True,
                                retry=retry_settings(args))
    if "not copied" in message:
        warn(message.partition("; ")[2] or message)
    if args.follow and not args.no_start:
        if args.json:
            return follow_job(client, job["id"], args, {"log", "response"})
        return follow_job(client, job["id"], args, {"log"}, then=print_outcome)
    show(job, args, lambda job: print(job["id"]))
    return EXIT_OK


def code_command(client, args):
    if args.diff:
        diff = client.job_code(args.job, diff=True)
        show(diff, args, lambda diff: print(
            "the worker %s was deleted; its code as job %s ran it: jobjoker code %s"
            % (diff["worker"], diff["job"], diff["job"]) if diff["worker_deleted"] else
            "job %s ran today's code of %s" % (diff["job"], diff["worker"]) if diff["current"]
            else diff["diff"], end="" if diff["diff"] else "\n"))
        return EXIT_OK
    code = client.job_code(args.job)
    show(code, args, lambda code: print(code["source"], end=""))
    return EXIT_OK


def workers_versions(client, args):
    show(client.worker_versions(args.name, args.offset, args.limit), args,
         lambda versions: print_table(
             ["HASH", "SAVED", "SAVED BY", "JOBS"],
             [[v["hash"][:12], format_time(v["saved"]), v["saved_by"] or "(found on disk)",
               v["jobs"]] for v in versions]))
    return EXIT_OK
