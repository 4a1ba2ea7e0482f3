"""One-time tokens stay out of the access log: uvicorn logs every request line, and the set-up and
set-password links carry their token in the path. The token is shown once, where it is issued."""

from __future__ import annotations

import copy
import logging
import re
from typing import Any

from uvicorn.config import LOGGING_CONFIG

# Anywhere in the line, so a token inside a query string (?next=/set-password/...) goes too.
TOKEN_PATH = re.compile(r"(/(?:setup|set-password|set%2Dpassword)/)[^/?#&\s]+", re.IGNORECASE)
REDACTED = r"\1[redacted]"


def redact(text: str) -> str:
    return TOKEN_PATH.sub(REDACTED, text)


class RedactTokens(logging.Filter):
    """Rewrites the arguments of uvicorn's access record ('%s - "%s %s HTTP/%s" %d') and its message."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        return True


def log_config() -> dict[str, Any]:
    """uvicorn's own logging configuration with the filter on its access logger."""
    config = copy.deepcopy(LOGGING_CONFIG)
    config["filters"] = {"redact_tokens": {"()": "web.redact.RedactTokens"}}
    config["loggers"]["uvicorn.access"]["filters"] = ["redact_tokens"]
    return config
