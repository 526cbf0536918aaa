"""The live page: events appear as the listeners handle them (Server-Sent Events)."""

from __future__ import annotations

from flask import Blueprint, Response

from .feed import feed

web = Blueprint("signup_notifier", __name__)

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>pgevents-migrate: live events</title>
<style>
  body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 46rem; color: #222; }
  li { padding: .4rem .6rem; margin: .3rem 0; border-radius: .3rem; list-style: none; }
  .queue { background: #e8f1ff; } .broadcast { background: #eafbe7; }
  #status { color: #777; font-size: .9rem; }
</style>
</head>
<body>
<h1>Live row changes</h1>
<p>Rows written by anything &mdash; this app, <code>psql</code>, the legacy writer &mdash;
show up here as the pgevents listeners handle them.</p>
<p id="status">connecting&hellip;</p>
<ul id="events"></ul>
<script>
  const list = document.getElementById("events");
  const status = document.getElementById("status");
  const source = new EventSource("events");
  source.onopen = () => { status.textContent = "connected: waiting for row changes"; };
  source.onerror = () => { status.textContent = "disconnected: retrying"; };
  source.onmessage = (message) => {
    const event = JSON.parse(message.data);
    const item = document.createElement("li");
    item.className = event.delivery;
    item.dataset.op = event.op;
    item.textContent = event.text;
    list.prepend(item);
  };
</script>
</body>
</html>
"""


@web.get("/")
def page() -> str:
    return PAGE


@web.get("/events")
def events() -> Response:
    return Response(
        feed.stream(),
        mimetype="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
