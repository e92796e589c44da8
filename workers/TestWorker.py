import subprocess

from jobjoker import Worker


class TestWorker(Worker):
    """Counts: for each i below `count` (default 1), while active, logs 'log i', responds
    'response i', then runs the `sleep` command for `sleep` seconds (default 1)."""

    def run(self):
        count = int(self.get_parameter("count", 1))
        seconds = self.get_parameter("sleep", 1)
        for i in range(count):
            if not self.is_active():
                break
            self.log("log %d" % i)
            self.response("response %d" % i)
            subprocess.run(["sleep", str(seconds)])
