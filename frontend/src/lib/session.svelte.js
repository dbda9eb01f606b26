// Who is signed in (GET /api/v1/auth/me), shared by every page.
import { api } from "./api.js";

export const session = $state({ user: null, checked: false });

export async function refreshSession() {
  // The readable CSRF cookie comes and goes with the session cookie: without it nobody is signed in.
  if (!/(?:^|; )(?:__Host-)?datafast_csrf=/.test(document.cookie)) {
    session.user = null;
    session.checked = true;
    return null;
  }
  try {
    const me = await api("/api/v1/auth/me");
    session.user = me.user;
  } catch {
    session.user = null;
  }
  session.checked = true;
  return session.user;
}
