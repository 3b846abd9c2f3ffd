// The one fetch helper the pages share: every call carries a bearer token as a header (never in a URL),
// query parameters are dropped when empty, and errors come back as ApiError with the service's own words
// and its stable code.

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
 * A request function bound to a token.
 * @param {() => string|null} getToken the current token
 * @param {(error: ApiError) => void} onError called with every error the service answered with, before it is thrown
 * @returns {(method: string, path: string, options?: {params?: object, body?: any, raw?: boolean}) => Promise<any>}
 *   resolves to the JSON body (or, with ``raw``, the successful Response itself)
 */
export function bearerRequest(getToken, onError) {
  return async function request(method, path, { params, body, raw } = {}) {
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
    if (response.ok && raw) return response;
    let payload = null;
    try {
      payload = await response.json();
    } catch {
      payload = null;
    }
    if (!response.ok) {
      const error = new ApiError(response.status, detailOf(payload, response.statusText || "error"));
      error.code = payload && payload.code;  // the service's stable code, e.g. no_consent
      onError(error);
      throw error;
    }
    return payload;
  };
}
