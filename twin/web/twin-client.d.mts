// Types of twin-client.mjs. The protocol's own types (frames, bodies, results, the command
// methods) are generated from the message registry into twin-protocol.d.mts.

import type { CommandMethods, CommandOptions, CommandResults, CommandType, Bodies, Envelope, EventType, Frame, Role } from "./twin-protocol.mjs";

export * from "./twin-protocol.mjs";

/** An `error` reply from the hub, or the connection failing (`offline`, `timeout`). */
export class TwinError extends Error {
  constructor(code: string, message: string);
  /** the stable code of docs/protocol.md's error table */
  code: string;
}

/** The hub refused a hello. */
export class LoginFailed extends TwinError {}

export type Credentials = { email: string; password: string } | { token: string };

/** connecting -> online; offline while reconnecting; closed (by `close()`), logged_out (token refused). */
export type Status = "connecting" | "online" | "offline" | "closed" | "logged_out";

export interface ClientOptions {
  /** a WebSocket class (default: the global one) */
  WebSocket?: unknown;
  /** per command, ms (default 10000) */
  timeoutMs?: number;
  helloTimeoutMs?: number;
  /** reconnect after a drop, with a token login (default true) */
  reconnect?: boolean;
  /** first retry delay, doubled per attempt up to maxBackoffMs, with jitter (default 250, 10000) */
  backoffMs?: number;
  maxBackoffMs?: number;
  onStatus?: (status: Status, detail: { code?: number; reason?: string; garage?: Record<string, Role>; attempt?: number }) => void;
}

export interface TwinClient extends CommandMethods {}

export class TwinClient {
  static connect(url: string, credentials: Credentials, options?: ClientOptions): Promise<TwinClient>;
  constructor(url: string, options?: ClientOptions);
  readonly url: string;
  /** user:<account> */
  address: string;
  /** logs in again without the password (used by the reconnects) */
  token: string;
  /** car address -> role, kept current by garage_changed pushes */
  garage: Record<string, Role>;
  status: Status;
  /** any command by its tag; the methods of CommandMethods call this */
  command<T extends CommandType>(target: string, type: T, body?: Bodies[T], options?: CommandOptions): Promise<CommandResults[T]>;
  /** the account's pushes, each handed over once; durable ones acked as handed over */
  pushes(): AsyncIterableIterator<Frame>;
  /** drop the connection as a network would: the client reconnects */
  drop(): void;
  /** close for good */
  close(): void;
}

/** The sequence number of a durable push (0 for live-only pushes). */
export function pushSeq(env: Envelope): number;

export interface LinkOptions {
  WebSocket?: unknown;
  helloTimeoutMs?: number;
  /** decide an actuation: resolve with a detail for `ok`, throw for `error` `actuation_failed` */
  onActuation?: (frame: Frame) => string | void | Promise<string | void>;
  /** frames that are not actuations (the hub's errors about what the link sent) */
  onFrame?: (frame: Frame) => void;
  onStatus?: (status: "online" | "offline", detail: { code?: number; reason?: string }) => void;
}

/** A car's telematics unit: reports sensor events to car:<id>, answers actuations. */
export class TwinLink {
  static connect(url: string, vehicleId: string, secret: string, options?: LinkOptions): Promise<TwinLink>;
  constructor(url: string, vehicleId: string, secret: string, options?: LinkOptions);
  readonly car: string;
  /** unit:<id> */
  address: string;
  online: boolean;
  open(): Promise<void>;
  report<T extends EventType>(type: T, body?: Bodies[T]): void;
  /** lose coverage */
  close(): void;
}
