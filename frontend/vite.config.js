// Builds the dashboard into the Python package (src/datafast/static/app), which the app serves:
// index.html (no-cache) and content-hashed assets/ (cached for a year).
import { defineConfig } from "vite";
import { svelte } from "@sveltejs/vite-plugin-svelte";
import { readFileSync } from "node:fs";

// The version the footer shows: the Python package's (pyproject.toml), read at build time.
const version = readFileSync(new URL("../pyproject.toml", import.meta.url), "utf8").match(/^version = "([^"]+)"/m)[1];

export default defineConfig({
  plugins: [svelte()],
  define: { __DATAFAST_VERSION__: JSON.stringify(version) },
  base: "/",
  build: {
    outDir: process.env.DASHBOARD_OUT_DIR || "../src/datafast/static/app",
    emptyOutDir: true,
    assetsDir: "assets",
    chunkSizeWarningLimit: 900,
  },
  server: { proxy: { "/api": "http://127.0.0.1:8000", "/js": "http://127.0.0.1:8000" } },
});
