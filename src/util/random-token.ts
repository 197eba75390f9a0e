// Random tokens for protocol identifiers (SIP tags, branches, Call-IDs, entity tags). Drawing a few
// bytes at a time from the system generator costs a call into it each time, which showed in the
// profiles of the message and presence paths; this draws them from a pool refilled 4 KB at a time.
// The bytes are the system generator's all the same.
import { randomFillSync } from "node:crypto";

const POOL_SIZE = 4096;
const pool = Buffer.alloc(POOL_SIZE);
let offset = POOL_SIZE;

/** `bytes` random bytes (at most 256) as hex or base64url text. */
export function randomToken(bytes: number, encoding: "hex" | "base64url" = "hex"): string {
  if (!Number.isInteger(bytes) || bytes < 1 || bytes > 256)
    throw new RangeError(`randomToken: bytes must be 1 to 256, got ${bytes}`);
  if (offset + bytes > POOL_SIZE) {
    randomFillSync(pool);
    offset = 0;
  }
  const token = pool.toString(encoding, offset, offset + bytes);
  offset += bytes;
  return token;
}
