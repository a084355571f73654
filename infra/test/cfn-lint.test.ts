import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import { synthesize } from './support';

const workDir = mkdtempSync(path.join(tmpdir(), 'kafka-lag-scaler-cfn-lint-'));
after(() => rmSync(workDir, { recursive: true, force: true }));

/** Runs cfn-lint (PyPI, pinned in requirements.txt) on one file. */
function cfnLint(file: string): { status: number | null; output: string } {
  const result = spawnSync('cfn-lint', ['--format', 'parseable', '--', file], {
    encoding: 'utf8',
  });
  if (result.error) {
    throw new Error(`cannot run cfn-lint (${result.error.message}): `
      + 'install it with `pip install -r infra/requirements.txt`');
  }
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}

describe('cfn-lint', () => {
  for (const environment of ['dev', 'prod']) {
    it(`finds nothing wrong in the ${environment} template`, () => {
      const file = path.join(workDir, `${environment}.template.json`);
      writeFileSync(file, JSON.stringify(synthesize(environment).template.toJSON(), null, 1));

      const { status, output } = cfnLint(file);

      assert.equal(status, 0, output);
    });
  }

  it('reports an error in a broken template, so a pass means something', () => {
    const file = path.join(workDir, 'broken.template.json');
    const template = synthesize('dev').template.toJSON();
    const fn = Object.values(template.Resources as Record<string, any>)
      .find((resource) => resource.Type === 'AWS::Lambda::Function');
    fn.Properties.Runtime = 'provided.al2099';
    writeFileSync(file, JSON.stringify(template));

    const { status, output } = cfnLint(file);

    assert.notEqual(status, 0);
    assert.match(output, /provided\.al2099/);
  });
});
