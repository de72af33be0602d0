import {
  call,
  createApiKey,
  createCategory,
  createTask,
  registerUser,
  type TestUser,
} from '@app/testing';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import Ajv, { type ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';
import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DataSource } from 'typeorm';
import { startApi } from './app';
import { tablesDigest } from './tables';

/**
 * Reproducible: FUZZ_SEED replays a run (a failure prints its seed and path); FUZZ_RUNS sets how
 * many inputs each operation gets (20 keeps the whole spec under a minute here).
 */
const SEED = Number(process.env.FUZZ_SEED ?? 20_261_205);
const RUNS = Number(process.env.FUZZ_RUNS ?? 20);

interface Schema {
  $ref?: string;
  type?: string;
  format?: string;
  enum?: unknown[];
  nullable?: boolean;
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  minimum?: number;
  maximum?: number;
  items?: Schema;
  minItems?: number;
  maxItems?: number;
  properties?: Record<string, Schema>;
  required?: string[];
  allOf?: Schema[];
}
interface Parameter {
  name: string;
  in: 'path' | 'query' | 'header';
  required?: boolean;
  schema?: Schema;
}
interface Operation {
  operationId: string;
  parameters?: Parameter[];
  requestBody?: { content: Record<string, { schema: Schema }> };
  responses: Record<string, { content?: Record<string, { schema?: Schema }> }>;
  security?: unknown[];
}
interface Document {
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, Schema> };
}

const document = JSON.parse(
  readFileSync(join(__dirname, '..', 'openapi.json'), 'utf8'),
) as Document;
const resolve = (schema: Schema): Schema =>
  schema.$ref ? resolve(document.components.schemas[schema.$ref.split('/').pop()!]) : schema;

/**
 * Values a schema allows, as fast-check arbitraries. Written here because no maintained package
 * turns JSON Schema into fast-check arbitraries (json-schema-fast-check is at 0.0.6 and
 * abandoned), and our schemas use a small subset: strings with lengths, patterns and formats,
 * integers with bounds, enums, arrays and objects with required fields, nullable.
 */
function valuesOf(raw: Schema): fc.Arbitrary<unknown> {
  const schema = resolve(raw.allOf?.length === 1 ? raw.allOf[0] : raw);
  let values: fc.Arbitrary<unknown>;
  if (schema.enum) {
    values = fc.constantFrom(...schema.enum.filter((value) => value !== null));
  } else if (schema.type === 'string') {
    const maxLength = Math.min(schema.maxLength ?? 40, 80);
    const minLength = schema.minLength ?? 0;
    if (schema.format === 'uuid') values = fc.uuid();
    else if (schema.format === 'date-time') {
      values = fc
        .date({ min: new Date('2000-01-01'), max: new Date('2099-12-31'), noInvalidDate: true })
        .map((date) => date.toISOString());
    } else if (schema.format === 'email') values = fc.emailAddress();
    else if (schema.format === 'uri') values = fc.webUrl({ validSchemes: ['https'] });
    else if (schema.pattern) values = fc.stringMatching(new RegExp(schema.pattern));
    else {
      // Now and then what no Postgres column stores, which JSON Schema cannot rule out.
      values = fc.oneof(
        { weight: 5, arbitrary: fc.string({ minLength, maxLength, unit: 'grapheme' }) },
        { weight: 1, arbitrary: fc.constantFrom('\ud800', 'x\udfff', 'a\u0000b') },
      );
    }
  } else if (schema.type === 'integer') {
    values = fc.integer({
      min: schema.minimum ?? -1000,
      max: Math.min(schema.maximum ?? 1000, 1e9),
    });
  } else if (schema.type === 'number') {
    values = fc.double({ min: schema.minimum ?? -1000, max: schema.maximum ?? 1000, noNaN: true });
  } else if (schema.type === 'boolean') {
    values = fc.boolean();
  } else if (schema.type === 'array') {
    values = fc.array(valuesOf(schema.items ?? {}), {
      minLength: schema.minItems ?? 0,
      maxLength: Math.min(schema.maxItems ?? 4, 4),
    });
  } else if (schema.properties) {
    const shape = Object.fromEntries(
      Object.entries(schema.properties).map(([name, property]) => [name, valuesOf(property)]),
    );
    values = fc.record(shape, { requiredKeys: (schema.required ?? []) as never[] });
  } else {
    values = fc.anything({ maxDepth: 2 });
  }
  return schema.nullable ? fc.option(values, { nil: null }) : values;
}

