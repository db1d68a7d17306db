// The JS client of the twin hub (docs/protocol.md), for browsers and Node (>= 20, with a
// WebSocket: Node 20 needs `--experimental-websocket`, or pass one as `options.WebSocket`).
//
// - `TwinClient`: an app session. `await TwinClient.connect(url, {email, password})` (or
//   `{token}`); one method per command (`client.lock("car:demo-1")`, generated from the
//   message registry: see twin-protocol.d.mts), each a promise of the command's result that
//   rejects with a `TwinError` (its `code` and `message` from the hub), with an
//   `onProgress` callback for `accepted`; `client.pushes()` is an async iterator of the
//   account's pushes. Every durable push (one with a `seq`) is acked once handed over, and
//   never handed over twice, also when the hub sends it again after a reconnect.
//   A dropped connection is reopened with exponential backoff and a token login; commands
//   in flight when it dropped reject with `offline` (they may have run: read to check).
// - `TwinLink`: a car's telematics unit (the demo's car panel): logs in with the car's link
//   secret, reports sensor events to `car:<id>`, answers the hub's actuations.
//
// msgpack is @msgpack/msgpack, vendored under vendor/msgpack (see its LICENSE) so that the
// page works with no network and no build step.

import { decode, encode } from "./vendor/msgpack/index.mjs";
import { COMMAND_METHODS, KINDS } from "./twin-protocol.mjs";

/** An `error` reply from the hub (or the connection failing), with its stable `code`. */
export class TwinError extends Error {
  constructor(code, message) {
    super(message);
    this.name = "TwinError";
    this.code = code;
  }
}

/** The hub refused a hello: wrong credentials, a revoked token, too many attempts. */
export class LoginFailed extends TwinError {
  constructor(code, message) {
    super(code, message);
    this.name = "LoginFailed";
  }
}

const DEFAULTS = {
  timeoutMs: 10_000, // per command: the hub answers within its own 5 s timeout, plus slack
  helloTimeoutMs: 10_000,
  reconnect: true,
  backoffMs: 250, // first retry; doubles up to maxBackoffMs, with jitter
  maxBackoffMs: 10_000,
};

/** One websocket carrying msgpack frames: open, send, receive, close. */
class Wire {
  constructor(url, WebSocketImpl) {
    this.url = url;
    this.WebSocket = WebSocketImpl ?? globalThis.WebSocket;
    if (!this.WebSocket) throw new Error("no WebSocket here: on Node 20 run with --experimental-websocket, or pass options.WebSocket");
    this.ws = null;
  }

  /** Open the socket; `onFrame(envelope)` for each frame, `onClose({code, reason})` once. */
  open(onFrame, onClose) {
    return new Promise((resolve, reject) => {
      const ws = new this.WebSocket(this.url);
      ws.binaryType = "arraybuffer";
      let opened = false;
      ws.onopen = () => {
        opened = true;
        resolve();
      };
      ws.onmessage = (event) => {
        let frame;
        try {
          frame = decode(new Uint8Array(event.data));
        } catch {
          return; // not msgpack: nothing the hub sends
        }
        onFrame(frame);
      };
      const failed = (code) => {
        if (this.ws === ws) this.ws = null;
        reject(new TwinError("offline", `could not open ${this.url} (${code || "refused"})`));
      };
      ws.onerror = () => {
        if (!opened) failed(0); // some WebSockets (Node's) report a refused connection only here
      };
      ws.onclose = (event) => {
        if (!opened) return failed(event.code);
        if (this.ws === ws) this.ws = null;
        onClose({ code: event.code, reason: event.reason });
      };
      this.ws = ws;
    });
  }

  get isOpen() {
    return this.ws !== null && this.ws.readyState === 1;
  }

  send(envelope) {
    if (!this.isOpen) throw new TwinError("offline", "not connected to the hub");
    this.ws.send(encode({ id: 0, from: "", ts: Date.now() / 1000, v: 1, body: {}, ...envelope }));
  }

  close(code = 1000, reason = "") {
    const ws = this.ws;
    this.ws = null;
    if (ws && ws.readyState <= 1) ws.close(code, reason);
  }
}

/** Send a hello and wait for the welcome (or the error refusing it). */
function hello(wire, frames, type, body, timeoutMs) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new TwinError("timeout", "the hub did not answer the hello")), timeoutMs);
    frames.hello = (env) => {
      clearTimeout(timer);
      frames.hello = null;
      if (env.type === "welcome") resolve(env.body);
      else reject(new LoginFailed(env.body?.code ?? "bad_credentials", env.body?.message ?? `expected a welcome, got ${env.type}`));
    };
    frames.closed = () => {
      clearTimeout(timer);
      reject(new TwinError("offline", "the hub closed the connection during the login"));
    };
    wire.send({ type, id: 1, to: "hub", body });
  });
}

