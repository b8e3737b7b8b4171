// node-postgres against a running `rebuy serve`. Usage: node node_check.js PORT
const { Client } = require('pg');

async function main() {
  const port = Number(process.argv[2]);
  const client = new Client({ host: '127.0.0.1', port, user: 'analyst', database: 'rebuy' });
  await client.connect();
  let failures = 0;
  const check = async (name, fn) => {
    try { await fn(); console.log(`ok   ${name}`); } catch (e) { failures++; console.log(`FAIL ${name}: ${e.message}`); }
  };
  const assert = (ok, what) => { if (!ok) throw new Error(what); };
  await check('query with parameters and typed results', async () => {
    const r = await client.query('SELECT COUNT(*)::bigint AS n, as_of() AS d FROM orders WHERE amount > $1', [5]);
    assert(r.rows.length === 1 && Number(r.rows[0].n) > 0, 'count');
    assert(r.fields[0].dataTypeID === 20, `int8 oid, got ${r.fields[0].dataTypeID}`);
    assert(r.fields[1].dataTypeID === 1082, `date oid, got ${r.fields[1].dataTypeID}`);
  });
  await check('views and functions', async () => {
    const r = await client.query("SELECT segment, COUNT(*) AS n FROM customer_rfm GROUP BY segment ORDER BY segment");
    assert(r.rows.length > 0, 'segments');
  });
  await check('int4 constants and counts are numbers, numerics exact strings', async () => {
    const r = await client.query('SELECT 1 AS one, 1 + 1 AS two, CAST(7 AS int) AS seven FROM orders LIMIT 1');
    assert(r.rows[0].one === 1 && r.rows[0].two === 2 && r.rows[0].seven === 7,
      `numbers, got ${JSON.stringify(r.rows[0])}`);
    assert(r.fields.every((f) => f.dataTypeID === 23), `int4 oids, got ${r.fields.map((f) => f.dataTypeID)}`);
    const big = await client.query('SELECT 10000000000000000.00 AS b, amount FROM orders ORDER BY order_id LIMIT 1');
    assert(big.rows[0].b === '10000000000000000.00', `numeric text ${big.rows[0].b}`);
    assert(big.fields[1].dataTypeModifier === ((18 << 16) | 2) + 4, `typmod ${big.fields[1].dataTypeModifier}`);
  });
  await check('error codes', async () => {
    try { await client.query('SELECT nope FROM orders'); throw new Error('no error'); }
    catch (e) { assert(e.code === '42703', `code ${e.code}`); }
    const r = await client.query('SELECT 1 AS one');
    assert(Number(r.rows[0].one) === 1, 'usable after error');
  });
  await client.end();
  if (failures) { console.log(`${failures} node check(s) failed`); process.exit(1); }
  console.log('all node-postgres checks passed');
}
main().catch((e) => { console.error(e); process.exit(1); });
