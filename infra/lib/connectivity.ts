import { Annotations, Fn, Stack } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { Construct } from 'constructs';

/**
 * How the function authenticates to Prometheus (`PROMETHEUS_AUTH`):
 *
 * - `none`: an open Prometheus inside the network;
 * - `basic`: credentials from `prometheusBasicAuthSecretArn`, or `user:pass@` in the endpoint;
 * - `bearer`: the token in `prometheusTokenSecretArn`;
 * - `sigv4`: the function's own role, for an Amazon Managed Service for Prometheus
 *   workspace; the role may query that workspace only, and the signing Region is the
 *   workspace's.
 */
export type PrometheusAuth =
  | { readonly mode: 'none' | 'basic' | 'bearer' }
  | {
    readonly mode: 'sigv4';
    /** `arn:aws:aps:<region>:<account>:workspace/ws-...` */
    readonly workspaceArn: string;
  };

/**
 * How the function reaches Prometheus and its secrets, and where it runs. Every setting is
 * optional; each grant in the role appears only when the setting that needs it is set.
 */
export interface ConnectivitySettings {
  /**
   * Secrets Manager secret holding the webhook URL (`WEBHOOK_URL_SECRET_ARN`); the
   * recommended alternative to `webhookUrl`, which must then stay empty.
   * @default '' (none)
   */
  readonly webhookUrlSecretArn?: string;
  /** @default { mode: 'none' } */
  readonly prometheusAuth?: PrometheusAuth;
  /**
   * Secrets Manager secret holding the bearer token (`PROMETHEUS_TOKEN_SECRET_ARN`);
   * required by, and only allowed with, `prometheusAuth: { mode: 'bearer' }`.
   * @default '' (none)
   */
  readonly prometheusTokenSecretArn?: string;
  /**
   * Secrets Manager secret holding `user:password` or `{"username", "password"}` JSON
   * (`PROMETHEUS_BASIC_AUTH_SECRET_ARN`); only allowed with `prometheusAuth: { mode: 'basic' }`.
   * @default '' (none)
   */
  readonly prometheusBasicAuthSecretArn?: string;
  /**
   * Extra headers on every query (`PROMETHEUS_HEADERS`), e.g. `{ 'X-Scope-OrgID': 'team-a' }`
   * for a Mimir or Cortex tenant. Plain configuration, not secret.
   * @default {}
   */
  readonly prometheusHeaders?: Readonly<Record<string, string>>;
  /**
   * VPC to run the function in. It then needs a route to the Auto Scaling API (a NAT
   * gateway or an `autoscaling` interface endpoint), and to Secrets Manager if a secret is set.
   * @default '' (not in a VPC)
   */
  readonly vpcId?: string;
  /** Subnets (private, with that route) of `vpcId`; required with it. @default [] */
  readonly subnetIds?: readonly string[];
  /** Security groups for the function's network interfaces; required with `vpcId`. @default [] */
  readonly securityGroupIds?: readonly string[];
}

export type ConnectivityConfig = Required<ConnectivitySettings>;

export const CONNECTIVITY_DEFAULTS: ConnectivityConfig = {
  webhookUrlSecretArn: '',
  prometheusAuth: { mode: 'none' },
  prometheusTokenSecretArn: '',
  prometheusBasicAuthSecretArn: '',
  prometheusHeaders: {},
  vpcId: '',
  subnetIds: [],
  securityGroupIds: [],
};

const SECRET_ARN = /^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:[^\s:]+$/;
const WORKSPACE_ARN = new RegExp('^arn:aws[a-z-]*:aps:([a-z]{2}(?:-[a-z]+)+-[0-9]):[0-9]{12}'
  + ':workspace/ws-[A-Za-z0-9-]+$');
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** Printable ASCII without `,`, which separates headers in `PROMETHEUS_HEADERS`. */
const HEADER_VALUE = /^[ -+\--~]*$/;
const RESERVED_HEADERS = new RegExp('^(authorization|host|content-type|content-length'
  + '|transfer-encoding|connection|x-amz-.*)$', 'i');

/**
 * Every problem with the connectivity settings, each naming the field, the bad value in
 * backticks, and what would be valid; the same checks the function makes at cold start.
 */
