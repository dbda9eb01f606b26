// data-track-scroll: how far down each page the visitor got, in % of the page's height (the
// bottom of the viewport; 100 for a page that fits the window). Sent as a "scroll" event
// ({depth, url}) when the visitor leaves the page — the next navigation of a single-page app, or
// the page hidden (another tab, closed, a link followed) — and again only if it went deeper since.
// `url` names the page measured: by the time a single-page app's navigation is seen, it has moved on.
const script = document.querySelector("script[data-track-scroll]");
const hash = script?.getAttribute("data-hash");
const hashMode = hash != null && hash != "false";
const root = document.documentElement;

let page;
let depth;
let sent;

// The page as the core tracker counts pageviews: its path, and its hash route in hash mode.
const here = () => location.origin + location.pathname + (hashMode ? location.hash : "");
const measure = () => {
  const reached = Math.round(((scrollY + innerHeight) / root.scrollHeight) * 100);
  depth = Math.max(depth, Math.min(100, reached));
};
const report = () => {
  if (depth > sent) datafast.track("scroll", { depth: (sent = depth), url: page.slice(0, 255) });
};
const start = () => {
  page = here();
  depth = sent = 0;
  setTimeout(measure); // once the new page is drawn: a page that fits the window never scrolls
};
const navigated = () => {
  if (here() != page) {
    report();
    start();
  }
};

for (const method of ["pushState", "replaceState"]) {
  const original = history[method];
  history[method] = function () {
    const result = original.apply(this, arguments);
    navigated();
    return result;
  };
}
addEventListener("popstate", navigated);
addEventListener("hashchange", navigated);
addEventListener("scroll", measure, { passive: true });
// Capture: before the core's own pagehide listener, which hands what is queued to sendBeacon.
addEventListener("pagehide", report, true);
document.addEventListener("visibilitychange", () => document.hidden && report());
start();
