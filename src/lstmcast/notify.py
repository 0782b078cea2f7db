"""Run notifications through apprise: one message per run and target, never a failed run.

``[notify]`` in ``lstmcast.toml``::

    [notify]
    urls = ["json://127.0.0.1:8080/hook"]        # every event goes to these

    [[notify.targets]]                              # or: per-target event lists
    url = "tgram://BOT_TOKEN/CHAT_ID"
    events = ["run_failed", "entry_failed", "stale"]

The run collects ``Event`` records (failures from the run summary, flags from ``lstmcast.monitor``)
and calls ``send_run`` once at the end. Each target gets at most one message, holding only the
events it asked for; a target with none gets nothing. Delivery problems are logged with the URL
masked (``mask_url``) and returned as data; nothing here raises for a notification.

apprise is imported only when a message is actually sent (it costs ~0.3 s and loads every plugin).
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator

from lstmcast.errors import ConfigError

EventKind = Literal["run_failed", "entry_failed", "promoted", "decay", "drift", "stale"]
EVENTS: tuple[str, ...] = ("run_failed", "entry_failed", "promoted", "decay", "drift", "stale")
# most severe first: the title names the worst kinds, and the body lists events in this order
_SEVERITY = {k: i for i, k in enumerate(EVENTS)}
MAX_BODY_LINES = 30  # a chat message, not a report: the rest is "... and N more"
LOGGER = "lstmcast.notify"

_SCHEME_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*)://(.*)$", re.S)


# -- masking ----------------------------------------------------------------------------------------
# apprise URLs keep secrets everywhere: user:password (mailto), the "host" (tgram://BOT_TOKEN/..,
# discord://WEBHOOK_ID/..), path segments (hooks.slack.com/services/T../B../XXXX), query values
# (?token=..). What survives the mask: the scheme, a real host name or IP and its port, short
# lowercase path words ("api", "webhooks") and query keys. Everything else becomes ***.
MASK = "***"
_HOST_RE = re.compile(
    r"^(?:localhost|\d{1,3}(?:\.\d{1,3}){3}|\[[0-9A-Fa-f:.]+\]|(?:[A-Za-z0-9-]{1,63}\.)+[A-Za-z]{2,63})$"
)
_WORD_RE = re.compile(r"^[a-z][a-z_-]{0,9}$")


def _split(url: str) -> tuple[str, str, str, str, str, str] | None:
    """(scheme, userinfo, hostport, path, query, fragment) or None when it is not scheme://..."""
    m = _SCHEME_RE.match(url.strip())
    if not m:
        return None
    scheme, rest = m.group(1), m.group(2)
    rest, _, fragment = rest.partition("#")
    rest, _, query = rest.partition("?")
    netloc, slash, path = rest.partition("/")
    userinfo, at, hostport = netloc.rpartition("@")
    return scheme, userinfo if at else "", hostport, slash + path, query, fragment


def _hostport(hostport: str) -> tuple[str, str]:
    """(kept host:port or ***, the secret part or '')."""
    host, colon, port = hostport.rpartition(":") if not hostport.endswith("]") else (hostport, "", "")
    if not colon:
        host, port = hostport, ""
    if _HOST_RE.match(host) and (not colon or port.isdigit()):
        return hostport, ""
    return (MASK, hostport) if hostport else ("", "")


def _parts(url: str) -> tuple[str, list[str]]:
    """The masked URL and the secret substrings it hides."""
    split = _split(url)
    if split is None:
        return MASK, [url] if url else []
    scheme, userinfo, hostport, path, query, fragment = split
    secrets: list[str] = []
    out = f"{scheme}://"
    if userinfo:
        secrets += [p for p in userinfo.split(":") if p]
        out += f"{MASK}@"
    kept, hidden = _hostport(hostport)
    out += kept
    if hidden:
        secrets.append(hidden)
    if path:
        segs = []
        for seg in path.split("/")[1:]:
            if seg == "" or _WORD_RE.match(seg):
                segs.append(seg)
            else:
                segs.append(MASK)
                secrets.append(seg)
        out += "/" + "/".join(segs)
    if query:
        pairs = []
        for pair in query.split("&"):
            k, eq, v = pair.partition("=")
            if v:
                secrets.append(v)
            pairs.append(f"{k}={MASK}" if eq else k)
        out += "?" + "&".join(pairs)
    if fragment:
        secrets.append(fragment)
        out += f"#{MASK}"
    return out, secrets


def mask_url(url: str) -> str:
    """``url`` with every part that may be a secret replaced by ``***``, safe to print or log:
    ``json://user:pw@127.0.0.1:8080/hook/s3cret?token=x`` -> ``json://***@127.0.0.1:8080/hook/***?token=***``."""
    return _parts(url)[0]


def scrub(text: str, urls: Iterable[str]) -> str:
    """``text`` (an exception message, a vendor log line) with ``urls`` and their secret parts masked."""
    for url in urls:
        masked, secrets = _parts(url)
        text = text.replace(url, masked)
        for s in sorted(set(secrets), key=len, reverse=True):
            text = text.replace(s, MASK)
    return text


