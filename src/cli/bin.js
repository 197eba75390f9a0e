#!/usr/bin/env node
// `switchboard` executable: runs the TypeScript sources through tsx's loader (tsx strips types;
// `npm test` type-checks them with tsc).
import { register } from "tsx/esm/api";

register();
await import("./run.ts");
