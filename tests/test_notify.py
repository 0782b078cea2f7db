"""Notifications: masking, the [notify] table, one message per run, end to end through apprise's
json:// scheme against a real HTTP receiver on 127.0.0.1 (and one that is down)."""

from __future__ import annotations

import logging

import pytest

from fake_receiver import Receiver, closed_port
from lstmcast.errors import ConfigError
from lstmcast.notify import (
    EVENTS,
    Event,
    NotifySettings,
    build_message,
    events_from_checks,
    events_from_summary,
    mask_url,
    scrub,
    send_run,
)

SECRET = "s3cr3tT0ken42"


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("json://127.0.0.1:8080/hook/s3cr3tT0ken42", "json://127.0.0.1:8080/hook/***"),
        ("json://user:pw@localhost/hook?token=abc&method=POST", "json://***@localhost/hook?token=***&method=***"),
        ("tgram://123456789:AAHsecretBotToken/987654", "tgram://***/***"),
        ("discord://112233445566/AbCdEfGhIjK", "discord://***/***"),
        ("https://hooks.slack.com/services/T0001/B0002/XXXXyyyy", "https://hooks.slack.com/services/***/***/***"),
        ("mailtos://alice:hunter2@gmail.com", "mailtos://***@gmail.com"),
        ("ntfys://ntfy.sh/my-secret-topic-1", "ntfys://ntfy.sh/***"),
        ("not a url", "***"),
    ],
)
def test_mask_url_hides_every_secret_part(url, masked):
    assert mask_url(url) == masked


def test_scrub_removes_url_and_its_parts_from_any_text():
    url = f"json://bob:pw9@127.0.0.1:9/hook/{SECRET}?token=zz9"
    text = f"failed {url}; path /hook/{SECRET}; auth bob:pw9; q token=zz9"
    out = scrub(text, [url])
    for s in (SECRET, "pw9", "zz9", "bob"):
        assert s not in out
    assert "127.0.0.1:9" in out


def test_settings_from_mapping_urls_and_targets():
    s = NotifySettings.from_mapping(
        {"urls": ["json://127.0.0.1:1/a"], "targets": [{"url": "json://127.0.0.1:2/b", "events": ["stale", "drift"]}]}
    )
    targets = s.all_targets()
    assert [t.masked for t in targets] == ["json://127.0.0.1:1/a", "json://127.0.0.1:2/b"]
    assert targets[0].events == EVENTS and targets[1].events == ("stale", "drift")
    assert NotifySettings.from_mapping({"enabled": False, "urls": ["json://h.example/x"]}).all_targets() == ()
    assert NotifySettings.from_mapping(None).all_targets() == ()


def test_settings_never_show_the_url():
    s = NotifySettings.from_mapping({"urls": [f"json://127.0.0.1/hook/{SECRET}"]})
    assert SECRET not in repr(s) and SECRET not in str(s) and SECRET not in str(s.model_dump())


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"urls": [f"127.0.0.1/hook/{SECRET}"]}, "is not an apprise URL"),
        ({"targets": [{"url": f"json://h/{SECRET}", "events": ["explode"]}]}, "targets[0].events[0]"),
        ({"targets": [{"url": f"json://h/{SECRET}", "events": []}]}, "events is empty"),
        ({"url": f"json://h/{SECRET}"}, "(table): unknown key 'url' (known: enabled, urls, targets, title)"),
        ({"targets": [{"url": f"json://h/{SECRET}", "event": ["stale"]}]}, "targets[0]: unknown key 'event'"),
    ],
)
def test_bad_settings_name_the_key_and_hide_the_url(raw, message):
    with pytest.raises(ConfigError) as e:
        NotifySettings.from_mapping(raw)
    assert message in str(e.value)
    assert str(e.value).startswith("[notify]: ")
    assert SECRET not in str(e.value)


def test_one_url_may_be_given_as_a_string():
    assert [t.masked for t in NotifySettings.from_mapping({"urls": "json://127.0.0.1/x"}).all_targets()] == [
        "json://127.0.0.1/x"]


