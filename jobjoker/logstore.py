"""Storing and reading a job's log and response entries, in chunks.

Contract: like the job store, this runs on ``Storage`` threads. ``append_blocks(tx, job_id,
stream, blocks, offsets)`` stores blocks of entries (spool format, see ``jobjoker.spool``) as
consecutive chunks after the stream's last entry and counts them on the job's row (with the
spool offsets they were read up to, when given), within the caller's transaction, and announces
one ``entries`` event per chunk through ``tx`` (published after commit). Sequence numbers are
assigned here and only here, so entries arriving from the job's spool and from
``POST /jobs/ID/log`` share one order. An append costs the same at entry 10 and at entry 10
million. ``read(job_id, stream, offset, limit)`` returns the entries numbered ``offset`` ..
``offset + limit - 1`` (each with its ``seq``) with one index seek. A deleted job's chunks go in
batches (``delete_some``), so that deleting a big log never holds the writer for long.

Bounds, enforced here so that every source of entries obeys them:
- An entry longer than ``MAX_ENTRY_BYTES`` is split into consecutive entries.
- A log past ``max_log_bytes`` keeps its head and its tail: once the head (half the cap) is
  full, a marker entry is stored, and from then on the oldest chunks after the marker are
  deleted whenever the log holds more than the cap. Sequence numbers never shift: the dropped
  entries leave a gap of numbers after the marker (the job row counts them, and the marker says
  how many), so offsets that readers and followers hold stay true.
"""
import peewee

from jobjoker import jobstore, models, spool
from jobjoker.errors import BadRequest
from jobjoker.spool import MAX_ENTRY_BYTES
from jobjoker.statements import executemany, param

STREAMS = {"log": 0, "response": 1}
CHUNK_BYTES = 64 * 1024  # a stored chunk holds about this much: big enough to be cheap to
# insert, small enough that a page read decodes little more than it returns
ENTRY_OVERHEAD = 48  # bytes of JSON around a message in a reply: seq, time, keys
DELETE_BATCH = 256  # chunks (about 16 MiB) deleted per transaction when a job goes


def entry_size(entry):
    """About the bytes an entry costs in a reply: its message and the JSON around it."""
    return len(entry["message"]) + ENTRY_OVERHEAD


def split_long_entries(block, limit=MAX_ENTRY_BYTES):
    """``block`` with every entry longer than ``limit`` bytes cut into consecutive entries.

    Each piece keeps the entry's time stamp. A cut never falls inside a UTF-8 character or an
    escape sequence, so every piece decodes on its own.
    """
    if len(block) <= limit or max(map(len, block.split(b"\n"))) <= limit:
        return block  # the common case costs one scan in C
    out = []
    for line in block.split(b"\n")[:-1]:
        if len(line) <= limit:
            out.append(line)
            continue
        tab = line.find(b"\t") + 1
        stamp, message = line[:tab], line[tab:]
        room = max(limit - len(stamp), 16)
        while len(message) > room:
            cut = room
            while cut > 1 and (message[cut] & 0xC0) == 0x80:  # inside a UTF-8 character
                cut -= 1
            slashes = 0
            while slashes < cut and message[cut - 1 - slashes] == 0x5C:
                slashes += 1
            if slashes % 2:  # an escape (\\ or \n) would be cut in two
                cut -= 1
            out.append(stamp + message[:cut])
            message = message[cut:]
        out.append(stamp + message)
    return b"\n".join(out) + b"\n"


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


def _size(n):
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return ("%d %s" if unit == "bytes" else "%.1f %s") % (n, unit)
        n /= 1024


