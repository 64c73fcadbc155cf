"""Size limits of what the operator writes, and a memo that logs a problem once per change, not once per pass.

Pure. `bound_status` makes any status fit a byte budget well under what the apiserver accepts (a request body of
3 MiB, an object of ~1.5 MiB in etcd), trimming what matters least first: log lines, then long messages, then
per-rank summaries. A job whose status cannot be written never gets a phase, so nothing may make it too big.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any

# Budget of one status (bytes of its JSON): 256 KiB, far below the apiserver's limits, so a patch never fails for
# size whatever the logs, messages or rank count.
STATUS_MAX_BYTES = 256 * 1024
# Longest message (status.message, a condition's message) once trimming is needed.
MESSAGE_CHARS = 1024
# Longest single log line kept in rankSummaries[].lastLines.
LINE_CHARS = 512


def size(obj: Any) -> int:
    """Bytes of obj as compact JSON (what the patch body costs)."""
    return len(json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode())


def cut(text: str, limit: int) -> str:
    """text cut to `limit` characters, the cut marked with the full length."""
    if len(text) <= limit:
        return text
    return f"{text[: max(limit - 40, 0)]}... ({len(text)} characters)"


def bound_status(status: Mapping[str, Any], limit: int = STATUS_MAX_BYTES) -> dict[str, Any]:
    """A copy of `status` whose JSON is at most `limit` bytes; unchanged when it already fits.

    Steps, each only while still too big: cut every log line to LINE_CHARS; keep log lines of rank 0 and failed
    ranks only; drop all log lines; cut messages to MESSAGE_CHARS; keep the first and the failed rank summaries.
    """
    if size(status) <= limit:
        return dict(status)
    out = copy.deepcopy(dict(status))
    summaries: list[dict[str, Any]] = out.get("rankSummaries") or []
    for summary in summaries:
        if "lastLines" in summary:
            summary["lastLines"] = [cut(str(line), LINE_CHARS) for line in summary["lastLines"]]
    if size(out) > limit:
        for summary in summaries:
            if summary.get("rank") != 0 and not summary.get("exitCode"):
                summary.pop("lastLines", None)
    if size(out) > limit:
        for summary in summaries:
            summary.pop("lastLines", None)
    if size(out) > limit:
        if isinstance(out.get("message"), str):
            out["message"] = cut(out["message"], MESSAGE_CHARS)
        for cond in out.get("conditions") or []:
            if isinstance(cond.get("message"), str):
                cond["message"] = cut(cond["message"], MESSAGE_CHARS)
    if size(out) > limit and summaries:
        kept = [s for s in summaries if s.get("rank") in (0, -1) or s.get("exitCode")]
        out["rankSummaries"] = kept[:64]
    if size(out) > limit:
        out.pop("rankSummaries", None)
    return out


class LogMemo:
    """Remembers the last problem logged per key, so a problem that repeats every pass is logged once.

    `should_log(key, text)` is True the first time and whenever the text for that key changes; `clear(key)` when
    the problem is gone (so its return is logged again).
    """

    def __init__(self, max_keys: int = 10000) -> None:
        self._last: dict[str, str] = {}
        self._max_keys = max_keys

    def should_log(self, key: str, text: str) -> bool:
        """Whether to log `text` for `key` now."""
        if self._last.get(key) == text:
            return False
        if len(self._last) >= self._max_keys and key not in self._last:
            self._last.pop(next(iter(self._last)))
        self._last[key] = text
        return True

    def clear(self, key: str) -> None:
        """Forget the key's last problem (it is solved)."""
        self._last.pop(key, None)
