// The JS client against a real `twin serve --demo` on loopback (node --test). Rules: loopback
// only; every wait is bounded (`until`, the client's own timeouts); each test closes its
// clients; the hub is stopped with SIGTERM at the end.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { LoginFailed, TwinClient, TwinError } from "../../twin/web/twin-client.mjs";
import { startHub, until } from "./hub.mjs";

const PASSWORD = "twin-demo";
let hub;

before(async () => {
  hub = await startHub();
});

after(async () => {
  assert.equal(await hub.stop(), 0);
});

const login = (email, options) => TwinClient.connect(hub.url, { email, password: PASSWORD }, options);

test("password and token logins give the garage with roles", async () => {
  const alice = await login("alice@example.com");
  assert.equal(alice.address, "user:alice@example.com");
  assert.deepEqual(alice.garage, { "car:demo-1": "owner", "car:demo-2": "owner", "car:demo-7": "owner" });
  const again = await TwinClient.connect(hub.url, { token: alice.token });
  assert.equal(again.address, "user:alice@example.com");
  alice.close();
  again.close();
  const bob = await login("bob@example.com");
  assert.equal(bob.garage["car:demo-1"], "sharee");
  bob.close();
});

test("a wrong password is refused with its code", async () => {
  await assert.rejects(
    TwinClient.connect(hub.url, { email: "alice@example.com", password: "nope" }),
    (error) => error instanceof LoginFailed && error.code === "bad_credentials",
  );
  await assert.rejects(TwinClient.connect(hub.url, { token: "not-a-token" }), LoginFailed);
});

test("a command reports accepted, then resolves with its result", async () => {
  const alice = await login("alice@example.com");
  const progress = [];
  const snapshot = await alice.lock("car:demo-1", {}, { onProgress: (p) => progress.push(p.stage) });
  assert.deepEqual(progress, ["accepted"]);
  assert.equal(snapshot.type, "snapshot");
  assert.equal(snapshot.locked.value, true);
  assert.equal(typeof snapshot.locked.at, "number");
  const climate = await alice.climateStart("car:demo-1", { duration_min: 10 });
  assert.equal(climate.running, true);
  assert.ok(climate.ends_at > climate.started_at);
  assert.equal((await alice.climateStop("car:demo-1")).running, false);
  alice.close();
});

test("a refused command rejects with the code and reason, after accepted", async () => {
  const bob = await login("bob@example.com");
  const progress = [];
  await assert.rejects(
    bob.unlock("car:demo-1", {}, { onProgress: (p) => progress.push(p.stage) }),
    (error) => error instanceof TwinError && error.code === "not_authorized" && error.message.length > 0,
  );
  assert.deepEqual(progress, ["accepted"]);
  await assert.rejects(bob.lock("car:nowhere"), (error) => error.code === "unknown_target");
  await assert.rejects(bob.command("car:demo-1", "door_changed", {}), (error) => error.code === "unknown_type");
  bob.close();
});

/** The next push of `type` from the iterator, skipping others (the demo's own garage changes). */
async function nextOf(pushes, type, seen = []) {
  for (;;) {
    const { value, done } = await pushes.next();
    assert.ok(!done, `the pushes ended before a ${type}`);
    seen.push(value);
    if (value.type === type) return value;
  }
}

