// Loaded with --import by bench/startup.ts: reports the process's peak memory at exit.
process.on('exit', () => {
  process.stderr.write(`\nKEYROT_BENCH_MAXRSS_KB ${process.resourceUsage().maxRSS}\n`);
});
