"""Hot reload of the config file: on SIGHUP and when the file changes.

A new file is applied only when it validates; otherwise its line-precise errors are logged, the
failure is counted, and the configuration already running stays in force.
"""

from __future__ import annotations

import hashlib
import logging
import signal
import threading
from collections.abc import Callable
from pathlib import Path

from .config import Config, load_config
from .yamlconfig import ConfigError

log = logging.getLogger(__name__)


class ConfigWatcher:
    def __init__(
        self,
        path: Path,
        apply: Callable[[Config], None],
        *,
        poll_interval: float = 1.0,
        on_failure: Callable[[ConfigError], None] | None = None,
    ) -> None:
        self.path = path
        self.apply = apply
        self.poll_interval = poll_interval
        self.on_failure = on_failure
        self.reloads = 0
        self.reload_failures = 0
        self.last_error: ConfigError | None = None
        self._digest = self._read_digest()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def _read_digest(self) -> str | None:
        try:
            return hashlib.sha256(self.path.read_bytes()).hexdigest()
        except OSError:
            return None

    def start(self) -> ConfigWatcher:
        self._thread = threading.Thread(target=self._run, name="llmcost-config-watch", daemon=True)
        self._thread.start()
        return self

    def install_sighup_handler(self) -> None:
        """SIGHUP reloads now (call from the main thread)."""
        signal.signal(signal.SIGHUP, lambda *_: self._wake.set())

    def _run(self) -> None:
        while not self._stop.is_set():
            forced = self._wake.wait(self.poll_interval)
            self._wake.clear()
            if self._stop.is_set():
                return
            digest = self._read_digest()
            if forced or (digest is not None and digest != self._digest):
                self._digest = digest
                self.reload()

    def reload(self) -> bool:
        """Load, validate and apply the file; False (old config kept) when it is invalid."""
        try:
            config = load_config(self.path)
        except ConfigError as exc:
            self.reload_failures += 1
            self.last_error = exc
            log.error("config reload refused, keeping the running configuration:\n%s", exc)
            if self.on_failure:
                self.on_failure(exc)
            return False
        self.apply(config)
        self.reloads += 1
        self.last_error = None
        log.info("config reloaded from %s", self.path)
        return True

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread:
            self._thread.join(5)
