/**
 * Gathers the benches' JSON (bench/results/raw/*.json, or BENCH_RESULTS_DIR) into one report:
 * bench/results/latest.json plus a dated copy under bench/results/history/, a chart of every
 * ratio (bench/results/chart.svg, hand-written SVG; chart.png too when playwright-core and
 * /usr/bin/chromium are there), and a summary table on stdout (Markdown, as bench/README.md
 * shows it). Run by `npm run bench` after the benches; `npx tsx bench/report.ts` alone redraws
 * from whatever results are there.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { RESULT_FORMAT, rawDir, type BenchResult, type Ratio } from './results.js';

const OUT_DIR = fileURLToPath(new URL('./results', import.meta.url));
const CHROMIUM = '/usr/bin/chromium';
/** The order of `npm run bench`; anything else after, by name. */
export const BENCH_ORDER = [
  'payments',
  'semi-payments',
  'concert-pty',
  'codecs',
  'connector',
  'gateway',
  'cluster',
] as const;

function readResults(dir: string): BenchResult[] {
  if (!existsSync(dir)) return [];
  const results = readdirSync(dir)
    .filter((name) => name.endsWith('.json'))
    .flatMap((name) => {
      try {
        const value = JSON.parse(readFileSync(join(dir, name), 'utf8')) as BenchResult;
        return value.format === RESULT_FORMAT ? [value] : [];
      } catch {
        console.error(`report: ${name} is not a bench result, skipped`);
        return [];
      }
    });
  const rank = (name: string) => {
    const at = (BENCH_ORDER as readonly string[]).indexOf(name);
    return at < 0 ? BENCH_ORDER.length : at;
  };
  return results.sort((a, b) => rank(a.bench) - rank(b.bench) || a.bench.localeCompare(b.bench));
}

// ---------------------------------------------------------------------------------------------
// Numbers as text

/** 3 significant digits, thousands grouped: 12,300 · 45.6 · 0.0712. */
export function formatNumber(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  const abs = Math.abs(value);
  if (abs >= 1000) return Math.round(value).toLocaleString('en-US');
  if (abs >= 100) return value.toFixed(0);
  if (abs >= 10) return value.toFixed(1);
  if (abs >= 1) return value.toFixed(2);
  return value.toPrecision(2);
}

const formatRatio = (ratio: number) => `${ratio >= 10 ? ratio.toFixed(1) : ratio.toFixed(2)}×`;

/** Better than its baseline: below 1 when lower is better, above 1 when higher is. */
const isBetter = (r: Ratio) => (r.better === 'lower' ? r.ratio < 1 : r.ratio > 1);

function escapeXml(text: string): string {
  return text
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;');
}

// ---------------------------------------------------------------------------------------------
// Chart

const WIDTH = 1200;
const LABEL_WIDTH = 680;
/** Characters of a row's label that fit in LABEL_WIDTH at 11 px. */
const LABEL_CHARS = 108;
const BAR_LEFT = LABEL_WIDTH + 20;
const BAR_WIDTH = WIDTH - BAR_LEFT - 70;
const ROW = 22;
const HEADER = 26;
const TOP = 70;
const COLOURS = {
  better: '#2e7d32',
  worse: '#c75b12',
  even: '#777',
  axis: '#555',
  grid: '#ddd',
} as const;
/** Within this factor of 1 a ratio is drawn as even (grey): noise, not a difference. */
const EVEN = 1.02;

/**
 * Every ratio as a horizontal bar from 1 on a log scale (ratios here run from a few hundredths
 * to tens), grouped by bench: green where the subject beats its baseline, orange where not.
 */
