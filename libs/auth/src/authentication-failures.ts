import type { FastifyReply, FastifyRequest } from 'fastify';

export const AUTHENTICATION_FAILURES = Symbol('AUTHENTICATION_FAILURES');

/**
 * Told of each request refused for its credentials, before its 401: the rate limiter counts it
 * against the caller's address (anonymous), and answers 429 instead once that is over its limit,
 * so guessing tokens or keys is limited like any anonymous traffic. Optional: without a rate
 * limiter, nothing is told.
 */
export interface AuthenticationFailures {
  refused(request: FastifyRequest, reply: FastifyReply): Promise<void>;
}
