"""make deploy-check: the template, as SAM would deploy it, checked offline. Translates template.yaml
with the SAM translator (the same library `sam build`/`sam deploy` use, here from .venv) into the
CloudFormation it becomes, and checks that every function has its zip from `make package` and that
what a deploy would get is whole: one Lambda function per crate, each with its role and inline
policy, the HTTP API with its JWT authorizer, routes, throttling and CORS, and the tables; and the
rules of docs/production.md that the local stack cannot show (`production_rules`)."""

import json
import os
import sys
import zipfile

import yaml
from samtranslator.public.translator import ManagedPolicyLoader
from samtranslator.translator.transform import transform

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class CfnLoader(yaml.SafeLoader):
    pass


def tag(loader, suffix, node):
    name = "Fn::GetAtt" if suffix == "GetAtt" else ("Ref" if suffix == "Ref" else f"Fn::{suffix}")
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


CfnLoader.add_multi_constructor("!", tag)


class NoManagedPolicies(ManagedPolicyLoader):
    """Offline: the template names no AWS managed policy (each function has its own inline one)."""

    def __init__(self):
        pass

    def load(self):
        return {}


def main():
    template = yaml.load(open(os.path.join(ROOT, "template.yaml")), Loader=CfnLoader)
    lambda_dir = os.path.join(ROOT, "target", "lambda")
    problems = []
    for name, res in template["Resources"].items():
        if res["Type"] != "AWS::Serverless::Function":
            continue
        binary = res["Metadata"]["BuildProperties"]["Binary"]
        archive = os.path.join(lambda_dir, binary, "bootstrap.zip")
        if not os.path.exists(archive):
            problems.append(f"{name}: no {archive} (run make package)")
            continue
        with zipfile.ZipFile(archive) as z:
            if "bootstrap" not in z.namelist():
                problems.append(f"{name}: {archive} holds no bootstrap")
        # Where `sam package` would upload it (the translator takes S3 locations only).
        res["Properties"]["CodeUri"] = f"s3://deploy-check/{binary}/bootstrap.zip"
    params = {"Architecture": os.environ.get("ARCHITECTURE", "x86_64")}
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    if problems:
        print("deploy-check: FAILED\n  " + "\n  ".join(problems))
        sys.exit(1)
    cfn = transform(template, params, NoManagedPolicies())
    resources = cfn["Resources"]
    functions = {k: v for k, v in resources.items() if v["Type"] == "AWS::Lambda::Function"}
    roles = [k for k, v in resources.items() if v["Type"] == "AWS::IAM::Role"]
    apis = [v for v in resources.values() if v["Type"] == "AWS::ApiGatewayV2::Api"]
    body = apis[0]["Properties"].get("Body", {}) if apis else {}
    routes = [f"{m.upper()} {p}" for p, item in body.get("paths", {}).items() for m in item
              if m.startswith("x-") is False]
    stages = [v for v in resources.values() if v["Type"] == "AWS::ApiGatewayV2::Stage"]
    for name, fn in functions.items():
        props = fn["Properties"]
        if props.get("Runtime") != "provided.al2023" or props.get("Handler") != "bootstrap":
            problems.append(f"{name}: runtime {props.get('Runtime')} / handler {props.get('Handler')}")
    if len(roles) < len(functions):
        problems.append(f"{len(functions)} functions but {len(roles)} roles")
    if "x-amazon-apigateway-cors" not in body:
        problems.append("the HTTP API has no CORS configuration")
    if "OPTIONS /{proxy+}" not in routes:
        problems.append("no unauthenticated OPTIONS /{proxy+} route for CORS preflights")
    if not stages or "DefaultRouteSettings" not in stages[0]["Properties"]:
        problems.append("the HTTP API stage has no default throttling")
    problems += production_rules(resources)
    if problems:
        print("deploy-check: FAILED\n  " + "\n  ".join(problems))
        sys.exit(1)
    out = os.path.join(ROOT, "target", "lambda", "template.cfn.json")
    json.dump(cfn, open(out, "w"), indent=1, default=str)
    print(f"deploy-check: {len(functions)} functions with their zips, {len(roles)} roles, "
          f"{len(routes)} routes, the API, stage and tables translated offline for "
          f"{params['Architecture']}; CloudFormation in {os.path.relpath(out, ROOT)}")


# The functions that HEAD audio keys which may not exist (tests/it/permissions.rs records the calls):
# without s3:ListBucket a missing key answers 403, not 404.
HEADS_AUDIO = ("GenerationWorker", "StorageEvents", "ScheduledReset")
# What must raise an alarm (docs/production.md).
ALARMS = ("JobsDeadLetterAlarm", "StorageEventsFailuresAlarm", "WorkerErrorsAlarm",
          "StorageEventsErrorsAlarm", "ScheduledResetErrorsAlarm", "WebhookErrorsAlarm",
          "WebhookThrottlesAlarm", "Api5xxAlarm")
KEYISH = ("KEY", "SECRET", "TOKEN", "PASSWORD")


def production_rules(resources):
    """What AWS does that the local stack does not show, checked on the CloudFormation a deploy gets
    (docs/production.md): each problem as a line."""
    problems = []
    by_type = lambda kind: {k: v for k, v in resources.items() if v["Type"] == kind}
    functions = by_type("AWS::Lambda::Function")
    roles = by_type("AWS::IAM::Role")
    for name, fn in functions.items():
        variables = fn["Properties"].get("Environment", {}).get("Variables", {})
        for var, value in variables.items():
            if "resolve:" in json.dumps(value) or var.endswith(KEYISH):
                problems.append(f"{name}: {var} puts a key in the function's environment")
    for name in HEADS_AUDIO:
        role = roles.get(f"{name}Role", {})
        statements = [st for p in role.get("Properties", {}).get("Policies", [])
                      for st in p["PolicyDocument"]["Statement"]]
        lists = [st for st in statements if "s3:ListBucket" in json.dumps(st.get("Action"))]
        if not any(st.get("Condition", {}).get("StringLike", {}).get("s3:prefix") for st in lists):
            problems.append(f"{name}: HEADs audio keys without s3:ListBucket on their prefix "
                            "(a missing key answers 403)")
    for name, res in resources.items():
        if res["Type"] in ("AWS::DynamoDB::Table", "AWS::S3::Bucket", "AWS::Cognito::UserPool"):
            if res.get("DeletionPolicy") != "RetainExceptOnCreate":
                problems.append(f"{name}: DeletionPolicy {res.get('DeletionPolicy')}, not "
                                "RetainExceptOnCreate (a failed first deploy wedges the retry)")
    invoke = [v for v in by_type("AWS::Lambda::EventInvokeConfig").values()
              if "StorageEvents" in json.dumps(v["Properties"].get("FunctionName"))]
    if not any(v["Properties"].get("DestinationConfig", {}).get("OnFailure") for v in invoke):
        problems.append("StorageEvents: no OnFailure destination (failed S3 events are dropped)")
    for name, esm in by_type("AWS::Lambda::EventSourceMapping").items():
        if not esm["Properties"].get("ScalingConfig", {}).get("MaximumConcurrency"):
            problems.append(f"{name}: an SQS trigger without MaximumConcurrency")
    for name in ALARMS:
        if resources.get(name, {}).get("Type") != "AWS::CloudWatch::Alarm":
            problems.append(f"no alarm {name}")
    return problems


if __name__ == "__main__":
    main()
