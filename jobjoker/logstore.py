"""Storing and reading a job's log and response entries, in chunks.

Contract: ``append_blocks(job_id, stream, blocks, offsets)`` stores blocks of entries (spool
format, see ``jobjoker.spool``) as consecutive chunks after the stream's last entry, bumps the
job's entry counter and, when given, its spool offsets, all in one transaction; then publishes one
``entries`` event per block. Sequence numbers are assigned here and only here, so entries arriving
from the job's spool and from ``POST /jobs/ID/log`` share one order. An append costs the same at
entry 10 and at entry 10 million. ``read(job_id, stream, offset, limit)`` returns a page of
entries with one index seek.
"""
import peewee

from jobjoker import models, spool
from jobjoker.errors import BadRequest, NotFound

STREAMS = {"log": 0, "response": 1}
COUNTERS = {"log": "log_count", "response": "response_count"}
CHUNK_BYTES = 64 * 1024  # a stored chunk holds about this much: big enough to be cheap to
# insert, small enough that a page read decodes little more than it returns


def split_block(block, limit=CHUNK_BYTES):
    """``block`` cut at entry boundaries into pieces of about ``limit`` bytes."""
    pieces = []
    start = 0
    while len(block) - start > limit:
        cut = block.rfind(b"\n", start, start + limit) + 1
        if cut <= start:  # a single entry longer than the limit: keep it whole
            cut = block.index(b"\n", start + limit) + 1
        pieces.append(block[start:cut])
        start = cut
    if start < len(block):
        pieces.append(block[start:])
    return pieces


class LogStore:
    """Appends and pages of job log and response entries."""

    def __init__(self, hub):
        self.hub = hub
        self._statements = {}

    def _sql(self, key, build):
        """SQL text that Peewee generated once for this database, reused with new parameters.

        Building a query costs Peewee ~50 us; an append runs three of them, on the hot path of
        every job's log. Parameters are still bound by the driver, never formatted in.
        """
        db = models.database.obj
        cache_key = (id(db), key)
        if cache_key not in self._statements:
            self._statements[cache_key] = build().sql()[0]
        return self._statements[cache_key]

    def append_blocks(self, job_id, stream, blocks, offsets=None):
        """Store ``blocks`` (each ending with a newline) after the stream's last entry.

        ``offsets`` maps Job spool-offset fields to their new values, committed with the entries
        so that ingestion resumes exactly where it stopped. Returns the first new sequence number.
        """
        Job, Chunk = models.Job, models.Chunk
        counter = getattr(Job, COUNTERS[stream])
        offsets = offsets or {}
        db = models.database
        for_update = isinstance(db.obj, peewee.MySQLDatabase)  # several servers may append
        select_sql = self._sql(("select", stream), lambda: (
            Job.select(counter).where(Job.id == "?").for_update(for_update)))
        insert_sql = self._sql("insert", lambda: Chunk.insert(
            job="?", stream=0, first_seq=0, count=0, data=b""))
        update_sql = self._sql(("update", stream, tuple(sorted(offsets))), lambda: (
            Job.update({counter: counter + 1, **{getattr(Job, f): 0 for f in sorted(offsets)}})
            .where(Job.id == "?")))
        pieces = [piece for block in blocks for piece in split_block(block)]
        published = []
        with db.atomic():
            row = db.execute_sql(select_sql, (job_id,)).fetchone()
            if row is None:
                raise NotFound("no job with id %r" % job_id)
            first = seq = row[0]
            rows = []
            for piece in pieces:
                count = piece.count(b"\n")
                rows.append((job_id, STREAMS[stream], seq, count, piece))
                published.append((seq, piece, count))
                seq += count
            if rows:
                db.cursor().executemany(insert_sql, rows)
            db.execute_sql(update_sql, (seq - first, *[offsets[f] for f in sorted(offsets)],
                                        job_id))
        for seq_start, piece, count in published:
            self.hub.publish({"type": "entries", "job_id": job_id, "stream": stream,
                              "seq": seq_start, "block": piece, "count": count})
        return first

    def append_message(self, job_id, stream, message, when=None):
        """Store one entry holding ``message`` (stamped ``when``); returns its sequence number."""
        return self.append_blocks(job_id, stream, [spool.encode_entry(message, when)])

    def read(self, job_id, stream, offset=0, limit=1000):
        """Entries ``offset`` .. ``offset + limit - 1`` of a stream, as dicts, in order."""
        if offset < 0 or limit < 0:
            raise BadRequest("offset and limit must not be negative")
        Chunk = models.Chunk
        stream_id = STREAMS[stream]
        if limit == 0:
            return []
        # The chunk holding entry `offset` is the last one that starts at or before it.
        start = (Chunk.select(peewee.fn.MAX(Chunk.first_seq))
                 .where(Chunk.job == job_id, Chunk.stream == stream_id,
                        Chunk.first_seq <= offset)
                 .scalar())
        if start is None:
            start = 0
        chunks = (Chunk.select(Chunk.first_seq, Chunk.data)
                  .where(Chunk.job == job_id, Chunk.stream == stream_id,
                         Chunk.first_seq >= start, Chunk.first_seq < offset + limit)
                  .order_by(Chunk.first_seq))
        entries = []
        for chunk in chunks:
            decoded = spool.decode_entries(bytes(chunk.data))
            skip = max(0, offset - chunk.first_seq)
            entries.extend(decoded[skip:])
        return entries[:limit]

    def delete(self, job_id):
        """Remove every entry of a job."""
        models.Chunk.delete().where(models.Chunk.job == job_id).execute()
