// Builds the tracking script DataFast serves at /js/script.js (src/index.js) and its optional
// extensions at /js/script.<name>.js (src/extensions/<name>.js, loaded by the script when its tag
// has data-track-<name>), each with its .gz and .br beside it. Prints every file's gzipped size and
// fails past a budget: 2 KB gzipped for the script, 600 B for each extension.
import { build } from "esbuild";
import { mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { brotliCompressSync, constants, gzipSync } from "node:zlib";
import { minify } from "terser";

const here = dirname(fileURLToPath(import.meta.url));
const out = process.env.TRACKER_OUT_DIR || join(here, "..", "src", "datafast", "static", "js");
// Overridable so that a test can see the build fail.
const BUDGET = Number(process.env.TRACKER_BUDGET || 2048);
const EXTENSION_BUDGET = Number(process.env.TRACKER_EXTENSION_BUDGET || 600);

const compile = async (entry) => {
  const bundled = await build({
    entryPoints: [entry],
    bundle: true,
    format: "iife",
    target: "es2020",
    write: false,
    legalComments: "none",
  });
  const { code } = await minify(bundled.outputFiles[0].text, {
    ecma: 2020,
    compress: { passes: 3, unsafe: true, unsafe_arrows: true, pure_getters: true, booleans_as_integers: true },
    mangle: { toplevel: true },
    format: { comments: false },
  });
  return code;
};

const extensions = join(here, "src", "extensions");
const targets = [
  ["script.js", join(here, "src", "index.js"), BUDGET],
  ...readdirSync(extensions)
    .filter((name) => name.endsWith(".js"))
    .sort()
    .map((name) => [`script.${basename(name, ".js")}.js`, join(extensions, name), EXTENSION_BUDGET]),
];

mkdirSync(out, { recursive: true });
const over = [];
for (const [name, entry, budget] of targets) {
  const code = await compile(entry);
  const gzip = gzipSync(code, { level: 9 });
  const brotli = brotliCompressSync(code, {
    params: { [constants.BROTLI_PARAM_QUALITY]: 11, [constants.BROTLI_PARAM_SIZE_HINT]: code.length },
  });
  writeFileSync(join(out, name), code);
  writeFileSync(join(out, name + ".gz"), gzip);
  writeFileSync(join(out, name + ".br"), brotli);
  console.log(
    `tracker: ${name} ${code.length} B, ${gzip.length} B gzipped (budget ${budget} B), ${brotli.length} B brotli -> ${out}`,
  );
  if (gzip.length > budget) over.push(`${name} is ${gzip.length} B gzipped, over the ${budget} B budget`);
}
for (const message of over) console.error(`tracker: ${message}`);
if (over.length) process.exit(1);
