"""Open a rosbag2 bag, reading what is readable of one that a killed recording left behind.

`ros2 bag record` writes metadata.yaml and the MCAP summary/footer when it stops; a
killed recording leaves neither, a full disk or a copy cut short leaves a truncated
file. rosbags opens a storage file without metadata.yaml directly; an MCAP it cannot
open is read here record by record (mcap's stream reader, chunk CRCs checked) up to
the first unreadable record. What was lost is returned as notes, one line each, that
name the file.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Collection, Iterator, Sequence
from pathlib import Path
from typing import Any

import yaml
from mcap.exceptions import EndOfFile
from mcap.records import Channel, Message, Schema
from mcap.stream_reader import StreamReader
from rosbags.highlevel import AnyReader, AnyReaderError
from rosbags.interfaces import (
    Connection,
    ConnectionExtRosbag2,
    MessageDefinition,
    MessageDefinitionFormat,
)
from rosbags.rosbag2 import ReaderError
from rosbags.typesys import Stores, get_types_from_idl, get_types_from_msg, get_typestore

from restac_ros.core.bag_info import BagCorrupt, BagError

# Errors rosbags and sqlite raise on unreadable / truncated storage.
STORAGE_ERRORS = (AnyReaderError, ReaderError, sqlite3.DatabaseError, EOFError, OSError)
STORAGE_SUFFIXES = (".mcap", ".db3")
_FORMATS = {"ros2msg": MessageDefinitionFormat.MSG, "ros2idl": MessageDefinitionFormat.IDL,
            "omgidl": MessageDefinitionFormat.IDL}


def _split_order(path: Path) -> tuple:
    """rosbag2 splits: name_0, name_1, ..., name_10 in recording order."""
    m = re.search(r"_(\d+)$", path.stem)
    return (path.stem[: m.start()] if m else path.stem, int(m.group(1)) if m else -1)


def storage_files(directory: Path) -> list[Path]:
    return sorted((f for f in directory.iterdir() if f.suffix in STORAGE_SUFFIXES),
                  key=_split_order)


def _custom_from_yaml(directory: Path) -> dict[str, str]:
    """custom_data of a metadata.yaml rosbags could not use (its storage is damaged)."""
    try:
        info = yaml.safe_load((directory / "metadata.yaml").read_text())
        custom = info["rosbag2_bagfile_information"].get("custom_data") or {}
    except (OSError, yaml.YAMLError, KeyError, TypeError, AttributeError):
        return {}
    return {str(k): str(v) for k, v in custom.items()} if isinstance(custom, dict) else {}


class SalvagedMcap:
    """The readable leading part of MCAP files, with the reader API BagDataset uses
    (connections, start_time, end_time, message_count, messages, deserialize, close).

    Messages come in file order; rosbag2 writes them as they arrive, which is log-time
    order up to the writer's own jitter.
    """

    def __init__(self, files: Sequence[Path], custom: dict[str, str] | None = None) -> None:
        self.files = list(files)
        self.custom = dict(custom or {})
        self.readers: list = []  # no rosbags sub-readers (bag_info._custom_data reads .custom)
        self.connections: list[Connection] = []
        self.notes: list[str] = []
        self._readable: dict[Path, int] = {}  # messages readable from each file
        self._conn: dict[tuple[Path, int], Connection] = {}
        self.start_time = 2**63 - 1
        self.end_time = 0
        self.message_count = 0
        self.typestore = get_typestore(Stores.ROS2_KILTED)

    def _records(self, path: Path, fh) -> Iterator:
        size = path.stat().st_size
        return StreamReader(fh, validate_crcs=True, record_size_limit=size).records

    def open(self) -> None:
        types: dict = {}
        counts: dict[int, int] = {}
        for path in self.files:
            schemas: dict[int, Schema] = {}
            n = 0
            with path.open("rb") as fh:
                try:
                    for rec in self._records(path, fh):
                        if isinstance(rec, Schema):
                            schemas[rec.id] = rec
                        elif isinstance(rec, Channel):
                            self._add_channel(path, rec, schemas.get(rec.schema_id), types)
                        elif isinstance(rec, Message) and (path, rec.channel_id) in self._conn:
                            n += 1
                            cid = self._conn[path, rec.channel_id].id
                            counts[cid] = counts.get(cid, 0) + 1
                            self.start_time = min(self.start_time, rec.log_time)
                            self.end_time = max(self.end_time, rec.log_time + 1)
                    complete = True
                except EndOfFile:
                    complete = False
                    self.notes.append(f"{path}: truncated (ends inside a record at byte "
                                      f"{path.stat().st_size}); {n} messages before it are used")
                except Exception as err:  # mcap raises many types on damaged data
                    complete = False
                    what = f"{type(err).__name__}: {err}" if str(err) else type(err).__name__
                    self.notes.append(f"{path}: unreadable near byte {fh.tell()} of "
                                      f"{path.stat().st_size} ({what}); {n} messages before "
                                      "it are used")
            if complete:
                self.notes.append(f"{path}: no MCAP summary (recording not closed); "
                                  f"{n} messages read in file order")
            self._readable[path] = n
            self.message_count += n
        self.typestore.register(types)
        self.connections = [c._replace(msgcount=counts.get(c.id, 0)) for c in self.connections]
        self._conn = {k: c._replace(msgcount=counts.get(c.id, 0)) for k, c in self._conn.items()}

    def _add_channel(self, path: Path, ch: Channel, schema: Schema | None, types: dict) -> None:
        msgtype = schema.name if schema is not None else ""
        fmt = _FORMATS.get(schema.encoding, MessageDefinitionFormat.NONE) if schema else \
            MessageDefinitionFormat.NONE
        text = schema.data.decode() if schema is not None else ""
        if fmt == MessageDefinitionFormat.MSG:
            types.update(get_types_from_msg(text, msgtype))
        elif fmt == MessageDefinitionFormat.IDL:
            sep = "=" * 80 + "\n"
            parts = [p.split("\n", 1)[1] for p in text.split(sep)[1:]] \
                if text.startswith(f"{sep}IDL: ") else [text]
            for idl in parts:
                types.update(get_types_from_idl(idl))
        conn = Connection(
            id=len(self.connections) + 1, topic=ch.topic, msgtype=msgtype,
            msgdef=MessageDefinition(fmt, text), digest="", msgcount=0,
            ext=ConnectionExtRosbag2(ch.message_encoding,
                                     ch.metadata.get("offered_qos_profiles", "")),
            owner=self)
        self.connections.append(conn)
        self._conn[path, ch.id] = conn

    def messages(self, connections: Collection[Connection] = ()
                 ) -> Iterator[tuple[Connection, int, bytes]]:
        """(connection, log time ns, CDR bytes) of the readable messages, in file order."""
        wanted = {c.id for c in connections} if connections else None
        for path in self.files:
            left = self._readable[path]
            if not left:
                continue
            with path.open("rb") as fh:
                for rec in self._records(path, fh):
                    if not isinstance(rec, Message) or (path, rec.channel_id) not in self._conn:
                        continue
                    conn = self._conn[path, rec.channel_id]
                    if wanted is None or conn.id in wanted:
                        yield conn, rec.log_time, rec.data
                    left -= 1
                    if not left:
                        break

    def deserialize(self, raw: bytes, msgtype: str) -> Any:
        return self.typestore.deserialize_cdr(raw, msgtype)

    def close(self) -> None:
        """Nothing stays open between reads."""


def open_bag(path: Path) -> tuple[Any, list[str]]:
    """(open reader, notes on what is missing or lost; [] for an intact bag).

    BagError when nothing can be read: the path does not exist, is no bag, or no
    message of it is readable.
    """
    path = Path(path)
    if not path.exists():
        raise BagError(f"bag not found: {path}")
    notes: list[str] = []
    targets = [path]
    if path.is_dir() and not (path / "metadata.yaml").is_file():
        targets = storage_files(path)
        if not targets:
            raise BagError(f"{path}: no metadata.yaml and no .mcap/.db3 file: not a rosbag2 bag")
        notes.append(f"{path}: no metadata.yaml (recording killed?); read "
                     f"{', '.join(t.name for t in targets)} without the bag's custom metadata")
    reader = AnyReader(targets)
    try:
        reader.open()
        return reader, notes
    except STORAGE_ERRORS as err:
        error = f"{path}: cannot open bag: {err}"
    files = storage_files(path) if path.is_dir() else [path]
    mcaps = [f for f in files if f.suffix == ".mcap"]
    if not mcaps or len(mcaps) != len(files):
        raise BagCorrupt(error)
    salvage = SalvagedMcap(mcaps, _custom_from_yaml(path) if path.is_dir() else {})
    salvage.open()
    if salvage.message_count == 0:
        raise BagCorrupt(f"{error}; no message is readable ({'; '.join(salvage.notes)})")
    return salvage, [*notes, *salvage.notes]
