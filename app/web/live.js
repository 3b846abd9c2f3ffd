// The live feed: a WebSocket to /v1/care/live that reconnects with exponential backoff (and jitter, so
// a service restart is not met by every page at once), and polls while it is down.

const RECONNECT_MIN_MS = 1_000;
const RECONNECT_MAX_MS = 30_000;
const TOKEN_EXPIRED = 4401;  // app/api/deps.py: TOKEN_EXPIRED_CLOSE

export class LiveFeed {
  /**
   * @param {object} o
   * @param {() => string} o.url the feed's URL (with the current token)
   * @param {(message: object) => void} o.onMessage a message from the feed
   * @param {(up: boolean) => void} o.onChange the feed came up (the caller should catch up) or went down
   * @param {() => void} o.poll called every ``pollMs`` while the feed is down
   * @param {() => void} [o.onExpired] the service closed the feed because the token expired
   */
  constructor({ url, onMessage, onChange, poll, pollMs = 30_000, onExpired = null }) {
    Object.assign(this, { url, onMessage, onChange, poll, pollMs, onExpired });
    this.socket = null;
    this.up = false;
    this.running = false;
    this.delay = RECONNECT_MIN_MS;
    this.reconnectTimer = null;
    this.pollTimer = null;
  }

  start() {
    this.running = true;
    this.delay = RECONNECT_MIN_MS;
    this.connect();
  }

  stop() {
    this.running = false;
    clearTimeout(this.reconnectTimer);
    this.stopPolling();
    const socket = this.socket;
    this.socket = null;
    this.up = false;
    if (socket) socket.close(1000, "logged out");
  }

  connect() {
    clearTimeout(this.reconnectTimer);
    if (!this.running) return;
    let socket;
    try {
      socket = new WebSocket(this.url());
    } catch {
      this.scheduleReconnect();
      return;
    }
    this.socket = socket;
    socket.addEventListener("open", () => {
      if (this.socket !== socket) return;
      this.up = true;
      this.delay = RECONNECT_MIN_MS;
      this.stopPolling();
      this.onChange(true);
    });
    socket.addEventListener("message", (event) => {
      if (this.socket !== socket) return;
      let message;
      try {
        message = JSON.parse(event.data);
      } catch {
        return;
      }
      this.onMessage(message);
    });
    socket.addEventListener("close", (event) => {
      if (this.socket !== socket) return;
      this.socket = null;
      this.up = false;
      // The service closes the feed when the token expires (4401): a reconnect would only be refused.
      if (event.code === TOKEN_EXPIRED && this.onExpired) {
        this.onExpired();
        return;
      }
      this.onChange(false);
      this.startPolling();
      this.scheduleReconnect();
    });
  }

  scheduleReconnect() {
    if (!this.running) return;
    const delay = this.delay * (0.75 + Math.random() * 0.5);
    this.delay = Math.min(this.delay * 2, RECONNECT_MAX_MS);
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = setTimeout(() => this.connect(), delay);
  }

  startPolling() {
    if (this.pollTimer === null && this.running) this.pollTimer = setInterval(this.poll, this.pollMs);
  }

  stopPolling() {
    clearInterval(this.pollTimer);
    this.pollTimer = null;
  }
}
