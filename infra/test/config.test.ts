import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  ConfigError,
  EnvironmentSettings,
  resolveEnvironment,
  validateConfig,
} from '../lib/config';
import { ENVIRONMENTS, loadEnvironment } from '../lib/environments';

const MINIMAL: EnvironmentSettings = {
  asgName: 'consumers',
  prometheusEndpoint: 'http://prometheus:9090',
  prometheusQuery: 'sum(kafka_consumergroup_lag)',
};

/** The problems reported for the minimal settings with `overrides` applied. */
function problemsWith(overrides: Partial<EnvironmentSettings>): string[] {
  return validateConfig({ ...resolveEnvironment('test', MINIMAL), ...overrides });
}

function assertOneProblem(overrides: Partial<EnvironmentSettings>, expected: RegExp): void {
  const problems = problemsWith(overrides);
  assert.equal(problems.length, 1, `expected one problem, got ${JSON.stringify(problems)}`);
  assert.match(problems[0], expected);
}

describe('environments', () => {
  it('all resolve to a valid configuration', () => {
    for (const name of Object.keys(ENVIRONMENTS)) {
      assert.deepEqual(validateConfig(loadEnvironment(name)), [], name);
    }
  });

  it('include dev and prod', () => {
    assert.equal(loadEnvironment('dev').name, 'dev');
    assert.equal(loadEnvironment('prod').name, 'prod');
  });

  it('name the unknown environment and list the known ones', () => {
    assert.throws(() => loadEnvironment('qa'), (error: unknown) => {
      assert.ok(error instanceof ConfigError);
      assert.match(error.message, /environment `qa`/);
      assert.match(error.message, /one of `dev`, `prod`/);
      assert.match(error.message, /-c env=NAME/);
      return true;
    });
  });

  it('do not treat inherited object keys as environments', () => {
    assert.throws(() => loadEnvironment('toString'), ConfigError);
  });
});

describe('defaults', () => {
  it('are the function\'s own defaults and the design\'s deployment defaults', () => {
    const config = resolveEnvironment('test', MINIMAL);

    assert.equal(config.highLagThreshold, 10_000_000);
    assert.equal(config.lowLagThreshold, 100_000);
    assert.equal(config.scaleOutCapacity, 4);
    assert.equal(config.scaleInCapacity, 0);
    assert.equal(config.lagAggregation, 'max');
    assert.equal(config.dryRun, false);
    assert.equal(config.prometheusTimeoutSeconds, 10);
    assert.equal(config.webhookUrl, '');
    assert.equal(config.schedule, 'rate(5 minutes)');
    assert.equal(config.architecture, 'arm64');
    assert.equal(config.memoryMb, 128);
    assert.equal(config.timeoutSeconds, 60);
    assert.equal(config.logRetentionDays, 30);
    assert.equal(config.scaleOutSustain, '0');
    assert.equal(config.scaleInSustain, '0');
    assert.equal(config.webhookFormat, 'auto');
  });

  it('give way to the environment\'s settings', () => {
    const config = resolveEnvironment('test', { ...MINIMAL, scaleOutCapacity: 8 });

    assert.equal(config.scaleOutCapacity, 8);
  });
});

