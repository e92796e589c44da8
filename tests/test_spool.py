"""The entry format and the parsing of a shared log spool (entries blocks + raw output)."""
import random

import pytest

from jobjoker import spool


@pytest.mark.parametrize("message", [
    "", "plain", "two\nlines", "back\\slash", "\\n literal", "tab\there", "ünïcödé ✓",
    "trailing\\", "\n", "\\\\n\n\\",
])
def test_escape_round_trip(message):
    block = spool.encode_entry(message, when=12.5)
    assert block.count(b"\n") == 1
    assert spool.decode_entries(block) == [{"message": message, "time": 12.5}]


def test_frame_raw_lines_escapes_backslashes():
    block = spool.frame_raw_lines([b"a\\b", b"", b"c"], 1.0)
    assert [e["message"] for e in spool.decode_entries(block)] == ["a\\b", "", "c"]


def test_complete_part():
    assert spool.complete_part(b"a\nb\nc") == b"a\nb\n"
    assert spool.complete_part(b"abc") == b""


def entries(block):
    return [e["message"] for e in spool.decode_entries(block)]


def test_parse_headed_blocks_and_raw_lines_in_file_order():
    data = (b"raw one\n"
            + spool.frame_block(spool.encode_entry("entry a") + spool.encode_entry("entry b"))
            + b"raw two\n")
    consumed, block = spool.parse_log_spool(data, when=5.0)
    assert consumed == len(data)
    assert entries(block) == ["raw one", "entry a", "entry b", "raw two"]


def test_parse_waits_for_an_incomplete_raw_line_unless_final():
    data = spool.frame_block(spool.encode_entry("x")) + b"partial"
    consumed, block = spool.parse_log_spool(data)
    assert entries(block) == ["x"]
    assert consumed == len(data) - len(b"partial")
    consumed, block = spool.parse_log_spool(data, final=True)
    assert consumed == len(data)
    assert entries(block) == ["x", "partial"]


def test_parse_waits_for_an_incomplete_block():
    whole = spool.frame_block(spool.encode_entry("first") + spool.encode_entry("second"))
    for cut in range(1, len(whole)):
        consumed, block = spool.parse_log_spool(whole[:cut])
        assert consumed == 0 and block == b"", cut
    assert entries(spool.parse_log_spool(whole)[1]) == ["first", "second"]


def test_a_block_appended_in_the_middle_of_a_raw_line_ends_that_line():
    data = b"progress 10%" + spool.frame_block(spool.encode_entry("entry")) + b" 20%\n"
    consumed, block = spool.parse_log_spool(data)
    assert consumed == len(data)
    assert entries(block) == ["progress 10%", "entry", " 20%"]


def test_a_very_long_raw_line_is_stored_without_waiting_for_its_newline():
    data = b"x" * spool.MAX_ENTRY_BYTES
    consumed, block = spool.parse_log_spool(data)
    assert consumed == len(data)
    assert entries(block) == ["x" * spool.MAX_ENTRY_BYTES]


def test_random_interleavings_parse_to_exactly_what_was_written():
    rng = random.Random(7)
    expected, data = [], b""
    for i in range(500):
        if rng.random() < 0.5:
            messages = ["e%d.%d%s" % (i, k, rng.choice(["", "\n2nd", "\\"]))
                        for k in range(rng.randint(1, 4))]
            data += spool.frame_block(b"".join(spool.encode_entry(m) for m in messages))
            expected += messages
        else:
            line = "raw %d %s" % (i, rng.choice(["", "\\x", "ü"]))
            data += line.encode() + b"\n"
            expected.append(line)
    # Feed it in random pieces, as a reader racing the writers would see it.
    got, offset = [], 0
    while offset < len(data):
        visible = data[:offset + rng.randint(1, 300)]
        consumed, block = spool.parse_log_spool(visible[offset:])
        got += entries(block)
        offset += consumed
        if visible == data and consumed == 0:
            break
    assert got == expected


def test_raw_crlf_lines_are_stored_without_their_carriage_return():
    data = b"windows\r\n\r\nprogress 10%\rprogress 20%\r\nbare\r"
    consumed, block = spool.parse_log_spool(data, final=True)
    assert consumed == len(data)
    # CRLF ends a line; a bare \r (a progress rewrite) stays for the page to show as a terminal.
    assert entries(block) == ["windows", "", "progress 10%\rprogress 20%", "bare\r"]


def test_a_long_raw_line_is_not_cut_between_the_two_halves_of_a_crlf():
    data = b"x" * (spool.MAX_ENTRY_BYTES - 1) + b"\r"
    consumed, block = spool.parse_log_spool(data)
    assert entries(block) == ["x" * (spool.MAX_ENTRY_BYTES - 1)]
    consumed, more = spool.parse_log_spool(data[consumed:] + b"\ny\n")
    assert entries(more) == ["", "y"]  # the \r went with its \n: no stray \r stored


def test_a_secret_read_from_a_crlf_file_is_masked_once_its_line_loses_the_carriage_return():
    from jobjoker.parameters import Masker
    data = b"key s3cret\r\nkey s3cret\r and more\n"
    _, block = spool.parse_log_spool(data, masker=Masker(["s3cret\r"]))
    assert entries(block) == ["key ********", "key ******** and more"]


def test_a_progress_line_rewritten_with_cr_is_stored_up_to_its_last_cr_without_its_newline():
    consumed, block = spool.parse_log_spool(b"\r 10%\r 20%\r 3")
    assert entries(block) == ["\r 10%\r 20%\r"]  # the page shows " 20%"; " 3" waits
    rest = b" 30%\r 40%\n"
    assert entries(spool.parse_log_spool(rest)[1]) == [" 30%\r 40%"]
    # A \r that may be a CRLF's first half waits for what follows it.
    assert spool.parse_log_spool(b"line\r") == (0, b"")
    assert entries(spool.parse_log_spool(b"line\r\n")[1]) == ["line"]


def test_a_progress_cut_never_splits_a_secret():
    from jobjoker.parameters import Masker
    masker = Masker(["s3cr\ret"])
    data = b"key s3cr\ret and\r more"
    assert spool.parse_log_spool(data, masker=masker) == (0, b"")  # it would cut the secret
    assert entries(spool.parse_log_spool(data + b"\n", masker=masker)[1]) == [
        "key ******** and\r more"]
    consumed, block = spool.parse_log_spool(b"key s3cr\ret\r 10%\r more", masker=masker)
    assert entries(block) == ["key ********\r"]
