"""Plain data (JSON-ready dicts and lists) to and from the pipeline's dataclasses.

One codec for every stage's output (notes, scores, references), driven by the dataclasses' own
field types: a field added with a default is read from older data as that default, and no class
carries a hand-written copy of its own field list.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")
_SCALARS = (bool, int, float, str)


def to_plain(value: Any) -> Any:
    """``value`` as dicts, lists and scalars: a dataclass becomes a dict of its fields, a tuple a list.

    >>> from kimiwonosete.notes import Note
    >>> to_plain([Note(0.5, 1.0, 60, 80)])
    [{'onset': 0.5, 'offset': 1.0, 'pitch': 60, 'velocity': 80}]
    """
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if value is None or isinstance(value, _SCALARS):
        return value
    raise TypeError(f"cannot write a {type(value).__name__} as plain data")


def from_plain(kind: Any, data: Any) -> Any:
    """The value of type ``kind`` (a dataclass, ``list[X]``, ``tuple[X, ...]``, ``tuple[X, Y]``,
    ``X | None``, a scalar or ``Path``) that :func:`to_plain` turned into ``data``; a ValueError
    for data of another shape.

    >>> from kimiwonosete.notes import Note
    >>> from_plain(list[Note], [{'onset': 0.5, 'offset': 1.0, 'pitch': 60, 'velocity': 80}])
    [Note(onset=0.5, offset=1.0, pitch=60, velocity=80)]
    """
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if dataclasses.is_dataclass(kind):
        if not isinstance(data, dict):
            raise ValueError(f"expected an object for {kind.__name__}, got {type(data).__name__}")
        hints = typing.get_type_hints(kind)
        return kind(**{f.name: from_plain(hints[f.name], data[f.name])
                       for f in dataclasses.fields(kind) if f.init and f.name in data})
    if origin in (typing.Union, types.UnionType):
        if data is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return from_plain(inner, data)
    if origin in (list, tuple):
        if not isinstance(data, list):
            raise ValueError(f"expected a list, got {type(data).__name__}")
        if origin is list:
            return [from_plain(args[0], v) for v in data]
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(from_plain(args[0], v) for v in data)
        if len(args) != len(data):
            raise ValueError(f"expected {len(args)} items, got {len(data)}")
        return tuple(from_plain(a, v) for a, v in zip(args, data))
    if kind is Path:
        return Path(_scalar(str, data))
    if kind in _SCALARS:
        return _scalar(kind, data)
    raise TypeError(f"cannot read a {kind} from plain data")


def _scalar(kind: type[T], data: Any) -> T:
    if kind is float and isinstance(data, int) and not isinstance(data, bool):
        return float(data)  # type: ignore[return-value]  # JSON writes 2.0 as 2.0, but a hand-made file may say 2
    if not isinstance(data, kind) or (kind is int and isinstance(data, bool)):
        raise ValueError(f"expected {kind.__name__}, got {type(data).__name__}")
    return data


def versioned(kind: str, version: int, fields: dict[str, Any]) -> dict[str, Any]:
    """``fields`` tagged with what they are and the layout's version, for :func:`check_version`."""
    return {"kind": kind, "version": version, **fields}


def check_version(data: Any, kind: str, version: int) -> dict[str, Any]:
    """``data``'s fields, if it is a ``kind`` written in layout ``version`` (a ValueError otherwise).

    >>> check_version({"kind": "score", "version": 9}, "score", 1)
    Traceback (most recent call last):
    ...
    ValueError: a score in layout 9 cannot be read here (this version reads layout 1)
    """
    if not isinstance(data, dict) or data.get("kind") != kind:
        raise ValueError(f"not a {kind}")
    if data.get("version") != version:
        raise ValueError(f"a {kind} in layout {data.get('version')} cannot be read here (this version reads layout {version})")
    return {k: v for k, v in data.items() if k not in ("kind", "version")}