@pytest.mark.parametrize(
    "raw",
    [{"urls": [f"127.0.0.1/hook/{SECRET}"]}, {"url": f"json://h/{SECRET}"}, {"urls": f"bad/{SECRET}"},
     {"targets": [{"url": f"json://h/{SECRET}", "event": ["stale"]}]}, {"targets": [{"url": f"x/{SECRET}"}]}],
)
def test_embedded_in_a_config_model_errors_carry_no_url_as_scalar_input(raw):
    """config.parse_config appends "(got <input>)" for a scalar input: no URL may ever be one."""
    from pydantic import BaseModel, ValidationError

    class Config(BaseModel):
        notify: NotifySettings = NotifySettings()

    with pytest.raises(ValidationError) as e:
        Config.model_validate({"notify": raw})
    for err in e.value.errors():
        assert isinstance(err["input"], dict | list) or SECRET not in str(err["input"])
        assert SECRET not in err["msg"]


def test_events_from_summary():
    summary = {
        "run_id": "R1", "interrupted": False,
        "entries": [
            {"entry": "AAPL 1d", "ok": True, "error": None, "promoted": True, "trained": "20260101T000000Z"},
            {"entry": "MSFT 1d", "ok": False, "error": "fetch: Yahoo is down", "promoted": None},
            {"entry": "SPY 1d", "ok": True, "error": None, "promoted": False, "trained": "x"},
        ],
    }
    ev = events_from_summary(summary)
    assert [(e.kind, e.entry) for e in ev] == [("promoted", "AAPL 1d"), ("entry_failed", "MSFT 1d")]
    all_failed = {"entries": [{"entry": "A 1d", "ok": False, "error": "x"}], "interrupted": False}
    assert [e.kind for e in events_from_summary(all_failed)] == ["run_failed", "entry_failed"]
    assert events_from_summary({"entries": [], "interrupted": True})[0].kind == "run_failed"


def test_events_from_checks_only_flags():
    checks = [
        {"name": "decay", "event": "decay", "status": "flag", "reason": "live ratio 1.9 above band"},
        {"name": "drift", "event": "drift", "status": "ok", "reason": "fine"},
        {"name": "coverage", "event": "decay", "status": "skip", "reason": "too few"},
    ]
    assert events_from_checks("AAPL 1d", checks) == [Event("decay", "live ratio 1.9 above band", entry="AAPL 1d")]


def test_build_message_orders_worst_first_and_cuts():
    ev = [Event("stale", "data 3 bars behind", "A 1d"), Event("entry_failed", "fetch: x", "B 1d"),
          Event("stale", "model 40 days old", "C 1d")]
    title, body = build_message(ev, run_id="R7")
    assert title == "lstmcast run R7: 1 entry failed, 2 stale"
    assert body.splitlines() == ["[entry_failed] B 1d: fetch: x", "[stale] A 1d: data 3 bars behind",
                                 "[stale] C 1d: model 40 days old"]
    _, body = build_message(ev * 20, max_lines=5)
    assert len(body.splitlines()) == 6 and body.endswith("and 55 more (see logs/lstmcast.log)")


def test_one_message_per_run_end_to_end(caplog):
    """Real apprise -> json:// -> a loopback HTTP receiver: one POST per target holding only its events."""
    ev = [Event("entry_failed", "fetch: Yahoo answered 500", "MSFT 1d"), Event("promoted", "new model R is current",
          "AAPL 1d"), Event("drift", "log_return: PSI 0.61", "AAPL 1d")]
    with Receiver() as a, Receiver() as b:
        settings = NotifySettings.from_mapping({
            "urls": [f"json://127.0.0.1:{a.port}/hook/{SECRET}"],
            "targets": [{"url": f"json://127.0.0.1:{b.port}/only-failures/{SECRET}", "events": ["entry_failed"]}],
        })
        with caplog.at_level(logging.DEBUG):
            out = send_run(settings, ev, run_id="20261202T070000Z")
    assert [d.delivered for d in out] == [True, True]
    assert [d.events for d in out] == [3, 1]
    assert len(a.requests) == 1 and len(b.requests) == 1  # one message per run, not per event
    got = a.requests[0]
    assert got["method"] == "POST" and got["path"] == f"/hook/{SECRET}"
    assert got["body"]["title"] == "lstmcast run 20261202T070000Z: 1 entry failed, 1 promoted, 1 drift"
    assert got["body"]["message"].splitlines() == [
        "[entry_failed] MSFT 1d: fetch: Yahoo answered 500", "[promoted] AAPL 1d: new model R is current",
        "[drift] AAPL 1d: log_return: PSI 0.61"]
    assert got["body"]["type"] == "failure"  # the worst event sets apprise's notify type
    assert b.requests[0]["body"]["message"] == "[entry_failed] MSFT 1d: fetch: Yahoo answered 500"
    assert f"json://127.0.0.1:{a.port}/hook/***" in caplog.text
    assert SECRET not in caplog.text  # not in ours, nor in apprise's own (debug) records


