"""Checks the deployment files against the rules ECS, Elastic Load Balancing and compose
apply, and against each other: configs/ecs/*.json (task definitions, NLB target groups and
their attributes, listeners, the ECS service), configs/docker-compose.yml through
`docker-compose config` (with and without the agent profile), configs/Dockerfile and the
example app. The rules and their sources: /work/shared/reference/deployment.md §1, §2, §5,
§6 (task_definition_parameters.md, task-cpu-memory-error.md, the elbv2 CLI reference).

    /usr/bin/python3 tests/e2e/test_deploy_files.py [-v]
"""
import glob
import json
import os
import re
import shlex
import shutil
import subprocess
import unittest

import yaml  # python3-yaml

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CONFIGS = os.path.join(ROOT, "configs")
ECS = os.path.join(CONFIGS, "ecs")
COMPOSE = os.path.join(CONFIGS, "docker-compose.yml")
GIB = 1024

# Fargate (Linux) task cpu -> allowed memory in MiB (task-cpu-memory-error.md).
FARGATE = {
    256: [512, 1 * GIB, 2 * GIB],
    512: [g * GIB for g in range(1, 5)],
    1024: [g * GIB for g in range(2, 9)],
    2048: [g * GIB for g in range(4, 17)],
    4096: [g * GIB for g in range(8, 31)],
    8192: [g * GIB for g in range(16, 61, 4)],
    16384: [g * GIB for g in range(32, 121, 8)],
}
# Input keys of register-task-definition, its container definitions, create-service,
# create-target-group (AWS CLI reference), so a misspelt key fails here, not at deploy time.
TASK_KEYS = {"family", "taskRoleArn", "executionRoleArn", "networkMode", "containerDefinitions",
             "volumes", "placementConstraints", "requiresCompatibilities", "cpu", "memory",
             "tags", "pidMode", "ipcMode", "proxyConfiguration", "inferenceAccelerators",
             "ephemeralStorage", "runtimePlatform", "enableFaultInjection"}
CONTAINER_KEYS = {"name", "image", "repositoryCredentials", "cpu", "memory", "memoryReservation",
                  "links", "portMappings", "essential", "restartPolicy", "entryPoint", "command",
                  "environment", "environmentFiles", "mountPoints", "volumesFrom",
                  "linuxParameters", "secrets", "dependsOn", "startTimeout", "stopTimeout",
                  "versionConsistency", "hostname", "user", "workingDirectory",
                  "disableNetworking", "privileged", "readonlyRootFilesystem", "dnsServers",
                  "dnsSearchDomains", "extraHosts", "dockerSecurityOptions", "interactive",
                  "pseudoTerminal", "dockerLabels", "ulimits", "logConfiguration", "healthCheck",
                  "systemControls", "resourceRequirements", "firelensConfiguration",
                  "credentialSpecs"}
SERVICE_KEYS = {"cluster", "serviceName", "taskDefinition", "availabilityZoneRebalancing",
                "loadBalancers", "serviceRegistries", "desiredCount", "clientToken",
                "launchType", "capacityProviderStrategy", "platformVersion", "role",
                "deploymentConfiguration", "placementConstraints", "placementStrategy",
                "networkConfiguration", "healthCheckGracePeriodSeconds", "schedulingStrategy",
                "deploymentController", "tags", "enableECSManagedTags", "propagateTags",
                "enableExecuteCommand", "serviceConnectConfiguration", "volumeConfigurations",
                "vpcLatticeConfigurations"}
TARGET_GROUP_KEYS = {"Name", "Protocol", "ProtocolVersion", "Port", "VpcId",
                     "HealthCheckProtocol", "HealthCheckPort", "HealthCheckEnabled",
                     "HealthCheckPath", "HealthCheckIntervalSeconds", "HealthCheckTimeoutSeconds",
                     "HealthyThresholdCount", "UnhealthyThresholdCount", "Matcher", "TargetType",
                     "Tags", "IpAddressType"}
# Secrets Manager with a JSON key, default stage and version: the two trailing colons stay.
SECRET_ARN = re.compile(r"^arn:aws:secretsmanager:[a-z0-9-]+:\d{12}:secret:[A-Za-z0-9/_+=.@-]+"
                        r"-[A-Za-z0-9]{6}:[A-Za-z0-9_]+:[A-Za-z0-9_]*:[A-Za-z0-9-]*$")
