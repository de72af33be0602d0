import type { FastifyReply, FastifyRequest } from 'fastify';

export const ERROR_METER = Symbol('ERROR_METER');

/**
 * Told of each `/v1` error (and each OPTIONS answered with Allow) that no rate-limit decision
 * was made for: a request refused before the guards (malformed or unstorable JSON, 413, 415, an
 * unknown route, 405), or by the auth guard (401; 403 for a scope or a role). It counts the request
 * against its client, sets the rate-limit fields on the reply, and throws the RATE_LIMITED
 * problem to answer instead once the client is over its limit, so failing requests cost a client
 * its limit like any other, and guessing credentials is limited like anonymous traffic. libs/rate-limit
 * provides it; without a rate limiter, nothing is told.
 */
export interface ErrorMeter {
  count(request: FastifyRequest, reply: FastifyReply): Promise<void>;
}
