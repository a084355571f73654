// Checks that the function's asset in a synthesized cloud assembly holds a `bootstrap`
// executable built for the architecture the template declares.
// Usage: node scripts/check-bundle.mjs TEMPLATE ASSEMBLY_DIR
import { closeSync, openSync, readSync, readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';

const [templatePath, assemblyDir] = process.argv.slice(2);
const template = JSON.parse(readFileSync(templatePath, 'utf8'));

/** ELF e_machine values. */
const MACHINES = { arm64: 0xb7, x86_64: 0x3e };

const functions = Object.entries(template.Resources)
  .filter(([, resource]) => resource.Type === 'AWS::Lambda::Function');
if (functions.length !== 1) {
  throw new Error(`expected one function in ${templatePath}, found ${functions.length}`);
}
const [[logicalId, fn]] = functions;
const architecture = fn.Properties.Architectures[0];
const assetPath = fn.Metadata?.['aws:asset:path'];
if (!assetPath) {
  throw new Error(`${logicalId} has no aws:asset:path metadata: was bundling skipped?`);
}

const assetDir = path.join(assemblyDir, assetPath);
const files = readdirSync(assetDir);
if (files.length !== 1 || files[0] !== 'bootstrap') {
  throw new Error(`${assetDir} should hold only \`bootstrap\`, holds ${files.join(', ')}`);
}

const header = Buffer.alloc(20);
const fd = openSync(path.join(assetDir, 'bootstrap'), 'r');
readSync(fd, header, 0, 20, 0);
closeSync(fd);
if (header.toString('latin1', 0, 4) !== '\x7fELF') {
  throw new Error(`${assetDir}/bootstrap is not an ELF executable`);
}
const machine = header.readUInt16LE(18);
if (machine !== MACHINES[architecture]) {
  throw new Error(`${assetDir}/bootstrap is built for ELF machine 0x${machine.toString(16)}, `
    + `but the function declares ${architecture}`);
}
console.log(`${assetDir}/bootstrap: ELF for ${architecture}, as ${logicalId} declares`);
