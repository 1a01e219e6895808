/** Text from the state or the inventory, inert in HTML (element content and attribute values). */
export function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
