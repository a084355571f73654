import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import { Annotations, Match } from 'aws-cdk-lib/assertions';
import { EnvironmentConfig, EnvironmentSettings, validateConfig } from '../lib/config';
import { loadEnvironment } from '../lib/environments';
import { Grant, allGrants, onlyResource, synthesize } from './support';

const WEBHOOK_SECRET = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:scaler/webhook-AbCdEf';
const TOKEN_SECRET = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:scaler/token-GhIjKl';
const BASIC_SECRET = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:scaler/basic-MnOpQr';
const WORKSPACE = 'arn:aws:aps:eu-west-1:123456789012:workspace/ws-0a1b2c3d-4e5f';
const VPC = {
  vpcId: 'vpc-0123456789abcdef0',
  subnetIds: ['subnet-0aaaaaaaaaaaaaaa1', 'subnet-0bbbbbbbbbbbbbbb2'],
  securityGroupIds: ['sg-0ccccccccccccccc3'],
};

const ENI_ARN = {
  'Fn::Sub': 'arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:network-interface/*',
};
const ec2Arn = (resource: string) => ({
  'Fn::Sub': `arn:\${AWS::Partition}:ec2:\${AWS::Region}:\${AWS::AccountId}:${resource}`,
});

/** The dev environment with `settings` added. */
function devWith(settings: Partial<EnvironmentSettings>): EnvironmentConfig {
  return { ...loadEnvironment('dev'), ...settings } as EnvironmentConfig;
}

function sorted(grants: Grant[]): Grant[] {
  const key = (grant: Grant): string => JSON.stringify([grant.action, grant.resource]);
  return [...grants].sort((a, b) => key(a).localeCompare(key(b)));
}

function variables(config: EnvironmentConfig): Record<string, unknown> {
  const fn = onlyResource(synthesize(config).template, 'AWS::Lambda::Function');
  return fn.Properties.Environment.Variables;
}

const baseGrants = allGrants(synthesize('dev').template);
const baseVariables = variables(loadEnvironment('dev'));

/** Each option, the grants it adds, and the environment variables it adds. */
const OPTIONS: ReadonlyArray<{
  name: string;
  settings: Partial<EnvironmentSettings>;
  grants: Grant[];
  env: Record<string, string>;
}> = [
  {
    name: 'a webhook secret',
    settings: { webhookUrlSecretArn: WEBHOOK_SECRET },
    grants: [{ action: 'secretsmanager:GetSecretValue', resource: WEBHOOK_SECRET }],
    env: { WEBHOOK_URL_SECRET_ARN: WEBHOOK_SECRET },
  },
  {
    name: 'bearer auth with a token secret',
    settings: { prometheusAuth: { mode: 'bearer' }, prometheusTokenSecretArn: TOKEN_SECRET },
    grants: [{ action: 'secretsmanager:GetSecretValue', resource: TOKEN_SECRET }],
    env: { PROMETHEUS_AUTH: 'bearer', PROMETHEUS_TOKEN_SECRET_ARN: TOKEN_SECRET },
  },
  {
    name: 'basic auth with a secret',
    settings: { prometheusAuth: { mode: 'basic' }, prometheusBasicAuthSecretArn: BASIC_SECRET },
    grants: [{ action: 'secretsmanager:GetSecretValue', resource: BASIC_SECRET }],
    env: { PROMETHEUS_AUTH: 'basic', PROMETHEUS_BASIC_AUTH_SECRET_ARN: BASIC_SECRET },
  },
  {
    name: 'basic auth from the endpoint URL',
    settings: { prometheusAuth: { mode: 'basic' } },
    grants: [],
    env: { PROMETHEUS_AUTH: 'basic' },
  },
  {
    name: 'sigv4 for a workspace',
    settings: { prometheusAuth: { mode: 'sigv4', workspaceArn: WORKSPACE } },
    grants: [{ action: 'aps:QueryMetrics', resource: WORKSPACE }],
    env: { PROMETHEUS_AUTH: 'sigv4', PROMETHEUS_SIGV4_REGION: 'eu-west-1' },
  },
  {
    name: 'a tenant header',
    settings: { prometheusHeaders: { 'X-Scope-OrgID': 'team-a', 'X-Extra': '1' } },
    grants: [],
    env: { PROMETHEUS_HEADERS: 'X-Scope-OrgID=team-a,X-Extra=1' },
  },
  {
    name: 'a VPC',
    settings: VPC,
    grants: [
      { action: 'ec2:DescribeNetworkInterfaces', resource: '*' },
      { action: 'ec2:DescribeSubnets', resource: '*' },
      { action: 'ec2:CreateNetworkInterface', resource: ec2Arn(`subnet/${VPC.subnetIds[0]}`) },
      { action: 'ec2:CreateNetworkInterface', resource: ec2Arn(`subnet/${VPC.subnetIds[1]}`) },
      {
        action: 'ec2:CreateNetworkInterface',
        resource: ec2Arn(`security-group/${VPC.securityGroupIds[0]}`),
      },
      { action: 'ec2:CreateNetworkInterface', resource: ENI_ARN },
      { action: 'ec2:DeleteNetworkInterface', resource: ENI_ARN },
      { action: 'ec2:AssignPrivateIpAddresses', resource: ENI_ARN },
      { action: 'ec2:UnassignPrivateIpAddresses', resource: ENI_ARN },
    ],
    env: {},
  },
];

