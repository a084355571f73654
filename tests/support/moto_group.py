#!/usr/bin/env python3
"""Create and read Auto Scaling Groups in a local moto_server.

    moto_group.py [--endpoint URL] create NAME --min 0 --max 10 --desired 0
    moto_group.py [--endpoint URL] show NAME
    moto_group.py [--endpoint URL] delete NAME

`show` prints {"MinSize", "MaxSize", "DesiredCapacity", ...} as JSON.
The endpoint defaults to $KLS_MOTO_URL (written by scripts/local-stack.sh).
Region us-east-1, zone us-east-1a, dummy credentials: moto accepts any.
"""

import argparse
import json
import os
import sys

import boto3
from botocore.exceptions import ClientError

REGION = "us-east-1"
ZONE = "us-east-1a"
# One of the AMIs moto ships by default, so instances it "launches" on scale
# out look like real ones.
IMAGE_ID = "ami-12c6146b"


def client(service, endpoint):
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def describe(asg, name):
    groups = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[name])
    found = groups["AutoScalingGroups"]
    return found[0] if found else None


def summary(group):
    return {
        "AutoScalingGroupName": group["AutoScalingGroupName"],
        "MinSize": group["MinSize"],
        "MaxSize": group["MaxSize"],
        "DesiredCapacity": group["DesiredCapacity"],
        "Instances": len(group.get("Instances", [])),
        "SuspendedProcesses": [p["ProcessName"] for p in group.get("SuspendedProcesses", [])],
    }


def create(args):
    asg = client("autoscaling", args.endpoint)
    ec2 = client("ec2", args.endpoint)

    # moto needs a launch template (or configuration) to create a group; one
    # template per group keeps groups independent of each other.
    template = f"{args.name}-lt"
    try:
        ec2.create_launch_template(
            LaunchTemplateName=template,
            LaunchTemplateData={"ImageId": IMAGE_ID, "InstanceType": "t3.micro"},
        )
    except ClientError as err:
        if err.response["Error"]["Code"] != "InvalidLaunchTemplateName.AlreadyExistsException":
            raise

    if describe(asg, args.name) is None:
        asg.create_auto_scaling_group(
            AutoScalingGroupName=args.name,
            LaunchTemplate={"LaunchTemplateName": template, "Version": "$Latest"},
            MinSize=args.min,
            MaxSize=args.max,
            DesiredCapacity=args.desired,
            AvailabilityZones=[ZONE],
        )
    else:
        # Re-running the demo resets the group instead of failing.
        asg.update_auto_scaling_group(
            AutoScalingGroupName=args.name,
            MinSize=args.min,
            MaxSize=args.max,
            DesiredCapacity=args.desired,
        )
    print(json.dumps(summary(describe(asg, args.name))))


def show(args):
    group = describe(client("autoscaling", args.endpoint), args.name)
    if group is None:
        sys.exit(f"moto_group: no group named `{args.name}` at {args.endpoint}")
    print(json.dumps(summary(group)))


def delete(args):
    asg = client("autoscaling", args.endpoint)
    if describe(asg, args.name) is not None:
        asg.delete_auto_scaling_group(AutoScalingGroupName=args.name, ForceDelete=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--endpoint",
        default=os.environ.get("KLS_MOTO_URL"),
        help="moto_server URL (default: $KLS_MOTO_URL)",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    p = commands.add_parser("create", help="create (or reset) a group")
    p.add_argument("name")
    p.add_argument("--min", type=int, default=0)
    p.add_argument("--max", type=int, default=10)
    p.add_argument("--desired", type=int, default=0)
    p.set_defaults(run=create)

    p = commands.add_parser("show", help="print the group's sizes as JSON")
    p.add_argument("name")
    p.set_defaults(run=show)

    p = commands.add_parser("delete", help="delete a group if it exists")
    p.add_argument("name")
    p.set_defaults(run=delete)

    args = parser.parse_args()
    if not args.endpoint:
        parser.error("no moto endpoint: pass --endpoint or set KLS_MOTO_URL")
    args.run(args)


if __name__ == "__main__":
    main()
