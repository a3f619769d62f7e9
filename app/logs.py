"""The process's log, configured in one place for every command: the service's lines are
one JSON object each by default (`time`, `level`, `logger`, `message`, and the fields of
its event), or `time level logger message key=value...` with `statewriter serve
--log-format text` or `STATEWRITER_LOG_FORMAT=text`; the other commands log text. The line
the service writes for each HTTP request is `app.http.access`'s.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from gitops.errors import ConfigError
from gitops.quoting import quoted

FORMATS = ("json", "text")
ENVIRONMENT = "STATEWRITER_LOG_FORMAT"
# What a LogRecord holds of its own: anything else on it came as `extra` fields (but
# uvicorn's copy of its message with terminal colours)
_RECORD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message", "asctime", "taskName", "color_message"}


def chosen_format(flag: str | None, environ: Mapping[str, str] = os.environ) -> str:
    """The flag's format, else the environment's, else JSON; ConfigError for an unknown one."""
    chosen = flag or environ.get(ENVIRONMENT) or "json"
    if chosen not in FORMATS:
        raise ConfigError(f"{ENVIRONMENT}={quoted(chosen)}: the log format is json or text")
    return chosen


def configure(format: str) -> None:
    """Send every logger's records (uvicorn's too, see app.http.server) to stderr in `format`."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if format == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(logging.INFO)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers = []  # through the root's handler, formatted alike
        logging.getLogger(name).propagate = True


def fields(record: logging.LogRecord) -> dict[str, Any]:
    """The event fields a record carries (given as `extra`)."""
    return {key: value for key, value in vars(record).items() if key not in _RECORD_ATTRIBUTES}


def _time(record: logging.LogRecord) -> str:
    stamp = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
    return stamp.replace("+00:00", "Z")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {"time": _time(record), "level": record.levelname.lower(),
                                "logger": record.name, "message": record.getMessage()}
        line.update(fields(record))
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        extra = " ".join(f"{key}={_text(value)}" for key, value in fields(record).items()
                         if value is not None)
        line = f"{_time(record)} {record.levelname} {record.name} {record.getMessage()}"
        line = f"{line} {extra}" if extra else line
        if record.exc_info:
            line = f"{line}\n{self.formatException(record.exc_info)}"
        return line


def _text(value: object) -> str:
    text = str(value)
    return json.dumps(text) if not text or any(c.isspace() or c in '"=' for c in text) else text
