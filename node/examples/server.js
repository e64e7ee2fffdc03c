'use strict';
// An Express server whose routes call nexpo's Node addon, off the event loop:
//   POST /hash   any body (up to 16 MiB) -> {"sha256": hex, "bytes": n}       (sha256Async)
//   POST /infer  {"inputs": [[64 pixels 0..16], ...]} -> {"labels", "probabilities"}: the
//                gateway's bundled digits MLP (api/models/digits.safetensors), one matmulAsync
//                per layer (model.js)
//   GET  /healthz
// Errors are 4xx application/problem+json bodies, as the Python gateway's.
// Run: node server.js  (NEXPO_HOST, NEXPO_PORT; NEXPO_MODEL: another nexpo-mlp/1 file).

const path = require('node:path');
const express = require('express');
const { loadModel } = require('./model');

// In an application: require('nexpo'). Here, the package of this repository.
function loadNexpo() {
  try {
    return require('nexpo');
  } catch {
    return require('..');
  }
}

const MAX_BATCH = 1024;
const DEFAULT_MODEL = path.resolve(__dirname, '..', '..', 'api', 'models', 'digits.safetensors');

class Problem extends Error {
  constructor(status, title, detail) {
    super(detail);
    this.status = status;
    this.title = title;
  }
}

/** {"inputs": [[...], ...]} -> a row-major Float32Array, every value checked. */
function readInputs(body, width) {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new Problem(422, 'Invalid input', 'the body must be a JSON object {"inputs": [[...], ...]}');
  }
  const { inputs } = body;
  if (!Array.isArray(inputs) || inputs.length === 0 || inputs.length > MAX_BATCH) {
    throw new Problem(422, 'Invalid input', `inputs must be a list of 1..${MAX_BATCH} rows`);
  }
  const x = new Float32Array(inputs.length * width);
  inputs.forEach((row, r) => {
    if (!Array.isArray(row) || row.length !== width) {
      throw new Problem(422, 'Invalid input', `inputs[${r}] must be a list of ${width} numbers`);
    }
    row.forEach((v, c) => {
      if (typeof v !== 'number' || !Number.isFinite(v)) {
        throw new Problem(422, 'Invalid input', `inputs[${r}][${c}] must be a finite number`);
      }
      x[r * width + c] = v;
    });
  });
  return x;
}

function createApp({ nexpo = loadNexpo(), modelFile = process.env.NEXPO_MODEL || DEFAULT_MODEL } = {}) {
  const model = loadModel(modelFile, nexpo);
  const app = express();
  app.disable('x-powered-by');

  app.get('/healthz', (req, res) => {
    res.json({ status: 'ok', model: path.basename(modelFile, '.safetensors'), nexpo: nexpo.info().version });
  });

  app.post('/hash', express.raw({ type: () => true, limit: '16mb' }), async (req, res, next) => {
    try {
      const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
      const digest = await nexpo.sha256Async(body);
      res.json({ sha256: Buffer.from(digest).toString('hex'), bytes: body.length });
    } catch (err) {
      next(err);
    }
  });

  app.post('/infer', express.json({ limit: '4mb' }), async (req, res, next) => {
    try {
      const x = readInputs(req.body, model.inputWidth);
      const rows = x.length / model.inputWidth;
      const probs = await model.forward(x, rows);
      const width = model.labels.length;
      const probabilities = [];
      const labels = [];
      for (let r = 0; r < rows; r++) {
        const row = Array.from(probs.subarray(r * width, (r + 1) * width));
        probabilities.push(row);
        labels.push(model.labels[row.indexOf(Math.max(...row))]);
      }
      res.json({ model: path.basename(modelFile, '.safetensors'), labels, probabilities });
    } catch (err) {
      next(err);
    }
  });

  app.use((req, res) => {
    problem(res, new Problem(404, 'Not Found', `no route for ${req.method} ${req.path}`));
  });

  // Body parser errors carry a 4xx status (malformed JSON 400, too large 413); anything else is
  // a 500 without internals.
  app.use((err, req, res, next) => { // eslint-disable-line no-unused-vars
    if (err instanceof Problem) return problem(res, err);
    const status = Number.isInteger(err.status) && err.status >= 400 && err.status < 500 ? err.status : 500;
    const title = status === 500 ? 'Internal Server Error' : (err.type === 'entity.too.large' ? 'Payload Too Large' : 'Bad Request');
    if (status === 500) console.error(err);
    return problem(res, new Problem(status, title, status === 500 ? 'the server failed to handle the request' : err.message));
  });
  return app;
}

function problem(res, err) {
  res.status(err.status).type('application/problem+json').send(JSON.stringify({
    type: 'about:blank', title: err.title, status: err.status, detail: err.message,
  }));
}

/** Listens on host:port (port 0: a free one); resolves with the http.Server once listening. */
function start({ host = '127.0.0.1', port = 0, ...options } = {}) {
  const app = createApp(options);
  return new Promise((resolve, reject) => {
    const server = app.listen(port, host, () => resolve(server));
    server.on('error', reject);
  });
}

if (require.main === module) {
  start({ host: process.env.NEXPO_HOST || '127.0.0.1', port: Number(process.env.NEXPO_PORT || 3000) })
    .then((server) => {
      const { address, port } = server.address();
      console.log(`nexpo example server on http://${address}:${port}`);
    })
    .catch((err) => {
      console.error(err.message);
      process.exit(1);
    });
}

module.exports = { createApp, start, readInputs };
