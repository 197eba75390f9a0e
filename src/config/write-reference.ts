// `npm run docs:config`: writes docs/config-reference.md from the schema.
import { writeFileSync } from "node:fs";
import { configReference } from "./reference.js";

writeFileSync("docs/config-reference.md", configReference());
process.stdout.write("wrote docs/config-reference.md\n");
