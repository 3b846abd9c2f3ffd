// The /v1/me routes as the policyholder's page uses them. The token only ever travels as a bearer header
// (never in a URL); errors come back as ApiError with the service's own words and its stable code.

import { ApiError } from "./api.js";

function detailOf(body, fallback) {
  const detail = body && body.detail;
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) return detail.map((d) => `${(d.loc || []).slice(1).join(".")}: ${d.msg}`).join("; ");
  return fallback;
}

/**
 * @param {() => string|null} getToken the person's token (held in memory only)
 * @param {(error: ApiError) => void} onSignedOut called on a 401 (expired or revoked token) or a 403
 *   (not a policyholder token)
 */
export function meApi(getToken, onSignedOut) {
  async function send(method, path, { params, body, raw } = {}) {
    const url = new URL(path, window.location.origin);
    for (const [key, value] of Object.entries(params || {})) {
      if (value !== undefined && value !== null && value !== "") url.searchParams.append(key, value);
    }
    const headers = { Accept: "application/json", Authorization: `Bearer ${getToken()}` };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let response;
    try {
      response = await fetch(url, {
        method, headers, body: body === undefined ? undefined : JSON.stringify(body),
        cache: "no-store", credentials: "omit", referrerPolicy: "no-referrer",
      });
    } catch (err) {
      throw new ApiError(0, String(err && err.message ? err.message : err));
    }
    if (response.ok && raw) return response;
    let payload = null;
    try {
      payload = await response.json();
    } catch {
      payload = null;
    }
    if (!response.ok) {
      const error = new ApiError(response.status, detailOf(payload, response.statusText || "error"));
      error.code = payload && payload.code;
      if (response.status === 401 || (response.status === 403 && !error.code)) onSignedOut(error);
      throw error;
    }
    return payload;
  }

  const enc = encodeURIComponent;
  const whose = (dependant) => (dependant ? `/v1/me/dependants/${enc(dependant)}/consents` : "/v1/me/consents");
  return {
    profile: () => send("GET", "/v1/me"),
    setProfile: (body) => send("PATCH", "/v1/me", { body }),
    dependants: () => send("GET", "/v1/me/dependants"),
    consents: (dependant) => send("GET", whose(dependant)),
    history: (dependant) => send("GET", `${whose(dependant)}/history`),
    grant: (dependant, type, purpose, body) => send("PUT", `${whose(dependant)}/${enc(type)}/${enc(purpose)}`, { body }),
    withdraw: (dependant, type, purpose, body) => send("DELETE", `${whose(dependant)}/${enc(type)}/${enc(purpose)}`, { body }),
    notices: (language) => send("GET", "/v1/me/notices", { params: { language } }),
    data: (type, bucket) => send("GET", `/v1/me/data/${enc(type)}`, { params: { days: 30, bucket } }),
    messages: () => send("GET", "/v1/me/messages", { params: { limit: 50 } }),
    openMessage: (id) => send("GET", `/v1/me/messages/${enc(id)}`),
    reply: (id, answer) => send("POST", `/v1/me/messages/${enc(id)}/reply`, { body: { answer } }),
    quietHours: () => send("GET", "/v1/me/quiet-hours"),
    setQuietHours: (body) => send("PUT", "/v1/me/quiet-hours", { body }),
    exportData: (format) => send("GET", "/v1/me/export", { params: { format }, raw: true }),
    erase: () => send("DELETE", "/v1/me"),
    accessLog: (before) => send("GET", "/v1/me/access-log", { params: { limit: 20, before } }),
  };
}
