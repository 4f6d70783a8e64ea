"""Clocks: the system clock, a shifted one, and a file-driven one for tests and demos.

``FileClock`` reads one ISO-8601 instant with its offset from a file and
re-reads it whenever the file changes (tests write it atomically: temp file,
then rename). It does not tick on its own: time moves when the file moves.
A file that later becomes unreadable keeps the last good instant (and logs
once), so a half-written file never makes time jump.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from services.common.logging import get_logger
from services.sla_watch.errors import ClockError
from services.sla_watch.ports import Clock

__all__ = ["FileClock", "OffsetClock", "SystemClock", "build_clock", "parse_instant"]

log = get_logger(__name__)


def parse_instant(text: str) -> dt.datetime:
    """Parse an aware ISO-8601 instant into UTC; ``ClockError`` when naive or malformed."""
    try:
        value = dt.datetime.fromisoformat(text.strip())
    except ValueError as error:
        raise ClockError(f"not an ISO-8601 instant: {text.strip()[:40]!r}") from error
    if value.tzinfo is None or value.utcoffset() is None:
        raise ClockError(f"instant without a UTC offset: {text.strip()[:40]!r}")
    return value.astimezone(dt.UTC)


class SystemClock:
    """Real time, in UTC."""

    def now(self) -> dt.datetime:
        """The current real instant."""
        return dt.datetime.now(dt.UTC)


class OffsetClock:
    """Real time shifted by a fixed offset (demos: "as if it were two days later")."""

    def __init__(self, offset: dt.timedelta) -> None:
        self.offset = offset

    def now(self) -> dt.datetime:
        """The current real instant plus the offset."""
        return dt.datetime.now(dt.UTC) + self.offset


class FileClock:
    """The instant written in a file; re-read when the file's modification stamp changes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, int, int] | None = None
        try:
            self._value = parse_instant(path.read_text(encoding="utf-8"))
        except OSError as error:
            raise ClockError(f"cannot read clock file {path}: {error.strerror}") from error
        self._warned = False

    def now(self) -> dt.datetime:
        """The instant in the file (the last good one if it cannot be read right now)."""
        try:
            stat = self.path.stat()
            stamp = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
            if stamp != self._stamp:
                self._value = parse_instant(self.path.read_text(encoding="utf-8"))
                self._stamp = stamp
        except (OSError, ClockError) as error:
            if not self._warned:
                log.warning("clock.file_unreadable", error=type(error).__name__)
                self._warned = True
        return self._value


def build_clock(clock_file: Path | None, offset: dt.timedelta) -> Clock:
    """The business clock the settings ask for (file, offset, or the system clock)."""
    if clock_file is not None:
        return FileClock(clock_file)
    if offset:
        return OffsetClock(offset)
    return SystemClock()
