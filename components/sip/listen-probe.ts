// `check` probe for SIP listen addresses: each one can be bound now (UDP, or TCP for tcp/tls/ws/wss).
// A running bridge holds its own ports, so run check before start or against a copy of the config.
import { createSocket } from "node:dgram";
import { createServer } from "node:net";
import type { Probe } from "../../src/check/probe.js";

export function splitHostPort(value: string): { host: string; port: number } {
  const match = /^\[?([^\]]+?)\]?:(\d+)$/.exec(value);
  if (!match?.[1] || !match[2]) throw new Error(`not host:port: ${value}`);
  return { host: match[1], port: Number(match[2]) };
}

export function canBindTcp(host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(port, host, () => server.close(() => resolve()));
  });
}

function canBindUdp(host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = createSocket(host.includes(":") ? "udp6" : "udp4");
    socket.once("error", reject);
    socket.bind(port, host, () => socket.close(() => resolve()));
  });
}

export function sipListenProbe(listen: string, index: number): Probe {
  return {
    component: "sip",
    keyPath: `sip.listen[${index}]`,
    hint: "another process holds the port (ss -lntup), or the address is not on this host",
    async run() {
      const colon = listen.indexOf(":");
      const transport = listen.slice(0, colon).toLowerCase();
      const { host, port } = splitHostPort(listen.slice(colon + 1));
      await (transport === "udp" ? canBindUdp(host, port) : canBindTcp(host, port));
      return `${listen} can be bound`;
    },
  };
}
