// `check` probe for the TLS files of the SIP side (sip.tls): the certificate and the key can be
// read and parsed, belong together, and the certificate is valid now. A certificate that expires
// within 14 days still passes, with the date in the line so the operator sees it coming.
import { createPrivateKey, X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import type { Probe } from "../../src/check/probe.js";

const DAY_MS = 86_400_000;

export function tlsFilesProbe(tls: { cert: string; key: string }, now: () => number = Date.now): Probe {
  return {
    component: "tls",
    keyPath: "sip.tls",
    hint: "check sip.tls.cert and sip.tls.key (openssl x509 -in CERT -noout -subject -dates; the key must be the certificate's)",
    run() {
      const read = (file: string, key: string): Buffer => {
        try {
          return readFileSync(file);
        } catch (err) {
          throw new Error(`sip.tls.${key} ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, {
            cause: err,
          });
        }
      };
      const certificate = new X509Certificate(read(tls.cert, "cert"));
      const key = createPrivateKey(read(tls.key, "key"));
      if (!certificate.checkPrivateKey(key)) throw new Error("sip.tls.key is not the key of sip.tls.cert");
      const from = Date.parse(certificate.validFrom);
      const to = Date.parse(certificate.validTo);
      const subject = certificate.subject.replace(/\n/g, ", ");
      if (now() < from) throw new Error(`${subject}: not valid before ${certificate.validFrom}`);
      if (now() >= to) throw new Error(`${subject}: expired on ${certificate.validTo}`);
      const days = Math.floor((to - now()) / DAY_MS);
      const soon = days < 14 ? " — renew it soon" : "";
      return Promise.resolve(`${subject}, valid until ${certificate.validTo} (${days} days)${soon}`);
    },
  };
}
