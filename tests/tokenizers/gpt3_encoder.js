// Reference GPT-2 encoder for the tokenizer tests: node gpt3_encoder.js <gpt-3-encoder dir> <file>
// reads one JSON string per line and prints the ids of each as one JSON array per line.
const path = require('path');
const fs = require('fs');
const enc = require(path.resolve(process.argv[2]));
const lines = fs.readFileSync(process.argv[3], 'utf-8').split('\n').filter(l => l.length > 0);
const out = lines.map(l => JSON.stringify(enc.encode(JSON.parse(l))));
process.stdout.write(out.join('\n') + '\n');
