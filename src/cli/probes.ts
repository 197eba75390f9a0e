// Composition for `check`: one probe per configured component, in the order of the config file.
import { amiProbe } from "../../components/asterisk/ami-probe.js";
import { ariProbe } from "../../components/asterisk/ari-probe.js";
import { enumProbe } from "../../components/enum/enum-probe.js";
import { httpListenProbe } from "../../components/http/listen-probe.js";
import { ldapProbe } from "../../components/ldap/ldap-probe.js";
import { redisTargetOf } from "../../components/redis/redis-connection.js";
import { redisProbe } from "../../components/redis/redis-probe.js";
import { sipListenProbe } from "../../components/sip/listen-probe.js";
import { tlsFilesProbe } from "../../components/sip/tls-probe.js";
import { xmppComponentProbe } from "../../components/xmpp/xmpp-probe.js";
import type { Probe } from "../check/probe.js";
import type { Config } from "../config/schema.js";

export function probesFor(config: Config): Probe[] {
  const probes: Probe[] = [xmppComponentProbe(config.xmpp.component)];
  (config.tenants ?? []).forEach((tenant, i) =>
    probes.push(xmppComponentProbe(tenant.xmpp.component, `tenants[${i}].xmpp.component`)),
  );
  config.sip.listen.forEach((listen, i) => probes.push(sipListenProbe(listen, i)));
  if (config.sip.tls) probes.push(tlsFilesProbe(config.sip.tls));
  const redis = redisTargetOf(config.store);
  if (redis) probes.push(redisProbe(redis));
  if (config.asterisk) probes.push(ariProbe(config.asterisk));
  if (config.asterisk?.ami) probes.push(amiProbe(config.asterisk.ami));
  if (config.ldap) probes.push(ldapProbe(config.ldap));
  if (config.enum) probes.push(enumProbe(config.enum));
  probes.push(httpListenProbe(config.http.listen));
  return probes;
}
