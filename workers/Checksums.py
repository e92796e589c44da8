import glob
import subprocess

from jobjoker import Worker


class Checksums(Worker):
    """Computes the SHA-256 of every file matching `pattern`: its result is a {file: digest}
    object, its response a one-line summary. A stop request ends it cleanly between two files;
    one still running after ten minutes is stopped and ends as error."""

    timeout = 600  # seconds from the start; a job may give its own ("timeout" in POST /jobs)
    parameters = {
        "pattern": {"type": "string", "default": "*.py", "label": "Files",
                    "description": "a glob, relative to the workers folder"},
    }

    def run(self):
        files = sorted(glob.glob(self.params["pattern"]))
        self.log("%d files to check" % len(files))
        digests = {}
        for done, path in enumerate(files):
            if not self.is_active():
                self.log("stop requested: %d of %d files done" % (len(digests), len(files)))
                return
            self.progress(done, len(files), path)  # the page's bar, with the time left
            result = subprocess.run(["sha256sum", path], capture_output=True, text=True,
                                    check=True)  # a failure raises: the job ends as error
            digests[path] = result.stdout.split()[0]
            print("checked", path)  # print() lands in the log too
        self.progress(len(files), len(files), "all checked")
        subprocess.run(["du", "-ch"] + files)  # a child's own output goes to the log as well
        self.result(digests)  # one JSON value: GET /jobs/ID/result, jobjoker run --wait
        self.response("%d files checked" % len(digests))
