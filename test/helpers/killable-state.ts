import { stateOf, type StateStore } from '../../src/state/store.ts';

/**
 * A state directory as a crashed process leaves it: once `dead()` is true, nothing this process
 * still has in flight reaches the journal, the audit log or the lock again (a SIGKILLed keyrot
 * appends no line and releases no lock). The in-process crash of the property tests is airtight
 * only with it: the abandoned run's promises stay pending, but their writes must not land.
 */
export async function killableState(stateDir: string, dead: () => boolean): Promise<StateStore> {
  const inner = await stateOf(stateDir);
  const never = () => new Promise<never>(() => {});
  return {
    kind: inner.kind,
    where: inner.where,
    trust: inner.trust,
    readJournalText: (env) => inner.readJournalText(env),
    journalEnvs: () => inner.journalEnvs(),
    readAuditText: () => inner.readAuditText(),
    readLock: (env) => inner.readLock(env),
    isStale: (info) => inner.isStale(info),
    appendJournalLine: (env, make) => (dead() ? never() : inner.appendJournalLine(env, make)),
    appendAuditLine: (make) => (dead() ? never() : inner.appendAuditLine(make)),
    async acquireLock(env, meta) {
      const lock = await inner.acquireLock(env, meta);
      return { ...lock, release: () => (dead() ? never() : lock.release()) };
    },
  };
}