/** What a field may be sent instead of a good value: other types, and strings no column takes. */
const WRONG = fc.constantFrom<unknown>(
  12345,
  -1,
  1.5,
  true,
  null,
  [],
  {},
  [{ a: 1 }],
  '',
  ' ',
  '\ud800',
  'a\u0000b',
  'x'.repeat(20_000),
  '2030-02-30T00:00:00Z',
  '../../etc/passwd',
  "' OR 1=1 --",
);

/** A body spoiled one way: a field wrong, one missing, one unknown, or no object at all. */
function spoiled(schema: Schema): fc.Arbitrary<unknown> {
  const object = resolve(schema);
  const fields = Object.keys(object.properties ?? {});
  const ways: fc.Arbitrary<unknown>[] = [
    fc.constantFrom<unknown>([], 42, 'text', null, [1, 2]),
    valuesOf(schema).map((body) => ({
      ...(body as object),
      unknown_field: 1,
    })),
  ];
  if (fields.length > 0) {
    ways.push(
      fc
        .tuple(valuesOf(schema), fc.constantFrom(...fields), WRONG)
        .map(([body, field, value]) => ({ ...(body as object), [field]: value })),
    );
  }
  for (const field of object.required ?? []) {
    ways.push(
      valuesOf(schema).map((body) => {
        const copy = { ...(body as Record<string, unknown>) };
        delete copy[field];
        return copy;
      }),
    );
  }
  return fc.oneof(...ways);
}

/** What the conditional and idempotency headers are sent as, when they are. */
const HEADER_VALUES: Record<string, fc.Arbitrary<string | undefined>> = {
  'Idempotency-Key': fc.option(fc.oneof(fc.constantFrom('fuzz-key-1', 'fuzz-key-2'), fc.uuid()), {
    nil: undefined,
  }),
  'If-Match': fc.constantFrom(undefined, '*', '"v1"', '"v999"', 'W/"v1"', '', 'garbage'),
  'If-None-Match': fc.constantFrom(undefined, '*', '"v1"', '"v2"', 'garbage'),
};

/**
 * Property-based: for every operation in the committed document, generated inputs (valid by the
 * document's schemas, or spoiled one way) sent to the real bootstrap. Never a 5xx; every status
 * is one the document lists for the operation; every JSON answer validates against the schema
 * it documents for that status; and input the document calls invalid is a 4xx that changes no
 * row (issue 15, CI proof).
 */