TG_ARN = re.compile(r"^arn:aws:elasticloadbalancing:[a-z0-9-]+:\d{12}:targetgroup/"
                    r"([A-Za-z0-9-]{1,32})/[0-9a-f]+$")
FARGATE_STOP_TIMEOUT_MAX = 120


def read_json(path):
    with open(path) as f:
        return json.load(f)


def load(name):
    return read_json(os.path.join(ECS, name))


def dockerfile():
    with open(os.path.join(CONFIGS, "Dockerfile")) as f:
        # Join continuation lines so each instruction is one line.
        return re.sub(r"\\\n\s*", " ", f.read())


def dockerfile_binary():
    """The path ENTRYPOINT runs, the one every health check must exec."""
    m = re.search(r"^ENTRYPOINT\s+(\[.*\])\s*$", dockerfile(), re.M)
    return json.loads(m.group(1))[0]


def embedded_config():
    """The embedded default configuration (collector/config/config.c, o2d_config_embedded) as YAML."""
    with open(os.path.join(ROOT, "collector", "config", "config.c")) as f:
        src = f.read()
    body = src[src.index("o2d_config_embedded[] ="):]
    body = body[:body.index(";\n")]
    text = "".join(json.loads('"%s"' % lit) for lit in re.findall(r'"((?:[^"\\]|\\.)*)"', body))
    return yaml.safe_load(text)


def memory_ceiling_mib(cpus, connections):
    """README.md, "Memory": the resident memory ceiling with the embedded default bounds,
    for a machine showing `cpus` CPUs and `connections` open connections."""
    cfg = embedded_config()
    m = cfg["receivers"]["otlp"]["memory_limit_mib"]
    dd = cfg["exporters"]["datadog"]
    q = dd["sending_queue"]["max_size_mib"]
    b = dd["llmobs"]["trace_buffer"]["max_size_mib"]
    threads = 2 * min(cpus, 16)
    return 50 + m + m + 1.25 * q + b + 9 * threads + connections / 8


def readme_memory_section():
    with open(os.path.join(ROOT, "README.md")) as f:
        text = f.read()
    return text[text.index("### Memory"):text.index("## Health and metrics")]


def drain_seconds():
    """service.shutdown_timeout's default, from the embedded configuration."""
    with open(os.path.join(ROOT, "collector", "config", "config.c")) as f:
        m = re.search(r"shutdown_timeout:\s*(\d+)s", f.read())
    return int(m.group(1))


def env_of(container):
    return {e["name"]: e["value"] for e in container.get("environment", [])}


def task_definitions():
    return sorted(p for p in glob.glob(os.path.join(ECS, "*.json"))
                  if "containerDefinitions" in read_json(p))


def otel2dd_container(td):
    return next((c for c in td["containerDefinitions"] if c["name"] == "otel2dd"), None)