describe('connectivity options', () => {
  for (const option of OPTIONS) {
    it(`with ${option.name}, add exactly their grants and variables`, () => {
      const config = devWith(option.settings);

      assert.deepEqual(allGrants(synthesize(config).template),
        sorted([...baseGrants, ...option.grants]));
      assert.deepEqual(variables(config), { ...baseVariables, ...option.env });
    });
  }

  it('left out, add no grant, no variable and no network placement', () => {
    const fn = onlyResource(synthesize('dev').template, 'AWS::Lambda::Function').Properties;

    assert.ok(!baseGrants.some((grant) => /^(secretsmanager|aps|ec2):/.test(grant.action)));
    assert.deepEqual(Object.keys(baseVariables).filter((name) => /SECRET|AUTH|HEADERS|SIGV4/
      .test(name)), []);
    assert.equal(fn.VpcConfig, undefined);
  });

  it('grant one read per secret even when several are configured', () => {
    const config = devWith({
      webhookUrlSecretArn: WEBHOOK_SECRET,
      prometheusAuth: { mode: 'basic' },
      prometheusBasicAuthSecretArn: BASIC_SECRET,
    });
    const reads = allGrants(synthesize(config).template)
      .filter((grant) => grant.action === 'secretsmanager:GetSecretValue')
      .map((grant) => grant.resource);

    assert.deepEqual(reads, [BASIC_SECRET, WEBHOOK_SECRET]);
  });
});

describe('VPC placement', () => {
  const inVpc = synthesize(devWith(VPC));

  it('runs the function in the given subnets with the given security groups', () => {
    const fn = onlyResource(inVpc.template, 'AWS::Lambda::Function').Properties;

    assert.deepEqual(fn.VpcConfig, {
      SubnetIds: VPC.subnetIds,
      SecurityGroupIds: VPC.securityGroupIds,
    });
  });

  it('creates no security group, VPC or endpoint of its own', () => {
    const types = Object.values(inVpc.template.toJSON().Resources as Record<string, any>)
      .map((resource) => resource.Type)
      .sort();

    assert.deepEqual(types, [
      'AWS::Events::Rule',
      'AWS::IAM::Role',
      'AWS::Lambda::EventInvokeConfig',
      'AWS::Lambda::Function',
      'AWS::Lambda::Permission',
      'AWS::Logs::LogGroup',
    ]);
  });

  it('synthesizes offline, from ids alone', () => {
    const missing = inVpc.stack.node.metadata.filter((entry) => entry.type === 'aws:cdk:missing');

    assert.deepEqual(missing, []);
  });

  it('acknowledges the network-interface wildcard only when in a VPC', () => {
    const appliesTo = (config: EnvironmentConfig): string[] => {
      const role = onlyResource(synthesize(config).template, 'AWS::IAM::Role');
      return role.Metadata?.cdk_nag?.rules_to_suppress.flatMap((rule: any) => rule.applies_to);
    };
    const eni = 'Resource::arn:<AWS::Partition>:ec2:<AWS::Region>:<AWS::AccountId>'
      + ':network-interface/*';

    assert.ok(appliesTo(devWith(VPC)).includes(eni));
    assert.ok(!appliesTo(loadEnvironment('dev')).includes(eni));
  });
});

