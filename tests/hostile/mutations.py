"""Seeded mutations of strategy files, as a careless editor or an attacker would make them.

`mutate` applies one named mutation to a file's bytes with a `random.Random`; the same
seed gives the same bytes. The kinds cover what the hostile-input pass tried: byte flips,
control characters, truncation, deep nesting, alias and merge-key bombs, odd tags, huge
and non-finite numbers, wrong types, and text that is not UTF-8.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable

__all__ = ["KINDS", "mutate"]

_CONTROL = [b"\x00", b"\x07", b"\x08", b"\x0b", b"\x0c", b"\x1b", b"\x7f", b"\xc2\x85", b"\xc2\x9b"]
_TOKENS = [
    b"&a ",
    b"*a",
    b"<<: *a",
    b"!!binary ",
    b"!!python/object:os.system ",
    b"!local ",
    b"!!set ",
    b"!!omap ",
    b"!!timestamp ",
    b"!!float ",
    b"[",
    b"]",
    b"{",
    b"}",
    b": ",
    b":",
    b"- ",
    b"? ",
    b"|",
    b">",
    b"#",
    b"'",
    b'"',
    b"\t",
    b"\n",
    b"\r",
    b"---\n",
    b"...\n",
    b"%YAML 1.1\n",
    b"\\",
    b"${X}",
    b"${TRADELOOM_UNSET_FOR_TEST}",
    b"\xef\xbb\xbf",
]
_NUMBERS = [
    b".inf",
    b"-.inf",
    b".nan",
    b"1e+999",
    b"1.0e+400",
    b"-0",
    b"0",
    b"-1",
    b"1e20",
    b"100000000000000000000000000000000000",
    b"99999999999w",
    b"0x7fffffffffffffff",
    b"0o777",
    b"1_000",
    b"1:2:3:4:5",
    b"9" * 120,
    b"1.5",
    b"-1e300",
    b"1e-320",
    b"true",
    b"null",
    b"~",
    b"''",
    b"[]",
    b"{}",
    b"now",
    b"2262-04-12",
    b"1677-09-21",
    b"9999-12-31",
]
_SCALAR = re.compile(rb"(?<=: )[^\s#\[\]{},][^\n#]*")


def _flip(data: bytes, rng: random.Random) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        i = rng.randrange(len(buf))
        buf[i] ^= 1 << rng.randrange(8)
    return bytes(buf)


def _byte(data: bytes, rng: random.Random) -> bytes:
    i = rng.randrange(len(data) + 1)
    return data[:i] + bytes([rng.randrange(256)]) + data[i:]


def _control(data: bytes, rng: random.Random) -> bytes:
    i = rng.randrange(len(data) + 1)
    return data[:i] + rng.choice(_CONTROL) + data[i:]


def _truncate(data: bytes, rng: random.Random) -> bytes:
    return data[: rng.randrange(len(data) + 1)]


def _token(data: bytes, rng: random.Random) -> bytes:
    out = data
    for _ in range(rng.randint(1, 3)):
        i = rng.randrange(len(out) + 1)
        out = out[:i] + rng.choice(_TOKENS) + out[i:]
    return out


def _delete_line(data: bytes, rng: random.Random) -> bytes:
    lines = data.split(b"\n")
    del lines[rng.randrange(len(lines))]
    return b"\n".join(lines)


def _duplicate_line(data: bytes, rng: random.Random) -> bytes:
    lines = data.split(b"\n")
    i = rng.randrange(len(lines))
    lines.insert(rng.randrange(len(lines) + 1), lines[i])
    return b"\n".join(lines)


def _indent(data: bytes, rng: random.Random) -> bytes:
    lines = data.split(b"\n")
    i = rng.randrange(len(lines))
    lines[i] = rng.choice([b" ", b"  ", b"\t", b""]) + lines[i].lstrip(b" ")
    return b"\n".join(lines)


def _number(data: bytes, rng: random.Random) -> bytes:
    spans = [m.span() for m in _SCALAR.finditer(data)]
    if not spans:
        return data + b"\nseed: " + rng.choice(_NUMBERS) + b"\n"
    start, end = rng.choice(spans)
    return data[:start] + rng.choice(_NUMBERS) + data[end:]


def _wrong_type(data: bytes, rng: random.Random) -> bytes:
    spans = [m.span() for m in _SCALAR.finditer(data)]
    if not spans:
        return data
    start, end = rng.choice(spans)
    value = rng.choice([b"[1, 2]", b"{a: 1}", b"null", b"true", b"'text'", b"-5", b"[]"])
    return data[:start] + value + data[end:]


def _deep(data: bytes, rng: random.Random) -> bytes:
    depth = rng.choice([70, 500, 5000, 20000])
    if rng.random() < 0.5:
        nest = b"[" * depth + b"]" * depth
    else:
        nest = b"{a: " * depth + b"1" + b"}" * depth
    return data + b"\nextra: " + nest + b"\n"


def _alias_bomb(data: bytes, rng: random.Random) -> bytes:
    levels = rng.randint(4, 12)
    lines = [b'a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels):
        refs = b", ".join([b"*a%d" % (i - 1)] * 9)
        lines.append(b"a%d: &a%d [%s]" % (i, i, refs))
    return data + b"\n" + b"\n".join(lines) + b"\n"


def _merge_bomb(data: bytes, rng: random.Random) -> bytes:
    levels = rng.randint(10, 40)
    lines = [b"m0: &m0 {k0: 1, k1: 2}"]
    for i in range(1, levels):
        lines.append(b"m%d: &m%d {<<: [*m%d, *m%d], k%d: 1}" % (i, i, i - 1, i - 1, i + 2))
    return data + b"\n" + b"\n".join(lines) + b"\n"


def _cycle(data: bytes, rng: random.Random) -> bytes:
    return data + rng.choice([b"\nloop: &l [*l]\n", b"\nloop: &l {a: *l}\n"])


def _not_utf8(data: bytes, rng: random.Random) -> bytes:
    i = rng.randrange(len(data) + 1)
    return data[:i] + rng.choice([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xf8\x88"]) + data[i:]


def _odd_tag(data: bytes, rng: random.Random) -> bytes:
    spans = [m.span() for m in _SCALAR.finditer(data)]
    if not spans:
        return data
    start, _ = rng.choice(spans)
    tag = rng.choice(
        [
            b"!!binary ",
            b"!!set ",
            b"!!omap ",
            b"!!pairs ",
            b"!!python/name:os.system ",
            b"!x ",
            b"!!str ",
            b"!!int ",
            b"!!float ",
            b"!!null ",
            b"!!bool ",
            b"!<tag:yaml.org,2002:str> ",
        ]
    )
    return data[:start] + tag + data[start:]


def _long_line(data: bytes, rng: random.Random) -> bytes:
    return data + b"\ndescription: " + b"x" * rng.choice([10_000, 200_000]) + b"\n"


KINDS: dict[str, Callable[[bytes, random.Random], bytes]] = {
    "flip": _flip,
    "byte": _byte,
    "control": _control,
    "truncate": _truncate,
    "token": _token,
    "delete_line": _delete_line,
    "duplicate_line": _duplicate_line,
    "indent": _indent,
    "number": _number,
    "wrong_type": _wrong_type,
    "deep": _deep,
    "alias_bomb": _alias_bomb,
    "merge_bomb": _merge_bomb,
    "cycle": _cycle,
    "not_utf8": _not_utf8,
    "odd_tag": _odd_tag,
    "long_line": _long_line,
}
"""Every mutation, by name."""


def mutate(data: bytes, seed: int) -> tuple[str, bytes]:
    """Return the name of the mutation seed ``seed`` picks and ``data`` mutated by it."""
    rng = random.Random(seed)
    name = rng.choice(sorted(KINDS))
    out = KINDS[name](data or b"\n", rng)
    if rng.random() < 0.25:  # sometimes a second mutation on top
        second = rng.choice(sorted(KINDS))
        out = KINDS[second](out or b"\n", rng)
        name = f"{name}+{second}"
    return name, out