class TestEcsTaskDefinitions(unittest.TestCase):
    def test_all_files_parse(self):
        files = glob.glob(os.path.join(ECS, "*.json"))
        self.assertGreaterEqual(len(files), 6)
        for p in files:
            read_json(p)

    def test_task_definition_rules(self):
        tds = task_definitions()
        self.assertEqual([os.path.basename(p) for p in tds],
                         ["nlb-app-task-definition.json", "otel2dd-task-definition.json",
                          "sidecar-task-definition.json"])
        for path in tds:
            with self.subTest(file=os.path.basename(path)):
                td = read_json(path)
                self.check_task(td)

    def test_preview_off(self):
        """ECS tasks run with an API key, so the embedded default leaves the preview off;
        nothing turns it on or publishes its port."""
        for path in task_definitions():
            for c in read_json(path)["containerDefinitions"]:
                env = {e["name"]: e["value"] for e in c.get("environment", [])}
                self.assertNotIn("OTEL2DD_PREVIEW_ENDPOINT", env, path)
                self.assertNotIn(55679, [pm["containerPort"] for pm in c.get("portMappings", [])],
                                 path)
                self.assertNotIn("preview", " ".join(c.get("command", [])), path)

    def check_task(self, td):
        self.assertLessEqual(set(td), TASK_KEYS)
        self.assertTrue(td["family"])
        self.assertEqual(td["requiresCompatibilities"], ["FARGATE"])
        self.assertEqual(td["networkMode"], "awsvpc")
        # Strings of units and MiB, a pair Fargate accepts.
        self.assertIsInstance(td["cpu"], str)
        self.assertIsInstance(td["memory"], str)
        self.assertIn(int(td["memory"]), FARGATE.get(int(td["cpu"]), []),
                      "cpu %s / memory %s is not a Fargate pair" % (td["cpu"], td["memory"]))
        containers = td["containerDefinitions"]
        names = [c["name"] for c in containers]
        self.assertEqual(len(names), len(set(names)))
        self.assertTrue(any(c.get("essential", True) for c in containers))
        by_name = {c["name"]: c for c in containers}
        cpu_sum = sum(c.get("cpu", 0) for c in containers)
        self.assertLessEqual(cpu_sum, int(td["cpu"]))
        for c in containers:
            self.assertLessEqual(set(c), CONTAINER_KEYS, c["name"])
            self.assertTrue(c["name"] and c["image"], c)
            for pm in c.get("portMappings", []):
                # awsvpc: hostPort absent or equal to containerPort.
                self.assertIn(pm.get("hostPort", pm["containerPort"]), (pm["containerPort"],))
            log = c["logConfiguration"]
            self.assertLessEqual(set(log), {"logDriver", "options", "secretOptions"})
            self.assertEqual(log["logDriver"], "awslogs")
            for k in ("awslogs-group", "awslogs-region", "awslogs-stream-prefix"):
                self.assertTrue(log["options"].get(k), "%s: %s" % (c["name"], k))
            for s in c.get("secrets", []):
                self.assertRegex(s["valueFrom"], SECRET_ARN)
                self.assertTrue(s["valueFrom"].endswith(":%s::" % s["name"]), s)
            if c.get("secrets") or c.get("logConfiguration"):
                self.assertTrue(td.get("executionRoleArn"), "secrets/awslogs need the role")
            if "stopTimeout" in c:
                self.assertLessEqual(c["stopTimeout"], FARGATE_STOP_TIMEOUT_MAX)
            hc = c.get("healthCheck")
            if hc:
                self.assertLessEqual(set(hc), {"command", "interval", "timeout", "retries",
                                               "startPeriod"})
                self.assertIn(hc["command"][0], ("CMD", "CMD-SHELL"))
                self.assertTrue(5 <= hc.get("interval", 30) <= 300)
                self.assertTrue(2 <= hc.get("timeout", 5) <= 60)
                self.assertTrue(1 <= hc.get("retries", 3) <= 10)
                self.assertTrue(0 <= hc.get("startPeriod", 0) <= 300)
                self.assertLess(hc.get("timeout", 5), hc.get("interval", 30))
            for d in c.get("dependsOn", []):
                self.assertEqual(set(d), {"containerName", "condition"})
                self.assertIn(d["condition"], ("START", "COMPLETE", "SUCCESS", "HEALTHY"))
                dep = by_name.get(d["containerName"])
                self.assertIsNotNone(dep, "%s depends on a missing container" % c["name"])
                if d["condition"] == "HEALTHY":
                    self.assertIn("healthCheck", dep, "HEALTHY needs a healthCheck")
                if d["condition"] in ("COMPLETE", "SUCCESS"):
                    self.assertFalse(dep.get("essential", True))
            if c["name"] != "otel2dd":
                self.check_app(c)
        o = by_name.get("otel2dd")
        if o is not None:
            self.check_otel2dd(o)

    def check_otel2dd(self, c):
        self.assertEqual(c["healthCheck"]["command"], ["CMD", dockerfile_binary(), "health"])
        # ECS's health-check timeout must leave room for the command's own 2 s bound.
        self.assertGreater(c["healthCheck"]["timeout"], 2)
        self.assertEqual(c["user"].split(":")[0], "10001")
        self.assertIs(c["readonlyRootFilesystem"], True)
        names = [s["name"] for s in c["secrets"]]
        self.assertEqual(names[0], "DD_API_KEY")
        # The shared gateway also takes its apps' bearer tokens from Secrets Manager.
        self.assertEqual([n for n in names[1:] if not n.startswith("OTEL2DD_TOKEN_")], [])
        self.assertNotIn("DD_API_KEY", env_of(c), "the key comes from Secrets Manager only")
        self.assertIn("DD_SITE", env_of(c))
        # Covers the drain with room for the process to exit; Fargate stops at 120.
        self.assertGreater(c["stopTimeout"], drain_seconds())
        self.assertLessEqual(c["stopTimeout"], FARGATE_STOP_TIMEOUT_MAX)

    def check_app(self, c):
        env = env_of(c)
        self.assertNotIn("DD_API_KEY", env)
        self.assertFalse([s for s in c.get("secrets", []) if s["name"] == "DD_API_KEY"])
        attrs = dict(kv.split("=", 1) for kv in env["OTEL_RESOURCE_ATTRIBUTES"].split(","))
        self.assertTrue(attrs.get("service.name"))
        self.assertTrue(attrs.get("deployment.environment.name"))
        self.assertTrue(attrs.get("service.version"))
        ep = env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        if ep is not None:
            # Without a scheme the Python gRPC exporter goes TLS and fails.
            self.assertRegex(ep, r"^http://[^/]+:431[78]$")

    def test_sidecar(self):
        td = load("sidecar-task-definition.json")
        app = next(c for c in td["containerDefinitions"] if c["name"] == "app")
        o = otel2dd_container(td)
        # Started first (HEALTHY), stopped last (ECS stops in reverse dependency order).
        self.assertIn({"containerName": "otel2dd", "condition": "HEALTHY"}, app["dependsOn"])
        self.assertEqual(env_of(app)["OTEL_EXPORTER_OTLP_ENDPOINT"], "http://localhost:4317")
        # The collector gets its SIGTERM after the app has exited and flushed into it.
        self.assertGreaterEqual(o["stopTimeout"], app.get("stopTimeout", 30))
        # A collector that fails to start gives up in time instead of holding the app back.
        self.assertLessEqual(o.get("startTimeout", 0), 120)
        if not o.get("essential", True):
            self.assertTrue(o["restartPolicy"]["enabled"])
            self.assertIn(0, o["restartPolicy"]["ignoredExitCodes"])
        app_ports = {p["containerPort"] for p in app.get("portMappings", [])}
        self.assertFalse(app_ports & {4317, 4318, 13133, 8888}, "ports clash in one task")

    def test_memory_from_the_ceiling(self):
        # The formula the README states is the one checked here.
        self.assertIn("ceiling (MiB) = 50 + M + M + 1.25 Q + B + 9 × R + C / 8",
                      readme_memory_section())
        # Sidecar: one app's connections; its hard limit covers the ceiling, its
        # reservation is below it.
        o = otel2dd_container(load("sidecar-task-definition.json"))
        ceiling = memory_ceiling_mib(cpus=2, connections=64)
        self.assertGreaterEqual(o["memory"], ceiling)
        self.assertLessEqual(o["memoryReservation"], o["memory"])
        self.assertIn("%d MiB" % round(ceiling), readme_memory_section())
        # Shared service: every connection both receivers allow.
        td = load("otel2dd-task-definition.json")
        cfg = embedded_config()["receivers"]["otlp"]["protocols"]
        conns = cfg["grpc"]["max_connections"] + cfg["http"]["max_connections"]
        ceiling = memory_ceiling_mib(cpus=2, connections=conns)
        self.assertGreaterEqual(int(td["memory"]), ceiling)
        self.assertGreaterEqual(otel2dd_container(td).get("memory", int(td["memory"])), ceiling)
        self.assertIn("%d MiB" % round(ceiling), readme_memory_section())

    def check_gateway_auth(self, o):
        """The shared service's configuration (--config env:OTEL2DD_CONFIG) loads with the
        secrets it names, asks both receivers for a bearer token, holds each tenant to half the
        budget and sends to Datadog; every token it reads is one of the container's secrets."""
        self.assertEqual(o["command"], ["--config", "env:OTEL2DD_CONFIG"])
        text = env_of(o)["OTEL2DD_CONFIG"]
        secrets = {s["name"] for s in o["secrets"]}
        refs = set(re.findall(r"\$\{env:(OTEL2DD_TOKEN_[A-Z0-9_]+)\}", text))
        self.assertTrue(refs)
        self.assertEqual(refs, {n for n in secrets if n.startswith("OTEL2DD_TOKEN_")})
        binary = os.environ.get("OTEL2DD_BIN", os.path.join(ROOT, "build", "otel2dd"))
        if not os.access(binary, os.X_OK):
            self.skipTest("no otel2dd binary at %s" % binary)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DD_", "OTEL"))}
        env.update(env_of(o))
        env["DD_API_KEY"] = "0123456789abcdef0123456789abcdef"
        for n in refs:
            env[n] = "tok-" + n.lower()
        p = subprocess.run([binary, "validate", "--config", "env:OTEL2DD_CONFIG"], env=env,
                           capture_output=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr.decode())
        eff = yaml.safe_load(p.stdout.decode().split("\n\n# ")[0])
        protos = eff["receivers"]["otlp"]["protocols"]
        for n in ("grpc", "http"):
            self.assertEqual(protos[n]["auth"]["authenticator"], "bearertokenauth")
        self.assertEqual(protos["grpc"]["endpoint"], "0.0.0.0:4317")
        self.assertEqual(protos["http"]["endpoint"], "0.0.0.0:4318")
        self.assertNotEqual(protos["grpc"]["keepalive"]["server_parameters"]
                            ["max_connection_age"], "0s")
        self.assertEqual(eff["receivers"]["otlp"]["fairness"]["max_tenant_share_percent"], 50)
        self.assertEqual(eff["extensions"]["health_check"]["endpoint"], "0.0.0.0:13133")
        self.assertEqual(len(eff["extensions"]["bearertokenauth"]["tokens"]), len(refs))
        self.assertIn("datadog", eff["exporters"])
        for n in refs:
            self.assertNotIn(env[n], p.stdout.decode() + p.stderr.decode())

    def test_shared_service_behind_nlb(self):
        td = load("otel2dd-task-definition.json")
        o = otel2dd_container(td)
        self.assertIs(o["essential"], True)
        ports = {p["containerPort"] for p in o["portMappings"]}
        self.assertEqual(ports, {4317, 4318, 13133})

        groups = {}
        for n in ("grpc", "http"):
            tg = load("target-group-%s.json" % n)
            self.assertLessEqual(set(tg), TARGET_GROUP_KEYS)
            self.assertLessEqual(len(tg["Name"]), 32)
            self.assertEqual(tg["TargetType"], "ip")  # awsvpc tasks register by IP
            self.assertEqual(tg["Protocol"], "TCP")
            self.assertIn(tg["Port"], ports)
            self.assertEqual(tg["HealthCheckProtocol"], "HTTP")
            self.assertEqual(tg["HealthCheckPort"], "13133")
            self.assertIn(int(tg["HealthCheckPort"]), ports)
            self.assertEqual(tg["HealthCheckPath"], "/")
            self.assertEqual(tg["Matcher"], {"HttpCode": "200"})
            self.assertTrue(5 <= tg["HealthCheckIntervalSeconds"] <= 300)
            self.assertLess(tg["HealthCheckTimeoutSeconds"], tg["HealthCheckIntervalSeconds"])
            self.assertTrue(2 <= tg["HealthyThresholdCount"] <= 10)
            self.assertTrue(2 <= tg["UnhealthyThresholdCount"] <= 10)
            groups[tg["Name"]] = tg

            attrs = load("target-group-%s-attributes.json" % n)
            self.assertEqual(TG_ARN.match(attrs["TargetGroupArn"]).group(1), tg["Name"])
            kv = {a["Key"]: a["Value"] for a in attrs["Attributes"]}
            self.assertTrue(all(isinstance(v, str) for v in kv.values()))
            delay = int(kv["deregistration_delay.timeout_seconds"])
            self.assertLess(delay, o["stopTimeout"])
            self.assertLess(o["stopTimeout"], 121)

            listener = load("listener-%s.json" % n)
            self.assertEqual((listener["Protocol"], listener["Port"]), ("TCP", tg["Port"]))
            fwd = listener["DefaultActions"][0]
            self.assertEqual(fwd["Type"], "forward")
            self.assertEqual(TG_ARN.match(fwd["TargetGroupArn"]).group(1), tg["Name"])

        svc = load("otel2dd-service.json")
        self.assertLessEqual(set(svc), SERVICE_KEYS)
        self.assertEqual(svc["taskDefinition"].split(":")[0], td["family"])
        self.assertEqual(svc["launchType"], "FARGATE")
        self.assertGreaterEqual(svc["desiredCount"], 2)
        net = svc["networkConfiguration"]["awsvpcConfiguration"]
        self.assertGreaterEqual(len(net["subnets"]), 2)
        self.assertTrue(net["securityGroups"])
        self.assertGreater(svc["healthCheckGracePeriodSeconds"], 0)
        lbs = svc["loadBalancers"]
        self.assertLessEqual(len(lbs), 5)
        seen = set()
        for lb in lbs:
            name = TG_ARN.match(lb["targetGroupArn"]).group(1)
            self.assertIn(name, groups)
            self.assertEqual(lb["containerName"], o["name"])
            self.assertEqual(lb["containerPort"], groups[name]["Port"])
            seen.add(lb["containerPort"])
        self.assertEqual(seen, {4317, 4318})

        self.check_gateway_auth(o)
        app_td = load("nlb-app-task-definition.json")
        app = app_td["containerDefinitions"][0]
        self.assertIsNone(otel2dd_container(app_td))
        # The app's token: the whole header value, from Secrets Manager, never in plain env.
        self.assertIn("OTEL_EXPORTER_OTLP_HEADERS", [s["name"] for s in app["secrets"]])
        self.assertNotIn("OTEL_EXPORTER_OTLP_HEADERS", env_of(app))
        ep = env_of(app)["OTEL_EXPORTER_OTLP_ENDPOINT"]
        self.assertRegex(ep, r"^http://[a-z0-9.-]+:4317$")
        self.assertEqual(env_of(app).get("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"), "grpc")
        self.assertNotIn("dependsOn", app)


