export { createTask, registerUser } from './factories';
export type { TestUser } from './factories';
export { call } from './http';
export type { Call, Reply } from './http';
export { expectProblem, expectValidationError } from './problems';
export type { ProblemBody } from './problems';
export { clientFor, createCategory, listAll } from './resources';
export type { Client, Listing } from './resources';
