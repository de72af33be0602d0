export { BAD_TOKENS, MALFORMED_IDS, defineResource, sharedTests } from './behaviours';
export type {
  ConditionalOptions,
  IdempotencyOptions,
  InvalidField,
  OwnershipFixture,
  OwnershipOptions,
  RawBodies,
  RequestBodyOptions,
  Resource,
  ResourceDefinition,
  Stored,
  TargetFixture,
  UserFixture,
  ValidationOptions,
} from './behaviours';
export { createApiKey, createCategory, createTask, registerUser } from './factories';
export type { Body, Create, TestUser } from './factories';
export { call } from './http';
export { ISO_UTC, STRONG_ETAG, UUID } from './patterns';
export type { Call, Reply } from './http';
export { expectProblem, expectValidationError } from './problems';
export type { ProblemBody } from './problems';
export { clientFor, listAll, registerClient } from './resources';
export type { Client, Listing } from './resources';
export { eventually } from './eventually';
export { FaultProxy } from './fault-proxy';
export type { Fault } from './fault-proxy';
