// Number, money, duration and change formatting for the dashboard.

const compact = new Intl.NumberFormat("en", { notation: "compact", maximumFractionDigits: 1 });
const whole = new Intl.NumberFormat("en");

export function number(value) {
  if (value === null || value === undefined) return "–";
  return Math.abs(value) >= 10000 ? compact.format(value) : whole.format(Math.round(value * 10) / 10);
}

export function money(minor, currency) {
  const amount = (minor || 0) / 100;
  try {
    return new Intl.NumberFormat("en", { style: "currency", currency, maximumFractionDigits: 2 }).format(amount);
  } catch {
    return `${amount.toFixed(2)} ${currency}`;
  }
}

export function percent(fraction) {
  return `${Math.round((fraction || 0) * 1000) / 10}%`;
}

export function duration(seconds) {
  const s = Math.round(seconds || 0);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${s % 60}s`;
  return `${Math.floor(m / 60)}h ${m % 60}m`;
}

/** Relative change in percent, or null when there is nothing to compare with. */
export function change(current, previous) {
  if (previous === undefined || previous === null) return null;
  if (previous === 0) return current === 0 ? 0 : null;
  return Math.round(((current - previous) / previous) * 100);
}

export function metricValue(name, value, currency) {
  if (name === "revenue" || name === "revenue_per_visitor" || name === "average_order_value")
    return money(value, currency);
  if (name === "bounce_rate" || name === "conversion_rate") return percent(value);
  if (name === "visit_duration") return duration(value);
  // Whole % of the page's height; 0 when the tracker reported no scrolling for the page.
  if (name === "scroll_depth") return value ? `${Math.round(value)}%` : "—";
  return number(value);
}

export function timeAgo(epochSeconds) {
  const seconds = Math.max(0, Math.round(Date.now() / 1000 - epochSeconds));
  if (seconds < 60) return `${seconds}s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m ago`;
  return `${Math.floor(seconds / 3600)}h ago`;
}

const regions = typeof Intl.DisplayNames === "function" ? new Intl.DisplayNames(["en"], { type: "region" }) : null;

export function countryName(code) {
  if (!code || code.length !== 2) return code || "Unknown";
  try {
    return regions?.of(code.toUpperCase()) || code;
  } catch {
    return code;
  }
}
