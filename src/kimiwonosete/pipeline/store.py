"""Where stages keep what they make: a local folder, or any fsspec URL (``s3://bucket/prefix``
through s3fs), so that a stage can run on any machine that reaches the store.

Keys are ``/``-separated names below the store's root, made by this package (a file name may
hold an input's stem: no part of a key may climb out of the root). A write is all or nothing: a
reader never sees part of an object.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from kimiwonosete.errors import OutputError
from kimiwonosete.files import atomic_path


class Store:
    """Objects by key under ``url``: a folder (a path or ``file://``), or a URL fsspec opens, e.g.
    ``s3://bucket/prefix`` (``pip install 'kimiwonosete[s3]'``; credentials and endpoint from the
    usual ``AWS_*`` variables, or ``options`` passed to s3fs).

    >>> import tempfile
    >>> store = Store(tempfile.mkdtemp())
    >>> store.put("a/b.json", b"{}").endswith("/a/b.json"), store.get("a/b.json"), store.get("missing")
    (True, b'{}', None)
    """

    def __init__(self, url: str | os.PathLike[str], **options: Any) -> None:
        import fsspec

        self.url = os.fspath(url).rstrip("/") or "/"
        self.options = options
        try:
            if isinstance(url, os.PathLike) or "://" not in self.url:
                # A plain path is a folder, whatever characters it holds (fsspec would read "a::b" as a chain).
                self.fs, self.root = fsspec.filesystem("file"), os.path.abspath(self.url)
            else:
                self.fs, self.root = fsspec.url_to_fs(self.url, **options)
        except (ImportError, ValueError) as exc:
            hint = " (install s3fs: pip install 'kimiwonosete[s3]')" if self.url.startswith("s3:") else ""
            raise OutputError(f"{self.url}: cannot use this storage{hint}: {exc}") from None
        self.local = "file" in (self.fs.protocol if isinstance(self.fs.protocol, tuple) else (self.fs.protocol,))

    def __reduce__(self) -> tuple[Any, ...]:
        # Workers (spawned processes, Ray actors) rebuild the store from its URL and options.
        return _rebuilt, (self.url, self.options)

    def __repr__(self) -> str:
        return f"Store({self.url!r})"

    def _path(self, key: str) -> str:
        if any(part in ("", ".", "..") for part in key.split("/")) or "\\" in key or "\0" in key:
            raise ValueError(f"not a store key: {key!r}")
        return f"{self.root.rstrip('/')}/{key}"

    def ref(self, key: str) -> str:
        """Where ``key`` lives, as a path (local store) or URL: what an artifact reference says."""
        self._path(key)
        return f"{self.url}/{key}" if self.url != "/" else f"/{key}"

    @contextmanager
    def writer(self, key: str) -> Iterator[IO[bytes]]:
        """A binary file to stream ``key``'s bytes into; the object appears, whole, only if the
        block succeeds."""
        path = self._path(key)
        if self.local:
            # Beside its final name, then renamed (fsspec's own local temporary file is made in
            # /tmp and moved, which is a copy, visible half-written, across file systems).
            with atomic_path(Path(path)) as tmp, open(tmp, "wb") as fh:
                yield fh
            return
        try:
            fh = self.fs.open(path, "wb", autocommit=False)  # an S3 upload completes only on commit
        except OSError as exc:
            raise OutputError(f"{self.ref(key)}: cannot write ({exc})") from exc
        try:
            yield fh
            fh.close()
            fh.commit()
        except BaseException:
            fh.discard()
            raise

    def put(self, key: str, data: bytes) -> str:
        """Write ``data`` as ``key``; its reference."""
        with self.writer(key) as fh:
            fh.write(data)
        return self.ref(key)

    def get(self, key: str) -> bytes | None:
        """``key``'s bytes, or ``None`` if there is no such object."""
        try:
            return self.fs.cat_file(self._path(key))
        except (FileNotFoundError, IsADirectoryError):
            return None

    def read_range(self, key: str, start: int, end: int) -> bytes:
        """Bytes ``start`` to ``end`` of ``key`` (only those are read)."""
        return self.fs.cat_file(self._path(key), start=start, end=end) if end > start else b""

    def size(self, key: str) -> int | None:
        try:
            return int(self.fs.size(self._path(key)))
        except FileNotFoundError:
            return None

    def keys(self, prefix: str) -> list[str]:
        """The keys below ``prefix`` (a key's folder), sorted."""
        base = self._path(prefix)
        self.fs.invalidate_cache(base)
        try:
            found = self.fs.find(base)
        except FileNotFoundError:
            return []
        root = self.root.rstrip("/") + "/"
        return sorted(p.removeprefix(root) for p in found if not Path(p).name.endswith(".part"))

    def remove(self, prefix: str) -> None:
        """Delete ``prefix`` and everything below it (nothing if it is not there)."""
        path = self._path(prefix)
        try:
            self.fs.rm(path, recursive=True)
        except FileNotFoundError:
            pass
        self.fs.invalidate_cache(path)


def _rebuilt(url: str, options: dict[str, Any]) -> Store:
    return Store(url, **options)
