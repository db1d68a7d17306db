// The car panel: this page plays a demo car's telematics unit (TwinLink). It reports sensor
// events to the car's twin in the hub and carries out (or refuses) the hub's actuations, so
// the app side beside it reacts live: an alarm becomes an alert, a door a state change.

import { TwinLink } from "./twin-client.mjs";

const $ = (id) => document.getElementById(id);
const CONTROLS = ["unit-door", "unit-alarm", "unit-ignition", "unit-move", "unit-plug", "unit-coverage"];

/** Fill the panel from demo.json's cars and wire its buttons. */
export function startPanel(url, demo) {
  const unit = { link: null, door: false, plugged: false, lat: 35.6586, lon: 139.7454 };
  const cars = demo.cars.filter((car) => car.secret);
  $("unit-car").replaceChildren(
    ...cars.map((car) => {
      const option = document.createElement("option");
      option.value = car.id;
      option.textContent = `${car.id} (${car.owner.split("@")[0]}'s, ${car.linked ? "linked: offline until linked" : "simulated"})`;
      return option;
    }),
  );
  if (!cars.length) {
    $("unit-note").textContent = "no car secrets: this hub's store was provisioned by an earlier run; start twin serve --demo with a fresh --data to play the cars.";
    $("unit-connect").disabled = true;
  }

  const log = (text, kind = "") => {
    const item = document.createElement("li");
    item.className = `new ${kind}`;
    const time = document.createElement("time");
    time.textContent = new Date().toLocaleTimeString();
    item.append(time, text);
    $("unit-log").prepend(item);
  };
  const setOnline = (online) => {
    $("unit-status").textContent = online ? `linked as ${unit.link.address}` : "not linked";
    $("unit-status").className = `status ${online ? "online" : ""}`;
    for (const id of CONTROLS) $(id).disabled = !online;
    $("unit-coverage").disabled = !unit.link;
    $("unit-coverage").textContent = online ? "Lose coverage" : "Regain coverage";
    $("unit-connect").textContent = online ? "Disconnect" : "Connect";
  };
  const report = (type, body, text) => {
    try {
      unit.link.report(type, body);
      log(`reported ${text}`);
    } catch (error) {
      log(`could not report ${type}: ${error.message}`, "alarm");
    }
  };

  $("unit-connect").addEventListener("click", async () => {
    if (unit.link?.online) {
      unit.link.close();
      unit.link = null;
      return setOnline(false);
    }
    const car = cars.find((c) => c.id === $("unit-car").value);
    try {
      unit.link = await TwinLink.connect(url, car.id, car.secret, {
        onActuation: (frame) => {
          if ($("unit-refuse").checked) {
            log(`refused ${frame.type}`, "alarm");
            throw new Error(`the unit could not ${frame.type.replace("_", " ")}: motor stuck`);
          }
          log(`carried out ${frame.type}`);
          return `${frame.type} carried out by the unit`;
        },
        onFrame: (frame) => frame.type === "error" && log(`hub: ${frame.body.message}`, "alarm"),
        onStatus: (status) => unit.link && setOnline(status === "online"),
      });
      log(`linked ${car.id}`);
      setOnline(true);
    } catch (error) {
      log(`could not link: ${error.message}`, "alarm");
    }
  });
  $("unit-door").addEventListener("click", () => {
    unit.door = !unit.door;
    report("door_changed", { door: "front_left", open: unit.door }, `driver's door ${unit.door ? "open" : "closed"}`);
    $("unit-door").textContent = unit.door ? "Close driver's door" : "Open driver's door";
  });
  $("unit-alarm").addEventListener("click", () => report("alarm_sounding", { cause: "intrusion" }, "the alarm sounding"));
  $("unit-ignition").addEventListener("change", () => report("ignition_changed", { power: $("unit-ignition").value }, `ignition ${$("unit-ignition").value}`));
  $("unit-move").addEventListener("click", () => {
    unit.lat += 0.0013;
    unit.lon += 0.0016;
    report("position_reported", { lat: unit.lat, lon: unit.lon, speed_kmh: 30 }, `position ${unit.lat.toFixed(4)}, ${unit.lon.toFixed(4)}`);
  });
  $("unit-plug").addEventListener("click", () => {
    unit.plugged = !unit.plugged;
    report("charging_changed", { charging: unit.plugged }, unit.plugged ? "plugged in, charging" : "unplugged");
    $("unit-plug").textContent = unit.plugged ? "Unplug" : "Plug in";
  });
  $("unit-coverage").addEventListener("click", async () => {
    if (unit.link.online) {
      unit.link.close();
      log("lost coverage: the link is down");
    } else {
      await unit.link.open().then(() => (log("coverage back: linked again"), setOnline(true)), (error) => log(`no coverage: ${error.message}`, "alarm"));
    }
  });
}
