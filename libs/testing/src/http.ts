import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import type { LightMyRequestResponse } from 'fastify';

export interface Call {
  method: 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE' | 'HEAD';
  url: string;
  token?: string;
  body?: unknown;
  headers?: Record<string, string>;
}

export interface Reply<T = unknown> {
  status: number;
  headers: LightMyRequestResponse['headers'];
  body: T;
  raw: string;
}

/** application/json and the +json types (problem+json); not application/x-ndjson. */
const JSON_TYPE = /^application\/(?:[\w.-]+\+)?json\b/;

/** One request through the whole Fastify/Nest pipeline, in process (no socket). */
export async function call<T = any>(app: NestFastifyApplication, c: Call): Promise<Reply<T>> {
  const headers: Record<string, string> = { ...c.headers };
  if (c.token) headers.authorization = `Bearer ${c.token}`;
  if (c.body !== undefined) headers['content-type'] ??= 'application/json';
  const response = await app.inject({
    method: c.method,
    url: c.url,
    headers,
    payload:
      c.body === undefined
        ? undefined
        : typeof c.body === 'string'
          ? c.body
          : JSON.stringify(c.body),
  });
  const type = String(response.headers['content-type'] ?? '');
  return {
    status: response.statusCode,
    headers: response.headers,
    body: (JSON_TYPE.test(type) && response.body ? JSON.parse(response.body) : response.body) as T,
    raw: response.body,
  };
}
