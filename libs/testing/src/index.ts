export { createTask, registerUser } from './factories';
export type { TestUser } from './factories';
export { call } from './http';
export type { Call, Reply } from './http';
