"""The load/unload decisions the gateway's workers share (api/repository/decisions.py): recorded
and read back, numbered, and a hostile or broken file ignored (logged), never trusted."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import orjson
import pytest
from nexpo.api.repository.decisions import FILE_NAME, Decision, DecisionsError, SharedDecisions, parse
from nexpo.api.workers import RUNTIME_DIR_ENV, prepare_runtime_dir


def test_decisions_are_recorded_numbered_and_read_back(tmp_path: Path) -> None:
    shared = SharedDecisions(tmp_path)
    assert shared.read() == {}
    assert shared.record("a", unloaded=True) == 1
    assert shared.record("b", unloaded=True) == 2
    assert shared.record("a", unloaded=False) == 3  # the latest decision per model
    assert shared.read() == {"a": Decision(False, 3), "b": Decision(True, 2)}
    assert not shared.changed()
    SharedDecisions(tmp_path).record("b", unloaded=False)  # another worker
    assert shared.changed()
    assert shared.read()["b"] == Decision(False, 4)


@pytest.mark.parametrize(
    "content",
    [
        b"not json",
        b"[]",
        b'{"sequence": 1}',
        b'{"sequence": -1, "models": {}}',
        b'{"sequence": true, "models": {}}',
        b'{"sequence": 1, "models": {"a": {"unloaded": "yes", "sequence": 1}}}',
        b'{"sequence": 1, "models": {"a": {"unloaded": true, "sequence": 2}}}',  # from the future
        b'{"sequence": 1, "models": {"": {"unloaded": true, "sequence": 1}}}',
        b" " * (2 << 20),
    ],
)
def test_a_broken_file_is_ignored_and_logged_once(
    tmp_path: Path, content: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / FILE_NAME).write_bytes(content)
    shared = SharedDecisions(tmp_path)
    with caplog.at_level(logging.ERROR, "api.repository"):
        assert shared.read() == {}
        assert shared.read() == {}
    assert len([r for r in caplog.records if "ignoring the shared" in r.message]) == 1
    with pytest.raises(DecisionsError, match="cannot record"):  # never overwritten blindly
        shared.record("a", unloaded=True)
    assert (tmp_path / FILE_NAME).read_bytes() == content


def test_parse_accepts_what_record_writes() -> None:
    doc = {"sequence": 7, "models": {"m": {"unloaded": True, "sequence": 7}}}
    assert parse(orjson.dumps(doc)) == (7, {"m": Decision(True, 7)})


def test_a_directory_that_cannot_be_made_is_a_decisions_error(tmp_path: Path) -> None:
    (tmp_path / "a file").write_bytes(b"")  # where the runtime directory's parent should be
    with pytest.raises(DecisionsError):
        SharedDecisions(tmp_path / "a file" / "runtime").record("a", unloaded=True)


def test_several_workers_get_a_private_runtime_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(RUNTIME_DIR_ENV, "")  # restored (unset) after the test: the code sets it
    assert prepare_runtime_dir(1) is None
    assert RUNTIME_DIR_ENV not in os.environ
    own = prepare_runtime_dir(2)
    try:
        assert own is not None and os.environ[RUNTIME_DIR_ENV] == str(own)
        assert own.stat().st_mode & 0o777 == 0o700
        assert SharedDecisions.from_environment() is not None
    finally:
        assert own is not None
        own.rmdir()