/** An unbounded queue read by one async iterator at a time. */
class Queue {
  constructor() {
    this.items = [];
    this.waiters = [];
    this.ended = false;
  }
  put(item) {
    const waiter = this.waiters.shift();
    if (waiter) waiter({ value: item, done: false });
    else this.items.push(item);
  }
  end() {
    this.ended = true;
    for (const waiter of this.waiters.splice(0)) waiter({ value: undefined, done: true });
  }
  next() {
    if (this.items.length) return Promise.resolve({ value: this.items.shift(), done: false });
    if (this.ended) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve) => this.waiters.push(resolve));
  }
}

/** An app session on the hub. Make one with `TwinClient.connect`. */
export class TwinClient {
  /** Connect to the hub at `url` and log in with `{email, password}` or `{token}`. */
  static async connect(url, credentials, options = {}) {
    const client = new TwinClient(url, options);
    await client._login(credentials);
    return client;
  }

  constructor(url, options = {}) {
    this.url = url;
    this.options = { ...DEFAULTS, ...options };
    this.wire = new Wire(url, this.options.WebSocket);
    this.address = "";
    this.token = "";
    this.garage = {};
    this.status = "connecting";
    this._ids = 1; // 1 is every hello's id
    this._pending = new Map(); // command id -> {resolve, reject, onProgress, timer, type, target}
    this._pushes = new Queue();
    this._seen = 0; // highest durable push sequence number received (duplicates are dropped)
    this._acked = 0; // highest one acked to the hub
    this._handed = 0; // highest one handed over to the app
    this._closing = false;
    this._online = false; // logged in on the current socket
    this._retry = null;
    this._frames = { hello: null, closed: null };
    for (const [type, method] of Object.entries(COMMAND_METHODS)) {
      this[method] = (target, body = {}, opts = {}) => this.command(target, type, body, opts);
    }
  }

  async _login(credentials) {
    const [type, body] = credentials.token
      ? ["hello_token", { token: credentials.token }]
      : ["hello_password", { email: credentials.email, password: credentials.password }];
    this._setStatus("connecting");
    await this.wire.open((env) => this._frame(env), (why) => this._closed(why));
    try {
      const welcome = await hello(this.wire, this._frames, type, body, this.options.helloTimeoutMs);
      this.address = welcome.address;
      this.token = welcome.token || this.token;
      this.garage = welcome.garage ?? {};
    } catch (error) {
      this.wire.close(); // refused: this socket was never logged in, its close is not a drop
      throw error;
    }
    this._online = true;
    this._setStatus("online", { garage: this.garage });
    if (this._handed > this._acked) this._ack(this._handed); // acks owed from before a drop
  }

  _setStatus(status, detail = {}) {
    this.status = status;
    this.options.onStatus?.(status, detail);
  }

  /** Send command `type` with `body` to `target`: the result of its `ok`, or a TwinError. */
  command(target, type, body = {}, { onProgress, timeoutMs } = {}) {
    if (KINDS[type] !== "command") return Promise.reject(new TwinError("unknown_type", `${type} is not a command`));
    const id = ++this._ids;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this._pending.delete(id);
        reject(new TwinError("timeout", `no answer from the hub for ${type} to ${target}`));
      }, timeoutMs ?? this.options.timeoutMs);
      this._pending.set(id, { resolve, reject, onProgress, timer, type, target });
      try {
        this.wire.send({ type, id, to: target, body });
      } catch (error) {
        clearTimeout(timer);
        this._pending.delete(id);
        reject(error);
      }
    });
  }

  /** The account's pushes (alerts, state changes, offers, garage changes...), as an async
   * iterator of frames; ends when the client is closed or logged out. Durable ones are acked
   * as they are handed over. One reader at a time. */
  pushes() {
    const iterator = {
      next: async () => {
        const item = await this._pushes.next();
        const seq = item.done ? 0 : pushSeq(item.value);
        if (seq > this._handed) {
          this._handed = seq;
          this._ack(seq);
        }
        return item;
      },
      return: async () => ({ value: undefined, done: true }),
      [Symbol.asyncIterator]() {
        return iterator;
      },
    };
    return iterator;
  }

  _ack(upto) {
    if (!this.wire.isOpen || this.status !== "online") return; // sent after the next login
    this.wire.send({ type: "ack", to: "hub", body: { upto } });
    this._acked = upto;
  }

  _frame(env) {
    if (this._frames.hello && (env.type === "welcome" || (env.type === "error" && env.id === 1))) {
      this._frames.hello(env);
      return;
    }
    const pending = env.id > 0 ? this._pending.get(env.id) : undefined;
    if (env.type === "accepted") {
      pending?.onProgress?.({ stage: "accepted", id: env.id, target: pending.target, type: pending.type });
      return;
    }
    if ((env.type === "ok" || env.type === "error") && pending) {
      this._pending.delete(env.id);
      clearTimeout(pending.timer);
      if (env.type === "ok") pending.resolve(env.body.result);
      else pending.reject(new TwinError(env.body.code, env.body.message));
      return;
    }
    const seq = pushSeq(env);
    if (seq > 0) {
      if (seq <= this._seen) return; // sent again after a reconnect: handed over already
      this._seen = seq;
    }
    if (env.type === "garage_changed") this._garageChanged(env.body);
    this._pushes.put(env);
  }

  _garageChanged({ car, role, added }) {
    if (added) this.garage = { ...this.garage, [car]: role };
    else if (this.garage[car] === role) {
      const { [car]: _, ...rest } = this.garage;
      this.garage = rest;
    }
  }

  _closed({ code, reason }) {
    this._frames.closed?.();
    if (!this._online) return; // closed during a login: the login reports it
    this._online = false;
    for (const [id, pending] of this._pending) {
      clearTimeout(pending.timer);
      pending.reject(new TwinError("offline", `the connection closed (${code}) before ${pending.target} answered; the command may have run: check with a read`));
      this._pending.delete(id);
    }
    if (this._closing || !this.options.reconnect || !this.token) {
      this._setStatus("closed", { code, reason });
      this._pushes.end();
      return;
    }
    this._setStatus("offline", { code, reason });
    this._reconnect(0);
  }

  _reconnect(attempt) {
    const base = Math.min(this.options.maxBackoffMs, this.options.backoffMs * 2 ** attempt);
    const delay = base / 2 + (Math.random() * base) / 2;
    this._retry = setTimeout(async () => {
      this._retry = null;
      if (this._closing) return;
      try {
        await this._login({ token: this.token });
      } catch (error) {
        if (error instanceof LoginFailed) {
          this._setStatus("logged_out", { code: error.code, reason: error.message });
          this._pushes.end();
        } else if (!this._closing) {
          this._setStatus("offline", { reason: error.message, attempt: attempt + 1 });
          this._reconnect(attempt + 1);
        }
      }
    }, delay);
  }

  /** Drop the connection as a network would (for tests and the demo): it reconnects. */
  drop() {
    this.wire.ws?.close(4000, "dropped by the client");
  }

  /** Close for good (1000); pending commands reject with `offline`, pushes() ends. */
  close() {
    this._closing = true;
    if (this._retry) clearTimeout(this._retry);
    if (this._online) this.wire.close(1000);
    else {
      this.wire.close(1000);
      this._setStatus("closed", { code: 1000, reason: "" });
      this._pushes.end();
    }
  }
}

