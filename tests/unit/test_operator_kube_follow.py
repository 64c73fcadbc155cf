"""kube.follow_log on an error answer: an exception, never the error body passed off as a log line."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from kubernetes_asyncio.client.exceptions import ApiException

from zoo_operator import kube

STATUS = (
    b'{"kind":"Status","apiVersion":"v1","status":"Failure","message":"container \\"worker\\" in pod '
    b'\\"talker\\" is waiting to start or not found","reason":"BadRequest","code":400}'
)


class Content:
    def __init__(self, lines: list[bytes]) -> None:
        self.lines = lines

    async def readline(self) -> bytes:
        return self.lines.pop(0) if self.lines else b""


class Response:
    def __init__(self, status: int, body: bytes) -> None:
        self.status, self.reason, self.body = status, "Bad Request" if status == 400 else "OK", body
        self.content = Content(body.splitlines(keepends=True))
        self.released = False

    async def read(self) -> bytes:
        return self.body

    def release(self) -> None:
        self.released = True


def follow(monkeypatch: pytest.MonkeyPatch, resp: Response) -> list[str]:
    async def stream_client() -> Any:
        return None

    async def call(make: Any, what: str = "") -> Response:
        return resp

    monkeypatch.setattr(kube, "_stream_client", stream_client)
    monkeypatch.setattr(kube, "call", call)
    monkeypatch.setattr(
        kube,
        "CoreApi",
        lambda api: type("Core", (), {"read_namespaced_pod_log": lambda self, *a, **k: None})(),
    )

    async def run() -> list[str]:
        return [line async for line in kube.follow_log("ns", "talker", 10, idle_timeout=5)]

    return asyncio.run(run())


def test_an_error_answer_raises_with_its_status(monkeypatch: pytest.MonkeyPatch) -> None:
    resp = Response(400, STATUS)
    with pytest.raises(ApiException) as caught:
        follow(monkeypatch, resp)
    assert caught.value.status == 400 and "waiting to start" in caught.value.body and resp.released


def test_lines_of_a_good_answer_are_yielded(monkeypatch: pytest.MonkeyPatch) -> None:
    resp = Response(200, b"line 0\nline 1\r\n")
    assert follow(monkeypatch, resp) == ["line 0", "line 1"] and resp.released
