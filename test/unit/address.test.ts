/** Broker address templates (src/delivery/address.ts): checked at config load, names made safe per transport. */
import { describe, expect, it } from 'vitest';
import { addressTemplateProblem, compileAddress } from '../../src/delivery/address.js';

describe('broker address templates', () => {
  it('fills {schema}, {table} and {operation}', () => {
    const of = compileAddress('db.{schema}.{table}.{operation}');
    expect(of({ schema: 'public', table: 'orders', operation: 'update' })).toBe('db.public.orders.update');
    expect(of({ schema: 'sales', table: 'items', operation: 'delete' })).toBe('db.sales.items.delete');
  });

  it("writes a name's unsafe characters as _, never the template's own", () => {
    const nats = compileAddress('db.{schema}.{table}', /[\s.*>]/g);
    expect(nats({ schema: 'my.schema', table: 'a b*>', operation: 'insert' })).toBe('db.my_schema.a_b__');
    const mqtt = compileAddress('db/{schema}/{table}', /[+#/\s]/g);
    expect(mqtt({ schema: 'public', table: 'x/y+z#', operation: 'insert' })).toBe('db/public/x_y_z_');
  });

  it('says what is wrong with a template, and nothing for a good one', () => {
    expect(addressTemplateProblem('db.{schema}.{table}.{operation}')).toBeUndefined();
    expect(addressTemplateProblem('fixed-name')).toBeUndefined();
    expect(addressTemplateProblem('db.{tabel}')).toMatch(/unknown placeholder \{tabel\}/);
    expect(addressTemplateProblem('db.{schema')).toMatch(/unmatched/);
    expect(addressTemplateProblem('  ')).toMatch(/empty/);
  });
});
