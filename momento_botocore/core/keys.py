"""Contract 1: the cache key of one DynamoDB item. Pure; shared by reads and streams.

A key is ``{prefix}mbc{VERSION}:{account}:{region}:{table}:{digest}`` where
``account`` is the 12-digit AWS account that owns the table and ``digest`` is the
SHA-256 (base64url, unpadded) of a length-prefixed encoding of the item's
primary-key attributes in canonical form: sorted by name, numbers normalized the
way DynamoDB stores them, binary values as the bytes they stand for. Accounts,
regions and table names cannot contain ``:``, and the digest covers a
length-delimited encoding, so distinct (account, region, table, key) never share a key.

Which inputs get a key at all is a safety rule, not a convenience. A read whose
key cannot be made passes through to DynamoDB (which answers, or gives its own
error); a write whose key cannot be made fences its whole table (core/engine.py, pending.py). So
the codec refuses anything real DynamoDB might reject (a read of it must not be
answered from the cache), and maps every spelling DynamoDB accepts to the one
canonical form DynamoDB stores (a write in any spelling must replace that entry):

* Numbers: exactly DynamoDB's grammar, ``[+-]? (digits [. digits?] | . digits)
  ([eE] [+-]? digits)?`` with ASCII digits, as captured against real DynamoDB
  (``+5``, ``5.``, ``.5``, ``1E+05`` accepted; spaces, ``_``, ``0x``, ``NaN``,
  ``Infinity`` rejected), within its 38 digits and range. moto accepts more
  (surrounding spaces, ``1_000`` and Unicode digits in a GetItem; ``1_000`` and
  Unicode digits in a PutItem): those stay refused, since real DynamoDB rejects
  them (or is not known to accept them); a write in one of them fences its table.
* Strings and attribute names: the text botocore sends. Its JSON serializer
  escapes every non-ASCII character, so a surrogate pair (``"\\ud83d\\ude00"``)
  and the character it encodes (``"\\U0001F600"``) are the same bytes on the
  wire, one item in DynamoDB, and one key here. A lone surrogate is no Unicode
  text (moto fails on it; DynamoDB may reject or replace it): refused.

This module is the specification: plain functions, no memo. The read path calls the
remembering versions in core/fastpath.py, which return what these return.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal

# 2: the table's account in the namespace. (Joining surrogate pairs changed no
# accepted key's meaning: a pair-spelled string's key became the key of the
# character it encodes, which names the same item, as the stream side always did.)
CODEC_VERSION = 2
_VERSION_TAG = f"mbc{CODEC_VERSION}"

# Numbers DynamoDB is known to accept in requests (its grammar: see the module
# docstring). Anything else raises: a read passes through so DynamoDB answers it
# with its own error; a write fences its table. [0-9] is ASCII only in Python's re.
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_MAX_DIGITS = 38
_MIN_EXPONENT = -130  # smallest positive: 1E-130
_MAX_EXPONENT = 125  # largest: 9.99...E+125

_TABLE_NAME = re.compile(r"[A-Za-z0-9_.-]{1,255}")
_REGION = re.compile(r"[a-z0-9-]*")
_ACCOUNT = re.compile(r"[0-9]{12}")

BinaryText = Literal["base64", "utf-8"]

#: ``(account, region, table_name)``; account is None when the name is not an ARN
#: and no default account was given.
TableRef = tuple[str | None, str, str]


def normalize_number(text: str) -> str:
    """Canonical text of a DynamoDB number: ``"1.0"``, ``"01"``, ``"+1e0"``, ``"1."`` -> ``"1"``.

    Raises ValueError for anything DynamoDB would reject (or might: such keys are
    not cached).
    """
    if not isinstance(text, str) or _NUMBER.fullmatch(text) is None:
        raise ValueError(f"not a DynamoDB number: {text!r}")
    negative = text.startswith("-")
    unsigned = text[1:] if negative or text.startswith("+") else text
    mantissa, _, exponent_text = unsigned.replace("E", "e").partition("e")
    whole, _, fraction = mantissa.partition(".")
    digits = (whole + fraction).lstrip("0")
    if not digits:
        return "0"  # every zero, -0 included
    exponent = (int(exponent_text) if exponent_text else 0) - len(fraction)
    stripped = digits.rstrip("0")
    exponent += len(digits) - len(stripped)
    digits = stripped
    if len(digits) > _MAX_DIGITS:
        raise ValueError(f"number has more than {_MAX_DIGITS} significant digits: {text!r}")
    adjusted = exponent + len(digits) - 1  # exponent of the leading digit
    if not _MIN_EXPONENT <= adjusted <= _MAX_EXPONENT:
        raise ValueError(f"number out of DynamoDB's range: {text!r}")
    return _plain_number(negative, digits, exponent)


def _plain_number(negative: bool, digits: str, exponent: int) -> str:
    """DynamoDB's own rendering: plain notation, no exponent, no trailing zeros."""
    if exponent >= 0:
        body = digits + "0" * exponent
    elif -exponent < len(digits):
        body = digits[:exponent] + "." + digits[exponent:]
    else:
        body = "0." + "0" * (-exponent - len(digits)) + digits
    return "-" + body if negative else body


def binary_value(value: Any, text: BinaryText = "base64") -> bytes:
    """The bytes a ``B`` value stands for.

    ``text`` says what a ``str`` means: base64 (stream events, the contract's
    default) or UTF-8 (what botocore sends for a ``str`` passed as a blob).
    """
    if isinstance(value, (bytes, bytearray)):  # what botocore accepts (not memoryview)
        return bytes(value)
    if isinstance(value, str):
        if text == "utf-8":
            return value.encode("utf-8")
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError) as error:
            raise ValueError(f"B value is not valid base64: {value!r}") from error
    raise ValueError(f"B value must be bytes or str, got {type(value).__name__}")