# Which API call takes each file (as --cli-input-json).
OPERATIONS = {
    "sidecar-task-definition.json": ("ecs", "RegisterTaskDefinition"),
    "otel2dd-task-definition.json": ("ecs", "RegisterTaskDefinition"),
    "nlb-app-task-definition.json": ("ecs", "RegisterTaskDefinition"),
    "otel2dd-service.json": ("ecs", "CreateService"),
    "target-group-grpc.json": ("elbv2", "CreateTargetGroup"),
    "target-group-http.json": ("elbv2", "CreateTargetGroup"),
    "target-group-grpc-attributes.json": ("elbv2", "ModifyTargetGroupAttributes"),
    "target-group-http-attributes.json": ("elbv2", "ModifyTargetGroupAttributes"),
    "listener-grpc.json": ("elbv2", "CreateListener"),
    "listener-http.json": ("elbv2", "CreateListener"),
}


def enum_errors(value, shape, path):
    """String values outside their shape's enum (botocore's validator checks types only)."""
    errs = []
    if shape.type_name == "structure" and isinstance(value, dict):
        for k, v in value.items():
            if k in shape.members:
                errs += enum_errors(v, shape.members[k], "%s.%s" % (path, k))
    elif shape.type_name == "list" and isinstance(value, list):
        for i, v in enumerate(value):
            errs += enum_errors(v, shape.member, "%s[%d]" % (path, i))
    elif shape.type_name == "string" and getattr(shape, "enum", None):
        if value not in shape.enum:
            errs.append("%s: %r not in %s" % (path, value, shape.enum))
    return errs


