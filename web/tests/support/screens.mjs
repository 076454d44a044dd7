// Screenshots of the dashboard for the README, written to docs/img/ by the browser tests.

import { mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const IMG = resolve(fileURLToPath(new URL("../../../docs/img", import.meta.url)));

export async function screenshot(page, name, { width = 1280, fullPage = true } = {}) {
  mkdirSync(IMG, { recursive: true });
  const before = page.viewportSize();
  if (before.width !== width) await page.setViewportSize({ width, height: before.height });
  // Charts redraw on resize; let the frame settle before the picture.
  await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
  await page.screenshot({ path: join(IMG, `${name}.png`), fullPage });
  if (before.width !== width) await page.setViewportSize(before);
}