describe('validation', () => {
  it('refuses a high threshold below the low one, quoting both', () => {
    assertOneProblem({ highLagThreshold: 5, lowLagThreshold: 100 },
      /^highLagThreshold `5` must be >= lowLagThreshold `100`$/);
  });

  it('refuses a low threshold of 0, which would never return the group', () => {
    assertOneProblem({ lowLagThreshold: 0 }, /^lowLagThreshold `0` must be a positive integer/);
  });

  it('accepts equal thresholds', () => {
    assert.deepEqual(problemsWith({ highLagThreshold: 100, lowLagThreshold: 100 }), []);
  });

  it('refuses a scale-out capacity that is not above the scale-in capacity', () => {
    assertOneProblem({ scaleOutCapacity: 2, scaleInCapacity: 2 },
      /^scaleOutCapacity `2` must be > scaleInCapacity `2`$/);
  });

  it('refuses fractional and negative numbers', () => {
    assertOneProblem({ lowLagThreshold: 1.5 }, /^lowLagThreshold `1.5` must be a positive/);
    assertOneProblem({ scaleInCapacity: -1 }, /^scaleInCapacity `-1` must be an integer/);
  });

  it('refuses a Lambda timeout that does not exceed the function\'s budget', () => {
    assertOneProblem({ timeoutSeconds: 30 },
      /^timeoutSeconds `30` must be an integer from 31 to 900, longer than the function's/);
    assert.deepEqual(problemsWith({ timeoutSeconds: 31 }), []);
  });

  it('refuses a Prometheus timeout that does not fit in the budget', () => {
    assertOneProblem({ prometheusTimeoutSeconds: 21 },
      /^prometheusTimeoutSeconds `21` must be an integer from 1 to 20/);
    assert.deepEqual(problemsWith({ prometheusTimeoutSeconds: 20 }), []);
  });

  it('refuses a schedule EventBridge would reject, saying what is valid', () => {
    assertOneProblem({ schedule: 'rate(1 minutes)' },
      /^schedule `rate\(1 minutes\)` must be `rate\(1 minute\|hour\|day\)`/);
  });

  it('refuses a group name with a wildcard, which would widen the grant', () => {
    assertOneProblem({ asgName: 'kafka-*' }, /^asgName `kafka-\*` must be .* without .*`\*`/);
  });

  it('refuses a blank query and an endpoint without a scheme', () => {
    assertOneProblem({ prometheusQuery: '  ' }, /^prometheusQuery/);
    assertOneProblem({ prometheusEndpoint: 'prometheus:9090' },
      /^prometheusEndpoint `prometheus:9090` must be an http/);
  });

  it('refuses unknown architectures, aggregations and retention periods', () => {
    assertOneProblem({ architecture: 'arm' as never }, /^architecture `arm` must be `arm64`/);
    assertOneProblem({ lagAggregation: 'avg' as never }, /^lagAggregation `avg` must be/);
    assertOneProblem({ logRetentionDays: 31 }, /^logRetentionDays `31` must be one of 1, 3/);
  });

  it('accepts the sustain windows the function accepts', () => {
    for (const window of ['0', '30s', '10m', '1h30m', '91h40m']) {
      assert.deepEqual(problemsWith({ scaleOutSustain: window, scaleInSustain: window }), [],
        window);
    }
  });

  it('refuses sustain windows the function would refuse at cold start', () => {
    for (const window of ['10', '10 m', '1.5h', '-5m', '29s', '92h', 'ten']) {
      assertOneProblem({ scaleInSustain: window },
        new RegExp(`^scaleInSustain \`${window.replace('.', '\\.')}\` must be \`0\``));
    }
  });

  it('refuses an unknown webhook format', () => {
    assertOneProblem({ webhookFormat: 'slak' as never },
      /^webhookFormat `slak` must be `auto`, `slack`, `teams`, `discord`, `json` or `text`$/);
  });

  it('refuses memory outside Lambda\'s range', () => {
    assertOneProblem({ memoryMb: 64 }, /^memoryMb `64` must be an integer from 128 to 10240/);
  });

  it('never prints the secret part of a bad webhook URL', () => {
    const problems = problemsWith({
      webhookUrl: 'https://user:pw@hooks.example.com/services/SECRET with space',
    });

    assert.equal(problems.length, 1);
    assert.match(problems[0], /^webhookUrl `https:\/\/hooks.example.com\/...` must be empty/);
    assert.doesNotMatch(problems[0], /SECRET|pw/);
  });

  it('reports every problem at once, naming the environment', () => {
    const settings = { ...MINIMAL, memoryMb: 1, timeoutSeconds: 5, asgName: '' };

    assert.throws(() => resolveEnvironment('staging', settings), (error: unknown) => {
      assert.ok(error instanceof ConfigError);
      assert.equal(error.problems.length, 3);
      assert.match(error.message, /^invalid configuration for environment `staging`:\n {2}- /);
      return true;
    });
  });

  it('refuses an environment name that cannot be part of a stack name', () => {
    assert.throws(() => resolveEnvironment('Prod_EU', MINIMAL),
      /name `Prod_EU` must be 1 to 20 lowercase letters/);
  });
});
