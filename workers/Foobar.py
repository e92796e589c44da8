from jobjoker import Worker


class Foobar(Worker):
    """Logs 'foobar' and responds 'foobar': the smallest worker there is."""

    parameters = {}  # it takes none: a job that gives one is refused, not run as if it had none

    def run(self):
        self.log("foobar")
        self.response("foobar")
