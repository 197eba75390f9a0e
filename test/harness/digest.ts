// Digest answers computed from scratch with node:crypto (RFC 7616 §3.4.1, qop=auth), independently
// of components/sip/digest.ts, for tests that play a SIP client authenticating to the bridge.
import { createHash } from "node:crypto";

export const hash = (algorithm: "md5" | "sha256", text: string): string =>
  createHash(algorithm).update(text).digest("hex");

/** Parameters of one challenge header value (`Digest realm="x", nonce="y", ...`). */
export function params(challenge: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const match of challenge.replace(/^Digest\s+/i, "").matchAll(/(\w+)=("([^"]*)"|[^,\s]+)/g)) {
    out.set((match[1] ?? "").toLowerCase(), match[3] ?? match[2] ?? "");
  }
  return out;
}

/** RFC 7616 §3.4.1 response with qop=auth, computed from scratch. */
export function digestAnswer(
  challenge: string,
  options: { username: string; password: string; method: string; uri: string; nc: string; cnonce: string },
): string {
  const p = params(challenge);
  const algorithm = (p.get("algorithm") ?? "MD5").toUpperCase() === "SHA-256" ? "sha256" : "md5";
  const realm = p.get("realm") ?? "";
  const nonce = p.get("nonce") ?? "";
  const ha1 = hash(algorithm, `${options.username}:${realm}:${options.password}`);
  const ha2 = hash(algorithm, `${options.method}:${options.uri}`);
  const response = hash(algorithm, `${ha1}:${nonce}:${options.nc}:${options.cnonce}:auth:${ha2}`);
  return [
    `Digest username="${options.username}"`,
    `realm="${realm}"`,
    `nonce="${nonce}"`,
    `uri="${options.uri}"`,
    `response="${response}"`,
    `algorithm=${p.get("algorithm") ?? "MD5"}`,
    `cnonce="${options.cnonce}"`,
    "qop=auth",
    `nc=${options.nc}`,
  ].join(", ");
}
