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

    def append_blocks(self, job_id, stream, blocks, offsets=None):
        """Store ``blocks`` (each ending with a newline) after the stream's last entry.

        ``offsets`` maps Job spool-offset fields to their new values, committed with the entries
        so that ingestion resumes exactly where it stopped. Returns the first new sequence number.
        """
        counter = getattr(models.Job, COUNTERS[stream])
        pieces = [piece for block in blocks for piece in split_block(block)]
        db = models.database
        published = []
        with db.atomic():
            query = models.Job.select(counter).where(models.Job.id == job_id)
            if isinstance(db.obj, peewee.MySQLDatabase):
                query = query.for_update()  # several servers may append to one job
            first = query.scalar()
            if first is None:
                raise NotFound("no job with id %r" % job_id)
            seq = first
            rows = []
            for piece in pieces:
                count = piece.count(b"\n")
                rows.append({"job": job_id, "stream": STREAMS[stream], "first_seq": seq,
                             "count": count, "data": piece})
                published.append((seq, piece, count))
                seq += count
            if rows:
                models.Chunk.insert_many(rows).execute()
            update = dict(offsets or {})
            update[COUNTERS[stream]] = counter + (seq - first)
            models.Job.update(**update).where(models.Job.id == job_id).execute()
        for seq_start, piece, count in published:
            self.hub.publish({"type": "entries", "job_id": job_id, "stream": stream,
                              "seq": seq_start, "block": piece, "count": count})
        return first

    def append_message(self, job_id, stream, message):
        """Store one entry holding ``message``; returns its sequence number."""
        return self.append_blocks(job_id, stream, [spool.encode_entry(message)])

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
