import { testAuthentication } from './authentication';
import { testConditionalRequests } from './conditional';
import { testDelete, testPrivateResponses } from './crud';
import { testIdempotencyKeys } from './idempotency';
import { testOwnership } from './ownership';
import { testRequestBodies, testValidation } from './validation';

/**
 * The tests that every resource's spec shares, parameterised by the resource (see defineResource)
 * and its specifics. Each registers its tests (and the hooks they need) in the describe block it
 * is called in, so a spec can add its own tests next to them; those that set up a fixture return
 * it, filled in by a beforeAll.
 */
export const sharedTests = {
  authentication: testAuthentication,
  ownership: testOwnership,
  validation: testValidation,
  requestBodies: testRequestBodies,
  conditionalRequests: testConditionalRequests,
  idempotencyKeys: testIdempotencyKeys,
  deletion: testDelete,
  privateResponses: testPrivateResponses,
};

export { BAD_TOKENS } from './authentication';
export type { ConditionalOptions, UserFixture } from './conditional';
export type { IdempotencyOptions } from './idempotency';
export { MALFORMED_IDS } from './ownership';
export type { OwnershipFixture, OwnershipOptions } from './ownership';
export { defineResource } from './resource';
export type { Resource, ResourceDefinition, Stored } from './resource';
export type {
  InvalidField,
  RawBodies,
  RequestBodyOptions,
  TargetFixture,
  ValidationOptions,
} from './validation';
