"""The conditions store: tags of intervals of validity (IOVs) on one SQLite file.

Like a global tag in CMS's conditions database, a *tag* names a sequence of
IOVs; each IOV starts at a run (``first_run``) and lasts until the next IOV of
the tag starts (the last one is open-ended). Every IOV carries a validated
:class:`ConditionsPayload`, stored once per distinct content (by hash).

The store is one SQLite file (nothing to start); every change is one
transaction, so a failed ``add`` or ``import`` leaves the store as it was.

YAML form (``export_yaml`` / ``import_yaml``)::

    schema_version: 1
    tags:
      run3:
        - first_run: 1
          comment: start of era
          payload: {calibration: {jet: 1.0, ...}, mean_pileup: 50, ...}
"""

from __future__ import annotations

import builtins
import json
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from l1flow.conditions.change import ChangeTolerances, FieldChange, payload_changes
from l1flow.conditions.payload import ConditionsPayload, PayloadError, parse_payload
from l1flow.errors import BadInputError
from l1flow.fileio import write_text_atomic

SCHEMA_VERSION = 1
DEFAULT_STORE_NAME = "conditions.sqlite"
MAX_RUN = 2**62


class StoreError(BadInputError):
    """The conditions store cannot do what was asked (names the file and what to do)."""


@dataclass(frozen=True)
class IOV:
    """One interval of validity: runs [first_run, last_run] of ``tag`` (last_run None = open-ended)."""

    tag: str
    first_run: int
    last_run: int | None
    payload_hash: str
    payload: ConditionsPayload
    comment: str
    inserted: str

    def describe(self) -> str:
        end = "..." if self.last_run is None else str(self.last_run)
        return f"{self.tag} runs {self.first_run}-{end} payload {self.payload_hash[:12]}"


