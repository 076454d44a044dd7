// Chart.js (vendored UMD, loaded by index.html as window.Chart) behind one hook: a chart drawn on
// a canvas, redrawn when its data changes, destroyed with its screen.

import { html, useEffect, useRef } from "./vendor/htm-preact.module.js";

export const COLORS = { calls: "#1f4fd1", failed: "#d1352b", track: "#e3e7ef", warn: "#c77700" };

/** A canvas with `config` drawn on it; `label` is what a screen reader hears instead. */
export function ChartCanvas({ config, label, testid, height = 240 }) {
  const canvas = useRef(null);
  const chart = useRef(null);
  useEffect(() => {
    chart.current = new window.Chart(canvas.current, {
      ...config,
      options: { animation: false, maintainAspectRatio: false, responsive: true, ...config.options },
    });
    return () => chart.current && chart.current.destroy();
    // Drawn once per canvas; later changes go through update() below.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, []);
  useEffect(() => {
    if (!chart.current) return;
    chart.current.data = config.data;
    chart.current.update();
  }, [config.data]);
  return html`<div class="chart" style=${{ height: `${height}px` }}>
    <canvas ref=${canvas} role="img" aria-label=${label} data-testid=${testid}></canvas>
  </div>`;
}
