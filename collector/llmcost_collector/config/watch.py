"""Hot reload of the config file: on SIGHUP and when the file changes.

A new file is applied only when it validates; otherwise each of its line-precise errors is logged,
the failure is counted, and the configuration already running stays in force.

Change detection polls ``stat`` (mtime and size, cheap) and hashes the content only when those
moved, or while the mtime is too recent to trust (a same-size rewrite within the filesystem's
timestamp granularity). Content that did not change is not reloaded, so ``touch`` is harmless.
``stat`` follows symlinks, so a Kubernetes ConfigMap update (an atomic symlink swap) is seen too.
The price-book files the config includes (``price_book.include``) and the token files of its
``access`` section are watched the same way (a rotated secret is a reload).
Editors and ``cat > file`` write in place (truncate, then write), so a reload reads the file until
two reads ``settle`` seconds apart agree, and an empty file is refused rather than taken for
"all defaults" (write ``version: 1`` for that): a half-written file must never replace a good one.
"""

from __future__ import annotations

import hashlib
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

from llmcost_collector.config.schema import Config, load_config
from llmcost_collector.config.yaml_loader import ConfigError, ConfigIssue, parse_yaml

log = logging.getLogger(__name__)

RACY_SECONDS = 2.0  # an mtime this close to now may hide a second write in the same tick
EMPTY_WAIT = 2.0  # how long an emptied file may stay empty before it counts as a (refused) new version


