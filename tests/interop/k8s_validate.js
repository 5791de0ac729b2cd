// Validates Kubernetes objects against the API's OpenAPI schemas (the
// kubernetes-models package, pinned in package.json): the client-side check
// `kubectl apply --dry-run=client` would make, without a cluster.
//   node k8s_validate.js OBJECTS.json   (a JSON list of objects)
// Prints one line per invalid object and exits 1, or prints "N valid".
'use strict';
const fs = require('fs');

function modelFor(apiVersion, kind) {
  const [group, version] = apiVersion.includes('/') ? apiVersion.split('/') : [null, apiVersion];
  const folder = group ? `${group}/${version}` : version;
  let models;
  try {
    models = require(`kubernetes-models/${folder}`);
  } catch (e) {
    return null;
  }
  return models[kind] || null;
}

const objects = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
let failed = 0;
for (const object of objects) {
  const name = `${object.kind} ${object.metadata && object.metadata.name}`;
  const Model = modelFor(object.apiVersion || '', object.kind || '');
  if (!Model) {
    console.log(`${name}: no schema for apiVersion ${object.apiVersion} kind ${object.kind}`);
    failed++;
    continue;
  }
  try {
    new Model(object).validate();
  } catch (e) {
    console.log(`${name}: ${e.message}`);
    failed++;
  }
}
if (failed) process.exit(1);
console.log(`${objects.length} valid`);
