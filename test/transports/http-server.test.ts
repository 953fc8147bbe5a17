import { request } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { listenHttp } from '../../src/transports/http-server.js';

const cleanups: (() => Promise<void>)[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A server that echoes what its handler saw, as JSON. */
async function echoServer(options: { bodyMethods?: ('POST' | 'DELETE')[]; maxBodyBytes?: number }) {
  const server = await listenHttp({
    port: 0,
    ...options,
    handle: (path, query, req) => ({
      status: 200,
      contentType: 'application/json',
      body: JSON.stringify({ path, q: query.get('q'), method: req.method, body: req.body }),
    }),
  });
  cleanups.push(() => server.close());
  return `http://127.0.0.1:${server.port}`;
}

/** POSTs `pieces` with chunked transfer encoding (no content-length), one write each. */
function postChunked(url: string, pieces: string[]): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST' }, (res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    for (const piece of pieces) req.write(piece);
    req.end();
  });
}

describe('listenHttp', () => {
  it('without body methods: GET reaches the handler with path and query; POST is 405', async () => {
    const base = await echoServer({});
    const get = await fetch(`${base}/ledger?q=1`);
    expect(await get.json()).toEqual({ path: '/ledger', q: '1', method: 'GET', body: '' });
    const post = await fetch(`${base}/ledger`, { method: 'POST', body: '{}' });
    expect(post.status).toBe(405);
    expect(await post.text()).toBe('method: must be GET\n');
  });

  it('a body method gets its body as text; another method is 405 naming the allowed ones', async () => {
    const base = await echoServer({ bodyMethods: ['POST'] });
    const post = await fetch(`${base}/next`, { method: 'POST', body: '{"a":"é"}' });
    expect(await post.json()).toEqual({
      path: '/next',
      q: null,
      method: 'POST',
      body: '{"a":"é"}',
    });
    const put = await fetch(`${base}/next`, { method: 'PUT', body: 'x' });
    expect(put.status).toBe(405);
    expect(await put.text()).toBe('method: must be GET or POST\n');
  });

  it('a body past the bound is 413 naming body, by its content-length or, chunked, as it arrives; the server goes on', async () => {
    const base = await echoServer({ bodyMethods: ['POST'], maxBodyBytes: 16 });
    const declared = await fetch(`${base}/next`, { method: 'POST', body: 'x'.repeat(17) });
    expect(declared.status).toBe(413);
    expect(await declared.json()).toEqual({
      error: {
        code: 'INVALID_INPUT',
        message: 'body: must be at most 16 bytes',
        field: 'body',
        rule: 'at most 16 bytes',
      },
    });
    const chunked = await postChunked(`${base}/next`, [
      'x'.repeat(10),
      'y'.repeat(10),
      'z'.repeat(5000),
    ]);
    expect(chunked.status).toBe(413);
    expect(JSON.parse(chunked.body)).toMatchObject({ error: { field: 'body' } });
    const fits = await postChunked(`${base}/next`, ['x'.repeat(8), 'y'.repeat(8)]);
    expect(JSON.parse(fits.body)).toMatchObject({ body: 'xxxxxxxxyyyyyyyy' });
  });
});
