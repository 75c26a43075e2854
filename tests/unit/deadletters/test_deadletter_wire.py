"""Discarded messages and bounded arguments, one piece at a time: the record a raw message becomes, the
consumer's receivers and decode-error bootstep, and what a dead letter keeps of a huge argument.

The end-to-end path (a real worker, real Redis) is ``tests/integration/test_wire_poison_worker.py``.
"""

from __future__ import annotations

import json
import pickle

import pytest
from celery.exceptions import NotRegistered
from kombu.exceptions import ContentDisallowed, DecodeError
from kombu.message import Message

from backend import deadletters
from backend.deadletters import bounds, wire
from backend.deadletters.consumer import DecodeErrorStep
from backend.deadletters.models import DeadLetter
from tests.fixtures.deadletters import PLANTED

pytestmark = pytest.mark.usefixtures("isolated_fallback")


def raw(body: bytes, content_type: str = "application/json", **headers) -> Message:
    """A kombu message as the consumer receives it from the ``high`` queue."""
    return Message(
        body=body,
        delivery_tag="5a1f-tag",
        content_type=content_type,
        content_encoding="utf-8",
        delivery_info={"exchange": "high", "routing_key": "high"},
        headers=headers,
    )


def proto2(args, kwargs) -> bytes:
    return json.dumps([args, kwargs, {"callbacks": None, "errbacks": None, "chain": None, "chord": None}]).encode()


class FakeConsumer:
    """The parts of Celery's consumer the bootstep touches: its name and its decode-error handler."""

    hostname = "w1@host"

    def __init__(self) -> None:
        self.acknowledged: list[Message] = []

    def on_decode_error(self, message, exc) -> None:
        self.acknowledged.append(message)


# --- The record of a discarded message --------------------------------------------------------------
def test_an_unregistered_task_keeps_its_name_arguments_and_queue_and_can_be_replayed(db, sent) -> None:
    message = raw(proto2(["stock", ["AAPL"]], {"run_id": 7}), task="quotes.fetch_v2", id="t-unreg")
    deadletters.on_task_unknown(sender=FakeConsumer(), message=message, exc=KeyError("x"), name="quotes.fetch_v2",
                                id="t-unreg")  # fmt: skip

    row = DeadLetter.objects.get(task_id="t-unreg")
    assert (row.origin, row.task_name, row.queue, row.worker) == ("unregistered", "quotes.fetch_v2", "high", "w1@host")
    assert row.args == ["stock", ["AAPL"]] and row.kwargs == {"run_id": 7} and row.arguments_known
    assert row.symbol_list == ["AAPL"] and row.exception_name == "NotRegistered"
    assert "Received unregistered task 'quotes.fetch_v2' on queue high" in row.exception_message
    assert row.message["headers"]["task"] == "quotes.fetch_v2" and row.message["body_format"] == "text"

    new_id = deadletters.replay(row, actor="cli:ops")
    assert sent == [
        {"name": "quotes.fetch_v2", "args": ["stock", ["AAPL"]], "kwargs": {"run_id": 7}, "task_id": new_id,
         "headers": {deadletters.REPLAY_HEADER: "t-unreg"}, "queue": "high"}
    ]  # fmt: skip


def test_a_pickle_body_is_kept_escaped_never_unpickled_and_not_replayable(db) -> None:
    body = pickle.dumps((["stock", ["AAPL"]], {}, {}))
    message = raw(body, "application/x-python-serialize", task="quotes.fetch", id="t-pickle")
    exc = ContentDisallowed("Refusing to deserialize untrusted content of type pickle")
    deadletters.on_task_rejected(sender=FakeConsumer(), message=message, exc=exc)

    row = DeadLetter.objects.get(task_id="t-pickle")
    assert (row.origin, row.exception_name, row.arguments_known) == ("rejected", "ContentDisallowed", False)
    assert row.args == [] and row.kwargs == {}
    assert row.message["body_format"] == "escaped bytes" and "\\x80" in row.message["body"]
    assert row.message["body_bytes"] == len(body) and not row.sanitised
    refusal = deadletters.replay_refusal(row)
    assert refusal is not None and "could not be decoded" in str(refusal)


def test_a_message_without_a_task_header_gets_an_id_of_its_own_once_per_message(db) -> None:
    message = raw(b'{"hello": "world"}', **{"x-sender": "foreign"})
    deadletters.on_task_rejected(sender=FakeConsumer(), message=message, exc=None)
    deadletters.on_task_rejected(sender=FakeConsumer(), message=message, exc=None)  # redelivered: the same row
    other = raw(b'{"hello": "world"}')
    other.delivery_tag = "another-publish"
    deadletters.on_task_rejected(sender=FakeConsumer(), message=other, exc=None)

    rows = list(DeadLetter.objects.order_by("pk"))
    assert len(rows) == 2 and all(r.task_id.startswith("message-") for r in rows)
    assert rows[0].origin == "unknown" and rows[0].task_name == "" and rows[0].exception_name == "NotATaskMessage"
    assert rows[0].message["headers"] == {"x-sender": "foreign"}
    assert deadletters.discard(rows[0], actor="cli:ops")


