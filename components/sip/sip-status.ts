// The SIP edge's one translator from a protocol-neutral condition to a status code (RFC 3261 §21).
import type { Condition } from "../../src/domain/errors.js";

const STATUS: Readonly<Record<Condition, number>> = {
  "bad-request": 400,
  "malformed-address": 400,
  "not-authorized": 403,
  forbidden: 403,
  "item-not-found": 404,
  "not-acceptable": 488,
  "feature-not-implemented": 501,
  "policy-violation": 513,
  conflict: 412,
  "loop-detected": 482,
  "recipient-unavailable": 480,
  "remote-server-not-found": 404,
  "remote-server-timeout": 408,
  "resource-constraint": 503,
  "service-unavailable": 503,
  "internal-server-error": 500,
};

export function sipStatusFor(condition: Condition): number {
  return STATUS[condition];
}
