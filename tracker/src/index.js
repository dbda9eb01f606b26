// DataFast's tracking script. Configured by attributes on its own <script> tag:
//   data-website-id (required), data-domain, data-api-url, data-allowed-hostnames,
//   data-allow-localhost, data-cookieless, data-hash, data-debug; and data-track-scroll,
//   data-track-downloads, data-track-forms, data-track-404, each loading an extension file.
// The only global it adds is `datafast`. See the README ("Tracking script").
import { createOutbox } from "./outbox.js";

const win = window;
const doc = document;
const nav = navigator;
const loc = location;

// Lowercase letters, digits, _ and -, 1 to 64: goal names, event names and parameter names.
const NAME = /^[a-z0-9_-]{1,64}$/;

const start = () => {
  const script = doc.currentScript || doc.querySelector("script[data-website-id]");
  const attr = (name) => script?.getAttribute("data-" + name);
  const flag = (name) => attr(name) != null && attr(name) != "false";
  let debug = flag("debug");
  const log = (level, ...args) => debug && console[level]("datafast:", ...args);

  const siteId = attr("website-id");
  const host = loc.hostname;
  const domain = attr("domain");
  const allowed = attr("allowed-hostnames");
  const inDomain = domain && ("." + host).endsWith("." + domain);
  const cookieless = flag("cookieless");
  const hashMode = flag("hash");
  let ignored;
  try {
    ignored = localStorage.getItem("datafast_ignore") == "true";
  } catch (e) {}

  // Why this page is not tracked (short: every byte is downloaded by every visitor), or "".
  const skip = !siteId
    ? "no website id"
    : /^$|(^|\.)localhost$|^127\.|^\[::1\]$/.test(host) && !flag("allow-localhost") // "" is file:
      ? "localhost"
      : nav.webdriver || /headless/i.test(nav.userAgent)
        ? "bot"
        : ignored
          ? "datafast_ignore"
          : (domain || allowed) && !inDomain && !allowed?.split(/\s*,\s*/).includes(host)
            ? "hostname"
            : "";

  const randomId = () => crypto.getRandomValues(new Uint32Array(4)).join(""); // 128 random bits
  // First-party ids the site's own code can read (and pass to its checkout); none when cookieless.
  // Each event keeps its cookie (the session's slides: another 30 minutes). Only ids /track accepts
  // (1 to 64 of \w and -) are read: a hand-edited cookie must not spoil a batch.
  const keep = (name, seconds) => {
    const value = doc.cookie.match("(^|; )" + name + "=([\\w-]{1,64})(;|$)")?.[2] || randomId();
    doc.cookie =
      name +
      "=" +
      value +
      ";max-age=" +
      seconds +
      ";path=/;samesite=lax" +
      (inDomain ? ";domain=" + domain : "") +
      (loc.protocol == "https:" ? ";secure" : "");
    return value;
  };
  const identity = () =>
    cookieless
      ? {}
      : {
          visitor_id: keep("datafast_visitor_id", 34560000), // 400 days, the most browsers keep
          session_id: keep("datafast_session_id", 1800),
        };

  const url = () => (hashMode ? loc.href : loc.href.split("#")[0]).slice(0, 2048);
  const enqueue = skip ? 0 : createOutbox(attr("api-url") || new URL(script.src).origin + "/track", log);
  const send = (type, fields) => {
    if (skip) return log("log", "ignored:", skip);
    const event = {
      website_id: siteId,
      event_type: type,
      event_id: randomId(),
      page_url: url(),
      timestamp: Date.now(),
      ...identity(),
      ...fields,
    };
    log("log", type, event);
    enqueue(event);
  };

  // At most 10 parameters, names like goal names, values of at most 255 characters.
  const params = (input) => {
    const props = {};
    let count = 0;
    for (const key in input) {
      const value = input[key];
      if (value == null) continue;
      if (++count > 10 || !NAME.test(key) || ("" + value).length > 255) {
        return log("warn", "invalid", key);
      }
      props[key] = "" + value;
    }
    return props;
  };

  const api = {
    // goal("signup"), goal("checkout", 49.99) with a value in the site's currency, or goal("signup", {plan: "pro"}).
    goal(name, value) {
      if (!NAME.test(name)) return log("warn", "invalid", name);
      const fields = { goal_name: name };
      if (typeof value == "number") {
        if (!(value >= 0)) return log("warn", "invalid", value);
        fields.revenue = value;
      } else if (value && !(fields.props = params(value))) return;
      send("goal", fields);
    },
    track(name, props) {
      // Names the server gives a meaning (pageview, goal, purchase, identify) are not custom events.
      if (!NAME.test(name) || api[name] || name == "pageview" || name == "purchase") {
        return log("warn", "invalid", name);
      }
      if ((props = params(props))) send(name, { props });
    },
    // identify("user_42", {email, name}): the server keeps a SHA-256 of the email, never the address.
    identify(userId, traits) {
      const props = "" + (userId ?? "") && params({ ...traits, user_id: userId });
      if (!props) return log("warn", "invalid", userId);
      send("identify", { props });
    },
    debug(on) {
      debug = on !== false;
    },
  };

  // Pageviews: one on load, then one per real navigation of a single-page app (the path, or the
  // path and hash in hash mode, changed). replaceState to the same path, or a hash jump, counts nothing.
  // The referrer is the document's: the page that brought the visitor (navigations inside an app
  // have none, as the server would count them as internal anyway).
  let lastPage;
  const pageview = () => {
    const page = loc.pathname + (hashMode ? loc.hash : "");
    if (page == lastPage) return;
    const first = lastPage == null;
    lastPage = page;
    send("pageview", first && doc.referrer ? { referrer: doc.referrer.slice(0, 2048) } : {});
  };

  // Goals on clickable elements (data-fast-goal, params from data-fast-goal-*), outbound links.
  const click = (event) => {
    const target = event.target;
    if (!target.closest || event.button > 1) return; // a left click, or a middle click (auxclick)
    const goal = target.closest("[data-fast-goal]");
    if (goal) {
      const props = {};
      for (const a of goal.attributes) if (a.name.startsWith("data-fast-goal-")) props[a.name.slice(15)] = a.value;
      api.goal(goal.getAttribute("data-fast-goal"), props);
    }
    const link = target.closest("a[href]");
    if (link && /^https?:$/.test(link.protocol) && link.hostname != host) {
      send("outbound", { props: { url: link.href.slice(0, 255) } });
    }
  };

  const datafast = (name, ...args) => (api[name] ? api[name](...args) : api.goal(name, ...args));
  // Calls made before the script loaded: window.datafast.q (see the install snippet).
  const queued = win.datafast?.q || [];
  win.datafast = Object.assign(datafast, api);

  if (!skip) {
    for (const method of ["pushState", "replaceState"]) {
      const original = history[method];
      history[method] = function () {
        const result = original.apply(this, arguments);
        pageview();
        return result;
      };
    }
    addEventListener("popstate", pageview);
    if (hashMode) addEventListener("hashchange", pageview);
    addEventListener("click", click, true);
    addEventListener("auxclick", click, true);
    // Optional features: data-track-<name> loads script.<name>.js from beside this script, e.g.
    // data-track-scroll. An absolute URL: import() in a cross-origin script resolves nothing else.
    for (const { name } of script.attributes) {
      if (name.startsWith("data-track-")) import(new URL(`script.${name.slice(11)}.js`, script.src));
    }
  }
  pageview(); // when ignored, this logs why (with data-debug)
  for (const args of queued) datafast(...args);
};

// A second copy of the script on the page does nothing.
if (!win.datafast?.goal) start();
