import subprocess

from jobjoker import Worker


class TestWorker(Worker):
    """Counts: for each i below `count` (default 1), while active, logs 'log i', responds
    'response i', then runs the `sleep` command for `sleep` seconds (default 1)."""

    parameters = {
        "count": {"type": "integer", "default": 1, "minimum": 0,
                  "description": "How many times to log, respond and sleep"},
        "sleep": {"type": "number", "default": 1, "minimum": 0,
                  "description": "Seconds to sleep after each"},
    }

    def run(self):
        for i in range(self.params["count"]):
            if not self.is_active():
                break
            self.log("log %d" % i)
            self.response("response %d" % i)
            subprocess.run(["sleep", str(self.params["sleep"])])
