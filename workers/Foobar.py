from jobjoker import Worker


class Foobar(Worker):
    """Logs 'foobar' and responds 'foobar': the smallest worker there is."""

    def run(self):
        self.log("foobar")
        self.response("foobar")
