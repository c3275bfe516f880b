// The files the status page loads from maild itself: uPlot (MIT, leeoniya/uPlot 1.6, a 50 KB
// prebuilt file from its npm package: no build step), its stylesheet, and our page's own script and
// stylesheet. The deployed bundle carries uPlot's files as strings (esbuild `define`, see
// server-bootstrap/install/daemon-bundle.ts maildAssetDefines); from sources they are read from
// node_modules. Served under content-hashed names, so they can be cached for good.
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { STATUS_CLIENT_JS, STATUS_CSS } from "./status-client";

declare const MAILD_UPLOT_JS: string | undefined;
declare const MAILD_UPLOT_CSS: string | undefined;

export interface StaticAsset {
  /** /status/assets/<name>-<hash>.<ext> */
  path: string;
  contentType: string;
  body: string;
}

function fromPackage(file: string): string {
  return readFileSync(require.resolve(`uplot/dist/${file}`), "utf8");
}

function asset(name: string, ext: "js" | "css", body: string): StaticAsset {
  const hash = createHash("sha256").update(body).digest("hex").slice(0, 12);
  return {
    path: `/status/assets/${name}-${hash}.${ext}`,
    contentType: ext === "js" ? "text/javascript; charset=utf-8" : "text/css; charset=utf-8",
    body,
  };
}

let loaded: { uplotJs: StaticAsset; uplotCss: StaticAsset; pageJs: StaticAsset; pageCss: StaticAsset } | undefined;

export function statusAssets() {
  loaded ??= {
    uplotJs: asset("uplot", "js", typeof MAILD_UPLOT_JS === "string" ? MAILD_UPLOT_JS : fromPackage("uPlot.iife.min.js")),
    uplotCss: asset("uplot", "css", typeof MAILD_UPLOT_CSS === "string" ? MAILD_UPLOT_CSS : fromPackage("uPlot.min.css")),
    pageJs: asset("status", "js", STATUS_CLIENT_JS),
    pageCss: asset("status", "css", STATUS_CSS),
  };
  return loaded;
}
