"""docs/api.md's limits against the code and the OpenAPI document, so that none can drift.

The reference states every limit in its Limits table (with the default of the option that sets
it), the page sizes in its Paging table, and some of them again where a route or an object needs
them. Each statement is read here and compared with the constant the code uses, the option's
default in ``Config``, and the OpenAPI document where it states the same limit. The page sizes'
defaults and a token name's length have no constant: a real server is asked for them.
"""
import re

import pytest

from jobjoker import controls, jobspec, logsearch, usage_series
from jobjoker.accounts import MAX_PASSWORD, MAX_TOKEN_NAME, MIN_PASSWORD, USERNAME
from jobjoker.config import Config
from jobjoker.config_options import OPTIONS
from jobjoker.app import routes
from jobjoker.openapi import openapi_document
from jobjoker.paging import MAX_OFFSET, largest
from jobjoker.secretbox import MAX_SECRETS_BYTES
from jobjoker.spool import MAX_ENTRY_BYTES
from jobjoker.workers import NAME_PATTERN
from tests.support import ROOT

API_MD = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
UNITS = {"KiB": 1024, "MiB": 1024 ** 2, "GiB": 1024 ** 3}
DEFAULTS = Config()
# The Paging table's columns: the OpenAPI parameter of their `limit`, and the largest page by
# default (--max-page, --max-entry-page).
PAGED = {
    "`GET /jobs`": ("JobsLimit", largest("jobs", DEFAULTS)),
    "`GET /jobs/ID/log`, `GET /jobs/ID/response`": ("EntriesLimit", largest("entries", DEFAULTS)),
    "`GET /audit`": ("AuditLimit", largest("audit", DEFAULTS)),
}
# Limits stated again in another table: (its section, its row, the Limits table's row).
RESTATED = [
    ("### Errors and statuses", "422 Unprocessable Entity", "a password"),
    ("### User", "`username`", "a username"),
    ("### Token", "`name`", "a token's `name`"),
    ("### `POST /jobs/batch`", "`jobs`", "jobs in one `POST /jobs/batch`"),
    ("### `POST /users`", "`username`", "a username"),
    ("### `POST /users`", "`password`", "a password"),
    ("### `POST /users`", "422", "a password"),
    ("### `PUT /users/NAME/password`", "422", "a password"),
    ("### `POST /tokens`", "`name`", "a token's `name`"),
    ("### `POST /tokens`", "400", "a token's `name`"),
]


# --- reading the reference --------------------------------------------------------------------

def section(heading):
    """The text under the heading line ``heading`` (``### Limits``), up to the next heading of
    its level or above."""
    lines = API_MD.splitlines()
    assert heading in lines, "docs/api.md has no heading %r" % heading
    start = lines.index(heading) + 1
    level = len(heading) - len(heading.lstrip("#"))
    end = next((i for i in range(start, len(lines))
                if re.match(r"#{1,%d} " % level, lines[i])), len(lines))
    return "\n".join(lines[start:end])


def table(text):
    """The rows of the Markdown tables in ``text``, as ``{first cell: {column heading: cell}}``."""
    rows = {}
    for block in re.findall(r"(?m)(?:^\|.*\n?)+", text):
        header, _, *cells = [[cell.strip() for cell in line.strip().strip("|").split("|")]
                             for line in block.strip().splitlines()]
        for row in cells:
            assert row[0] not in rows, "two rows %r in one section" % row[0]
            rows[row[0]] = dict(zip(header[1:], row[1:]))
    assert rows, "no table in %r" % text[:80]
    return rows


def numbers(text):
    """The quantities ``text`` states, in order: ``10 MiB`` is 10485760, ``2^53`` is 2 ** 53."""
    return [float(base) ** int(power or 1) * UNITS.get(unit, 1) for base, power, unit in
            re.findall(r"(?<![\w.])(\d+(?:\.\d+)?)(?:\^(\d+))?(?: (KiB|MiB|GiB)\b)?", text)]


def limits_table():
    return table(section("### Limits"))


def paging_limits():
    """``{column of the Paging table: [default, largest] of its `limit`}``."""
    return {column: numbers(cell) for column, cell in
            table(section("## Paging"))["`limit`"].items()}


def lengths(pattern):
    """The shortest and the longest string of letters that ``pattern`` matches whole."""
    fits = [n for n in range(2000) if re.fullmatch(pattern, "a" * n)]
    return [fits[0], fits[-1]]


def length_limits(*schemas):
    """``[minLength, maxLength]``, which all of these OpenAPI schemas state alike."""
    stated = {(schema["minLength"], schema["maxLength"]) for schema in schemas}
    assert len(stated) == 1, "the document states one limit two ways: %s" % stated
    return list(stated.pop())


