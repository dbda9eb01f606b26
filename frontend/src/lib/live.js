// Follow a site's realtime stream (SSE). EventSource reconnects by itself and sends Last-Event-ID,
// so the server replays what was missed; we only report the connection state.
//
// A shared dashboard has no session cookie but a bearer token, which EventSource cannot send:
// it reads the same stream with fetch, reconnecting as EventSource would (after the server's
// `retry:`, with Last-Event-ID) and stopping for good when the server refuses the token (the
// link was revoked or the token expired). `token` is a function: a renewed token is taken on the
// next reconnect.

export function follow(siteId, { onEvent, onState, token = null }) {
  const url = `/api/v1/sites/${siteId}/realtime`;
  if (token) return followWithToken(url, token, { onEvent, onState });
  const source = new EventSource(url);
  source.onopen = () => onState?.("open");
  source.onerror = () => onState?.(source.readyState === EventSource.CLOSED ? "closed" : "reconnecting");
  source.addEventListener("event", (message) => deliver(message.data, onEvent));
  return () => source.close();
}

function deliver(data, onEvent) {
  try {
    onEvent(JSON.parse(data));
  } catch {
    /* a malformed message is skipped */
  }
}

function followWithToken(url, token, { onEvent, onState }) {
  const controller = new AbortController();
  let lastId = "";
  let retry = 2000;
  let stopped = false;

  async function once() {
    const headers = { authorization: `Bearer ${token()}`, accept: "text/event-stream" };
    if (lastId) headers["last-event-id"] = lastId;
    const response = await fetch(url, { headers, signal: controller.signal, cache: "no-store" });
    if (response.status === 401 || response.status === 403 || response.status === 404) return "refused";
    if (!response.ok || !response.body) return "failed";
    onState?.("open");
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return "ended";
      buffer += value;
      let end;
      while ((end = buffer.search(/\r?\n\r?\n/)) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end).replace(/^\r?\n\r?\n/, "");
        let event = "message";
        let data = [];
        let id = null;
        for (const line of block.split(/\r?\n/)) {
          if (!line || line.startsWith(":")) continue;
          const colon = line.indexOf(":");
          const field = colon < 0 ? line : line.slice(0, colon);
          const text = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
          if (field === "event") event = text;
          else if (field === "data") data.push(text);
          else if (field === "id") id = text;
          else if (field === "retry" && /^\d+$/.test(text)) retry = Number(text);
        }
        if (id !== null) lastId = id;
        if (event === "event" && data.length) deliver(data.join("\n"), onEvent);
      }
    }
  }

  (async () => {
    while (!stopped) {
      let outcome;
      try {
        outcome = await once();
      } catch {
        outcome = "failed";
      }
      if (stopped) return;
      if (outcome === "refused") {
        onState?.("closed");
        return;
      }
      onState?.("reconnecting");
      await new Promise((resolve) => setTimeout(resolve, retry));
    }
  })();

  return () => {
    stopped = true;
    controller.abort();
  };
}