_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS payloads (hash TEXT PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS iovs (
    tag TEXT NOT NULL,
    first_run INTEGER NOT NULL,
    payload_hash TEXT NOT NULL REFERENCES payloads(hash),
    comment TEXT NOT NULL DEFAULT '',
    inserted TEXT NOT NULL,
    PRIMARY KEY (tag, first_run)
);
"""


class ConditionsStore:
    """Tags of IOVs with validated payloads in one SQLite file (created if absent)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if self.path.exists() and not self.path.is_file():
            raise StoreError(f"{self.path}: is not a file; give the path of a conditions .sqlite file")
        fresh = not self.path.exists() or self.path.stat().st_size == 0
        if fresh:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(self.path)
            self._db.execute("PRAGMA foreign_keys = ON")
            if fresh:
                with self._db:
                    self._db.executescript(_SCHEMA)
                    self._db.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            row = self._db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        except sqlite3.DatabaseError as exc:
            raise StoreError(
                f"{self.path}: not a readable conditions store ({exc}); point --store at a conditions .sqlite file"
            ) from exc
        if row is None:
            raise StoreError(f"{self.path}: missing schema_version in table 'meta'; this is not a conditions store")
        version = int(row[0])
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path}: conditions store schema version {version} is newer than this l1flow supports "
                f"({SCHEMA_VERSION}); upgrade l1flow to read it"
            )

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> ConditionsStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._db:
            yield self._db

    # ---- writing ---------------------------------------------------------

    def add(self, tag: str, first_run: int, payload: ConditionsPayload, comment: str = "") -> IOV:
        """Append an IOV starting at ``first_run``; an existing IOV at that run is an error."""
        with self._transaction() as db:
            self._add(db, tag, first_run, payload, comment)
        return self.iov(tag, first_run)

    def _add(self, db: sqlite3.Connection, tag: str, first_run: int, payload: ConditionsPayload, comment: str) -> None:
        if not tag or not tag.strip() or tag != tag.strip():
            raise StoreError(f"{self.path}: tag {tag!r} must be a non-empty name without surrounding spaces")
        if isinstance(first_run, bool) or not isinstance(first_run, int) or not 0 <= first_run <= MAX_RUN:
            raise StoreError(f"{self.path}: first_run must be a run number >= 0, got {first_run!r}")
        if not isinstance(payload, ConditionsPayload):
            raise StoreError(f"{self.path}: payload must be a ConditionsPayload, got {type(payload).__name__}")
        existing = db.execute("SELECT payload_hash FROM iovs WHERE tag = ? AND first_run = ?", (tag, first_run)).fetchone()
        if existing is not None:
            raise StoreError(
                f"{self.path}: tag {tag!r} already has an IOV starting at run {first_run}; "
                f"add the new conditions at a later run (IOVs are never overwritten)"
            )
        later = db.execute("SELECT MIN(first_run) FROM iovs WHERE tag = ? AND first_run > ?", (tag, first_run)).fetchone()[0]
        if later is not None:
            # IOVs are open-ended until the next one: inserting inside one would silently cut it short
            before = db.execute("SELECT MAX(first_run) FROM iovs WHERE tag = ? AND first_run < ?", (tag, first_run)).fetchone()[0]
            inside = f"inside the IOV {before}-{later - 1}" if before is not None else f"before its first IOV (run {later})"
            last = db.execute("SELECT MAX(first_run) FROM iovs WHERE tag = ?", (tag,)).fetchone()[0]
            shortened = f"cut that IOV to {before}-{first_run - 1}" if before is not None else "change past runs"
            raise StoreError(
                f"{self.path}: tag {tag!r}: run {first_run} falls {inside}; adding it would {shortened}. "
                f"IOVs are only appended: add the new conditions at a run after {last}, or under a new tag"
            )
        digest = payload.content_hash()
        db.execute("INSERT OR IGNORE INTO payloads VALUES (?, ?)", (digest, json.dumps(payload.to_dict(), sort_keys=True)))
        db.execute(
            "INSERT INTO iovs VALUES (?, ?, ?, ?, ?)",
            (tag, first_run, digest, comment, datetime.now(UTC).isoformat(timespec="seconds")),
        )

    # ---- reading ---------------------------------------------------------

    def tags(self) -> builtins.list[str]:
        return [r[0] for r in self._db.execute("SELECT DISTINCT tag FROM iovs ORDER BY tag")]

    def has_tag(self, tag: str) -> bool:
        return self._db.execute("SELECT 1 FROM iovs WHERE tag = ? LIMIT 1", (tag,)).fetchone() is not None

    def list(self, tag: str | None = None) -> builtins.list[IOV]:
        """All IOVs (of one tag, or of every tag), ordered by tag and first run."""
        if tag is not None:
            self._require_tag(tag)
        query = "SELECT tag, first_run FROM iovs" + (" WHERE tag = ?" if tag is not None else "")
        rows = self._db.execute(query + " ORDER BY tag, first_run", (tag,) if tag is not None else ()).fetchall()
        return [self.iov(t, r) for t, r in rows]

    def iov(self, tag: str, run: int) -> IOV:
        """The IOV of ``tag`` valid at ``run``."""
        self._require_tag(tag)
        row = self._db.execute(
            "SELECT first_run, payload_hash, comment, inserted FROM iovs WHERE tag = ? AND first_run <= ? "
            "ORDER BY first_run DESC LIMIT 1",
            (tag, run),
        ).fetchone()
        if row is None:
            first = self._db.execute("SELECT MIN(first_run) FROM iovs WHERE tag = ?", (tag,)).fetchone()[0]
            raise StoreError(f"{self.path}: tag {tag!r} has no conditions for run {run}; its first IOV starts at run {first}")
        first_run, digest, comment, inserted = row
        nxt = self._db.execute(
            "SELECT MIN(first_run) FROM iovs WHERE tag = ? AND first_run > ?", (tag, first_run)
        ).fetchone()[0]
        return IOV(tag, first_run, None if nxt is None else nxt - 1, digest, self._payload(digest), comment, inserted)

    def get(self, tag: str, run: int) -> ConditionsPayload:
        """The payload of ``tag`` valid at ``run``."""
        return self.iov(tag, run).payload

    def latest(self, tag: str) -> IOV:
        """The IOV of ``tag`` with the highest first run (the one valid from then on)."""
        self._require_tag(tag)
        run = self._db.execute("SELECT MAX(first_run) FROM iovs WHERE tag = ?", (tag,)).fetchone()[0]
        return self.iov(tag, run)

    def diff(
        self, tag: str, run_a: int, run_b: int, other_tag: str | None = None,
        tolerances: ChangeTolerances | None = None,
    ) -> builtins.list[FieldChange]:
        """Fields that differ between ``tag``@``run_a`` and (``other_tag`` or ``tag``)@``run_b``."""
        a = self.get(tag, run_a)
        b = self.get(other_tag or tag, run_b)
        return payload_changes(a, b, tolerances or ChangeTolerances())

    def _require_tag(self, tag: str) -> None:
        if not self.has_tag(tag):
            known = ", ".join(self.tags()) or "none"
            raise StoreError(f"{self.path}: no tag {tag!r} (tags: {known})")

    def _payload(self, digest: str) -> ConditionsPayload:
        body = self._db.execute("SELECT body FROM payloads WHERE hash = ?", (digest,)).fetchone()[0]
        try:
            return parse_payload(json.loads(body), f"{self.path} payload {digest[:12]}")
        except (PayloadError, json.JSONDecodeError) as exc:
            raise StoreError(f"{self.path}: stored payload {digest[:12]} is invalid: {exc}") from exc

    # ---- YAML ------------------------------------------------------------

    def to_yaml_data(self, tags: Sequence[str] | None = None) -> dict[str, Any]:
        chosen = list(tags) if tags else self.tags()
        return {
            "schema_version": SCHEMA_VERSION,
            "tags": {
                t: [{"first_run": i.first_run, "comment": i.comment, "payload": i.payload.to_dict()} for i in self.list(t)]
                for t in chosen
            },
        }

    def export_yaml(self, path: str | Path, tags: Sequence[str] | None = None) -> Path:
        """Write tags (default: all) to YAML atomically."""
        return write_text_atomic(path, yaml.safe_dump(self.to_yaml_data(tags), sort_keys=False))

    def import_yaml(self, path: str | Path) -> builtins.list[IOV]:
        """Add every IOV of a YAML file (all or nothing); IOVs already present with the same payload are skipped."""
        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text())
        except FileNotFoundError:
            raise StoreError(f"{path}: no such YAML file") from None
        except yaml.YAMLError as exc:
            raise StoreError(f"{path}: not valid YAML ({exc})") from exc
        if not isinstance(data, dict) or not isinstance(data.get("tags"), dict):
            raise StoreError(f"{path}: expected a mapping with 'schema_version' and 'tags' (tag -> list of IOVs)")
        unknown = set(data) - {"schema_version", "tags"}
        if unknown:
            raise StoreError(f"{path}: unknown top-level key(s) {sorted(unknown)}; allowed: schema_version, tags")
        version = data.get("schema_version", SCHEMA_VERSION)
        if not isinstance(version, int) or version > SCHEMA_VERSION:
            raise StoreError(f"{path}: schema_version {version!r} is newer than this l1flow supports ({SCHEMA_VERSION})")
        entries: builtins.list[tuple[str, int, ConditionsPayload, str]] = []
        for tag, iovs in data["tags"].items():
            if not isinstance(iovs, list):
                raise StoreError(f"{path}: tags.{tag} must be a list of IOVs")
            for n, entry in enumerate(iovs):
                where = f"{path}: tags.{tag}[{n}]"
                if not isinstance(entry, dict) or "first_run" not in entry or "payload" not in entry:
                    raise StoreError(f"{where}: an IOV needs 'first_run' and 'payload'")
                extra = set(entry) - {"first_run", "payload", "comment"}
                if extra:
                    raise StoreError(f"{where}: unknown key(s) {sorted(extra)}; allowed: first_run, payload, comment")
                run = entry["first_run"]
                if isinstance(run, bool) or not isinstance(run, int) or run < 0:
                    raise StoreError(f"{where}.first_run: must be a run number >= 0, got {run!r}")
                try:
                    payload = parse_payload(entry["payload"], f"{where}.payload")
                except PayloadError as exc:
                    raise StoreError(str(exc)) from exc
                entries.append((str(tag), run, payload, str(entry.get("comment", ""))))
        added: builtins.list[tuple[str, int]] = []
        entries.sort(key=lambda entry: (entry[0], entry[1]))  # appended in run order, whatever the file's order
        with self._transaction() as db:
            for tag, run, payload, comment in entries:
                row = db.execute("SELECT payload_hash FROM iovs WHERE tag = ? AND first_run = ?", (tag, run)).fetchone()
                if row is not None and row[0] == payload.content_hash():
                    continue
                self._add(db, tag, run, payload, comment)
                added.append((tag, run))
        return [self.iov(t, r) for t, r in added]
