// Compiled, never run: `tsc -p tests/js` checks that the declarations of the JS client and the
// generated protocol types (twin/web/*.d.mts) type real use, and refuse wrong use.

import { TwinClient, TwinError, TwinLink } from "../../twin/web/twin-client.mjs";

export async function use(): Promise<void> {
  const client = await TwinClient.connect("ws://127.0.0.1:8765/", { email: "alice@example.com", password: "twin-demo" });
  const snapshot = await client.lock("car:demo-1", {}, { onProgress: (progress) => progress.stage });
  const locked: boolean = snapshot.locked.value;
  const when: number | null | undefined = snapshot.doors_open.front_left?.at;
  const climate = await client.climateStart("car:demo-1", { duration_min: 10 });
  const left: number = climate.cap_s - climate.used_s;
  const sharing = await client.shareInvite("car:demo-1", { account: "bob@example.com", functions: ["remote_check"] });
  const who: string | undefined = sharing.sharees[0]?.account;
  const place = await client.locate("car:demo-1");
  const lat: number | undefined = place.position.value?.lat;
  for await (const push of client.pushes()) {
    if (push.type === "alert") {
      const text: string = push.body.text;
    } else if (push.type === "state_changed") {
      const armed: boolean = push.body.snapshot.alarm_armed.value;
    }
  }
  try {
    await client.unlock("car:demo-1");
  } catch (error) {
    if (error instanceof TwinError) error.code.toUpperCase();
  }
  const link = await TwinLink.connect("ws://127.0.0.1:8765/", "demo-1", "secret", { onActuation: (frame) => `did ${frame.type}` });
  link.report("door_changed", { door: "front_left", open: true });
  link.report("alarm_sounding");

  // @ts-expect-error a required field is missing
  await client.setHazards("car:demo-1", {});
  // @ts-expect-error lock takes no fields
  await client.lock("car:demo-1", { force: true });
  // @ts-expect-error not a door
  link.report("door_changed", { door: "sunroof", open: true });
  // @ts-expect-error an event is not a command
  await client.command("car:demo-1", "door_changed", {});
  void [locked, when, left, who, lat];
}
