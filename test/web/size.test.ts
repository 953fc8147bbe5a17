import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';

describe('the dashboard page', () => {
  it('is light: what the browser loads (page, script, styles) is under 100 KB gzipped', () => {
    const files = ['index.html', 'app.js', 'style.css'].map((name) =>
      readFileSync(new URL(`../../web/${name}`, import.meta.url)),
    );
    const gzipped = gzipSync(Buffer.concat(files), { level: 9 }).length;
    expect(gzipped).toBeLessThan(100 * 1024);
  });

  it('loads nothing from elsewhere: no CDN, no external URL, no inline script or style', () => {
    const html = readFileSync(new URL('../../web/index.html', import.meta.url), 'utf8');
    const js = readFileSync(new URL('../../web/app.js', import.meta.url), 'utf8');
    const css = readFileSync(new URL('../../web/style.css', import.meta.url), 'utf8');
    for (const text of [html, js, css])
      expect(text).not.toMatch(/(?:src|href)=["']?(?:https?:)?\/\//);
    expect(css).not.toMatch(/url\(\s*["']?(?:https?:)?\/\//);
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
    expect(html).not.toMatch(/\sstyle=/);
    expect(js).not.toMatch(/\binnerHTML\b|\beval\(|new Function\(/);
  });
});