describe('every option at once', () => {
  const everything = devWith({
    ...VPC,
    webhookUrlSecretArn: WEBHOOK_SECRET,
    prometheusAuth: { mode: 'sigv4', workspaceArn: WORKSPACE },
    prometheusHeaders: { 'X-Scope-OrgID': 'team-a' },
  });
  const { stack, template } = synthesize(everything);

  it('leaves cdk-nag nothing unacknowledged', () => {
    const annotations = Annotations.fromStack(stack);

    assert.deepEqual(annotations.findError('*', Match.anyValue()), []);
    assert.deepEqual(annotations.findWarning('*', Match.anyValue()), []);
  });

  it('passes cfn-lint', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'kafka-lag-scaler-connectivity-'));
    after(() => rmSync(dir, { recursive: true, force: true }));
    const file = path.join(dir, 'everything.template.json');
    writeFileSync(file, JSON.stringify(template.toJSON(), null, 1));

    const result = spawnSync('cfn-lint', ['--format', 'parseable', '--', file], {
      encoding: 'utf8',
    });

    assert.equal(result.status, 0, `${result.stdout}${result.stderr}`);
  });
});

describe('connectivity validation', () => {
  /** The problems of the dev environment with `settings`. */
  const problems = (settings: Partial<EnvironmentSettings>): string[] =>
    validateConfig(devWith(settings));

  /** Settings, the problem they must cause, and why. */
  const cases: ReadonlyArray<[Partial<EnvironmentSettings>, RegExp, string]> = [
    [
      { webhookUrlSecretArn: 'scaler/webhook' },
      /^webhookUrlSecretArn `scaler\/webhook` must be a Secrets Manager secret ARN/,
      'a name, not an ARN',
    ],
    [
      { webhookUrlSecretArn: WEBHOOK_SECRET, webhookUrl: 'https://hooks.example/x' },
      /^webhookUrlSecretArn .* leave webhookUrl empty/,
      'two webhook sources',
    ],
    [
      { prometheusAuth: { mode: 'bearer' } },
      /^prometheusTokenSecretArn `` must be set/,
      'bearer without a token',
    ],
    [
      { prometheusTokenSecretArn: TOKEN_SECRET },
      /^prometheusTokenSecretArn .* only with prometheusAuth mode `bearer`, not `none`/,
      'a token nobody uses',
    ],
    [
      {
        prometheusAuth: { mode: 'bearer' },
        prometheusTokenSecretArn: TOKEN_SECRET,
        prometheusBasicAuthSecretArn: BASIC_SECRET,
      },
      /^prometheusBasicAuthSecretArn .* only with prometheusAuth mode `basic`/,
      'a basic-auth secret with bearer',
    ],
    [
      { prometheusAuth: { mode: 'sigv4', workspaceArn: 'ws-1234' } },
      /^prometheusAuth.workspaceArn `ws-1234` must be an Amazon Managed Prometheus workspace/,
      'a workspace id, not its ARN',
    ],
    [
      { prometheusAuth: { mode: 'digest' } as never },
      /^prometheusAuth.mode `digest` must be/,
      'an unknown mode',
    ],
    [
      { prometheusHeaders: { Authorization: 'Bearer x' } },
      /^prometheusHeaders `Authorization` must be a header name other than/,
      'a header auth owns',
    ],
    [
      { prometheusHeaders: { 'X-Scope-OrgID': 'a,b' } },
      /^prometheusHeaders\[X-Scope-OrgID\] `...` must be printable ASCII without commas/,
      'a comma in a value',
    ],
    [
      { subnetIds: VPC.subnetIds },
      /^vpcId `` must be set when subnetIds/,
      'subnets without a VPC',
    ],
    [
      { vpcId: VPC.vpcId, securityGroupIds: VPC.securityGroupIds },
      /^subnetIds `\[\]` must list at least one subnet/,
      'a VPC without subnets',
    ],
    [
      { vpcId: VPC.vpcId, subnetIds: VPC.subnetIds },
      /^securityGroupIds `\[\]` must list at least one/,
      'a VPC without security groups',
    ],
    [
      { ...VPC, subnetIds: ['subnet-xyz'] },
      /^subnetIds `subnet-xyz` must be a subnet id/,
      'a malformed subnet id',
    ],
  ];
  for (const [settings, expected, reason] of cases) {
    it(`refuses ${reason}, naming the field and the value`, () => {
      const found = problems(settings);

      assert.equal(found.length, 1, JSON.stringify(found));
      assert.match(found[0], expected);
    });
  }

  it('never prints a header value, which may be a key', () => {
    const [problem] = problems({ prometheusHeaders: { 'X-Api-Key': 's3cr3t,x' } });

    assert.doesNotMatch(problem, /s3cr3t/);
  });
});
