// Asterisk device states (ast_devstate_str(), as in ARI `DeviceStateChanged.device_state.state` and
// AMI `DeviceStateChange`) ↔ the four device states presence needs.
import { SwitchboardError } from "../errors.js";
import type { DeviceState } from "../presence.js";

export const ASTERISK_DEVICE_STATES = [
  "UNKNOWN",
  "NOT_INUSE",
  "INUSE",
  "BUSY",
  "INVALID",
  "UNAVAILABLE",
  "RINGING",
  "RINGINUSE",
  "ONHOLD",
] as const;
export type AsteriskDeviceState = (typeof ASTERISK_DEVICE_STATES)[number];

/**
 * NOT_INUSE is a registered, idle phone. INUSE, BUSY and RINGINUSE mean a call is in progress
 * (RINGINUSE: a second call rings during the first); ONHOLD a call on hold; RINGING a call coming.
 * UNAVAILABLE (unregistered), INVALID (no such device) and UNKNOWN mean "no phone to speak of".
 */
const TO_DEVICE: Readonly<Record<AsteriskDeviceState, DeviceState>> = {
  NOT_INUSE: "idle",
  INUSE: "inuse",
  BUSY: "inuse",
  ONHOLD: "onhold",
  RINGINUSE: "inuse",
  RINGING: "ringing",
  UNAVAILABLE: "unavailable",
  INVALID: "unavailable",
  UNKNOWN: "unavailable",
};

const FROM_DEVICE: Readonly<Record<DeviceState, AsteriskDeviceState>> = {
  idle: "NOT_INUSE",
  inuse: "INUSE",
  onhold: "ONHOLD",
  ringing: "RINGING",
  unavailable: "UNAVAILABLE",
};

/** Asterisk → device state. Asterisk compares these names case-insensitively, so do we. */
export function asteriskDeviceToDevice(value: string): DeviceState {
  const key = value.toUpperCase();
  if (!(ASTERISK_DEVICE_STATES as readonly string[]).includes(key)) {
    throw new SwitchboardError("bad-request", `unknown Asterisk device state '${value}'`);
  }
  return TO_DEVICE[key as AsteriskDeviceState];
}

/** Device state → the Asterisk name (for `Custom:`/`Stasis:` devices and fakes). */
export function deviceToAsteriskDevice(device: DeviceState): AsteriskDeviceState {
  return FROM_DEVICE[device];
}
