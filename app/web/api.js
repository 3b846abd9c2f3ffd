// The care API as the page uses it: every call carries the staff token as a bearer header, nothing
// about a person's health goes into a URL beyond ids, and errors come back as ApiError with the
// service's own words.

import { bearerRequest } from "./http.js";

export { ApiError, isApiError } from "./http.js";

/**
 * @param {() => string|null} getToken the current staff token
 * @param {(detail: string) => void} onUnauthorized called on any 401 (expired or revoked token)
 */
export function careApi(getToken, onUnauthorized) {
  const request = bearerRequest(getToken, (error) => {
    if (error.status === 401) onUnauthorized(error.detail);
  });

  const enc = encodeURIComponent;
  return {
    queue: (params) => request("GET", "/v1/care/alerts", { params }),
    alert: (id) => request("GET", `/v1/care/alerts/${enc(id)}`),
    act: (id, action, body) => request("POST", `/v1/care/alerts/${enc(id)}/${action}`, { body: body || {} }),
    readings: (person, params) => request("GET", `/v1/care/people/${enc(person)}/readings`, { params }),
    dataTypes: () => request("GET", "/v1/data-types"),
  };
}

/** The claims of a JWT, for display only (the service verifies the token; the page never trusts this). */
export function peekClaims(token) {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const json = decodeURIComponent(Array.from(atob(part.padEnd(part.length + ((4 - (part.length % 4)) % 4), "=")),
      (c) => "%" + c.charCodeAt(0).toString(16).padStart(2, "0")).join(""));
    return JSON.parse(json);
  } catch {
    return {};
  }
}
