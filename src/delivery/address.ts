/**
 * A broker destination's address per message: a NATS subject, an AMQP routing key, a
 * Redis stream key or an MQTT topic, from a template such as
 * `db.{schema}.{table}.{operation}`. The placeholders are the change's schema, table
 * and operation (insert, update, delete, or read for a backfill's rows); each transport says which characters of a
 * name must not reach its address (a dot would add a level to a NATS subject, a `+`
 * would be a wildcard in an MQTT topic) and they are replaced with `_`.
 */
import type { SinkMessage } from './sink.js';

export const ADDRESS_PLACEHOLDERS = ['schema', 'table', 'operation'] as const;

/** Why the template cannot be used, or undefined when it can. */
export function addressTemplateProblem(template: string): string | undefined {
  if (template.trim() === '') return 'must not be empty';
  const rest = template.replace(/\{([^{}]*)\}/g, (whole, name: string) => ((ADDRESS_PLACEHOLDERS as readonly string[]).includes(name) ? '' : whole));
  const unknown = /\{([^{}]*)\}/.exec(rest);
  if (unknown) return `has an unknown placeholder {${unknown[1]}}: use {schema}, {table} or {operation}`;
  if (/[{}]/.test(rest)) return 'has an unmatched { or }: placeholders are {schema}, {table} and {operation}';
  return undefined;
}

export type AddressOf = (m: Pick<SinkMessage, 'schema' | 'table' | 'operation'>) => string;

/**
 * Compiles a template (checked by addressTemplateProblem at config time). `unsafe`
 * matches the characters of a name the transport's addresses cannot carry.
 */
export function compileAddress(template: string, unsafe?: RegExp): AddressOf {
  const parts = template.split(/(\{(?:schema|table|operation)\})/);
  const clean = (v: string) => (unsafe === undefined ? v : v.replace(unsafe, '_'));
  const cache = new Map<string, string>();
  return (m) => {
    const key = `${m.schema}\u0000${m.table}\u0000${m.operation}`;
    let address = cache.get(key);
    if (address === undefined) {
      address = parts
        .map((p) => (p === '{schema}' ? clean(m.schema) : p === '{table}' ? clean(m.table) : p === '{operation}' ? m.operation : p))
        .join('');
      // Tables and operations are few: the cache stays small.
      if (cache.size < 10_000) cache.set(key, address);
    }
    return address;
  };
}
