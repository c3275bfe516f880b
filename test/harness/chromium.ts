// Headless Chromium from Debian (the `chromium` package) driven by playwright-core, with the flags
// that keep it off the network (/work/.library env notes, "Known to work"): without the
// background-networking flags it dials Google's hosts at every start. Playwright gives each
// launch a fresh, empty profile directory. One browser per test file: a start costs 1-2 s.
import * as fs from "node:fs";
import type { LaunchOptions } from "playwright-core";

export const CHROMIUM = "/usr/bin/chromium";

export function chromiumLaunchOptions(extraArgs: string[] = []): LaunchOptions {
  if (!fs.existsSync(CHROMIUM))
    throw new Error(`${CHROMIUM} not found; install the Debian package "chromium" (infra/local-internet/install-packages.sh)`);
  return {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      ...extraArgs,
    ],
  };
}