class TestAgainstAwsModels(unittest.TestCase):
    """Each file against the input shape of its API call in botocore's service model (keys,
    types, ranges, enums): what `aws ... --cli-input-json` would refuse, refused here."""

    def test_inputs(self):
        try:
            import botocore.session  # python3-botocore
            from botocore.validate import ParamValidator
        except ImportError:
            raise AssertionError("python3-botocore is missing: run configs/install-deps.sh test")
        session = botocore.session.get_session()
        self.assertEqual(sorted(OPERATIONS), sorted(os.path.basename(p) for p in
                                                    glob.glob(os.path.join(ECS, "*.json"))))
        for name, (service, op) in OPERATIONS.items():
            with self.subTest(file=name):
                params = load(name)
                for c in params.get("containerDefinitions", []):
                    # ECS's ContainerRestartPolicy (2023-12) is newer than Debian 12's
                    # botocore model: checked by hand, then left out of the model check.
                    rp = c.pop("restartPolicy", None)
                    if rp is not None:
                        self.assertLessEqual(set(rp), {"enabled", "ignoredExitCodes",
                                                       "restartAttemptPeriod"})
                        self.assertIsInstance(rp["enabled"], bool)
                        self.assertLessEqual(len(rp.get("ignoredExitCodes", [])), 50)
                        self.assertTrue(all(isinstance(x, int)
                                            for x in rp.get("ignoredExitCodes", [])))
                        self.assertTrue(60 <= rp.get("restartAttemptPeriod", 300) <= 1800)
                shape = session.get_service_model(service).operation_model(op).input_shape
                report = ParamValidator().validate(params, shape)
                self.assertFalse(report.has_errors(), report.generate_report())
                self.assertEqual(enum_errors(params, shape, op), [])


