'use strict';
// The gateway's MLP format (api/inference/registry.py, "nexpo-mlp/1") read from a safetensors
// file in JS, and its forward pass: one nexpo matmul per layer (the addon, on the libuv pool),
// then the bias and the activation. The file is checked like any input: a bad one is an error
// that says what is wrong, never a wrong answer.

const fs = require('node:fs');

// The registry's activations but gelu (its exact erf form has no Math counterpart here).
const ACTIVATIONS = new Set([null, 'relu', 'tanh', 'sigmoid', 'softmax']);
const MAX_HEADER = 1 << 20;

class ModelError extends Error {}

function parseSafetensors(bytes, source) {
  const fail = (why) => { throw new ModelError(`${source}: ${why}`); };
  if (bytes.length < 8) fail('shorter than a safetensors header');
  const headerLength = Number(bytes.readBigUInt64LE(0));
  if (headerLength > MAX_HEADER || 8 + headerLength > bytes.length) fail(`header length ${headerLength} out of range`);
  let header;
  try {
    header = JSON.parse(bytes.subarray(8, 8 + headerLength).toString('utf8'));
  } catch (err) {
    fail(`header is not JSON (${err.message})`);
  }
  if (typeof header !== 'object' || header === null) fail('header is not an object');
  const dataStart = 8 + headerLength;
  const tensors = new Map();
  for (const [name, spec] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const { dtype, shape, data_offsets: offsets } = spec ?? {};
    if (dtype !== 'F32') fail(`${name}: dtype ${dtype}, want F32`);
    if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d > 0)) fail(`${name}: bad shape`);
    const count = shape.reduce((a, b) => a * b, 1);
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(Number.isInteger) ||
        offsets[0] < 0 || offsets[1] - offsets[0] !== 4 * count || dataStart + offsets[1] > bytes.length) {
      fail(`${name}: data_offsets do not fit the shape and the file`);
    }
    // A copy: aligned for Float32Array, and independent of the file's buffer.
    const data = new Float32Array(count);
    Buffer.from(data.buffer).set(bytes.subarray(dataStart + offsets[0], dataStart + offsets[1]));
    tensors.set(name, { shape, data });
  }
  return { tensors, metadata: header.__metadata__ ?? {} };
}

function jsonList(metadata, key, source) {
  try {
    const value = JSON.parse(metadata[key]);
    if (Array.isArray(value)) return value;
  } catch { /* reported below */ }
  throw new ModelError(`${source}: metadata ${key} must be a JSON list`);
}

/** The model in a "nexpo-mlp/1" safetensors file: layers, labels, and forward(). */
function loadModel(file, nexpo) {
  const { tensors, metadata } = parseSafetensors(fs.readFileSync(file), file);
  if (metadata.format !== 'nexpo-mlp/1') throw new ModelError(`${file}: format ${metadata.format}, want nexpo-mlp/1`);
  const activations = jsonList(metadata, 'activations', file);
  const labels = jsonList(metadata, 'labels', file).map(String);
  const layers = activations.map((activation, i) => {
    const weight = tensors.get(`layers.${i}.weight`);
    const bias = tensors.get(`layers.${i}.bias`);
    if (!weight || !bias || weight.shape.length !== 2 || bias.shape.length !== 1 || bias.shape[0] !== weight.shape[1]) {
      throw new ModelError(`${file}: layer ${i} needs a 2-D weight and a bias as wide as its outputs`);
    }
    if (!ACTIVATIONS.has(activation)) throw new ModelError(`${file}: layer ${i}: activation ${activation} is not supported here`);
    return { inputs: weight.shape[0], outputs: weight.shape[1], weight: weight.data, bias: bias.data, activation };
  });
  if (layers.length === 0 || activations.at(-1) !== 'softmax') throw new ModelError(`${file}: the last layer must be softmax`);
  for (let i = 1; i < layers.length; i++) {
    if (layers[i].inputs !== layers[i - 1].outputs) throw new ModelError(`${file}: layer ${i} does not take layer ${i - 1}'s outputs`);
  }
  if (layers.at(-1).outputs !== labels.length) throw new ModelError(`${file}: ${labels.length} labels for ${layers.at(-1).outputs} outputs`);

  /** Class probabilities of a batch (rows x inputs, row-major Float32Array). */
  async function forward(x, rows) {
    let out = x;
    for (const layer of layers) {
      out = await nexpo.matmulAsync(out, rows, layer.inputs, layer.weight, layer.outputs);
      activate(out, rows, layer);
    }
    return out;
  }

  return { inputWidth: layers[0].inputs, labels, layers, description: metadata.description ?? '', forward };
}

function activate(out, rows, { outputs, bias, activation }) {
  for (let r = 0; r < rows; r++) {
    const row = out.subarray(r * outputs, (r + 1) * outputs);
    for (let j = 0; j < outputs; j++) row[j] += bias[j];
    switch (activation) {
      case 'relu': for (let j = 0; j < outputs; j++) row[j] = Math.max(0, row[j]); break;
      case 'tanh': for (let j = 0; j < outputs; j++) row[j] = Math.tanh(row[j]); break;
      case 'sigmoid': for (let j = 0; j < outputs; j++) row[j] = 1 / (1 + Math.exp(-row[j])); break;
      case 'softmax': {
        let max = -Infinity;
        for (let j = 0; j < outputs; j++) max = Math.max(max, row[j]);
        let sum = 0;
        for (let j = 0; j < outputs; j++) { row[j] = Math.exp(row[j] - max); sum += row[j]; }
        for (let j = 0; j < outputs; j++) row[j] /= sum;
        break;
      }
      default: break; // null: linear
    }
  }
}

module.exports = { loadModel, parseSafetensors, ModelError };
