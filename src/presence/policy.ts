// Who may watch whom (DESIGN.md "Presence privacy"): users of the home domain (the same tenant)
// may watch each other's presence and phones; watchers from other domains — over SIP or XMPP
// federation — only when their domain is listed in the config. Both sides ask this one rule.
export interface WatchPolicy {
  homeDomain: string;
  allowedDomains: readonly string[];
}

export function mayWatch(watcherDomain: string, policy: WatchPolicy): boolean {
  const domain = watcherDomain.toLowerCase();
  return domain === policy.homeDomain || policy.allowedDomains.includes(domain);
}
