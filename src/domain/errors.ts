// One error type for the whole core, carrying a protocol-neutral condition. Each edge owns one
// translator from the condition to its wire form (an XMPP stanza error, RFC 6120 §8.3.3; a SIP
// status code, RFC 3261 §21), so nothing below the edges knows either protocol's error vocabulary.
//
// Suggested translations (the edges are authoritative):
//
// | condition               | XMPP stanza error        | SIP status                     |
// |-------------------------|--------------------------|--------------------------------|
// | bad-request             | bad-request              | 400 Bad Request                |
// | malformed-address       | jid-malformed            | 400 (416 for an unknown scheme)|
// | not-authorized          | not-authorized           | 401 / 407 (with a challenge)   |
// | forbidden               | forbidden                | 403 Forbidden                  |
// | item-not-found          | item-not-found           | 404 Not Found                  |
// | not-acceptable          | not-acceptable           | 488 Not Acceptable Here        |
// | feature-not-implemented | feature-not-implemented  | 501 / 489 Bad Event / 415      |
// | policy-violation        | policy-violation         | 513 Message Too Large          |
// | conflict                | conflict                 | 412 Conditional Request Failed |
// | loop-detected           | recipient-unavailable    | 482 Loop Detected              |
// | recipient-unavailable   | recipient-unavailable    | 480 Temporarily Unavailable    |
// | remote-server-not-found | remote-server-not-found  | 404 Not Found                  |
// | remote-server-timeout   | remote-server-timeout    | 408 Request Timeout            |
// | resource-constraint     | resource-constraint      | 503 (with Retry-After)         |
// | service-unavailable     | service-unavailable      | 503 Service Unavailable        |
// | internal-server-error   | internal-server-error    | 500 Server Internal Error      |

export const CONDITIONS = [
  "bad-request",
  "malformed-address",
  "not-authorized",
  "forbidden",
  "item-not-found",
  "not-acceptable",
  "feature-not-implemented",
  "policy-violation",
  "conflict",
  "loop-detected",
  "recipient-unavailable",
  "remote-server-not-found",
  "remote-server-timeout",
  "resource-constraint",
  "service-unavailable",
  "internal-server-error",
] as const;

export type Condition = (typeof CONDITIONS)[number];

export class SwitchboardError extends Error {
  override name = "SwitchboardError";
  readonly condition: Condition;

  constructor(condition: Condition, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.condition = condition;
  }
}

/**
 * A lookup that could not be answered because a directory (LDAP) is unreachable: nobody knows now
 * whom the address names. Not "the recipient is offline", so a message is refused at once (its
 * sender may send it again) rather than queued for a phone that may not exist.
 */
export class DirectoryUnavailableError extends SwitchboardError {
  override name = "DirectoryUnavailableError";

  constructor(message: string, options?: { cause?: unknown }) {
    super("service-unavailable", message, options);
  }
}

/**
 * An address (SIP/SIPS/tel/xmpp URI or JID) that cannot be parsed or mapped. `reason` says exactly
 * what is wrong and quotes the input, e.g. "empty host in SIP URI 'sip:alice@'"; it is also the
 * message. The condition is `malformed-address`, except for a mapping that would route a request
 * back into the bridge, which is `loop-detected` (SIP 482).
 */
export class AddressError extends SwitchboardError {
  override name = "AddressError";
  readonly input: string;
  readonly reason: string;

  constructor(
    input: string,
    reason: string,
    condition: "malformed-address" | "loop-detected" = "malformed-address",
  ) {
    super(condition, reason);
    this.input = input;
    this.reason = reason;
  }
}

/** Quotes user input for an error message: control characters made visible, long inputs cut. */
export function quote(input: string): string {
  const max = 200;
  const cut = input.length > max ? `${input.slice(0, max)}…` : input;
  const visible = cut.replace(/\p{Cc}/gu, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`);
  return `'${visible}'`;
}