export function validateConnectivity(
  config: ConnectivityConfig & { readonly webhookUrl: string },
): string[] {
  const problems: string[] = [];
  const check = (ok: boolean, field: string, value: unknown, remedy: string): void => {
    if (!ok) {
      problems.push(`${field} \`${String(value)}\` ${remedy}`);
    }
  };
  const auth = config.prometheusAuth;

  for (const field of [
    'webhookUrlSecretArn', 'prometheusTokenSecretArn', 'prometheusBasicAuthSecretArn',
  ] as const) {
    check(config[field] === '' || SECRET_ARN.test(config[field]), field, config[field],
      'must be a Secrets Manager secret ARN, '
      + '`arn:aws:secretsmanager:<region>:<account>:secret:<name>`');
  }
  check(config.webhookUrlSecretArn === '' || config.webhookUrl === '',
    'webhookUrlSecretArn', config.webhookUrlSecretArn,
    'replaces webhookUrl: leave webhookUrl empty');

  check(['none', 'basic', 'bearer', 'sigv4'].includes(auth.mode), 'prometheusAuth.mode',
    auth.mode, 'must be `none`, `basic`, `bearer` or `sigv4`');
  if (auth.mode === 'sigv4') {
    check(WORKSPACE_ARN.test(auth.workspaceArn), 'prometheusAuth.workspaceArn',
      auth.workspaceArn,
      'must be an Amazon Managed Prometheus workspace ARN, '
      + '`arn:aws:aps:<region>:<account>:workspace/ws-...`');
  }
  check(auth.mode === 'bearer' || config.prometheusTokenSecretArn === '',
    'prometheusTokenSecretArn', config.prometheusTokenSecretArn,
    `is used only with prometheusAuth mode \`bearer\`, not \`${auth.mode}\``);
  check(auth.mode !== 'bearer' || config.prometheusTokenSecretArn !== '',
    'prometheusTokenSecretArn', '', 'must be set: prometheusAuth mode `bearer` reads its token '
    + 'from Secrets Manager');
  check(auth.mode === 'basic' || config.prometheusBasicAuthSecretArn === '',
    'prometheusBasicAuthSecretArn', config.prometheusBasicAuthSecretArn,
    `is used only with prometheusAuth mode \`basic\`, not \`${auth.mode}\``);

  for (const [name, value] of Object.entries(config.prometheusHeaders)) {
    check(HEADER_NAME.test(name) && !RESERVED_HEADERS.test(name), 'prometheusHeaders', name,
      'must be a header name other than Authorization, Host, Content-*, Connection, '
      + 'Transfer-Encoding and X-Amz-*');
    check(HEADER_VALUE.test(value), `prometheusHeaders[${name}]`, '...',
      'must be printable ASCII without commas (the value is not shown)');
  }

  const inVpc = config.vpcId !== '';
  check(config.vpcId === '' || /^vpc-[0-9a-f]{8,17}$/.test(config.vpcId), 'vpcId',
    config.vpcId, 'must be a VPC id such as `vpc-0123456789abcdef0`');
  check(inVpc || (config.subnetIds.length === 0 && config.securityGroupIds.length === 0),
    'vpcId', config.vpcId, 'must be set when subnetIds or securityGroupIds are');
  check(!inVpc || config.subnetIds.length > 0, 'subnetIds', '[]',
    'must list at least one subnet of the VPC');
  check(!inVpc || config.securityGroupIds.length > 0, 'securityGroupIds', '[]',
    'must list at least one security group of the VPC');
  for (const id of config.subnetIds) {
    check(/^subnet-[0-9a-f]{8,17}$/.test(id), 'subnetIds', id,
      'must be a subnet id such as `subnet-0123456789abcdef0`');
  }
  for (const id of config.securityGroupIds) {
    check(/^sg-[0-9a-f]{8,17}$/.test(id), 'securityGroupIds', id,
      'must be a security group id such as `sg-0123456789abcdef0`');
  }
  return problems;
}

/** The environment variables the settings add; none for a setting left out. */
export function connectivityEnvironment(config: ConnectivityConfig): Record<string, string> {
  const auth = config.prometheusAuth;
  const headers = Object.entries(config.prometheusHeaders)
    .map(([name, value]) => `${name}=${value}`)
    .join(',');
  const variables: Record<string, string> = {
    WEBHOOK_URL_SECRET_ARN: config.webhookUrlSecretArn,
    PROMETHEUS_AUTH: auth.mode === 'none' ? '' : auth.mode,
    PROMETHEUS_SIGV4_REGION: auth.mode === 'sigv4' ? workspaceRegion(auth.workspaceArn) : '',
    PROMETHEUS_TOKEN_SECRET_ARN: config.prometheusTokenSecretArn,
    PROMETHEUS_BASIC_AUTH_SECRET_ARN: config.prometheusBasicAuthSecretArn,
    PROMETHEUS_HEADERS: headers,
  };
  return Object.fromEntries(Object.entries(variables).filter(([, value]) => value !== ''));
}

