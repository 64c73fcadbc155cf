"""The kubelet log endpoint's line selection (tailLines, sinceTime, timestamps) over stored log lines."""

from pathlib import Path

from zoocluster.logserver import parse_line, select_lines, stream

LINES = [
    b"2026-01-01T10:00:00.000000001Z stdout first\n",
    b"2026-01-01T10:00:05.000000000Z stderr second has  two spaces\n",
    b"2026-01-01T10:00:09.500000000Z stdout third\n",
]


def test_parse_line_keeps_the_text_exactly():
    assert parse_line(LINES[1]) == ("2026-01-01T10:00:05.000000000Z", b"second has  two spaces\n")


def test_tail_since_and_timestamps():
    assert select_lines(LINES, {}) == [b"first\n", b"second has  two spaces\n", b"third\n"]
    assert select_lines(LINES, {"tailLines": "1"}) == [b"third\n"]
    assert select_lines(LINES, {"tailLines": "0"}) == []
    assert select_lines(LINES, {"sinceTime": "2026-01-01T10:00:05Z"}) == [
        b"second has  two spaces\n",
        b"third\n",
    ]
    assert select_lines(LINES, {"timestamps": "true", "tailLines": "1"}) == [
        b"2026-01-01T10:00:09.500000000Z third\n"
    ]


def test_stream_without_follow_returns_complete_lines_only(tmp_path: Path):
    log = tmp_path / "0.log"
    log.write_bytes(b"".join(LINES) + b"2026-01-01T10:00:10.0Z stdout partial")
    assert list(stream(log, None, {})) == [b"first\n", b"second has  two spaces\n", b"third\n"]
