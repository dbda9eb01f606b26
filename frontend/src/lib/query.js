// The dashboard's URL state (range, comparison, filters) and the Stats API query it means.

export const PERIODS = [
  ["today", "Today"],
  ["yesterday", "Yesterday"],
  ["7d", "Last 7 days"],
  ["30d", "Last 30 days"],
  ["90d", "Last 90 days"],
  ["month", "This month"],
  ["last_month", "Last month"],
  ["12mo", "Last 12 months"],
  ["custom", "Custom range"],
];

export const DIMENSION_LABELS = {
  source: "Source", channel: "Channel", referrer: "Referrer", utm_source: "UTM source", utm_medium: "UTM medium",
  utm_campaign: "Campaign", utm_term: "UTM term", utm_content: "UTM content", page: "Page", entry_page: "Entry page",
  exit_page: "Exit page", hostname: "Hostname", country: "Country", region: "Region", city: "City",
  device: "Device", browser: "Browser", os: "OS", goal: "Goal",
};

const OPERATORS = [["==", "is"], ["!=", "is not"], ["=~", "contains"], ["!~", "does not contain"]];

/** "source==Google|Bing" → {dimension, op, label, values} */
export function parseFilter(raw) {
  const match = raw.match(/^([^=!~]+?)(==|!=|=~|!~)(.*)$/s);
  if (!match) return null;
  const [, dimension, op, values] = match;
  return {
    raw,
    dimension,
    op,
    opLabel: OPERATORS.find(([o]) => o === op)[1],
    label: DIMENSION_LABELS[dimension] || dimension,
    values: values.split("|"),
  };
}

export function readState(search) {
  const p = new URLSearchParams(search);
  const period = p.get("period") || "30d";
  return {
    period,
    start: p.get("start_date") || "",
    end: p.get("end_date") || "",
    compare: p.get("compare") !== "off",
    filters: p.getAll("filter"),
    model: p.get("model") || "last_non_direct",
  };
}

export function interval(state) {
  if (state.period === "today" || state.period === "yesterday") return "hour";
  if (state.period === "12mo") return "month";
  if (state.period === "custom" && state.start && state.end) {
    const days = (new Date(state.end) - new Date(state.start)) / 86400000;
    if (days < 1) return "hour";
    if (days > 180) return "month";
  }
  return "day";
}

/** The query string of a Stats API call for this state (plus extra parameters). */
export function statsQuery(state, extra = {}) {
  const q = new URLSearchParams();
  if (state.period === "custom" && state.start && state.end) {
    q.set("start_date", state.start);
    q.set("end_date", state.end);
  } else if (state.period !== "custom") {
    q.set("period", state.period);
  }
  for (const f of state.filters) q.append("filter", f);
  // Which visit a payment is credited to (revenue under a filter, revenue by source…).
  if (state.model && state.model !== "last_non_direct") q.set("attribution", state.model);
  for (const [k, v] of Object.entries(extra)) if (v !== undefined && v !== null) q.set(k, v);
  return q.toString();
}
