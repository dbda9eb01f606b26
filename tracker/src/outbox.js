// Delivery: every event is written to localStorage first, then sent in batches; it leaves storage
// only once the server has answered for it. Failed sends are retried with exponential backoff
// (and at once when the browser comes back online). Each event carries a client event_id, so a
// retried send that had in fact arrived is stored once by the server.

const KEY = "datafast_queue";
const BATCH = 40; // events per request: well under /track's 100 events and 64 KB
const RESEND_WINDOW = 18e5; // 30 min: how long an event handed to sendBeacon is kept in case it was lost

export const createOutbox = (url, log) => {
  let memory = [];
  let inflight = {};
  let timer = 0;
  let failures = 0;

  // localStorage may be missing or blocked: then the queue lives as long as the page.
  const read = () => {
    try {
      return JSON.parse(localStorage.getItem(KEY) || "[]");
    } catch (e) {
      return memory;
    }
  };
  const write = (events) => {
    memory = events.slice(-500);
    try {
      localStorage.setItem(KEY, JSON.stringify(memory));
    } catch (e) {}
  };
  // `b` marks when an event was handed to sendBeacon (the server ignores fields it does not know).
  const body = (events) => JSON.stringify({ sent_at: Date.now(), events });
  const release = (done) => done.map((id) => delete inflight[id]);
  const schedule = (delay) => {
    timer = timer || setTimeout(flush, delay);
  };

  const flush = () => {
    clearTimeout(timer);
    timer = 0;
    const batch = read()
      .filter((event) => !inflight[event.event_id])
      .slice(0, BATCH);
    if (!batch[0] || !navigator.onLine) return; // offline: the "online" event sends them
    const done = batch.map((event) => event.event_id);
    done.map((id) => (inflight[id] = 1));
    // A string body is sent as text/plain: a "simple" CORS request, no preflight.
    fetch(url, { method: "POST", body: body(batch), keepalive: true })
      .then((response) => {
        const status = response.status;
        if (status > 499 || status == 429) throw status; // worth another try
        if (!response.ok) log("warn", "refused", status);
        write(read().filter((event) => !done.includes(event.event_id)));
        failures = 0;
      })
      .then(
        () => {
          release(done);
          flush();
        },
        (error) => {
          release(done);
          log("log", "retry", error);
          schedule(Math.min(6e4, 1e3 * 2 ** failures++));
        },
      );
  };

  // The page is going away: what is not on its way yet goes by sendBeacon. Beaconed and in-flight
  // events stay stored, marked, and the next page of this site sends them again (the server drops
  // the copy) unless that is more than RESEND_WINDOW later: a beacon's fate is never known.
  const leave = () => {
    const now = Date.now();
    const events = read();
    // In-flight events are marked only (`|| !(event.b = now)` is false): they are on their way.
    const unsent = events.filter((event) => !event.b && (!inflight[event.event_id] || !(event.b = now))).slice(0, BATCH);
    if (unsent[0] && navigator.onLine && navigator.sendBeacon(url, body(unsent))) unsent.map((event) => (event.b = now));
    write(events);
  };

  write(read().filter((event) => !(event.b < Date.now() - RESEND_WINDOW)));
  addEventListener("online", flush);
  addEventListener("pagehide", leave);
  schedule(1e3);

  return (event) => {
    write(read().concat(event));
    schedule(1e3);
  };
};