def option(cell):
    """The option a "Set by" cell names (``max_body_size``), or None for a fixed limit."""
    named = re.fullmatch(r"`--([a-z-]+)`.*", cell)
    return named and named.group(1).replace("-", "_")


# --- the Limits table --------------------------------------------------------------------------

def code_limits():
    """What each row of the Limits table must state, from the code."""
    return {
        "a request body": [DEFAULTS.max_body_size],
        "a request body before sign-in (`POST /session`)": [DEFAULTS.max_public_body_size],
        "request bodies and large replies held at once, all requests together":
            [DEFAULTS.max_body_memory],
        "a page of log or response entries, in bytes of messages": [DEFAULTS.max_page_bytes],
        "the text of a log search (`?search=`)": [logsearch.MAX_SEARCH_CHARS],
        "how long a log search scans before it answers": [DEFAULTS.search_seconds],
        "what all stream subscribers hold together": [DEFAULTS.stream_memory],
        "open client connections": [],  # it depends on the machine's limit
        "open connections from one client address (not with `--trust-proxy`)":
            [DEFAULTS.max_connections_per_address],
        "a connection waiting for its next request": [DEFAULTS.idle_connection_timeout],
        "the body of `PUT /workers/NAME` (worker code), instead": [DEFAULTS.max_worker_size],
        "a job's `parameters`, as compact UTF-8 JSON": [DEFAULTS.max_parameters_size],
        "the nesting of a job's `parameters`": [jobspec.MAX_PARAMETERS_DEPTH],
        "the values of a job's secret parameters, as UTF-8 JSON": [MAX_SECRETS_BYTES],
        "jobs in one `POST /jobs/batch`": [1, DEFAULTS.max_batch],
        "`limit`, a page's size": [],  # the Paging table's
        "`offset`": [0, MAX_OFFSET],
        "one log or response entry, as stored (UTF-8, newlines escaped, after its time stamp)":
            [MAX_ENTRY_BYTES],
        "a job's stored log (not its response)": [DEFAULTS.max_log_bytes],
        "a job's result (`self.result()`), as compact UTF-8 JSON": [DEFAULTS.max_result_bytes],
        "a job's `progress_message`": [controls.MAX_MESSAGE_CHARS],
        "a job's resource series (`GET /jobs/ID/usage`)": [usage_series.DEFAULT_CAP],
        "a username": lengths(USERNAME.pattern),
        "a password": [MIN_PASSWORD, MAX_PASSWORD],
        "a token's `name`": [1, MAX_TOKEN_NAME],
        "a worker name": lengths(NAME_PATTERN.pattern),
    }


def test_the_limits_table_states_what_the_code_does():
    rows, expected = limits_table(), code_limits()
    assert sorted(rows) == sorted(expected), "a row to check here, or one gone from the table"
    for name, row in rows.items():
        if expected[name] is not None:
            assert numbers(row["Value"]) == expected[name], name


def test_a_limit_set_by_an_option_shows_its_default():
    set_by = {name: option(row["Set by"]) for name, row in limits_table().items()}
    assert set(set_by.values()) - {None} == {"max_body_size", "max_worker_size",
                                              "max_parameters_size", "max_log_bytes",
                                              "max_batch", "max_page", "max_public_body_size",
                                              "max_body_memory", "max_page_bytes",
                                              "stream_memory", "max_connections",
                                              "max_connections_per_address",
                                              "idle_connection_timeout", "search_seconds",
                                              "max_result_bytes"}
    for name, row in limits_table().items():
        if set_by[name] is None:
            assert row["Set by"] == "fixed", name
            continue
        named = re.findall(r"`--([a-z-]+)`", row["Set by"])
        assert all(word.replace("-", "_") in OPTIONS for word in named), name
        if row["Value"].startswith("see "):  # the page sizes: the Paging table's, checked there
            continue
        if not numbers(row["Value"]):  # --max-connections: a share of the machine's limit
            assert getattr(DEFAULTS, set_by[name]) == 0, name
            continue
        # A range states its upper end as the option's default.
        assert numbers(row["Value"])[-1] == getattr(DEFAULTS, set_by[name]), name