# -- settings ---------------------------------------------------------------------------------------
_FROZEN = ConfigDict(frozen=True, extra="forbid")


def _known_keys(data: Any, model: type[BaseModel]) -> Any:
    """Refuse an unknown key before pydantic does: its error would carry the key's value (a URL,
    when ``url`` is misspelt) as a scalar input, which ``config.parse_config`` echoes."""
    if isinstance(data, Mapping):
        unknown = [k for k in data if k not in model.model_fields]
        if unknown:
            raise ValueError(f"unknown key {unknown[0]!r} (known: {', '.join(model.model_fields)})")
    return data


class NotifyTarget(BaseModel):
    """One apprise URL and the events it receives (all of them unless ``events`` is given)."""

    model_config = _FROZEN

    # SecretStr: printing the settings (or a pydantic error about them) never shows the URL
    url: SecretStr
    events: tuple[EventKind, ...] = EVENTS

    @model_validator(mode="before")
    @classmethod
    def _keys(cls, data: Any) -> Any:
        return _known_keys(data, cls)

    @field_validator("events")
    @classmethod
    def _events(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if not v:
            raise ValueError(f"events is empty; leave it out for all of: {', '.join(EVENTS)}")
        return tuple(dict.fromkeys(v))

    @model_validator(mode="after")
    def _check_url(self) -> NotifyTarget:
        # a model-level check: the error's input is the table, so config.parse_config does not
        # append "(got '<the url>')" to its message
        raw = self.url.get_secret_value().strip()
        parts = _split(raw)
        if parts is None or not (parts[2] or parts[3].strip("/")):
            raise ValueError(f"url {mask_url(raw)} is not an apprise URL (SCHEME://...), e.g. json://host:port/path")
        return self

    @property
    def masked(self) -> str:
        return mask_url(self.url.get_secret_value())


class NotifySettings(BaseModel):
    """The ``[notify]`` table: ``urls`` (all events) and/or ``[[notify.targets]]`` (chosen events)."""

    model_config = _FROZEN

    enabled: bool = True
    urls: tuple[SecretStr, ...] = ()
    targets: tuple[NotifyTarget, ...] = ()
    title: str = Field(default="lstmcast", min_length=1, max_length=60)  # the message title's prefix

    @model_validator(mode="before")
    @classmethod
    def _keys(cls, data: Any) -> Any:
        data = _known_keys(data, cls)
        if isinstance(data, Mapping) and isinstance(data.get("urls"), str):  # one URL, not in a list
            data = {**data, "urls": [data["urls"]]}
        return data

    @model_validator(mode="after")
    def _check_urls(self) -> NotifySettings:
        for u in self.urls:
            NotifyTarget(url=u)  # same URL check, same masked message
        return self

    def all_targets(self) -> tuple[NotifyTarget, ...]:
        """``urls`` as all-event targets, then ``targets``; empty when disabled."""
        if not self.enabled:
            return ()
        return tuple(NotifyTarget(url=u) for u in self.urls) + self.targets

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any] | None, *, where: str = "[notify]") -> NotifySettings:
        """Validate a plain mapping (the parsed ``[notify]`` table); a bad value raises ``ConfigError``
        naming the key, never echoing a URL."""
        try:
            return cls.model_validate(dict(raw or {}))
        except ValidationError as e:
            first = e.errors()[0]
            loc = ".".join(str(p) if not isinstance(p, int) else f"[{p}]" for p in first["loc"]).replace(".[", "[")
            msg = str(first["msg"]).removeprefix("Value error, ")
            more = f" (and {e.error_count() - 1} more error(s))" if e.error_count() > 1 else ""
            raise ConfigError(f"{where}: {loc or '(table)'}: {msg}{more}") from None


# -- events and the message -------------------------------------------------------------------------
@dataclass(frozen=True)
class Event:
    """Something a run wants to tell: ``entry`` is "AAPL 1d" (None for the run as a whole)."""

    kind: EventKind
    message: str  # one line, no secrets (it is sent and logged as it is)
    entry: str | None = None

    def line(self) -> str:
        return f"[{self.kind}] {self.entry + ': ' if self.entry else ''}{self.message}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def events_from_summary(summary: Mapping[str, Any]) -> list[Event]:
    """run_failed / entry_failed / promoted events from a ``RunSummary.to_dict()`` mapping."""
    out: list[Event] = []
    entries = list(summary.get("entries") or [])
    failed = [e for e in entries if not e.get("ok", e.get("error") is None)]
    if summary.get("interrupted"):
        out.append(Event("run_failed", f"interrupted after {len(entries)} entr{'y' if len(entries) == 1 else 'ies'}"))
    elif entries and len(failed) == len(entries):
        out.append(Event("run_failed", f"all {len(entries)} entr{'y' if len(entries) == 1 else 'ies'} failed"))
    for e in entries:
        if e in failed:
            out.append(Event("entry_failed", str(e.get("error") or "failed"), entry=str(e.get("entry"))))
        elif e.get("promoted"):
            out.append(Event("promoted", f"new model {e.get('trained')} is current", entry=str(e.get("entry"))))
    return out


