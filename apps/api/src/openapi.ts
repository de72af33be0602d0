import type { OpenAPIObject } from '@nestjs/swagger';
import type {
  HeaderObject,
  OperationObject,
  ParameterObject,
  ReferenceObject,
  ResponseObject,
  SchemaObject,
} from '@nestjs/swagger/dist/interfaces/open-api-spec.interface';
import { PROBLEM_SCHEMA, problemContent } from './common/problem-responses.decorator';

/**
 * Each operation's summary, by operationId (`Controller_method`). A route without one fails the
 * document's build: a generated client names its functions and docs from these.
 */
const SUMMARIES: Record<string, string> = {
  HealthController_live: 'Liveness: the event loop runs',
  HealthController_ready: 'Readiness: this instance can serve',
  AuthController_whoami: 'Who the credential is',
  AuthController_register: 'Create an account',
  AuthController_login: 'Sign in',
  AuthController_refresh: 'Trade a refresh token for a new pair',
  UsersController_me: 'The signed-in user',
  ApiKeysController_create: 'Create an API key',
  ApiKeysController_list: 'List your API keys',
  ApiKeysController_get: 'Read an API key',
  ApiKeysController_revoke: 'Revoke an API key',
  CategoriesController_create: 'Create a category',
  CategoriesController_list: 'List categories',
  CategoriesController_get: 'Read a category',
  CategoriesController_update: 'Change a category',
  CategoriesController_remove: 'Delete a category',
  TasksController_create: 'Create a task',
  TasksController_list: 'List, filter and search tasks',
  TasksController_get: 'Read a task',
  TasksController_update: 'Change a task',
  TasksController_remove: 'Delete a task',
  ExportsController_create: 'Export tasks to a file, in the background',
  JobsController_get: 'Read a background job',
  JobsController_result: "Download a job's file",
  WebhooksController_create: 'Subscribe a URL to task events',
  WebhooksController_list: 'List webhook subscriptions',
  WebhooksController_get: 'Read a webhook subscription',
  WebhooksController_update: 'Change a webhook subscription (URL, events, enabled)',
  WebhooksController_rotateSecret: "Rotate a subscription's signing secret",
  WebhooksController_ping: 'Send a test event to a subscription',
  WebhooksController_redeliver: 'Send a failed delivery again',
  WebhooksController_remove: 'Delete a webhook subscription',
  WebhooksController_deliveries: "List a subscription's deliveries",
  AdminUsersController_list: 'List users (administrators)',
  AdminUsersController_update: "Change a user's role or tier (administrators)",
  BreakersController_list: "This instance's circuit breakers (administrators)",
  FlagsController_get: 'Degraded mode and feature flags (administrators)',
  FlagsController_update: 'Change degraded mode or feature flags (administrators)',
  RateLimitsController_list: 'List rate-limit overrides (administrators)',
  RateLimitsController_get: "Read a client's rate-limit override (administrators)",
  RateLimitsController_put: "Set a client's rate-limit override (administrators)",
  RateLimitsController_remove: "Remove a client's rate-limit override (administrators)",
  UsageController_get: 'Request counts, errors and latency over time (administrators)',
};

const ref = (kind: 'headers' | 'schemas', name: string): ReferenceObject => ({
  $ref: `#/components/${kind}/${name}`,
});
const integer = (description: string): HeaderObject => ({
  description,
  schema: { type: 'integer', minimum: 0 },
});
const text = (description: string): HeaderObject => ({ description, schema: { type: 'string' } });

/** The response headers the API sends, each described once. */
const HEADERS: Record<string, HeaderObject> = {
  'X-Request-ID': text("The request's id: the client's X-Request-ID if sane, else a new UUID."),
  'X-RateLimit-Limit': integer("Requests a minute the client's limit allows."),
  'X-RateLimit-Remaining': integer('Requests left in the rolling minute.'),
  'X-RateLimit-Reset': integer('When the window frees a request, in unix seconds.'),
  'RateLimit-Policy': text('IETF draft structured field: `"default";q=<limit>;w=60`.'),
  RateLimit: text('IETF draft structured field: `"default";r=<remaining>;t=<seconds>`.'),
  'Retry-After': integer('Seconds to wait before asking again.'),
  Location: text('The created resource.'),
  ETag: text('Strong entity tag of the resource version; send it in If-Match or If-None-Match.'),
  'X-Cache': {
    description: 'Where the answer came from.',
    schema: { type: 'string', enum: ['hit-local', 'hit-redis', 'miss', 'stale', 'bypass'] },
  },
  'Idempotent-Replayed': {
    description: 'true when this is the replay of the first answer to the same Idempotency-Key.',
    schema: { type: 'string', enum: ['true'] },
  },
};
const RATE_LIMIT_HEADERS = [
  'X-RateLimit-Limit',
  'X-RateLimit-Remaining',
  'X-RateLimit-Reset',
  'RateLimit-Policy',
  'RateLimit',
];

