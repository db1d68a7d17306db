// The demo's web app: the app side (log in, garage, remote check, lock, climate, car finder,
// sharing, alerts) on twin-client.mjs, and the car panel (panel.mjs) playing a car's unit.
// Plain modules, no build step: served by `twin serve --demo` at /app/.

import { TwinClient } from "./twin-client.mjs";
import { startPanel } from "./panel.mjs";

/** a reported value older than this looks stale */
export const STALE_S = 60;
const HOME = { lat: 35.6586, lon: 139.7454 };
const $ = (id) => document.getElementById(id);
const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/`;

const state = { client: null, car: null, snapshot: null, climate: null, offers: new Map() };

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  node.append(...children);
  return node;
}

function ago(at) {
  if (at === null || at === undefined) return "never reported";
  const s = Math.max(0, Math.round(Date.now() / 1000 - at));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  return `${Math.floor(s / 3600)} h ago`;
}

const isStale = (at) => at === null || at === undefined || Date.now() / 1000 - at > STALE_S;

function setStatus(status) {
  $("status").textContent = status === "online" ? `${state.client?.address.slice(5)} · online` : status;
  $("status").className = `status ${status}`;
}

// --- logging in

async function login(credentials) {
  $("login-error").hidden = true;
  try {
    state.client = await TwinClient.connect(url, credentials, { onStatus: (status) => setStatus(status) });
  } catch (error) {
    sessionStorage.removeItem("twin-token");
    $("login-error").textContent = `${error.message} (${error.code})`;
    $("login-error").hidden = false;
    return;
  }
  sessionStorage.setItem("twin-token", state.client.token);
  setStatus("online");
  $("login-form").hidden = true;
  $("app").hidden = false;
  renderGarage();
  readPushes(state.client);
}

function logout() {
  sessionStorage.removeItem("twin-token");
  state.client?.close();
  location.reload();
}

// --- the garage

function renderGarage() {
  const garage = state.client.garage;
  const list = $("garage");
  list.replaceChildren(
    ...Object.entries(garage)
      .sort()
      .map(([car, role]) =>
        el("li", { "data-car": car, class: car === state.car ? "selected" : "", onclick: () => selectCar(car) },
          el("strong", {}, car.slice(4)), el("span", { class: `badge ${role}` }, role)),
      ),
  );
  if (!Object.keys(garage).length) list.append(el("li", { class: "muted" }, "no cars"));
  if (state.car && !(state.car in garage)) $("car").hidden = true;
}

async function selectCar(car) {
  state.car = car;
  state.snapshot = null;
  state.climate = null;
  renderGarage();
  const role = state.client.garage[car];
  $("car").hidden = false;
  $("car-title").replaceChildren(car, " ", el("span", { class: `badge ${role}` }, role));
  $("progress").replaceChildren();
  $("share-owner").hidden = role !== "owner";
  renderReadings();
  renderClimate();
  $("position").textContent = "unknown";
  $("map-car").setAttribute("visibility", "hidden");
  await run("remote_check", () => state.client.remoteCheck(car), (snapshot) => showSnapshot(snapshot), { quiet: true });
  if (role === "owner") await refreshSharing();
  else $("sharees").replaceChildren();
}

// --- commands, with their progress

/** Run a command, showing sent -> accepted -> done / refused with the reason in #progress. */
async function run(label, call, onResult, { quiet = false } = {}) {
  const line = $("progress");
  const show = (...parts) => line.replaceChildren(el("strong", {}, label), ": ", ...parts);
  if (!quiet) show("sent…");
  try {
    const result = await call((progress) => !quiet && show(el("span", {}, `${progress.stage}…`)));
    if (!quiet) show(el("span", { class: "ok", "data-outcome": "done" }, "done"), describe(result));
    onResult?.(result);
    return result;
  } catch (error) {
    show(el("span", { class: "bad", "data-outcome": "refused" }, `refused: ${error.message}`), el("span", { class: "muted" }, ` (${error.code})`));
    return null;
  }
}

function describe(result) {
  if (!result) return "";
  if (result.type === "snapshot") return ` (${result.locked.value ? "locked" : "unlocked"})`;
  if (result.type === "climate") return ` (${result.running ? "running" : "stopped"})`;
  if (result.type === "sharing") return ` (${result.sharees.length} sharee(s))`;
  if (result.type === "done" && result.detail) return ` (${result.detail})`;
  return "";
}

const withProgress = (method, body = {}) => (onProgress) => state.client[method](state.car, body, { onProgress });

// --- remote check: every value with how old it is

function showSnapshot(snapshot) {
  state.snapshot = snapshot;
  renderReadings();
}

function renderReadings() {
  const body = $("readings").tBodies[0];
  const s = state.snapshot;
  if (!s) {
    body.replaceChildren(el("tr", {}, el("td", { class: "muted" }, "no remote check yet")));
    return;
  }
  const rows = [
    ["Locked", s.locked, (v) => (v ? "yes" : "no")],
    ["Alarm armed", s.alarm_armed, (v) => (v ? "yes" : "no")],
    ["Hazards", s.hazards, (v) => (v ? "on" : "off")],
    ["Power", s.power, (v) => v],
    ...Object.entries(s.doors_open).map(([door, reading]) => [`Door ${door.replace("_", " ")}`, reading, (v) => (v ? "open" : "closed")]),
    ...Object.entries(s.windows_pct).map(([window, reading]) => [`Window ${window.replace("_", " ")}`, reading, (v) => (v ? `${v}% open` : "closed")]),
  ];
  body.replaceChildren(
    ...rows.map(([name, reading, show]) =>
      el("tr", { class: isStale(reading.at) ? "stale" : "", "data-reading": name },
        el("td", {}, name), el("td", { class: "value" }, String(show(reading.value))), el("td", { class: "age" }, ago(reading.at))),
    ),
  );
  if (s.updates_paused) body.append(el("tr", {}, el("td", { colspan: 3, class: "muted" }, "updates paused while charging (Lite plan)")));
  if (s.telematics === "offline") {
    // a linked car out of coverage: every value is as old as it says, and lock & co. are refused
    body.prepend(el("tr", { class: "stale", "data-reading": "Telematics" },
      el("td", {}, "Telematics"), el("td", { class: "value" }, "offline"), el("td", { class: "age" }, "reads come from the twin")));
  }
}

// --- climate: countdown and the cap left

function renderClimate() {
  const c = state.climate;
  const out = $("climate");
  if (!c) return (out.textContent = "unknown");
  const capLeft = Math.max(0, c.cap_s - c.used_s);
  const cap = `cap left ${Math.floor(capLeft / 60)} min`;
  if (c.running && c.ends_at) {
    const left = Math.max(0, Math.round(c.ends_at - Date.now() / 1000));
    out.textContent = `running (${c.source}), ${Math.floor(left / 60)}:${String(left % 60).padStart(2, "0")} left · ${cap}`;
  } else out.textContent = `off · ${cap}`;
}

// --- car finder

function showLocation(location) {
  const position = location.position.value;
  if (!position) {
    $("position").textContent = "no position reported";
    return;
  }
  $("position").textContent = `${position.lat.toFixed(5)}, ${position.lon.toFixed(5)} (${location.kind.replaceAll("_", " ")}, ${ago(location.position.at)})`;
  const dot = $("map-car");
  dot.setAttribute("cx", String(Math.max(-95, Math.min(95, (position.lon - HOME.lon) * 40000))));
  dot.setAttribute("cy", String(Math.max(-95, Math.min(95, -(position.lat - HOME.lat) * 40000))));
  dot.setAttribute("visibility", "visible");
}

// --- sharing

async function refreshSharing() {
  const sharing = await state.client.shareList(state.car).catch(() => null);
  if (sharing) renderSharees(sharing);
}

function renderSharees(sharing) {
  const list = $("sharees");
  list.replaceChildren(
    ...sharing.sharees.map((sharee) =>
      el("li", {}, `${sharee.account} `, el("span", { class: "badge" }, sharee.accepted ? "accepted" : "invited"), " ",
        el("button", { type: "button", onclick: () => run("share_revoke", withProgress("shareRevoke", { account: sharee.account }), renderSharees) }, "Revoke")),
    ),
  );
  if (!sharing.sharees.length) list.append(el("li", { class: "muted" }, "not shared"));
}

function renderOffers() {
  const list = $("offers");
  list.replaceChildren(
    ...[...state.offers.values()].map((offer) =>
      el("li", {}, `${offer.owner} shares ${offer.car.slice(4)} `,
        el("button", { type: "button", onclick: () => answerOffer(offer.car, "shareAccept") }, "Accept"), " ",
        el("button", { type: "button", onclick: () => answerOffer(offer.car, "shareDecline") }, "Decline")),
    ),
  );
  if (!state.offers.size) list.append(el("li", { class: "muted" }, "none"));
}

async function answerOffer(car, method) {
  await run(method === "shareAccept" ? "share_accept" : "share_decline", (onProgress) => state.client[method](car, {}, { onProgress }));
  state.offers.delete(car);
  renderOffers();
}

// --- pushes: alerts, state changes, offers, garage changes

function addToFeed(text, kind, at) {
  const feed = $("alerts");
  feed.querySelector(".muted")?.remove();
  const when = new Date((at ?? Date.now() / 1000) * 1000).toLocaleTimeString();
  feed.prepend(el("li", { class: `new ${kind}`, "data-kind": kind }, el("time", {}, when), text));
}

async function readPushes(client) {
  for await (const push of client.pushes()) {
    const body = push.body;
    switch (push.type) {
      case "alert":
        if (body.channel === "push") addToFeed(`${body.car.slice(4)}: ${body.text}`, body.alert, body.at);
        break;
      case "operator_notice":
        addToFeed(`centre: ${body.text}`, "notice", body.at);
        break;
      case "state_changed":
        if (body.car === state.car) showSnapshot({ type: "snapshot", ...body.snapshot });
        break;
      case "share_offer":
        state.offers.set(body.car, body);
        renderOffers();
        break;
      case "garage_changed":
        renderGarage();
        if (body.car === state.car && body.added) selectCar(body.car);
        if (state.car && body.car === state.car && client.garage[state.car] === "owner") refreshSharing();
        break;
      case "error":
        addToFeed(`hub: ${body.message}`, "notice");
        break;
    }
  }
}

// --- wiring

async function main() {
  const demo = await fetch("demo.json").then((r) => (r.ok ? r.json() : { accounts: [], cars: [], password: "" })).catch(() => ({ accounts: [], cars: [], password: "" }));
  $("email").replaceChildren(...demo.accounts.map((email) => el("option", { value: email }, email)));
  $("password").value = demo.password;
  $("login-form").addEventListener("submit", (event) => {
    event.preventDefault();
    login({ email: $("email").value, password: $("password").value });
  });
  $("logout").addEventListener("click", logout);
  $("check").addEventListener("click", () => run("remote_check", withProgress("remoteCheck"), showSnapshot));
  $("lock").addEventListener("click", () => run("lock", withProgress("lock"), showSnapshot));
  $("unlock").addEventListener("click", () => run("unlock", withProgress("unlock"), showSnapshot));
  $("climate-start").addEventListener("click", () => run("climate_start", withProgress("climateStart", { duration_min: 10 }), (c) => ((state.climate = c), renderClimate())));
  $("climate-stop").addEventListener("click", () => run("climate_stop", withProgress("climateStop"), (c) => ((state.climate = c), renderClimate())));
  $("locate").addEventListener("click", () => run("locate", withProgress("locate"), showLocation));
  $("share-invite").addEventListener("click", () => run("share_invite", withProgress("shareInvite", { account: $("share-email").value }), renderSharees));
  setInterval(() => {
    if (state.snapshot) renderReadings();
    if (state.climate) renderClimate();
  }, 1000);
  startPanel(url, demo);
  const token = sessionStorage.getItem("twin-token");
  if (token) await login({ token });
}

main();