test("pushes arrive once, are acked, and are not handed over twice after a reconnect", async () => {
  const alice = await login("alice@example.com");
  const statuses = [];
  const carol = await login("carol@example.com", { onStatus: (status) => statuses.push(status) });
  await alice.shareInvite("car:demo-2", { account: "carol@example.com" });
  // the offer is received but not read yet, so not acked: a reconnect makes the hub send it again
  await until(() => carol._pushes.items.some((env) => env.type === "share_offer"), 5000, "the share offer");
  carol.drop();
  await until(() => statuses.filter((s) => s === "online").length === 2, 5000, "the reconnect");
  assert.deepEqual(statuses, ["connecting", "online", "offline", "connecting", "online"]);
  const pushes = carol.pushes();
  const seen = [];
  const offer = await nextOf(pushes, "share_offer", seen);
  assert.equal(offer.body.car, "car:demo-2");
  await carol.shareAccept("car:demo-2");
  const changed = await nextOf(pushes, "garage_changed", seen);
  assert.deepEqual(changed.body, { car: "car:demo-2", role: "sharee", added: true });
  assert.equal(seen.filter((env) => env.type === "share_offer").length, 1, "the share offer was handed over twice");
  const seqs = seen.map((env) => env.seq ?? env.id);
  assert.deepEqual(seqs, [...new Set(seqs)].sort((a, b) => a - b), "pushes out of order or twice");
  assert.equal(carol.garage["car:demo-2"], "sharee");
  carol.close();
  assert.equal((await pushes.next()).done, true);
  // every push so far was acked: a new session gets the revoke first, none of those again
  await alice.shareRevoke("car:demo-2", { account: "carol@example.com" });
  const later = await TwinClient.connect(hub.url, { token: carol.token });
  const first = (await later.pushes().next()).value;
  assert.deepEqual([first.type, first.body.car, first.body.added], ["garage_changed", "car:demo-2", false]);
  later.close();
  alice.close();
});

test("a command while offline rejects with offline; the client reconnects by itself", async () => {
  const alice = await login("alice@example.com", { backoffMs: 50 });
  alice.drop();
  await until(() => alice.status !== "online", 2000, "the drop");
  await assert.rejects(alice.remoteCheck("car:demo-1"), (error) => error.code === "offline");
  await until(() => alice.status === "online", 5000, "the reconnect");
  assert.equal((await alice.remoteCheck("car:demo-1")).type, "snapshot");
  alice.close();
});

test("the client rides out a hub restart (1001) and logs in again with its token", async () => {
  const statuses = [];
  const alice = await login("alice@example.com", { backoffMs: 100, maxBackoffMs: 500, onStatus: (s) => statuses.push(s) });
  assert.equal(await hub.stop(), 0);
  await until(() => statuses.includes("offline"), 5000, "the close");
  hub = { ...(await startHub({ port: hub.port, data: hub.data })), secrets: hub.secrets }; // not printed again
  await until(() => alice.status === "online", 15_000, "the reconnect");
  assert.equal((await alice.lock("car:demo-1")).locked.value, true);
  alice.close();
});

test("a car's unit reports events (the app sees the alert) and answers actuations", async () => {
  const { TwinLink } = await import("../../twin/web/twin-client.mjs");
  const carol = await login("carol@example.com");
  const pushes = carol.pushes();
  let refuse = false;
  const actuations = [];
  const link = await TwinLink.connect(hub.url, "demo-5", hub.secrets["demo-5"], {
    onActuation: (frame) => {
      actuations.push(frame.type);
      if (refuse) throw new Error("the door lock motor is stuck");
      return `${frame.type} carried out`;
    },
  });
  assert.equal(link.address, "unit:demo-5");
  link.report("alarm_sounding", { cause: "intrusion" });
  const alert = await nextOf(pushes, "alert");
  assert.deepEqual([alert.body.alert, alert.body.car], ["alarm", "car:demo-5"]);
  assert.ok(alert.seq > 0, "an alert is a durable push with its seq");
  assert.equal((await carol.lock("car:demo-5")).locked.value, true);
  refuse = true;
  await assert.rejects(carol.unlock("car:demo-5"), (error) => error.code === "actuation_failed" && /stuck/.test(error.message));
  assert.deepEqual(actuations, ["lock", "unlock"]);
  link.close();
  await until(() => !link.online, 5000, "the link to close");
  await assert.rejects(carol.unlock("car:demo-5"), (error) => error.code === "offline");
  carol.close();
});
