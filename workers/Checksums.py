import glob
import subprocess

from jobjoker import Worker


class Checksums(Worker):
    """Computes the SHA-256 of every file matching `pattern` and responds with a
    {file: digest} object. A stop request ends it cleanly between two files."""

    parameters = {
        "pattern": {"type": "string", "default": "*.py", "label": "Files",
                    "description": "a glob, relative to the workers folder"},
    }

    def run(self):
        files = sorted(glob.glob(self.params["pattern"]))
        self.log("%d files to check" % len(files))
        digests = {}
        for path in files:
            if not self.is_active():
                self.log("stop requested: %d of %d files done" % (len(digests), len(files)))
                return
            result = subprocess.run(["sha256sum", path], capture_output=True, text=True,
                                    check=True)  # a failure raises: the job ends as error
            digests[path] = result.stdout.split()[0]
            print("checked", path)  # print() lands in the log too
        subprocess.run(["du", "-ch"] + files)  # a child's own output goes to the log as well
        self.response(digests)
