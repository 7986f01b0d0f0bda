"""The platform's logs: one JSON object a line on stderr, with the request id and bound fields, secrets redacted.

Code logs through stdlib `logging` (fields go in `extra={...}`); `configure_logging()` — called where the
platform starts — renders every record, the libraries' included, through structlog: timestamp, level, event,
logger, request_id and whatever `structlog.contextvars` has bound (the API binds `request_id` per request, the
pipeline `persona_id`/`job_id`/`step`). Unconfigured (tests, tools) the records go wherever stdlib sends them.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

REDACTED = "[REDACTED]"
# Environment variables whose values are secrets: their exact values never reach a log line.
SECRET_ENV = ("STEP_API_KEY", "CHAIN_SIGNER_KEY")
# Fields whose value is a secret whatever it looks like.
_SECRET_FIELD = re.compile(
    r"authorization|api[_-]?key|secret|password|passwd|token|private[_-]?key|signer[_-]?key|cookie", re.I
)
# Fields that hold public hashes (tx hashes, embedding and metadata hashes look like private keys: 0x + 64 hex).
_HASH_FIELD = re.compile(r"(^|_)hash$", re.I)
_PATTERNS = (
    # An Authorization header in any rendering (`Authorization: x`, `'authorization': 'x'`, `authorization=x`).
    (
        re.compile(r"""(authorization['"]?\s*[:=]\s*['"]?)(?:bearer\s+|basic\s+)?[^\s'",;}]+""", re.I),
        r"\1" + REDACTED,
    ),
    (re.compile(r"(bearer\s+)[A-Za-z0-9._~+/=-]+", re.I), r"\1" + REDACTED),
    (re.compile(r"((?:STEP_API_KEY|CHAIN_SIGNER_KEY)['\"]?\s*[:=]\s*['\"]?)[^\s'\",;}]+"), r"\1" + REDACTED),
    # A platform API key (bentos.core.accounts.KEY_PREFIX).
    (re.compile(r"\bvpk_[A-Za-z0-9_-]{16,}"), REDACTED),
    (re.compile(r"\b0x[0-9a-fA-F]{64}\b"), "0x" + REDACTED),  # a private key (or a hash in free text)
)


def _secret_values() -> list[str]:
    return [v for name in SECRET_ENV if len(v := os.environ.get(name, "")) >= 8]


def redact_text(text: str) -> str:
    """`text` with every secret-looking part replaced by [REDACTED]."""
    for value in _secret_values():
        text = text.replace(value, REDACTED)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def _redact_value(key: str, value: Any) -> Any:
    if _SECRET_FIELD.search(key) and value is not None:
        return REDACTED
    if isinstance(value, str):
        return value if _HASH_FIELD.search(key) and _is_hash(value) else redact_text(value)
    if isinstance(value, MutableMapping):
        return {k: _redact_value(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact_value(key, v) for v in value]
    if isinstance(value, bool | int | float) or value is None:
        return value
    return redact_text(str(value))


def _is_hash(value: str) -> bool:
    return re.fullmatch(r"0x[0-9a-fA-F]{64}", value) is not None


def redact_secrets(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """structlog processor: bearer keys, Authorization headers, STEP_API_KEY values, private keys → [REDACTED]."""
    return {key: _redact_value(key, value) for key, value in event_dict.items()}


def _request_id_field(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    event_dict.setdefault("request_id", None)
    return event_dict


_HANDLER_MARK = "_voxpersona_json"


def configure_logging(
    level: int | str = "INFO", stream: TextIO | None = None, *, exclusive: bool = True
) -> logging.Handler:
    """Render every stdlib record as one JSON line on `stream` (stderr). Idempotent: replaces its own handler;
    `exclusive` also removes the root logger's other handlers (BentoML's text handler, whose filter would
    stamp its own `request_id` on the records)."""
    shared: list[Processor] = [
        structlog.stdlib.ExtraAdder(),
        structlog.contextvars.merge_contextvars,  # after: a bound request_id wins over a record attribute
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _request_id_field,
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            redact_secrets,  # last before rendering: the event, the fields and the formatted traceback
            structlog.processors.JSONRenderer(default=str, ensure_ascii=False),
        ],
    )
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter)
    setattr(handler, _HANDLER_MARK, True)
    root = logging.getLogger()
    for old in [h for h in root.handlers if exclusive or getattr(h, _HANDLER_MARK, False)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # httpx logs every request's full URL at INFO (the provider calls are counted in stepfun_requests instead);
    # uvicorn's access line has the query string (bentos.access replaces it).
    for noisy in ("httpx", "httpcore", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # A server's logging.config (BentoML's) may have disabled our loggers created before it ran.
    for name, logger in logging.root.manager.loggerDict.items():
        if name.startswith("bentos") and isinstance(logger, logging.Logger):
            logger.disabled = False
    return handler


def unconfigure_logging(handler: logging.Handler) -> None:
    """Remove a handler configure_logging added (tests)."""
    logging.getLogger().removeHandler(handler)
    structlog.reset_defaults()


@contextmanager
def bound(**fields: Any) -> Iterator[None]:
    """Bind fields (persona_id, job_id, intent_key…) to every log line of this thread/task while inside."""
    with structlog.contextvars.bound_contextvars(**fields):
        yield