class ConfigWatcher:
    def __init__(
        self,
        path: str | Path,
        apply: Callable[[Config], None],
        *,
        poll_interval: float = 1.0,
        settle: float = 0.05,
        empty_wait: float = EMPTY_WAIT,
        on_failure: Callable[[ConfigError], None] | None = None,
    ) -> None:
        self.path = Path(path)
        self.apply = apply
        self.poll_interval = poll_interval
        self.settle = settle
        self.empty_wait = empty_wait
        self.on_failure = on_failure
        self.reloads = 0
        self.reload_failures = 0
        self.last_error: ConfigError | None = None
        # The price-book files the config includes: a change to one reloads too.
        try:
            self._includes = _includes_named(self.path, self.path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError):
            self._includes = []
        self._stat = self._read_stat()
        self._digest = self._read_digest()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._forced = False
        self._lock = threading.Lock()  # one reload at a time (poll thread, SIGHUP, direct calls)
        self._thread: threading.Thread | None = None
        self._previous_handler: Any = None

    def start(self) -> ConfigWatcher:
        self._thread = threading.Thread(target=self._run, name="llmcost-config-watch", daemon=True)
        self._thread.start()
        return self

    def install_sighup_handler(self) -> None:
        """SIGHUP reloads now, even if the file looks unchanged. Only from the main thread
        (Python's rule for signal handlers); the reload itself runs on the watcher thread."""
        self._previous_handler = signal.signal(signal.SIGHUP, self._on_sighup)

    def _on_sighup(self, _signum: int, _frame: FrameType | None) -> None:
        self._forced = True
        self._wake.set()

    def _read_stat(self) -> tuple[int, int, tuple[tuple[int, int] | None, ...]] | None:
        """The config file's (mtime, size), and those of the price-book files it includes."""
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return st.st_mtime_ns, st.st_size, tuple(_stat_of(path) for path in self._includes)

    def _read_digest(self) -> str | None:
        try:
            return _digest(self.path.read_bytes(), self._includes)
        except OSError:
            return None

    def changed(self) -> bool:
        """Whether the file's content differs from the last one seen (updates what was seen)."""
        stat = self._read_stat()
        if stat is None:
            return False  # missing for now (mid-rename or deleted): keep running what we have
        newest = max([stat[0], *(included[0] for included in stat[2] if included)])
        racy = time.time_ns() - newest < RACY_SECONDS * 1e9
        if stat == self._stat and not racy:
            return False
        self._stat = stat
        digest = self._read_digest()
        if digest is None or digest == self._digest:
            return False
        self._digest = digest
        return True

    def _read_settled(self) -> bytes | None:
        """The file's bytes once two reads ``settle`` apart agree and it has content (a writer may
        have truncated it and not written yet: on ext4 that window can last a disk flush), or what
        is there after ``empty_wait`` seconds."""
        deadline = time.monotonic() + self.empty_wait
        try:
            data = self.path.read_bytes()
            while True:
                time.sleep(self.settle)
                again = self.path.read_bytes()
                now = time.monotonic()
                if (again == data and (data.strip() or now > deadline)) or now > deadline + self.empty_wait:
                    break  # settled, or still changing after a while: take what is there
                data = again
        except OSError:
            return None
        self._digest = _digest(data, self._includes)
        return data

    def _load(self) -> Config:
        data = self._read_settled()
        name = str(self.path)
        if data is None:
            raise ConfigError(name, [ConfigIssue(1, 1, "", "cannot read file")])
        if not data.strip():
            message = "empty file (a partial write?); write 'version: 1' for all defaults"
            raise ConfigError(name, [ConfigIssue(1, 1, "", message)])
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ConfigError(name, [ConfigIssue(1, 1, "", f"not UTF-8 text: {exc.reason}")]) from None
        try:
            return load_config(self.path, text=text)
        finally:  # what the file includes now, valid or not: its next change reloads
            self._includes = _includes_named(self.path, text)
            self._stat = self._read_stat()
            self._digest = _digest(data, self._includes)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.poll_interval)
            self._wake.clear()
            if self._stop.is_set():
                return
            forced, self._forced = self._forced, False
            try:
                if self.changed() or forced:
                    self.reload(reason="sighup" if forced else "file changed")
            except Exception:  # the watcher must outlive any surprise; the old config keeps running
                log.exception("config watcher: unexpected error during reload of %s", self.path)

    def reload(self, reason: str = "requested") -> bool:
        """Load, validate and apply the file; False (old config kept) when it is invalid."""
        with self._lock:
            try:
                config = self._load()
            except ConfigError as exc:
                log.error(
                    "config reload refused (%s), keeping the running configuration: %d problem(s) in %s",
                    reason,
                    len(exc.errors),
                    self.path,
                    extra={"event": "config_reload_refused", "config_path": str(self.path)},
                )
                for issue in exc.errors:
                    log.error(
                        "%s",
                        exc.format(issue),
                        extra={
                            "event": "config_error",
                            "config_path": str(self.path),
                            "line": issue.line,
                            "column": issue.column,
                            "key": issue.path,
                            "reason": issue.message,
                        },
                    )
                self.last_error = exc
                self.reload_failures += 1  # after logging: a waiter on the counter sees the log too
                if self.on_failure:
                    self.on_failure(exc)
                return False
            self.apply(config)
            self.last_error = None
            log.info(
                "config reloaded from %s (%s)",
                self.path,
                reason,
                extra={"event": "config_reloaded", "config_path": str(self.path)},
            )
            self.reloads += 1
            return True

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread:
            self._thread.join(5)
        if self._previous_handler is not None and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGHUP, self._previous_handler)
            self._previous_handler = None


def _stat_of(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size


def _digest(config: bytes, includes: list[Path]) -> str:
    """One hash of the config file's bytes and of each included file's (absent ones count too)."""
    digest = hashlib.sha256(config)
    for path in includes:
        try:
            digest.update(hashlib.sha256(path.read_bytes()).digest())
        except OSError:
            digest.update(b"absent")
    return digest.hexdigest()


def _includes_named(path: Path, text: str) -> list[Path]:
    """The files a config text reads besides itself: included price books and access token files
    (so a rotated secret is reloaded like an edited file). Best effort: an invalid text names none."""
    try:
        data = parse_yaml(text, str(path)).data
    except ConfigError:
        return []
    if not isinstance(data, dict):
        return []
    book = data.get("price_book")
    names = book.get("include") if isinstance(book, dict) else None
    if isinstance(names, str):
        names = [names]
    found = [path.parent / name for name in names if isinstance(name, str)] if isinstance(names, list) else []
    access = data.get("access")
    tokens = access.get("tokens") if isinstance(access, dict) else None
    for entry in tokens if isinstance(tokens, list) else ():
        name = entry.get("token_file") if isinstance(entry, dict) else None
        if isinstance(name, str):
            found.append(path.parent / name)
    return found
