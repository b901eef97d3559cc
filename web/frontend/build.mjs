// Builds the webmail's static assets into ../static with esbuild (no CDN, no network at
// run time): one ES module bundle holding the app and libsodium.js (its WebAssembly is
// inlined by libsodium itself) and the stylesheet. (axe-core, for the accessibility tests, is
// read by the tests from node_modules: it is never served.)
//
// Usage: node build.mjs            (scripts/bootstrap runs it when a source changed)
import { build } from "esbuild";
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createHash } from "node:crypto";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, "..", "static");
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });

// libsodium-wrappers-sumo 0.7.x's ES module build imports a file it does not ship; its
// CommonJS build is complete, so the bundle takes that one.
const sodium = join(here, "node_modules/libsodium-wrappers-sumo/dist/modules-sumo/libsodium-wrappers.js");

await build({
  entryPoints: [join(here, "src/main.js")],
  bundle: true,
  format: "esm",
  target: ["chrome110", "firefox115", "safari16"],
  minify: true,
  legalComments: "eof",
  sourcemap: false,
  alias: { "libsodium-wrappers-sumo": sodium },
  // libsodium probes for Node's modules; in the browser they are absent.
  external: ["fs", "path", "crypto", "stream"],
  outfile: join(out, "app.js"),
  logLevel: "warning",
});
copyFileSync(join(here, "src/style.css"), join(out, "style.css"));

// A manifest of content hashes: the server uses it for cache-busting URLs and to check
// that the build it serves is complete.
const manifest = {};
for (const name of ["app.js", "style.css"]) {
  manifest[name] = createHash("sha256").update(readFileSync(join(out, name))).digest("hex").slice(0, 16);
}
writeFileSync(join(out, "manifest.json"), JSON.stringify(manifest, null, 2) + "\n");
