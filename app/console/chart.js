// Small charts as inline SVG (no library): a bar chart of one or more stacked series per
// category (day). Presentation attributes and CSS classes only (the CSP allows no inline
// styles). Each chart is an <svg role="img"> with a <title> and a <desc> summing it up, and
// every bar has a <title> (a tooltip; screen readers get the table the caller renders too).

const NS = 'http://www.w3.org/2000/svg';

function el(name, attrs, text) {
  const e = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

// A "nice" upper bound for the axis: 1, 2 or 5 times a power of ten, at least max.
export function niceMax(max) {
  if (!(max > 0)) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(max)));
  for (const m of [1, 2, 5, 10]) if (m * p >= max) return m * p;
  return 10 * p;
}

function formatNumber(n) {
  if (n >= 1e6) return (n / 1e6).toFixed(n >= 1e7 ? 0 : 1) + 'M';
  if (n >= 1e3) return (n / 1e3).toFixed(n >= 1e4 ? 0 : 1) + 'k';
  return String(Math.round(n * 10) / 10);
}

// labels: category names; series: [{name, cls, values: [number|null per label]}] stacked.
export function barChart({ title, desc, labels, series, width = 640, height = 220, unit = '',
                           integer = false }) {
  const pad = { l: 48, r: 12, t: 12, b: 36 };
  const svg = el('svg', {
    viewBox: `0 0 ${width} ${height}`, width: '100%', role: 'img', class: 'chart',
    'aria-labelledby': '', preserveAspectRatio: 'xMidYMid meet',
  });
  const id = 'c' + Math.random().toString(36).slice(2);
  const t = el('title', { id: id + 't' }, title);
  const d = el('desc', { id: id + 'd' }, desc || '');
  svg.setAttribute('aria-labelledby', `${id}t ${id}d`);
  svg.append(t, d);
  const totals = labels.map((_, i) => series.reduce((s, x) => s + (x.values[i] || 0), 0));
  const top = niceMax(Math.max(0, ...totals));
  // counts up to 5: one grid step per unit, so every axis label is a whole number
  const steps = integer && top <= 5 ? top : 4;
  const w = width - pad.l - pad.r;
  const h = height - pad.t - pad.b;
  const y = (v) => pad.t + h - (v / top) * h;
  // grid lines and the axis labels
  for (let k = 0; k <= steps; k++) {
    const v = (top * k) / steps;
    svg.append(el('line', { x1: pad.l, x2: width - pad.r, y1: y(v), y2: y(v), class: 'grid' }));
    svg.append(el('text', { x: pad.l - 6, y: y(v) + 4, 'text-anchor': 'end', class: 'axis' },
                  formatNumber(v)));
  }
  const slot = w / Math.max(1, labels.length);
  const bw = Math.max(1, slot * 0.7);
  const every = Math.ceil(labels.length / 8);
  labels.forEach((label, i) => {
    const x = pad.l + i * slot + (slot - bw) / 2;
    let base = 0;
    for (const s of series) {
      const v = s.values[i];
      if (!v) continue;
      const r = el('rect', { x, y: y(base + v), width: bw, height: Math.max(0.5, y(base) - y(base + v)),
                             class: 'bar ' + (s.cls || '') });
      r.append(el('title', {}, `${label}: ${s.name} ${formatNumber(v)}${unit}`));
      svg.append(r);
      base += v;
    }
    if (i % every === 0) {
      svg.append(el('text', { x: x + bw / 2, y: height - pad.b + 16, 'text-anchor': 'middle',
                              class: 'axis' }, label.slice(5)));
    }
  });
  svg.append(el('line', { x1: pad.l, x2: width - pad.r, y1: y(0), y2: y(0), class: 'axis-line' }));
  return svg;
}

// A legend as an HTML list (keyboard and screen readers read it as text).
export function legend(series) {
  const ul = document.createElement('ul');
  ul.className = 'legend';
  for (const s of series) {
    const li = document.createElement('li');
    const sw = document.createElementNS(NS, 'svg');
    sw.setAttribute('width', '12');
    sw.setAttribute('height', '12');
    sw.setAttribute('aria-hidden', 'true');
    sw.append(el('rect', { width: 12, height: 12, class: 'bar ' + (s.cls || '') }));
    li.append(sw, ' ' + s.name);
    ul.append(li);
  }
  return ul;
}
