// Waiting for something the page will show, without sleeping blindly: analytics trail an
// acknowledged event by up to a second, so a screen is refreshed until the figure is there.

export async function eventually(check, { what, timeoutMs = 10_000, intervalMs = 200, between } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      const result = await check();
      if (result !== false && result !== undefined) return result;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${last.message}` : ""}`);
    }
    if (between) await between();
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
