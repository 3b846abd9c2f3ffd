// The /v1/me routes as the policyholder's page uses them. The token only ever travels as a bearer header
// (never in a URL); errors come back as ApiError with the service's own words and its stable code.

import { bearerRequest } from "./http.js";

/**
 * @param {() => string|null} getToken the person's token (held in memory only)
 * @param {(error: ApiError) => void} onSignedOut called on a 401 (expired or revoked token) or a 403
 *   (not a policyholder token)
 */
export function meApi(getToken, onSignedOut) {
  const send = bearerRequest(getToken, (error) => {
    if (error.status === 401 || (error.status === 403 && !error.code)) onSignedOut(error);
  });

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
