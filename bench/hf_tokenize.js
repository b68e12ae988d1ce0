// Baseline for bench_tokenize: Hugging Face `tokenizers` (Rust, through its npm Node binding) encoding
// the same texts, one thread (TOKENIZERS_PARALLELISM=false), the load not timed.
//   node hf_tokenize.js <tokenizer.json> <texts.jsonl>   -> {"seconds": s, "tokens": n}
process.env.TOKENIZERS_PARALLELISM = 'false';
const fs = require('fs');
const path = require('path');
const { Tokenizer } = require(path.resolve(__dirname, '../node_modules/tokenizers'));

(async () => {
  const tok = Tokenizer.fromFile(process.argv[2]);
  const texts = fs.readFileSync(process.argv[3], 'utf-8').split('\n').filter(l => l.length > 0).map(l => JSON.parse(l));
  await tok.encodeBatch(texts.slice(0, 100), { addSpecialTokens: false });  // warm up
  const t0 = process.hrtime.bigint();
  const enc = await tok.encodeBatch(texts, { addSpecialTokens: false });
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const tokens = enc.reduce((n, e) => n + e.getIds().length, 0);
  process.stdout.write(JSON.stringify({ seconds, tokens }) + '\n');
})().catch(e => { process.stderr.write(String(e && e.stack || e) + '\n'); process.exit(1); });
