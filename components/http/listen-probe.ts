// `check` probe for the HTTP endpoint (health, metrics, API): its address can be bound.
import type { Probe } from "../../src/check/probe.js";
import { canBindTcp, splitHostPort } from "../sip/listen-probe.js";

export function httpListenProbe(listen: string): Probe {
  return {
    component: "http",
    keyPath: "http.listen",
    hint: "another process holds the port (ss -lntp), or choose another http.listen",
    async run() {
      const { host, port } = splitHostPort(listen);
      await canBindTcp(host, port);
      return `${listen} can be bound`;
    },
  };
}
