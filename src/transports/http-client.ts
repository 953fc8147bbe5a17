import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { TLS_MIN_VERSION } from './tls.js';

/** Largest answer body read by `httpCall`; past it the call fails. */
export const HTTP_CALL_MAX_BODY_BYTES = 1024 * 1024;

export interface HttpCallOptions {
  readonly url: URL;
  readonly method: 'GET' | 'POST';
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: string;
  /** https: the only CA trusted for the server's certificate (PEM); the system's without it. */
  readonly ca?: string;
  readonly signal?: AbortSignal;
}

/**
 * One HTTP(S) request with a text answer, for the CLI's calls to our own services: unlike
 * `fetch`, it takes the CA a private gateway certificate is signed with. The certificate is
 * always verified. Rejects with the socket's error (the caller says what could not be reached).
 */
export function httpCall(
  options: HttpCallOptions,
): Promise<{ readonly status: number; readonly text: string }> {
  const secure = options.url.protocol === 'https:';
  return new Promise((resolve, reject) => {
    const onAnswer = (response: IncomingMessage) => {
      const chunks: Buffer[] = [];
      let size = 0;
      response.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > HTTP_CALL_MAX_BODY_BYTES) {
          response.destroy(new Error(`answer larger than ${HTTP_CALL_MAX_BODY_BYTES} bytes`));
          return;
        }
        chunks.push(chunk);
      });
      response.once('error', reject);
      response.once('end', () =>
        resolve({
          status: response.statusCode ?? 0,
          text: Buffer.concat(chunks).toString('utf8'),
        }),
      );
    };
    const common = {
      method: options.method,
      headers: options.headers ?? {},
      ...(options.signal === undefined ? {} : { signal: options.signal }),
    };
    const request = secure
      ? httpsRequest(
          options.url,
          {
            ...common,
            minVersion: TLS_MIN_VERSION,
            rejectUnauthorized: true,
            ...(options.ca === undefined ? {} : { ca: options.ca }),
          },
          onAnswer,
        )
      : httpRequest(options.url, common, onAnswer);
    request.once('error', reject);
    request.end(options.body);
  });
}
