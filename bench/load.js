// Closed-loop gRPC load generator: N concurrent streams spread over C HTTP/2 connections (one
// by default), each sending the next call as soon as the previous one answers. Prints one JSON
// object; writes "measuring" and "stopped" to stderr when the measured window opens and
// closes, so the caller can read the server's CPU time over that window.
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
const connections = Number(a.connections || 1);
// A local subchannel pool per client: one connection each, not one shared by all.
const clients = Array.from({ length: connections }, () =>
  new Service(a.target, grpc.credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 }));
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

function loop(client, done) {
  const started = process.hrtime.bigint();
  client[a.method](nextRequest(), metadata, (err) => {
    const elapsed = Number(process.hrtime.bigint() - started) / 1e6;
    if (measuring) {
      if (err) errors[grpc.status[err.code]] = (errors[grpc.status[err.code]] || 0) + 1;
      else latencies.push(elapsed);
    }
    if (Date.now() < stopAt) loop(client, done); else done();
  });
}

function percentile(sorted, p) {
  if (!sorted.length) return null;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

function allReady(callback) {
  let waiting = clients.length;
  for (const client of clients) {
    client.waitForReady(Date.now() + 10000, (err) => {
      if (err) { console.error(err.message); process.exit(2); }
      waiting -= 1;
      if (!waiting) callback();
    });
  }
}

allReady(() => {
  stopAt = Date.now() + warmupMs + durationMs;
  let measureStart = 0;
  let cpuStart = null;
  setTimeout(() => {
    measuring = true;
    measureStart = Date.now();
    cpuStart = process.cpuUsage();
    process.stderr.write('measuring\n');
  }, warmupMs);
  let running = concurrency;
  for (let i = 0; i < concurrency; i++) {
    loop(clients[i % connections], () => {
      running -= 1;
      if (running) return;
      process.stderr.write('stopped\n');
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
      for (const client of clients) client.close();
    });
  }
});
