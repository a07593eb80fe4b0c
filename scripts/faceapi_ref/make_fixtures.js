// Reference outputs of face-api's own networks for tests/unit/test_nn.c.
//
// Runs @vladmandic/face-api 1.7.15 on TF.js's pure-JS CPU backend (the versions
// pinned in package-lock.json, installed under build/faceapi-ref by `make test`).
// For every case, scripts/make_nn_fixtures.py has written NAME.png (what the C test
// decodes) and NAME.rgb (the same pixels, raw RGB bytes); this writes NAME.txt (the
// recipe test_nn.c reads) and NAME.out (the outputs, float32 little-endian).
//   node scripts/faceapi_ref/make_fixtures.js FIXTURE_DIR MODEL_DIR
'use strict';
const fs = require('fs');
const path = require('path');
const tf = require('@tensorflow/tfjs');
const faceapi = require('@vladmandic/face-api/dist/face-api.node-wasm.js');

const [out, models] = process.argv.slice(2);
// fixture, network, model file, input size, outputs in our order
const CASES = [
  ['faceapi-age_gender', faceapi.nets.ageGenderNet, 'age_gender_model', 112,
    (net, x) => { const r = net.forwardInput(x); return [r.age.reshape([1, 1]), r.gender]; }],
  ['faceapi-recognition', faceapi.nets.faceRecognitionNet, 'face_recognition_model', 150,
    (net, x) => [net.forwardInput(x)]],
];

async function main() {
  await tf.setBackend('cpu');
  for (const [name, net, model, size, run] of CASES) {
    const manifestPath = path.join(models, `${model}-weights_manifest.json`);
    const manifest = JSON.parse(fs.readFileSync(manifestPath, 'utf8'));
    const load = tf.io.weightsLoaderFactory((files) => Promise.all(files.map((f) => {
      const b = fs.readFileSync(f);
      return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength);
    })));
    net.loadFromWeightMap(await load(manifest, models + '/'));
    const rgb = fs.readFileSync(path.join(out, `${name}.rgb`));
    if (rgb.length !== size * size * 3) throw new Error(`${name}.rgb: ${rgb.length} bytes, expected ${size * size * 3}`);
    const input = await faceapi.toNetInput(tf.tensor4d(Float32Array.from(rgb), [1, size, size, 3]));
    const outs = run(net, input).map((t) => t.dataSync());
    let recipe = `model ${manifestPath}\nimage ${name}.png\nlayout nhwc\nscale 1.0\noffset 0.0\n`;
    for (const o of outs) {
      const peak = o.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
      recipe += `output ${o.length} ${(2e-3 * Math.max(1, peak)).toPrecision(6)}\n`;
    }
    fs.writeFileSync(path.join(out, `${name}.txt`), recipe);
    const all = new Float32Array(outs.reduce((n, o) => n + o.length, 0));
    let at = 0;
    for (const o of outs) { all.set(o, at); at += o.length; }
    fs.writeFileSync(path.join(out, `${name}.out`), Buffer.from(all.buffer));
    console.log(name, outs.map((o) => o.length));
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
