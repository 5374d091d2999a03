"""webhook_server.intake.validate: the checks every route and source shares. Each failure is a
ValidationError with its 4xx status and a message that names what was wrong."""

import json
import sys

import pytest

from webhook_server.intake import validate
from webhook_server.intake.sources import PayloadError
from webhook_server.intake.validate import BigNumber, ValidationError


def fails(fn, *args, **kwargs) -> ValidationError:
    with pytest.raises(ValidationError) as err:
        fn(*args, **kwargs)
    return err.value


def test_a_document_nested_100k_deep_is_refused_before_parsing():
    for raw in (b"[" * 100_000 + b"]" * 100_000, b'{"a":' * 100_000 + b"1" + b"}" * 100_000):
        err = fails(validate.parse_json, raw)
        assert (err.status, str(err)) == (400, "JSON nested deeper than 32")
    assert sys.getrecursionlimit() < 100_000  # what json.loads alone would have hit


def test_depth_counts_structure_not_brackets_inside_strings():
    assert validate.parse_json('{"a": "' + "[{" * 500 + '"}') == {"a": "[{" * 500}
    escaped = '{"a": "\\"' + "[" * 100 + '"}'  # an escaped quote does not end the string
    assert validate.parse_json(escaped) == {"a": '"' + "[" * 100}
    at_limit = "[" * 32 + "]" * 32
    assert validate.parse_json(at_limit) is not None
    assert str(fails(validate.parse_json, "[" * 33 + "]" * 33)) == "JSON nested deeper than 32"
    assert validate.parse_json("[" * 40 + "]" * 40, max_depth=40) is not None


def test_a_long_shallow_document_is_fine():
    doc = {"items": [{"k": i, "s": "[]{}" * 3} for i in range(5000)]}
    assert validate.parse_json(json.dumps(doc)) == doc


@pytest.mark.parametrize("raw, message", [
    (b"", "empty body"), (b"  ", "empty body"), (b"\xff", "not UTF-8"),
    (b"{", "malformed JSON"), (b'{"a": NaN}', "NaN is not a JSON number"),
    (b"[Infinity]", "Infinity is not a JSON number"),
])
def test_malformed_documents_are_400_with_the_reason(raw, message):
    err = fails(validate.parse_json, raw)
    assert err.status == 400 and message in str(err)


def test_huge_integers_stay_text_so_a_field_check_can_name_the_field():
    doc = validate.parse_json('{"version": ' + "9" * 5000 + ', "n": 12}')
    assert isinstance(doc["version"], BigNumber) and len(doc["version"]) == 5000
    assert doc["n"] == 12
    err = fails(validate.version, doc)
    assert err.status == 422
    assert str(err) == ("field 'version' must be a version number of at most 20 digits, "
                        "got 5000 digits")
    err = fails(validate.field, doc, "version", int)
    assert "'version' must be an integer, got a number of 5000 digits" in str(err)


def test_a_validation_error_is_a_payload_error_and_a_value_error():
    err = fails(validate.parse_object, b"[1]")
    assert isinstance(err, PayloadError) and isinstance(err, ValueError)
    assert (err.status, str(err)) == (422, "expected a JSON object, got an array")


@pytest.mark.parametrize("value, message", [
    (None, "missing X-Id"), ("", "missing X-Id"),
    ("1" * 21, "X-Id is not a number: longer than 20 digits"),
    ("9" * 5000, "X-Id is not a number: longer than 20 digits"),
    ("12a", "X-Id is not a number: '12a'"),
    ("²", "X-Id is not a number: '²'"), ("١٨", "X-Id is not a number: '١٨'"),
    ("-1", "X-Id is not a number: '-1'"), (" 1", "X-Id is not a number: ' 1'"),
])
def test_digits_caps_the_length_before_converting(value, message):
    err = fails(validate.digits, value, "X-Id")
    assert (err.status, str(err)) == (400, message)


def test_digits_reads_numbers_and_bounds_them():
    assert validate.digits("1" * 20, "X-Id") == int("1" * 20)
    assert validate.digits("007", "X-Id") == 7
    assert str(fails(validate.digits, "1001", "limit", max_value=1000)) == "limit is over 1000"
    assert validate.identifier(str(validate.MAX_ID), "request id") == validate.MAX_ID
    assert "over" in str(fails(validate.identifier, str(validate.MAX_ID + 1), "request id"))
    assert "at least 1" in str(fails(validate.identifier, "0", "request id"))


@pytest.mark.parametrize("doc, kind, message", [
    ({"a": 1}, str, "field 'a' must be a string, got a number"),
    ({"a": [1]}, str, "field 'a' must be a string, got an array"),
    ({"a": {}}, int, "field 'a' must be an integer, got an object"),
    ({"a": True}, int, "field 'a' must be an integer, got a boolean"),
    ({"a": "1"}, int, "field 'a' must be an integer, got a string"),
    ({"a": 1.5}, int, "field 'a' must be an integer, got a number"),
    ({"a": "x"}, (str, list), None),
    ({"a": 2**64}, int, "field 'a' is out of range"),
    ({"a": "x" * 10_001}, str, "field 'a' is longer than 10000 characters"),
    ({"a": "nul\x00"}, str, "field 'a' contains a NUL character"),
    ({"a": "\ud800"}, str, "field 'a' is not valid Unicode text"),
    ({}, str, None),
])
def test_typed_fields_name_the_field(doc, kind, message):
    if message is None:
        validate.field(doc, "a", kind)
        return
    err = fails(validate.field, doc, "a", kind)
    assert (err.status, str(err)) == (422, message)


def test_required_fields_and_prefixes():
    err = fails(validate.field, {}, "name", required=True, where="data.")
    assert (err.status, str(err)) == (422, "missing field 'data.name'")
    assert validate.field({"a": None}, "a", default="d") == "d"
    assert "must be a non-empty string" in str(fails(validate.text, {"a": "  "}, "a"))
    assert validate.text({"a": 12}, "a", numbers=True) == "12"
    assert str(fails(validate.model_name, {"name": "m" * 201})) == (
        "field 'name' is longer than 200 characters")
    assert validate.version({"version": 7}) == "7"
    assert validate.version({"version": "007"}) == "7"
    assert "must be a version number" in str(fails(validate.version, {"version": "v1"}))
    assert "must be between 1 and 5" in str(
        fails(validate.integer, {"n": 9}, "n", minimum=1, maximum=5))


class FakeRequest:
    def __init__(self, data: bytes, mimetype: str = "application/json") -> None:
        self.data, self.mimetype = data, mimetype

    def get_data(self, cache=True):
        return self.data


def test_body_object_of_a_request():
    assert validate.body_object(FakeRequest(b"")) == {}
    assert validate.body_object(FakeRequest(b'{"a": 1}')) == {"a": 1}
    assert fails(validate.body_object, FakeRequest(b""), required=True).status == 400
    assert fails(validate.body_object, FakeRequest(b"{}", "text/plain")).status == 415
    assert fails(validate.body_object, FakeRequest(b"[]")).status == 422
    assert fails(validate.body_object, FakeRequest(b"[" * 1000)).status == 400
