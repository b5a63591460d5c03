// The official OpenAI Node client, unchanged, against a moe-cluster's OpenAI-compatible API.
// OpenAiNodeClientTest starts a cluster on loopback and runs: node client-test.mjs
// with OPENAI_BASE_URL (http://127.0.0.1:PORT/v1) and MOE_MODEL (the served model's name).
// Exits 0 after printing "ok" per check; any failed check throws (exit 1) with what differed.
import assert from 'node:assert/strict';
import OpenAI from 'openai';

const baseURL = process.env.OPENAI_BASE_URL;
const model = process.env.MOE_MODEL;
assert.ok(baseURL, 'OPENAI_BASE_URL is not set');
assert.ok(model, 'MOE_MODEL is not set');

// The API takes no key; the client insists on one. No retries, so that a 4xx/5xx shows at once.
const client = new OpenAI({ baseURL, apiKey: 'unused', maxRetries: 0, timeout: 120_000 });
const messages = [
  { role: 'system', content: 'Be brief.' },
  { role: 'user', content: 'Hello, cluster!' },
];
// ignore_eos (vLLM's extension) keeps a random-weight model going for exactly max_tokens.
const greedy = { temperature: 0, ignore_eos: true };

async function check(name, fn) {
  await fn();
  console.log(`ok ${name}`);
}

await check('models.list', async () => {
  const models = [];
  for await (const m of client.models.list()) {
    models.push(m.id);
  }
  assert.deepEqual(models, [model]);
  const one = await client.models.retrieve(model);
  assert.equal(one.id, model);
});

let chatText;
await check('chat.completions.create', async () => {
  const r = await client.chat.completions.create({ model, messages, max_tokens: 8, ...greedy });
  assert.equal(r.object, 'chat.completion');
  assert.match(r.id, /^chatcmpl-/);
  assert.equal(r.model, model);
  assert.equal(r.choices.length, 1);
  assert.equal(r.choices[0].message.role, 'assistant');
  assert.equal(r.choices[0].finish_reason, 'length');
  assert.equal(r.usage.completion_tokens, 8);
  assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + 8);
  chatText = r.choices[0].message.content;
  assert.equal(typeof chatText, 'string');
});

await check('chat.completions.create stream', async () => {
  const stream = await client.chat.completions.create({
    model, messages, max_completion_tokens: 8, stream: true, stream_options: { include_usage: true }, ...greedy,
  });
  let text = '';
  let role;
  let finish;
  let usage;
  for await (const chunk of stream) {
    assert.equal(chunk.object, 'chat.completion.chunk');
    if (chunk.usage) {
      usage = chunk.usage;
      assert.equal(chunk.choices.length, 0);
      continue;
    }
    const c = chunk.choices[0];
    role ??= c.delta.role;
    text += c.delta.content ?? '';
    finish = c.finish_reason ?? finish;
  }
  assert.equal(role, 'assistant');
  assert.equal(text, chatText, 'streamed deltas add up to the non-streamed message');
  assert.equal(finish, 'length');
  assert.equal(usage.completion_tokens, 8);
});

await check('chat.completions.stream helper', async () => {
  const runner = client.chat.completions.stream({ model, messages, max_tokens: 8, ...greedy });
  const final = await runner.finalChatCompletion();
  assert.equal(final.choices[0].message.content, chatText);
});

await check('chat n, seed, logprobs, stop', async () => {
  const params = {
    model, messages, max_tokens: 6, n: 2, seed: 7, temperature: 1.0, ignore_eos: true, logprobs: true, top_logprobs: 3,
    user: 'ignored',
  };
  const a = await client.chat.completions.create(params);
  const b = await client.chat.completions.create(params);
  assert.equal(a.choices.length, 2);
  assert.deepEqual(a.choices.map((c) => c.message.content), b.choices.map((c) => c.message.content));
  for (const c of a.choices) {
    assert.equal(c.logprobs.content.length, 6);
    for (const t of c.logprobs.content) {
      assert.ok(t.logprob <= 0);
      assert.equal(t.top_logprobs.length, 3);
      assert.ok(t.top_logprobs[0].logprob >= t.logprob);
    }
  }
  const stop = chatText.slice(2, 4);
  if (stop.length === 2 && !chatText.slice(0, 2).includes(stop)) {
    const stopped = await client.chat.completions.create({ model, messages, max_tokens: 8, stop: [stop], ...greedy });
    assert.equal(stopped.choices[0].message.content, chatText.slice(0, chatText.indexOf(stop)));
    assert.equal(stopped.choices[0].finish_reason, 'stop');
  }
});

let completionText;
await check('completions.create', async () => {
  const r = await client.completions.create({ model, prompt: 'The quick brown fox', max_tokens: 8, logprobs: 2, ...greedy });
  assert.equal(r.object, 'text_completion');
  assert.match(r.id, /^cmpl-/);
  completionText = r.choices[0].text;
  assert.equal(r.choices[0].logprobs.tokens.length, 8);
  assert.equal(r.choices[0].logprobs.token_logprobs.length, 8);
  assert.equal(r.usage.completion_tokens, 8);
});

await check('completions.create stream', async () => {
  const stream = await client.completions.create({
    model, prompt: 'The quick brown fox', max_tokens: 8, stream: true, stream_options: { include_usage: true }, ...greedy,
  });
  let text = '';
  let usage;
  for await (const chunk of stream) {
    if (chunk.usage) {
      usage = chunk.usage;
      continue;
    }
    text += chunk.choices[0].text;
  }
  assert.equal(text, completionText);
  assert.equal(usage.completion_tokens, 8);
});

await check('completions.create with token ids', async () => {
  const r = await client.completions.create({ model, prompt: [1, 72, 101, 108, 108, 111], max_tokens: 4, ...greedy });
  assert.equal(r.usage.prompt_tokens, 6);
  assert.equal(r.usage.completion_tokens, 4);
});

await check('errors', async () => {
  await assert.rejects(
    client.chat.completions.create({ model, messages, temperature: -1 }),
    (e) => e instanceof OpenAI.BadRequestError && e.status === 400 && e.param === 'temperature'
      && e.type === 'invalid_request_error',
  );
  await assert.rejects(
    client.chat.completions.create({ model, messages, logprobs: true, top_logprobs: 30 }),
    (e) => e instanceof OpenAI.BadRequestError && e.param === 'top_logprobs',
  );
  await assert.rejects(
    client.chat.completions.create({ model: 'no-such-model', messages }),
    (e) => e instanceof OpenAI.NotFoundError && e.code === 'model_not_found',
  );
  await assert.rejects(
    client.completions.create({ model, prompt: [1, 100000] }),
    (e) => e instanceof OpenAI.BadRequestError && e.param === 'prompt',
  );
});

console.log('all checks passed');
