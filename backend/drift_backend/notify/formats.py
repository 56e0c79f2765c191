"""What each kind of target receives: Slack Block Kit, one JSON body for Zapier and signed
webhooks (Flare's fields plus ours), and Alertmanager's v2 alerts. Pure functions."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from drift_backend.notify.message import AlertMessage, FeatureAlert

#: Slack's limits: blocks per message, characters per section text and per header.
SLACK_MAX_BLOCKS = 50
SLACK_SECTION_CHARS = 3000
SLACK_HEADER_CHARS = 150
#: Features listed one by one in a Slack message; the rest are counted ("and 940 more").
SLACK_MAX_FEATURES = 60


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def experiment_url(message: AlertMessage, base_url: str | None) -> str | None:
    if not base_url:
        return None
    return f"{base_url.rstrip('/')}/experiments/{message.experiment_id}"


def run_url(message: AlertMessage, base_url: str | None) -> str | None:
    page = experiment_url(message, base_url)
    if page is None or message.run_id is None:
        return None
    return f"{page}/runs/{message.run_id}"


def _feature(feature: FeatureAlert) -> dict[str, Any]:
    # Flare's two keys first; the test's numbers beside them for receivers that want more.
    body: dict[str, Any] = {"name": feature.name, "kind": feature.kind}
    for key in ("test", "statistic", "p_value", "distance", "threshold"):
        value = getattr(feature, key)
        if value is not None:
            body[key] = value
    return body


def json_body(message: AlertMessage, base_url: str | None, now: datetime) -> dict[str, Any]:
    """Zapier and custom webhooks: Flare's ``model_name``, ``features``, ``exception`` at the
    top (its receivers keep working), ours beside them, in Standard Webhooks' envelope
    fields ``type`` and ``timestamp``."""
    return {
        "type": f"alert.{message.status}",
        "timestamp": _iso(now),
        "model_name": message.model,
        "features": [_feature(feature) for feature in message.features],
        "exception": message.exception,
        "id": message.dedup_key,
        "status": message.status,
        "summary": message.summary,
        "experiment": {"id": message.experiment_id, "name": message.experiment_name},
        "rule": {"id": message.rule_id, "name": message.rule_name},
        "severity": message.severity,
        "run_id": message.run_id,
        "run_url": run_url(message, base_url),
        "starts_at": _iso(message.starts_at),
        "ends_at": _iso(message.ends_at),
        "values": dict(message.values),
    }


def _escape(text: str) -> str:
    """Slack mrkdwn: ``&``, ``<`` and ``>`` are control characters (links, mentions)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _feature_line(feature: FeatureAlert) -> str:
    details = [feature.kind]
    if feature.test:
        details.append(feature.test)
    if feature.p_value is not None:
        details.append(f"p={feature.p_value:.3g}")
    if feature.distance is not None:
        details.append(f"distance={feature.distance:.3g}")
    return _clip(f"• `{_escape(feature.name)}` ({_escape(', '.join(details))})", 500)


def _sections(lines: list[str], budget: int) -> list[str]:
    """``lines`` packed into at most ``budget`` texts of at most 3,000 characters each."""
    texts: list[str] = []
    current = ""
    for line in lines:
        candidate = f"{current}\n{line}" if current else line
        if len(candidate) <= SLACK_SECTION_CHARS:
            current = candidate
            continue
        texts.append(current)
        current = line
        if len(texts) == budget:
            return texts
    if current and len(texts) < budget:
        texts.append(current)
    return texts


def slack_body(message: AlertMessage, base_url: str | None) -> dict[str, Any]:
    """A Block Kit message within Slack's limits, however many features drifted."""
    firing = message.status == "firing"
    title = f"{'🔥 FIRING' if firing else '✅ RESOLVED'}: {message.rule_name} · {message.model}"
    link = run_url(message, base_url) or experiment_url(message, base_url)
    head = [
        f"*{_escape(message.summary)}*",
        f"Experiment: *{_escape(message.experiment_name)}* · model `{_escape(message.model)}`",
    ]
    if message.exception:
        head.append(f"Exception: {_escape(message.exception)}")
    if link:
        head.append(f"<{link}|Open in Drift Monitor>")
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _clip(title, 150)}},
        {"type": "section", "text": {"type": "mrkdwn", "text": _clip("\n".join(head), 3000)}},
    ]
    shown = message.features[:SLACK_MAX_FEATURES]
    lines = [_feature_line(feature) for feature in shown]
    hidden = len(message.features) - len(shown)
    # Room for the sections of features: all blocks less header, head, "more" and context.
    texts = _sections(lines, SLACK_MAX_BLOCKS - 4)
    listed = sum(text.count("\n") + 1 for text in texts)
    hidden += len(lines) - listed
    blocks += [{"type": "section", "text": {"type": "mrkdwn", "text": t}} for t in texts]
    if hidden > 0:
        more = f"…and {hidden} more"
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": more}})
    when = f"since {_iso(message.starts_at)}"
    if message.ends_at is not None:
        when += f" until {_iso(message.ends_at)}"
    context = f"Drift Monitor · rule {_escape(message.rule_name)} · {when}"
    blocks.append(
        {"type": "context", "elements": [{"type": "mrkdwn", "text": _clip(context, 3000)}]}
    )
    # ``text`` is the notification's plain fallback (phones, screen readers).
    return {"text": _clip(f"{title}: {message.summary}", 3000), "blocks": blocks}


def alertmanager_body(message: AlertMessage, base_url: str | None) -> list[dict[str, Any]]:
    """Alertmanager's ``POST /api/v2/alerts`` body: one alert per (rule, model) group.

    ``endsAt`` in the past resolves it; a firing alert sends none, so Alertmanager keeps it
    until its ``resolve_timeout`` unless repeated (our repeat interval re-sends it)."""
    alert: dict[str, Any] = {
        "labels": {
            "alertname": message.rule_name,
            "experiment": message.experiment_name,
            "model": message.model,
            "severity": message.severity,
            "rule_id": message.rule_id,
        },
        "annotations": {"summary": message.summary},
        "startsAt": _iso(message.starts_at),
    }
    if message.features:
        names = ", ".join(feature.name for feature in message.features)
        alert["annotations"]["features"] = _clip(names, 1000)
    if message.run_id:
        alert["annotations"]["run_id"] = message.run_id
    if message.status == "resolved":
        alert["endsAt"] = _iso(message.ends_at or datetime.now(UTC))
    generator = run_url(message, base_url) or experiment_url(message, base_url)
    if generator:
        alert["generatorURL"] = generator
    return [alert]