def test_the_openapi_document_states_the_same_limits():
    document = openapi_document(routes())
    schemas, parameters = document["components"]["schemas"], document["components"]["parameters"]
    batch = schemas["JobBatch"]["properties"]["jobs"]
    offset = parameters["Offset"]["schema"]
    stated = {
        "jobs in one `POST /jobs/batch`": [batch["minItems"], batch["maxItems"]],
        "`offset`": [offset["minimum"], offset["maximum"]],
        "a username": lengths(schemas["User"]["properties"]["username"]["pattern"]),
        "a worker name": lengths(parameters["WorkerName"]["schema"]["pattern"]),
        "a password": length_limits(schemas["UserCreate"]["properties"]["password"],
                                    schemas["PasswordChange"]["properties"]["password"]),
        "a token's `name`": length_limits(schemas["TokenCreate"]["properties"]["name"],
                                          schemas["Token"]["properties"]["name"]),
    }
    rows = limits_table()
    for name, values in stated.items():
        assert numbers(rows[name]["Value"]) == values, name


# --- the Paging table and what restates it ------------------------------------------------------

def test_the_paging_table_states_the_largest_pages_and_the_documents_defaults():
    parameters = openapi_document(routes())["components"]["parameters"]
    stated = paging_limits()
    assert sorted(stated) == sorted(PAGED)
    for column, (parameter, most) in PAGED.items():
        schema = parameters[parameter]["schema"]
        assert stated[column] == [schema["default"], schema["maximum"]], column
        assert schema["maximum"] == most, column
    offset = re.search(r"`offset` at most (\S+?)\.", section("## Paging"))
    assert offset and numbers(offset.group(1)) == [MAX_OFFSET]


def test_routes_restate_the_paging_tables_page_sizes():
    stated = paging_limits()
    jobs_query = table(section("### `GET /jobs`"))["`offset`, `limit`"]
    assert numbers(" ".join(jobs_query.values())) == stated["`GET /jobs`"]
    audit = re.findall(r"\(default (\d+), at most (\d+)\)", section("### `GET /audit`"))
    assert [numbers(" ".join(found)) for found in audit] == [stated["`GET /audit`"]]


def test_other_tables_restate_the_limits_tables_values():
    rows = limits_table()
    for heading, row, limit in RESTATED:
        cells = " ".join(table(section(heading))[row].values())
        assert numbers(cells) == numbers(rows[limit]["Value"]), (heading, row)
    worker_name = table(section("### Worker"))["`name`"]["Meaning"]
    assert worker_name.startswith("`^%s$`" % NAME_PATTERN.pattern)


def test_every_option_default_the_reference_names_is_the_codes():
    named = re.findall(r"`--([a-z][a-z-]*)`(?: seconds)? \(([^)]*)\)", API_MD)
    assert len(named) >= 5, named  # the throttle, the slow-callback warning, the sizes
    for name, value in named:
        name = name.replace("-", "_")
        assert name in OPTIONS, "docs/api.md names --%s, which is no option" % name
        assert numbers(value)[:1] == [getattr(DEFAULTS, name)], (name, value)


# --- what only a server can say ------------------------------------------------------------------

MANY = '''from jobjoker import Worker


class Many(Worker):
    """Logs `count` entries."""

    def run(self):
        for i in range(self.params["count"]):
            self.log("entry %d" % i)
'''


@pytest.mark.gen_test(timeout=120)
async def test_the_server_pages_and_names_tokens_as_documented(api, write_worker,
                                                              wait_for_status):
    stated = paging_limits()
    entries = "`GET /jobs/ID/log`, `GET /jobs/ID/response`"
    # One more of each than its default page holds: jobs and their audit entries, log entries.
    batch_size = int(max(stated["`GET /jobs`"][0], stated["`GET /audit`"][0])) + 1
    created = await api("POST", "/jobs/batch", {"jobs": [{"worker": "Foobar"}] * batch_size})
    assert created.code == 201, created
    write_worker("Many", MANY)
    many = await api("POST", "/jobs", {"worker": "Many", "start": True,
                                       "parameters": {"count": int(stated[entries][0]) + 1}})
    assert many.code == 201, many
    log = "/jobs/%s/log" % (await wait_for_status(many.data[0]["id"], ("done",)))["id"]
    for column, path in (("`GET /jobs`", "/jobs"), (entries, log), ("`GET /audit`", "/audit")):
        default, largest = map(int, stated[column])
        page = await api("GET", path)
        assert page.code == 200 and len(page.data) == default, (path, page)
        assert (await api("GET", "%s?limit=%d" % (path, largest))).code == 200, path
        refused = await api("GET", "%s?limit=%d" % (path, largest + 1))
        assert refused.code == 400 and "at most %d" % largest in refused.json["message"], path

    shortest, longest = map(int, numbers(limits_table()["a token's `name`"]["Value"]))
    for name, code in (("x" * shortest, 201), ("x" * longest, 201),
                       ("x" * (shortest - 1), 400), ("x" * (longest + 1), 400)):
        reply = await api("POST", "/tokens", {"name": name})
        assert reply.code == code, (len(name), reply)
