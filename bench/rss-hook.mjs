// Loaded with --import by bench/startup.ts: reports the process's peak memory at exit.
process.on('exit', () => {
  const u = process.resourceUsage();
  process.stderr.write(`\nKEYROT_BENCH_MAXRSS_KB ${u.maxRSS}\n`);
  // CPU time (user + system): on a shared, loaded machine wall time says little; this says what keyrot spent.
  process.stderr.write(`KEYROT_BENCH_CPU_MS ${Math.round((u.userCPUTime + u.systemCPUTime) / 1000)}\n`);
});
