import type { PresenceSource } from "../domain/presence.js";

/** Two sources are the same when kind and identity (resource, ETag) match; a person has one of each PBX kind. */
export function sameSource(a: PresenceSource, b: PresenceSource): boolean {
  if (a.kind === "xmpp" && b.kind === "xmpp") return a.resource === b.resource;
  if (a.kind === "sip-publish" && b.kind === "sip-publish") return a.etag === b.etag;
  return a.kind === b.kind;
}