def marker_text(cap, dropped):
    """The message of the entry that stands where a capped log dropped its middle."""
    kept = "its first and last %s are kept" % _size(cap // 2)
    if not dropped:
        return ("[JobJoker] this log reached half of its cap (%s, --max-log-bytes): %s, "
                "entries in between are dropped" % (_size(cap), kept))
    return ("[JobJoker] %d entries were dropped here: the log passed its cap (%s, "
            "--max-log-bytes); %s" % (dropped, _size(cap), kept))


class LogStore:
    """Appends and pages of job log and response entries."""

    def __init__(self, max_log_bytes=0):
        self.max_log_bytes = max_log_bytes  # 0: no cap

    def append_blocks(self, tx, job_id, stream, blocks, offsets=None):
        """Store ``blocks`` (each ending with a newline) after the stream's last entry.

        ``offsets`` maps Job spool-offset fields to their new values, committed with the entries
        so that ingestion resumes exactly where it stopped. Returns the first new sequence number.
        """
        Chunk = models.Chunk
        lock = isinstance(models.database.obj, peewee.MySQLDatabase)  # servers may share a job
        first, log_bytes, marker = jobstore.lock_counters(job_id, stream, lock)
        # Only a piece longer than a chunk can hold an entry longer than the limit.
        pieces = [piece for block in blocks for cut in split_block(block)
                  for piece in (split_block(split_long_entries(cut))
                                if len(cut) > MAX_ENTRY_BYTES else (cut,))]
        capped = stream == "log" and self.max_log_bytes > 0
        had_marker = marker is not None
        at = None
        if capped and marker is None:
            pieces, at = self._place_marker(pieces, self.max_log_bytes // 2 - log_bytes)
        rows, seq, added = [], first, 0
        for index, piece in enumerate(pieces):
            if capped and marker is None and index == at:
                marker = seq
            count = piece.count(b"\n")
            rows.append({"job": job_id, "stream": STREAMS[stream], "seq": seq, "count": count,
                         "data": piece})
            seq += count
            added += len(piece)
        if rows:
            executemany("insert chunk", lambda: Chunk.insert(
                job=param("job"), stream=param("stream"), first_seq=param("seq"),
                count=param("count"), data=param("data")), rows)
        jobstore.add_entries(job_id, stream, seq - first, added if stream == "log" else 0,
                             offsets or {})
        if capped and marker is not None and log_bytes + added > self.max_log_bytes:
            self._drop_oldest_tail(job_id, marker, log_bytes + added)
        elif capped and marker is not None and not had_marker:
            jobstore.set_log_cap(job_id, marker=marker)
        for row in rows:
            tx.publish({"type": "entries", "job_id": job_id, "stream": stream,
                        "seq": row["seq"], "block": row["data"], "count": row["count"]})
        return first

    def _place_marker(self, pieces, head_room):
        """``pieces`` with the marker entry inserted where the head is full, and its index
        (None when the head still has room for all of them)."""
        for index, piece in enumerate(pieces):
            if len(piece) <= head_room:
                head_room -= len(piece)
                continue
            cut = piece.rfind(b"\n", 0, max(head_room, 0)) + 1  # the last whole entry that fits
            marker = spool.encode_entry(marker_text(self.max_log_bytes, 0))
            rest = [piece[:cut]] if cut else []
            rest.append(marker)
            if cut < len(piece):
                rest.append(piece[cut:])
            return pieces[:index] + rest + pieces[index + 1:], index + (1 if cut else 0)
        return pieces, None

    def _drop_oldest_tail(self, job_id, marker, log_bytes):
        """Delete the oldest chunks after the marker until the log is within its cap."""
        Chunk = models.Chunk
        dropped = jobstore.log_dropped(job_id)
        while log_bytes > self.max_log_bytes:
            oldest = list(Chunk.select(Chunk.first_seq, Chunk.count,
                                       peewee.fn.LENGTH(Chunk.data).alias("size"))
                          .where(Chunk.job == job_id, Chunk.stream == 0,
                                 Chunk.first_seq > marker)
                          .order_by(Chunk.first_seq).limit(16))
            if not oldest:
                break
            for chunk in oldest:
                if log_bytes <= self.max_log_bytes:
                    break
                Chunk.delete().where(Chunk.job == job_id, Chunk.stream == 0,
                                     Chunk.first_seq == chunk.first_seq).execute()
                log_bytes -= chunk.size
                dropped += chunk.count
        text = spool.encode_entry(marker_text(self.max_log_bytes, dropped))
        marker_row = Chunk.get_or_none(Chunk.job == job_id, Chunk.stream == 0,
                                       Chunk.first_seq == marker)
        if marker_row is not None:  # keep the marker's time stamp, update its words
            text = spool.restamp(text, bytes(marker_row.data))
            log_bytes += len(text) - len(marker_row.data)
            Chunk.update(data=text).where(Chunk.job == job_id, Chunk.stream == 0,
                                          Chunk.first_seq == marker).execute()
        jobstore.set_log_cap(job_id, marker=marker, log_bytes=log_bytes, dropped=dropped)

    def append_message(self, tx, job_id, stream, message, when=None):
        """Store one entry holding ``message`` (stamped ``when``); returns its sequence number."""
        return self.append_blocks(tx, job_id, stream, [spool.encode_entry(message, when)])

    def read(self, job_id, stream, offset=0, limit=1000, max_bytes=None):
        """The entries numbered ``offset`` .. ``offset + limit - 1``, as dicts with their
        ``seq``, in order. Fewer when the range holds the gap of a capped log or its end, or
        when it stopped at about ``max_bytes`` (see ``read_page``)."""
        return self.read_page(job_id, stream, offset, limit, max_bytes)[0]

    def read_page(self, job_id, stream, offset=0, limit=1000, max_bytes=None):
        """``(entries, stopped)``: ``read``'s entries, and whether they stopped short at about
        ``max_bytes`` of messages (``entry_size``; at least one entry is returned), with more
        entries in the range after them."""
        if offset < 0 or limit < 0:
            raise BadRequest("offset and limit must not be negative")
        Chunk = models.Chunk
        stream_id = STREAMS[stream]
        if limit == 0:
            return [], False
        start = self._chunk_holding(job_id, stream_id, offset)
        if start is None:
            start = 0
        end = offset + limit
        chunks = (Chunk.select(Chunk.first_seq, Chunk.data)
                  .where(Chunk.job == job_id, Chunk.stream == stream_id,
                         Chunk.first_seq >= start, Chunk.first_seq < end)
                  .order_by(Chunk.first_seq))
        most_chunks = None
        if max_bytes is not None:
            # Some drivers fetch a whole result at once: ask for no more chunks than a page
            # of big ones (tiny chunks then make a short page, which says it stopped).
            most_chunks = max_bytes // CHUNK_BYTES + 2
            chunks = chunks.limit(most_chunks)
        entries, size, rows = [], 0, 0
        for first_seq, data in chunks.tuples():
            rows += 1
            decoded = spool.decode_entries(bytes(data))
            begin = max(offset, first_seq)
            for index, entry in enumerate(decoded[begin - first_seq:end - first_seq]):
                if max_bytes is not None and entries and size >= max_bytes:
                    return entries, True
                entry["seq"] = begin + index
                entries.append(entry)
                size += entry_size(entry)
        stopped = rows == most_chunks and bool(entries) and entries[-1]["seq"] + 1 < end
        return entries, stopped

    @staticmethod
    def _chunk_holding(job_id, stream_id, offset):
        """The first_seq of the chunk holding entry ``offset``: the last one that starts at or
        before it (None when none does)."""
        Chunk = models.Chunk
        return (Chunk.select(peewee.fn.MAX(Chunk.first_seq))
                .where(Chunk.job == job_id, Chunk.stream == stream_id, Chunk.first_seq <= offset)
                .scalar())

    def read_from(self, job_id, stream, offset, limit=1000, max_bytes=None):
        """Up to ``limit`` entries (and about ``max_bytes``) from ``offset`` on, across the gap
        of a capped log: the first one may have a higher ``seq`` than ``offset`` (the ones
        between were dropped)."""
        entries = self.read(job_id, stream, offset, limit, max_bytes)
        if entries:
            return entries
        following = (models.Chunk.select(peewee.fn.MIN(models.Chunk.first_seq))
                     .where(models.Chunk.job == job_id,
                            models.Chunk.stream == STREAMS[stream],
                            models.Chunk.first_seq > offset)
                     .scalar())
        return [] if following is None else self.read(job_id, stream, following, limit,
                                                      max_bytes)

    def read_blocks(self, job_id, stream, offset, max_bytes):
        """Stored blocks of consecutive entries from ``offset`` on, as they are stored (no
        decoding): ``[(first seq, block, count)]``, up to ``max_bytes`` in all (at least one
        block). The first block starts at ``offset``, or past the gap of a capped log; the
        list stops before a gap."""
        Chunk = models.Chunk
        stream_id = STREAMS[stream]
        start = self._chunk_holding(job_id, stream_id, offset)
        chunks = (Chunk.select(Chunk.first_seq, Chunk.count, Chunk.data)
                  .where(Chunk.job == job_id, Chunk.stream == stream_id,
                         Chunk.first_seq >= (offset if start is None else start))
                  .order_by(Chunk.first_seq)
                  .limit(max(1, max_bytes // CHUNK_BYTES) + 1))
        blocks, size = [], 0
        for seq, count, data in chunks.tuples():
            data = bytes(data)
            if seq + count <= offset:
                continue  # the chunk before the gap: all of it was sent
            if seq < offset:
                data, count, seq = spool.skip_entries(data, offset - seq), seq + count - offset, \
                    offset
            if blocks and (seq != blocks[-1][0] + blocks[-1][2] or size + len(data) > max_bytes):
                break  # a gap (the next read starts past it), or enough
            if len(data) > max_bytes:  # a small page: cut the chunk at an entry boundary
                data = split_block(data, max_bytes)[0]
                count = data.count(b"\n")
                blocks.append((seq, data, count))
                break
            blocks.append((seq, data, count))
            size += len(data)
        return blocks

    @staticmethod
    def delete_some(tx, job_id, batch=DELETE_BATCH):
        """Delete up to about ``batch`` chunks of a job; returns how many went (0: none left)."""
        Chunk = models.Chunk
        deleted = 0
        for stream_id in STREAMS.values():
            where = (Chunk.job == job_id) & (Chunk.stream == stream_id)
            last = (Chunk.select(Chunk.first_seq).where(where).order_by(Chunk.first_seq)
                    .offset(batch - 1).limit(1).scalar())
            if last is not None:
                where &= Chunk.first_seq <= last
            deleted += Chunk.delete().where(where).execute()
            if deleted >= batch:
                break
        return deleted

    @staticmethod
    def delete_of_jobs(tx, job_ids, batch=DELETE_BATCH):
        """Delete about ``batch`` chunks at most of the jobs ``job_ids`` (at most
        ``jobstore.MAX_IDS_PER_STATEMENT``), in their order: the whole logs that fit, in one
        statement, else part of the first one (``delete_some``). Returns the ids whose chunks
        may not all be gone yet, in order."""
        Chunk = models.Chunk
        counts = dict(Chunk.select(Chunk.job, peewee.fn.COUNT(Chunk.first_seq))
                      .where(Chunk.job.in_(job_ids)).group_by(Chunk.job).tuples())
        whole, budget = [], batch
        for job_id in job_ids:
            if counts.get(job_id, 0) > budget:
                break
            whole.append(job_id)
            budget -= counts.get(job_id, 0)
        if not whole:  # the first one has more than a batch: part of it now, the rest later
            LogStore.delete_some(tx, job_ids[0], batch)
            return list(job_ids)
        with_chunks = [job_id for job_id in whole if counts.get(job_id)]
        if with_chunks:
            Chunk.delete().where(Chunk.job.in_(with_chunks)).execute()
        return list(job_ids[len(whole):])

    @staticmethod
    def jobs_with_orphaned_entries(limit=100):
        """Ids of jobs whose row is gone but some of whose chunks are left (a deletion that a
        crash cut short)."""
        Chunk, Job = models.Chunk, models.Job
        return [job_id for (job_id,) in (
            Chunk.select(Chunk.job).distinct()
            .where(Chunk.job.not_in(Job.select(Job.id))).limit(limit).tuples())]
