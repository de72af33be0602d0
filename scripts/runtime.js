// How the apps' node processes run in production: `npm start`, the Dockerfile (which repeats
// this in NODE_OPTIONS) and the benchmark all use it.
//
// --max-semi-space-size=64 (MiB): a larger young generation. Under load the default (16) means a
// scavenge every ~60 ms that promotes the objects of in-flight requests, then old-space
// collections of 8-15 ms; measured with npm run bench (medians of 3 rounds), it took
// GET /v1/tasks/:id's p99 from ~31 ms to ~20 ms and whoami from 0.33x to 0.40x of the baseline,
// for up to ~128 MiB more memory per process under load.
exports.NODE_RUNTIME_FLAGS = ['--max-semi-space-size=64'];
