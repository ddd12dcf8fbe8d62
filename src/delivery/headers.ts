/**
 * Headers a destination's `headers:` may not set: they frame the request, carry the
 * Standard Webhooks signature, or (`ce-*`) the CloudEvents attributes of the binary
 * format, so a stray entry must not break delivery, verification or the event.
 * Lower case. The config rejects them with a message; the client ignores them anyway.
 */
export const RESERVED_HEADERS = [
  'content-type',
  'content-length',
  'transfer-encoding',
  'connection',
  'keep-alive',
  'host',
  'webhook-id',
  'webhook-timestamp',
  'webhook-signature',
] as const;

/** Header names reserved as a family: every `ce-*` is a CloudEvents attribute in binary mode. */
export const RESERVED_HEADER_PREFIXES = ['ce-'] as const;

/** Whether `name` (any case) is one app-db-listener sets itself. */
export function isReservedHeader(name: string): boolean {
  const lower = name.toLowerCase();
  return (RESERVED_HEADERS as readonly string[]).includes(lower) || RESERVED_HEADER_PREFIXES.some((p) => lower.startsWith(p));
}