const PROBLEMS: Record<number, string> = {
  400: 'The request is malformed: not valid HTTP, a malformed URL, invalid JSON, an invalid or unknown field or parameter, a string Postgres cannot store, or an empty If-Match.',
  401: 'Missing, invalid or expired credentials (WWW-Authenticate says which).',
  413: 'The body is over 1 MiB.',
  415: 'The body is not application/json.',
  429: "Over the client's rate limit for the rolling minute (Retry-After).",
  500: 'A bug: logged with the request id; the body says nothing more.',
  503: 'Unavailable for now (Retry-After): a dependency failing or slow (DEPENDENCY_UNAVAILABLE, DEPENDENCY_TIMEOUT), the instance overloaded (OVERLOADED), the request not handled in time (HANDLER_TIMEOUT), or a feature turned away by degraded mode (DEGRADED).',
};

/** The one pattern Idempotency-Key must match: 1 to 255 visible ASCII characters. */
const IDEMPOTENCY_KEY_SCHEMA: SchemaObject = {
  type: 'string',
  minLength: 1,
  maxLength: 255,
  pattern: '^[\\x21-\\x7E]+$',
};

const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options'] as const;

type Extended = OperationObject & {
  'x-public'?: boolean;
  'x-api-keys-refused'?: boolean;
  'x-required-scopes'?: string[];
  'x-cached'?: boolean;
};

/**
 * What the decorators cannot say, said once for every operation, so that the document tells what
 * the API answers (issue 15): the Problem schema as one component; on every /v1 operation its
 * security (none for public routes, no API key where keys are refused) and required scopes, 401,
 * 429, 503 and the rate-limit headers, since the limiter counts every /v1 response; 500 and
 * X-Request-ID everywhere; 400, 413 and 415 wherever a body or parameters can be refused;
 * Location, ETag, X-Cache, Idempotent-Replayed and Retry-After where they are sent; request
 * bodies closed to unknown fields; nullable enums that list null.
 */
export function completeDocument(document: OpenAPIObject): OpenAPIObject {
  document.servers = [{ url: '/', description: 'The server this document came from.' }];
  document.info.license = { name: 'MIT', url: 'https://opensource.org/licenses/MIT' };
  document.components ??= {};
  document.components.schemas = {
    Problem: PROBLEM_SCHEMA as SchemaObject,
    ...document.components.schemas,
  };
  document.components.headers = HEADERS;
  for (const [path, item] of Object.entries(document.paths)) {
    for (const method of METHODS) {
      const operation = item[method];
      if (operation) completeOperation(document, path, method, operation);
    }
  }
  for (const schema of Object.values(document.components.schemas)) listNull(schema);
  return document;
}

