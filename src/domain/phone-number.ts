// Phone numbers as E.164 (DESIGN.md "Numbers are normalized to E.164 with libphonenumber-js and a
// configured default region"): `+44 20 7123 4567`, `02071234567` (region GB) and `+442071234567`
// are one number. Extensions (short internal numbers) are not phone numbers and stay as dialled.
import { parsePhoneNumberFromString, type CountryCode } from "libphonenumber-js/max";

/** E.164 (`+442071234567`), or null when the input is no valid number in that region. */
export function toE164(input: string, defaultRegion: string): string | null {
  const cleaned = input.trim();
  if (!/^\+?[0-9\s().\-/]+$/.test(cleaned)) return null;
  const parsed = parsePhoneNumberFromString(cleaned, defaultRegion as CountryCode);
  if (!parsed?.isValid()) return null;
  return parsed.number;
}

/** A short run of digits dialled inside the PBX (e.g. 8001): no region makes it a phone number. */
export function isExtension(input: string): boolean {
  return /^[0-9*#]{2,6}$/.test(input.trim());
}
