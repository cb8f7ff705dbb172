#!/usr/bin/env node
// Reference GPT-2 encoder for the tests and benchmarks (js-tiktoken, installed by
// scripts/fetch_demo_data.sh --peers).
//   node tiktoken_encode.js encode < texts.json     -> JSON list of id lists (literal
//                                                       "<|endoftext|>" is plain text)
//   node tiktoken_encode.js bench FILE REPEATS        -> JSON {tokens, seconds, cpu_seconds} for
//                                                       encoding FILE REPEATS times in line-aligned
//                                                       ~100 kB chunks
'use strict';
const path = require('path');
const fs = require('fs');
const { getEncoding } = require(path.join(__dirname, 'node_modules', 'js-tiktoken'));
const enc = getEncoding('gpt2');
const mode = process.argv[2];
if (mode === 'encode') {
  const texts = JSON.parse(fs.readFileSync(0, 'utf8'));
  process.stdout.write(JSON.stringify(texts.map((t) => enc.encode(t, [], []))));
} else if (mode === 'bench') {
  const text = fs.readFileSync(process.argv[3], 'utf8');
  const repeats = parseInt(process.argv[4] || '1', 10);
  const chunks = [];
  for (let i = 0; i < text.length;) {
    let j = Math.min(text.length, i + 100000);
    const nl = text.indexOf('\n', j);
    j = nl < 0 ? text.length : nl + 1;
    chunks.push(text.slice(i, j));
    i = j;
  }
  enc.encode(chunks[0], [], []);  // warm up
  let tokens = 0;
  const t0 = process.hrtime.bigint();
  const c0 = process.cpuUsage();
  for (let r = 0; r < repeats; ++r) for (const c of chunks) tokens += enc.encode(c, [], []).length;
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(c0);
  const cpu_seconds = (cpu.user + cpu.system) / 1e6;
  process.stdout.write(JSON.stringify({ tokens, seconds, cpu_seconds, bytes: Buffer.byteLength(text) * repeats }));
} else {
  process.stderr.write('usage: tiktoken_encode.js encode|bench ...\n');
  process.exit(2);
}