export function drawChart(results: readonly BenchResult[], generatedAt: string): string {
  const ratios = results.flatMap((r) => r.ratios.map((x) => x.ratio)).filter((x) => x > 0);
  const lo = Math.floor(Math.log10(Math.min(0.1, ...ratios.map((x) => x / 1.3))));
  const hi = Math.ceil(Math.log10(Math.max(10, ...ratios.map((x) => x * 1.3))));
  const x = (ratio: number) =>
    BAR_LEFT + ((Math.log10(Math.max(ratio, 10 ** lo)) - lo) / (hi - lo)) * BAR_WIDTH;
  const rowsHeight = results.reduce(
    (sum, r) => sum + (r.ratios.length === 0 ? 0 : HEADER + r.ratios.length * ROW),
    0,
  );
  const height = TOP + rowsHeight + 40;
  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" ` +
      `viewBox="0 0 ${WIDTH} ${height}" font-family="DejaVu Sans, Arial, sans-serif" font-size="12">`,
    `<rect width="${WIDTH}" height="${height}" fill="#fff"/>`,
    `<text x="16" y="24" font-size="16" font-weight="bold">ecr-bridge benchmarks: each figure ÷ its baseline, same run</text>`,
    `<text x="16" y="44" fill="${COLOURS.axis}">${escapeXml(
      `${generatedAt} · Node ${process.version} · ${cpus().length} cores · log scale; ` +
        'green: better than the baseline, orange: worse, grey: within 2%',
    )}</text>`,
  );
  // Grid: every power of ten, and 2× / 5× between.
  const ticks: number[] = [];
  for (let p = lo; p <= hi; p++) {
    ticks.push(10 ** p);
    if (p < hi) ticks.push(2 * 10 ** p, 5 * 10 ** p);
  }
  const bottom = TOP + rowsHeight;
  for (const t of ticks) {
    const major = Math.abs(Math.log10(t) - Math.round(Math.log10(t))) < 1e-9;
    out.push(
      `<line x1="${x(t).toFixed(1)}" y1="${TOP - 8}" x2="${x(t).toFixed(1)}" y2="${bottom}" ` +
        `stroke="${t === 1 ? COLOURS.axis : COLOURS.grid}" stroke-width="${t === 1 ? 1.5 : 1}"/>`,
    );
    if (major || hi - lo <= 3)
      out.push(
        `<text x="${x(t).toFixed(1)}" y="${bottom + 16}" text-anchor="middle" fill="${COLOURS.axis}">` +
          `${Number(t.toPrecision(1))}×</text>`,
      );
  }
  let y = TOP;
  for (const result of results) {
    if (result.ratios.length === 0) continue;
    out.push(`<text x="16" y="${y + 16}" font-weight="bold">${escapeXml(result.title)}</text>`);
    y += HEADER;
    for (const r of result.ratios) {
      const label = `${r.measure}: ${r.subject.name} ÷ ${r.baseline.name}`;
      const short = label.length > LABEL_CHARS ? `${label.slice(0, LABEL_CHARS - 1)}…` : label;
      const from = x(1);
      const to = x(r.ratio);
      const colour =
        r.ratio < EVEN && r.ratio > 1 / EVEN
          ? COLOURS.even
          : isBetter(r)
            ? COLOURS.better
            : COLOURS.worse;
      out.push(
        `<text x="${LABEL_WIDTH}" y="${y + 15}" text-anchor="end" font-size="11">${escapeXml(short)}` +
          `<title>${escapeXml(
            `${label}: ${formatNumber(r.subject.value)} against ${formatNumber(r.baseline.value)} ${r.unit} ` +
              `(${r.better} is better)`,
          )}</title></text>`,
        `<rect x="${Math.min(from, to).toFixed(1)}" y="${y + 4}" width="${Math.max(1, Math.abs(to - from)).toFixed(1)}" ` +
          `height="${ROW - 8}" fill="${colour}"/>`,
        `<text x="${(r.ratio >= 1 ? to + 4 : to - 4).toFixed(1)}" y="${y + 15}" ` +
          `text-anchor="${r.ratio >= 1 ? 'start' : 'end'}" fill="${colour}">${formatRatio(r.ratio)}</text>`,
      );
      y += ROW;
    }
  }
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}

