import time

from jobjoker import Worker


class MyWorker(Worker):
    """Says what this worker does: the worker list shows this text."""

    def run(self):
        # self.params holds the job's parameters; get_parameter gives one, with a default.
        count = int(self.get_parameter("count", 3))
        for i in range(count):
            if not self.is_active():  # a stop was requested: end cleanly
                return
            self.log("step %d of %d" % (i + 1, count))  # print() lands in the log too
            time.sleep(1)
        self.response({"steps": count})  # the job's result, kept apart from its log
