// @ts-check
'use strict';

/** The request types `npm run bench:capacity` measures, and what each sends. */
const { PASSWORD } = require('./settings');

/**
 * @typedef {{ method?: string, headers: Record<string, string>, paths: string[], body?: string }} Load
 * @typedef {{ email: string, token: string, userId: string, apiKey: string, hotId: string,
 *   take: (n: number) => string[] }} SeedContext
 * @typedef {{ key: string, name: string, about: string, count: number, concurrency: number,
 *   warmup: number, status: number, cache?: string, readTx?: number,
 *   load: (ctx: SeedContext, n: number) => Load }} RequestType
 */

/** @param {SeedContext} ctx */
const bearer = (ctx) => ({ authorization: `Bearer ${ctx.token}` });
const json = { 'content-type': 'application/json' };
/** A distinct `dueBefore` far in the future per request: a cache key never seen, the same page. */
let dueBefore = Date.UTC(2100, 0, 1);
const coldListPath = () => `/v1/tasks?limit=20&dueBefore=${new Date(dueBefore++).toISOString()}`;

/** The two cache misses' run: a read a replica could serve, one Postgres transaction. */
const CACHE_MISS = {
  count: 2000,
  concurrency: 16,
  warmup: 300,
  status: 200,
  cache: 'miss',
  readTx: 1,
};

/**
 * The request types, measured in this order (writes last, so the cached reads stay cached); the
 * warm-up runs them in the opposite order. `load(ctx, n)` gives {method, headers, paths, body};
 * `{i}` in a body becomes the request's number. `readTx`: Postgres transactions per request that
 * are reads a replica could serve (the miss's load); the rest count as the primary's.
 *
 * @type {RequestType[]}
 */
const TYPES = [
  {
    key: 'item-hit',
    name: '`GET /v1/tasks/:id`, cached',
    about: 'one task, answered from the in-process cache (X-Cache: hit-local)',
    count: 4000,
    concurrency: 16,
    warmup: 1000,
    status: 200,
    cache: 'hit-local',
    load: (ctx) => ({ headers: bearer(ctx), paths: [`/v1/tasks/${ctx.hotId}`] }),
  },
  {
    key: 'list-hit',
    name: '`GET /v1/tasks?limit=20`, cached',
    about: 'the first page of 20, from the in-process cache',
    count: 3000,
    concurrency: 16,
    warmup: 600,
    status: 200,
    cache: 'hit-local',
    load: (ctx) => ({ headers: bearer(ctx), paths: ['/v1/tasks?limit=20'] }),
  },
  {
    key: 'whoami',
    name: '`GET /v1/auth/whoami`, API key',
    about: 'API key (cached verification), rate limit, a constant answer: the pipeline alone',
    count: 4000,
    concurrency: 16,
    warmup: 1000,
    status: 200,
    load: (ctx) => ({ headers: { 'x-api-key': ctx.apiKey }, paths: ['/v1/auth/whoami'] }),
  },
  {
    key: 'item-miss',
    name: '`GET /v1/tasks/:id`, cache miss',
    about:
      'a task not read before (a distinct id per request): in-process miss, Redis GET miss, ' +
      'the row from Postgres, Redis SET',
    ...CACHE_MISS,
    load: (ctx, n) => ({ headers: bearer(ctx), paths: ctx.take(n).map((id) => `/v1/tasks/${id}`) }),
  },
  {
    key: 'list-miss',
    name: '`GET /v1/tasks?limit=20`, cache miss',
    about:
      'the first page made a new cache key by a distinct `dueBefore` far in the future per ' +
      'request (it leaves out the tasks without a due date, 1 in 5; the same index scan)',
    ...CACHE_MISS,
    load: (ctx, n) => ({ headers: bearer(ctx), paths: Array.from({ length: n }, coldListPath) }),
  },
  {
    key: 'login',
    name: '`POST /v1/auth/login`',
    about: 'scrypt (N = 2¹⁵, r = 8) of the password, a refresh token stored, a token pair',
    count: 60,
    concurrency: 4,
    warmup: 6,
    status: 200,
    load: (ctx) => ({
      method: 'POST',
      headers: json,
      paths: ['/v1/auth/login'],
      body: JSON.stringify({ email: ctx.email, password: PASSWORD }),
    }),
  },
  {
    key: 'post',
    name: '`POST /v1/tasks`',
    about: 'a task and its task.created event in one transaction; the worker relays the event',
    count: 2000,
    concurrency: 8,
    warmup: 200,
    status: 201,
    load: (ctx) => ({
      method: 'POST',
      headers: { ...bearer(ctx), ...json },
      paths: ['/v1/tasks'],
      body: JSON.stringify({
        title: 'Capacity task {i}',
        description: 'Created by npm run bench:capacity',
        priority: 'high',
        tags: ['bench', 'capacity'],
      }),
    }),
  },
  {
    key: 'patch',
    name: '`PATCH /v1/tasks/:id`',
    about: 'a new title for a distinct task per request, unconditional; its task.updated event',
    count: 2000,
    concurrency: 8,
    warmup: 200,
    status: 200,
    load: (ctx, n) => ({
      method: 'PATCH',
      headers: { ...bearer(ctx), ...json },
      paths: ctx.take(n).map((id) => `/v1/tasks/${id}`),
      body: JSON.stringify({ title: 'Renamed by the capacity run {i}' }),
    }),
  },
];

module.exports = { TYPES, bearer, json };
