/** "1 target", "2 targets", "0 targets"; `many` for irregular plurals ("1 entry", "3 entries"). */
export function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}
