// Client-side routing over the History API. The URL is the state: path + query (range, filters),
// so every view can be bookmarked, reloaded and shared.

export const location = $state({ path: window.location.pathname, search: window.location.search });

function sync() {
  location.path = window.location.pathname;
  location.search = window.location.search;
}

window.addEventListener("popstate", sync);

export function navigate(url, { replace = false } = {}) {
  if (replace) history.replaceState({}, "", url);
  else history.pushState({}, "", url);
  sync();
  if (!replace) window.scrollTo(0, 0);
}

export function params() {
  return new URLSearchParams(location.search);
}

/** Change some query parameters of the current URL (null removes one; an array repeats it). */
export function setParams(changes, { replace = false } = {}) {
  const next = params();
  for (const [key, value] of Object.entries(changes)) {
    next.delete(key);
    if (value === null || value === undefined || value === "") continue;
    for (const item of Array.isArray(value) ? value : [value]) next.append(key, item);
  }
  const query = next.toString();
  navigate(location.path + (query ? `?${query}` : ""), { replace });
}

/** Intercept clicks on same-origin <a href> so they route without reloading. */
export function links(node) {
  function click(event) {
    const anchor = event.target.closest("a[href]");
    if (!anchor || anchor.target || anchor.hasAttribute("download")) return;
    if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey) return;
    const url = new URL(anchor.href);
    if (url.origin !== window.location.origin || url.pathname.startsWith("/api/")) return;
    event.preventDefault();
    navigate(url.pathname + url.search);
  }
  node.addEventListener("click", click);
  return { destroy: () => node.removeEventListener("click", click) };
}