def is_account(value: Any) -> bool:
    """True for a 12-digit AWS account id (exactly a str)."""
    return type(value) is str and _ACCOUNT.fullmatch(value) is not None


def parse_table(
    table: str, default_region: str | None, default_account: str | None = None
) -> TableRef:
    """``(account, region, table_name)`` from a table name or a table (or stream) ARN.

    An ARN gives its own account and region; a plain name gets the defaults.
    """
    if not isinstance(table, str):
        raise ValueError(f"table name must be a str, got {type(table).__name__}")
    account: str | None
    if table.startswith("arn:"):
        parts = table.split(":", 5)
        if len(parts) != 6 or parts[2] != "dynamodb" or not parts[5].startswith("table/"):
            raise ValueError(f"not a DynamoDB table ARN: {table!r}")
        if _ACCOUNT.fullmatch(parts[4]) is None:
            raise ValueError(f"not a 12-digit account in ARN {table!r}")
        account, region = parts[4], parts[3]
        name = parts[5].split("/")[1]
    else:
        region, name = default_region or "", _text(table)
        account = None if default_account is None else _account_text(default_account)
    if _TABLE_NAME.fullmatch(name) is None:
        raise ValueError(f"not a DynamoDB table name: {name!r}")
    if _REGION.fullmatch(region) is None:
        raise ValueError(f"not an AWS region: {region!r}")
    return account, region, name


def _account_text(account: Any) -> str:
    """The text of a 12-digit AWS account id (a str subclass's text too); else ValueError."""
    if not isinstance(account, str) or _ACCOUNT.fullmatch(_text(account)) is None:
        raise ValueError(f"not a 12-digit AWS account: {account!r}")
    return _text(account)


def canonical_attribute(name: str, value: Any, text: BinaryText = "base64") -> str:
    """One attribute as ``len:name`` + type + ``len:value``: unambiguous when joined,
    and equal for two spellings of one key value (what the digest covers)."""
    if not isinstance(name, str) or not isinstance(value, Mapping) or len(value) != 1:
        raise ValueError(f"key attribute {name!r} is not a single-typed attribute value")
    ((type_tag, raw),) = value.items()
    if type_tag == "S":
        if not isinstance(raw, str):
            raise ValueError(f"S value of {name!r} must be a str")
        canonical = _text(raw)
        type_tag = "S"
    elif type_tag == "N":
        canonical = normalize_number(raw)
        type_tag = "N"
    elif type_tag == "B":
        canonical = base64.b64encode(binary_value(raw, text)).decode("ascii")
        type_tag = "B"
    else:
        raise ValueError(f"key attribute {name!r} has type {type_tag!r}; keys are S, N or B")
    name = _text(name)
    return f"{len(name)}:{name}{type_tag}{len(canonical)}:{canonical}"


def text_of(value: str) -> str:
    """The text botocore sends for a str (see :func:`_text`); ValueError for a lone
    surrogate."""
    return _text(value)


def _text(value: str) -> str:
    """The text of a str: what botocore sends for it. A str subclass (a ``(str, Enum)``
    member, say) may format as something else (``"Status.ACTIVE"``). Surrogate pairs
    are joined (botocore sends them as the character they encode); a lone surrogate
    raises ValueError."""
    text = value if type(value) is str else str.__str__(value)
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # surrogates: join the pairs, refuse the rest
        try:
            return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le")
        except UnicodeDecodeError:
            raise ValueError("a string with a lone surrogate is not Unicode text") from None
    return text


def cache_key(
    account: str,
    region: str,
    table: str,
    key_attributes: Mapping[str, Any],
    *,
    prefix: str = "",
    binary_text: BinaryText = "base64",
) -> str:
    """The cache key of one item of ``account``'s table, from its primary-key
    attributes in wire format. Raises ValueError unless ``account`` has 12 digits."""
    account = _account_text(account)
    if not key_attributes:
        raise ValueError("an item key needs at least one attribute")
    parts = [
        canonical_attribute(name, value, binary_text) for name, value in key_attributes.items()
    ]
    if len(parts) > 1 and len({_text(name) for name in key_attributes}) != len(parts):
        raise ValueError("two key attributes have one name on the wire")
    parts.sort()  # attribute order must not matter
    encoded = "".join(parts).encode("utf-8")
    digest = hashlib.sha256(encoded).digest()
    tail = base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
    return f"{prefix}{_VERSION_TAG}:{account}:{region}:{table}:{tail}"


def cache_keys(
    account: str,
    region: str,
    table: str,
    keys: Sequence[Mapping[str, Any]],
    *,
    prefix: str = "",
    binary_text: BinaryText = "base64",
) -> list[str]:
    """``[cache_key(account, region, table, key, ...) for key in keys]``, for the keys of one
    table in a BatchGetItem. Raises ValueError as cache_key does, and when the keys
    do not all have the same attribute names (DynamoDB rejects such a request)."""
    check_same_names(keys)
    return [
        cache_key(account, region, table, key, prefix=prefix, binary_text=binary_text)
        for key in keys
    ]


def check_same_names(keys: Sequence[Mapping[str, Any]]) -> None:
    """Raise ValueError unless every key of ``keys`` (one table's, in a BatchGetItem)
    is a mapping with the same attribute names as the first."""
    if not keys:
        return
    names = set(keys[0])
    for key_attributes in keys:
        if not isinstance(key_attributes, Mapping) or key_attributes.keys() != names:
            raise ValueError("the keys of one table must all have the same attribute names")
