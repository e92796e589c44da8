import glob
import subprocess

from jobjoker import Worker


class LineCount(Worker):
    """Counts the lines of the files matching `pattern` and responds with {file: lines}."""

    parameters = {
        "pattern": {"type": "string", "required": True, "label": "Files",
                    "description": "a glob, relative to the workers folder"},
        "limit": {"type": "integer", "default": 100, "minimum": 1, "maximum": 10000,
                  "description": "at most this many files"},
        "order": {"type": "string", "enum": ["name", "lines"], "default": "name"},
        "verbose": {"type": "boolean", "default": False},
        "api_key": {"type": "string", "secret": True,
                    "description": "not needed here; it shows how a secret is kept"},
    }

    def run(self):
        files = sorted(glob.glob(self.params["pattern"]))[:self.params["limit"]]
        counts = {}
        for path in files:
            with open(path, "rb") as f:
                counts[path] = f.read().count(b"\n")
            if self.params["verbose"]:
                self.log("%s: %d lines" % (path, counts[path]))
        if self.params["order"] == "lines":
            counts = dict(sorted(counts.items(), key=lambda item: -item[1]))
        if "api_key" in self.params:  # absent unless the job gives one: it has no default
            self.log("using key %s" % self.params["api_key"])  # stored as ********
            subprocess.run(["echo", "a child saw " + self.params["api_key"]])  # the same
        self.response(counts)
