// `check` probe for Asterisk AMI: connect, read the greeting, log in with the configured user (events
// off), log off. A refused login names the keys to look at.
import { connect } from "node:net";
import type { Probe } from "../../src/check/probe.js";
import { formatAmiAction, parseAmiBlocks, splitGreeting, type AmiBlock } from "./ami-client.js";

export function amiProbe(config: { host: string; port: number; username: string; password: string }): Probe {
  return {
    component: "asterisk",
    keyPath: "asterisk.ami",
    hint: "check manager.conf ([general] enabled, bindaddr, port; the user's secret and permit/deny) on the Asterisk side",
    run(signal) {
      return new Promise<string>((resolve, reject) => {
        const socket = connect({ host: config.host, port: config.port });
        let buffer: Buffer = Buffer.alloc(0);
        let greeting: string | undefined;
        const fail = (message: string): void => {
          socket.destroy();
          reject(new Error(message));
        };
        signal.addEventListener("abort", () => fail("no answer (timed out)"), { once: true });
        socket.on("error", (err) => fail(err.message));
        socket.on("close", () => fail("the connection closed before the login reply"));
        socket.on("data", (chunk: Buffer) => {
          buffer = Buffer.concat([buffer, chunk]);
          if (greeting === undefined) {
            const split = splitGreeting(buffer);
            if (!split) return;
            greeting = split.greeting;
            buffer = split.rest;
            if (!greeting.startsWith("Asterisk Call Manager"))
              return fail(`not AMI: '${greeting.slice(0, 60)}'`);
            socket.write(
              formatAmiAction("Login", "probe", {
                Username: config.username,
                Secret: config.password,
                Events: "off",
              }),
            );
          }
          const frames = parseAmiBlocks(buffer);
          buffer = frames.rest;
          const reply: AmiBlock | undefined = frames.blocks.find((b) => b.get("ActionID") === "probe");
          if (!reply) return;
          if (reply.get("Response") !== "Success") {
            return fail(`login refused: asterisk.ami.username/password (${reply.get("Message") ?? "error"})`);
          }
          socket.end(formatAmiAction("Logoff", "probe-bye"));
          resolve(`${greeting}, login accepted for ${config.username}`);
        });
      });
    },
  };
}
