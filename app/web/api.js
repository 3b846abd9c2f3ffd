// The care API as the page uses it: every call carries the staff token as a bearer header, nothing
// about a person's health goes into a URL beyond ids, and errors come back as ApiError with the
// service's own words.

export class ApiError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;   // 0 when the service could not be reached
    this.detail = detail;
  }
}

/** True for an error the service answered with (as opposed to a bug in the page). */
export const isApiError = (err) => ApiError.prototype.isPrototypeOf(err);

function detailOf(body, fallback) {
  const detail = body && body.detail;
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) {  // FastAPI's validation errors
    return detail.map((d) => `${(d.loc || []).slice(1).join(".")}: ${d.msg}`).join("; ");
  }
  return fallback;
}

/**
 * @param {() => string|null} getToken the current staff token
 * @param {(detail: string) => void} onUnauthorized called on any 401 (expired or revoked token)
 */
export function careApi(getToken, onUnauthorized) {
  async function request(method, path, { params, body } = {}) {
    const url = new URL(path, window.location.origin);
    for (const [key, value] of Object.entries(params || {})) {
      for (const v of Array.isArray(value) ? value : [value]) {
        if (v !== undefined && v !== null && v !== "") url.searchParams.append(key, v);
      }
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
    let payload = null;
    try {
      payload = await response.json();
    } catch {
      payload = null;
    }
    if (!response.ok) {
      const error = new ApiError(response.status, detailOf(payload, response.statusText || "error"));
      error.code = payload && payload.code;  // the service's stable code, e.g. no_consent
      if (response.status === 401) onUnauthorized(error.detail);
      throw error;
    }
    return payload;
  }

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
