// Reference regex splitter for the tokenizer tests: node regex_split.js <file>. The file's first
// line is a JSON string holding a JavaScript pattern (run with the `gu` flags); each further line
// is a JSON string, and the script prints the matches of each as one JSON array per line.
const fs = require('fs');
const lines = fs.readFileSync(process.argv[2], 'utf-8').split('\n').filter(l => l.length > 0);
const re = new RegExp(JSON.parse(lines[0]), 'gu');
const out = lines.slice(1).map(l => JSON.stringify(Array.from(JSON.parse(l).matchAll(re), m => m[0])));
process.stdout.write(out.join('\n') + '\n');
