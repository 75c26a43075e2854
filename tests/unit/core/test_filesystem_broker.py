"""make run's filesystem broker: a message is in its queue whole or not at all."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from kombu import Connection

from backend.core.filesystem_broker import Transport


def test_a_message_shows_in_its_queue_only_once_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    listed_before_rename: list[list[str]] = []
    rename = os.replace

    def watched_rename(src: str, dst: str) -> None:
        listed_before_rename.append(os.listdir(tmp_path / "queue"))
        rename(src, dst)

    monkeypatch.setattr(os, "replace", watched_rename)
    (tmp_path / "queue").mkdir()
    folders = {
        "data_folder_in": str(tmp_path / "queue"),
        "data_folder_out": str(tmp_path / "queue"),
        "control_folder": str(tmp_path / "control"),  # kombu's default is ./control, in the checkout
    }
    with Connection(transport=Transport, transport_options={**folders, "store_processed": False}) as connection:
        queue = connection.SimpleQueue("quotes")
        queue.put({"symbols": ["AAPL"]})
        message = queue.get(timeout=5)
        message.ack()
        queue.close()

    assert message.payload == {"symbols": ["AAPL"]}
    # While it was written, the file's name was one no consumer of any queue takes (kombu's is "*.<queue>.msg").
    (written,) = listed_before_rename
    assert [name for name in written if name.endswith(".msg")] == []
    assert os.listdir(tmp_path / "queue") == []