def test_message_type_follows_the_worst_event():
    from lstmcast.notify import message_type

    assert message_type([Event("promoted", "x"), Event("stale", "y")]) == "warning"
    assert message_type([Event("promoted", "x")]) == "success"
    assert message_type([Event("drift", "x"), Event("run_failed", "y")]) == "failure"


def test_target_without_matching_events_gets_nothing():
    with Receiver() as r:
        target = {"url": f"json://127.0.0.1:{r.port}/x", "events": ["stale"]}
        settings = NotifySettings.from_mapping({"targets": [target]})
        assert send_run(settings, [Event("promoted", "new model")]) == []
    assert r.requests == []


def test_receiver_down_is_logged_masked_and_never_raises(caplog):
    port = closed_port()
    with Receiver() as up:
        settings = NotifySettings.from_mapping(
            {"urls": [f"json://user:{SECRET}@127.0.0.1:{port}/hook/{SECRET}", f"json://127.0.0.1:{up.port}/ok"]}
        )
        with caplog.at_level(logging.DEBUG):
            out = send_run(settings, [Event("entry_failed", "boom", "A 1d")], run_id="R")
    assert [d.delivered for d in out] == [False, True]  # the second target still got its message
    assert len(up.requests) == 1
    assert out[0].target == f"json://***@127.0.0.1:{port}/hook/***"
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and r.name.startswith("lstm")]
    assert len(warnings) == 1
    assert warnings[0].startswith(f"notification to json://***@127.0.0.1:{port}/hook/*** not delivered: ")
    assert SECRET not in caplog.text and SECRET not in (out[0].error or "")


def test_receiver_error_status_is_not_delivered(caplog):
    with Receiver(status=500) as r:
        settings = NotifySettings.from_mapping({"urls": [f"json://127.0.0.1:{r.port}/hook/{SECRET}"]})
        out = send_run(settings, [Event("stale", "old")])
    assert len(r.requests) == 1 and out[0].delivered is False
    assert "500" in (out[0].error or "")
    assert SECRET not in caplog.text


def test_unknown_scheme_is_logged_not_raised(caplog):
    settings = NotifySettings.from_mapping({"urls": [f"nosuchscheme://{SECRET}/x"]})
    out = send_run(settings, [Event("stale", "old")])
    assert out[0].delivered is False and "does not understand" in (out[0].error or "")
    assert SECRET not in caplog.text


def test_nothing_configured_sends_nothing():
    assert send_run(NotifySettings(), [Event("run_failed", "x")]) == []
    assert send_run(NotifySettings.from_mapping({"enabled": False, "urls": ["json://127.0.0.1:9/x"]}),
                    [Event("run_failed", "x")]) == []


def test_importing_notify_and_monitor_does_not_import_apprise_or_torch():
    import subprocess
    import sys

    from conftest import subprocess_env

    code = "import sys, lstmcast.notify, lstmcast.monitor; print(sorted({m.split('.')[0] for m in sys.modules}))"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=subprocess_env())
    assert r.returncode == 0, r.stderr[-2000:]
    assert "'lstmcast'" in r.stdout
    assert "'apprise'" not in r.stdout and "'torch'" not in r.stdout