/** The sequence number of a durable push (0: a live-only push or a reply). The hub sends it
 * in the envelope's `seq`; older hubs sent it as the `id` of a notice. */
export function pushSeq(env) {
  if (typeof env.seq === "number") return env.seq;
  return KINDS[env.type] === "notice" && env.id > 0 ? env.id : 0;
}

/** A car's telematics unit on the hub: reports events, answers actuations. */
export class TwinLink {
  /** Link car `vehicleId` with its secret. `onActuation(frame)` decides each actuation the
   * hub sends (a lock, climate_start...): return (or resolve) a detail string for `ok`, or
   * throw for `error` `actuation_failed` with the thrown message. */
  static async connect(url, vehicleId, secret, options = {}) {
    const link = new TwinLink(url, vehicleId, secret, options);
    await link.open();
    return link;
  }

  constructor(url, vehicleId, secret, options = {}) {
    this.url = url;
    this.vehicleId = vehicleId;
    this.secret = secret;
    this.car = `car:${vehicleId}`;
    this.options = { ...DEFAULTS, ...options };
    this.address = "";
    this.online = false;
    this._frames = { hello: null, closed: null };
    this.wire = new Wire(url, this.options.WebSocket);
  }

  async open() {
    await this.wire.open((env) => this._frame(env), (why) => this._closed(why));
    const welcome = await hello(this.wire, this._frames, "hello_vehicle", { vehicle_id: this.vehicleId, secret: this.secret }, this.options.helloTimeoutMs);
    this.address = welcome.address;
    this.online = true;
    this.options.onStatus?.("online", {});
  }

  /** The car reports event `type` (door_changed, alarm_sounding...) with `body`. */
  report(type, body = {}) {
    if (KINDS[type] !== "event") throw new TwinError("unknown_type", `${type} is not an event`);
    this.wire.send({ type, to: this.car, body });
  }

  async _frame(env) {
    if (this._frames.hello && (env.type === "welcome" || env.type === "error")) {
      this._frames.hello(env);
      return;
    }
    if (KINDS[env.type] === "command") {
      let reply;
      try {
        const detail = await (this.options.onActuation?.(env) ?? "done");
        reply = { type: "ok", body: { result: { type: "done", detail: String(detail ?? "done") } } };
      } catch (error) {
        reply = { type: "error", body: { code: "actuation_failed", message: String(error?.message ?? error) } };
      }
      if (this.wire.isOpen) this.wire.send({ ...reply, id: env.id, to: env.from || this.car });
      return;
    }
    this.options.onFrame?.(env); // errors about what we sent, a checkpoint from an older hub
  }

  _closed({ code, reason }) {
    this._frames.closed?.();
    this.online = false;
    this.options.onStatus?.("offline", { code, reason });
  }

  /** Lose coverage: close the link (1000); the car goes offline until `open()` again. */
  close() {
    this.wire.close(1000, "coverage lost");
  }
}
