import { setFlagsFromString } from 'node:v8';

/**
 * A run over a large fleet trades some CPU for memory. Measured with the fleet benchmark
 * (bench/fleet.ts, 1000 targets): what the rotation keeps is small (28 MiB of heap after a full
 * collection, from a heap snapshot), but V8 collects lazily: its young generation grows to
 * 128 MiB and garbage piles up in the old one before a full collection, so the process peaked at
 * 281–321 MiB RSS. `--optimize-for-size` keeps both small (peak 134–140 MiB) for about 40% more
 * CPU time. The heap's limits (`--max-semi-space-size`) are fixed when Node starts; this flag is
 * one V8 reads as it goes (v8.setFlagsFromString), so it can be turned on once the inventory says
 * how many targets there are. Below SMALL_HEAP_FROM targets the peak stays under ~150 MiB
 * anyway (140 MiB at 100 targets) and speed wins.
 */
export const SMALL_HEAP_FROM = 250;

let small = false;

/** Turns V8's memory-saving mode on for a run over `targets` targets if it is large; says whether it is on. */
export function preferSmallHeap(targets: number): boolean {
  if (!small && targets >= SMALL_HEAP_FROM) {
    setFlagsFromString('--optimize-for-size');
    small = true;
  }
  return small;
}
