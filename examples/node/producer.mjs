// A blpopq producer in Node.js, following README "Wire format" alone, with the npm `redis`
// package (node-redis 4 or 5): enqueue tasks losslessly with FCALL blpopq_enqueue (Redis >= 7,
// a blpopq-daemon running there loads it), then wait for each task's outcome by its id.
//
//   npm install redis
//   REDIS_URL=redis://localhost:6379 BLPOPQ_NAMESPACE=blpopq node producer.mjs < tasks.jsonl
//
// stdin: one task per line, a JSON object with `tier` (vip, alto or comun) and at least
//        client, op, prev and difficulty (and nonce for verify); id is optional.
// stdout: {"enqueued": [ids]}, then one line per outcome as it arrives:
//        {"id", "status", "position", "hash"} for a result, {"id", "dead": reason} for a
//        dead letter.
// Exit 0 once every task has its outcome, 1 after TIMEOUT_S seconds (default 60) without.
import { createInterface } from 'node:readline';
import { createClient } from 'redis';

const TIERS = ['vip', 'alto', 'comun']; // the order workers serve them in
const namespace = process.env.BLPOPQ_NAMESPACE || 'blpopq';
const key = (name) => `{${namespace}}:${name}`;

// Each line's text is sent as it is (JSON.parse is only used to read the tier): a JS number
// cannot hold every 64-bit nonce exactly, and blpopq keeps the text byte for byte.
async function readTasks(input) {
  const byTier = new Map(TIERS.map((tier) => [tier, []]));
  for await (const line of createInterface({ input })) {
    if (!line.trim()) continue;
    const { tier } = JSON.parse(line);
    if (!byTier.has(tier)) throw new Error(`unknown tier ${JSON.stringify(tier)}: ${line}`);
    byTier.get(tier).push(line);
  }
  return byTier;
}

// One FCALL per tier, highest first; each lands whole or not at all, and returns the ids
// (the ones the tasks carry, or the ones blpopq gave them).
async function enqueue(client, byTier) {
  const ids = [];
  for (const [tier, tasks] of byTier) {
    if (tasks.length === 0) continue;
    const keys = [key(tier), key(`queued:${tier}`), key(`seq:${tier}`), key('tasks'),
      key('inflight')];
    ids.push(...await client.fCall('blpopq_enqueue', { keys, arguments: [tier, ...tasks] }));
  }
  return ids;
}

// Results are appended to {ns}:results; a retention trim or a drain removes from its head, so
// a reader keeps its place by index: results:written counts every result ever written, and
// the list's first element has index written - LLEN. Each read is one MULTI; a read that
// finds the head moved since the last one is discarded and made again from the right place.
class Results {
  constructor(client) {
    this.client = client;
    this.first = 0; // index of the list's head at the last read
    this.next = 0; // index of the first result not read yet
  }

  async head() {
    const [written, length] = await this.client.multi()
      .get(key('results:written')).lLen(key('results')).exec();
    return [written === null ? Number(length) : Number(written), Number(length)];
  }

  async start() { // from now on: results written before this call are not ours
    const [written, length] = await this.head();
    this.first = written - length;
    this.next = written;
  }

  async read() {
    const from = Math.max(this.next - this.first, 0);
    const [written, length, items] = await this.client.multi()
      .get(key('results:written')).lLen(key('results')).lRange(key('results'), from, -1).exec();
    const first = (written === null ? Number(length) : Number(written)) - Number(length);
    if (first !== this.first) { // trimmed meanwhile: read again from the right place
      this.first = first;
      return [];
    }
    this.next = first + from + items.length;
    return items.map((item) => JSON.parse(item));
  }
}

async function main() {
  const client = createClient({ url: process.env.REDIS_URL || 'redis://localhost:6379' });
  client.on('error', (error) => console.error(`redis: ${error.message}`));
  await client.connect();
  const tasks = await readTasks(process.stdin);
  const results = new Results(client);
  await results.start(); // before enqueueing, so that no outcome can come before it
  const ids = await enqueue(client, tasks);
  console.log(JSON.stringify({ enqueued: ids }));

  const waiting = new Set(ids);
  const deadline = Date.now() + 1000 * Number(process.env.TIMEOUT_S || 60);
  while (waiting.size > 0 && Date.now() < deadline) {
    for (const result of await results.read()) {
      if (!waiting.delete(result.id)) continue; // another producer's
      // Not the nonce: JSON.parse would round one above 2**53 (the hash is text, exact).
      const { id, status, position, hash } = result;
      console.log(JSON.stringify({ id, status, position, hash }));
    }
    // Dead letters are few: read them whole (a letter names the id where one could be read).
    for (const item of await client.lRange(key('dead'), 0, -1)) {
      const letter = JSON.parse(item);
      if (waiting.delete(letter.id)) {
        console.log(JSON.stringify({ id: letter.id, dead: letter.reason }));
      }
    }
    if (waiting.size > 0) await new Promise((resolve) => setTimeout(resolve, 100));
  }
  await client.quit();
  if (waiting.size > 0) {
    console.error(`timed out waiting for ${[...waiting].join(', ')}`);
    process.exitCode = 1;
  }
}

await main();