/**
 * The role statements the settings need, each only when its setting is set:
 * `secretsmanager:GetSecretValue` on exactly the configured secrets, `aps:QueryMetrics` on
 * exactly the configured workspace, and the network-interface actions Lambda uses to place
 * the function in the VPC's subnets.
 */
export function connectivityStatements(config: ConnectivityConfig): iam.PolicyStatement[] {
  const statements: iam.PolicyStatement[] = [];
  const secrets = [
    config.webhookUrlSecretArn,
    config.prometheusTokenSecretArn,
    config.prometheusBasicAuthSecretArn,
  ].filter((arn) => arn !== '');
  if (secrets.length > 0) {
    statements.push(new iam.PolicyStatement({
      sid: 'ReadConfiguredSecrets',
      actions: ['secretsmanager:GetSecretValue'],
      resources: [...new Set(secrets)],
    }));
  }
  if (config.prometheusAuth.mode === 'sigv4') {
    statements.push(new iam.PolicyStatement({
      sid: 'QueryTheWorkspace',
      actions: ['aps:QueryMetrics'],
      resources: [config.prometheusAuth.workspaceArn],
    }));
  }
  if (config.vpcId !== '') {
    statements.push(
      new iam.PolicyStatement({
        sid: 'DescribeNetworkForVpcAccess',
        actions: ['ec2:DescribeNetworkInterfaces', 'ec2:DescribeSubnets'],
        resources: ['*'],
      }),
      new iam.PolicyStatement({
        sid: 'CreateInterfacesInTheSubnets',
        actions: ['ec2:CreateNetworkInterface'],
        resources: [
          ...config.subnetIds.map((id) => ec2Arn(`subnet/${id}`)),
          ...config.securityGroupIds.map((id) => ec2Arn(`security-group/${id}`)),
          networkInterfaces(),
        ],
      }),
      new iam.PolicyStatement({
        sid: 'ManageOwnInterfaces',
        actions: [
          'ec2:DeleteNetworkInterface',
          'ec2:AssignPrivateIpAddresses',
          'ec2:UnassignPrivateIpAddresses',
        ],
        resources: [networkInterfaces()],
      }),
    );
  }
  return statements;
}

/** The function's placement in the VPC, from ids alone: no lookup, so synth stays offline. */
export function vpcPlacement(
  scope: Construct,
  config: ConnectivityConfig,
): Pick<lambda.FunctionProps, 'vpc' | 'vpcSubnets' | 'securityGroups'> {
  if (config.vpcId === '') {
    return {};
  }
  return {
    vpc: ec2.Vpc.fromVpcAttributes(scope, 'Vpc', {
      vpcId: config.vpcId,
      availabilityZones: Stack.of(scope).availabilityZones,
    }),
    vpcSubnets: { subnets: config.subnetIds.map((id) => importSubnet(scope, id)) },
    securityGroups: config.securityGroupIds.map((id) =>
      ec2.SecurityGroup.fromSecurityGroupId(scope, `SecurityGroup-${id}`, id, { mutable: false })),
  };
}

function importSubnet(scope: Construct, id: string): ec2.ISubnet {
  const subnet = ec2.Subnet.fromSubnetId(scope, `Subnet-${id}`, id);
  // Only the id goes into the template; nothing here reads the subnet's route table.
  Annotations.of(subnet).acknowledgeWarning('@aws-cdk/aws-ec2:noSubnetRouteTableId',
    'The function only needs the subnet id; no route is created or read.');
  return subnet;
}

/** Network interfaces in the stack's account and Region; their ids are Lambda's to choose. */
export const NETWORK_INTERFACES_ARN =
  'arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:network-interface/*';

function networkInterfaces(): string {
  return Fn.sub(NETWORK_INTERFACES_ARN);
}

function ec2Arn(resource: string): string {
  return Fn.sub(`arn:\${AWS::Partition}:ec2:\${AWS::Region}:\${AWS::AccountId}:${resource}`);
}

function workspaceRegion(workspaceArn: string): string {
  return WORKSPACE_ARN.exec(workspaceArn)?.[1] ?? '';
}
