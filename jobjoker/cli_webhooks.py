"""``jobjoker webhooks list|add|edit|delete|deliveries|test|rotate-secret`` (admins).

Contract: ``add_webhook_commands(commands, command)`` adds the ``webhooks`` group to the
``jobjoker`` parser (``command`` is ``cli_commands``' maker of a client subcommand); each action
calls one ``Client`` method (``jobjoker.client_webhooks``) and prints what it got, as a table or
(``--json``) as JSON, returning an exit code of ``jobjoker.cli_actions``. ``add`` and
``rotate-secret`` print the webhook's secret first, on a line of its own, since it is shown
this once. A hook's scope is ``--worker NAME``, ``--schedule ID`` or (by default, or
``--server`` in ``edit``) the whole server.
"""
from jobjoker.cli_actions import EXIT_OK, EXIT_USAGE
from jobjoker.cli_output import format_time, print_fields, print_table, show
from jobjoker.webhooks import STATUSES


def _scope(args):
    """``(scope, scope_value)`` from the scope options, None when none was given."""
    if args.worker:
        return "worker", args.worker
    if args.schedule:
        return "schedule", args.schedule
    if getattr(args, "server", False):
        return "server", None
    return None


def _show_secret(hook, args, what):
    show(hook, args, lambda hook: print(
        "%s\n(webhook %s %s: copy its secret now, it is not shown again; it signs each "
        "delivery: see docs/webhooks.md)" % (hook["secret"], hook["id"], what)))


def webhooks_list(client, args):
    show(client.webhooks(), args, lambda hooks: print_table(
        ["ID", "URL", "SCOPE", "STATUSES", "ENABLED", "DESCRIPTION"],
        [[h["id"], h["url"], h["scope"] + (":" + h["scope_value"] if h["scope_value"] else ""),
          ",".join(h["statuses"]), "yes" if h["enabled"] else "no", h["description"] or ""]
         for h in hooks]))
    return EXIT_OK


def webhooks_add(client, args):
    scope, value = _scope(args) or ("server", None)
    hook = client.create_webhook(args.hook_url, scope, value, args.status or None,
                                 args.description, enabled=not args.disabled)
    _show_secret(hook, args, "created")
    return EXIT_OK


def webhooks_edit(client, args):
    changes = {name: value for name, value in (
        ("url", args.hook_url), ("statuses", args.status or None),
        ("description", args.description)) if value is not None}
    if _scope(args):
        changes["scope"], changes["scope_value"] = _scope(args)
    if args.enable or args.disable:
        changes["enabled"] = bool(args.enable)
    show(client.update_webhook(args.hook, **changes), args, print_fields)
    return EXIT_OK


def webhooks_delete(client, args):
    show(client.delete_webhook(args.hook), args,
         lambda hook: print("webhook %s deleted" % hook["id"]))
    return EXIT_OK


def webhooks_rotate(client, args):
    _show_secret(client.rotate_webhook_secret(args.hook), args, "has a new secret")
    return EXIT_OK


def webhooks_test(client, args):
    show(client.test_webhook(args.hook), args, lambda delivery: print(
        "test delivery %s sent to webhook %s: jobjoker webhooks deliveries %s"
        % (delivery["id"], args.hook, args.hook)))
    return EXIT_OK


def webhooks_deliveries(client, args):
    show(client.webhook_deliveries(args.hook, args.offset, args.limit), args,
         lambda deliveries: print_table(
             ["ID", "JOB", "STATE", "ATTEMPTS", "LAST", "CREATED", "FINISHED"],
             [[d["id"], d["job"] or "(test)", d["state"], d["attempts"],
               d["last_error"] or d["last_code"] or "-", format_time(d["created"]),
               format_time(d["finished"])] for d in deliveries]))
    return EXIT_OK


def _scope_options(parser, server=False):
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--worker", metavar="NAME", help="only the jobs of this worker")
    group.add_argument("--schedule", metavar="ID", help="only the jobs of this schedule")
    if server:
        group.add_argument("--server", action="store_true", help="every job of the server")
    parser.add_argument("--status", action="append", choices=STATUSES,
                        help="only jobs that end so; repeat for more (default: all)")
    parser.add_argument("--description", metavar="TEXT")


def add_webhook_commands(commands, command):
    """The ``webhooks`` group."""
    group = commands.add_parser("webhooks", help="list, add, change and delete the URLs told "
                                                 "of job ends (admins)",
                                description="URLs told of job ends (admins): see "
                                            "docs/webhooks.md.")
    group.set_defaults(handler=lambda args: group.print_help() or EXIT_USAGE)
    webhooks = group.add_subparsers(metavar="COMMAND")
    command(webhooks, "list", webhooks_list, "list the webhooks")
    add = command(webhooks, "add", webhooks_add, "add a webhook; its secret is printed once")
    # Not "url": that is the server's own option (--url), beside it in args.
    add.add_argument("hook_url", metavar="URL", help="an http:// or https:// URL")
    _scope_options(add)
    add.add_argument("--disabled", action="store_true", help="create it disabled")
    edit = command(webhooks, "edit", webhooks_edit, "change, enable or disable a webhook")
    edit.add_argument("hook", metavar="ID")
    edit.add_argument("--hook-url", metavar="URL", help="a new URL for it")
    _scope_options(edit, server=True)
    able = edit.add_mutually_exclusive_group()
    able.add_argument("--enable", action="store_true")
    able.add_argument("--disable", action="store_true")
    command(webhooks, "delete", webhooks_delete, "delete a webhook with its deliveries"
            ).add_argument("hook", metavar="ID")
    deliveries = command(webhooks, "deliveries", webhooks_deliveries,
                         "list a webhook's deliveries, newest first")
    deliveries.add_argument("hook", metavar="ID")
    deliveries.add_argument("--limit", type=int, default=50, help="at most this many "
                                                                  "(default 50)")
    deliveries.add_argument("--offset", type=int, default=0, help="skip this many (default 0)")
    command(webhooks, "test", webhooks_test, "send a webhook a test delivery"
            ).add_argument("hook", metavar="ID")
    command(webhooks, "rotate-secret", webhooks_rotate, "give a webhook a new secret, printed "
                                                        "once").add_argument("hook",
                                                                             metavar="ID")
