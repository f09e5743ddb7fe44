"""Contract 2: entries round-trip exactly; anything undecodable is a miss."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from momento_botocore.core.entries import (
    EntryKind,
    decode,
    encode_absent,
    encode_item,
    encode_tombstone,
)

EVERY_TYPE: dict[str, Any] = {
    "s": {"S": "héllo ☃"},
    "n": {"N": "-12.5"},
    "b": {"B": b"\x00\xff\x10"},
    "ss": {"SS": ["a", "b"]},
    "ns": {"NS": ["1", "2.5"]},
    "bs": {"BS": [b"\x00", b"\x01\x02"]},
    "null": {"NULL": True},
    "bool": {"BOOL": False},
    "m": {"M": {"inner": {"L": [{"N": "1"}, {"B": b"\xfe"}, {"M": {"deep": {"BS": [b"x"]}}}]}}},
    "l": {"L": []},
}


def test_every_attribute_type_round_trips_exactly() -> None:
    entry = decode(encode_item(EVERY_TYPE))
    assert entry is not None
    assert entry.kind is EntryKind.ITEM
    assert entry.item == EVERY_TYPE


def test_binary_given_as_base64_text_decodes_to_the_same_bytes() -> None:
    as_text = {"b": {"B": base64.b64encode(b"\x00\xff").decode()}, "bs": {"BS": ["AA=="]}}
    entry = decode(encode_item(as_text))
    assert entry is not None
    assert entry.item == {"b": {"B": b"\x00\xff"}, "bs": {"BS": [b"\x00"]}}


def test_absent_and_tombstone_are_their_own_kinds() -> None:
    absent, tombstone = decode(encode_absent()), decode(encode_tombstone())
    assert absent is not None
    assert absent.kind is EntryKind.ABSENT
    assert absent.item is None
    assert tombstone is not None
    assert tombstone.kind is EntryKind.TOMBSTONE


def test_each_decode_gives_a_fresh_item() -> None:
    data = encode_item({"m": {"M": {"x": {"S": "1"}}}})
    first, second = decode(data), decode(data)
    assert first is not None
    assert second is not None
    assert first.item is not second.item
    first.item["m"]["M"]["x"]["S"] = "changed"  # type: ignore[index]
    assert second.item == {"m": {"M": {"x": {"S": "1"}}}}


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"garbage",
        b"mbe1",
        b"mbe1X",
        b"mbe2I{}",
        b"mbe1I{not json",
        b"mbe1I[]",
        b'mbe1I{"a":1}',
        b'mbe1I{"a":{"S":1}}',
        b'mbe1I{"a":{"S":"x","N":"1"}}',
        b'mbe1I{"a":{"B":"not base64!"}}',
        b'mbe1I{"a":{"XX":"1"}}',
        b'mbe1I{"a":{"M":[]}}',
        b"mbe1I\xff\xfe",
        b"mbe1Aextra",
    ],
)
def test_undecodable_values_are_not_entries(data: bytes) -> None:
    assert decode(data) is None


@pytest.mark.parametrize(
    ("item", "refused"),
    [
        ({"a": {"S": 1}}, "S value must be a str"),
        ({"a": {"ZZ": "x"}}, "unknown attribute type 'ZZ'"),
        ({"a": "plain"}, "not an attribute value: 'plain'"),
        ({1: {"S": "x"}}, "attribute names must be str, got int"),
        ({"a": {"B": 3}}, "B value must be bytes or str, got int"),
    ],
)
def test_encoding_a_malformed_item_raises(item: Any, refused: str) -> None:
    with pytest.raises(ValueError, match=refused):
        encode_item(item)


attribute_values = st.recursive(
    st.one_of(
        st.builds(lambda s: {"S": s}, st.text()),
        st.builds(lambda n: {"N": str(n)}, st.integers()),
        st.builds(lambda b: {"B": b}, st.binary()),
        st.builds(lambda b: {"BOOL": b}, st.booleans()),
        st.just({"NULL": True}),
        st.builds(lambda s: {"SS": sorted(s)}, st.sets(st.text(), min_size=1, max_size=3)),
        st.builds(lambda s: {"BS": sorted(s)}, st.sets(st.binary(), min_size=1, max_size=3)),
    ),
    lambda children: st.one_of(
        st.builds(lambda xs: {"L": xs}, st.lists(children, max_size=3)),
        st.builds(lambda m: {"M": m}, st.dictionaries(st.text(max_size=5), children, max_size=3)),
    ),
    max_leaves=10,
)


@given(st.dictionaries(st.text(min_size=1, max_size=8), attribute_values, max_size=5))
def test_random_items_round_trip(item: dict[str, Any]) -> None:
    entry = decode(encode_item(item))
    assert entry is not None
    assert entry.item == item