describe('every operation, fuzzed from the OpenAPI document', () => {
  let app: NestFastifyApplication;
  let db: DataSource;
  let user: TestUser;
  let admin: TestUser;
  const ajv = new Ajv({ strict: false, allErrors: false });
  addFormats(ajv);
  const compiled = new Map<Schema, ValidateFunction>();
  const coercing = new Ajv({ strict: false, coerceTypes: true });
  addFormats(coercing);
  const queryValidators = new Map<Schema, ValidateFunction>();
  /** A query parameter's schema, applied to `{ value }` so that text is coerced as it is read. */
  const queryValidatorOf = (schema: Schema) => {
    let validate = queryValidators.get(schema);
    if (!validate) {
      validate = coercing.compile({
        type: 'object',
        properties: { value: schema },
        components: document.components,
      });
      queryValidators.set(schema, validate);
    }
    return validate;
  };
  const validatorOf = (schema: Schema) => {
    let validate = compiled.get(schema);
    if (!validate) {
      validate = ajv.compile({ ...schema, components: document.components });
      compiled.set(schema, validate);
    }
    return validate;
  };

  beforeAll(async () => {
    app = await startApi({ RATE_LIMIT_ENABLED: 'false' });
    db = app.get(DataSource);
    user = await registerUser(app);
    admin = await registerUser(app);
    await db.query(`UPDATE users SET role = 'admin' WHERE id = $1`, [admin.id]);
  });
  afterAll(() => app.close());

  const digest = () => tablesDigest(db);

  /** Real ids for path parameters, made fresh for each operation (a DELETE may use them up). */
  async function fixtures() {
    const task = await createTask(app, user);
    const category = await createCategory(app, user);
    const key = await createApiKey(app, user);
    const target = await registerUser(app);
    const webhook = await call(app, {
      method: 'POST',
      url: '/v1/webhooks',
      token: user.accessToken,
      body: { url: 'https://hooks.example.com/taskhub', events: ['task.created'] },
    });
    const hook = webhook.body.id as string;
    return {
      '/v1/webhooks/{id}': hook,
      '/v1/webhooks/{id}/deliveries': hook,
      '/v1/webhooks/{id}/ping': hook,
      '/v1/webhooks/{id}/rotate-secret': hook,
      '/v1/tasks/{id}': task.id as string,
      '/v1/categories/{id}': category.id as string,
      '/v1/api-keys/{id}': key.id,
      '/v1/admin/users/{id}': target.id,
      '/v1/admin/rate-limits/{identifier}': `user:${target.id}`,
    } as Record<string, string>;
  }

  const operations = Object.entries(document.paths).flatMap(([path, item]) =>
    Object.entries(item).map(
      ([method, operation]) =>
        [`${method.toUpperCase()} ${path}`, path, method, operation] as const,
    ),
  );

  it.each(operations)('%s', async (_, path, method, operation) => {
    const ids = await fixtures();
    const parameters = operation.parameters ?? [];
    const bodySchema = operation.requestBody?.content['application/json']?.schema;
    const query = parameters.filter((p) => p.in === 'query');
    const headers = parameters.filter((p) => p.in === 'header');
    const token = path.startsWith('/v1/admin/') ? admin.accessToken : user.accessToken;

    const input = fc.record({
      // Everything but the fixture's id comes from the seed, so a failure replays.
      id: fc.oneof(
        ids[path] ? fc.constant(ids[path]) : fc.uuid(),
        fc.uuid(),
        fc.constantFrom('not-an-id', '%00'),
      ),
      query: fc.record(
        Object.fromEntries(query.map((p) => [p.name, fc.oneof(valuesOf(p.schema ?? {}), WRONG)])),
        { requiredKeys: [] },
      ),
      body: bodySchema
        ? fc.oneof(valuesOf(bodySchema), spoiled(bodySchema))
        : fc.constant(undefined),
      headers: fc.record(
        Object.fromEntries(
          headers.map((p) => [p.name, HEADER_VALUES[p.name] ?? fc.constant(undefined)]),
        ),
        { requiredKeys: [] },
      ),
    });

    await fc.assert(
      fc.asyncProperty(input, async ({ id, query: values, body, headers: sentHeaders }) => {
        // Query values as the server gets them: text.
        const sent = Object.fromEntries(
          Object.entries(values)
            .filter(([, value]) => value !== undefined)
            .map(([name, value]) => [
              name,
              typeof value === 'string' ? value : JSON.stringify(value),
            ]),
        );
        const url =
          path.replaceAll(/\{[^}]+\}/g, encodeURIComponent(id)) +
          (Object.keys(sent).length ? `?${new URLSearchParams(sent).toString()}` : '');
        // What the document calls invalid: a body or a query value its schemas refuse (the
        // query read as a server reads it, text coerced to the parameter's type).
        const refusedBody = bodySchema !== undefined && !validatorOf(bodySchema)(body);
        const refusedQuery = query.some(
          (p) => p.name in sent && !queryValidatorOf(p.schema ?? {})({ value: sent[p.name] }),
        );
        const invalid = refusedBody || refusedQuery;
        const before = invalid ? await digest() : [];
        const reply = await call(app, {
          method: method.toUpperCase() as 'GET',
          url,
          token: operation.security?.length === 0 ? undefined : token,
          body,
          headers: Object.fromEntries(
            Object.entries(sentHeaders).filter(([, value]) => value !== undefined),
          ) as Record<string, string>,
        });
        const where = `${method.toUpperCase()} ${url} ${JSON.stringify(body)?.slice(0, 300)} → ${reply.status}`;
        expect({ where, serverError: reply.status >= 500 }).toEqual({ where, serverError: false });
        const documented = operation.responses[String(reply.status)];
        expect({ where, documented: documented !== undefined }).toEqual({
          where,
          documented: true,
        });
        const type = String(reply.headers['content-type'] ?? '').split(';')[0];
        const schema = documented?.content?.[type]?.schema;
        if (schema && /json$/.test(type)) {
          const validate = validatorOf(schema);
          expect({ where, errors: validate(reply.body) ? null : validate.errors }).toEqual({
            where,
            errors: null,
          });
        }
        if (invalid) {
          expect({ where, refused: reply.status >= 400 && reply.status < 500 }).toEqual({
            where,
            refused: true,
          });
          expect(await digest()).toEqual(before);
        }
      }),
      { seed: SEED, numRuns: RUNS, endOnFailure: true },
    );
    // Switched back after PUT /v1/admin/flags, so that the operations after it are served.
    await call(app, {
      method: 'PUT',
      url: '/v1/admin/flags',
      token: admin.accessToken,
      body: { degraded: false, features: { search: true, exports: true } },
    });
  });
});
