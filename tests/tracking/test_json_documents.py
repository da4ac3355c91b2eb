"""What the fast JSON path (orjson) refuses is read and written the standard way, never lost."""

from __future__ import annotations

import json

import pytest

from tracking.arrival.envelope import EnvelopeError, decode
from tracking.bulk import bulk_set, document_json
from tracking.models import ProcessInstance

BIG = 2**70  # beyond the 64 bits orjson reads and writes


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        (b'{"a": [1, 2.5, "x"]}', {"a": [1, 2.5, "x"]}),
        (f'{{"amount": {BIG}}}'.encode(), {"amount": BIG}),
        ('\ufeff{"a": 1}'.encode(), {"a": 1}),  # a byte order mark is tolerated
        (b'"\\ud800"', "\ud800"),  # a lone surrogate, as the json module reads it
    ],
)
def test_decode_reads_what_the_json_module_reads(raw, value):
    assert decode(raw) == value


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b'{"a": NaN}', "not JSON: NaN is not a JSON number"),
        (b"\xff{}", "not UTF-8"),
        (b'{"a": ', "not JSON: Expecting value: line 1 column 7 (char 6)"),
    ],
)
def test_decode_words_bad_input_as_before(raw, reason):
    with pytest.raises(EnvelopeError) as error:
        decode(raw)
    assert error.value.reason == reason


def test_document_json_writes_integers_beyond_64_bits():
    assert json.loads(document_json([{"amount": BIG, 1: "one"}])) == [{"amount": BIG, "1": "one"}]


@pytest.mark.django_db
def test_a_context_with_a_big_integer_is_written_back(example_model):
    instance = ProcessInstance.objects.create(model=example_model.model, transaction_id="BIG")
    instance.context = {"amount": BIG}

    bulk_set([instance], ["context"])

    instance.refresh_from_db()
    assert instance.context == {"amount": BIG}
