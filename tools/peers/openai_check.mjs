// The official OpenAI client against a bignlp-serve: prints one JSON line with what it got.
//   node tools/peers/openai_check.mjs BASE_URL MODEL
// (BASE_URL like http://127.0.0.1:8000/v1). Runs a greedy completion, the same completion
// streamed, a streamed chat completion and the same chat without streaming, and models.list().
import OpenAI from "openai";

const [baseURL, model] = process.argv.slice(2);
const client = new OpenAI({ baseURL, apiKey: "unused", maxRetries: 0 });
const out = {};
const completion = await client.completions.create({ model, prompt: "The quick brown fox", max_tokens: 12, temperature: 0 });
out.completion = { text: completion.choices[0].text, finish_reason: completion.choices[0].finish_reason, usage: completion.usage };
let streamed = "";
let chunks = 0;
for await (const chunk of await client.completions.create({ model, prompt: "The quick brown fox", max_tokens: 12, temperature: 0, stream: true })) {
  streamed += chunk.choices[0]?.text ?? "";
  chunks += 1;
}
out.completion_stream = { text: streamed, chunks };
let chat = "";
let chatChunks = 0;
let finish = null;
for await (const chunk of await client.chat.completions.create({
  model, messages: [{ role: "user", content: "Tell me a story." }], max_tokens: 10, temperature: 0.8, seed: 7, stream: true })) {
  chat += chunk.choices[0]?.delta?.content ?? "";
  finish = chunk.choices[0]?.finish_reason ?? finish;
  chatChunks += 1;
}
out.chat_stream = { text: chat, chunks: chatChunks, finish_reason: finish };
const whole = await client.chat.completions.create({
  model, messages: [{ role: "user", content: "Tell me a story." }], max_tokens: 10, temperature: 0.8, seed: 7 });
out.chat = { text: whole.choices[0].message.content, role: whole.choices[0].message.role };
out.models = (await client.models.list()).data.map((m) => m.id);
try {
  await client.completions.create({ model: "no-such-model", prompt: "x" });
  out.unknown_model_status = 200;
} catch (e) {
  out.unknown_model_status = e.status;
}
console.log(JSON.stringify(out));
