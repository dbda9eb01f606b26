// The JSON API client: cookies for the signed-in dashboard (with the CSRF token on writes),
// a bearer token for a public share link. Errors become ApiError with a sentence a person understands.

let shareToken = null;

export function useShareToken(token) {
  shareToken = token;
}

export class ApiError extends Error {
  constructor(status, message, problem) {
    super(message);
    this.status = status;
    this.problem = problem;
  }
}

function csrf() {
  const match = document.cookie.match(/(?:^|; )(?:__Host-)?datafast_csrf=([^;]*)/);
  return match ? decodeURIComponent(match[1]) : "";
}

function explain(status, problem) {
  if (problem?.errors?.length) {
    return problem.errors.map((e) => `${e.key ? e.key + ": " : ""}${e.message}`).join("; ");
  }
  if (problem?.detail && problem.detail !== problem.title) return problem.detail;
  if (status === 401) return "Please sign in again.";
  if (status === 403) return "You don't have permission to do that.";
  if (status === 404) return "Not found — it may have been deleted, or you don't have access.";
  if (status === 429) return "Too many requests — wait a moment and try again.";
  if (status >= 500) return "The server had a problem. Try again in a moment.";
  return problem?.title || `Request failed (${status})`;
}

export async function api(path, { method = "GET", body, signal } = {}) {
  const headers = { accept: "application/json" };
  const raw = body instanceof Blob; // a file upload goes as it is
  if (body !== undefined) headers["content-type"] = raw ? "application/octet-stream" : "application/json";
  if (shareToken) headers.authorization = `Bearer ${shareToken}`;
  else if (method !== "GET") headers["x-csrf-token"] = csrf();
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined || raw ? body : JSON.stringify(body),
      credentials: "same-origin",
      signal,
    });
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError(0, "Can't reach DataFast. Check your connection and try again.");
  }
  if (response.status === 204) return null;
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!response.ok) throw new ApiError(response.status, explain(response.status, data), data);
  return data;
}

export const site = (id) => `/api/v1/sites/${id}`;
