// How the apps' node processes run in production: `npm start`, the Dockerfile (which repeats
// this in NODE_OPTIONS) and the benchmark all use it.
//
// --max-semi-space-size=64 (MiB): a larger young generation. Under load the default (16) means a
// scavenge every ~60 ms that promotes the objects of in-flight requests, then old-space
// collections of 8-15 ms; measured with npm run bench (medians of 3 rounds), it took
// GET /v1/tasks/:id's p99 from ~31 ms to ~20 ms and whoami from 0.33x to 0.40x of the baseline,
// for up to ~128 MiB more memory per process under load (measured on Node 20).
//
// Without it, Node 20 and 22 (V8 11.3, 12.4) let a semi-space grow to 16 MiB at most. Node 24
// (V8 13.6) sizes the young generation from the heap limit: with a 4 GiB heap limit its default
// already grows to what this flag sets, so there it changes nothing; with a smaller heap (less
// memory, or --max-old-space-size) it picks less, 16 MiB with a 300 MiB heap, and this keeps 64.
// The flag is valid, and allowed in NODE_OPTIONS, on both.
exports.NODE_RUNTIME_FLAGS = ['--max-semi-space-size=64'];