/** chart.png from the SVG through headless Chromium, when playwright-core and Chromium are there. */
async function renderPng(svgPath: string, pngPath: string): Promise<string> {
  if (!existsSync(CHROMIUM)) return `no ${CHROMIUM}: chart.png not drawn`;
  let playwright: typeof import('playwright-core');
  try {
    playwright = await import('playwright-core');
  } catch {
    return 'no playwright-core: chart.png not drawn';
  }
  const svg = readFileSync(svgPath, 'utf8');
  const [, width, height] = /width="(\d+)" height="(\d+)"/.exec(svg) ?? [];
  const browser = await playwright.chromium.launch({ executablePath: CHROMIUM });
  try {
    const page = await browser.newPage({
      viewport: { width: Number(width), height: Number(height) },
      deviceScaleFactor: 1,
    });
    await page.setContent(`<html><body style="margin:0">${svg}</body></html>`);
    await page.locator('svg').screenshot({ path: pngPath });
  } finally {
    await browser.close();
  }
  return pngPath;
}

// ---------------------------------------------------------------------------------------------
// Summary

/** The Markdown table bench/README.md shows: one row per ratio. */
export function summaryTable(results: readonly BenchResult[]): string {
  const lines = [
    '| bench | measure | subject | baseline | ratio |',
    '| ----- | ------- | ------- | -------- | ----- |',
  ];
  for (const result of results) {
    for (const r of result.ratios) {
      lines.push(
        `| ${result.bench} | ${r.measure} (${r.unit}, ${r.better} is better) | ` +
          `${r.subject.name}: ${formatNumber(r.subject.value)} | ` +
          `${r.baseline.name}: ${formatNumber(r.baseline.value)} | **${formatRatio(r.ratio)}** |`,
      );
    }
  }
  return lines.join('\n');
}

/** Figures without a ratio beside them (capacity counts, memory), as a second table. */
export function figureTable(results: readonly BenchResult[]): string {
  const lines = ['| bench | figure | value |', '| ----- | ------ | ----- |'];
  for (const result of results)
    for (const f of result.figures)
      lines.push(`| ${result.bench} | ${f.name} | ${formatNumber(f.value)} ${f.unit} |`);
  return lines.join('\n');
}

// ---------------------------------------------------------------------------------------------
// Main

const isMain = process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1];
if (isMain) {
  const results = readResults(rawDir());
  if (results.length === 0) {
    console.error(`report: no bench results in ${rawDir()}; run npm run bench first`);
    process.exit(1);
  }
  const generatedAt = new Date().toISOString();
  const missing = BENCH_ORDER.filter((name) => !results.some((r) => r.bench === name));
  const report = {
    format: 'ecr-bridge-bench-report/1',
    generatedAt,
    machine: { cores: cpus().length, cpu: cpus()[0]?.model, kernel: release(), loadavg: loadavg() },
    node: process.version,
    missing,
    benches: results,
  };
  mkdirSync(join(OUT_DIR, 'history'), { recursive: true });
  const json = `${JSON.stringify(report, null, 2)}\n`;
  writeFileSync(join(OUT_DIR, 'latest.json'), json);
  const stamp = generatedAt.slice(0, 16).replace(/:/g, '');
  writeFileSync(join(OUT_DIR, 'history', `${stamp}Z.json`), json);
  const svgPath = join(OUT_DIR, 'chart.svg');
  writeFileSync(svgPath, drawChart(results, generatedAt.slice(0, 16).replace('T', ' ')));
  const png = await renderPng(svgPath, join(OUT_DIR, 'chart.png')).catch(
    (error: unknown) => `chart.png not drawn: ${(error as Error).message.split('\n')[0]}`,
  );

  console.log(`\nBench report, ${generatedAt}\n`);
  for (const r of results)
    console.log(
      `- ${r.bench}: ${r.title} (finished ${r.finishedAt}` +
        `${r.loadavg === undefined ? '' : `, load average ${r.loadavg.join(' ')}`})`,
    );
  if (missing.length > 0) console.log(`- not in this report (no results): ${missing.join(', ')}`);
  console.log(`\n${summaryTable(results)}\n`);
  console.log(`${figureTable(results)}\n`);
  console.log(`written: ${join(OUT_DIR, 'latest.json')}, history/${stamp}Z.json, ${svgPath}`);
  console.log(png.endsWith('.png') ? `written: ${png}` : png);
}
