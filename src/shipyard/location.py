"""Where gateways and pipelines record: a local folder, or a prefix in an object store (``s3://bucket/prefix``).

Both are reached through pyarrow's filesystems, so the prediction log, labels and lineage events are written and
read by one code path. What differs is how a file appears whole: on the local disk it is written under a dot-name,
synced and renamed; an object store has no rename, so each object is written once under its final name from a
buffer already complete, and the store shows it only once the upload is complete. A reader never sees a partial file.

The object store's endpoint and credentials are the AWS SDK's own: ``AWS_ENDPOINT_URL`` (or ``AWS_ENDPOINT_URL_S3``),
``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` / ``AWS_SESSION_TOKEN``, ``AWS_PROFILE``, ``AWS_REGION``, an
instance or pod role; pyarrow reads them. ``deploy.shared_endpoint`` overrides the endpoint, and the URI may carry
pyarrow's options (``s3://bucket/prefix?region=eu-west-1``).
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit

from shipyard import swap
from shipyard.domain.errors import BackendUnavailable, InvalidSpec

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.fs as pafs

OBJECT_STORE_SCHEMES = ("s3",)
SETTING = "deploy.shared_path"
HINT = (
    "Check deploy.shared_path in shipyard.yaml, the endpoint (deploy.shared_endpoint, else $AWS_ENDPOINT_URL) and the "
    "credentials ($AWS_ACCESS_KEY_ID and $AWS_SECRET_ACCESS_KEY, $AWS_PROFILE, or the pod's role)."
)


def is_object_store(value: str) -> bool:
    return urlsplit(value).scheme.lower() in OBJECT_STORE_SCHEMES


def check_uri(value: str) -> str:
    """An object-store URI as deploy.shared_path takes it, or a ValueError saying what was expected."""
    parts = urlsplit(value)
    if "://" not in value or not parts.scheme:
        return value  # a local folder
    if parts.scheme.lower() == "file":
        raise ValueError(f"expected a folder path or s3://bucket/prefix, got {value!r}; write the folder without file://")
    if parts.scheme.lower() not in OBJECT_STORE_SCHEMES:
        raise ValueError(
            f"expected a folder path or an s3://bucket/prefix URI, got scheme {parts.scheme!r}; "
            "S3-compatible stores (AWS S3, MinIO, Ceph, …) go through s3:// with an endpoint"
        )
    if not parts.netloc:
        raise ValueError(f"expected s3://bucket/prefix, got {value!r} (no bucket)")
    return value


@dataclass(frozen=True, slots=True)
class ObjectStore:
    """One object store as configured: the URI of the shared prefix, and the endpoint that overrides the SDK's."""

    uri: str
    endpoint: str | None = None

    @property
    def bucket(self) -> str:
        return urlsplit(self.uri).netloc

    @property
    def root(self) -> str:
        """The prefix's path on the filesystem: bucket/prefix."""
        parts = urlsplit(self.uri)
        return f"{parts.netloc}/{parts.path.strip('/')}".rstrip("/")

    @property
    def scheme(self) -> str:
        return urlsplit(self.uri).scheme.lower()

    def filesystem(self) -> pafs.FileSystem:
        return _filesystem(self)


@functools.lru_cache(maxsize=8)
def _filesystem(store: ObjectStore) -> pafs.FileSystem:
    import pyarrow.fs as pafs

    parts = urlsplit(store.uri)
    query = dict(parse_qsl(parts.query))
    if store.endpoint and "endpoint_override" not in query:
        endpoint = urlsplit(store.endpoint if "://" in store.endpoint else f"https://{store.endpoint}")
        query["endpoint_override"] = endpoint.netloc
        query.setdefault("scheme", endpoint.scheme)
    uri = parts._replace(query=urlencode(query)).geturl()
    try:
        filesystem, _ = pafs.FileSystem.from_uri(uri)
    except ValueError as exc:  # pyarrow's ArrowInvalid: an option it does not know, a malformed URI
        raise InvalidSpec(
            f"{SETTING} {store.uri!r} is not a URI pyarrow can open: {exc}",
            hint="Write s3://bucket/prefix, optionally with pyarrow's S3 options (?region=…, ?scheme=http).",
        ) from exc
    except OSError as exc:
        raise BackendUnavailable(f"cannot open the object store {store.uri} ({SETTING}): {exc}", hint=HINT) from exc
    return filesystem


@functools.lru_cache(maxsize=1)
def _local() -> pafs.FileSystem:
    import pyarrow.fs as pafs

    return pafs.LocalFileSystem()