def events_from_checks(entry: str, checks: Iterable[Any]) -> list[Event]:
    """decay / drift / stale events from flagged ``monitor.Check`` results (or their dicts)."""
    out = []
    for c in checks:
        d = c if isinstance(c, Mapping) else c.to_dict()
        if d.get("status") == "flag":
            out.append(Event(d["event"], str(d["reason"]), entry=entry))
    return out


def build_message(
    events: Sequence[Event], *, run_id: str | None = None, title: str = "lstmcast", max_lines: int = MAX_BODY_LINES
) -> tuple[str, str]:
    """(title, body) of the one message for ``events``: the title counts them by kind, worst first;
    the body has one line per event (worst first, then in the order given), cut at ``max_lines``."""
    ordered = sorted(events, key=lambda e: _SEVERITY[e.kind])  # stable: run order kept within a kind
    counts: dict[str, int] = {}
    for e in ordered:
        counts[e.kind] = counts.get(e.kind, 0) + 1
    what = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in counts.items()) or "nothing to report"
    head = f"{title} run {run_id}" if run_id else title
    lines = [e.line() for e in ordered[:max_lines]]
    if len(ordered) > max_lines:
        lines.append(f"... and {len(ordered) - max_lines} more (see logs/lstmcast.log)")
    return f"{head}: {what}", "\n".join(lines)


# -- sending ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Delivery:
    """What happened to one target's message."""

    target: str  # the masked URL
    events: int
    delivered: bool
    error: str | None = None  # masked

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        with contextlib.suppress(Exception):
            self.lines.append(record.getMessage())


# apprise's debug lines and urllib3's ("POST /hook/TOKEN") hold full webhook paths
_VENDOR_LOGGERS = ("apprise", "urllib3", "requests")


@contextlib.contextmanager
def _vendor_logs_held() -> Iterator[_Collect]:
    """Keep the HTTP stack's own log records away from every handler while sending; apprise's
    warnings are collected so they can be logged masked."""
    collect = _Collect()
    saved = []
    for name in _VENDOR_LOGGERS:
        vendor = logging.getLogger(name)
        saved.append((vendor, vendor.propagate, vendor.handlers[:], vendor.level))
        vendor.propagate = False
        vendor.handlers = [collect] if name == "apprise" else []
        vendor.setLevel(logging.WARNING)
    try:
        yield collect
    finally:
        for vendor, propagate, handlers, level in saved:
            vendor.propagate, vendor.handlers = propagate, handlers
            vendor.setLevel(level)


def message_type(events: Sequence[Event]) -> str:
    """apprise's notify type for the worst event: failure, warning, or success (only promotions)."""
    kinds = {e.kind for e in events}
    if kinds & {"run_failed", "entry_failed"}:
        return "failure"
    if kinds & {"decay", "drift", "stale"}:
        return "warning"
    return "success" if kinds else "info"


def _send_one(url: str, title: str, body: str, kind: str = "info") -> tuple[bool, str | None]:
    """apprise delivery to one URL: (delivered, why not). ``notify`` returns a falsy result
    (``False`` in apprise 1.x, an ``AppriseResult`` in 2.x) on an HTTP error or refused connection."""
    with _vendor_logs_held() as vendor:
        try:
            import apprise
        except ImportError as e:  # a broken install must not fail the run
            return False, f"apprise is not importable ({e}); `pip install 'apprise>=1.7'`"
        app = apprise.Apprise()
        if not app.add(url):
            return False, "apprise does not understand this URL (unknown scheme or missing parts)"
        ok = bool(app.notify(body=body, title=title, notify_type=kind))
    if ok:
        return True, None
    return False, "; ".join(dict.fromkeys(vendor.lines)) or "not delivered"


def send_run(
    settings: NotifySettings,
    events: Sequence[Event],
    *,
    run_id: str | None = None,
    log: logging.Logger | None = None,
) -> list[Delivery]:
    """Send each target one message with the events it subscribed to; targets with none are skipped.

    Never raises: a target that cannot be reached (or any error inside apprise) is logged as a
    warning naming the masked URL and returned with ``delivered=False``.
    """
    log = log or logging.getLogger(LOGGER)
    out: list[Delivery] = []
    targets = settings.all_targets()
    urls = [t.url.get_secret_value() for t in targets]
    for target in targets:
        mine = [e for e in events if e.kind in target.events]
        if not mine:
            continue
        url = target.url.get_secret_value()
        title, body = build_message(mine, run_id=run_id, title=settings.title)
        try:
            ok, why = _send_one(url, title, body, message_type(mine))
        except Exception as e:  # a notification never fails the run
            ok, why = False, f"{type(e).__name__}: {e}"
        why = scrub(why, urls) if why else None
        if ok:
            log.info("notification sent to %s (%d event(s))", target.masked, len(mine))
        else:
            log.warning("notification to %s not delivered: %s", target.masked, why)
        out.append(Delivery(target=target.masked, events=len(mine), delivered=ok, error=why))
    return out