class TestDockerfile(unittest.TestCase):
    def test_rules(self):
        df = dockerfile()
        froms = re.findall(r"^FROM\s+(\S+)", df, re.M)
        self.assertEqual(froms, ["debian:12-slim", "debian:12-slim"])
        self.assertEqual(dockerfile_binary(), "/usr/local/bin/otel2dd")
        self.assertRegex(df, r"(?m)^USER 10001:10001$")
        self.assertRegex(df, r"(?m)^EXPOSE 4317 4318 13133 8888$")
        self.assertRegex(df, r"(?m)^STOPSIGNAL SIGTERM$")
        hc = re.search(r"(?m)^HEALTHCHECK (.*) CMD (\[.*\])$", df)
        self.assertEqual(shlex.split(hc.group(1)), ["--interval=10s", "--timeout=3s",
                                                   "--start-period=5s", "--retries=3"])
        self.assertEqual(json.loads(hc.group(2)), [dockerfile_binary(), "health"])
        self.assertIn("ldd /usr/local/bin/otel2dd", df)
        with open(os.path.join(ROOT, ".dockerignore")) as f:
            ignored = f.read().split()
        for p in (".git", "build*", "**/node_modules"):
            self.assertIn(p, ignored)


class TestExampleApp(unittest.TestCase):
    def test_requirements_and_command(self):
        d = os.path.join(CONFIGS, "example-app")
        with open(os.path.join(d, "requirements.txt")) as f:
            reqs = [l.split("#")[0].strip() for l in f if l.split("#")[0].strip()]
        names = [re.split(r"[<>=~!\[ ]", r)[0].lower() for r in reqs]
        self.assertIn("opentelemetry-distro[otlp]", reqs)
        self.assertIn("opentelemetry-instrumentation-fastapi", names)
        langchain = [n for n in names if "langchain" in n and "instrumentation" in n]
        self.assertEqual(len(langchain), 1, "exactly one LangChain instrumentation: %s" % names)
        self.assertNotIn("ddtrace", names)
        with open(os.path.join(d, "Dockerfile")) as f:
            df = f.read()
        cmd = json.loads(re.search(r"(?m)^CMD (\[.*\])$", df).group(1))
        self.assertEqual(cmd[:2], ["opentelemetry-instrument", "uvicorn"])
        self.assertNotIn("--workers", cmd)
        self.assertNotIn("--reload", cmd)
        self.assertIn("opentelemetry-bootstrap -a install", df)
        with open(os.path.join(d, "app.py")) as f:
            compile(f.read(), "app.py", "exec")


