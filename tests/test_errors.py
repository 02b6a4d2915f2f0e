"""Errors as they may be stored: an unclassified one keeps its type name and a redacted, bounded
message, never the original object; every soraflow error pickles as it is, without its cause."""

from __future__ import annotations

import json
import pickle

import cloudpickle

from soraflow.errors import (
    UNEXPECTED_MESSAGE_CHARS,
    BudgetExceededError,
    ClipInDoubtError,
    PermanentProviderError,
    Problem,
    UnexpectedError,
    safe_error,
)
from soraflow.preflight import PreflightError
from soraflow.redaction import register_secret


def test_an_invalid_json_answer_becomes_its_type_name_and_message_without_the_body():
    body = '{"id": "video_1", "note": "response-body-canary-1" ' + "x" * 5000
    try:
        json.loads(body)
    except json.JSONDecodeError as err:
        original = err
    assert "response-body-canary-1" in pickle.dumps(original).decode("latin-1")  # what Prefect stored before
    safe = safe_error(original)
    assert isinstance(safe, UnexpectedError) and safe.type_name == "JSONDecodeError"
    assert str(safe).startswith("JSONDecodeError: Expecting ',' delimiter")
    stored = cloudpickle.dumps(safe)
    assert b"response-body-canary-1" not in stored and b"xxxx" not in stored


def test_an_unclassified_message_is_redacted_and_bounded():
    register_secret("sk-unexpected-canary-4e1a", "test")
    safe = safe_error(RuntimeError("echo sk-unexpected-canary-4e1a " + "y" * 10_000))
    assert "sk-unexpected-canary-4e1a" not in str(safe) and "REDACTED" in str(safe)
    assert len(str(safe)) <= len("RuntimeError: ") + UNEXPECTED_MESSAGE_CHARS
    err = PermanentProviderError("refused", code="x")
    assert safe_error(err) is err


def test_every_soraflow_error_pickles_with_its_attributes_and_without_its_cause():
    try:
        try:
            raise ValueError("the original, holding a body: response-body-canary-2")
        except ValueError as cause:
            raise ClipInDoubtError("clip s00 is in doubt", code="unanswered_create").for_shot("s00") from cause
    except ClipInDoubtError as err:
        doubt = err
    errors = [
        doubt,
        BudgetExceededError(12.5, 10.0, "two clips"),  # takes no message: rebuilt without __init__
        PreflightError([Problem("shots[0]", "too long")], in_storyboard=True),
        UnexpectedError("KeyError: 'x'", type_name="KeyError"),
    ]
    for err in errors:
        data = cloudpickle.dumps(err)
        assert b"response-body-canary-2" not in data
        back = pickle.loads(data)
        assert type(back) is type(err) and str(back) == str(err) and back.__dict__ == err.__dict__ and back.__cause__ is None
    assert pickle.loads(cloudpickle.dumps(doubt)).shot_id == "s00"
