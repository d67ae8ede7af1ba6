// Closed-loop gRPC load generator: N concurrent streams on one HTTP/2 connection, each
// sending the next call as soon as the previous one answers. Prints one JSON object.
'use strict';
const path = require('path');
const grpc = require('@grpc/grpc-js');
const loader = require('@grpc/proto-loader');

function parseArgs(argv) {
  const args = {};
  for (let i = 0; i < argv.length; i += 2) args[argv[i].replace(/^--/, '')] = argv[i + 1];
  return args;
}

const a = parseArgs(process.argv.slice(2));
const includeDirs = a.include.split(':');
const definition = loader.loadSync(a.proto, {
  keepCase: true, longs: String, enums: String, defaults: false, oneofs: true, includeDirs,
});
const Service = grpc.loadPackageDefinition(definition).rewards.v1[a.service];
const client = new Service(a.target, grpc.credentials.createInsecure());
const metadata = new grpc.Metadata();
if (a.key) metadata.set('authorization', `Bearer ${a.key}`);
const template = JSON.parse(a.request || '{}');
const concurrency = Number(a.concurrency || 1);
const durationMs = Number(a.duration || 5) * 1000;
const warmupMs = Number(a.warmup || 1) * 1000;
const uniqueField = a.unique || '';
let sequence = 0;

const latencies = [];
const errors = {};
let measuring = false;
let stopAt = 0;

function nextRequest() {
  if (!uniqueField) return template;
  sequence += 1;
  return { ...template, [uniqueField]: `${a.prefix || 'bench'}-${process.pid}-${sequence}` };
}

function loop(done) {
  const started = process.hrtime.bigint();
  client[a.method](nextRequest(), metadata, (err) => {
    const elapsed = Number(process.hrtime.bigint() - started) / 1e6;
    if (measuring) {
      if (err) errors[grpc.status[err.code]] = (errors[grpc.status[err.code]] || 0) + 1;
      else latencies.push(elapsed);
    }
    if (Date.now() < stopAt) loop(done); else done();
  });
}

function percentile(sorted, p) {
  if (!sorted.length) return null;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

client.waitForReady(Date.now() + 10000, (err) => {
  if (err) { console.error(err.message); process.exit(2); }
  stopAt = Date.now() + warmupMs + durationMs;
  let measureStart = 0;
  let cpuStart = null;
  setTimeout(() => { measuring = true; measureStart = Date.now(); cpuStart = process.cpuUsage(); },
    warmupMs);
  let running = concurrency;
  for (let i = 0; i < concurrency; i++) {
    loop(() => {
      running -= 1;
      if (running) return;
      const seconds = (Date.now() - measureStart) / 1000;
      const cpu = process.cpuUsage(cpuStart);
      latencies.sort((x, y) => x - y);
      console.log(JSON.stringify({
        ok: latencies.length,
        errors,
        rps: latencies.length / seconds,
        p50_ms: percentile(latencies, 50),
        p99_ms: percentile(latencies, 99),
        client_cpu_share: (cpu.user + cpu.system) / 1e6 / seconds,
      }));
      client.close();
    });
  }
});
