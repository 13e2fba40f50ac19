#!/usr/bin/env node
/*
 * gen_json_bodies.js: the spans of gen_bodies.js encoded as OTLP/JSON by the real
 * OpenTelemetry JS SDK (JsonTraceSerializer from @opentelemetry/otlp-transformer), for
 * measuring the JSON decoder (json_arena.c) and the receiver's memory with large bodies.
 *
 *   node tests/bench/gen_json_bodies.js <outdir> [big_spans]
 *
 * Writes t10.json, t100.json, t1000.json, tmix100.json and, with big_spans, t<big_spans>.json
 * (30000 spans make about 20 MB).
 */
'use strict';

const fs = require('fs');
const path = require('path');
const { createRequire } = require('module');
const { makeSpans, makeMixSpans } = require('./gen_bodies.js');

const jsRequire = createRequire(path.join(__dirname, '..', 'e2e', 'js', 'package.json'));
const { JsonTraceSerializer } = jsRequire('@opentelemetry/otlp-transformer');

function main() {
    const out = process.argv[2];
    if (!out) {
        process.stderr.write('usage: node gen_json_bodies.js <outdir> [big_spans]\n');
        process.exit(2);
    }
    fs.mkdirSync(out, { recursive: true });
    const write = (name, spans) => {
        const buf = Buffer.from(JsonTraceSerializer.serializeRequest(spans));
        fs.writeFileSync(path.join(out, name), buf);
        process.stdout.write(`${name} ${buf.length} bytes, ${spans.length} spans\n`);
    };
    for (const n of [10, 100, 1000]) {
        write(`t${n}.json`, makeSpans(n));
    }
    write('tmix100.json', makeMixSpans(10).spans);
    const big = Number(process.argv[3] || 0);
    if (big > 0) {
        write(`t${big}.json`, makeSpans(big));
    }
}

main();
