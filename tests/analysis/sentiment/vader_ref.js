// Reference VADER for the sentiment tests: node vader_ref.js <file> reads one JSON string per line and
// prints the npm package's polarity_scores of each as one JSON object per line.
const fs = require('fs');
const path = require('path');
const vader = require(path.resolve(__dirname, '../../../node_modules/vader-sentiment'));
const lines = fs.readFileSync(process.argv[2], 'utf-8').split('\n').filter(l => l.length > 0);
const out = lines.map(l => JSON.stringify(vader.SentimentIntensityAnalyzer.polarity_scores(JSON.parse(l))));
process.stdout.write(out.join('\n') + '\n');
