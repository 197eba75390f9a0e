// A throwaway certificate for TLS and WSS tests: self-signed for 127.0.0.1 and localhost, made with
// the system's openssl in a temporary directory; tests trust it as their only CA.
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { tempDir, type TempDir } from "./net.js";

export interface TestCertificate {
  cert: string;
  key: string;
  /** The certificate's PEM, to pass as a client's `ca`. */
  pem: Buffer;
  dir: TempDir;
}

/** A certificate for `names` (default 127.0.0.1 and localhost). */
export function testCertificate(names: string[] = ["IP:127.0.0.1", "DNS:localhost"]): TestCertificate {
  const dir = tempDir("tls");
  const cert = dir.file("cert.pem");
  const key = dir.file("key.pem");
  execFileSync(
    "openssl",
    [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-keyout",
      key,
      "-out",
      cert,
      "-days",
      "2",
      "-subj",
      `/CN=${(names.find((n) => n.startsWith("DNS:")) ?? "DNS:localhost").slice(4)}`,
      "-addext",
      `subjectAltName=${names.join(",")}`,
    ],
    { stdio: "pipe" },
  );
  return { cert, key, pem: readFileSync(cert), dir };
}