class TestCompose(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tool = shutil.which("docker-compose")
        if cls.tool is None:
            raise AssertionError("docker-compose is missing: run configs/install-deps.sh test")

    def config(self, *args, env=None):
        e = {k: v for k, v in os.environ.items() if not k.startswith(("DD_", "OTEL_"))}
        e.update(env or {})
        p = subprocess.run([self.tool, "-f", COMPOSE] + list(args) + ["config"],
                           capture_output=True, timeout=60, env=e, cwd=ROOT)
        self.assertEqual(p.returncode, 0, p.stderr.decode())
        self.assertNotIn(b"WARNING", p.stderr, p.stderr.decode())
        return yaml.safe_load(p.stdout)

    def test_default(self):
        cfg = self.config()
        s = cfg["services"]
        o, app = s["otel2dd"], s["app"]
        self.assertEqual(o["build"]["dockerfile"], "configs/Dockerfile")
        self.assertEqual(os.path.realpath(o["build"]["context"]), os.path.realpath(ROOT))
        self.assertEqual(o["healthcheck"]["test"], ["CMD", dockerfile_binary(), "health"])
        # No key, no warning: the debug exporter shows what would be sent.
        self.assertEqual(o["environment"]["DD_API_KEY"], "")
        self.assertEqual(o["environment"]["DD_SITE"], "datadoghq.com")
        self.assertEqual(o["environment"]["DD_TRACE_AGENT_URL"], "")
        grace = o["stop_grace_period"]
        self.assertGreater(int(grace.rstrip("s")), drain_seconds())
        for svc in s.values():
            for p in svc.get("ports", []):
                self.assertTrue(str(p).startswith("127.0.0.1:"), p)
        # The preview (on without a key): listening on every interface of the container,
        # published on the host's loopback only.
        self.assertEqual(o["environment"]["OTEL2DD_PREVIEW_ENDPOINT"], "0.0.0.0:55679")
        self.assertIn("127.0.0.1:55679:55679/tcp", [str(p) for p in o["ports"]])
        self.assertEqual(app["depends_on"], {"otel2dd": {"condition": "service_healthy"}})
        env = app["environment"]
        self.assertEqual(env["OTEL_EXPORTER_OTLP_ENDPOINT"], "http://otel2dd:4317")
        self.assertNotIn("DD_API_KEY", env)
        self.assertIn("service.version=", env["OTEL_RESOURCE_ATTRIBUTES"])
        # The agent is only in its profile: `up` without --profile agent does not start it.
        self.assertEqual(s["datadog-agent"]["profiles"], ["agent"])
        self.assertNotIn("profiles", o)
        self.assertNotIn("profiles", app)

    def test_memory_limit_from_the_ceiling(self):
        # A developer machine of up to 16 CPUs, a few connections (README.md, "Memory").
        limit = self.config()["services"]["otel2dd"]["mem_limit"]
        m = re.fullmatch(r"(\d+)([kmg]?)b?", str(limit).lower())
        self.assertIsNotNone(m, limit)
        mib = int(m.group(1)) * {"": 1 / 1024 / 1024, "k": 1 / 1024, "m": 1, "g": 1024}[m.group(2)]
        ceiling = memory_ceiling_mib(cpus=16, connections=64)
        self.assertGreaterEqual(mib, ceiling)
        self.assertIn("%d MiB" % round(ceiling), readme_memory_section())

    def test_with_key_and_agent_profile(self):
        cfg = self.config("--profile", "agent", env={
            "DD_API_KEY": "0123456789abcdef0123456789abcdef", "DD_SITE": "ap1.datadoghq.com",
            "DD_ENV": "staging", "DD_TRACE_AGENT_URL": "http://datadog-agent:8126"})
        s = cfg["services"]
        o, agent = s["otel2dd"]["environment"], s["datadog-agent"]
        self.assertEqual(o["DD_API_KEY"], "0123456789abcdef0123456789abcdef")
        self.assertEqual(o["DD_SITE"], "ap1.datadoghq.com")
        self.assertEqual(o["DD_TRACE_AGENT_URL"], "http://datadog-agent:8126")
        self.assertIn("deployment.environment.name=staging",
                      s["app"]["environment"]["OTEL_RESOURCE_ATTRIBUTES"])
        self.assertEqual(agent["image"], "gcr.io/datadoghq/agent:7")
        self.assertEqual(agent["environment"]["DD_APM_NON_LOCAL_TRAFFIC"], "true")
        self.assertEqual(agent["environment"]["DD_API_KEY"], o["DD_API_KEY"])
        self.assertEqual(agent["environment"]["DD_SITE"], "ap1.datadoghq.com")
        self.assertIn("127.0.0.1:8126:8126/tcp", [str(p) for p in agent["ports"]])


if __name__ == "__main__":
    unittest.main(verbosity=2)
