// XML 1.0 section 2.4: `<` and `&` must be escaped in character data; `>` too after `]]`, and
// quotes inside attribute values. Escaping all five keeps one function safe in both places.
const entities: Record<string, string> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&apos;",
};

export function xmlEscape(text: string): string {
  return text.replace(/[&<>"']/g, (c) => entities[c]);
}
