"""Server-sent events: a clock that streams the time, resumable with Last-Event-ID.

python -m examples.events.app          # then open http://127.0.0.1:8000/

The page's ``EventSource`` reconnects by itself after a drop and sends the id of
the last event it saw; the stream goes on from there.
"""

from __future__ import annotations

import asyncio
import time

import simples
from simples import HTTPConnection

server = simples.server()
server.compression()  # each event is flushed through the compressor as it is sent

PAGE = """<!doctype html>
<meta charset="utf-8">
<title>simples: server-sent events</title>
<h1>Ticks</h1>
<ol id="ticks"></ol>
<script>
  const list = document.getElementById("ticks");
  const source = new EventSource("/ticks");
  source.addEventListener("tick", (event) => {
    const { n, at } = JSON.parse(event.data);
    const item = document.createElement("li");
    item.textContent = `#${n} at ${new Date(at * 1000).toLocaleTimeString()}`;
    list.append(item);
  });
  source.addEventListener("done", () => source.close());
</script>
"""

COUNT = 10


@server.get("/")
async def home(connection: HTTPConnection) -> None:
    await connection.type("html").send(PAGE)


@server.get("/ticks")
async def ticks(connection: HTTPConnection) -> None:
    # an EventSource that reconnects says where it stopped
    last = connection.headers.get("last-event-id")
    start = int(last) + 1 if last and last.isdigit() else 1
    await connection.event("stream open", retry=2000)
    for n in range(start, COUNT + 1):
        await connection.event({"n": n, "at": time.time()}, event="tick", id=n)
        await asyncio.sleep(1)
    await connection.event("that was all", event="done")
    # returning ends the stream


if __name__ == "__main__":
    server.listen(8000)