def test_the_decode_step_writes_the_dead_letter_and_then_lets_celery_acknowledge(db) -> None:
    consumer = FakeConsumer()
    DecodeErrorStep(consumer)
    DecodeErrorStep(consumer)  # applied twice: still one dead letter per message
    message = raw(b'[["stock"], {"note": "cut', task="quotes.fetch", id="t-json")
    consumer.on_decode_error(message, DecodeError("Expecting value: line 1 column 1"))

    assert consumer.acknowledged == [message]
    row = DeadLetter.objects.get(task_id="t-json")
    assert (row.origin, row.exception_name, row.queue) == ("undecodable", "DecodeError", "high")
    assert row.message["body"] == '[["stock"], {"note": "cut'


def test_control_messages_are_left_to_celery(db) -> None:
    message = raw(b"not json")
    message.delivery_info = {"exchange": "celery.pidbox", "routing_key": ""}
    consumer = FakeConsumer()
    DecodeErrorStep(consumer)
    consumer.on_decode_error(message, DecodeError("bad"))
    assert consumer.acknowledged == [message] and not DeadLetter.objects.exists()


def test_secrets_in_headers_and_body_are_redacted(db) -> None:
    message = raw(f'{{"apikey={PLANTED}"'.encode(), task="quotes.fetch", id="t-secret", api_key=PLANTED,
                  argsrepr=f"['{PLANTED}']")  # fmt: skip
    deadletters.record_discarded(FakeConsumer(), message, origin=wire.UNDECODABLE, exc=DecodeError("bad"))
    row = DeadLetter.objects.get(task_id="t-secret")
    assert PLANTED not in json.dumps(row.message)
    assert row.message["headers"]["api_key"] == deadletters.REDACTED


def test_a_receiver_never_raises_into_the_consumer(db, monkeypatch, caplog) -> None:
    def broken(*args, **kwargs):
        raise RuntimeError("bug")

    monkeypatch.setattr(wire, "discarded_record", broken)
    monkeypatch.setattr("backend.deadletters.consumer.discarded_record", broken)
    assert deadletters.record_discarded(FakeConsumer(), raw(b"x"), origin=wire.UNKNOWN, exc=NotRegistered("x")) == ""
    assert "could not keep a discarded message" in caplog.text


def test_a_huge_message_body_and_headers_are_kept_bounded(db, settings) -> None:
    settings.DEADLETTER_KEEP_CHARS = 1_000
    message = raw(b"x" * 100_000, task="quotes.fetch", id="t-huge", note="n" * 50_000)
    deadletters.record_discarded(FakeConsumer(), message, origin=wire.UNDECODABLE, exc=DecodeError("bad"))
    row = DeadLetter.objects.get(task_id="t-huge")
    assert len(row.message["body"]) == 1_000 and row.message["body_truncated"]
    assert row.message["body_bytes"] == 100_000
    assert bounds.json_size(row.message["headers"]) <= 1_000 and row.message["headers_truncated"]
    assert row.message["headers"]["task"] == "quotes.fetch"  # small headers beside the huge one stay whole


# --- Bounded arguments --------------------------------------------------------------------------------
def test_a_100000_character_argument_is_cut_to_the_bound_and_marked(db, settings) -> None:
    from backend.deadletters import on_task_failure
    from tests.fixtures import failing_tasks

    settings.DEADLETTER_KEEP_CHARS = 30_000
    huge = "A" * 100_000
    on_task_failure(sender=failing_tasks.always_transient, task_id="t-big", exception=ValueError("bad symbol"),
                    args=["stock", [huge]], kwargs={"run_id": 3, "reason": "calm"})  # fmt: skip

    row = DeadLetter.objects.get(task_id="t-big")
    assert row.arguments_truncated and row.arguments_size > 100_000
    stored = bounds.json_size({"args": row.args, "kwargs": row.kwargs})
    assert 29_000 < stored <= 30_000
    assert row.args[0] == "stock" and row.args[1][0] == huge[: len(row.args[1][0])]
    assert row.kwargs == {"run_id": 3, "reason": "calm"}  # small keywords beside the huge one stay whole
    refusal = deadletters.replay_refusal(row)
    assert refusal is not None and "--confirm-truncated" in str(refusal)
    assert deadletters.replay_refusal(row, confirm_truncated=True) is None


def test_arguments_that_fit_are_kept_whole_and_unmarked(db) -> None:
    from backend.deadletters import on_task_failure
    from tests.fixtures import failing_tasks

    symbols = [f"S{i:03d}" for i in range(500)]  # a full quote batch
    on_task_failure(sender=failing_tasks.always_transient, task_id="t-fits", exception=ValueError("bad"),
                    args=["stock", symbols], kwargs={})  # fmt: skip
    row = DeadLetter.objects.get(task_id="t-fits")
    assert row.args == ["stock", symbols] and not row.arguments_truncated
    assert row.arguments_size == bounds.json_size({"args": ["stock", symbols], "kwargs": {}})


@pytest.mark.parametrize(
    "value",
    [
        ["stock", ["A" * 100_000]],
        ["stock", [f"S{i}" for i in range(50_000)]],
        {"args": [list(range(100_000))], "kwargs": {"note": "n" * 20_000}},
        {f"k{i}": i for i in range(20_000)},
        ["x" * 10_000, "y" * 10_000, "z" * 10_000],
    ],
)
def test_bounded_values_fit_the_bound(value) -> None:
    cut = bounds.bounded(value, 1_000)
    assert cut.truncated and cut.size == bounds.json_size(value)
    assert bounds.json_size(cut.value) <= 1_000
    assert type(cut.value) is type(value)
