// Follow a site's realtime stream (SSE). EventSource reconnects by itself and sends Last-Event-ID,
// so the server replays what was missed; we only report the connection state.

export function follow(siteId, { onEvent, onState }) {
  const source = new EventSource(`/api/v1/sites/${siteId}/realtime`);
  source.onopen = () => onState?.("open");
  source.onerror = () => onState?.(source.readyState === EventSource.CLOSED ? "closed" : "reconnecting");
  source.addEventListener("event", (message) => {
    try {
      onEvent(JSON.parse(message.data));
    } catch {
      /* a malformed message is skipped */
    }
  });
  return () => source.close();
}
