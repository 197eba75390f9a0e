// `check` probe for Asterisk ARI: GET /ari/asterisk/info with the configured credentials.
import type { Probe } from "../../src/check/probe.js";

export function ariProbe(config: { url: string; username: string; password: string }): Probe {
  return {
    component: "asterisk",
    keyPath: "asterisk.url",
    hint: "check http.conf (enabled, bindaddr) and ari.conf (user, password) on the Asterisk side",
    async run(signal) {
      const url = new URL("ari/asterisk/info", config.url.endsWith("/") ? config.url : `${config.url}/`);
      const authorization = `Basic ${Buffer.from(`${config.username}:${config.password}`).toString("base64")}`;
      const response = await fetch(url, { headers: { authorization }, signal });
      if (response.status === 401) throw new Error("401 Unauthorized: asterisk.username/password rejected");
      if (!response.ok) throw new Error(`${response.status} ${response.statusText} from ${url.href}`);
      const info = (await response.json()) as { system?: { version?: string } };
      return `ARI answered, Asterisk ${info.system?.version ?? "unknown version"}`;
    },
  };
}
