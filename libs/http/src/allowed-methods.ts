import type { FastifyInstance, FastifyRequest } from 'fastify';
import FindMyWay, { type HTTPMethod } from 'find-my-way';

/**
 * Fastify's router options (fastifyOptions), shared with the copy of its routes kept here so
 * that both match a path the same way.
 */
export const ROUTER_OPTIONS = { maxParamLength: 600 } as const;

/** What the copy of the routes is asked, in the order `Allow` lists them. */
const METHODS: HTTPMethod[] = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'];

const routers = new WeakMap<FastifyInstance, ReturnType<typeof FindMyWay>>();

const noop = () => undefined;

/**
 * Keeps a copy of every route Fastify registers (find-my-way, Fastify's own router), so that a
 * request Fastify found no route for can be told whether its path exists under other methods:
 * RFC 9110 wants 405 with `Allow` for a known path and a method it does not serve, and an
 * `OPTIONS` answered with the same `Allow`. Fastify has no public lookup of a concrete path
 * (`findRoute` takes the route's pattern), hence the copy; it is consulted only for requests
 * that found no route, never on a served request's path.
 */
export function trackRoutes(fastify: FastifyInstance): void {
  const router = FindMyWay(ROUTER_OPTIONS);
  routers.set(fastify, router);
  fastify.addHook('onRoute', (route) => {
    for (const method of [route.method].flat()) {
      if (
        METHODS.includes(method as HTTPMethod) &&
        !router.hasRoute(method as HTTPMethod, route.url)
      ) {
        router.on(method as HTTPMethod, route.url, noop);
      }
    }
  });
}

/**
 * The methods served on the request's path (HEAD wherever GET is, as Fastify serves it), and
 * OPTIONS with them; none for a path no route matches.
 */
export function allowedMethods(request: FastifyRequest): string[] {
  const router = routers.get(request.server);
  if (!router) return [];
  const path = request.url.split('?', 1)[0];
  const allowed = METHODS.filter((method) => router.find(method, path) !== null);
  if (allowed.includes('GET') && !allowed.includes('HEAD')) allowed.splice(1, 0, 'HEAD');
  return allowed.length === 0 ? [] : [...allowed, 'OPTIONS'];
}
