import { setFlagsFromString } from 'node:v8';

/**
 * Turns off V8's allocation-site pretenuring for this process. Called first thing by the apps'
 * entry points (not by the tests' apps, which share a Jest process).
 *
 * Why: under load, V8 may decide that the objects of a hot allocation site mostly survive and
 * start allocating them in old space directly. For a request's objects (Fastify's Request and
 * Reply, the response's headers, Nest's context) that decision is wrong, since they die within
 * milliseconds, and it feeds itself: the dead old objects point at their request's young ones,
 * which then survive the next scavenge and are promoted in turn. Measured with `--trace-gc` on
 * the built api at 2 000 cached reads a second, in fresh processes with or without the request
 * log: in 9 of 15 every scavenge promoted 3-4 MB and took 15-25 ms (instead of ~1 ms), and the
 * process stayed that way (1.5-2 MB in 3 more); with pretenuring off, none of 20 promoted more
 * than 0.6 MB (see the README's Benchmark section).
 * The flag is not allowed in NODE_OPTIONS, hence here, before the app allocates anything.
 *
 * The same on Node 20 (V8 11.3) and Node 24 (V8 13.6): the flag exists in both, and set here, at
 * run time, it takes effect (a process whose allocation sites V8 would tenure reports those
 * decisions under --trace-pretenuring-statistics without it, and none with it).
 */
export function disablePretenuring(): void {
  setFlagsFromString('--no-allocation-site-pretenuring');
}