function completeOperation(
  document: OpenAPIObject,
  path: string,
  method: (typeof METHODS)[number],
  operation: Extended,
): void {
  const id = operation.operationId ?? `${method} ${path}`;
  const summary = SUMMARIES[id];
  if (!summary) throw new Error(`OpenAPI: ${id} has no summary (apps/api/src/openapi.ts)`);
  operation.summary = summary;
  const metered = path.startsWith('/v1/');
  const open = operation['x-public'] === true;
  if (open) {
    operation.security = [];
    delete operation['x-required-scopes'];
  } else if (operation['x-api-keys-refused']) {
    operation.security = [{ bearer: [] }];
  }
  const scopes = operation['x-required-scopes'];
  if (scopes) {
    operation.description = [
      operation.description,
      `Scopes: ${scopes.map((scope) => `\`${scope}\``).join(', ')}. An access token holds every ` +
        'scope over its own data; an API key only those it was given (403 INSUFFICIENT_SCOPE)' +
        (scopes.includes('admin') ? '; `admin` also needs the administrator role.' : '.'),
    ]
      .filter(Boolean)
      .join('\n\n');
  }
  const parameters = (operation.parameters ?? []) as ParameterObject[];
  for (const parameter of parameters) {
    if (parameter.in === 'header' && parameter.name === 'Idempotency-Key') {
      parameter.schema = IDEMPOTENCY_KEY_SCHEMA;
    }
  }
  const responses = operation.responses as Record<string, ResponseObject>;
  const problem = (status: number) => {
    responses[status] ??= { description: PROBLEMS[status], content: problemContent() };
  };
  // Any request can be malformed HTTP or carry a malformed URL; bodies and parameters more so.
  problem(400);
  if (operation.requestBody) {
    problem(413);
    problem(415);
    closeBodies(document, operation);
  }
  if (metered && !open) problem(401);
  if (metered) problem(429);
  problem(500);
  problem(503);

  for (const [status, response] of Object.entries(responses)) {
    const headers: Record<string, ReferenceObject> = {
      'X-Request-ID': ref('headers', 'X-Request-ID'),
    };
    if (metered) for (const name of RATE_LIMIT_HEADERS) headers[name] = ref('headers', name);
    if (status === '429' || status === '503')
      headers['Retry-After'] = ref('headers', 'Retry-After');
    if (status === '201') headers.Location = ref('headers', 'Location');
    if (status === '201' && parameters.some((p) => p.name === 'Idempotency-Key')) {
      headers['Idempotent-Replayed'] = ref('headers', 'Idempotent-Replayed');
    }
    if ((status === '200' || status === '201') && isVersioned(document, response)) {
      headers.ETag = ref('headers', 'ETag');
    }
    if (status === '304') headers.ETag = ref('headers', 'ETag');
    if (operation['x-cached'] && (status === '200' || status === '304')) {
      headers['X-Cache'] = ref('headers', 'X-Cache');
    }
    response.headers = { ...headers, ...response.headers };
  }
  delete operation['x-public'];
  delete operation['x-api-keys-refused'];
  delete operation['x-cached'];
}

/** The component a response's JSON body refers to, if any. */
function schemaOf(document: OpenAPIObject, response: ResponseObject): SchemaObject | undefined {
  const schema = response.content?.['application/json']?.schema as ReferenceObject | undefined;
  const name = schema?.$ref?.split('/').pop();
  return name ? (document.components?.schemas?.[name] as SchemaObject | undefined) : undefined;
}

/** A single versioned resource: its answers carry an ETag (libs/http's preSerialization hook). */
function isVersioned(document: OpenAPIObject, response: ResponseObject): boolean {
  const schema = schemaOf(document, response);
  return schema?.properties?.id !== undefined && schema.properties.version !== undefined;
}

/** Request bodies refuse unknown fields (400), nested objects included: the schema says so. */
function closeBodies(document: OpenAPIObject, operation: OperationObject): void {
  const body = operation.requestBody as { content?: Record<string, { schema?: ReferenceObject }> };
  const seen = new Set<string>();
  const close = (reference: ReferenceObject | SchemaObject | undefined) => {
    const name = (reference as ReferenceObject | undefined)?.$ref?.split('/').pop();
    if (!name || seen.has(name)) {
      const items = (reference as SchemaObject | undefined)?.items;
      if (items) close(items);
      return;
    }
    seen.add(name);
    const schema = document.components?.schemas?.[name] as SchemaObject | undefined;
    if (!schema) return;
    schema.additionalProperties = false;
    for (const property of Object.values(schema.properties ?? {})) {
      close(property);
      for (const member of (property as SchemaObject).allOf ?? []) close(member);
    }
  };
  for (const media of Object.values(body.content ?? {})) close(media.schema);
}

/** A nullable enum lists null among its values, as JSON Schema validators require. */
function listNull(schema: SchemaObject | ReferenceObject): void {
  const object = schema as SchemaObject;
  // A new array: the one here may be the very constant the validation reads (IsIn(TIERS)).
  if (object.nullable && object.enum && !object.enum.includes(null)) {
    object.enum = [...(object.enum as unknown[]), null];
  }
  for (const property of Object.values(object.properties ?? {})) listNull(property);
  if (object.items) listNull(object.items);
}

/**
 * The document as committed (openapi.json): what `npm run openapi` writes and what the drift
 * test compares, read from the app's own /docs-json.
 */
export async function renderOpenApi(app: {
  inject(options: { method: 'GET'; url: string }): Promise<{ body: string }>;
}): Promise<string> {
  const { body } = await app.inject({ method: 'GET', url: '/docs-json' });
  return `${JSON.stringify(JSON.parse(body), null, 2)}\n`;
}
