// Composition for `check`: one probe per configured component, in the order of the config file.
import { amiProbe } from "../../components/asterisk/ami-probe.js";
import { ariProbe } from "../../components/asterisk/ari-probe.js";
import { enumProbe } from "../../components/enum/enum-probe.js";
import { httpListenProbe } from "../../components/http/listen-probe.js";
import { ldapProbe } from "../../components/ldap/ldap-probe.js";
import { componentLeaseKey } from "../../components/redis/component-lease.js";
import {
  createRedisClient,
  redisTargetOf,
  type RedisTarget,
} from "../../components/redis/redis-connection.js";
import { tenantsOf } from "../config/tenants.js";
import { redisProbe } from "../../components/redis/redis-probe.js";
import { sipListenProbe } from "../../components/sip/listen-probe.js";
import { tlsFilesProbe } from "../../components/sip/tls-probe.js";
import { xmppComponentProbe } from "../../components/xmpp/xmpp-probe.js";
import type { Probe } from "../check/probe.js";
import type { Config } from "../config/schema.js";

export function probesFor(config: Config): Probe[] {
  const redis = redisTargetOf(config.store);
  // Each tenant's component, asked first whether a running instance holds it (its lease).
  const probes: Probe[] = tenantsOf(config).map((tenant) =>
    xmppComponentProbe(
      tenant.config.xmpp.component,
      tenant.path ? `${tenant.path}.xmpp.component` : "xmpp.component",
      redis
        ? () => leaseHolder(redis, tenant.config.store.prefix, tenant.config.xmpp.component.jid)
        : undefined,
    ),
  );
  config.sip.listen.forEach((listen, i) => probes.push(sipListenProbe(listen, i)));
  if (config.sip.tls) probes.push(tlsFilesProbe(config.sip.tls));
  if (redis) probes.push(redisProbe(redis));
  if (config.asterisk) probes.push(ariProbe(config.asterisk));
  if (config.asterisk?.ami) probes.push(amiProbe(config.asterisk.ami));
  if (config.ldap) probes.push(ldapProbe(config.ldap));
  if (config.enum) probes.push(enumProbe(config.enum));
  probes.push(httpListenProbe(config.http.listen));
  return probes;
}

/** The id of the instance holding the component lease, or null (one short-lived connection, bounded). */
async function leaseHolder(target: RedisTarget, prefix: string, gateway: string): Promise<string | null> {
  const connection = createRedisClient(target, {
    connectTimeoutMs: 2_000,
    commandTimeoutMs: 2_000,
    reconnect: false,
  });
  connection.on("error", () => undefined); // a failure rejects the calls below
  try {
    await connection.connect();
    return await connection.commands.get(componentLeaseKey(prefix, gateway));
  } finally {
    connection.destroy();
  }
}