@dataclass(frozen=True, slots=True)
class Location:
    """A folder: ``path`` on the local disk (``store`` None), or ``path`` = bucket/prefix/… in ``store``."""

    path: str
    store: ObjectStore | None = None

    @classmethod
    def of(cls, where: Location | Path | str) -> Location:
        if isinstance(where, Location):
            return where
        return cls(path=str(Path(where).absolute()))

    @classmethod
    def shared(cls, value: str, *, endpoint: str | None = None) -> Location:
        """deploy.shared_path as configured: an object-store URI (a local path is resolved by the caller)."""
        store = ObjectStore(uri=value, endpoint=endpoint or None)
        return cls(path=store.root, store=store)

    def __truediv__(self, name: str) -> Location:
        if self.store is None:
            return Location(path=os.path.join(self.path, name))
        return Location(path=f"{self.path}/{name}", store=self.store)

    def __str__(self) -> str:
        return self.path if self.store is None else f"{self.store.scheme}://{self.path}"

    @property
    def name(self) -> str:
        return self.path.rstrip("/").rpartition("/")[2]

    @property
    def local(self) -> Path | None:
        """The folder on the local disk, or None in an object store."""
        return Path(self.path) if self.store is None else None

    def filesystem(self) -> pafs.FileSystem:
        return _local() if self.store is None else self.store.filesystem()

    # -- reading --------------------------------------------------------------------------

    def entries(self, *, kind: Literal["file", "dir"], prefix: str = "", suffix: str = "") -> list[str]:
        """Names of this folder's files or folders (not deeper), sorted; none when the folder does not exist."""
        import pyarrow.fs as pafs

        wanted = pafs.FileType.File if kind == "file" else pafs.FileType.Directory
        try:
            infos = self.filesystem().get_file_info(pafs.FileSelector(self.path, allow_not_found=True))
        except (OSError, ValueError) as exc:
            if self.store is None and isinstance(exc, NotADirectoryError | FileNotFoundError):
                return []
            raise self.unavailable("list", exc) from exc
        return sorted(
            info.base_name
            for info in infos
            if info.type == wanted and info.base_name.startswith(prefix) and info.base_name.endswith(suffix)
        )

    def is_file(self) -> bool:
        import pyarrow.fs as pafs

        try:
            return bool(self.filesystem().get_file_info(self.path).type == pafs.FileType.File)
        except (OSError, ValueError) as exc:
            raise self.unavailable("look up", exc) from exc

    def size(self) -> int:
        """Bytes of every file at or under this path."""
        import pyarrow.fs as pafs

        filesystem = self.filesystem()
        try:
            info = filesystem.get_file_info(self.path)
            if info.type == pafs.FileType.File:
                return int(info.size or 0)
            if info.type != pafs.FileType.Directory and self.store is None:
                return 0
            found = filesystem.get_file_info(pafs.FileSelector(self.path, recursive=True, allow_not_found=True))
        except (OSError, ValueError) as exc:
            raise self.unavailable("measure", exc) from exc
        return sum(int(i.size or 0) for i in found if i.type == pafs.FileType.File)

    def read_bytes(self) -> bytes:
        try:
            with self.filesystem().open_input_stream(self.path) as stream:
                return bytes(stream.read())
        except (OSError, ValueError) as exc:
            raise self.unavailable("read", exc) from exc

    # -- writing ---------------------------------------------------------------------------

    def write_parquet(self, table: pa.Table) -> None:
        """Write ``table`` as this Parquet file, which readers see whole or not at all."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        local = self.local
        if local is not None:
            swap.replace_file(local, lambda temporary: pq.write_table(table, temporary))
            return
        # Encoded in memory first: a file that fails to encode never reaches the store.
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink)
        self._upload(sink.getvalue())

    def write_bytes(self, data: bytes) -> None:
        """Write ``data`` as this file, which readers see whole or not at all."""
        local = self.local
        if local is not None:
            swap.replace_file(local, lambda temporary: temporary.write_bytes(data))
            return
        self._upload(data)

    def _upload(self, data: bytes | pa.Buffer) -> None:
        try:
            # One object under its final name: S3 shows it only when the upload completes.
            with self.filesystem().open_output_stream(self.path) as stream:
                stream.write(data)
        except (OSError, ValueError) as exc:
            raise self.unavailable("write", exc) from exc

    # -- checks ------------------------------------------------------------------------------

    def check(self) -> None:
        """Refuse an object store that cannot be reached or has no such bucket; nothing to check on the local disk."""
        import pyarrow.fs as pafs

        if self.store is None:
            return
        try:
            bucket = self.filesystem().get_file_info(self.store.bucket)
        except (OSError, ValueError) as exc:
            raise self.unavailable("reach", exc) from exc
        if bucket.type == pafs.FileType.NotFound:
            raise BackendUnavailable(
                f"the bucket {self.store.bucket!r} of {SETTING} ({self.store.uri}) does not exist",
                hint="Create the bucket (Shipyard does not create it), or correct deploy.shared_path. " + HINT,
            )

    def unavailable(self, verb: str, exc: BaseException) -> BackendUnavailable:
        if self.store is None:
            return BackendUnavailable(f"could not {verb} {self}: {exc}", hint="The folder must be readable and writable.")
        endpoint = f", endpoint {self.store.endpoint}" if self.store.endpoint else ""
        return BackendUnavailable(f"could not {verb} {self} ({SETTING}{endpoint}): {exc}", hint=HINT)


def require_local(location: Location, what: str, setting: str) -> Path:
    """The local folder, or one clear refusal: ``what`` (named by ``setting``) needs a local disk."""
    local = location.local
    if local is None:
        raise InvalidSpec(
            f"{what} ({setting}) rewrites files in place with local renames, which an object store cannot do; "
            f"{SETTING} is {location.store.uri if location.store else location}",
            hint=f"Unset {setting} (null) and expire old objects with the bucket's lifecycle rules, or set "
            f"{SETTING} to a folder on a shared volume.",
        )
    return local
